//! The server's own ids of stored messages (migration 0011): Gmail's
//! X-GM-MSGID and the like, so that a message shown in several folders is
//! downloaded once. A cache outside the packs: an id leads to a message only
//! while that message is stored, readable and of the size the server gives,
//! so a wrong or stale row costs a download, never a wrong message.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use super::{Index, Result};
use crate::model::{BlobId, Uid};

impl Index {
    /// Of `wanted` (uid, server id, size on the server), the messages already
    /// stored under that id, by UID.
    pub fn stored_by_server_id(
        &self,
        account: &str,
        wanted: &[(Uid, &str, u64)],
    ) -> Result<HashMap<Uid, BlobId>> {
        let mut st = self.conn.prepare_cached(
            "SELECT blob_id FROM server_ids WHERE account = ?1 AND server_id = ?2",
        )?;
        let mut found = HashMap::new();
        for &(uid, id, size) in wanted {
            let Some(blob) = st
                .query_row(params![account, id], |r| r.get::<_, Vec<u8>>(0))
                .optional()?
            else {
                continue;
            };
            let blob = super::blob_id(blob);
            let usable = match self.blob_location(&blob)? {
                Some(at) => at.raw_size == size && !self.is_damaged(&blob)?,
                None => false,
            };
            if usable {
                found.insert(uid, blob);
            }
        }
        Ok(found)
    }

    /// Remembers that the server's message `server_id` has the bytes `blob`.
    pub fn put_server_id(&self, account: &str, server_id: &str, blob: &BlobId) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO server_ids (account, server_id, blob_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![account, server_id, &blob.0[..]])?;
        Ok(())
    }
}

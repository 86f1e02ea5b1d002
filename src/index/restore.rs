//! The restore map (migration 0003): which stored message was put into which
//! target folder under which UID. A cache outside the packs: the restore checks
//! the target itself before trusting it, so losing it costs time, never a
//! duplicate.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use super::{blob_id, Index, Result};
use crate::model::{BlobId, Flags, Uid};

/// Where a stored message (one copy of it) went on a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoredUid {
    pub blob: BlobId,
    /// Which copy of the message in that folder (0, 1, …).
    pub copy: u32,
    pub uidvalidity: u32,
    pub uid: Uid,
    /// The flags mailkeep gave the target copy or last set it to; `None`:
    /// not known (found there, or recorded by an older release).
    pub flags: Option<Flags>,
}

/// The index is named: without statistics SQLite picks the primary key,
/// which narrows by account only, and each lookup would read every row of
/// the account (quadratic over a restore).
const RESTORED_ELSEWHERE: &str = "SELECT target_mailbox, uidvalidity, uid
     FROM restored INDEXED BY restored_by_blob
     WHERE target_account = ?1 AND blob_id = ?2 AND target_mailbox <> ?3
     ORDER BY restored_at DESC LIMIT 1";

impl Index {
    /// Everything recorded for one target folder, by (blob, copy).
    pub fn restored_in(
        &self,
        target_account: &str,
        target_mailbox: &str,
    ) -> Result<HashMap<(BlobId, u32), RestoredUid>> {
        let mut st = self.conn.prepare_cached(
            "SELECT blob_id, copy, uidvalidity, uid, flags FROM restored
             WHERE target_account = ?1 AND target_mailbox = ?2",
        )?;
        let rows = st.query_map(params![target_account, target_mailbox], |r| {
            Ok(RestoredUid {
                blob: blob_id(r.get::<_, Vec<u8>>(0)?),
                copy: r.get(1)?,
                uidvalidity: r.get(2)?,
                uid: r.get(3)?,
                flags: r.get::<_, Option<String>>(4)?.map(|f| Flags::from_text(&f)),
            })
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let row = row?;
            out.insert((row.blob, row.copy), row);
        }
        Ok(out)
    }

    /// For each of `blobs`, one other folder of `target_account` (not
    /// `not_mailbox`) where it was restored: (folder as on the wire,
    /// its UIDVALIDITY then, the UID there).
    pub fn restored_elsewhere(
        &self,
        target_account: &str,
        not_mailbox: &str,
        blobs: &[BlobId],
    ) -> Result<HashMap<BlobId, (String, u32, Uid)>> {
        let mut st = self.conn.prepare_cached(RESTORED_ELSEWHERE)?;
        let mut out = HashMap::new();
        for b in blobs {
            let row = st
                .query_row(params![target_account, &b.0[..], not_mailbox], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, u32>(2)?,
                    ))
                })
                .optional()?;
            if let Some(row) = row {
                out.insert(*b, row);
            }
        }
        Ok(out)
    }

    /// Records a batch of appended (or found) messages in one transaction; a
    /// later record for the same (account, folder, blob, copy) replaces the
    /// earlier.
    pub fn record_restored(
        &self,
        target_account: &str,
        target_mailbox: &str,
        entries: &[RestoredUid],
        at: i64,
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let tx = super::write_tx(&self.conn)?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO restored
                    (target_account, target_mailbox, blob_id, copy, uidvalidity, uid, flags, restored_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(target_account, target_mailbox, blob_id, copy) DO UPDATE SET
                    uidvalidity = excluded.uidvalidity, uid = excluded.uid,
                    flags = excluded.flags, restored_at = excluded.restored_at",
            )?;
            for e in entries {
                st.execute(params![
                    target_account,
                    target_mailbox,
                    &e.blob.0[..],
                    e.copy,
                    e.uidvalidity,
                    e.uid,
                    e.flags.as_ref().map(|f| f.to_text()),
                    at
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_else_a_message_went_is_found_by_the_index_on_messages() {
        let dir = tempfile::tempdir().unwrap();
        let ix = Index::open(&dir.path().join("index.sqlite")).unwrap();
        let (a, b) = (BlobId::of(b"a"), BlobId::of(b"b"));
        let entry = |blob, uid| RestoredUid {
            blob,
            copy: 0,
            uidvalidity: 7,
            uid,
            flags: None,
        };
        ix.record_restored("new", "INBOX", &[entry(a, 1), entry(b, 2)], 10)
            .unwrap();
        let got = ix
            .restored_elsewhere("new", "Work", &[a, BlobId::of(b"c")])
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[&a], ("INBOX".to_string(), 7, 1));
        assert!(ix
            .restored_elsewhere("new", "INBOX", &[a])
            .unwrap()
            .is_empty());
        assert!(ix
            .restored_elsewhere("other", "Work", &[a])
            .unwrap()
            .is_empty());
        // One lookup per message reads that message's rows, not the
        // account's: a restore of N messages stays linear.
        let mut st = ix
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {RESTORED_ELSEWHERE}"))
            .unwrap();
        let plan: Vec<String> = st
            .query_map(params!["new", &a.0[..], "x"], |r| r.get(3))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let plan = plan.join(" | ");
        assert!(
            plan.contains("restored_by_blob (target_account=? AND blob_id=?)"),
            "{plan}"
        );
    }

    #[test]
    fn restore_map_round_trips_and_is_carried_into_a_rebuilt_index() {
        let dir = tempfile::tempdir().unwrap();
        let ix = Index::open(&dir.path().join("index.sqlite")).unwrap();
        let a = BlobId::of(b"a");
        let b = BlobId::of(b"b");
        let entry = |blob, uid| RestoredUid {
            blob,
            copy: 0,
            uidvalidity: 7,
            uid,
            flags: None,
        };
        ix.record_restored("new", "INBOX.Work", &[entry(a, 1), entry(b, 2)], 10)
            .unwrap();
        ix.record_restored("new", "INBOX.Work", &[entry(a, 5)], 11)
            .unwrap();
        let got = ix.restored_in("new", "INBOX.Work").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[&(a, 0)].uid, 5);
        assert!(ix.restored_in("new", "INBOX").unwrap().is_empty());
        assert!(ix.restored_in("other", "INBOX.Work").unwrap().is_empty());
        // `repair` builds a new index from the packs and carries the map over.
        drop(ix);
        let rebuilt = Index::open(&dir.path().join("rebuilt.sqlite")).unwrap();
        let carried = rebuilt.carry_over_from(&dir.path().join("index.sqlite"));
        assert!(carried.iter().all(|c| c.result.is_ok()), "{carried:?}");
        assert_eq!(rebuilt.restored_in("new", "INBOX.Work").unwrap().len(), 2);
    }
}

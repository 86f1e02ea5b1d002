//! Queries for the store's integrity (migration 0005): dictionary copies,
//! messages whose bytes were found damaged or missing, and SQLite's own
//! checks of the index file.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{blob_id, blob_key, location, BlobLocationLite, Index, IndexError, Result};
use crate::model::{BlobId, Uid};

/// One place a stored message is listed, for naming it to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessagePlace {
    pub account: String,
    /// The folder's name for people.
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: Uid,
    pub internaldate: i64,
    pub gone_at: Option<i64>,
    pub archived_at: Option<i64>,
    /// The folder itself is no longer listed by the server.
    pub folder_gone: bool,
    pub blob: BlobId,
}

impl MessagePlace {
    /// As far as the store knows, the server still has this message: the
    /// next backup of the account can fetch its bytes again.
    pub fn on_server(&self) -> bool {
        self.gone_at.is_none() && self.archived_at.is_none() && !self.folder_gone
    }
}

const PLACE_SELECT: &str = "SELECT a.name, b.name, b.uidvalidity, m.uid, m.internaldate, m.gone_at,
        m.archived_at, b.gone_at IS NOT NULL OR b.is_current = 0, x.id
     FROM messages m JOIN blobs x ON x.key = m.blob_key
     JOIN mailboxes b ON b.id = m.mailbox_id JOIN accounts a ON a.id = b.account_id";

fn place(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessagePlace> {
    Ok(MessagePlace {
        account: r.get(0)?,
        folder: r.get(1)?,
        uidvalidity: r.get(2)?,
        uid: r.get(3)?,
        internaldate: r.get(4)?,
        gone_at: r.get(5)?,
        archived_at: r.get(6)?,
        folder_gone: r.get(7)?,
        blob: blob_id(r.get::<_, Vec<u8>>(8)?),
    })
}

/// From the damaged messages (normally none) to the folder's: `CROSS JOIN`
/// keeps SQLite from starting at the folder's messages, which it does
/// without statistics, reading every message of every unchanged folder on
/// each no-change backup: at 100,000 messages that was 0.8 s of the 1.05 s
/// a no-change backup took.
const UNREADABLE_UIDS: &str = "SELECT m.uid FROM damaged_blobs d
     CROSS JOIN blobs x ON x.id = d.blob_id
     CROSS JOIN messages m ON m.blob_key = x.key
     WHERE m.mailbox_id = ?1";

impl IndexError {
    /// SQLite says the index file is damaged (or is not a database at all).
    pub fn is_damaged(&self) -> bool {
        let sql = match self {
            IndexError::Open { source, .. } | IndexError::Sql(source) => source,
            IndexError::Migrate { source, .. } => match source {
                rusqlite_migration::Error::RusqliteError { err, .. } => err,
                _ => return false,
            },
        };
        matches!(
            sql.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        )
    }

    /// SQLite could not write where even reading needs it to: the index
    /// (or its directory, where the WAL files go) is not writable by this
    /// user.
    pub fn is_read_only(&self) -> bool {
        match self {
            IndexError::Open { source, .. } | IndexError::Sql(source) => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ReadOnly)
            ),
            IndexError::Migrate { .. } => false,
        }
    }
}

impl Index {
    /// Every copy of every dictionary, by id, in log order. (An index of a
    /// release before copies were listed, read where it cannot be upgraded,
    /// lists the one copy it knows.)
    pub fn dictionary_copies(&self) -> Result<Vec<(u32, BlobLocationLite)>> {
        let table = if self.has_table("dictionary_copies")? {
            "dictionary_copies"
        } else {
            "dictionaries"
        };
        let mut st = self.conn.prepare(&format!(
            "SELECT id, pack, offset, length FROM {table} ORDER BY id, pack, offset"
        ))?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                BlobLocationLite {
                    pack: r.get(1)?,
                    offset: r.get::<_, i64>(2)? as u64,
                    length: r.get::<_, i64>(3)? as u64,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Notes stored messages whose bytes were found damaged or missing, so
    /// that the next backup fetches them again.
    pub fn note_damaged(&self, blobs: &[(BlobId, String)], at: i64) -> Result<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        let tx = super::write_tx(&self.conn)?;
        for (id, what) in blobs {
            tx.execute(
                "INSERT INTO damaged_blobs (blob_id, found_at, what) VALUES (?1, ?2, ?3)
                 ON CONFLICT(blob_id) DO UPDATE SET what = excluded.what",
                params![&id.0[..], at, what],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Like [`Index::note_damaged`], for a command that holds the index
    /// read-only: through a connection of its own, waiting for a writer's
    /// transaction if there is one.
    pub fn note_damaged_at(path: &Path, blobs: &[(BlobId, String)], at: i64) -> Result<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        Index::open_for_notes(path)?.note_damaged(blobs, at)
    }

    /// Like [`Index::clear_damaged`], through a connection of its own.
    pub fn clear_damaged_at(path: &Path, blobs: &[BlobId]) -> Result<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        Index::open_for_notes(path)?.clear_damaged(blobs)
    }

    /// A writable connection to an existing index, without migrations, for
    /// the notes a reader makes.
    fn open_for_notes(path: &Path) -> Result<Index> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|source| IndexError::Open {
            path: path.display().to_string(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        Ok(Index { conn })
    }

    /// Whether a read found these bytes damaged (and no good copy came since).
    pub fn is_damaged(&self, id: &BlobId) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM damaged_blobs WHERE blob_id = ?1")?
            .query_row([&id.0[..]], |_| Ok(()))
            .optional()?
            .is_some())
    }

    pub fn damaged_blobs(&self) -> Result<Vec<(BlobId, String)>> {
        if !self.has_table("damaged_blobs")? {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn
            .prepare("SELECT blob_id, what FROM damaged_blobs ORDER BY blob_id")?;
        let rows = st.query_map([], |r| Ok((blob_id(r.get::<_, Vec<u8>>(0)?), r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Blobs the index places in pack `no` at or past `len` bytes (the pack
    /// was found shorter than that, or missing when `len` is 0).
    pub fn blobs_past(&self, no: u32, len: u64) -> Result<Vec<BlobId>> {
        let mut st = self.conn.prepare(
            "SELECT id FROM blobs WHERE key >= ?1 AND key < ?2 AND length > 0
             AND key - ?1 + length > ?3",
        )?;
        let rows = st.query_map(
            params![blob_key(no, 0), blob_key(no + 1, 0), len as i64],
            |r| Ok(blob_id(r.get::<_, Vec<u8>>(0)?)),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The blobs the index places in pack `no`, by offset.
    pub fn blobs_in_pack(&self, no: u32) -> Result<Vec<(BlobId, super::BlobLocation)>> {
        let mut st = self.conn.prepare(
            "SELECT id, key, length, raw_size, dict_id FROM blobs
             WHERE key >= ?1 AND key < ?2 AND length > 0 ORDER BY key",
        )?;
        let rows = st.query_map(params![blob_key(no, 0), blob_key(no + 1, 0)], |r| {
            Ok((blob_id(r.get::<_, Vec<u8>>(0)?), location(r, 1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Forgets damage noted earlier for bytes that are whole now.
    pub fn clear_damaged(&self, blobs: &[BlobId]) -> Result<()> {
        let tx = super::write_tx(&self.conn)?;
        for id in blobs {
            tx.execute("DELETE FROM damaged_blobs WHERE blob_id = ?1", [&id.0[..]])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Blobs compressed with dictionary `dict`.
    pub fn blobs_with_dict(&self, dict: u32) -> Result<Vec<BlobId>> {
        let mut st = self
            .conn
            .prepare("SELECT id FROM blobs WHERE dict_id = ?1 AND length > 0 ORDER BY key")?;
        let rows = st.query_map([dict], |r| Ok(blob_id(r.get::<_, Vec<u8>>(0)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// UIDs of one folder generation whose bytes are noted damaged or lost
    /// (`repair` notes the messages whose bytes it could not find). Costs
    /// nothing when nothing is damaged.
    pub fn unreadable_uids(&self, mailbox_id: i64) -> Result<BTreeSet<Uid>> {
        let mut st = self.conn.prepare_cached(UNREADABLE_UIDS)?;
        let rows = st.query_map([mailbox_id], |r| r.get::<_, Uid>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every place a message with these bytes is listed.
    pub fn places_of(&self, blob: &BlobId) -> Result<Vec<MessagePlace>> {
        let mut st = self.conn.prepare_cached(&format!(
            "{PLACE_SELECT} WHERE x.id = ?1 ORDER BY a.name, b.name, m.uid"
        ))?;
        let rows = st.query_map([&blob.0[..]], place)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Messages whose bytes are not in the store at all.
    pub fn places_without_blob(&self) -> Result<Vec<MessagePlace>> {
        let mut st = self.conn.prepare(&format!(
            "{PLACE_SELECT} WHERE x.length = 0 ORDER BY a.name, b.name, m.uid"
        ))?;
        let rows = st.query_map([], place)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// SQLite's own check of the index file: `PRAGMA quick_check`, or the
    /// slower `integrity_check` (which also compares every index with its
    /// table). An empty list means the file is sound.
    pub fn check_file(&self, full: bool) -> Result<Vec<String>> {
        let pragma = if full {
            "PRAGMA integrity_check(100)"
        } else {
            "PRAGMA quick_check(100)"
        };
        let mut st = self.conn.prepare(pragma)?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let lines: Vec<String> = rows.collect::<rusqlite::Result<_>>()?;
        Ok(lines.into_iter().filter(|l| l != "ok").collect())
    }

    /// Starts a read transaction: until [`Index::end_snapshot`], every query
    /// sees the index as it was now, whatever a writer commits meanwhile.
    pub fn begin_snapshot(&self) -> Result<()> {
        self.conn.execute_batch("BEGIN DEFERRED")?;
        // A deferred transaction takes its snapshot at the first read.
        self.conn
            .query_row("SELECT count(*) FROM packs", [], |r| r.get::<_, i64>(0))?;
        Ok(())
    }

    pub fn end_snapshot(&self) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }
}

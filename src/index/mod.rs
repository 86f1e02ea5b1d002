//! The SQLite index of a store: connection, the migrations in ../migrations,
//! typed queries. The only place SQL lives.
//!
//! Uses: `model`. Everything it holds comes from pack records (see
//! [`Index::apply`]), so it can be rebuilt from the packs alone.

mod search;

pub use search::{
    Candidate, SearchColumn, SearchDoc, SearchFilter, SearchHit, SearchIndex, SearchPlace,
    SearchTerm, SEARCH_FILE,
};

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use rusqlite_migration::{Migrations, M};

use crate::model::records::{Located, MailboxRecord, Record, RefEvent, RefRecord};
use crate::model::{BlobId, Flags, InternalDate, Uid};

mod carry;
pub use carry::Carried;
mod integrity;
pub use integrity::MessagePlace;
mod restore;
mod server_ids;
pub use restore::RestoredUid;
pub mod archive;
mod import;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot open the index `{path}`")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot bring the index `{path}` to the current schema")]
    Migrate {
        path: String,
        #[source]
        source: rusqlite_migration::Error,
    },
    #[error("index query failed")]
    Sql(#[from] rusqlite::Error),
}

pub type Result<T> = std::result::Result<T, IndexError>;

/// A transaction that takes the write lock at once (waiting for another
/// writer as long as the busy timeout allows), so that it never fails
/// half-way because another connection wrote since it began reading.
pub(crate) fn write_tx(conn: &Connection) -> Result<Transaction<'_>> {
    Ok(Transaction::new_unchecked(
        conn,
        rusqlite::TransactionBehavior::Immediate,
    )?)
}

/// An index error and its causes on one line.
pub fn error_text(e: &IndexError) -> String {
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// What a per-message callback may fail with; stops the iteration.
pub type EachError = Box<dyn std::error::Error + Send + Sync>;

/// How many migrations this release has (`migrations/`).
const MIGRATION_COUNT: usize = 13;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/0001_init.sql")),
        M::up(include_str!("../../migrations/0002_search.sql")),
        M::up(include_str!("../../migrations/0003_restore.sql")),
        M::up(include_str!("../../migrations/0004_archive.sql")),
        M::up(include_str!("../../migrations/0005_integrity.sql")),
        M::up(include_str!("../../migrations/0006_search_fold.sql")),
        M::up(include_str!("../../migrations/0007_keys.sql")),
        M::up(include_str!("../../migrations/0008_search_moved.sql")),
        M::up(include_str!("../../migrations/0009_restore_copies.sql")),
        M::up(include_str!("../../migrations/0010_restored_by_blob.sql")),
        M::up(include_str!("../../migrations/0011_server_ids.sql")),
        M::up(include_str!("../../migrations/0012_coded_blobs.sql")),
        M::up(include_str!("../../migrations/0013_live_counts.sql")),
    ])
}

#[test]
fn migration_count_is_the_number_of_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("i.sqlite")).unwrap();
    migrations().to_latest(&mut conn).unwrap();
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v as usize, MIGRATION_COUNT);
}

/// After an upgrade that dropped tables (the old search index was most of an
/// index of format 1), gives the room they took back to the file system:
/// `VACUUM` writes the live pages into a new file under SQLite's own
/// crash-safe journal, so an interrupted one leaves the upgraded index as it
/// was. Only when a quarter or more of the file is free.
fn give_back_free_pages(conn: &Connection) -> Result<()> {
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    if free * 4 >= pages && free >= 8 {
        conn.execute_batch("VACUUM")?;
        conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    }
    Ok(())
}

/// A blob's key in the index is where its record is: `pack * 2^40 + offset`
/// (so key order is log order, and a rebuild gives the same keys).
pub const PACK_SPAN: i64 = 1 << 40;

pub fn blob_key(pack: u32, offset: u64) -> i64 {
    pack as i64 * PACK_SPAN + offset as i64
}

/// What `SELECT key, length, raw_size, dict_id` says of a stored blob.
pub(super) fn location(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<BlobLocation> {
    let key: i64 = r.get(at)?;
    Ok(BlobLocation {
        pack: (key / PACK_SPAN) as u32,
        offset: (key % PACK_SPAN) as u64,
        length: r.get::<_, i64>(at + 1)? as u64,
        raw_size: r.get::<_, i64>(at + 2)? as u64,
        dict_id: r.get(at + 3)?,
    })
}

/// The columns of a [`StoredMessage`], for `SELECT {MESSAGE_COLS} FROM
/// messages m JOIN blobs b ON b.key = m.blob_key`.
const MESSAGE_COLS: &str = "m.uid, b.id, m.flags, m.modseq, m.internaldate, m.date_offset, m.size,
        m.gone_at, m.archived_at";

/// Where a blob's record sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: u32,
    pub offset: u64,
    pub length: u64,
    pub raw_size: u64,
    pub dict_id: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxRow {
    pub id: i64,
    pub account: String,
    pub raw_name: String,
    pub name: String,
    pub delimiter: Option<String>,
    pub special_use: Option<String>,
    pub uidvalidity: u32,
    pub uidnext: Option<u32>,
    pub highestmodseq: Option<u64>,
    pub server_count: Option<u32>,
    pub is_current: bool,
    pub last_sync_at: Option<i64>,
    pub gone_at: Option<i64>,
}

/// A message as stored for one mailbox generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub uid: Uid,
    pub blob: BlobId,
    pub flags: Flags,
    pub modseq: Option<u64>,
    pub internaldate: InternalDate,
    pub size: u64,
    pub gone_at: Option<i64>,
    pub archived_at: Option<i64>,
}

/// Per-mailbox counts for `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MailboxStats {
    pub stored: u64,
    pub live: u64,
    pub gone: u64,
    pub archived: u64,
    pub raw_bytes: u64,
}

/// A message with where it lives, for export and restore.
#[derive(Clone, Debug)]
pub struct ListedMessage {
    pub mailbox: MailboxRow,
    pub message: StoredMessage,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreTotals {
    pub blobs: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub messages: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    pub account: String,
    pub command: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub ok: Option<bool>,
    pub summary: Option<String>,
}

pub struct Index {
    conn: Connection,
}

impl Index {
    /// Opens (creating if needed) the index and brings it to the current schema.
    pub fn open(path: &Path) -> Result<Index> {
        let mut conn = Connection::open(path).map_err(|source| IndexError::Open {
            path: path.display().to_string(),
            source,
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let before: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        migrations()
            .to_latest(&mut conn)
            .map_err(|source| IndexError::Migrate {
                path: path.display().to_string(),
                source,
            })?;
        if before > 0 && (before as usize) < MIGRATION_COUNT {
            give_back_free_pages(&conn)?;
        }
        Ok(Index { conn })
    }

    /// Whether the index file at `path` was written by an older release (its
    /// schema is behind this one's): it must be upgraded before it is read.
    pub fn is_behind(path: &Path) -> Result<bool> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| IndexError::Open {
                path: path.display().to_string(),
                source,
            })?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        Ok((version as usize) < MIGRATION_COUNT)
    }

    /// Opens an existing index without writing to it.
    pub fn open_read_only(path: &Path) -> Result<Index> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| IndexError::Open {
            path: path.display().to_string(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        Ok(Index { conn })
    }

    /// Takes records into the index in one transaction, and notes that the
    /// index has now read `pack` up to `indexed_len`. The same code serves a
    /// normal commit, crash recovery and a full rebuild, so they cannot drift.
    pub fn apply(&mut self, records: &[Located], pack: u32, indexed_len: u64) -> Result<()> {
        let tx = write_tx(&self.conn)?;
        let any_damaged: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM damaged_blobs)", [], |r| {
                r.get(0)
            })?;
        for rec in records {
            apply_one(&tx, rec, any_damaged)?;
        }
        tx.execute(
            "INSERT INTO packs (no, indexed_len) VALUES (?1, ?2)
             ON CONFLICT(no) DO UPDATE SET indexed_len = excluded.indexed_len",
            params![pack, indexed_len as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn pack_indexed_len(&self, pack: u32) -> Result<Option<u64>> {
        Ok(self
            .conn
            .query_row("SELECT indexed_len FROM packs WHERE no = ?1", [pack], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .map(|v| v as u64))
    }

    pub fn packs(&self) -> Result<Vec<(u32, u64)>> {
        let mut st = self
            .conn
            .prepare("SELECT no, indexed_len FROM packs ORDER BY no")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn blob_location(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT key, length, raw_size, dict_id FROM blobs WHERE id = ?1 AND length > 0",
            )?
            .query_row([&id.0[..]], |r| location(r, 0))
            .optional()?)
    }

    pub fn has_blob(&self, id: &BlobId) -> Result<bool> {
        Ok(self.blob_location(id)?.is_some())
    }

    /// Every blob with its location, in pack order (for verify).
    pub fn all_blobs(&self) -> Result<Vec<(BlobId, BlobLocation)>> {
        let mut st = self.conn.prepare(
            "SELECT id, key, length, raw_size, dict_id FROM blobs WHERE length > 0 ORDER BY key",
        )?;
        let rows = st.query_map([], |r| {
            Ok((blob_id(r.get::<_, Vec<u8>>(0)?), location(r, 1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Messages whose blob is not in the index (should never happen).
    pub fn messages_without_blob(&self) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM messages m JOIN blobs b ON b.key = m.blob_key WHERE b.length = 0",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    pub fn dictionaries(&self) -> Result<Vec<(u32, BlobLocationLite)>> {
        let mut st = self
            .conn
            .prepare("SELECT id, pack, offset, length FROM dictionaries ORDER BY id")?;
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

    pub fn totals(&self) -> Result<StoreTotals> {
        let (blobs, raw_bytes, stored_bytes) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(raw_size),0), coalesce(sum(length),0) FROM blobs
             WHERE length > 0",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )?;
        let messages: i64 = self
            .conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?;
        Ok(StoreTotals {
            blobs: blobs as u64,
            raw_bytes: raw_bytes as u64,
            stored_bytes: stored_bytes as u64,
            messages: messages as u64,
        })
    }

    /// Every stored blob before `key` (log order) of at most `max_raw` bytes,
    /// with its size: what a dictionary trained there could learn from.
    pub fn blobs_before(&self, key: i64, max_raw: u64) -> Result<Vec<(BlobId, u64)>> {
        let mut st = self.conn.prepare(
            "SELECT id, raw_size FROM blobs
             WHERE key >= 0 AND key < ?1 AND length > 0 AND raw_size <= ?2 ORDER BY key",
        )?;
        let rows = st.query_map(params![key, max_raw as i64], |r| {
            Ok((blob_id(r.get::<_, Vec<u8>>(0)?), r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many blobs are stored before `key` in log order.
    pub fn blobs_count_before(&self, key: i64) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM blobs WHERE key >= 0 AND key < ?1 AND length > 0",
            [key],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Up to `limit` blobs stored without a dictionary before (pack, offset)
    /// in log order: the messages the first dictionary was trained on.
    pub fn sample_blobs_before(
        &self,
        pack: u32,
        offset: u64,
        limit: usize,
        max_raw: u64,
    ) -> Result<Vec<BlobId>> {
        let mut st = self.conn.prepare(
            "SELECT id FROM blobs
             WHERE length > 0 AND raw_size <= ?1 AND dict_id = 0 AND key >= 0 AND key < ?2
             ORDER BY key LIMIT ?3",
        )?;
        let rows = st.query_map(
            params![max_raw as i64, blob_key(pack, offset), limit as i64],
            |r| Ok(blob_id(r.get::<_, Vec<u8>>(0)?)),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// `imap` or `import`, or `None` when the store has no such account.
    pub fn account_kind(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT kind FROM accounts WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn accounts(&self) -> Result<Vec<(String, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT name, kind FROM accounts ORDER BY name")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every generation of every folder of an account.
    pub fn mailboxes(&self, account: &str) -> Result<Vec<MailboxRow>> {
        let mut st = self.conn.prepare(&format!(
            "{MAILBOX_SELECT} WHERE a.name = ?1 ORDER BY m.name, m.id"
        ))?;
        let rows = st.query_map([account], mailbox_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The generation of a folder that the server had last time (if any).
    pub fn current_mailbox(&self, account: &str, raw: &str) -> Result<Option<MailboxRow>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "{MAILBOX_SELECT} WHERE a.name = ?1 AND m.raw_name = ?2
                     ORDER BY m.is_current DESC, m.id DESC LIMIT 1"
                ),
                params![account, raw],
                mailbox_row,
            )
            .optional()?)
    }

    pub fn mailbox(
        &self,
        account: &str,
        raw: &str,
        uidvalidity: u32,
    ) -> Result<Option<MailboxRow>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "{MAILBOX_SELECT} WHERE a.name = ?1 AND m.raw_name = ?2 AND m.uidvalidity = ?3"
                ),
                params![account, raw, uidvalidity],
                mailbox_row,
            )
            .optional()?)
    }

    /// Each message of one mailbox generation in turn, by UID: for a folder
    /// of any size without holding its messages all at once. Stops at
    /// `each`'s first error.
    pub fn for_each_in_mailbox<E: From<IndexError>>(
        &self,
        mailbox_id: i64,
        mut each: impl FnMut(StoredMessage) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLS} FROM messages m JOIN blobs b ON b.key = m.blob_key
                 WHERE m.mailbox_id = ?1 ORDER BY m.uid"
            ))
            .map_err(IndexError::from)?;
        let rows = st
            .query_map([mailbox_id], stored_message)
            .map_err(IndexError::from)?;
        for row in rows {
            each(row.map_err(IndexError::from)?)?;
        }
        Ok(())
    }

    /// All messages of one mailbox generation, by UID.
    pub fn messages(&self, mailbox_id: i64) -> Result<BTreeMap<Uid, StoredMessage>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {MESSAGE_COLS} FROM messages m JOIN blobs b ON b.key = m.blob_key
             WHERE m.mailbox_id = ?1"
        ))?;
        let rows = st.query_map([mailbox_id], stored_message)?;
        let mut out = BTreeMap::new();
        for row in rows {
            let m = row?;
            out.insert(m.uid, m);
        }
        Ok(out)
    }

    /// How many messages of a folder generation are live (neither gone
    /// nor archived): `mailbox_stats(..).live` without counting them (kept
    /// by triggers, migration 0013).
    pub fn live_count(&self, mailbox_id: i64) -> Result<u64> {
        Ok(self
            .conn
            .prepare_cached("SELECT live FROM mailbox_live WHERE mailbox_id = ?1")?
            .query_row([mailbox_id], |r| r.get::<_, i64>(0))
            .optional()?
            .unwrap_or(0) as u64)
    }

    pub fn mailbox_stats(&self, mailbox_id: i64) -> Result<MailboxStats> {
        Ok(self.conn.query_row(
            "SELECT count(*),
                    coalesce(sum(gone_at IS NULL AND archived_at IS NULL), 0),
                    coalesce(sum(gone_at IS NOT NULL AND archived_at IS NULL), 0),
                    coalesce(sum(archived_at IS NOT NULL), 0),
                    coalesce(sum(size), 0)
             FROM messages WHERE mailbox_id = ?1",
            [mailbox_id],
            |r| {
                Ok(MailboxStats {
                    stored: r.get::<_, i64>(0)? as u64,
                    live: r.get::<_, i64>(1)? as u64,
                    gone: r.get::<_, i64>(2)? as u64,
                    archived: r.get::<_, i64>(3)? as u64,
                    raw_bytes: r.get::<_, i64>(4)? as u64,
                })
            },
        )?)
    }

    /// Every message of an account (all generations), folder by folder, for
    /// export and restore. `each` is called in (folder, uidvalidity, uid) order.
    pub fn for_each_message(
        &self,
        account: &str,
        each: &mut dyn FnMut(&MailboxRow, StoredMessage) -> std::result::Result<(), EachError>,
    ) -> std::result::Result<(), EachError> {
        for mb in self.mailboxes(account)? {
            self.for_each_in_mailbox(mb.id, |m| each(&mb, m))?;
        }
        Ok(())
    }

    /// Notes that a folder generation was found in step with the server at
    /// `at`, without a record in the packs (nothing about it changed).
    pub fn mark_synced(&self, account: &str, raw: &str, uidvalidity: u32, at: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE mailboxes SET last_sync_at = ?4
             WHERE raw_name = ?2 AND uidvalidity = ?3
               AND account_id = (SELECT id FROM accounts WHERE name = ?1)",
            params![account, raw, uidvalidity, at],
        )?;
        Ok(())
    }

    /// [`Index::mark_synced`] for many folder generations, in one transaction.
    pub fn mark_synced_all(&self, account: &str, folders: &[(String, u32)], at: i64) -> Result<()> {
        if folders.is_empty() {
            return Ok(());
        }
        let tx = write_tx(&self.conn)?;
        for (raw, uidvalidity) in folders {
            tx.prepare_cached(
                "UPDATE mailboxes SET last_sync_at = ?4
                 WHERE raw_name = ?2 AND uidvalidity = ?3
                   AND account_id = (SELECT id FROM accounts WHERE name = ?1)",
            )?
            .execute(params![account, raw, uidvalidity, at])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Ends a run and records how each folder fared (an error, or none), in
    /// one transaction.
    pub fn finish_run_with_folders(
        &self,
        run: i64,
        at: i64,
        ok: bool,
        summary: &str,
        account: &str,
        folders: &[(String, Option<String>)],
    ) -> Result<()> {
        let tx = write_tx(&self.conn)?;
        tx.execute(
            "UPDATE runs SET finished_at = ?2, ok = ?3, summary = ?4 WHERE id = ?1",
            params![run, at, ok, summary],
        )?;
        let account_id = ensure_account(&tx, account, "imap")?;
        for (raw, error) in folders {
            match error {
                Some(m) => tx.prepare_cached(
                    "INSERT INTO folder_errors (account_id, raw_name, at, message) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(account_id, raw_name) DO UPDATE SET at = excluded.at, message = excluded.message",
                )?
                .execute(params![account_id, raw, at, m])?,
                None => tx
                    .prepare_cached("DELETE FROM folder_errors WHERE account_id = ?1 AND raw_name = ?2")?
                    .execute(params![account_id, raw])?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    pub fn begin_run(&self, account: &str, command: &str, at: i64) -> Result<i64> {
        let account_id = self.ensure_account(account, "imap")?;
        self.conn.execute(
            "INSERT INTO runs (account_id, command, started_at) VALUES (?1, ?2, ?3)",
            params![account_id, command, at],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn finish_run(&self, run: i64, at: i64, ok: bool, summary: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET finished_at = ?2, ok = ?3, summary = ?4 WHERE id = ?1",
            params![run, at, ok, summary],
        )?;
        Ok(())
    }

    pub fn last_run(&self, account: &str) -> Result<Option<RunRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT a.name, r.command, r.started_at, r.finished_at, r.ok, r.summary
                 FROM runs r JOIN accounts a ON a.id = r.account_id
                 WHERE a.name = ?1 ORDER BY r.id DESC LIMIT 1",
                [account],
                |r| {
                    Ok(RunRow {
                        account: r.get(0)?,
                        command: r.get(1)?,
                        started_at: r.get(2)?,
                        finished_at: r.get(3)?,
                        ok: r.get(4)?,
                        summary: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn set_folder_error(
        &self,
        account: &str,
        raw: &str,
        at: i64,
        message: Option<&str>,
    ) -> Result<()> {
        let account_id = self.ensure_account(account, "imap")?;
        match message {
            Some(m) => self.conn.execute(
                "INSERT INTO folder_errors (account_id, raw_name, at, message) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(account_id, raw_name) DO UPDATE SET at = excluded.at, message = excluded.message",
                params![account_id, raw, at, m],
            )?,
            None => self.conn.execute(
                "DELETE FROM folder_errors WHERE account_id = ?1 AND raw_name = ?2",
                params![account_id, raw],
            )?,
        };
        Ok(())
    }

    pub fn folder_errors(&self, account: &str) -> Result<Vec<(String, i64, String)>> {
        let mut st = self.conn.prepare(
            "SELECT e.raw_name, e.at, e.message FROM folder_errors e
             JOIN accounts a ON a.id = e.account_id WHERE a.name = ?1 ORDER BY e.raw_name",
        )?;
        let rows = st.query_map([account], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn ensure_account(&self, name: &str, kind: &str) -> Result<i64> {
        ensure_account(&self.conn, name, kind)
    }
}

/// Location of a dictionary record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocationLite {
    pub pack: u32,
    pub offset: u64,
    pub length: u64,
}

const MAILBOX_SELECT: &str = "SELECT m.id, a.name, m.raw_name, m.name, m.delimiter, m.special_use,
        m.uidvalidity, m.uidnext, m.highestmodseq, m.server_count, m.is_current, m.last_sync_at, m.gone_at
     FROM mailboxes m JOIN accounts a ON a.id = m.account_id";

fn mailbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MailboxRow> {
    Ok(MailboxRow {
        id: r.get(0)?,
        account: r.get(1)?,
        raw_name: r.get(2)?,
        name: r.get(3)?,
        delimiter: r.get(4)?,
        special_use: r.get(5)?,
        uidvalidity: r.get(6)?,
        uidnext: r.get(7)?,
        highestmodseq: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
        server_count: r.get(9)?,
        is_current: r.get(10)?,
        last_sync_at: r.get(11)?,
        gone_at: r.get(12)?,
    })
}

fn stored_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    Ok(StoredMessage {
        uid: r.get(0)?,
        blob: blob_id(r.get::<_, Vec<u8>>(1)?),
        flags: Flags::from_text(&r.get::<_, String>(2)?),
        modseq: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
        internaldate: InternalDate {
            unix: r.get(4)?,
            offset_min: r.get(5)?,
        },
        size: r.get::<_, i64>(6)? as u64,
        gone_at: r.get(7)?,
        archived_at: r.get(8)?,
    })
}

fn blob_id(v: Vec<u8>) -> BlobId {
    let mut id = [0u8; 32];
    let n = v.len().min(32);
    id[..n].copy_from_slice(&v[..n]);
    BlobId(id)
}

fn ensure_account(conn: &Connection, name: &str, kind: &str) -> Result<i64> {
    if let Some(id) = conn
        .query_row("SELECT id FROM accounts WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?
    {
        return Ok(id);
    }
    conn.execute(
        "INSERT INTO accounts (name, kind, created_at) VALUES (?1, ?2, strftime('%s','now'))",
        params![name, kind],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The key of the blob with this id; a message whose bytes are not in the
/// store (their record was lost to damage) gets a row without a record, with
/// a negative key, which a fresh copy of the bytes takes over.
fn blob_key_or_placeholder(tx: &Transaction<'_>, id: &BlobId, size: u64) -> Result<i64> {
    if let Some(key) = tx
        .prepare_cached("SELECT key FROM blobs WHERE id = ?1")?
        .query_row([&id.0[..]], |r| r.get(0))
        .optional()?
    {
        return Ok(key);
    }
    let key: i64 = tx.query_row(
        "SELECT min(0, coalesce(min(key), 0)) - 1 FROM blobs WHERE key < 0",
        [],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO blobs (key, id, length, raw_size, dict_id) VALUES (?1, ?2, 0, ?3, 0)",
        params![key, &id.0[..], size as i64],
    )?;
    Ok(key)
}

/// Finds or creates the mailbox row for (account, raw, uidvalidity).
fn ensure_mailbox(tx: &Transaction<'_>, account: &str, raw: &str, uidvalidity: u32) -> Result<i64> {
    let account_id = ensure_account(tx, account, "imap")?;
    if let Some(id) = tx
        .query_row(
            "SELECT id FROM mailboxes WHERE account_id = ?1 AND raw_name = ?2 AND uidvalidity = ?3",
            params![account_id, raw, uidvalidity],
            |r| r.get(0),
        )
        .optional()?
    {
        return Ok(id);
    }
    // Made by a message record whose folder record is missing (damaged):
    // the current generation only if the folder has no other.
    tx.execute(
        "INSERT INTO mailboxes (account_id, raw_name, name, uidvalidity, is_current)
         VALUES (?1, ?2, ?2, ?3, NOT EXISTS (
             SELECT 1 FROM mailboxes WHERE account_id = ?1 AND raw_name = ?2 AND is_current = 1))",
        params![account_id, raw, uidvalidity],
    )?;
    Ok(tx.last_insert_rowid())
}

/// `any_damaged`: some stored bytes are noted damaged or lost, so a blob
/// record may be the fresh copy that heals them.
fn apply_one(tx: &Transaction<'_>, rec: &Located, any_damaged: bool) -> Result<()> {
    match &rec.record {
        Record::Blob {
            id,
            raw_size,
            dict_id,
        } => {
            let key = blob_key(rec.pack, rec.offset);
            let held: Option<(i64, i64)> = tx
                .prepare_cached("SELECT key, length FROM blobs WHERE id = ?1")?
                .query_row([&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let damaged = any_damaged
                && tx
                    .prepare_cached("DELETE FROM damaged_blobs WHERE blob_id = ?1")?
                    .execute([&id.0[..]])?
                    > 0;
            match held {
                None => {
                    tx.prepare_cached(
                        "INSERT INTO blobs (key, id, length, raw_size, dict_id)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        key,
                        &id.0[..],
                        rec.length as i64,
                        *raw_size as i64,
                        dict_id
                    ])?;
                }
                // Bytes that were lost (a row without a record) or found
                // damaged: this fresh copy takes their place, and the
                // messages that list them follow.
                Some((old, length)) if length == 0 || damaged => {
                    tx.prepare_cached(
                        "UPDATE blobs SET key = ?2, length = ?3, raw_size = ?4, dict_id = ?5
                         WHERE key = ?1",
                    )?
                    .execute(params![
                        old,
                        key,
                        rec.length as i64,
                        *raw_size as i64,
                        dict_id
                    ])?;
                    // Under its new key, search indexes it again.
                    tx.prepare_cached("UPDATE messages SET blob_key = ?2 WHERE blob_key = ?1")?
                        .execute(params![old, key])?;
                }
                // A blob stored twice (possible only after a crash between
                // append and commit) keeps its first location.
                Some(_) => {}
            }
        }
        Record::Dict { id } => {
            let args = params![id, rec.pack, rec.offset as i64, rec.length as i64];
            tx.execute(
                "INSERT OR IGNORE INTO dictionaries (id, pack, offset, length) VALUES (?1, ?2, ?3, ?4)",
                args,
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO dictionary_copies (id, pack, offset, length)
                 VALUES (?1, ?2, ?3, ?4)",
                args,
            )?;
        }
        Record::Mailbox(m) => apply_mailbox(tx, m)?,
        Record::Ref(r) => apply_ref(tx, r)?,
    }
    Ok(())
}

fn apply_mailbox(tx: &Transaction<'_>, m: &MailboxRecord) -> Result<()> {
    let account_id = ensure_account(tx, &m.account, &m.account_kind)?;
    let id = ensure_mailbox(tx, &m.account, &m.mailbox, m.uidvalidity)?;
    tx.execute(
        "UPDATE mailboxes SET name = ?2, delimiter = ?3, special_use = ?4,
                uidnext = coalesce(?5, uidnext), highestmodseq = coalesce(?6, highestmodseq),
                server_count = coalesce(?7, server_count),
                last_sync_at = CASE WHEN ?5 IS NOT NULL THEN ?8 ELSE last_sync_at END,
                is_current = CASE WHEN ?9 THEN 1 ELSE is_current END,
                gone_at = CASE WHEN ?9 THEN NULL ELSE coalesce(gone_at, ?8) END
         WHERE id = ?1",
        params![
            id,
            m.name,
            m.delimiter,
            m.special_use,
            m.uidnext,
            m.highestmodseq.map(|v| v as i64),
            m.server_count,
            m.at,
            !m.gone,
        ],
    )?;
    if !m.gone {
        // Only one generation of a folder is the current one.
        tx.execute(
            "UPDATE mailboxes SET is_current = 0
             WHERE account_id = ?1 AND raw_name = ?2 AND id != ?3",
            params![account_id, m.mailbox, id],
        )?;
    }
    Ok(())
}

fn apply_ref(tx: &Transaction<'_>, r: &RefRecord) -> Result<()> {
    let mailbox_id = ensure_mailbox(tx, &r.account, &r.mailbox, r.uidvalidity)?;
    match &r.event {
        RefEvent::Seen {
            blob,
            internaldate,
            date_offset,
            size,
            flags,
            modseq,
        } => {
            let key = blob_key_or_placeholder(tx, blob, *size)?;
            tx.prepare_cached(
                "INSERT INTO messages (mailbox_id, uid, blob_key, internaldate, date_offset, size,
                                       flags, modseq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(mailbox_id, uid) DO UPDATE SET
                    flags = excluded.flags, modseq = excluded.modseq, gone_at = NULL,
                    blob_key = CASE
                        WHEN EXISTS (SELECT 1 FROM blobs b WHERE b.key = messages.blob_key
                                     AND b.length > 0 AND NOT EXISTS
                                        (SELECT 1 FROM damaged_blobs d WHERE d.blob_id = b.id))
                        THEN messages.blob_key ELSE excluded.blob_key END",
            )?
            .execute(params![
                mailbox_id,
                r.uid,
                key,
                internaldate,
                date_offset,
                *size as i64,
                flags,
                modseq.map(|v| v as i64),
            ])?;
        }
        RefEvent::Flags { flags, modseq } => {
            tx.execute(
                "UPDATE messages SET flags = ?3, modseq = ?4 WHERE mailbox_id = ?1 AND uid = ?2",
                params![mailbox_id, r.uid, flags, modseq.map(|v| v as i64)],
            )?;
        }
        RefEvent::Gone => {
            tx.execute(
                "UPDATE messages SET gone_at = coalesce(gone_at, ?3) WHERE mailbox_id = ?1 AND uid = ?2",
                params![mailbox_id, r.uid, r.at],
            )?;
        }
        RefEvent::Archived => {
            tx.execute(
                "UPDATE messages SET archived_at = coalesce(archived_at, ?3) WHERE mailbox_id = ?1 AND uid = ?2",
                params![mailbox_id, r.uid, r.at],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(record: Record) -> Located {
        Located {
            pack: 1,
            offset: 16,
            length: 100,
            record,
        }
    }

    fn mailbox(raw: &str, uidvalidity: u32, gone: bool) -> Record {
        Record::Mailbox(MailboxRecord {
            account: "work".into(),
            account_kind: "imap".into(),
            mailbox: raw.into(),
            name: raw.into(),
            delimiter: Some("/".into()),
            special_use: None,
            uidvalidity,
            uidnext: Some(5),
            highestmodseq: None,
            server_count: Some(1),
            gone,
            at: 10,
        })
    }

    fn seen(uid: u32, blob: BlobId, uidvalidity: u32) -> Record {
        Record::Ref(RefRecord {
            account: "work".into(),
            mailbox: "INBOX".into(),
            uidvalidity,
            uid,
            at: 11,
            event: RefEvent::Seen {
                blob,
                internaldate: 1000,
                date_offset: 540,
                size: 3,
                flags: "\\Seen".into(),
                modseq: None,
            },
        })
    }

    #[test]
    fn apply_builds_mailboxes_and_messages_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = Index::open(&dir.path().join("index.sqlite")).unwrap();
        let b = BlobId::of(b"abc");
        let recs = vec![
            loc(Record::Blob {
                id: b,
                raw_size: 3,
                dict_id: 0,
            }),
            loc(mailbox("INBOX", 7, false)),
            loc(seen(1, b, 7)),
        ];
        ix.apply(&recs, 1, 200).unwrap();
        ix.apply(&recs, 1, 200).unwrap();
        let mb = ix.current_mailbox("work", "INBOX").unwrap().unwrap();
        assert_eq!(mb.uidvalidity, 7);
        let msgs = ix.messages(mb.id).unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[&1].internaldate.offset_min, 540);
        assert_eq!(ix.pack_indexed_len(1).unwrap(), Some(200));

        // A new generation becomes the current one; the old rows stay.
        ix.apply(
            &[loc(mailbox("INBOX", 8, false)), loc(seen(1, b, 8))],
            1,
            300,
        )
        .unwrap();
        let mb8 = ix.current_mailbox("work", "INBOX").unwrap().unwrap();
        assert_eq!(mb8.uidvalidity, 8);
        assert_eq!(ix.mailboxes("work").unwrap().len(), 2);
        assert_eq!(ix.totals().unwrap().messages, 2);
        assert_eq!(ix.totals().unwrap().blobs, 1);
    }

    #[test]
    fn gone_and_flags_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = Index::open(&dir.path().join("index.sqlite")).unwrap();
        let b = BlobId::of(b"abc");
        let flags = Record::Ref(RefRecord {
            account: "work".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 7,
            uid: 1,
            at: 12,
            event: RefEvent::Flags {
                flags: "\\Flagged \\Seen".into(),
                modseq: Some(4),
            },
        });
        let gone = Record::Ref(RefRecord {
            account: "work".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 7,
            uid: 1,
            at: 13,
            event: RefEvent::Gone,
        });
        ix.apply(
            &[
                loc(Record::Blob {
                    id: b,
                    raw_size: 3,
                    dict_id: 0,
                }),
                loc(mailbox("INBOX", 7, false)),
                loc(seen(1, b, 7)),
                loc(flags),
                loc(gone),
            ],
            1,
            10,
        )
        .unwrap();
        let mb = ix.current_mailbox("work", "INBOX").unwrap().unwrap();
        let m = &ix.messages(mb.id).unwrap()[&1];
        assert_eq!(m.flags.to_text(), "\\Flagged \\Seen");
        assert_eq!(m.gone_at, Some(13));
        let stats = ix.mailbox_stats(mb.id).unwrap();
        assert_eq!((stats.live, stats.gone), (0, 1));
    }

    #[test]
    fn live_counts_follow_every_event_and_are_built_for_old_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        let mut ix = Index::open(&path).unwrap();
        let b = BlobId::of(b"abc");
        let event = |uid: u32, at: i64, event: RefEvent| {
            loc(Record::Ref(RefRecord {
                account: "work".into(),
                mailbox: "INBOX".into(),
                uidvalidity: 7,
                uid,
                at,
                event,
            }))
        };
        let check = |ix: &Index, want: u64| {
            let mb = ix.current_mailbox("work", "INBOX").unwrap().unwrap();
            assert_eq!(ix.mailbox_stats(mb.id).unwrap().live, want);
            assert_eq!(ix.live_count(mb.id).unwrap(), want);
        };
        let mut recs = vec![
            loc(Record::Blob {
                id: b,
                raw_size: 3,
                dict_id: 0,
            }),
            loc(mailbox("INBOX", 7, false)),
        ];
        recs.extend((1..=5).map(|uid| loc(seen(uid, b, 7))));
        ix.apply(&recs, 1, 100).unwrap();
        check(&ix, 5);
        // Seen again (an upsert), flags: no change.
        ix.apply(
            &[
                loc(seen(2, b, 7)),
                event(
                    3,
                    12,
                    RefEvent::Flags {
                        flags: "\\Seen".into(),
                        modseq: Some(3),
                    },
                ),
            ],
            1,
            110,
        )
        .unwrap();
        check(&ix, 5);
        // Gone twice, archived, archived after gone.
        ix.apply(
            &[
                event(1, 13, RefEvent::Gone),
                event(1, 14, RefEvent::Gone),
                event(2, 15, RefEvent::Archived),
                event(3, 16, RefEvent::Gone),
                event(3, 17, RefEvent::Archived),
            ],
            1,
            120,
        )
        .unwrap();
        check(&ix, 2);
        // A gone message seen again is live again.
        ix.apply(&[loc(seen(1, b, 7))], 1, 130).unwrap();
        check(&ix, 3);
        // Another folder generation counts on its own.
        ix.apply(
            &[loc(mailbox("INBOX", 8, false)), loc(seen(1, b, 8))],
            1,
            140,
        )
        .unwrap();
        check(&ix, 1);
        drop(ix);

        // An index from before the counts: they are built from its rows.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TRIGGER messages_live_insert; DROP TRIGGER messages_live_update;
             DROP TRIGGER messages_live_delete; DROP TABLE mailbox_live;
             PRAGMA user_version = 12;",
        )
        .unwrap();
        drop(conn);
        let ix = Index::open(&path).unwrap();
        check(&ix, 1);
        let old = ix
            .mailboxes("work")
            .unwrap()
            .into_iter()
            .find(|m| m.uidvalidity == 7)
            .unwrap();
        assert_eq!(ix.live_count(old.id).unwrap(), 3);
        assert_eq!(ix.mailbox_stats(old.id).unwrap().live, 3);
    }
}

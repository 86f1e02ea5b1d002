//! What `repair` carries from the old index file into the one it builds
//! from the packs: the tables that are not in the packs (restore map,
//! archive intents, quota, run history, last sync times). The search index
//! is a file of its own, keyed by what a rebuild does not change: it stays.
//! Each is copied on its own, so that a damaged one costs only itself.

use std::path::Path;

use super::{Index, Result};

/// One table that was, or could not be, carried over.
#[derive(Clone, Debug)]
pub struct Carried {
    pub what: &'static str,
    /// Rows copied, or why it could not be read.
    pub result: std::result::Result<u64, String>,
}

/// (what, statements). Columns are named: the old file may be of an older
/// schema (any since migration 0004); where a table changed since, the
/// statement for the older form is in [`OLDER_FORMS`].
const TABLES: &[(&str, &str)] = &[
    (
        "accounts",
        "INSERT OR IGNORE INTO main.accounts (name, kind, created_at)
         SELECT name, kind, created_at FROM old.accounts",
    ),
    (
        "restore map",
        "INSERT OR IGNORE INTO main.restored
            (target_account, target_mailbox, blob_id, copy, uidvalidity, uid, flags, restored_at)
         SELECT target_account, target_mailbox, blob_id, copy, uidvalidity, uid, flags, restored_at
         FROM old.restored",
    ),
    (
        "archive intents",
        "INSERT OR IGNORE INTO main.archive_intents
            (account, raw_name, uidvalidity, uid, blob_id, size, created_at)
         SELECT account, raw_name, uidvalidity, uid, blob_id, size, created_at
         FROM old.archive_intents",
    ),
    (
        "server message ids",
        "INSERT OR IGNORE INTO main.server_ids (account, server_id, blob_id)
         SELECT account, server_id, blob_id FROM old.server_ids",
    ),
    (
        "quota seen",
        "INSERT OR IGNORE INTO main.quota_seen (account, root, resource, usage, quota_limit, seen_at)
         SELECT account, root, resource, usage, quota_limit, seen_at FROM old.quota_seen",
    ),
    (
        "run history",
        "INSERT INTO main.runs (account_id, command, started_at, finished_at, ok, summary)
         SELECT na.id, r.command, r.started_at, r.finished_at, r.ok, r.summary
         FROM old.runs r JOIN old.accounts oa ON oa.id = r.account_id
         JOIN main.accounts na ON na.name = oa.name ORDER BY r.id",
    ),
    (
        "folder errors",
        "INSERT OR IGNORE INTO main.folder_errors (account_id, raw_name, at, message)
         SELECT na.id, e.raw_name, e.at, e.message
         FROM old.folder_errors e JOIN old.accounts oa ON oa.id = e.account_id
         JOIN main.accounts na ON na.name = oa.name",
    ),
    (
        "last sync times",
        "UPDATE main.mailboxes SET last_sync_at = max(coalesce(last_sync_at, 0), coalesce((
            SELECT max(ob.last_sync_at) FROM old.mailboxes ob
            JOIN old.accounts oa ON oa.id = ob.account_id
            JOIN main.accounts na ON na.name = oa.name
            WHERE na.id = main.mailboxes.account_id AND ob.raw_name = main.mailboxes.raw_name
              AND ob.uidvalidity = main.mailboxes.uidvalidity), 0))
         WHERE EXISTS (SELECT 1 FROM old.mailboxes)",
    ),
];

/// What to run instead when a table's statement fails on an old file of an
/// older schema.
const OLDER_FORMS: &[(&str, &str)] = &[
    (
        // Before migration 0009: one copy of each message, flags not known.
        "restore map",
        "INSERT OR IGNORE INTO main.restored
        (target_account, target_mailbox, blob_id, copy, uidvalidity, uid, flags, restored_at)
     SELECT target_account, target_mailbox, blob_id, 0, uidvalidity, uid, NULL, restored_at
     FROM old.restored",
    ),
    (
        // Before migration 0011 there were none: nothing to carry.
        "server message ids",
        "DELETE FROM main.server_ids WHERE 0",
    ),
];

/// A path as the path part of an SQLite `file:` URI.
fn uri_path(p: &Path) -> String {
    let mut out = String::new();
    for c in p.display().to_string().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

impl Index {
    /// Copies the tables that are not in the packs from the index file at
    /// `old` (read-only) into this one, each in its own transaction.
    pub fn carry_over_from(&self, old: &Path) -> Vec<Carried> {
        let uri = format!("file:{}?mode=ro", uri_path(old));
        if let Err(e) = self.conn.execute("ATTACH DATABASE ?1 AS old", [&uri]) {
            return vec![Carried {
                what: "everything",
                result: Err(e.to_string()),
            }];
        }
        let mut out = Vec::new();
        let run = |sql: &str| -> rusqlite::Result<u64> {
            let tx = rusqlite::Transaction::new_unchecked(
                &self.conn,
                rusqlite::TransactionBehavior::Immediate,
            )?;
            let before = tx.total_changes();
            tx.execute_batch(sql)?;
            let n = tx.total_changes() - before;
            tx.commit()?;
            Ok(n)
        };
        for (what, sql) in TABLES {
            let mut result = run(sql);
            if result.is_err() {
                for (_, older) in OLDER_FORMS.iter().filter(|(w, _)| w == what) {
                    if let Ok(n) = run(older) {
                        result = Ok(n);
                        break;
                    }
                }
            }
            out.push(Carried {
                what,
                result: result.map_err(|e| e.to_string()),
            });
        }
        let _ = self.conn.execute("DETACH DATABASE old", []);
        out
    }

    /// Writes everything to the main file and leaves no write-ahead log, so
    /// that the file can be renamed into place alone.
    pub fn checkpoint_and_close(self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.conn.pragma_update(None, "journal_mode", "DELETE")?;
        self.conn.close().map_err(|(_, e)| e)?;
        Ok(())
    }
}

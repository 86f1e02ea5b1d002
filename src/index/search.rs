//! The search index, `<store>/search.sqlite` (`migrations/search/`): one
//! row per stored message in `docs`, its header fields and its body in two
//! contentless FTS5 tables, keyed by the blob's key in `index.sqlite` (which
//! is attached, read-only, as `ix`, for what the catalogue knows: folders,
//! dates, which blobs are stored).
//!
//! A file of its own, with a connection of its own: indexing can run on
//! another thread while a backup writes the catalogue, and `repair` (which
//! rebuilds index.sqlite with the same keys) leaves it as it is. Like the
//! rest of the index, it is a cache: `mailkeep reindex` empties and fills it.
//! Filling it is `ops::search`'s job (it reads and parses the messages);
//! here are the rows and the SQL.

use std::path::{Path, PathBuf};

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use rusqlite_migration::{Migrations, M};

use super::{blob_id, Index, IndexError, Result};
use crate::model::BlobId;
use crate::search::tokens::{tokens, Token};

/// The file, in the store's root.
pub const SEARCH_FILE: &str = "search.sqlite";

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/search/0001_search.sql")),
        M::up(include_str!("../../migrations/search/0002_sweep.sql")),
    ])
}

/// How many migrations the search index has (`migrations/search/`).
const SEARCH_MIGRATIONS: i64 = 2;

/// A text column of the search index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchColumn {
    Subject,
    From,
    To,
    Cc,
    Body,
    Attachments,
}

impl SearchColumn {
    /// The column's name in the `head` table (`None`: the body).
    fn head_column(self) -> Option<&'static str> {
        Some(match self {
            SearchColumn::Subject => "subject",
            SearchColumn::From => "sender",
            SearchColumn::To => "recipients",
            SearchColumn::Cc => "cc",
            SearchColumn::Attachments => "attachments",
            SearchColumn::Body => return None,
        })
    }
}

/// One term of a query: text that must occur in `column` (in any text
/// column when `None`), folded by `search::fold::index_form` as the index
/// is (the query parser does it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchTerm {
    pub column: Option<SearchColumn>,
    pub text: String,
}

impl SearchTerm {
    /// Whether the index alone says which messages hold the term: one word
    /// (matched as a prefix of words) or one CJK pair. Any other term (a
    /// phrase, a longer CJK piece, an address) is found by all its tokens,
    /// and each candidate must be checked against the message's text.
    pub fn exact_in_index(&self) -> bool {
        match tokens(&self.text).as_slice() {
            [Token::Word(w)] => *w == self.text,
            [Token::Cjk(p)] => *p == self.text,
            _ => false,
        }
    }

    /// The FTS5 query for the term's tokens: every token, a word as a
    /// prefix; `None` when the term has none (only punctuation).
    fn fts(&self) -> Option<String> {
        let toks = tokens(&self.text);
        if toks.is_empty() {
            return None;
        }
        let parts: Vec<String> = toks
            .iter()
            .map(|t| {
                let q = format!("\"{}\"", t.text().replace('"', "\"\""));
                match t {
                    // A lone CJK character also begins the pairs it is in.
                    Token::Word(_) => format!("{q} *"),
                    Token::Cjk(c) if c.chars().count() == 1 => format!("{q} *"),
                    Token::Cjk(_) => q,
                }
            })
            .collect();
        Some(parts.join(" AND "))
    }
}

/// What to look for; every condition must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchFilter {
    pub terms: Vec<SearchTerm>,
    /// Only messages in these mailbox generations; `None`: anywhere.
    pub mailbox_ids: Option<Vec<i64>>,
    /// The message's date is at or after this (unix seconds).
    pub since: Option<i64>,
    /// The message's date is before this (unix seconds).
    pub before: Option<i64>,
    pub has_attachment: bool,
}

/// A message's decoded text and facts, as the indexer extracted them; the
/// text fields folded for matching and cut into tokens (`index_text`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchDoc {
    pub key: i64,
    /// 1: MIME-parsed; 0: only a raw header scan worked; -1: unreadable.
    pub state: i8,
    pub header_date: Option<i64>,
    pub has_attachment: bool,
    /// The subject as written (white space made single), for results.
    pub shown_subject: String,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub body: String,
    pub attachments: String,
}

impl SearchDoc {
    /// A message with no text at all, `state` as given.
    pub fn empty(key: i64, state: i8) -> SearchDoc {
        SearchDoc {
            key,
            state,
            header_date: None,
            has_attachment: false,
            shown_subject: String::new(),
            subject: String::new(),
            from: String::new(),
            to: String::new(),
            cc: String::new(),
            body: String::new(),
            attachments: String::new(),
        }
    }
}

/// A message that matches the index's part of a query, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub key: i64,
    pub blob: BlobId,
    pub date: i64,
    pub has_attachment: bool,
    pub subject: String,
}

/// Where a message is: one folder occurrence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPlace {
    pub account: String,
    pub folder: String,
    pub mailbox_id: i64,
    pub uidvalidity: u32,
    pub uid: u32,
    pub internaldate: i64,
    pub size: u64,
    pub gone_at: Option<i64>,
    pub archived_at: Option<i64>,
}

/// One message found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchHit {
    pub blob: BlobId,
    /// INTERNALDATE (earliest of its occurrences), else the Date: header.
    pub date: i64,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub has_attachment: bool,
    pub message_id: Option<String>,
    /// The occurrences within the filter's mailboxes, oldest first.
    pub places: Vec<SearchPlace>,
}

pub struct SearchIndex {
    conn: Connection,
}

fn open_error(path: &Path) -> impl FnOnce(rusqlite::Error) -> IndexError + '_ {
    move |source| IndexError::Open {
        path: path.display().to_string(),
        source,
    }
}

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

/// See [`SearchIndex::tune`].
const FTS_HASH_BYTES: i64 = 4 * 1024 * 1024;
const FTS_AUTOMERGE: i64 = 8;

impl SearchIndex {
    /// Opens (creating if needed) the search index of the store at `root`,
    /// to fill it.
    pub fn open(root: &Path) -> Result<SearchIndex> {
        let path = root.join(SEARCH_FILE);
        let mut conn = Connection::open(&path).map_err(open_error(&path))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // A cache: a crash may cost the last transactions, never its shape.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        migrations()
            .to_latest(&mut conn)
            .map_err(|source| IndexError::Migrate {
                path: path.display().to_string(),
                source,
            })?;
        restrict(&path);
        let ix = SearchIndex::attach(conn, root)?;
        ix.tune()?;
        Ok(ix)
    }

    /// FTS5's settings for filling the index (kept in its own tables, so
    /// set again after `clear`): pending text is held in memory up to
    /// [`FTS_HASH_BYTES`] per table before it becomes a segment, and
    /// segments are merged [`FTS_AUTOMERGE`] at a time. With SQLite's
    /// defaults (1 MiB, 4) indexing 100,000 messages took 71 s, most of it
    /// merging; with these 46 s (docs/benchmarks.md).
    fn tune(&self) -> Result<()> {
        for table in ["fts_head", "fts_body"] {
            for (key, value) in [("hashsize", FTS_HASH_BYTES), ("automerge", FTS_AUTOMERGE)] {
                let now: Option<i64> = self
                    .conn
                    .query_row(
                        &format!("SELECT v FROM main.{table}_config WHERE k = ?1"),
                        [key],
                        |r| r.get(0),
                    )
                    .optional()?;
                if now != Some(value) {
                    self.conn.execute(
                        &format!("INSERT INTO main.{table} ({table}, rank) VALUES (?1, ?2)"),
                        params![key, value],
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Opens the search index to query it; `None` when the store has none.
    pub fn open_read_only(root: &Path) -> Result<Option<SearchIndex>> {
        let path = root.join(SEARCH_FILE);
        if !path.exists() {
            return Ok(None);
        }
        if Self::is_behind(&path)? {
            // Made by an older release: upgraded as a writer would.
            drop(SearchIndex::open(root)?);
        }
        let conn = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
                | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(open_error(&path))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        SearchIndex::attach(conn, root).map(Some)
    }

    fn is_behind(path: &Path) -> Result<bool> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(open_error(path))?;
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        Ok(v < SEARCH_MIGRATIONS)
    }

    /// The catalogue, read-only, as `ix`.
    fn attach(conn: Connection, root: &Path) -> Result<SearchIndex> {
        let ix = format!("file:{}?mode=ro", uri_path(&root.join("index.sqlite")));
        conn.execute("ATTACH DATABASE ?1 AS ix", [&ix])?;
        Ok(SearchIndex { conn })
    }

    /// Stored messages not indexed yet, in key order after `after`.
    pub fn pending(&self, after: i64, limit: usize) -> Result<Vec<(i64, BlobId)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT b.key, b.id FROM ix.blobs b
             WHERE b.key > ?1 AND b.length > 0
               AND NOT EXISTS (SELECT 1 FROM main.docs d WHERE d.key = b.key)
             ORDER BY b.key LIMIT ?2",
        )?;
        let rows = st.query_map(params![after, limit as i64], |r| {
            Ok((r.get(0)?, blob_id(r.get::<_, Vec<u8>>(1)?)))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many stored messages are not in the search index.
    pub fn pending_count(&self) -> Result<u64> {
        self.pending_count_after(i64::MIN)
    }

    /// How many stored messages with a key past `after` are not in the
    /// search index (reads only those: keys are the primary key).
    pub fn pending_count_after(&self, after: i64) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM ix.blobs b
             WHERE b.key > ?1 AND b.length > 0
               AND NOT EXISTS (SELECT 1 FROM main.docs d WHERE d.key = b.key)",
            [after],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// The largest key of a stored message.
    pub fn max_stored_key(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT max(key) FROM ix.blobs WHERE length > 0", [], |r| {
                r.get(0)
            })?)
    }

    /// Notes that every message stored under a key up to `upto` is indexed.
    /// Writes nothing when that is already noted (a backup with nothing new
    /// then leaves the file as it was: no commit, no checkpoint on close).
    pub fn record_sweep(&self, upto: i64) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO main.sweep (id, upto, docs_count)
             SELECT 1, ?1, n FROM (SELECT count(*) AS n FROM main.docs)
             WHERE NOT EXISTS (SELECT 1 FROM main.sweep
                               WHERE id = 1 AND upto = ?1 AND docs_count = n)",
            [upto],
        )?;
        Ok(())
    }

    /// Up to which key every stored message is known to be indexed: the
    /// indexer's last complete pass, while the search index holds the rows
    /// it held then (none removed, none added since).
    pub fn swept_upto(&self) -> Result<Option<i64>> {
        let sweep: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT upto, docs_count FROM main.sweep WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((upto, count)) = sweep else {
            return Ok(None);
        };
        let now: i64 = self
            .conn
            .query_row("SELECT count(*) FROM main.docs", [], |r| r.get(0))?;
        Ok((now == count).then_some(upto))
    }

    /// [`pending_count`](Self::pending_count), reading only the messages
    /// stored past [`swept_upto`](Self::swept_upto) when it is known
    /// (counting every stored message took 50 ms of a 100 ms search at
    /// 100,000 messages).
    pub fn not_indexed_count(&self) -> Result<u64> {
        match self.swept_upto()? {
            Some(upto) => self.pending_count_after(upto),
            None => self.pending_count(),
        }
    }

    /// Messages whose bytes could not be read when they were indexed (and
    /// that are still stored under that key).
    pub fn unreadable_count(&self) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM main.docs d JOIN ix.blobs b ON b.key = d.key
             WHERE d.state < 0 AND b.length > 0",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Adds documents in one transaction; one already indexed is left as it
    /// is. Returns how many were added.
    pub fn add(&self, docs: &[SearchDoc]) -> Result<u64> {
        let tx = super::write_tx(&self.conn)?;
        let mut added = 0;
        for d in docs {
            let n = tx
                .prepare_cached(
                    "INSERT INTO main.docs (key, state, date, attach, subject)
                     VALUES (?1, ?2, coalesce(
                        (SELECT min(m.internaldate) FROM ix.messages m
                         WHERE m.blob_key = ?1 AND m.internaldate > 0), ?3, 0), ?4, ?5)
                     ON CONFLICT(key) DO NOTHING",
                )?
                .execute(params![
                    d.key,
                    d.state,
                    d.header_date,
                    d.has_attachment,
                    d.shown_subject
                ])?;
            if n == 0 {
                continue;
            }
            if !(d.subject.is_empty()
                && d.from.is_empty()
                && d.to.is_empty()
                && d.cc.is_empty()
                && d.attachments.is_empty())
            {
                tx.prepare_cached(
                    "INSERT INTO main.fts_head (rowid, subject, sender, recipients, cc, attachments)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![d.key, d.subject, d.from, d.to, d.cc, d.attachments])?;
            }
            if !d.body.is_empty() {
                tx.prepare_cached("INSERT INTO main.fts_body (rowid, body) VALUES (?1, ?2)")?
                    .execute(params![d.key, d.body])?;
            }
            added += 1;
        }
        tx.commit()?;
        Ok(added)
    }

    /// Empties the search index (before `reindex` fills it again). The FTS
    /// tables are dropped and created again from their own definitions:
    /// deleting rows one by one would leave delete markers that take more
    /// room than the text, and would not mend a damaged full-text index.
    pub fn clear(&self) -> Result<()> {
        let tx = super::write_tx(&self.conn)?;
        for table in ["fts_head", "fts_body"] {
            let create: String = tx.query_row(
                "SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )?;
            tx.execute_batch(&format!("DROP TABLE main.{table};"))?;
            tx.execute_batch(&create)?;
        }
        tx.execute_batch("DELETE FROM main.docs; DELETE FROM main.sweep;")?;
        tx.commit()?;
        self.tune()
    }

    /// Merges the full-text index's segments (smaller and faster to
    /// query), and gives the room that leaves back to the file system.
    pub fn optimize(&self) -> Result<()> {
        for table in ["fts_head", "fts_body"] {
            self.conn.execute(
                &format!("INSERT INTO main.{table} ({table}) VALUES ('optimize')"),
                [],
            )?;
        }
        self.conn.execute_batch("VACUUM main")?;
        Ok(())
    }

    /// The messages that match the index's part of `f`, newest first: of
    /// the `limit` index rows from `offset` on, those whose message is
    /// still stored; and how many rows were read (fewer than `limit`: the
    /// last page). Only the page's rows are looked up in the store's index,
    /// not every match.
    pub fn candidates(
        &self,
        f: &SearchFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Candidate>, usize)> {
        let mut sql = String::from(
            "SELECT d.key, d.date, d.attach, d.subject FROM main.docs d WHERE d.state >= 0",
        );
        let mut args: Vec<Value> = Vec::new();
        for t in &f.terms {
            let Some(fts) = t.fts() else {
                // Nothing the index knows: no message can be found by it.
                return Ok((Vec::new(), 0));
            };
            match t.column.map(|c| (c, c.head_column())) {
                None => {
                    sql.push_str(
                        " AND (d.key IN (SELECT rowid FROM main.fts_head WHERE fts_head MATCH ?)
                               OR d.key IN (SELECT rowid FROM main.fts_body WHERE fts_body MATCH ?))",
                    );
                    args.push(Value::Text(fts.clone()));
                    args.push(Value::Text(fts));
                }
                Some((_, Some(col))) => {
                    sql.push_str(
                        " AND d.key IN (SELECT rowid FROM main.fts_head WHERE fts_head MATCH ?)",
                    );
                    args.push(Value::Text(format!("{col} : ({fts})")));
                }
                Some((_, None)) => {
                    sql.push_str(
                        " AND d.key IN (SELECT rowid FROM main.fts_body WHERE fts_body MATCH ?)",
                    );
                    args.push(Value::Text(fts));
                }
            }
        }
        if let Some(ids) = &f.mailbox_ids {
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM ix.messages m WHERE m.blob_key = d.key
                   AND m.mailbox_id IN (SELECT value FROM json_each(?)))",
            );
            args.push(Value::Text(
                serde_json::to_string(ids).expect("a list of integers serializes"),
            ));
        }
        if let Some(since) = f.since {
            sql.push_str(" AND d.date >= ?");
            args.push(Value::Integer(since));
        }
        if let Some(before) = f.before {
            sql.push_str(" AND d.date < ?");
            args.push(Value::Integer(before));
        }
        if f.has_attachment {
            sql.push_str(" AND d.attach = 1");
        }
        sql.push_str(" ORDER BY d.date DESC, d.key DESC LIMIT ? OFFSET ?");
        args.push(Value::Integer(limit as i64));
        args.push(Value::Integer(offset as i64));
        let sql = format!(
            "SELECT p.key, b.id, p.date, p.attach, p.subject, b.length
             FROM ({sql}) p LEFT JOIN ix.blobs b ON b.key = p.key
             ORDER BY p.date DESC, p.key DESC"
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map(params_from_iter(args), |r| {
            let stored = r.get::<_, Option<i64>>(5)?.is_some_and(|n| n > 0);
            Ok(stored.then(|| -> rusqlite::Result<Candidate> {
                Ok(Candidate {
                    key: r.get(0)?,
                    blob: blob_id(r.get::<_, Vec<u8>>(1)?),
                    date: r.get(2)?,
                    has_attachment: r.get(3)?,
                    subject: r.get(4)?,
                })
            }))
        })?;
        let mut read = 0;
        let mut out = Vec::new();
        for row in rows {
            read += 1;
            if let Some(c) = row? {
                out.push(c?);
            }
        }
        Ok((out, read))
    }

    /// The subject of a message as written, if the index has it.
    pub fn subject_of(&self, blob: &BlobId) -> Option<String> {
        self.conn
            .query_row(
                "SELECT d.subject FROM main.docs d JOIN ix.blobs b ON b.key = d.key
                 WHERE b.id = ?1",
                [&blob.0[..]],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .ok()
            .flatten()
            .filter(|s| !s.is_empty())
    }

    /// Where the file is (for messages).
    pub fn path(root: &Path) -> PathBuf {
        root.join(SEARCH_FILE)
    }
}

/// Owner-only permissions on the index file (best effort).
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o777 != 0o600 {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
}

const PLACE_SELECT: &str =
    "SELECT a.name, mb.name, mb.id, mb.uidvalidity, m.uid, m.internaldate, m.size,
            m.gone_at, m.archived_at
     FROM messages m JOIN blobs x ON x.key = m.blob_key JOIN mailboxes mb ON mb.id = m.mailbox_id
     JOIN accounts a ON a.id = mb.account_id";

impl Index {
    /// Every folder occurrence of a message, oldest first.
    pub fn places(&self, blob: &BlobId) -> Result<Vec<SearchPlace>> {
        let mut st = self.conn.prepare_cached(&format!(
            "{PLACE_SELECT} WHERE x.id = ?1 ORDER BY m.internaldate, m.mailbox_id, m.uid"
        ))?;
        let rows = st.query_map([&blob.0[..]], |r| {
            Ok(SearchPlace {
                account: r.get(0)?,
                folder: r.get(1)?,
                mailbox_id: r.get(2)?,
                uidvalidity: r.get(3)?,
                uid: r.get(4)?,
                internaldate: r.get(5)?,
                size: r.get::<_, i64>(6)? as u64,
                gone_at: r.get(7)?,
                archived_at: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stored messages whose id lies between `lo` and `hi` (inclusive), at
    /// most `limit`: the ids that start with a given prefix.
    pub fn blobs_between(&self, lo: &BlobId, hi: &BlobId, limit: usize) -> Result<Vec<BlobId>> {
        let mut st = self.conn.prepare(
            "SELECT id FROM blobs WHERE id BETWEEN ?1 AND ?2 AND length > 0 ORDER BY id LIMIT ?3",
        )?;
        let rows = st.query_map(params![&lo.0[..], &hi.0[..], limit as i64], |r| {
            Ok(blob_id(r.get::<_, Vec<u8>>(0)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(column: Option<SearchColumn>, text: &str) -> SearchTerm {
        SearchTerm {
            column,
            text: text.into(),
        }
    }

    #[test]
    fn which_terms_the_index_answers_alone() {
        assert!(term(None, "budget").exact_in_index());
        assert!(term(None, "見積").exact_in_index());
        assert!(!term(None, "見積書").exact_in_index());
        assert!(!term(None, "quarterly budget").exact_in_index());
        assert!(!term(None, "e-mail").exact_in_index());
        assert_eq!(
            term(None, "e-mail").fts().as_deref(),
            Some("\"e\" * AND \"mail\" *")
        );
        assert_eq!(
            term(None, "見積書").fts().as_deref(),
            Some("\"見積\" AND \"積書\"")
        );
        assert_eq!(term(None, "...").fts(), None);
    }
}

//! SQL of the search index (`migrations/0002_search.sql`,
//! `0006_search_fold.sql`): one row per stored message in `search_docs`
//! (with its subject and addresses as written, for the results) and, under
//! the same rowid, its decoded text folded for matching in the FTS5 table
//! `search_fts` (trigram tokenizer).
//!
//! Filling it is up to `ops::search`, which reads and parses the messages;
//! here are only the rows. Like everything in the index, it is a cache.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter};

use super::{blob_id, Index, Result};
use crate::model::BlobId;

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
    pub const ALL: [SearchColumn; 6] = [
        SearchColumn::Subject,
        SearchColumn::From,
        SearchColumn::To,
        SearchColumn::Cc,
        SearchColumn::Body,
        SearchColumn::Attachments,
    ];

    /// The column's name in `search_fts`.
    fn sql(self) -> &'static str {
        match self {
            SearchColumn::Subject => "subject",
            SearchColumn::From => "sender",
            SearchColumn::To => "recipients",
            SearchColumn::Cc => "cc",
            SearchColumn::Body => "body",
            SearchColumn::Attachments => "attachments",
        }
    }
}

/// One term of a query: a substring that must occur in `column` (in any
/// text column when `None`). The index holds text folded by
/// `search::fold::index_form`; the term must be folded the same way (the
/// query parser does it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchTerm {
    pub column: Option<SearchColumn>,
    pub text: String,
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
    pub limit: usize,
}

/// A message's decoded text and facts, as the indexer extracted them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchDoc {
    pub blob: BlobId,
    /// 1: MIME-parsed; 0: only a raw header scan worked; -1: unreadable.
    pub parsed: i8,
    pub header_date: Option<i64>,
    pub message_id: Option<String>,
    pub has_attachment: bool,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub body: String,
    pub attachments: String,
    /// Subject, From and To as written (white space made single), for the
    /// results; the fields above are folded for matching.
    pub shown_subject: String,
    pub shown_from: String,
    pub shown_to: String,
}

impl SearchDoc {
    /// A message with no text at all, `parsed` as given.
    pub fn empty(blob: BlobId, parsed: i8) -> SearchDoc {
        SearchDoc {
            blob,
            parsed,
            header_date: None,
            message_id: None,
            has_attachment: false,
            subject: String::new(),
            from: String::new(),
            to: String::new(),
            cc: String::new(),
            body: String::new(),
            attachments: String::new(),
            shown_subject: String::new(),
            shown_from: String::new(),
            shown_to: String::new(),
        }
    }
}

/// What search tables a store's index has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchState {
    /// As this mailkeep fills them.
    Ready,
    /// Made by an older mailkeep (unfolded text): to be rebuilt.
    Old,
    /// None yet.
    Missing,
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

/// The date a search sorts and filters by: INTERNALDATE, or the Date:
/// header when the INTERNALDATE is unknown (0).
const DATE_EXPR: &str =
    "CASE WHEN m.internaldate > 0 THEN m.internaldate ELSE coalesce(d.header_date, 0) END";

const PLACE_SELECT: &str =
    "SELECT a.name, mb.name, mb.id, mb.uidvalidity, m.uid, m.internaldate, m.size,
            m.gone_at, m.archived_at
     FROM messages m JOIN blobs x ON x.key = m.blob_key JOIN mailboxes mb ON mb.id = m.mailbox_id
     JOIN accounts a ON a.id = mb.account_id";

impl Index {
    /// Whether the store's index has the search tables as this mailkeep
    /// fills them (a store last written by an older mailkeep and opened
    /// read-only has none, or an index of unfolded text).
    pub fn search_state(&self) -> Result<SearchState> {
        let fts: i64 = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'search_fts'",
            [],
            |r| r.get(0),
        )?;
        if fts == 0 {
            return Ok(SearchState::Missing);
        }
        let folded: i64 = self.conn.query_row(
            "SELECT count(*) FROM pragma_table_info('search_docs') WHERE name = 'subject'",
            [],
            |r| r.get(0),
        )?;
        Ok(if folded > 0 {
            SearchState::Ready
        } else {
            SearchState::Old
        })
    }

    /// Up to `limit` stored messages not in the search index yet, in id
    /// order, after `after`.
    pub fn search_pending(&self, after: Option<&BlobId>, limit: usize) -> Result<Vec<BlobId>> {
        let after: &[u8] = after.map(|b| &b.0[..]).unwrap_or(&[]);
        let mut st = self.conn.prepare_cached(
            "SELECT b.id FROM blobs b
             WHERE b.id > ?1 AND b.length > 0
               AND NOT EXISTS (SELECT 1 FROM search_docs d WHERE d.blob_id = b.id)
             ORDER BY b.id LIMIT ?2",
        )?;
        let rows = st.query_map(params![after, limit as i64], |r| {
            Ok(blob_id(r.get::<_, Vec<u8>>(0)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many stored messages are not in the search index.
    pub fn search_pending_count(&self) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM blobs b
             WHERE b.length > 0 AND NOT EXISTS (SELECT 1 FROM search_docs d WHERE d.blob_id = b.id)",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Messages whose bytes could not be read when they were indexed.
    pub fn search_unreadable_count(&self) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM search_docs WHERE parsed < 0",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Adds documents in one transaction; one already indexed is left as it
    /// is. Returns how many were added.
    pub fn search_add(&self, docs: &[SearchDoc], at: i64) -> Result<u64> {
        // The store holds the only connection, behind `&mut Store` or a
        // mutex, so no other transaction can be open on it here.
        let tx = self.conn.unchecked_transaction()?;
        let mut added = 0;
        for d in docs {
            let n = tx.execute(
                "INSERT INTO search_docs (blob_id, parsed, header_date, message_id, has_attachment, indexed_at,
                                          subject, sender, recipients)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(blob_id) DO NOTHING",
                params![
                    &d.blob.0[..],
                    d.parsed,
                    d.header_date,
                    d.message_id,
                    d.has_attachment,
                    at,
                    d.shown_subject,
                    d.shown_from,
                    d.shown_to,
                ],
            )?;
            if n == 0 {
                continue;
            }
            let rowid = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO search_fts (rowid, subject, sender, recipients, cc, body, attachments)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![rowid, d.subject, d.from, d.to, d.cc, d.body, d.attachments],
            )?;
            added += 1;
        }
        tx.commit()?;
        Ok(added)
    }

    /// Empties the search index (before `reindex` fills it again). The FTS
    /// table is dropped and created again from its own definition (as the
    /// migrations left it): deleting its rows one by one would leave delete
    /// markers that take more room than the text, and would not mend a
    /// damaged full-text index.
    pub fn search_clear(&self) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        let create: String = tx.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'search_fts'",
            [],
            |r| r.get(0),
        )?;
        tx.execute_batch("DROP TABLE search_fts; DELETE FROM search_docs;")?;
        tx.execute_batch(&create)?;
        tx.commit()?;
        Ok(())
    }

    /// Merges the full-text index's segments: smaller and faster to query.
    pub fn search_optimize(&self) -> Result<()> {
        self.conn.execute(
            "INSERT INTO search_fts (search_fts) VALUES ('optimize')",
            [],
        )?;
        Ok(())
    }

    /// The newest `limit` messages matching `f` (one more when there are
    /// more, so the caller can tell), newest first.
    pub fn search(&self, f: &SearchFilter) -> Result<Vec<SearchHit>> {
        let mut sql = format!(
            "SELECT d.id, d.blob_id, min({DATE_EXPR}) AS date, d.has_attachment, d.message_id,
                    d.subject, d.sender, d.recipients
             FROM search_docs d JOIN blobs x ON x.id = d.blob_id
             JOIN messages m ON m.blob_key = x.key WHERE 1"
        );
        let mut args: Vec<Value> = Vec::new();
        let (fts, fts_args) = text_condition(&f.terms);
        if let Some(cond) = fts {
            sql.push_str(&format!(
                " AND d.id IN (SELECT rowid FROM search_fts WHERE {cond})"
            ));
            args.extend(fts_args);
        }
        let mailbox_json = f
            .mailbox_ids
            .as_ref()
            .map(|ids| serde_json::to_string(ids).expect("a list of integers serializes"));
        if let Some(json) = &mailbox_json {
            sql.push_str(" AND m.mailbox_id IN (SELECT value FROM json_each(?))");
            args.push(Value::Text(json.clone()));
        }
        if let Some(since) = f.since {
            sql.push_str(&format!(" AND {DATE_EXPR} >= ?"));
            args.push(Value::Integer(since));
        }
        if let Some(before) = f.before {
            sql.push_str(&format!(" AND {DATE_EXPR} < ?"));
            args.push(Value::Integer(before));
        }
        if f.has_attachment {
            sql.push_str(" AND d.has_attachment = 1");
        }
        sql.push_str(" GROUP BY d.id ORDER BY date DESC, d.id DESC LIMIT ?");
        args.push(Value::Integer(f.limit as i64 + 1));

        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map(params_from_iter(args), |r| {
            Ok((
                blob_id(r.get::<_, Vec<u8>>(1)?),
                r.get::<_, i64>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, Option<String>>(4)?,
                (r.get(5)?, r.get(6)?, r.get(7)?),
            ))
        })?;
        let found: Vec<_> = rows.collect::<rusqlite::Result<_>>()?;
        let mut hits = Vec::with_capacity(found.len());
        for (blob, date, has_attachment, message_id, (subject, from, to)) in found {
            let mut places = self.places(&blob)?;
            if let Some(ids) = &f.mailbox_ids {
                places.retain(|p| ids.contains(&p.mailbox_id));
            }
            hits.push(SearchHit {
                blob,
                date,
                subject,
                from,
                to,
                has_attachment,
                message_id,
                places,
            });
        }
        Ok(hits)
    }

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

/// The WHERE condition on `search_fts` for the text terms, and its
/// arguments: one FTS5 MATCH for the terms of three characters or more
/// (trigrams), `LIKE '%term%'` for shorter ones, which trigrams cannot find.
fn text_condition(terms: &[SearchTerm]) -> (Option<String>, Vec<Value>) {
    let mut matches = Vec::new();
    let mut conds = Vec::new();
    let mut args = Vec::new();
    for t in terms {
        if t.text.chars().count() >= 3 {
            let phrase = format!("\"{}\"", t.text.replace('"', "\"\""));
            matches.push(match t.column {
                Some(c) => format!("{} : {phrase}", c.sql()),
                None => phrase,
            });
        } else {
            let pattern = format!("%{}%", like_escape(&t.text));
            let cols: Vec<SearchColumn> = match t.column {
                Some(c) => vec![c],
                None => SearchColumn::ALL.to_vec(),
            };
            let ors: Vec<String> = cols
                .iter()
                .map(|c| format!("{} LIKE ? ESCAPE '\\'", c.sql()))
                .collect();
            for _ in &cols {
                args.push(Value::Text(pattern.clone()));
            }
            conds.push(format!("({})", ors.join(" OR ")));
        }
    }
    if !matches.is_empty() {
        conds.insert(0, "search_fts MATCH ?".to_string());
        args.insert(0, Value::Text(matches.join(" AND ")));
    }
    if conds.is_empty() {
        (None, args)
    } else {
        (Some(conds.join(" AND ")), args)
    }
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(bytes: &[u8], subject: &str, body: &str) -> SearchDoc {
        SearchDoc {
            subject: subject.to_lowercase(),
            shown_subject: subject.into(),
            from: "田中 太郎 <tanaka@example.jp>".into(),
            body: body.into(),
            ..SearchDoc::empty(BlobId::of(bytes), 1)
        }
    }

    fn term(column: Option<SearchColumn>, text: &str) -> SearchTerm {
        SearchTerm {
            column,
            text: text.into(),
        }
    }

    /// An index with two messages in INBOX of account `work`.
    fn index() -> (tempfile::TempDir, Index) {
        use crate::model::records::{Located, MailboxRecord, Record, RefEvent, RefRecord};
        let dir = tempfile::tempdir().unwrap();
        let mut ix = Index::open(&dir.path().join("index.sqlite")).unwrap();
        let mut recs = vec![Located {
            pack: 1,
            offset: 0,
            length: 1,
            record: Record::Mailbox(MailboxRecord {
                account: "work".into(),
                account_kind: "imap".into(),
                mailbox: "INBOX".into(),
                name: "INBOX".into(),
                delimiter: None,
                special_use: None,
                uidvalidity: 1,
                uidnext: None,
                highestmodseq: None,
                server_count: None,
                gone: false,
                at: 0,
            }),
        }];
        for (i, bytes) in [&b"one"[..], b"two"].iter().enumerate() {
            let blob = BlobId::of(bytes);
            recs.push(Located {
                pack: 1,
                offset: 16 + i as u64 * 100,
                length: 1,
                record: Record::Blob {
                    id: blob,
                    raw_size: 3,
                    dict_id: 0,
                },
            });
            recs.push(Located {
                pack: 1,
                offset: 0,
                length: 1,
                record: Record::Ref(RefRecord {
                    account: "work".into(),
                    mailbox: "INBOX".into(),
                    uidvalidity: 1,
                    uid: i as u32 + 1,
                    at: 0,
                    event: RefEvent::Seen {
                        blob,
                        internaldate: 1_600_000_000 + i as i64 * 86_400,
                        date_offset: 0,
                        size: 3,
                        flags: String::new(),
                        modseq: None,
                    },
                }),
            });
        }
        ix.apply(&recs, 1, 10).unwrap();
        (dir, ix)
    }

    #[test]
    fn an_index_made_before_folding_is_emptied_to_be_filled_again() {
        use rusqlite_migration::{Migrations, M};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        {
            // A store as the mailkeep before 0006 left it, with one message
            // indexed unfolded.
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            Migrations::new(vec![
                M::up(include_str!("../../migrations/0001_init.sql")),
                M::up(include_str!("../../migrations/0002_search.sql")),
                M::up(include_str!("../../migrations/0003_restore.sql")),
                M::up(include_str!("../../migrations/0004_archive.sql")),
            ])
            .to_latest(&mut conn)
            .unwrap();
            conn.execute_batch(
                "INSERT INTO search_docs (id, blob_id, parsed, has_attachment, indexed_at) VALUES (1, x'00', 1, 0, 0);
                 INSERT INTO search_fts (rowid, subject, sender, recipients, cc, body, attachments)
                 VALUES (1, 'ＡＢＣ', '', '', '', '', '');",
            )
            .unwrap();
        }
        let old = Index::open_read_only(&path).unwrap();
        assert_eq!(old.search_state().unwrap(), SearchState::Old);
        drop(old);
        let ix = Index::open(&path).unwrap();
        assert_eq!(ix.search_state().unwrap(), SearchState::Ready);
        let count = |table: &str| -> i64 {
            ix.conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count("search_docs"), 0, "to be indexed again");
        assert_eq!(count("search_fts"), 0);
        let fresh = tempfile::tempdir().unwrap();
        let missing = Index::open_read_only(&{
            let p = fresh.path().join("index.sqlite");
            rusqlite::Connection::open(&p).unwrap();
            p
        })
        .unwrap();
        assert_eq!(missing.search_state().unwrap(), SearchState::Missing);
    }

    #[test]
    fn pending_then_indexed_then_found_by_long_and_short_terms() {
        let (_dir, ix) = index();
        assert_eq!(ix.search_pending_count().unwrap(), 2);
        let docs = vec![
            doc(b"one", "見積書の送付", "お見積りをお送りします 100% done"),
            doc(b"two", "Invoice", "Please pay the invoice"),
        ];
        assert_eq!(ix.search_add(&docs, 1).unwrap(), 2);
        assert_eq!(ix.search_add(&docs, 1).unwrap(), 0, "added once only");
        assert_eq!(ix.search_pending_count().unwrap(), 0);
        assert!(ix.search_pending(None, 10).unwrap().is_empty());

        let find = |terms: Vec<SearchTerm>| -> Vec<String> {
            ix.search(&SearchFilter {
                terms,
                limit: 10,
                ..SearchFilter::default()
            })
            .unwrap()
            .into_iter()
            .map(|h| h.subject)
            .collect()
        };
        assert_eq!(find(vec![term(None, "見積書")]), ["見積書の送付"]);
        assert_eq!(find(vec![term(None, "見積")]), ["見積書の送付"]);
        assert_eq!(
            find(vec![term(Some(SearchColumn::Subject), "見積")]),
            ["見積書の送付"]
        );
        assert!(find(vec![term(Some(SearchColumn::Body), "送付")]).is_empty());
        assert_eq!(find(vec![term(None, "INVOICE")]), ["Invoice"]);
        assert_eq!(find(vec![term(None, "0%")]), ["見積書の送付"]);
        assert!(
            find(vec![term(None, "_")]).is_empty(),
            "LIKE wildcards are literal"
        );
        assert_eq!(
            find(vec![term(Some(SearchColumn::From), "田中")]),
            ["Invoice", "見積書の送付"],
            "newest first"
        );
        assert!(find(vec![term(None, "invoice"), term(None, "見積")]).is_empty());
        assert_eq!(find(vec![term(None, "\"pay\" the")]).len(), 0);
        assert_eq!(find(vec![term(None, "pay the")]), ["Invoice"]);

        let dated = ix
            .search(&SearchFilter {
                before: Some(1_600_000_000 + 86_400),
                limit: 10,
                ..SearchFilter::default()
            })
            .unwrap();
        assert_eq!(dated.len(), 1);
        assert_eq!(dated[0].places[0].folder, "INBOX");

        ix.search_clear().unwrap();
        assert_eq!(ix.search_pending_count().unwrap(), 2);
    }
}

//! Queries for `mailkeep import`: what an import folder already holds.

use rusqlite::{params, OptionalExtension};

use super::{ensure_account, Index, Result};
use crate::model::BlobId;

impl Index {
    /// Whether the folder generation (account, raw name, UIDVALIDITY) holds
    /// a message with these bytes (gone or archived ones included).
    pub fn mailbox_has_blob(
        &self,
        account: &str,
        raw: &str,
        uidvalidity: u32,
        blob: &BlobId,
    ) -> Result<bool> {
        // Look the blob up by `messages_by_blob` (a message has few rows);
        // the `+` keeps SQLite from scanning the whole folder by mailbox_id
        // instead, which made a big import quadratic.
        let mut st = self.conn.prepare_cached(
            "SELECT 1 FROM blobs x JOIN messages m ON m.blob_key = x.key
             WHERE x.id = ?1 AND +m.mailbox_id = (
                 SELECT b.id FROM mailboxes b JOIN accounts a ON a.id = b.account_id
                 WHERE a.name = ?2 AND b.raw_name = ?3 AND b.uidvalidity = ?4)
             LIMIT 1",
        )?;
        Ok(st
            .query_row(params![&blob.0[..], account, raw, uidvalidity], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The highest UID in a folder generation (0 when it is empty or unknown).
    pub fn mailbox_max_uid(&self, account: &str, raw: &str, uidvalidity: u32) -> Result<u32> {
        Ok(self.conn.query_row(
            "SELECT coalesce(max(m.uid), 0) FROM messages m
               JOIN mailboxes b ON b.id = m.mailbox_id
               JOIN accounts a ON a.id = b.account_id
             WHERE a.name = ?1 AND b.raw_name = ?2 AND b.uidvalidity = ?3",
            params![account, raw, uidvalidity],
            |r| r.get(0),
        )?)
    }

    /// Starts a run of `import` for an import account (created with kind
    /// `import` if the store does not know it yet); finish it with
    /// [`Index::finish_run`].
    pub fn begin_import_run(&self, account: &str, at: i64) -> Result<i64> {
        let account_id = ensure_account(&self.conn, account, "import")?;
        self.conn.execute(
            "INSERT INTO runs (account_id, command, started_at) VALUES (?1, 'import', ?2)",
            params![account_id, at],
        )?;
        Ok(self.conn.last_insert_rowid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::records::{Located, MailboxRecord, Record, RefEvent, RefRecord};

    fn loc(record: Record) -> Located {
        Located {
            pack: 1,
            offset: 16,
            length: 100,
            record,
        }
    }

    #[test]
    fn folder_contents_and_max_uid() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = Index::open(&dir.path().join("index.sqlite")).unwrap();
        let b = BlobId::of(b"abc");
        let other = BlobId::of(b"def");
        assert_eq!(ix.account_kind("old").unwrap(), None);
        assert_eq!(ix.mailbox_max_uid("old", "INBOX", 1).unwrap(), 0);
        ix.apply(
            &[
                loc(Record::Blob {
                    id: b,
                    raw_size: 3,
                    dict_id: 0,
                }),
                loc(Record::Mailbox(MailboxRecord {
                    account: "old".into(),
                    account_kind: "import".into(),
                    mailbox: "INBOX".into(),
                    name: "INBOX".into(),
                    delimiter: Some("/".into()),
                    special_use: None,
                    uidvalidity: 1,
                    uidnext: None,
                    highestmodseq: None,
                    server_count: None,
                    gone: false,
                    at: 5,
                })),
                loc(Record::Ref(RefRecord {
                    account: "old".into(),
                    mailbox: "INBOX".into(),
                    uidvalidity: 1,
                    uid: 7,
                    at: 5,
                    event: RefEvent::Seen {
                        blob: b,
                        internaldate: 0,
                        date_offset: 0,
                        size: 3,
                        flags: String::new(),
                        modseq: None,
                    },
                })),
            ],
            1,
            100,
        )
        .unwrap();
        assert_eq!(ix.account_kind("old").unwrap().as_deref(), Some("import"));
        assert!(ix.mailbox_has_blob("old", "INBOX", 1, &b).unwrap());
        assert!(!ix.mailbox_has_blob("old", "INBOX", 1, &other).unwrap());
        assert!(!ix.mailbox_has_blob("old", "Sent", 1, &b).unwrap());
        assert!(!ix.mailbox_has_blob("old", "INBOX", 2, &b).unwrap());
        assert_eq!(ix.mailbox_max_uid("old", "INBOX", 1).unwrap(), 7);
        let run = ix.begin_import_run("old", 9).unwrap();
        ix.finish_run(run, 10, true, "fine").unwrap();
        assert_eq!(ix.last_run("old").unwrap().unwrap().command, "import");
        ix.begin_import_run("new", 9).unwrap();
        assert_eq!(ix.account_kind("new").unwrap().as_deref(), Some("import"));
    }
}

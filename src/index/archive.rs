//! Archive intents, quota seen, and the archive's candidate query
//! (migrations/0004_archive.sql).

use rusqlite::params;

use super::{blob_id, Index, Result};
use crate::model::{BlobId, Flags, InternalDate, Uid};

/// A message `archive` verified in the store and is about to expunge (or
/// expunged in a run that did not get to record it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveIntent {
    pub account: String,
    pub raw_name: String,
    pub uidvalidity: u32,
    pub uid: Uid,
    pub blob: BlobId,
    pub size: u64,
    pub created_at: i64,
}

/// One resource of one quota root, as last seen: STORAGE in KiB, MESSAGE a
/// count, as the server says them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct QuotaSeen {
    pub root: String,
    pub resource: String,
    pub usage: u64,
    pub limit: u64,
    pub seen_at: i64,
}

/// A message that may be archived: live in the current generation of its
/// folder, with the INTERNALDATE and size mailkeep fetched itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveCandidate {
    pub uid: Uid,
    pub blob: BlobId,
    pub internaldate: InternalDate,
    pub size: u64,
    pub flags: Flags,
}

impl Index {
    /// Records intents in one transaction; returns once it is committed.
    pub fn add_archive_intents(&self, intents: &[ArchiveIntent]) -> Result<()> {
        let tx = super::write_tx(&self.conn)?;
        {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO archive_intents
                    (account, raw_name, uidvalidity, uid, blob_id, size, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for i in intents {
                st.execute(params![
                    i.account,
                    i.raw_name,
                    i.uidvalidity,
                    i.uid,
                    &i.blob.0[..],
                    i.size as i64,
                    i.created_at
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every pending intent of an account, by folder, generation and UID.
    pub fn archive_intents(&self, account: &str) -> Result<Vec<ArchiveIntent>> {
        let mut st = self.conn.prepare(
            "SELECT account, raw_name, uidvalidity, uid, blob_id, size, created_at
             FROM archive_intents WHERE account = ?1 ORDER BY raw_name, uidvalidity, uid",
        )?;
        let rows = st.query_map([account], |r| {
            Ok(ArchiveIntent {
                account: r.get(0)?,
                raw_name: r.get(1)?,
                uidvalidity: r.get(2)?,
                uid: r.get(3)?,
                blob: blob_id(r.get::<_, Vec<u8>>(4)?),
                size: r.get::<_, i64>(5)? as u64,
                created_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Pending intents of all accounts (0 on an index without the table, as
    /// a read-only open of an older store has).
    pub fn archive_intent_count(&self, account: &str) -> Result<u64> {
        if !self.has_table("archive_intents")? {
            return Ok(0);
        }
        Ok(self.conn.query_row(
            "SELECT count(*) FROM archive_intents WHERE account = ?1",
            [account],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Removes the intents of these UIDs of one folder generation.
    pub fn clear_archive_intents(
        &self,
        account: &str,
        raw_name: &str,
        uidvalidity: u32,
        uids: &[Uid],
    ) -> Result<()> {
        let tx = super::write_tx(&self.conn)?;
        {
            let mut st = tx.prepare_cached(
                "DELETE FROM archive_intents
                 WHERE account = ?1 AND raw_name = ?2 AND uidvalidity = ?3 AND uid = ?4",
            )?;
            for uid in uids {
                st.execute(params![account, raw_name, uidvalidity, uid])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Live messages of a folder generation received before `before` (unix
    /// seconds; all when `None`), oldest first.
    pub fn archive_candidates(
        &self,
        mailbox_id: i64,
        before: Option<i64>,
    ) -> Result<Vec<ArchiveCandidate>> {
        let mut st = self.conn.prepare(
            "SELECT m.uid, b.id, m.internaldate, m.date_offset, m.size, m.flags
             FROM messages m JOIN blobs b ON b.key = m.blob_key
             WHERE m.mailbox_id = ?1 AND m.gone_at IS NULL AND m.archived_at IS NULL
               AND m.internaldate < ?2
             ORDER BY m.internaldate, m.uid",
        )?;
        let rows = st.query_map(params![mailbox_id, before.unwrap_or(i64::MAX)], |r| {
            Ok(ArchiveCandidate {
                uid: r.get(0)?,
                blob: blob_id(r.get::<_, Vec<u8>>(1)?),
                internaldate: InternalDate {
                    unix: r.get(2)?,
                    offset_min: r.get(3)?,
                },
                size: r.get::<_, i64>(4)? as u64,
                flags: Flags::from_text(&r.get::<_, String>(5)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Remembers what GETQUOTAROOT said, replacing what was seen before for
    /// the same roots.
    pub fn record_quota(&self, account: &str, seen: &[QuotaSeen]) -> Result<()> {
        let tx = super::write_tx(&self.conn)?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO quota_seen (account, root, resource, usage, quota_limit, seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(account, root, resource) DO UPDATE SET
                    usage = excluded.usage, quota_limit = excluded.quota_limit,
                    seen_at = excluded.seen_at",
            )?;
            for q in seen {
                st.execute(params![
                    account,
                    q.root,
                    q.resource,
                    q.usage as i64,
                    q.limit as i64,
                    q.seen_at
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The quota last seen for an account, by root and resource (empty on an
    /// index without the table).
    pub fn quota_seen(&self, account: &str) -> Result<Vec<QuotaSeen>> {
        if !self.has_table("quota_seen")? {
            return Ok(Vec::new());
        }
        let mut st = self.conn.prepare(
            "SELECT root, resource, usage, quota_limit, seen_at FROM quota_seen
             WHERE account = ?1 ORDER BY root, resource DESC",
        )?;
        let rows = st.query_map([account], |r| {
            Ok(QuotaSeen {
                root: r.get(0)?,
                resource: r.get(1)?,
                usage: r.get::<_, i64>(2)? as u64,
                limit: r.get::<_, i64>(3)? as u64,
                seen_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub(super) fn has_table(&self, name: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )? > 0)
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

    fn seen(uid: u32, blob: BlobId, date: i64) -> Record {
        Record::Ref(RefRecord {
            account: "work".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 7,
            uid,
            at: 11,
            event: RefEvent::Seen {
                blob,
                internaldate: date,
                date_offset: 0,
                size: 3,
                flags: String::new(),
                modseq: None,
            },
        })
    }

    #[test]
    fn intents_round_trip_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let ix = Index::open(&dir.path().join("index.sqlite")).unwrap();
        let i = ArchiveIntent {
            account: "work".into(),
            raw_name: "INBOX".into(),
            uidvalidity: 7,
            uid: 3,
            blob: BlobId::of(b"x"),
            size: 1,
            created_at: 5,
        };
        ix.add_archive_intents(&[
            i.clone(),
            ArchiveIntent {
                uid: 4,
                ..i.clone()
            },
        ])
        .unwrap();
        // Recording the same intent again is harmless.
        ix.add_archive_intents(std::slice::from_ref(&i)).unwrap();
        assert_eq!(ix.archive_intents("work").unwrap().len(), 2);
        assert_eq!(ix.archive_intent_count("work").unwrap(), 2);
        ix.clear_archive_intents("work", "INBOX", 7, &[3]).unwrap();
        let left = ix.archive_intents("work").unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].uid, 4);
        assert_eq!(left[0].blob, i.blob);
    }

    #[test]
    fn candidates_are_live_old_messages_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = Index::open(&dir.path().join("index.sqlite")).unwrap();
        let b = BlobId::of(b"abc");
        let mb = Record::Mailbox(MailboxRecord {
            account: "work".into(),
            account_kind: "imap".into(),
            mailbox: "INBOX".into(),
            name: "INBOX".into(),
            delimiter: None,
            special_use: None,
            uidvalidity: 7,
            uidnext: Some(9),
            highestmodseq: None,
            server_count: Some(4),
            gone: false,
            at: 10,
        });
        let archived = Record::Ref(RefRecord {
            account: "work".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 7,
            uid: 4,
            at: 12,
            event: RefEvent::Archived,
        });
        ix.apply(
            &[
                loc(Record::Blob {
                    id: b,
                    raw_size: 3,
                    dict_id: 0,
                }),
                loc(mb),
                loc(seen(1, b, 300)),
                loc(seen(2, b, 100)),
                loc(seen(3, b, 900)),
                loc(seen(4, b, 50)),
                loc(archived),
            ],
            1,
            10,
        )
        .unwrap();
        let id = ix.current_mailbox("work", "INBOX").unwrap().unwrap().id;
        let uids = |v: Vec<ArchiveCandidate>| v.iter().map(|c| c.uid).collect::<Vec<_>>();
        assert_eq!(
            uids(ix.archive_candidates(id, None).unwrap()),
            vec![2, 1, 3]
        );
        assert_eq!(uids(ix.archive_candidates(id, Some(300)).unwrap()), vec![2]);
    }

    #[test]
    fn quota_is_replaced_per_root_and_resource() {
        let dir = tempfile::tempdir().unwrap();
        let ix = Index::open(&dir.path().join("index.sqlite")).unwrap();
        let q = |usage, at| QuotaSeen {
            root: "User quota".into(),
            resource: "STORAGE".into(),
            usage,
            limit: 1000,
            seen_at: at,
        };
        ix.record_quota("work", &[q(900, 1)]).unwrap();
        ix.record_quota("work", &[q(600, 2)]).unwrap();
        assert_eq!(ix.quota_seen("work").unwrap(), vec![q(600, 2)]);
        assert!(ix.quota_seen("other").unwrap().is_empty());
    }
}

//! Taking records into the index from the packs: after an interrupted run
//! (whole records past `indexed_len` that the index never took in), and for
//! `repair` (every record of every pack).
//!
//! The rules (docs/design.md, "Recovery"):
//! - every whole record with a good CRC is taken in; a blob only if its
//!   bytes decompress to its hash;
//! - bytes that are not part of a whole record are skipped to the next
//!   whole record, after a copy of them was made durable beside the pack
//!   (`PPPPPP.pack.damaged-OFFSET`); the pack itself is not changed;
//! - only a torn tail — unparseable bytes after the last whole record of the
//!   pack being written, past what the index had read — is cut, and only
//!   after it was copied aside (`PPPPPP.pack.torn-OFFSET`);
//! - `indexed_len` moves past damage only once its copy is durable.

use std::collections::HashSet;
use std::path::PathBuf;

use super::pack::{self, PackWriter, Scanned};
use super::record::Kind;
use super::{io_err, Result, Store};
use crate::index::BlobLocation;
use crate::model::records::{Located, Record};
use crate::model::BlobId;

/// Records taken into the index per transaction.
const BATCH: usize = 2000;

/// What reading one pack into the index found.
#[derive(Debug, Default)]
pub(super) struct Intake {
    pub records: u64,
    /// Damaged bytes skipped over (a copy kept beside the pack).
    pub skipped: u64,
    /// Bytes of a torn tail cut off (a copy kept beside the pack).
    pub truncated: u64,
    pub quarantined: Vec<PathBuf>,
    /// Whole blob records whose bytes do not decompress to their hash.
    pub bad_blobs: Vec<BlobId>,
    pub header_ok: bool,
    /// Dictionaries rebuilt because no copy of them was whole.
    pub dictionaries_rebuilt: Vec<u32>,
    /// Folder generations (account, wire name, UIDVALIDITY) and messages
    /// (… and UID) that records at or past `track_after` spoke of.
    pub touched_mailboxes: HashSet<(String, String, u32)>,
    pub touched_messages: HashSet<(String, String, u32, u32)>,
}

impl Store {
    /// Indexes whole records the index has not taken in yet, skips damage
    /// and sets a torn tail aside (see the module's rules). Run when a writer
    /// opens the store.
    pub(super) fn recover(&mut self) -> Result<()> {
        let root = self.root.clone();
        let packs = pack::list_packs(&root).map_err(io_err(&root))?;
        let last = packs.last().copied();
        for no in packs {
            let indexed = self.index.pack_indexed_len(no)?;
            let len = std::fs::metadata(pack::pack_path(&root, no))
                .map(|m| m.len())
                .map_err(io_err(&root))?;
            if indexed.is_some_and(|i| i >= len) {
                // In step, or cut short (which `check_health` reports).
                continue;
            }
            let from = indexed.unwrap_or(0);
            let cut_after = (last == Some(no)).then_some(from);
            let intake = self.take_in(no, from, cut_after, None)?;
            self.recovery.records_indexed += intake.records;
            self.recovery.bytes_skipped += intake.skipped;
            self.recovery.bytes_truncated += intake.truncated;
        }
        Ok(())
    }

    /// Reads pack `no` from `from` to its end into the index, in batches,
    /// following the module's rules. `cut_after`: this is the pack being
    /// written, and the index had read this much of it, so that a torn tail
    /// past it may be cut (after it was copied aside). Records at or past
    /// `track_after` are noted in the intake's `touched_*` sets.
    pub(super) fn take_in(
        &mut self,
        no: u32,
        from: u64,
        cut_after: Option<u64>,
        track_after: Option<u64>,
    ) -> Result<Intake> {
        let root = self.root.clone();
        let path = pack::pack_path(&root, no);
        let mut intake = Intake::default();
        let mut batch: Vec<Located> = Vec::new();
        let mut batch_end = from.max(pack::PACK_HEADER_LEN);
        // Damaged bytes seen but not yet known to be followed by a record.
        let mut unplaced: Option<(u64, u64)> = None;
        let mut failure: Option<super::StoreError> = None;
        let scan = pack::scan(&root, no, from, None, &mut |item| {
            let res = (|| -> Result<()> {
                match item {
                    Scanned::Damaged { offset, len } => {
                        unplaced = Some((offset, len));
                    }
                    Scanned::Record(raw) => {
                        if let Some((offset, len)) = unplaced.take() {
                            // Damage in the middle: keep a copy, read on.
                            let q = pack::quarantine(&root, no, offset, len, false)
                                .map_err(io_err(&path))?;
                            intake.quarantined.push(q);
                            intake.skipped += len;
                        }
                        let end = raw.offset + raw.length;
                        let Some(rec) = decode_record(&raw, no) else {
                            // Whole, but not a record we can read: keep a copy.
                            let q = pack::quarantine(&root, no, raw.offset, raw.length, false)
                                .map_err(io_err(&path))?;
                            intake.quarantined.push(q);
                            intake.skipped += raw.length;
                            batch_end = end;
                            return Ok(());
                        };
                        if track_after.is_some_and(|t| raw.offset >= t) {
                            match &rec.record {
                                Record::Ref(r) => {
                                    intake.touched_messages.insert((
                                        r.account.clone(),
                                        r.mailbox.clone(),
                                        r.uidvalidity,
                                        r.uid,
                                    ));
                                }
                                Record::Mailbox(m) => {
                                    intake.touched_mailboxes.insert((
                                        m.account.clone(),
                                        m.mailbox.clone(),
                                        m.uidvalidity,
                                    ));
                                }
                                _ => {}
                            }
                        }
                        match &rec.record {
                            Record::Dict { id } => {
                                // Usable for the blobs after it at once.
                                let id = *id;
                                batch.push(rec);
                                self.index.apply(&batch, no, end)?;
                                intake.records += batch.len() as u64;
                                batch.clear();
                                // A lost dictionary may have a whole copy here.
                                self.dicts.forget_lost(id);
                                self.load_dicts()?;
                            }
                            Record::Blob {
                                id,
                                raw_size,
                                dict_id,
                            } => {
                                let loc = BlobLocation {
                                    pack: no,
                                    offset: raw.offset,
                                    length: raw.length,
                                    raw_size: *raw_size,
                                    dict_id: *dict_id,
                                };
                                if *dict_id != 0 && self.dicts.get(*dict_id).is_err() {
                                    // Its dictionary is lost: train it again
                                    // from the messages before this one.
                                    self.index.apply(&batch, no, batch_end)?;
                                    intake.records += batch.len() as u64;
                                    batch.clear();
                                    if self.rebuild_lost_dict(*dict_id, &loc, id)? {
                                        intake.dictionaries_rebuilt.push(*dict_id);
                                    }
                                }
                                if *dict_id != 0 && self.dicts.get(*dict_id).is_err() {
                                    // Whole, but unreadable until its dictionary
                                    // is found: indexed, and reported by `check_health`.
                                    batch.push(rec);
                                } else if self.check_blob_at(id, &loc).is_err() {
                                    intake.bad_blobs.push(*id);
                                    let q =
                                        pack::quarantine(&root, no, raw.offset, raw.length, false)
                                            .map_err(io_err(&path))?;
                                    intake.quarantined.push(q);
                                    intake.skipped += raw.length;
                                } else {
                                    batch.push(rec);
                                }
                            }
                            _ => batch.push(rec),
                        }
                        batch_end = end;
                        if batch.len() >= BATCH {
                            self.index.apply(&batch, no, batch_end)?;
                            intake.records += batch.len() as u64;
                            batch.clear();
                        }
                    }
                }
                Ok(())
            })();
            res.map_err(|e| {
                let text = e.to_string();
                failure = Some(e);
                std::io::Error::other(text)
            })
        });
        if let Some(e) = failure {
            return Err(e);
        }
        let scan = scan.map_err(io_err(&path))?;
        intake.header_ok = scan.header_ok;
        let mut indexed_len = batch_end;
        if let Some((offset, len)) = unplaced {
            if cut_after.is_some_and(|c| offset >= c) {
                // A torn tail: moved aside, then cut.
                let q = pack::quarantine(&root, no, offset, len, true).map_err(io_err(&path))?;
                intake.quarantined.push(q);
                let mut w = PackWriter::open(&root, no, Some(offset)).map_err(io_err(&path))?;
                w.sync().map_err(io_err(&path))?;
                intake.truncated += len;
                indexed_len = offset;
            } else {
                let q = pack::quarantine(&root, no, offset, len, false).map_err(io_err(&path))?;
                intake.quarantined.push(q);
                intake.skipped += len;
                indexed_len = offset + len;
            }
        }
        self.index.apply(&batch, no, indexed_len)?;
        intake.records += batch.len() as u64;
        Ok(intake)
    }

    /// Trains lost dictionary `id` again from the messages before the blob
    /// at `loc` (the first one that needs it); on success it is loaded and
    /// new copies of it are appended.
    fn rebuild_lost_dict(&mut self, id: u32, loc: &BlobLocation, user: &BlobId) -> Result<bool> {
        let Some(dict) = self.retrain(id, (loc.pack, loc.offset), &[(*user, *loc)])? else {
            return Ok(false);
        };
        self.dicts.insert_rebuilt(id, dict);
        if self.lock.is_some() {
            for _ in 0..super::dicts::DICT_COPIES {
                self.append_dict_copy(id)?;
            }
            self.commit()?;
        }
        Ok(true)
    }
}

/// The record a scanned one describes, with its place; `None` for a whole
/// record that cannot be read (e.g. JSON that does not parse).
pub(super) fn decode_record(raw: &pack::RawRecord, pack: u32) -> Option<Located> {
    let record = match raw.kind {
        Kind::Blob | Kind::CodedBlob => {
            let head = raw.blob?;
            Record::Blob {
                id: BlobId(head.id),
                raw_size: head.raw_len,
                dict_id: head.dict_id,
            }
        }
        Kind::Dict => Record::Dict {
            id: u32::from_le_bytes(raw.payload.get(..4)?.try_into().ok()?),
        },
        Kind::Ref => Record::Ref(serde_json::from_slice(&raw.payload).ok()?),
        Kind::Event => Record::Ref(super::record::decode_event(&raw.payload)?),
        Kind::Mailbox => Record::Mailbox(serde_json::from_slice(&raw.payload).ok()?),
    };
    Some(Located {
        pack,
        offset: raw.offset,
        length: raw.length,
        record,
    })
}

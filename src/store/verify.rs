//! `verify`: the index file (SQLite's own check), every pack record by record
//! (magic, length, CRC; with `deep`, every message decompressed and
//! re-hashed), and the index against the packs.
//!
//! It reads a consistent snapshot: one read transaction for all index
//! queries, and each pack only up to what that snapshot says the index has
//! read of it. A writer only ever appends past that point, so a backup
//! running meanwhile is never taken for damage.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;

use super::pack::{self, Scanned};
use super::record::{self, Kind, HEADER_LEN};
use super::{io_err, Result, Store};
use crate::index::{BlobLocation, MessagePlace};
use crate::model::records::{MailboxRecord, RefRecord};
use crate::model::BlobId;

/// A stored message whose bytes cannot be read back whole.
#[derive(Clone, Debug)]
pub struct Damage {
    pub blob: BlobId,
    pub what: String,
    /// Every folder that lists it.
    pub places: Vec<MessagePlace>,
    pub subject: Option<String>,
}

impl Damage {
    /// Some folder that lists it is still on the server: a backup of that
    /// account fetches the bytes again.
    pub fn on_server(&self) -> bool {
        self.places.iter().any(MessagePlace::on_server)
    }
}

/// A run of bytes in a pack that is not part of any whole record.
#[derive(Clone, Debug)]
pub struct Region {
    pub pack: u32,
    pub offset: u64,
    pub len: u64,
    /// A copy of these bytes is kept beside the pack (by `repair`, or by
    /// a writer's recovery) and nothing in the index refers to them.
    pub set_aside: bool,
    /// What the damaged bytes seem to have been, where that can be told.
    pub looks_like: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub deep: bool,
    pub packs_checked: u64,
    pub records_checked: u64,
    /// Messages (unique bytes) the index knows.
    pub blobs_checked: u64,
    /// What SQLite's check of the index file said, if anything.
    pub index_file: Vec<String>,
    pub damaged: Vec<Damage>,
    /// Messages listed in a folder whose bytes are not in the store.
    pub missing: Vec<MessagePlace>,
    pub regions: Vec<Region>,
    /// Missing or short packs, damaged pack headers, dictionaries.
    pub other: Vec<String>,
    /// Bytes past what the index has read, per pack: a backup at work, or
    /// records the next writer takes in. Not damage.
    pub unindexed: Vec<(u32, u64)>,
}

impl VerifyReport {
    /// Nothing is wrong: every message the index knows reads back whole.
    pub fn is_clean(&self) -> bool {
        self.index_file.is_empty()
            && self.damaged.is_empty()
            && self.missing.is_empty()
            && self.other.is_empty()
            && self.regions.iter().all(|r| r.set_aside)
    }
}

/// What [`Store::quick_check`] found.
#[derive(Clone, Debug, Default)]
pub struct QuickCheck {
    /// Messages read back.
    pub read: usize,
    /// Messages (unique bytes) the index knows.
    pub stored: u64,
    /// Those that did not read back whole, and why.
    pub failed: Vec<(BlobId, String)>,
}

impl Store {
    /// A check quick enough for `doctor` on a big store: reads back up to
    /// `n` messages — the newest, then the first, middle and last of each
    /// pack from the newest pack on — decompressed and hash-checked.
    /// `verify` reads every record.
    pub fn quick_check(&self, n: usize) -> Result<QuickCheck> {
        let mut picks: Vec<BlobId> = Vec::new();
        let mut stored = 0u64;
        for (no, _) in self.index.packs()?.iter().rev() {
            let blobs = self.index.blobs_in_pack(*no)?;
            stored += blobs.len() as u64;
            for i in [blobs.len().wrapping_sub(1), 0, blobs.len() / 2] {
                if let Some((id, _)) = blobs.get(i) {
                    if picks.len() < n && !picks.contains(id) {
                        picks.push(*id);
                    }
                }
            }
        }
        let mut failed = Vec::new();
        for id in &picks {
            if let Err(e) = self.read_blob(id) {
                failed.push((*id, damage_text(&e)));
            }
        }
        Ok(QuickCheck {
            read: picks.len(),
            stored,
            failed,
        })
    }

    /// Checks the store; see the module's comment. `progress(done, total)`
    /// in bytes of the packs.
    pub fn verify(&self, deep: bool, progress: &mut dyn FnMut(u64, u64)) -> Result<VerifyReport> {
        self.index.begin_snapshot()?;
        let report = self.verify_snapshot(deep, progress);
        let _ = self.index.end_snapshot();
        let report = report?;
        // Notes for the next backup: damage found, and damage noted before
        // that is gone (a pack put back). Best effort; `verify` changes
        // nothing else.
        let found: Vec<(BlobId, String)> = report
            .damaged
            .iter()
            .map(|d| (d.blob, d.what.clone()))
            .collect();
        let path = self.root.join("index.sqlite");
        let _ = crate::index::Index::note_damaged_at(&path, &found, super::now());
        if deep {
            // Every record was read back whole but these: damage noted
            // earlier (a failed read, a pack that was missing) is gone.
            if let Ok(noted) = self.index.damaged_blobs() {
                let healed: Vec<BlobId> = noted
                    .into_iter()
                    .map(|(id, _)| id)
                    .filter(|id| !report.damaged.iter().any(|d| d.blob == *id))
                    .collect();
                let _ = crate::index::Index::clear_damaged_at(&path, &healed);
            }
        }
        Ok(report)
    }

    fn verify_snapshot(
        &self,
        deep: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            deep,
            ..Default::default()
        };
        report.index_file = self.index.check_file(deep)?;
        let packs = self.index.packs()?;
        let on_disk = pack::list_packs(&self.root).map_err(io_err(&self.root))?;
        let mut lens = BTreeMap::new();
        for (no, indexed) in &packs {
            let path = pack::pack_path(&self.root, *no);
            match std::fs::metadata(&path) {
                Ok(m) => {
                    if m.len() < *indexed {
                        report.other.push(format!(
                            "pack {no:06} is {} bytes but the index has read {indexed} of it (cut short?)",
                            m.len()
                        ));
                    } else if m.len() > *indexed {
                        report.unindexed.push((*no, m.len() - indexed));
                    }
                    lens.insert(*no, m.len().min(*indexed));
                }
                Err(_) => report.other.push(format!("pack {no:06} is missing")),
            }
        }
        for no in on_disk {
            if !lens.contains_key(&no) && !packs.iter().any(|(p, _)| *p == no) {
                let len = std::fs::metadata(pack::pack_path(&self.root, no))
                    .map(|m| m.len())
                    .unwrap_or(0);
                if len > pack::PACK_HEADER_LEN {
                    report.unindexed.push((no, len - pack::PACK_HEADER_LEN));
                }
            }
        }
        let total: u64 = lens.values().sum();
        let mut done = 0u64;
        let mut damaged: BTreeMap<BlobId, String> = BTreeMap::new();
        let dict_copies = self.index.dictionary_copies()?;
        let mut good_copies: HashMap<u32, usize> = HashMap::new();
        for (&no, &len) in &lens {
            let blobs: HashMap<u64, (BlobId, BlobLocation)> = self
                .index
                .blobs_in_pack(no)?
                .into_iter()
                .map(|(id, loc)| (loc.offset, (id, loc)))
                .collect();
            report.blobs_checked += blobs.len() as u64;
            let dicts: HashMap<u64, u32> = dict_copies
                .iter()
                .filter(|(_, l)| l.pack == no)
                .map(|(id, l)| (l.offset, *id))
                .collect();
            let set_aside: Vec<(u64, u64, bool)> =
                pack::quarantined(&self.root, no).map_err(io_err(&self.root))?;
            let mut whole: HashSet<u64> = HashSet::new();
            let mut regions = Vec::new();
            let base = done;
            let path = pack::pack_path(&self.root, no);
            let end = pack::scan(&self.root, no, 0, Some(len), &mut |item| {
                match item {
                    Scanned::Record(raw) => {
                        report.records_checked += 1;
                        match raw.kind {
                            Kind::Blob | Kind::CodedBlob => {
                                if let Some((id, loc)) = blobs.get(&raw.offset) {
                                    let same = raw.blob.is_some_and(|h| h.id == id.0)
                                        && raw.length == loc.length;
                                    if !same {
                                        damaged
                                            .insert(*id, "the record there is another one".into());
                                    } else if deep {
                                        if let Err(e) = self.check_blob_at(id, loc) {
                                            damaged.insert(*id, damage_text(&e));
                                        }
                                    }
                                    whole.insert(raw.offset);
                                }
                            }
                            Kind::Dict => {
                                if let Some(id) = dicts.get(&raw.offset) {
                                    if raw.payload.get(..4) == Some(&id.to_le_bytes()[..]) {
                                        *good_copies.entry(*id).or_default() += 1;
                                    }
                                }
                            }
                            Kind::Ref | Kind::Event | Kind::Mailbox => {}
                        }
                        progress(base + raw.offset + raw.length, total);
                    }
                    Scanned::Damaged { offset, len } => regions.push((offset, len)),
                }
                Ok(())
            })
            .map_err(io_err(&path))?;
            done += len;
            report.packs_checked += 1;
            if !end.header_ok {
                report.other.push(format!(
                    "pack {no:06}: its header is damaged (its records are still read; \
                     `mailkeep repair` writes it again)"
                ));
            }
            for (offset, (id, _)) in &blobs {
                if !whole.contains(offset) && !damaged.contains_key(id) {
                    damaged.insert(*id, "its record is damaged".into());
                }
            }
            let file = File::open(&path).ok();
            for (offset, rlen) in regions {
                let set = set_aside.iter().any(|(o, l, _)| *o == offset && *l >= rlen)
                    && !blobs.keys().any(|b| *b >= offset && *b < offset + rlen);
                report.regions.push(Region {
                    pack: no,
                    offset,
                    len: rlen,
                    set_aside: set,
                    looks_like: file.as_ref().and_then(|f| looks_like(f, offset, rlen)),
                });
            }
        }
        for (id, copies) in self.dicts_summary(&dict_copies) {
            let good = good_copies.get(&id).copied().unwrap_or(0);
            if good == 0 {
                report.other.push(format!(
                    "dictionary {id}: none of its {copies} copies is whole, so the messages \
                     compressed with it cannot be read"
                ));
            } else if good < copies.min(super::dicts::DICT_COPIES) {
                report.other.push(format!(
                    "dictionary {id}: {} of its {copies} copies are damaged (the next backup \
                     or `mailkeep repair` writes a new copy)",
                    copies - good
                ));
            }
        }
        let search = crate::index::SearchIndex::open_read_only(&self.root)
            .ok()
            .flatten();
        for (id, what) in damaged {
            let places = self.index.places_of(&id)?;
            report.damaged.push(Damage {
                blob: id,
                what,
                subject: search.as_ref().and_then(|s| s.subject_of(&id)),
                places,
            });
        }
        report.missing = self.index.places_without_blob()?;
        Ok(report)
    }

    /// Each dictionary id with how many copies the index knows of it.
    fn dicts_summary(
        &self,
        copies: &[(u32, crate::index::BlobLocationLite)],
    ) -> BTreeMap<u32, usize> {
        let mut out = BTreeMap::new();
        for (id, _) in copies {
            *out.entry(*id).or_default() += 1;
        }
        out
    }
}

fn damage_text(e: &super::StoreError) -> String {
    match e {
        super::StoreError::Corrupt { what, .. } => what.clone(),
        other => other.to_string(),
    }
}

/// What a damaged run of bytes seems to have held: the kind from its
/// record header if that is intact, and for a folder or flag record, the
/// folder and UID if its text still parses.
fn looks_like(file: &File, offset: u64, len: u64) -> Option<String> {
    let mut h = [0u8; HEADER_LEN as usize];
    file.read_exact_at(&mut h, offset).ok()?;
    let (kind, plen) = record::parse_header(&h)?;
    let what = match kind {
        Kind::Blob | Kind::CodedBlob => "a message's bytes",
        Kind::Dict => "a copy of a dictionary",
        Kind::Ref | Kind::Event => "a folder or flag record of a message",
        Kind::Mailbox => "a folder record",
    };
    let mut detail = String::new();
    if matches!(kind, Kind::Ref | Kind::Event | Kind::Mailbox) && plen <= 64 * 1024 && plen <= len {
        let mut payload = vec![0u8; plen as usize];
        if file
            .read_exact_at(&mut payload, offset + HEADER_LEN)
            .is_ok()
        {
            let event = (kind == Kind::Event)
                .then(|| super::record::decode_event(&payload))
                .flatten();
            if let Some(r) = event.or_else(|| serde_json::from_slice::<RefRecord>(&payload).ok()) {
                detail = format!(
                    " (it reads as account `{}`, folder `{}`, UID {})",
                    r.account, r.mailbox, r.uid
                );
            } else if let Ok(m) = serde_json::from_slice::<MailboxRecord>(&payload) {
                detail = format!(
                    " (it reads as account `{}`, folder `{}`)",
                    m.account, m.name
                );
            }
        }
    }
    Some(format!("{what}{detail}"))
}

//! `repair`: a new index built from the packs, whatever state the old one
//! is in, renamed into place only when it is complete.
//!
//! Order (each step durable before the next; a crash at any point leaves
//! either the old index in place or the new one):
//! 1. take the writer's lock; open the old index read-only if it can be
//!    opened (a damaged one is still read where it can be);
//! 2. build `index.rebuild.sqlite` from every record of every pack, by the
//!    recovery rules (`recovery.rs`): damage is skipped and copied aside, a
//!    damaged pack header is copied aside and written again, a torn tail of
//!    the last pack past what the old index had read is copied aside and cut;
//! 3. heal from the old index: where a damaged record took something the old
//!    index still knew (a message in a folder, its flags, a folder's state),
//!    a new record saying it is appended to the packs;
//! 4. carry over the tables that are not in the packs (`Index::carry_over_from`);
//! 5. checkpoint the new file and close it; move the old file and its
//!    write-ahead log aside (`index.old.sqlite`), rename the new one to
//!    `index.sqlite`, fsync the directory;
//! 6. remove the old file, or keep it as `index.damaged-<time>.sqlite` when
//!    SQLite found it damaged.
//!
//! If `index.sqlite` is missing but `index.old.sqlite` is there (a crash in
//! step 5), that one is the old index.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::record::PACK_MAGIC;
use super::{io_err, lock, now, pack, Result, Store, StoreError};
use crate::index::{Carried, Index, MailboxRow, MessagePlace, StoredMessage};
use crate::model::records::{MailboxRecord, RefEvent, RefRecord};
use crate::model::Uid;

const INDEX: &str = "index.sqlite";
const REBUILD: &str = "index.rebuild.sqlite";
const OLD: &str = "index.old.sqlite";

/// What the old index was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OldIndex {
    /// There was none.
    Missing,
    /// It passed SQLite's check; it was removed once the new one was in place.
    Sound,
    /// SQLite found it damaged (or could not open it); kept here.
    Damaged { kept: PathBuf, why: String },
}

#[derive(Clone, Debug)]
pub struct RepairReport {
    pub packs: u64,
    pub records: u64,
    pub messages: u64,
    pub unique_messages: u64,
    /// Damaged bytes skipped over, each run copied aside beside its pack.
    pub skipped_bytes: u64,
    /// A torn tail cut off the last pack (copied aside first).
    pub truncated_bytes: u64,
    pub quarantined: Vec<PathBuf>,
    /// Packs whose header was damaged and was written again.
    pub headers_rewritten: Vec<u32>,
    /// Dictionaries with no whole copy that were trained again.
    pub dictionaries_rebuilt: Vec<u32>,
    /// Records written again from what the old index knew.
    pub healed: u64,
    pub carried: Vec<Carried>,
    pub old_index: OldIndex,
    /// Messages whose bytes are not in the store: still on the server (the
    /// next backup fetches them) …
    pub to_fetch_again: Vec<MessagePlace>,
    /// … or not (lost unless there is another copy).
    pub lost: Vec<MessagePlace>,
}

/// Rebuilds the index of the store at `root` from its packs; see the
/// module's comment. `progress(done, total)` in bytes of the packs.
pub fn repair(root: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<RepairReport> {
    if !root.is_dir() {
        return Err(StoreError::Missing(root.to_path_buf()));
    }
    let lock = lock::take(root)?;
    let index_path = root.join(INDEX);
    let old_path = if index_path.exists() {
        Some(index_path.clone())
    } else if root.join(OLD).exists() {
        Some(root.join(OLD))
    } else {
        None
    };
    // 1. The old index, as far as it can be read.
    let (old, mut old_state) = match &old_path {
        None => (None, OldIndex::Missing),
        Some(p) => match Index::open_read_only(p) {
            Ok(ix) => match ix.check_file(false) {
                Ok(lines) if lines.is_empty() => (Some(ix), OldIndex::Sound),
                Ok(lines) => (
                    Some(ix),
                    OldIndex::Damaged {
                        kept: PathBuf::new(),
                        why: lines.join("; "),
                    },
                ),
                Err(e) => (
                    Some(ix),
                    OldIndex::Damaged {
                        kept: PathBuf::new(),
                        why: crate::index::error_text(&e),
                    },
                ),
            },
            Err(e) => (
                None,
                OldIndex::Damaged {
                    kept: PathBuf::new(),
                    why: crate::index::error_text(&e),
                },
            ),
        },
    };
    let old_sound = old_state == OldIndex::Sound;
    let old_lens: BTreeMap<u32, u64> = old
        .as_ref()
        .and_then(|o| o.packs().ok())
        .unwrap_or_default()
        .into_iter()
        .collect();

    // 2. The new index, from the packs.
    let rebuild = root.join(REBUILD);
    remove_index_files(&rebuild);
    let new_index = Index::open(&rebuild)?;
    let mut store = Store::with(root, new_index, Some(lock));
    let packs = pack::list_packs(root).map_err(io_err(root))?;
    let total: u64 = packs
        .iter()
        .map(|no| {
            std::fs::metadata(pack::pack_path(root, *no))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    let mut report = RepairReport {
        packs: packs.len() as u64,
        records: 0,
        messages: 0,
        unique_messages: 0,
        skipped_bytes: 0,
        truncated_bytes: 0,
        quarantined: Vec::new(),
        headers_rewritten: Vec::new(),
        dictionaries_rebuilt: Vec::new(),
        healed: 0,
        carried: Vec::new(),
        old_index: OldIndex::Missing,
        to_fetch_again: Vec::new(),
        lost: Vec::new(),
    };
    let mut touched_mailboxes = std::collections::HashSet::new();
    let mut touched_messages = std::collections::HashSet::new();
    let mut done = 0u64;
    progress(0, total);
    for (i, &no) in packs.iter().enumerate() {
        let last = i + 1 == packs.len();
        let old_len = old_lens.get(&no).copied();
        // A torn tail is cut only past what a readable old index had read.
        let cut_after = if last { old_len } else { None };
        let intake = store.take_in(no, 0, cut_after, Some(old_len.unwrap_or(0)))?;
        if !intake.header_ok {
            rewrite_header(root, no)?;
            report.headers_rewritten.push(no);
        }
        report.records += intake.records;
        report.skipped_bytes += intake.skipped;
        report.truncated_bytes += intake.truncated;
        report.quarantined.extend(intake.quarantined);
        report
            .dictionaries_rebuilt
            .extend(intake.dictionaries_rebuilt);
        touched_mailboxes.extend(intake.touched_mailboxes);
        touched_messages.extend(intake.touched_messages);
        done += std::fs::metadata(pack::pack_path(root, no))
            .map(|m| m.len())
            .unwrap_or(0);
        progress(done, total);
    }
    store.load_dicts()?;

    // 3. What damaged records took, written again from the old index.
    if let Some(old) = old.as_ref().filter(|_| old_sound) {
        let touched = Touched {
            mailboxes: &touched_mailboxes,
            messages: &touched_messages,
        };
        report.healed = heal_from(old, &mut store, &touched)?;
    }
    store.ensure_dictionary_copies()?;
    store.commit()?;

    // 4. The tables the packs do not hold.
    if let Some(p) = &old_path {
        report.carried = store.index.carry_over_from(p);
    }
    drop(old);

    // 5. Into place.
    let Store {
        index, lock: held, ..
    } = store;
    index.checkpoint_and_close()?;
    if let Some(p) = &old_path {
        // The old file's log goes with it, or SQLite would apply it to the new one.
        let aside = root.join(OLD);
        if p != &aside {
            remove_index_files(&aside);
            let _ = std::fs::rename(wal(p), wal(&aside));
            std::fs::rename(p, &aside).map_err(io_err(p))?;
        }
        let _ = std::fs::remove_file(shm(p));
    }
    std::fs::rename(&rebuild, &index_path).map_err(io_err(&index_path))?;
    pack::sync_dir(root).map_err(io_err(root))?;
    super::restrict(&index_path);

    // 6. The old file: gone, or kept for a person to look at.
    let aside = root.join(OLD);
    if aside.exists() {
        match &mut old_state {
            OldIndex::Damaged { kept, .. } => {
                let keep = root.join(format!("index.damaged-{}.sqlite", now()));
                std::fs::rename(&aside, &keep).map_err(io_err(&aside))?;
                let _ = std::fs::rename(wal(&aside), wal(&keep));
                *kept = keep;
            }
            _ => remove_index_files(&aside),
        }
    }
    report.old_index = old_state;

    let index = Index::open(&index_path)?;
    let t = index.totals()?;
    // Lost bytes are noted like damaged ones: a backup fetches them again
    // from any folder of the server that has them, and any fresh copy (a
    // backup, an import) puts them back.
    let lost: Vec<_> = index
        .places_without_blob()?
        .iter()
        .map(|p| (p.blob, "its bytes were lost to damage".to_string()))
        .collect();
    index.note_damaged(&lost, now())?;
    report.messages = t.messages;
    report.unique_messages = t.blobs;
    for place in index.places_without_blob()? {
        if place.on_server() {
            report.to_fetch_again.push(place);
        } else {
            report.lost.push(place);
        }
    }
    drop(index);
    drop(held);
    Ok(report)
}

fn wal(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}-wal", p.display()))
}

fn shm(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}-shm", p.display()))
}

fn remove_index_files(p: &Path) {
    for f in [p.to_path_buf(), wal(p), shm(p)] {
        let _ = std::fs::remove_file(f);
    }
}

/// Copies a damaged pack header aside, then writes it again. The index
/// never points at the header, so this rewrites nothing it refers to.
fn rewrite_header(root: &Path, no: u32) -> Result<()> {
    let path = pack::pack_path(root, no);
    pack::quarantine(root, no, 0, pack::PACK_HEADER_LEN, false).map_err(io_err(&path))?;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    f.write_all_at(PACK_MAGIC, 0).map_err(io_err(&path))?;
    f.sync_all().map_err(io_err(&path))?;
    Ok(())
}

/// What records past the old index's reach spoke of: there the packs are
/// newer than the old index, and it is not used to heal.
struct Touched<'a> {
    mailboxes: &'a std::collections::HashSet<(String, String, u32)>,
    messages: &'a std::collections::HashSet<(String, String, u32, u32)>,
}

/// Compares the old index (sound, and in step with the packs up to what it
/// had read) with the one built from the packs, and appends records for
/// what only the old one knows: a message in a folder (with its flags,
/// date, and whether it is gone or archived), a flag change, a departure,
/// a folder's sync state. Returns how many records were written.
fn heal_from(old: &Index, store: &mut Store, touched: &Touched<'_>) -> Result<u64> {
    let mut written = 0u64;
    for (account, kind) in old.accounts()? {
        for ob in old.mailboxes(&account)? {
            let nb = store
                .index
                .mailbox(&account, &ob.raw_name, ob.uidvalidity)?;
            let key = (account.clone(), ob.raw_name.clone(), ob.uidvalidity);
            if !touched.mailboxes.contains(&key) && ob.is_current && needs_mailbox(&ob, nb.as_ref())
            {
                store.put_mailbox(mailbox_record(&account, &kind, &ob))?;
                written += 1;
            }
            let new_msgs = match &nb {
                Some(nb) => store.index.messages(nb.id)?,
                None => BTreeMap::new(),
            };
            // The old index's folder row by row (only the rebuilt one's is
            // held whole).
            old.for_each_in_mailbox(ob.id, |om| {
                let uid = om.uid;
                let mkey = (account.clone(), ob.raw_name.clone(), ob.uidvalidity, uid);
                if !touched.messages.contains(&mkey) {
                    written += heal_message(store, &account, &ob, uid, &om, new_msgs.get(&uid))?;
                }
                Ok::<(), StoreError>(())
            })?;
        }
    }
    Ok(written)
}

fn needs_mailbox(old: &MailboxRow, new: Option<&MailboxRow>) -> bool {
    let Some(new) = new else { return true };
    old.uidnext != new.uidnext
        || old.highestmodseq != new.highestmodseq
        || old.server_count != new.server_count
        || old.name != new.name
        || old.special_use != new.special_use
        || old.delimiter != new.delimiter
        || old.gone_at.is_some() != new.gone_at.is_some()
        || old.is_current != new.is_current
}

fn mailbox_record(account: &str, kind: &str, ob: &MailboxRow) -> MailboxRecord {
    MailboxRecord {
        account: account.to_string(),
        account_kind: kind.to_string(),
        mailbox: ob.raw_name.clone(),
        name: ob.name.clone(),
        delimiter: ob.delimiter.clone(),
        special_use: ob.special_use.clone(),
        uidvalidity: ob.uidvalidity,
        uidnext: ob.uidnext,
        highestmodseq: ob.highestmodseq,
        server_count: ob.server_count,
        gone: ob.gone_at.is_some(),
        at: ob.gone_at.or(ob.last_sync_at).unwrap_or_else(now),
    }
}

/// The records that bring a message's row in the new index to what the
/// old one said.
fn heal_message(
    store: &mut Store,
    account: &str,
    ob: &MailboxRow,
    uid: Uid,
    om: &StoredMessage,
    nm: Option<&StoredMessage>,
) -> Result<u64> {
    let base = RefRecord {
        account: account.to_string(),
        mailbox: ob.raw_name.clone(),
        uidvalidity: ob.uidvalidity,
        uid,
        at: now(),
        event: RefEvent::Gone,
    };
    let mut n = 0;
    let flags_differ = match nm {
        None => {
            store.add_ref(RefRecord {
                event: RefEvent::Seen {
                    blob: om.blob,
                    internaldate: om.internaldate.unix,
                    date_offset: om.internaldate.offset_min,
                    size: om.size,
                    flags: om.flags.to_text(),
                    modseq: om.modseq,
                },
                ..base.clone()
            })?;
            n += 1;
            false
        }
        Some(nm) => nm.flags != om.flags || nm.modseq != om.modseq,
    };
    if flags_differ {
        store.add_ref(RefRecord {
            event: RefEvent::Flags {
                flags: om.flags.to_text(),
                modseq: om.modseq,
            },
            ..base.clone()
        })?;
        n += 1;
    }
    if let Some(at) = om.gone_at {
        if nm.is_none_or(|m| m.gone_at.is_none()) {
            store.add_ref(RefRecord {
                at,
                event: RefEvent::Gone,
                ..base.clone()
            })?;
            n += 1;
        }
    }
    if let Some(at) = om.archived_at {
        if nm.is_none_or(|m| m.archived_at.is_none()) {
            store.add_ref(RefRecord {
                at,
                event: RefEvent::Archived,
                ..base
            })?;
            n += 1;
        }
    }
    Ok(n)
}

//! The safety protocol of a destructive run (GUIDE §5), one batch at a time.
//!
//! Order is important, and every step is durable before the next starts:
//! 1. each chosen message is read back from the store, decompressed and
//!    hash-checked (`Store::copy_blob_to`): a copy that fails stops the run
//!    before the server is touched;
//! 2. the intent (folder, UIDVALIDITY, UID, blob) is committed to the index;
//! 3. `UID STORE set +FLAGS.SILENT (\Deleted)`, then `UID EXPUNGE set`
//!    (UIDPLUS), exactly those UIDs: other messages marked `\Deleted` by
//!    another program are not removed;
//! 4. `UID SEARCH ALL` confirms that those UIDs are gone and that every other
//!    UID the folder had before the batch is still there;
//! 5. an `archived` ref record for each removed message is appended and the
//!    pack fsynced (`Store::commit`): that is how the index gets
//!    `archived_at`, and `repair` rebuilds it from the packs;
//! 6. only then are the intents cleared.
//!
//! A crash after 2 leaves intents that the next run resumes before anything
//! else ([`resume`]): UIDs still on the server are verified and expunged
//! again, absent ones are recorded as archived. A crash after 5 and before 6
//! leaves intents whose messages are already recorded; resuming records them
//! again, which changes nothing (`archived_at` keeps its first value).
//!
//! `MAILKEEP_FAILPOINT=archive-after-intent|archive-after-store|archive-after-expunge`
//! aborts the process right after that step, for crash tests.

use std::collections::{BTreeMap, BTreeSet};

use crate::imap::{compress_uid_set, Connection, ErrorKind, ImapError};
use crate::index::archive::ArchiveIntent;
use crate::model::records::{RefEvent, RefRecord};
use crate::model::{BlobId, Folder, Uid};
use crate::store::SharedStore;
use crate::store::{now, StoreError};

use super::{FolderArchive, Resumed};
use crate::ops::OpError;

/// Aborts the process when `MAILKEEP_FAILPOINT` names this step (testing aid).
fn failpoint(name: &str) {
    if std::env::var_os("MAILKEEP_FAILPOINT").is_some_and(|v| v == name) {
        std::process::abort();
    }
}

/// A message chosen for this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    pub uid: Uid,
    pub blob: BlobId,
    pub size: u64,
}

/// How a folder's archive went wrong: only that folder (the run goes on
/// with the others), or the connection or store (the run stops).
pub enum Fail {
    Folder(String),
    Fatal(Box<OpError>),
}

impl From<ImapError> for Fail {
    fn from(e: ImapError) -> Fail {
        match e.kind() {
            ErrorKind::Protocol | ErrorKind::Unsupported if !e.retryable() => {
                Fail::Folder(crate::ops::failure_text(&e))
            }
            _ => Fail::Fatal(Box::new(e.into())),
        }
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Fatal(Box::new(e.into()))
    }
}

impl From<crate::index::IndexError> for Fail {
    fn from(e: crate::index::IndexError) -> Fail {
        Fail::Fatal(Box::new(e.into()))
    }
}

pub struct Ctx<'a> {
    pub store: &'a SharedStore,
    pub account: &'a str,
    pub batch: usize,
}

/// What one batch did.
struct BatchDone {
    removed: Vec<Uid>,
    bytes: u64,
    /// The folder's UIDs after the batch.
    after: BTreeSet<Uid>,
    /// What the confirmation found amiss (the batch is recorded as far as
    /// it went; the folder stops here).
    problem: Option<String>,
}

/// Steps 1–6 for one batch of one folder (selected read-write). `before`
/// is every UID the folder had before the batch.
async fn expunge_batch(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    folder: &str,
    raw: &str,
    uidvalidity: u32,
    batch: &[Chosen],
    before: &BTreeSet<Uid>,
) -> Result<BatchDone, Fail> {
    // 1. Read back every copy; a damaged one stops everything.
    ctx.store.run_here(|s| -> Result<(), StoreError> {
        for c in batch {
            s.copy_blob_to(&c.blob, &mut std::io::sink())?;
        }
        Ok(())
    })?;
    // 2. The intent, committed before the server is touched.
    let at = now();
    let intents: Vec<ArchiveIntent> = batch
        .iter()
        .map(|c| ArchiveIntent {
            account: ctx.account.to_string(),
            raw_name: raw.to_string(),
            uidvalidity,
            uid: c.uid,
            blob: c.blob,
            size: c.size,
            created_at: at,
        })
        .collect();
    ctx.store
        .run_here(|s| s.index().add_archive_intents(&intents))?;
    failpoint("archive-after-intent");
    // 3. Exactly these UIDs.
    let uids: Vec<Uid> = batch.iter().map(|c| c.uid).collect();
    let set = compress_uid_set(&uids);
    conn.uid_store_add_deleted(&set).await?;
    failpoint("archive-after-store");
    conn.uid_expunge(&set).await?;
    failpoint("archive-after-expunge");
    // 4. Confirm.
    let after: BTreeSet<Uid> = conn.uid_search_all().await?.into_iter().collect();
    let chosen: BTreeSet<Uid> = uids.iter().copied().collect();
    let removed: Vec<Uid> = uids
        .iter()
        .copied()
        .filter(|u| !after.contains(u))
        .collect();
    let kept: Vec<Uid> = uids.iter().copied().filter(|u| after.contains(u)).collect();
    let lost: Vec<Uid> = before
        .iter()
        .copied()
        .filter(|u| !chosen.contains(u) && !after.contains(u))
        .collect();
    // 5 and 6.
    record_archived(ctx, raw, uidvalidity, &removed)?;
    record_server_count(ctx, raw, uidvalidity, after.len() as u32)?;
    let bytes = batch
        .iter()
        .filter(|c| !after.contains(&c.uid))
        .map(|c| c.size)
        .sum();
    let problem = if !kept.is_empty() {
        Some(format!(
            "UID EXPUNGE left {} of the chosen messages in `{folder}` on the server (UIDs {}); \
             they stay recorded as intended and the next run tries them again",
            kept.len(),
            compress_uid_set(&kept)
        ))
    } else if !lost.is_empty() {
        Some(format!(
            "{} messages left `{folder}` during the archive that mailkeep did not remove (UIDs {}); \
             another program deleted them",
            lost.len(),
            compress_uid_set(&lost)
        ))
    } else {
        None
    };
    Ok(BatchDone {
        removed,
        bytes,
        after,
        problem,
    })
}

/// The folder's count on the server, as the confirmation saw it: `status`
/// right after an archive shows what the server holds now, not what it
/// held at the last backup.
fn record_server_count(ctx: &Ctx<'_>, raw: &str, uidvalidity: u32, count: u32) -> Result<(), Fail> {
    ctx.store.run_here(|s| -> Result<(), Fail> {
        let Some(mb) = s
            .index()
            .mailboxes(ctx.account)?
            .into_iter()
            .find(|m| m.raw_name == raw && m.uidvalidity == uidvalidity && m.is_current)
        else {
            return Ok(());
        };
        s.put_mailbox(crate::model::records::MailboxRecord {
            account: ctx.account.to_string(),
            account_kind: "imap".into(),
            mailbox: raw.to_string(),
            name: mb.name,
            delimiter: mb.delimiter,
            special_use: mb.special_use,
            uidvalidity,
            uidnext: mb.uidnext,
            highestmodseq: mb.highestmodseq,
            server_count: Some(count),
            gone: false,
            at: now(),
        })?;
        s.commit()?;
        Ok(())
    })
}

/// Step 5 and 6: `archived` records made durable, then the intents cleared.
fn record_archived(ctx: &Ctx<'_>, raw: &str, uidvalidity: u32, uids: &[Uid]) -> Result<(), Fail> {
    if uids.is_empty() {
        return Ok(());
    }
    ctx.store.run_here(|s| -> Result<(), Fail> {
        let at = now();
        for &uid in uids {
            s.add_ref(RefRecord {
                account: ctx.account.to_string(),
                mailbox: raw.to_string(),
                uidvalidity,
                uid,
                at,
                event: RefEvent::Archived,
            })?;
        }
        s.commit()?;
        s.index()
            .clear_archive_intents(ctx.account, raw, uidvalidity, uids)?;
        Ok(())
    })
}

/// Archives the chosen messages of one folder in batches. The folder is
/// selected read-write; its UIDVALIDITY must still be `uidvalidity`.
pub async fn archive_folder(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    folder: &Folder,
    uidvalidity: u32,
    chosen: &[Chosen],
    out: &mut FolderArchive,
) -> Result<(), Fail> {
    let raw = folder.raw.as_str();
    let state = conn.select(raw).await?;
    if state.uidvalidity != uidvalidity {
        return Err(Fail::Folder(format!(
            "the UIDVALIDITY of `{}` changed from {uidvalidity} to {} since it was backed up; \
             nothing was removed from it",
            folder.display, state.uidvalidity
        )));
    }
    let mut before: BTreeSet<Uid> = conn.uid_search_all().await?.into_iter().collect();
    let (present, vanished): (Vec<&Chosen>, Vec<&Chosen>) =
        chosen.iter().partition(|c| before.contains(&c.uid));
    out.vanished += vanished.len() as u64;
    let present: Vec<Chosen> = present.into_iter().cloned().collect();
    for batch in present.chunks(ctx.batch.max(1)) {
        let done =
            expunge_batch(conn, ctx, &folder.display, raw, uidvalidity, batch, &before).await?;
        out.archived += done.removed.len() as u64;
        out.archived_bytes += done.bytes;
        if let Some(p) = done.problem {
            return Err(Fail::Folder(p));
        }
        before = done.after;
    }
    Ok(())
}

/// Finishes what an interrupted run left: for each folder generation with
/// pending intents, UIDs still on the server are verified and expunged,
/// absent ones recorded as archived. Intents whose folder is gone or has a
/// new UIDVALIDITY cannot be matched to a message any more: they are
/// dropped, with a warning (the messages stay in the store either way).
pub async fn resume(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    listed: &[Folder],
    resumed: &mut Resumed,
) -> Result<(), Fail> {
    let intents = ctx
        .store
        .run_here(|s| s.index().archive_intents(ctx.account))?;
    let mut groups: BTreeMap<(String, u32), Vec<ArchiveIntent>> = BTreeMap::new();
    for i in intents {
        groups
            .entry((i.raw_name.clone(), i.uidvalidity))
            .or_default()
            .push(i);
    }
    for ((raw, uidvalidity), group) in groups {
        match resume_group(conn, ctx, listed, &raw, uidvalidity, &group, resumed).await {
            Ok(()) => {}
            Err(Fail::Folder(e)) => resumed.errors.push(e),
            Err(fatal) => return Err(fatal),
        }
    }
    Ok(())
}

async fn resume_group(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    listed: &[Folder],
    raw: &str,
    uidvalidity: u32,
    group: &[ArchiveIntent],
    resumed: &mut Resumed,
) -> Result<(), Fail> {
    let uids: Vec<Uid> = group.iter().map(|i| i.uid).collect();
    let Some(folder) = listed.iter().find(|f| f.raw == raw && f.selectable) else {
        resumed.warnings.push(format!(
            "folder `{}` is gone from the server: {} messages an interrupted archive meant to \
             remove from it stay in the store, not marked archived",
            crate::imap::decode_mailbox_name(raw),
            uids.len()
        ));
        ctx.store.run_here(|s| {
            s.index()
                .clear_archive_intents(ctx.account, raw, uidvalidity, &uids)
        })?;
        resumed.abandoned += uids.len() as u64;
        return Ok(());
    };
    let state = conn.select(raw).await?;
    if state.uidvalidity != uidvalidity {
        resumed.warnings.push(format!(
            "the UIDVALIDITY of `{}` changed since an interrupted archive: {} messages it meant \
             to remove stay in the store, not marked archived",
            folder.display,
            uids.len()
        ));
        ctx.store.run_here(|s| {
            s.index()
                .clear_archive_intents(ctx.account, raw, uidvalidity, &uids)
        })?;
        resumed.abandoned += uids.len() as u64;
        return Ok(());
    }
    let present: BTreeSet<Uid> = conn.uid_search_all().await?.into_iter().collect();
    let absent: Vec<Uid> = uids
        .iter()
        .copied()
        .filter(|u| !present.contains(u))
        .collect();
    record_archived(ctx, raw, uidvalidity, &absent)?;
    resumed.recorded += absent.len() as u64;
    let again: Vec<Chosen> = group
        .iter()
        .filter(|i| present.contains(&i.uid))
        .map(|i| Chosen {
            uid: i.uid,
            blob: i.blob,
            size: i.size,
        })
        .collect();
    let mut before = present;
    for batch in again.chunks(ctx.batch.max(1)) {
        let d = expunge_batch(conn, ctx, &folder.display, raw, uidvalidity, batch, &before).await?;
        resumed.expunged += d.removed.len() as u64;
        if let Some(p) = d.problem {
            return Err(Fail::Folder(p));
        }
        before = d.after;
    }
    Ok(())
}

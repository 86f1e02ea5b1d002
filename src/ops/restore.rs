//! `mailkeep restore`: puts stored mail back on an IMAP account, byte for
//! byte, with its flags and INTERNALDATE, never twice.
//!
//! Order of a folder, and why a crash anywhere is harmless:
//! 1. `EXAMINE` the target folder, read the restore map (index, migration
//!    0003) and list what the target holds: UID, size, INTERNALDATE and
//!    Message-ID of each message (`fetch_identity`).
//! 2. A stored message is skipped when the map names a UID the target still
//!    has (same UIDVALIDITY), or when the target holds a message with its
//!    Message-ID, INTERNALDATE and size (exact, or as CRLF, give or take two
//!    bytes); without a Message-ID, when a message of that size and date
//!    serves the same bytes (up to the final line ending).
//! 3. The folder is closed (`UNSELECT`, else `CLOSE` of the read-only
//!    folder, which expunges nothing): an APPEND never goes into the mailbox
//!    the session has open (Courier refuses it).
//! 4. The rest is appended in batches ([`BATCH_MESSAGES`], [`BATCH_BYTES`]):
//!    MULTIAPPEND when offered (a refused batch split until the refused
//!    message is alone), else APPENDs pipelined with LITERAL+, else one at a
//!    time. The APPENDUIDs go into a batch that is written to the map in one
//!    transaction every [`RECORD_EVERY`] messages, at the end of the folder
//!    and before any error is returned.
//!
//! A crash between 4's APPEND and its record leaves a message the map does
//! not know; the next run finds it in step 2 and records it. So the map is
//! only a cache: losing it costs a re-check, never a duplicate.

pub mod big;
pub mod check;
pub mod folders;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::imap::{AppendMessage, Connection, ImapError, MessageIdentity};
use crate::index::{IndexError, MailboxRow, RestoredUid, StoredMessage};
use crate::model::{BlobId, Flags, InternalDate, Uid};
use crate::store::now;
use crate::store::SharedStore;

use super::failure_text as error_chain;
use super::{backoff, ensure_connected, Login, OpError};
use check::{crlf_form, message_id, same_bytes, served_message_id, TargetIndex};
use plan::{FolderPlan, FolderRules, Item, Selection, SkippedFolder, TargetShape};

/// Restore-map records are written at least this often (messages).
pub const RECORD_EVERY: usize = 50;
/// … and at least this often (time).
const RECORD_AFTER: Duration = Duration::from_secs(2);
/// A batch of appends holds at most this many messages …
const BATCH_MESSAGES: usize = 200;
/// … and this many bytes (unless one message alone is bigger): what a
/// connection holds in memory while it appends.
const BATCH_BYTES: u64 = 8 * 1024 * 1024;
/// APPENDs sent without waiting (LITERAL+, no MULTIAPPEND): at most this
/// many bytes of messages whose answer has not come.
const PIPELINE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// The account to restore to (from the config).
    pub target: String,
    /// The account whose stored mail is restored; default: `target`.
    pub from: Option<String>,
    pub selection: Selection,
    /// `--to-folder`, `--map`, `--exclude`.
    pub rules: FolderRules,
    pub dry_run: bool,
    pub jobs: usize,
    /// Reconnect attempts for a folder whose connection dropped.
    pub retries: u32,
    /// Carry the source's flag changes over to the copies restored before
    /// (`migrate`): each target folder is opened read-write to set them.
    pub sync_flags: bool,
}

/// Progress reports; the CLI draws them.
pub trait RestoreProgress: Send + Sync {
    fn folder_started(&self, _folder: &str, _messages: u64, _bytes: u64) {}
    fn message_done(&self, _folder: &str, _bytes: u64) {}
    fn folder_done(&self, _folder: &str) {}
}

/// A message the target would not take.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Refused {
    pub folder: String,
    pub date: String,
    pub subject: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FolderReport {
    pub sources: Vec<String>,
    pub target: String,
    #[serde(skip)]
    pub target_raw: String,
    /// The folder was not on the target: created (or would be).
    pub created: bool,
    /// A segment of the name held the target's separator and was changed.
    pub renamed: bool,
    /// What the target folder is for (`\\Sent`, …), when known.
    pub special_use: Option<String>,
    /// Messages the source folders held at their last backup, when known.
    pub source_count: Option<u64>,
    /// Messages left out because they come through another folder.
    pub skipped: u64,
    pub in_store: u64,
    pub bytes: u64,
    /// Appended (converted ones included); with `--dry-run`: would be.
    pub appended: u64,
    pub appended_bytes: u64,
    pub already_there: u64,
    /// Appended with CRLF line endings after the exact bytes were refused.
    pub converted: u64,
    /// Copies restored before whose flags were set to the source's again
    /// (with `sync_flags`; with `--dry-run`: would be).
    pub flags_changed: u64,
    /// Of `appended`: copied on the server from another folder of the
    /// target, not uploaded again (on Gmail: a label added).
    pub copied: u64,
    /// How much the target slowed us down (throttling, too many connections).
    pub pace: crate::imap::Pace,
    /// Flag changes the target refused (its reason).
    pub flag_errors: Vec<String>,
    pub refused: Vec<Refused>,
    pub error: Option<String>,
}

impl FolderReport {
    fn new(plan: &FolderPlan) -> FolderReport {
        FolderReport {
            sources: plan.sources.clone(),
            target: plan.target.clone(),
            target_raw: plan.target_raw.clone(),
            renamed: plan.renamed,
            special_use: plan.special_use.clone(),
            source_count: plan.source_count,
            skipped: plan.skipped,
            in_store: plan.count,
            bytes: plan.size,
            ..Default::default()
        }
    }

    /// Messages neither on the target nor refused (a failed folder).
    pub fn not_done(&self) -> u64 {
        self.in_store
            .saturating_sub(self.appended + self.already_there + self.refused.len() as u64)
    }
}

#[derive(Debug)]
pub struct RestoreReport {
    pub source: String,
    pub target: String,
    pub folders: Vec<FolderReport>,
    /// Source folders left out, and why.
    pub skipped: Vec<SkippedFolder>,
    pub elapsed: Duration,
    pub dry_run: bool,
    /// How much the target slowed the first connection down (the folders'
    /// connections: in each folder's report).
    pub pace: crate::imap::Pace,
}

impl RestoreReport {
    /// How much the target slowed this restore down, all connections.
    pub fn total_pace(&self) -> crate::imap::Pace {
        let mut pace = self.pace;
        for f in &self.folders {
            pace.add(f.pace);
        }
        pace
    }

    pub fn ok(&self) -> bool {
        self.folders
            .iter()
            .all(|f| f.error.is_none() && f.refused.is_empty() && f.flag_errors.is_empty())
    }
}

/// Why a folder stopped.
#[derive(Debug, thiserror::Error)]
enum FolderError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Op(#[from] OpError),
}

impl FolderError {
    fn retryable(&self) -> bool {
        matches!(self, FolderError::Imap(e) if e.retryable())
    }
}

/// Runs a restore (or, with `dry_run`, plans it against the target without
/// changing anything).
pub async fn restore(
    config: &Config,
    store: &SharedStore,
    opts: &RestoreOptions,
    progress: &dyn RestoreProgress,
) -> Result<RestoreReport, OpError> {
    let started = Instant::now();
    let source = opts.from.clone().unwrap_or_else(|| opts.target.clone());
    let acct = config.account(&opts.target)?;
    let (mailboxes, all_folders) = load_source(store, &source).await?;

    let login = Login::new(&opts.target, acct);
    let mut pace = crate::imap::Pace::default();
    let mut first = super::connect_paced(&login, &mut pace).await?;
    let namespace = first.namespace().await?;
    let shape = TargetShape::from(namespace).with_special_use(&first.list().await?);
    let built = {
        let (selection, rules) = (opts.selection.clone(), opts.rules.clone());
        store
            .run(move |s| {
                plan::build(
                    &mailboxes,
                    &all_folders,
                    &selection,
                    &rules,
                    &shape,
                    &mut InStore(s),
                )
            })
            .await?
    };
    let plans = built.folders;
    if plans.is_empty() && built.skipped.is_empty() {
        return Err(OpError::usage(
            format!("no folder of account `{source}` in the store matches"),
            Some("see `mailkeep status` for its folders; `--folder` takes patterns like `Projects/*`"),
        ));
    }
    let existing: BTreeSet<String> = first
        .list()
        .await?
        .into_iter()
        .map(|f| normal_name(&f.raw))
        .collect();

    let mut reports: Vec<FolderReport> = Vec::new();
    let mut queue = VecDeque::new();
    for p in plans {
        let mut r = FolderReport::new(&p);
        r.created = !existing.contains(&normal_name(&p.target_raw));
        if r.created && !opts.dry_run {
            // Folders are created one by one on the first connection, before
            // any worker runs, so parents are never created twice at once.
            if let Err(e) = first.create(&p.target_raw).await {
                let listed = first.list().await?;
                if !listed.iter().any(|f| f.raw == p.target_raw) {
                    r.error = Some(error_chain(&e));
                    reports.push(r);
                    continue;
                }
            }
        }
        queue.push_back((p, r));
    }

    let queue = Mutex::new(queue);
    let outcomes = Mutex::new(Vec::new());
    let mut initial = Some(first);
    let workers: Vec<_> = (0..acct.connections(opts.jobs))
        .map(|_| {
            worker(
                initial.take(),
                &login,
                store,
                opts,
                progress,
                &queue,
                &outcomes,
            )
        })
        .collect();
    futures::future::join_all(workers).await;
    reports.extend(outcomes.into_inner().unwrap_or_else(|p| p.into_inner()));
    reports.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(RestoreReport {
        source,
        target: opts.target.clone(),
        folders: reports,
        skipped: built.skipped,
        elapsed: started.elapsed(),
        dry_run: opts.dry_run,
        pace,
    })
}

/// INBOX is case-insensitive; everything else is compared as is.
fn normal_name(raw: &str) -> String {
    if raw.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else {
        raw.to_string()
    }
}

type SourceData = (Vec<MailboxRow>, Vec<(String, Option<String>)>);

/// The store as the plan reads it: each folder generation's messages, row
/// by row.
struct InStore<'a>(&'a crate::store::Store);

impl plan::Messages for InStore<'_> {
    fn each(
        &mut self,
        mailbox: &MailboxRow,
        each: &mut dyn FnMut(StoredMessage),
    ) -> Result<(), IndexError> {
        self.0.index().for_each_in_mailbox(mailbox.id, |m| {
            each(m);
            Ok::<(), IndexError>(())
        })
    }
}

async fn load_source(store: &SharedStore, source: &str) -> Result<SourceData, OpError> {
    let source = source.to_string();
    store
        .run(move |s| -> Result<SourceData, OpError> {
            let rows = s.index().mailboxes(&source)?;
            if rows.is_empty() {
                let known: Vec<String> = s
                    .index()
                    .accounts()?
                    .into_iter()
                    .map(|(n, _)| format!("`{n}`"))
                    .collect();
                return Err(OpError::usage(
                    format!("the store holds no mail of account `{source}`"),
                    Some(&if known.is_empty() {
                        "the store is empty: run `mailkeep backup` first".to_string()
                    } else {
                        format!(
                            "the store holds {}; pick one with `--from NAME`",
                            known.join(", ")
                        )
                    }),
                ));
            }
            let mut all: Vec<(String, Option<String>)> = rows
                .iter()
                .map(|mb| (mb.name.clone(), mb.delimiter.clone()))
                .collect();
            all.sort();
            all.dedup();
            Ok((rows, all))
        })
        .await
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    mut conn: Option<Connection>,
    login: &Login<'_>,
    store: &SharedStore,
    opts: &RestoreOptions,
    progress: &dyn RestoreProgress,
    queue: &Mutex<VecDeque<(FolderPlan, FolderReport)>>,
    outcomes: &Mutex<Vec<FolderReport>>,
) {
    loop {
        let Some((plan, mut report)) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front()
        else {
            break;
        };
        progress.folder_started(&plan.target, plan.count, plan.size);
        match load_items(store, plan, &opts.selection).await {
            Ok(plan) => {
                // What the folder takes, as read now.
                report.in_store = plan.items.len() as u64;
                report.bytes = plan.items.iter().map(|i| i.size).sum();
                restore_folder(&mut conn, login, store, opts, progress, &plan, &mut report).await;
            }
            Err(e) => report.error = Some(error_chain(&e)),
        }
        progress.folder_done(&report.target);
        outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(report);
    }
    if let Some(c) = conn {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.logout()).await;
    }
}

/// One folder, its items read, restored on this worker's connection (a new
/// one when it is lost; waiting when the target says to slow down); how it
/// went is in `report`.
async fn restore_folder(
    conn: &mut Option<Connection>,
    login: &Login<'_>,
    store: &SharedStore,
    opts: &RestoreOptions,
    progress: &dyn RestoreProgress,
    plan: &FolderPlan,
    report: &mut FolderReport,
) {
    let mut done: HashSet<(BlobId, u32)> = HashSet::new();
    let mut attempt = 0u32;
    loop {
        let c = match ensure_connected(conn, login, &mut attempt, opts.retries, &mut report.pace)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                report.error = Some(error_chain(&e));
                break;
            }
        };
        let before = done.len();
        let mut run = FolderRun {
            conn: c,
            store,
            account: &opts.target,
            plan,
            dry_run: opts.dry_run,
            progress,
            report,
            done: &mut done,
            batch: Vec::new(),
            last_flush: Instant::now(),
            uidvalidity: 0,
            sync_flags: opts.sync_flags,
        };
        let res = run.run().await;
        // Whatever happened, what was appended is recorded.
        let flushed = run.flush().await;
        match res.and(flushed.map_err(FolderError::from)) {
            Ok(()) => break,
            Err(FolderError::Imap(e)) if report.pace.wait_if_throttled(e.throttle()).await => {
                // The target asked us to slow down: wait as it asks, on
                // a new connection go over the folder again (the check
                // finds what was appended).
                *conn = None;
            }
            Err(e) if e.retryable() && attempt < opts.retries => {
                // Reconnect and go over the folder again: the check finds
                // whatever the lost connection had already appended.
                *conn = None;
                if done.len() == before {
                    attempt += 1;
                }
                backoff(attempt).await;
            }
            Err(e) => {
                // A session given up (a failed streamed APPEND) is not
                // handed to the next folder either.
                if e.retryable() || conn.as_ref().is_some_and(|c| !c.usable()) {
                    *conn = None;
                }
                report.error = Some(error_chain(&e));
                break;
            }
        }
    }
}

/// A folder's plan with its items read from the store (its turn has come).
async fn load_items(
    store: &SharedStore,
    mut plan: FolderPlan,
    selection: &Selection,
) -> Result<FolderPlan, OpError> {
    let selection = selection.clone();
    store
        .run(move |s| {
            plan.items = plan::items(&plan, &selection, &mut InStore(s))?;
            Ok(plan)
        })
        .await
}

/// One attempt at one folder.
struct FolderRun<'a> {
    conn: &'a mut Connection,
    store: &'a SharedStore,
    account: &'a str,
    plan: &'a FolderPlan,
    dry_run: bool,
    progress: &'a dyn RestoreProgress,
    report: &'a mut FolderReport,
    /// Messages settled (appended, found, refused) in earlier attempts too.
    done: &'a mut HashSet<(BlobId, u32)>,
    batch: Vec<RestoredUid>,
    last_flush: Instant,
    uidvalidity: u32,
    sync_flags: bool,
}

impl FolderRun<'_> {
    async fn run(&mut self) -> Result<(), FolderError> {
        let raw = self.plan.target_raw.as_str();
        if self.dry_run && self.report.created {
            // Nothing there yet: everything would be appended.
            for item in &self.plan.items {
                self.report.appended += 1;
                self.report.appended_bytes += item.size;
            }
            return Ok(());
        }
        // 1. What the target holds, read with the folder open read-only; every
        //    message decided before anything is appended.
        let writable = self.sync_flags && !self.dry_run;
        let state = if writable {
            self.conn.select(raw).await?
        } else {
            self.conn.examine(raw).await?
        };
        self.uidvalidity = state.uidvalidity;
        let recorded = {
            let (a, r) = (self.account.to_string(), raw.to_string());
            self.store
                .run(move |s| s.index().restored_in(&a, &r))
                .await
                .map_err(OpError::from)?
        };
        let listing = if state.exists > 0 {
            self.conn.fetch_identity("1:*").await?
        } else {
            Vec::new()
        };
        let mut target = TargetIndex::new(&listing);
        drop(listing);
        let plan = self.plan;
        let mut to_append: Vec<&Item> = Vec::new();
        let mut flag_changes = FlagChanges::default();
        for item in &plan.items {
            if self.done.contains(&item.key()) {
                continue;
            }
            // The map says it is there, and the target still has that UID.
            if let Some(r) = recorded.get(&item.key()) {
                if r.uidvalidity == state.uidvalidity && target.claim_uid(r.uid) {
                    if self.sync_flags {
                        flag_changes.note(item, r);
                    }
                    self.settled(item, Settled::AlreadyThere, None);
                    continue;
                }
            }
            if target.is_empty() {
                to_append.push(item);
                continue;
            }
            // The target has it already (not put there by us, or a crash
            // before the record was written).
            let found = if item.size >= big::STREAM_FROM {
                let scan = big::scan(self.store, item.blob).await?;
                self.find_big_on_target(&mut target, item, &scan).await?
            } else {
                let bytes = read_blob(self.store, item.blob).await?;
                self.find_on_target(&mut target, item, &bytes).await?
            };
            match found {
                Some(uid) => self.settled(item, Settled::AlreadyThere, Some(uid)),
                None => to_append.push(item),
            }
        }
        drop(target);
        self.apply_flag_changes(flag_changes).await?;
        self.flush().await?;
        // Never APPEND into the mailbox the session has open: some servers
        // (Courier) refuse every such APPEND.
        self.conn.unselect().await?;
        // What the target says it cannot take is not sent (APPENDLIMIT).
        if let Some(limit) = self.conn.capabilities().append_limit() {
            let (fits, too_big): (Vec<&Item>, Vec<&Item>) =
                to_append.into_iter().partition(|i| i.size <= limit);
            to_append = fits;
            for item in too_big {
                self.refuse_too_big(item, limit).await?;
            }
        }
        if self.dry_run {
            for item in to_append {
                self.settled(item, Settled::Appended, None);
            }
            return Ok(());
        }
        // What this run or an earlier one put into another folder of the
        // target is copied on the server instead of uploaded again.
        if self.conn.capabilities().has("UIDPLUS") && !to_append.is_empty() {
            to_append = self.copy_from_elsewhere(to_append).await?;
        }
        // 2. Append the rest, in batches.
        let mut rest = to_append.as_slice();
        while !rest.is_empty() {
            if rest[0].size >= big::STREAM_FROM {
                // Too big to hold in memory: alone, streamed from the store.
                self.append_big_item(rest[0]).await?;
                rest = &rest[1..];
                self.maybe_flush().await?;
                continue;
            }
            let mut n = 0;
            let mut bytes = 0u64;
            while n < rest.len()
                && rest[n].size < big::STREAM_FROM
                && n < BATCH_MESSAGES
                && (n == 0 || bytes + rest[n].size <= BATCH_BYTES)
            {
                bytes += rest[n].size;
                n += 1;
            }
            let (batch, after) = rest.split_at(n);
            let ids: Vec<BlobId> = batch.iter().map(|i| i.blob).collect();
            let contents = read_blobs(self.store, ids).await?;
            self.append_batch(batch, &contents).await?;
            // The batch was read on the store's thread and is freed on this
            // one: its pages go back now, not when that arena is next
            // trimmed (a quarter of a whole restore's resident memory, in
            // the same time: docs/benchmarks.md, "Resident memory of a
            // restore").
            drop(contents);
            crate::heap::give_back();
            rest = after;
            self.maybe_flush().await?;
        }
        Ok(())
    }

    /// Sets the source's flags again on copies restored before: only the
    /// flags that changed on the source since mailkeep last set them are
    /// added or removed, so what was changed on the target stays. Grouped:
    /// one `UID STORE` per set of changes. A refused change is noted, not
    /// fatal.
    async fn apply_flag_changes(&mut self, changes: FlagChanges) -> Result<(), FolderError> {
        for (item_key, flags, uid) in changes.learned {
            // Flags not known (found there, or an older record): from now on.
            self.batch.push(RestoredUid {
                blob: item_key.0,
                copy: item_key.1,
                uidvalidity: self.uidvalidity,
                uid,
                flags: Some(flags),
            });
        }
        for ((add, remove), uids) in changes.grouped {
            if self.dry_run {
                self.report.flags_changed += uids.len() as u64;
                continue;
            }
            let set = crate::imap::compress_uid_set(&uids.iter().map(|u| u.1).collect::<Vec<_>>());
            let mut result = Ok(());
            for (on, list) in [(true, &add), (false, &remove)] {
                if list.is_empty() || result.is_err() {
                    continue;
                }
                let flags: Vec<&str> = list.iter().map(String::as_str).collect();
                result = self.conn.uid_store_flags(&set, on, &flags).await;
            }
            match result {
                Ok(()) => {
                    self.report.flags_changed += uids.len() as u64;
                    for (key, uid, flags) in uids {
                        self.batch.push(RestoredUid {
                            blob: key.0,
                            copy: key.1,
                            uidvalidity: self.uidvalidity,
                            uid,
                            flags: Some(flags),
                        });
                    }
                }
                Err(e @ ImapError::Command { .. }) => self.report.flag_errors.push(
                    e.server_text()
                        .map(String::from)
                        .unwrap_or_else(|| error_chain(&e)),
                ),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Appends a batch of small messages the fastest way the target offers:
    /// MULTIAPPEND (one command; a refused batch is split in halves until the
    /// refused message is alone), else APPENDs sent without waiting for each
    /// answer (LITERAL+), else one at a time. A refused message is tried
    /// alone in CRLF form, then reported.
    async fn append_batch(
        &mut self,
        batch: &[&Item],
        contents: &[Vec<u8>],
    ) -> Result<(), FolderError> {
        let raw = self.plan.target_raw.clone();
        let multi = self.conn.capabilities().has("MULTIAPPEND");
        let plus = self.conn.capabilities().has("LITERAL+");
        if batch.len() > 1 && multi {
            // Ranges of the batch still to send, first ones last.
            let mut stack = vec![(0, batch.len())];
            while let Some((a, b)) = stack.pop() {
                if b - a == 1 {
                    self.append_one(batch[a], &contents[a]).await?;
                    continue;
                }
                let msgs: Vec<AppendMessage<'_>> = (a..b)
                    .map(|i| AppendMessage {
                        flags: &batch[i].flags,
                        date: Some(&batch[i].internaldate),
                        bytes: &contents[i],
                    })
                    .collect();
                match self.conn.multiappend(&raw, &msgs).await {
                    Ok(uids) => {
                        for (k, i) in (a..b).enumerate() {
                            self.settled(batch[i], Settled::Appended, uids.get(k).copied());
                        }
                    }
                    Err(e) if is_refusal(&e) => {
                        // One of them (at least) is refused; nothing was stored.
                        let mid = a + (b - a) / 2;
                        stack.push((mid, b));
                        stack.push((a, mid));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(());
        }
        if batch.len() > 1 && plus {
            let msgs: Vec<AppendMessage<'_>> = batch
                .iter()
                .zip(contents)
                .map(|(item, bytes)| AppendMessage {
                    flags: &item.flags,
                    date: Some(&item.internaldate),
                    bytes,
                })
                .collect();
            let results = self
                .conn
                .append_pipelined(&raw, &msgs, PIPELINE_BYTES)
                .await?;
            drop(msgs);
            // Every answer is taken in before an error stops the folder, so
            // what was appended is recorded.
            let mut stop: Option<ImapError> = None;
            for (i, r) in results.into_iter().enumerate() {
                match r {
                    Ok(uid) => self.settled(batch[i], Settled::Appended, uid),
                    Err(e) if is_refusal(&e) && stop.is_none() => {
                        self.append_one_crlf(batch[i], &contents[i], e).await?
                    }
                    Err(e) => {
                        stop.get_or_insert(e);
                    }
                }
            }
            return match stop {
                Some(e) => Err(e.into()),
                None => Ok(()),
            };
        }
        for (item, bytes) in batch.iter().zip(contents) {
            self.append_one(item, bytes).await?;
        }
        Ok(())
    }

    /// One message alone: the exact bytes; CRLF only if they are refused.
    async fn append_one(&mut self, item: &Item, bytes: &[u8]) -> Result<(), FolderError> {
        let raw = self.plan.target_raw.clone();
        match self
            .conn
            .append(&raw, &item.flags, Some(&item.internaldate), bytes)
            .await
        {
            Ok(uid) => {
                self.settled(item, Settled::Appended, uid);
                Ok(())
            }
            Err(e) if is_refusal(&e) => self.append_one_crlf(item, bytes, e).await,
            Err(e) => Err(e.into()),
        }
    }

    /// The exact bytes were refused (`reason`): the CRLF form once, if it
    /// differs; else, or if refused too, the message is reported.
    async fn append_one_crlf(
        &mut self,
        item: &Item,
        bytes: &[u8],
        reason: ImapError,
    ) -> Result<(), FolderError> {
        let raw = self.plan.target_raw.clone();
        let crlf = crlf_form(bytes);
        let mut reason = reason;
        if crlf.as_ref() != bytes {
            match self
                .conn
                .append(&raw, &item.flags, Some(&item.internaldate), &crlf)
                .await
            {
                Ok(uid) => {
                    self.settled(item, Settled::Converted, uid);
                    return Ok(());
                }
                Err(e2) if is_refusal(&e2) => reason = e2,
                Err(e2) => return Err(e2.into()),
            }
        }
        self.report
            .refused
            .push(refused(&self.plan.target, item, bytes, &reason));
        self.settled(item, Settled::Refused, None);
        Ok(())
    }

    /// A message of [`big::STREAM_FROM`] bytes or more, never held in
    /// memory (see [`big`]): the exact bytes, then CRLF if refused.
    async fn append_big_item(&mut self, item: &Item) -> Result<(), FolderError> {
        let scan = big::scan(self.store, item.blob).await?;
        match self.append_big(item, &scan, false).await {
            Ok(uid) => self.settled(item, Settled::Appended, uid),
            Err(FolderError::Imap(e)) if is_refusal(&e) => {
                let mut reason = e;
                if scan.crlf_differs() {
                    match self.append_big(item, &scan, true).await {
                        Ok(uid) => {
                            self.settled(item, Settled::Converted, uid);
                            return Ok(());
                        }
                        Err(FolderError::Imap(e2)) if is_refusal(&e2) => reason = e2,
                        Err(e2) => return Err(e2),
                    }
                }
                self.report
                    .refused
                    .push(refused(&self.plan.target, item, &scan.head, &reason));
                self.settled(item, Settled::Refused, None);
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// APPEND of a big message streamed from the store (its CRLF form when
    /// `crlf`). Damage found in the store is the folder's error, not the
    /// session's.
    async fn append_big(
        &mut self,
        item: &Item,
        scan: &big::Scan,
        crlf: bool,
    ) -> Result<Option<Uid>, FolderError> {
        let len = if crlf { scan.crlf_len } else { scan.len };
        let mut src = big::BlobStream::new(self.store, item.blob, crlf);
        let res = self
            .conn
            .append_from(
                &self.plan.target_raw,
                &item.flags,
                Some(&item.internaldate),
                len,
                scan.contains_nul,
                &mut src,
            )
            .await;
        let damage = src.finish().await;
        match (res, damage) {
            (Err(_), Some(e)) => Err(OpError::from(e).into()),
            (res, _) => Ok(res?),
        }
    }

    /// Step 2 for a big message: by Message-ID from its head, else by
    /// fetching the few candidates in chunks and comparing trimmed hashes.
    async fn find_big_on_target(
        &mut self,
        target: &mut TargetIndex,
        item: &Item,
        scan: &big::Scan,
    ) -> Result<Option<Uid>, FolderError> {
        if target.is_empty() {
            return Ok(None);
        }
        let sizes = [scan.len, scan.crlf_len];
        let unix = item.internaldate.unix;
        if let Some(found) = find_by_id(target, &scan.head, unix, &sizes) {
            return Ok(found);
        }
        for uid in target.candidates_without_id(unix, &sizes) {
            let mut h = big::TrimHasher::default();
            let res = self
                .conn
                .fetch_body_chunked(uid, 0, big::FETCH_CHUNK, &mut |c| {
                    h.update(c);
                    Ok(())
                })
                .await;
            match res {
                Ok(()) => {}
                // Gone from the target since it was listed.
                Err(ImapError::Missing { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
            if scan.trimmed.contains(&h.finalize()) {
                target.claim(uid);
                return Ok(Some(uid));
            }
        }
        Ok(None)
    }

    /// Step 2 of the module docs.
    async fn find_on_target(
        &mut self,
        target: &mut TargetIndex,
        item: &Item,
        bytes: &[u8],
    ) -> Result<Option<Uid>, FolderError> {
        if target.is_empty() {
            return Ok(None);
        }
        let crlf = crlf_form(bytes);
        let sizes = [bytes.len() as u64, crlf.len() as u64];
        let unix = item.internaldate.unix;
        if let Some(found) = find_by_id(target, bytes, unix, &sizes) {
            return Ok(found);
        }
        // No Message-ID (as the server sees it): compare the bytes of the few messages with the same
        // size and date (Dovecot serves NUL as 0x80, so that form counts too).
        let candidates = target.candidates_without_id(unix, &sizes);
        if candidates.is_empty() {
            return Ok(None);
        }
        let nul80: Vec<u8> = crlf
            .iter()
            .map(|&b| if b == 0 { 0x80 } else { b })
            .collect();
        let mut found = None;
        self.conn
            .fetch_bodies(&candidates, &mut |uid, served| {
                if found.is_none()
                    && (same_bytes(&served, bytes)
                        || same_bytes(&served, &crlf)
                        || same_bytes(&served, &nul80))
                {
                    found = Some(uid);
                }
                Ok(())
            })
            .await?;
        if let Some(uid) = found {
            target.claim(uid);
        }
        Ok(found)
    }

    fn settled(&mut self, item: &Item, how: Settled, uid: Option<Uid>) {
        match how {
            Settled::AlreadyThere => self.report.already_there += 1,
            Settled::Appended | Settled::Converted => {
                self.report.appended += 1;
                self.report.appended_bytes += item.size;
                if how == Settled::Converted {
                    self.report.converted += 1;
                }
            }
            Settled::Copied => {
                self.report.appended += 1;
                self.report.copied += 1;
            }
            Settled::Refused => {}
        }
        if let (Some(uid), false) = (uid, self.dry_run) {
            self.batch.push(RestoredUid {
                blob: item.blob,
                copy: item.copy,
                uidvalidity: self.uidvalidity,
                uid,
                // Appended with its flags; found there: not known.
                flags: (how != Settled::AlreadyThere).then(|| item.flags.clone()),
            });
        }
        self.done.insert(item.key());
        self.progress.message_done(&self.plan.target, item.size);
    }

    /// Copies on the server (`UID COPY`) the messages of `items` that were
    /// restored into another folder of the target before and are still
    /// there, the same size and date; sets each copy's flags to its own;
    /// returns the items still to append. On Gmail a copy is one more label
    /// on the same message: nothing is uploaded again, nothing counted
    /// against the upload limit twice.
    async fn copy_from_elsewhere<'i>(
        &mut self,
        items: Vec<&'i Item>,
    ) -> Result<Vec<&'i Item>, FolderError> {
        let raw = self.plan.target_raw.clone();
        let mut seen = HashSet::new();
        let firsts: Vec<BlobId> = items
            .iter()
            .filter(|i| seen.insert(i.blob))
            .map(|i| i.blob)
            .collect();
        let elsewhere = {
            let (a, r) = (self.account.to_string(), raw.clone());
            self.store
                .run(move |s| s.index().restored_elsewhere(&a, &r, &firsts))
                .await
                .map_err(OpError::from)?
        };
        if elsewhere.is_empty() {
            return Ok(items);
        }
        // By the folder they are in (its UIDVALIDITY then): (item, UID
        // there), one item per blob.
        type Group<'g> = (u32, Vec<(&'g Item, Uid)>);
        let mut by_folder: BTreeMap<String, Group<'i>> = BTreeMap::new();
        let mut taken = HashSet::new();
        let mut rest = Vec::new();
        for item in items {
            match elsewhere.get(&item.blob) {
                Some((folder, validity, uid)) if taken.insert(item.blob) => by_folder
                    .entry(folder.clone())
                    .or_insert_with(|| (*validity, Vec::new()))
                    .1
                    .push((item, *uid)),
                _ => rest.push(item),
            }
        }
        let mut copied: Vec<(&'i Item, Uid, Flags)> = Vec::new();
        for (folder, (validity, group)) in by_folder {
            // The folder may be gone or made anew since: then append.
            let state = match self.conn.examine(&folder).await {
                Ok(st) if st.uidvalidity == validity => st,
                Ok(_) | Err(ImapError::Command { .. }) => {
                    rest.extend(group.into_iter().map(|(i, _)| i));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let uids: Vec<Uid> = group.iter().map(|(_, u)| *u).collect();
            let set = crate::imap::compress_uid_set(&uids);
            let there: HashMap<Uid, MessageIdentity> = if state.exists > 0 {
                self.conn
                    .fetch_identity(&set)
                    .await?
                    .into_iter()
                    .map(|m| (m.uid, m))
                    .collect()
            } else {
                HashMap::new()
            };
            let flags: HashMap<Uid, Flags> = if there.is_empty() {
                HashMap::new()
            } else {
                self.conn
                    .fetch_flags(&set, None)
                    .await?
                    .into_iter()
                    .map(|(u, f, _)| (u, f))
                    .collect()
            };
            let (same, differ): (Vec<_>, Vec<_>) = group.into_iter().partition(|(item, uid)| {
                there.get(uid).is_some_and(|m| {
                    m.size == item.size
                        && m.internaldate.unix == item.internaldate.unix
                        && m.internaldate.offset_min == item.internaldate.offset_min
                })
            });
            rest.extend(differ.into_iter().map(|(i, _)| i));
            if same.is_empty() {
                continue;
            }
            let set =
                crate::imap::compress_uid_set(&same.iter().map(|(_, u)| *u).collect::<Vec<_>>());
            let pairs: HashMap<Uid, Uid> = match self.conn.uid_copy(&set, &raw).await {
                Ok(p) => p.into_iter().collect(),
                Err(e) if is_refusal(&e) => {
                    // This server will not copy these: append them instead.
                    rest.extend(same.into_iter().map(|(i, _)| i));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            for (item, uid) in same {
                match pairs.get(&uid) {
                    Some(new) => {
                        copied.push((item, *new, flags.get(&uid).cloned().unwrap_or_default()))
                    }
                    // Copied, but the server did not say where: the next
                    // run finds it there (and sets its flags).
                    None => self.settled(item, Settled::Copied, None),
                }
            }
        }
        if !copied.is_empty() {
            // Each copy gets its own flags: from the original's to the item's.
            self.conn.select(&raw).await?;
            let mut changes = FlagChanges::default();
            for (item, uid, had) in &copied {
                changes.note(
                    item,
                    &RestoredUid {
                        blob: item.blob,
                        copy: item.copy,
                        uidvalidity: self.uidvalidity,
                        uid: *uid,
                        flags: Some(had.clone()),
                    },
                );
            }
            for ((add, remove), uids) in changes.grouped {
                let set =
                    crate::imap::compress_uid_set(&uids.iter().map(|u| u.1).collect::<Vec<_>>());
                for (on, list) in [(true, &add), (false, &remove)] {
                    if !list.is_empty() {
                        let list: Vec<&str> = list.iter().map(String::as_str).collect();
                        self.conn.uid_store_flags(&set, on, &list).await?;
                    }
                }
            }
            for (item, uid, _) in copied {
                self.settled(item, Settled::Copied, Some(uid));
            }
            self.flush().await?;
        }
        self.conn.unselect().await?;
        // In the order of the plan, as the appends would have gone.
        let order: HashMap<(BlobId, u32), usize> = self
            .plan
            .items
            .iter()
            .enumerate()
            .map(|(n, i)| (i.key(), n))
            .collect();
        rest.sort_by_key(|i| order.get(&i.key()).copied().unwrap_or(usize::MAX));
        Ok(rest)
    }

    /// A message larger than the target's APPENDLIMIT: reported as refused,
    /// without sending it.
    async fn refuse_too_big(&mut self, item: &Item, limit: u64) -> Result<(), OpError> {
        let head = if item.size < big::STREAM_FROM {
            read_blob(self.store, item.blob).await?
        } else {
            Vec::new()
        };
        let subject = crate::formats::lines::first_value(&head, "subject")
            .map(|raw| crate::search::header::unstructured(&raw, None).text)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "(not read)".into());
        self.report.refused.push(Refused {
            folder: self.plan.target.clone(),
            date: format_date(&item.internaldate),
            subject,
            // Exact counts: the report holds data, the command line words.
            reason: format!(
                "{} bytes, more than the {limit} bytes the target takes for one message \
                 (APPENDLIMIT); not sent",
                item.size
            ),
        });
        self.settled(item, Settled::Refused, None);
        Ok(())
    }

    async fn maybe_flush(&mut self) -> Result<(), OpError> {
        if self.batch.len() >= RECORD_EVERY || self.last_flush.elapsed() >= RECORD_AFTER {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes the batch to the restore map in one transaction.
    async fn flush(&mut self) -> Result<(), OpError> {
        self.last_flush = Instant::now();
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let (a, r) = (self.account.to_string(), self.plan.target_raw.clone());
        self.store
            .run(move |s| -> Result<_, OpError> {
                Ok(s.index().record_restored(&a, &r, &batch, now())?)
            })
            .await
    }
}

/// Flag changes to carry over to copies restored before, found while the
/// target folder is looked at.
#[derive(Default)]
struct FlagChanges {
    /// (flags to add, flags to remove) → (item, target UID, the flags it gets).
    #[allow(clippy::type_complexity)]
    grouped: BTreeMap<(Vec<String>, Vec<String>), Vec<((BlobId, u32), Uid, Flags)>>,
    /// Copies whose flags were not known: recorded as the source's now.
    learned: Vec<((BlobId, u32), Flags, Uid)>,
}

impl FlagChanges {
    fn note(&mut self, item: &Item, r: &RestoredUid) {
        let Some(before) = &r.flags else {
            self.learned.push((item.key(), item.flags.clone(), r.uid));
            return;
        };
        let add: Vec<String> = item
            .flags
            .iter()
            .filter(|f| !before.contains(f))
            .map(String::from)
            .collect();
        let remove: Vec<String> = before
            .iter()
            .filter(|f| !item.flags.contains(f))
            .map(String::from)
            .collect();
        if add.is_empty() && remove.is_empty() {
            return;
        }
        self.grouped.entry((add, remove)).or_default().push((
            item.key(),
            r.uid,
            item.flags.clone(),
        ));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Settled {
    AlreadyThere,
    Appended,
    /// Copied on the server from another folder of the target (UID COPY).
    Copied,
    Converted,
    Refused,
}

/// A tagged NO/BAD about this message (bare LF, NUL, bad header, too big),
/// as opposed to one about the folder or the session (no such mailbox, over
/// quota, try later), which stops the folder.
fn is_refusal(e: &ImapError) -> bool {
    match e {
        ImapError::Command { source, .. } => {
            !source.is_temporary()
                && !matches!(
                    source.code.as_deref(),
                    Some("TRYCREATE" | "OVERQUOTA" | "NONEXISTENT" | "NOPERM")
                )
        }
        _ => false,
    }
}

/// Step 2 by Message-ID. `Some(answer)` when the Message-ID decides:
/// the stored message has one as the server sees it (the answer is then the
/// target message with it, or none: append), or has one only when read with
/// any line ending and the target has a message with that one. `None`:
/// compare bytes.
fn find_by_id(
    target: &mut TargetIndex,
    head: &[u8],
    unix: i64,
    sizes: &[u64],
) -> Option<Option<Uid>> {
    if let Some(id) = served_message_id(head) {
        return Some(target.claim_by_id(&id, unix, sizes));
    }
    // A target that made CR-only line endings CRLF sees this one.
    let id = message_id(head)?;
    target.claim_by_id(&id, unix, sizes).map(Some)
}

fn refused(folder: &str, item: &Item, bytes: &[u8], e: &ImapError) -> Refused {
    // Decoded as `show` decodes it, whatever the line endings.
    let subject = crate::formats::lines::first_value(bytes, "subject")
        .map(|raw| crate::search::header::unstructured(&raw, None).text)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "(no subject)".into());
    Refused {
        folder: folder.to_string(),
        date: format_date(&item.internaldate),
        subject,
        reason: e
            .server_text()
            .map(String::from)
            .unwrap_or_else(|| error_chain(e)),
    }
}

fn format_date(d: &InternalDate) -> String {
    let offset = chrono::FixedOffset::east_opt(d.offset_min * 60)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
    chrono::DateTime::from_timestamp(d.unix, 0)
        .unwrap_or_default()
        .with_timezone(&offset)
        .format("%Y-%m-%d %H:%M %z")
        .to_string()
}

async fn read_blob(store: &SharedStore, id: BlobId) -> Result<Vec<u8>, OpError> {
    Ok(store.run(move |s| s.read_blob(&id)).await?)
}

/// Several messages read in one turn of the store.
async fn read_blobs(store: &SharedStore, ids: Vec<BlobId>) -> Result<Vec<Vec<u8>>, OpError> {
    Ok(store
        .run(move |s| {
            ids.iter()
                .map(|id| s.read_blob(id))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::MessageIdentity;
    use crate::model::InternalDate;

    fn target(header: &[u8], size: u64) -> TargetIndex {
        TargetIndex::new(&[MessageIdentity {
            uid: 7,
            size,
            internaldate: InternalDate {
                unix: 100,
                offset_min: 0,
            },
            message_id_header: header.to_vec(),
        }])
    }

    #[test]
    fn a_cr_only_message_is_matched_however_the_target_kept_it() {
        let stored = b"Subject: old Mac\rMessage-ID: <cr@x>\r\rbody\r";
        let crlf = crlf_form(stored);
        let sizes = [stored.len() as u64, crlf.len() as u64];
        // Kept as it was: the server sees no Message-ID; bytes decide.
        let mut kept = target(b"", stored.len() as u64);
        assert_eq!(find_by_id(&mut kept, stored, 100, &sizes), None);
        // Made CRLF: the server sees the Message-ID.
        let mut converted = target(b"Message-ID: <cr@x>\r\n\r\n", crlf.len() as u64);
        assert_eq!(
            find_by_id(&mut converted, stored, 100, &sizes),
            Some(Some(7))
        );
        // A message with a Message-ID the server sees is matched by it alone.
        let plain = b"Message-ID: <p@x>\r\n\r\nbody\r\n";
        let mut other = target(b"Message-ID: <q@x>\r\n\r\n", plain.len() as u64);
        let n = [plain.len() as u64];
        assert_eq!(find_by_id(&mut other, plain, 100, &n), Some(None));
    }
}

//! `mailkeep archive`: frees server space without losing a message. The
//! chosen messages are backed up (the backup sync runs for each selected
//! folder first), verified in the store, then removed from the server
//! through the safety protocol of `protocol.rs`; they stay in the store,
//! marked archived, for export, search and restore.
//!
//! Candidates come from the store's own rows (the INTERNALDATE and size
//! mailkeep fetched), never from a server SEARCH. Messages another program
//! marked `\Deleted` are left alone, and so are drafts unless asked.

mod protocol;
pub mod select;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{AccountConfig, Config};
use crate::imap::Connection;
use crate::model::{Folder, Uid};
use crate::store::SharedStore;
use crate::sync::exec::{self, FolderOutcome, Progress, SyncOptions};

use super::quota::{read_quota, remember, roots_by_folder, RootUsage};
use super::{connect, folder_matches, OpError};
use protocol::{Chosen, Ctx, Fail};
use select::{Item, Storage};

/// At most this many rounds of `--until-below`: the server may count sizes
/// differently from RFC822.SIZE, so a round that ends just above the target
/// is followed by another with the quota the server reports then.
const MAX_ROUNDS: usize = 5;

#[derive(Clone, Debug)]
pub struct ArchiveOptions {
    /// Messages received before this instant (unix seconds).
    pub before: Option<i64>,
    /// Oldest first until projected usage of every quota root is below this
    /// percentage of its limit.
    pub until_below: Option<f64>,
    /// Only folders matching one of these; empty: all.
    pub folders: Vec<String>,
    /// Never folders matching one of these.
    pub exclude: Vec<String>,
    pub include_drafts: bool,
    pub dry_run: bool,
    /// UIDs per STORE/EXPUNGE.
    pub batch: usize,
    pub sync: SyncOptions,
}

/// One folder's plan and outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FolderArchive {
    pub folder: String,
    pub raw: String,
    pub planned: u64,
    pub planned_bytes: u64,
    pub archived: u64,
    pub archived_bytes: u64,
    /// Chosen, but gone from the server when its turn came.
    pub vanished: u64,
    /// New messages the backup sync stored first.
    pub backed_up: u64,
    pub error: Option<String>,
}

/// What resuming an interrupted archive did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Resumed {
    /// Still on the server: verified and expunged now.
    pub expunged: u64,
    /// Already gone from the server: recorded as archived.
    pub recorded: u64,
    /// Folder gone or UIDVALIDITY changed: intent dropped.
    pub abandoned: u64,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ArchiveReport {
    pub account: String,
    pub host: String,
    pub dry_run: bool,
    pub resumed: Resumed,
    /// Intents an interrupted run left (a dry run only counts them).
    pub pending_intents: u64,
    pub folders: Vec<FolderArchive>,
    /// Drafts folders matched but skipped (no `--include-drafts`).
    pub skipped_drafts: Vec<String>,
    /// Dry run: folders the store holds nothing of yet (a dry run plans
    /// only from mail already backed up).
    pub not_backed_up: Vec<String>,
    pub quota_before: Option<Vec<RootUsage>>,
    /// Dry run: what the plan would leave; real run: what the server says.
    pub quota_after: Option<Vec<RootUsage>>,
    pub target_percent: Option<f64>,
    pub rounds: usize,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl ArchiveReport {
    pub fn failed_folders(&self) -> impl Iterator<Item = &FolderArchive> {
        self.folders.iter().filter(|f| f.error.is_some())
    }

    pub fn ok(&self) -> bool {
        self.failed_folders().next().is_none() && self.resumed.errors.is_empty()
    }

    pub fn planned(&self) -> (u64, u64) {
        let n = self.folders.iter().map(|f| f.planned).sum();
        let b = self.folders.iter().map(|f| f.planned_bytes).sum();
        (n, b)
    }

    pub fn archived(&self) -> (u64, u64) {
        let n = self.folders.iter().map(|f| f.archived).sum();
        let b = self.folders.iter().map(|f| f.archived_bytes).sum();
        (n, b)
    }
}

fn no_uidplus(account: &str, host: &str) -> OpError {
    OpError::usage(
        format!(
            "refusing to archive account `{account}`: {host} does not support UIDPLUS (UID EXPUNGE)"
        ),
        Some(
            "without UIDPLUS, removing messages would also remove every message another mail \
             program marked as deleted; nothing was changed. `mailkeep backup` works on this \
             server as before",
        ),
    )
}

/// The folders an archive run may touch, and the drafts folders it skipped.
fn eligible(
    listed: &[Folder],
    acct: &AccountConfig,
    opts: &ArchiveOptions,
) -> (Vec<Folder>, Vec<String>) {
    let mut out = Vec::new();
    let mut drafts = Vec::new();
    for f in listed {
        if !f.selectable || !acct.wants_folder(&f.display) {
            continue;
        }
        if !opts.folders.is_empty() && !opts.folders.iter().any(|p| folder_matches(p, &f.display)) {
            continue;
        }
        if opts.exclude.iter().any(|p| folder_matches(p, &f.display)) {
            continue;
        }
        if !opts.include_drafts && select::is_drafts(f) {
            drafts.push(f.display.clone());
            continue;
        }
        out.push(f.clone());
    }
    (out, drafts)
}

/// A folder ready to be planned: the store holds its current generation.
struct Ready {
    /// Index into the report's folder list.
    at: usize,
    folder: Folder,
    uidvalidity: u32,
    mailbox_id: i64,
    /// Dry run: the UIDs on the server now (a real run checks per batch).
    on_server: Option<BTreeSet<Uid>>,
}

/// Archives (or, dry, plans) one account. `store` is writable for a real
/// run; for a dry run it may be read-only or absent.
pub async fn archive_account(
    config: &Config,
    name: &str,
    store: Option<&SharedStore>,
    opts: &ArchiveOptions,
    progress: &dyn Progress,
) -> Result<ArchiveReport, OpError> {
    let started = Instant::now();
    if opts.before.is_none() && opts.until_below.is_none() {
        return Err(OpError::usage(
            "say which mail to archive",
            Some("give `--older-than 2y`, `--before 2022-01-01` or `--until-below 70%`"),
        ));
    }
    let acct = config.account(name)?;
    let mut conn = connect(name, acct).await?;
    let host = conn.endpoint().host.clone();
    if !conn.capabilities().has("UIDPLUS") {
        let _ = conn.logout().await;
        return Err(no_uidplus(name, &host));
    }
    if opts.until_below.is_some() && !conn.capabilities().has("QUOTA") {
        let _ = conn.logout().await;
        return Err(OpError::usage(
            format!(
                "{host} reports no quota (no QUOTA capability), so `--until-below` cannot tell \
                 when to stop"
            ),
            Some("choose the mail by age instead: `--older-than 2y` or `--before DATE`"),
        ));
    }
    let listed = conn.list().await?;
    if !opts.folders.is_empty() {
        let there: Vec<String> = listed
            .iter()
            .filter(|f| f.selectable && acct.wants_folder(&f.display))
            .map(|f| f.display.clone())
            .collect();
        if !there
            .iter()
            .any(|n| opts.folders.iter().any(|p| folder_matches(p, n)))
        {
            let _ = conn.logout().await;
            return Err(super::no_folder_matches(
                name,
                &opts.folders,
                &there,
                "on the server",
            ));
        }
    }
    let mut report = ArchiveReport {
        account: name.to_string(),
        host,
        dry_run: opts.dry_run,
        resumed: Resumed::default(),
        pending_intents: 0,
        folders: Vec::new(),
        skipped_drafts: Vec::new(),
        not_backed_up: Vec::new(),
        quota_before: None,
        quota_after: None,
        target_percent: opts.until_below,
        rounds: 0,
        elapsed: Duration::ZERO,
    };

    // An interrupted run's intents come first.
    if let Some(store) = store {
        if opts.dry_run {
            report.pending_intents = store.run_here(|s| s.index().archive_intent_count(name))?;
        } else {
            let ctx = Ctx {
                store,
                account: name,
                batch: opts.batch,
            };
            if let Err(f) = protocol::resume(&mut conn, &ctx, &listed, &mut report.resumed).await {
                return Err(fatal(f));
            }
        }
    }

    let (folders, drafts) = eligible(&listed, acct, opts);
    report.skipped_drafts = drafts;
    report.quota_before = quota_of(&mut conn, &folders, opts).await?;
    if let (Some(q), Some(store), false) = (&report.quota_before, store, opts.dry_run) {
        store.run_here(|s| remember(s, name, q));
    }

    // Bring each folder up to date (real run) or check it (dry run).
    let mut ready: Vec<Ready> = Vec::new();
    for f in folders {
        let at = report.folders.len();
        let mut fa = FolderArchive {
            folder: f.display.clone(),
            raw: f.raw.clone(),
            ..Default::default()
        };
        match prepare(&mut conn, store, name, &f, opts, progress, &mut fa).await {
            Ok(Some((uidvalidity, mailbox_id, on_server))) => ready.push(Ready {
                at,
                folder: f,
                uidvalidity,
                mailbox_id,
                on_server,
            }),
            Ok(None) => {
                if opts.dry_run {
                    report.not_backed_up.push(f.display.clone());
                }
            }
            Err(Fail::Folder(e)) => fa.error = Some(e),
            Err(f) => return Err(fatal(f)),
        }
        report.folders.push(fa);
    }

    let folder_roots: Vec<Vec<String>> = {
        let by_folder = report
            .quota_before
            .as_deref()
            .map(roots_by_folder)
            .unwrap_or_default();
        ready
            .iter()
            .map(|r| {
                by_folder
                    .get(&r.folder.display)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    };
    let mut quota_now = report.quota_before.clone();
    loop {
        report.rounds += 1;
        let plan = plan_round(
            store,
            &ready,
            &folder_roots,
            quota_now.as_deref(),
            opts,
            &report,
        )?;
        if plan.iter().all(|p| p.is_empty()) {
            if opts.dry_run {
                report.quota_after = quota_now.clone();
            }
            break;
        }
        for (r, chosen) in ready.iter().zip(&plan) {
            let fa = &mut report.folders[r.at];
            fa.planned += chosen.len() as u64;
            fa.planned_bytes += chosen.iter().map(|c| c.size).sum::<u64>();
        }
        if opts.dry_run {
            report.quota_after = quota_now.as_ref().map(|q| projected(q, &ready, &plan));
            break;
        }
        let store = store.expect("a real run has a store");
        let ctx = Ctx {
            store,
            account: name,
            batch: opts.batch,
        };
        let mut archived_this_round = 0;
        for (r, chosen) in ready.iter().zip(&plan) {
            let fa = &mut report.folders[r.at];
            if chosen.is_empty() || fa.error.is_some() {
                continue;
            }
            let before = fa.archived;
            match protocol::archive_folder(&mut conn, &ctx, &r.folder, r.uidvalidity, chosen, fa)
                .await
            {
                Ok(()) => {}
                Err(Fail::Folder(e)) => fa.error = Some(e),
                Err(f) => return Err(fatal(f)),
            }
            archived_this_round += fa.archived - before;
        }
        let all: Vec<Folder> = ready.iter().map(|r| r.folder.clone()).collect();
        quota_now = quota_of(&mut conn, &all, opts).await?;
        let Some(target) = opts.until_below else {
            break;
        };
        let below = quota_now.as_deref().is_none_or(|q| all_below(q, target));
        if below || archived_this_round == 0 || report.rounds >= MAX_ROUNDS {
            break;
        }
    }
    if !opts.dry_run {
        report.quota_after = quota_now;
        if let (Some(q), Some(store)) = (&report.quota_after, store) {
            store.run_here(|s| remember(s, name, q));
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.logout()).await;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The quota, for the report and for `--until-below`. Choosing by age, a
/// server that refuses GETQUOTAROOT only costs the quota lines.
async fn quota_of(
    conn: &mut Connection,
    folders: &[Folder],
    opts: &ArchiveOptions,
) -> Result<Option<Vec<RootUsage>>, OpError> {
    match read_quota(conn, folders).await {
        Ok(q) => Ok(q),
        Err(e) if opts.until_below.is_none() && e.server_response().is_some() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn fatal(f: Fail) -> OpError {
    match f {
        Fail::Fatal(e) => *e,
        Fail::Folder(m) => OpError::usage(m, None),
    }
}

/// Real run: the backup sync of the folder, so that new mail is stored and
/// the UIDVALIDITY checked. Dry run: EXAMINE and `UID SEARCH ALL`, read-only.
/// `Ok(None)`: the store holds nothing of the folder.
async fn prepare(
    conn: &mut Connection,
    store: Option<&SharedStore>,
    account: &str,
    folder: &Folder,
    opts: &ArchiveOptions,
    progress: &dyn Progress,
    fa: &mut FolderArchive,
) -> Result<Option<(u32, i64, Option<BTreeSet<Uid>>)>, Fail> {
    let Some(store) = store else {
        return Ok(None);
    };
    let raw = folder.raw.clone();
    let held = store.run_here(|s| s.index().current_mailbox(account, &raw))?;
    if opts.dry_run {
        let Some(held) = held else { return Ok(None) };
        let state = conn.examine(&raw).await?;
        if state.uidvalidity != held.uidvalidity {
            return Err(Fail::Folder(uidvalidity_changed(
                &folder.display,
                held.uidvalidity,
                state.uidvalidity,
            )));
        }
        let on_server = conn.uid_search_all().await?.into_iter().collect();
        return Ok(Some((held.uidvalidity, held.id, Some(on_server))));
    }
    let mut outcome = FolderOutcome::new(folder);
    let res = exec::sync_folder(
        conn,
        Some(store),
        account,
        folder,
        &opts.sync,
        progress,
        None,
        &mut outcome,
    )
    .await;
    progress.folder_done(account, &outcome);
    fa.backed_up = outcome.new_messages;
    match res {
        Ok(()) => {}
        Err(exec::SyncError::Imap(e)) => return Err(e.into()),
        Err(e @ exec::SyncError::Duplicate { .. }) => {
            return Err(Fail::Folder(super::failure_text(&e)))
        }
        Err(e) => return Err(Fail::Fatal(Box::new(e.into()))),
    }
    let now_held = store.run_here(|s| s.index().current_mailbox(account, &raw))?;
    let Some(now_held) = now_held else {
        return Ok(None);
    };
    if let Some(old) = held.filter(|h| h.uidvalidity != now_held.uidvalidity) {
        return Err(Fail::Folder(uidvalidity_changed(
            &folder.display,
            old.uidvalidity,
            now_held.uidvalidity,
        )));
    }
    Ok(Some((now_held.uidvalidity, now_held.id, None)))
}

fn uidvalidity_changed(folder: &str, old: u32, new: u32) -> String {
    format!(
        "refusing to archive from `{folder}`: its UIDVALIDITY changed from {old} to {new} since \
         the last backup, so the server's UIDs no longer name the messages in the store; the \
         backup of its new generation is done, and the next archive run can use it"
    )
}

/// The messages one round takes, per ready folder, in UID order.
fn plan_round(
    store: Option<&SharedStore>,
    ready: &[Ready],
    folder_roots: &[Vec<String>],
    quota: Option<&[RootUsage]>,
    opts: &ArchiveOptions,
    report: &ArchiveReport,
) -> Result<Vec<Vec<Chosen>>, OpError> {
    let mut items: Vec<Item> = Vec::new();
    let mut chosen_of: Vec<Chosen> = Vec::new();
    if let Some(store) = store {
        for (i, r) in ready.iter().enumerate() {
            if report.folders[r.at].error.is_some() {
                continue;
            }
            let cands =
                store.run_here(|s| s.index().archive_candidates(r.mailbox_id, opts.before))?;
            for c in cands {
                // Marked deleted by another program: its business, not ours.
                if c.flags.contains("\\Deleted") {
                    continue;
                }
                if r.on_server.as_ref().is_some_and(|s| !s.contains(&c.uid)) {
                    continue;
                }
                items.push(Item {
                    folder: i,
                    uid: c.uid,
                    date: c.internaldate,
                    size: c.size,
                });
                chosen_of.push(Chosen {
                    uid: c.uid,
                    blob: c.blob,
                    size: c.size,
                });
            }
        }
    }
    let taken: Vec<usize> = match (opts.until_below, quota) {
        (Some(pct), Some(q)) => {
            let roots: BTreeMap<String, Storage> = q
                .iter()
                .filter_map(|r| {
                    r.storage.map(|s| {
                        (
                            r.root.clone(),
                            Storage {
                                used: s.used,
                                limit: s.limit,
                            },
                        )
                    })
                })
                .collect();
            select::until_below(&items, folder_roots, &roots, pct).0
        }
        (Some(_), None) => Vec::new(),
        (None, _) => (0..items.len()).collect(),
    };
    let mut plan: Vec<Vec<Chosen>> = vec![Vec::new(); ready.len()];
    for i in taken {
        plan[items[i].folder].push(chosen_of[i].clone());
    }
    for p in &mut plan {
        p.sort_by_key(|c| c.uid);
    }
    Ok(plan)
}

/// Quota as it would be after the plan (dry run).
fn projected(quota: &[RootUsage], ready: &[Ready], plan: &[Vec<Chosen>]) -> Vec<RootUsage> {
    let by_folder = roots_by_folder(quota);
    let mut out = quota.to_vec();
    for (r, chosen) in ready.iter().zip(plan) {
        let bytes: u64 = chosen.iter().map(|c| c.size).sum();
        let count = chosen.len() as u64;
        for root in by_folder.get(&r.folder.display).into_iter().flatten() {
            if let Some(u) = out.iter_mut().find(|u| &u.root == root) {
                if let Some(s) = &mut u.storage {
                    s.used = s.used.saturating_sub(bytes);
                }
                if let Some(m) = &mut u.messages {
                    m.used = m.used.saturating_sub(count);
                }
            }
        }
    }
    out
}

fn all_below(quota: &[RootUsage], percent: f64) -> bool {
    quota.iter().all(|r| {
        r.storage
            .and_then(|s| s.percent())
            .is_none_or(|p| p < percent)
    })
}

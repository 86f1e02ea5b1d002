//! `mailkeep backup`: one account at a time, its folders by up to `jobs`
//! connections. Read-only on the server: EXAMINE and BODY.PEEK[] only.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::imap::Connection;
use crate::model::records::{MailboxRecord, RefEvent, RefRecord};
use crate::model::{Folder, MailboxState};
use crate::store::{now, SharedStore};
use crate::sync::exec::{self, FolderOutcome, Progress, SyncError, SyncOptions};
use crate::sync::share::{Board, Split, Work};

use super::interrupt::Interrupt;
use super::{backoff, ensure_connected, failure_text, folder_matches, Login, OpError};

#[derive(Clone)]
pub struct BackupOptions {
    pub jobs: usize,
    pub dry_run: bool,
    /// Only folders matching one of these (on top of the account's own
    /// include/exclude); empty: all.
    pub folders: Vec<String>,
    /// Reconnect attempts for a folder whose connection dropped.
    pub retries: u32,
    pub sync: SyncOptions,
    /// Stops the backup at the next safe point when raised.
    pub interrupt: Interrupt,
    /// How the run is described in the store's record of runs (what
    /// `status` shows as the last backup): the command line's summary line.
    pub describe: fn(&AccountReport) -> String,
}

#[derive(Debug)]
pub struct AccountReport {
    pub account: String,
    pub folders: Vec<FolderOutcome>,
    /// Folders we held that the server no longer lists.
    pub vanished: Vec<String>,
    /// The account could not be backed up at all.
    pub error: Option<OpError>,
    /// Fetching, storing and indexing for search, all of it.
    pub elapsed: Duration,
    pub dry_run: bool,
    /// Stopped by a signal before it was done; what was stored stays.
    pub interrupted: bool,
    /// Messages added to the search index.
    pub indexed: u64,
    /// The mail was stored, but the search index could not be updated.
    pub search_error: Option<OpError>,
    /// How much the server slowed the first connection down (the folders'
    /// connections: in each folder's outcome).
    pub pace: crate::imap::Pace,
}

impl AccountReport {
    /// How much the server slowed this backup down, all connections.
    pub fn total_pace(&self) -> crate::imap::Pace {
        let mut pace = self.pace;
        for f in &self.folders {
            pace.add(f.pace);
        }
        pace
    }

    pub fn failed_folders(&self) -> impl Iterator<Item = &FolderOutcome> {
        self.folders.iter().filter(|f| f.error.is_some())
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
            && self.failed_folders().next().is_none()
            && !self.interrupted
            && self.search_error.is_none()
    }
}

pub async fn backup_account(
    config: &Config,
    name: &str,
    store: Option<&SharedStore>,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> AccountReport {
    let started = Instant::now();
    let mut report = AccountReport {
        account: name.to_string(),
        folders: Vec::new(),
        vanished: Vec::new(),
        error: None,
        elapsed: Duration::ZERO,
        dry_run: opts.dry_run,
        interrupted: false,
        indexed: 0,
        search_error: None,
        pace: crate::imap::Pace::default(),
    };
    let run = store.and_then(|s| s.run_here(|s| s.index().begin_run(name, "backup", now()).ok()));
    let indexer = store
        .filter(|_| !opts.dry_run)
        .map(|s| Indexer::start(s.run_here(|s| s.root().to_path_buf()), &opts.interrupt));
    if let Err(e) = run_account(config, name, store, opts, progress, &mut report).await {
        report.error = Some(e);
    }
    if let Some(store) = store.filter(|_| !opts.dry_run) {
        // A folder stopped by a signal may leave whole records uncommitted.
        if let Err(e) = store.run(|s| s.commit()).await {
            report.error.get_or_insert(e.into());
        }
    }
    if let Some(indexer) = indexer {
        tracing::debug!(account = name, "backed up; waiting for the search index");
        match indexer.finish(name, progress).await {
            Ok(n) => report.indexed = n,
            Err(e) => report.search_error = Some(e),
        }
        tracing::debug!(account = name, "search index up to date");
    }
    report.interrupted = opts.interrupt.is_raised();
    report.elapsed = started.elapsed();
    if let (Some(store), Some(run)) = (store, run) {
        let summary = (opts.describe)(&report);
        let folders: Vec<(String, Option<String>)> = report
            .folders
            .iter()
            .map(|f| (f.raw.clone(), f.error.clone()))
            .collect();
        store.run_here(|s| {
            let _ = s.index().finish_run_with_folders(
                run,
                now(),
                report.ok(),
                &summary,
                name,
                &folders,
            );
        });
    }
    report
}

async fn run_account(
    config: &Config,
    name: &str,
    store: Option<&SharedStore>,
    opts: &BackupOptions,
    progress: &dyn Progress,
    report: &mut AccountReport,
) -> Result<(), OpError> {
    let acct = config.account(name)?;
    if let Some(store) = store {
        let kind = store.run_here(|s| s.index().account_kind(name))?;
        if kind.as_deref() == Some("import") {
            return Err(OpError::usage(
                format!("`{name}` is the name of imported mail in the store, not of a server account"),
                Some("give the IMAP account another name in the config file; imported mail keeps its own"),
            ));
        }
    }
    let login = Login::new(name, acct);
    // A server that says to wait is waited for, unless told to stop.
    let mut first = tokio::select! {
        first = super::connect_paced(&login, &mut report.pace) => first?,
        _ = opts.interrupt.raised() => return Ok(()),
    };
    // With LIST-STATUS, one round trip says which folders changed.
    let (listed, mut states) = match first.list_with_status().await? {
        Some(with) => {
            let states: HashMap<String, MailboxState> = with
                .iter()
                .filter_map(|(f, st)| st.clone().map(|st| (f.raw.clone(), st)))
                .collect();
            (with.into_iter().map(|(f, _)| f).collect::<Vec<_>>(), states)
        }
        None => (first.list().await?, HashMap::new()),
    };
    tracing::debug!(account = name, "listed {} folders", listed.len());
    let listed_raw: BTreeSet<String> = listed.iter().map(|f| f.raw.clone()).collect();
    let special_uses: Vec<String> = listed
        .iter()
        .filter_map(|f| f.special_use.clone())
        .collect();
    let wanted: Vec<Folder> = listed
        .into_iter()
        .filter(|f| f.selectable)
        .filter(|f| acct.wants_folder(&f.display))
        .collect();
    let names: Vec<String> = wanted.iter().map(|f| f.display.clone()).collect();
    let folders: Vec<Folder> = wanted
        .into_iter()
        .filter(|f| {
            opts.folders.is_empty() || opts.folders.iter().any(|p| folder_matches(p, &f.display))
        })
        .collect();
    if folders.is_empty() && !opts.folders.is_empty() {
        let _ = first.logout().await;
        return Err(super::no_folder_matches(
            name,
            &opts.folders,
            &names,
            "on the server",
        ));
    }

    if let Some(store) = store {
        if !opts.dry_run {
            report.vanished = record_vanished(store, name, &listed_raw).await?;
            super::quota::remember_inbox(&mut first, store, name).await;
            tracing::debug!(account = name, "noted what is gone and the quota");
        }
    }

    // Folders the server says are as the last sync left them are done here.
    let mut unchanged = Vec::new();
    let mut changed = VecDeque::new();
    let with_status: Vec<(Folder, Option<MailboxState>)> = folders
        .into_iter()
        .map(|f| {
            let st = states.remove(&f.raw);
            (f, st)
        })
        .collect();
    let in_step = match store.filter(|_| !opts.dry_run) {
        Some(store) => exec::in_step_by_status(store, name, &with_status).await?,
        None => vec![false; with_status.len()],
    };
    for ((f, st), same) in with_status.into_iter().zip(in_step) {
        if same {
            let mut outcome = FolderOutcome::new(&f);
            outcome.listing = "unchanged (status)".into();
            outcome.on_server = st.map_or(0, |st| st.exists);
            progress.folder_done(name, &outcome);
            unchanged.push(outcome);
        } else {
            changed.push_back(f);
        }
    }
    tracing::info!(
        account = name,
        "{} folders to back up, {} unchanged since the last backup, {} to look into",
        unchanged.len() + changed.len(),
        unchanged.len(),
        changed.len()
    );
    // Where the server names its messages and folders can share them
    // (Gmail's labels and All Mail), each message is downloaded once.
    let special_uses: Vec<&str> = special_uses.iter().map(String::as_str).collect();
    let sync = SyncOptions {
        message_ids: first
            .message_ids()
            .filter(|k| !opts.dry_run && k.worth_asking(&special_uses)),
        ..opts.sync.clone()
    };
    let board = Board::new(changed);
    let outcomes = Mutex::new(unchanged);
    let fatal: Mutex<Option<SyncError>> = Mutex::new(None);
    let jobs = acct.connections(opts.jobs);
    let mut initial = Some(first);
    let workers: Vec<_> = (0..jobs)
        .map(|_| {
            let conn = initial.take();
            worker(
                conn, &login, name, store, opts, &sync, progress, &board, &outcomes, &fatal,
            )
        })
        .collect();
    futures::future::join_all(workers).await;
    if let Some(e) = fatal.into_inner().unwrap_or_else(|p| p.into_inner()) {
        // Not a folder's failure: the store's index is damaged.
        return Err(e.into());
    }
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
    outcomes.sort_by(|a: &FolderOutcome, b| a.folder.cmp(&b.folder));
    report.folders = outcomes;
    Ok(())
}

/// One connection of an account: takes folders up while any are left, then
/// helps with the others' big folders (see `sync::share`), until none is
/// left to take or help with.
#[allow(clippy::too_many_arguments)]
async fn worker(
    mut conn: Option<Connection>,
    login: &Login<'_>,
    name: &str,
    store: Option<&SharedStore>,
    opts: &BackupOptions,
    sync: &SyncOptions,
    progress: &dyn Progress,
    board: &Board,
    outcomes: &Mutex<Vec<FolderOutcome>>,
    fatal: &Mutex<Option<SyncError>>,
) {
    // The splits this connection gave up helping with, and the one whose
    // folder it has open.
    let mut refused: HashSet<u64> = HashSet::new();
    let mut open: Option<u64> = None;
    loop {
        if opts.interrupt.is_raised() || fatal.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            break;
        }
        let changed = board.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let folder = match board.next(&refused) {
            Work::Folder(f) => f,
            Work::Done => break,
            Work::Wait => {
                tokio::select! {
                    _ = changed => {}
                    _ = opts.interrupt.raised() => break,
                }
                continue;
            }
            Work::Help(split) => {
                let Some(store) = store else {
                    refused.insert(split.serial());
                    continue;
                };
                if let Err(stop) = help(
                    &mut conn, &mut open, login, name, store, opts, sync, progress, &split,
                )
                .await
                {
                    // The part goes back to the folder's own connection;
                    // this one helps with that folder no more.
                    tracing::debug!(account = name, folder = %split.folder.display, "stopped helping: {stop}");
                    refused.insert(split.serial());
                    if let HelpStop::Sync(e) = stop {
                        if e.retryable() || matches!(e, SyncError::Interrupted) {
                            conn = None;
                            open = None;
                        }
                        if e.index_damaged() {
                            fatal
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                        }
                    }
                }
                continue;
            }
        };
        open = None;
        tracing::debug!(account = name, folder = %folder.display, "taken up");
        let mut attempt = 0u32;
        let mut outcome = FolderOutcome::new(&folder);
        loop {
            let c = match ensure_connected(
                &mut conn,
                login,
                &mut attempt,
                opts.retries,
                &mut outcome.pace,
            )
            .await
            {
                Ok(c) => c,
                Err(e) => {
                    outcome.error = Some(failure_text(&e));
                    break;
                }
            };
            let before = outcome.new_messages;
            let synced = tokio::select! {
                r = exec::sync_folder(c, store, name, &folder, sync, progress, Some(board), &mut outcome) => r,
                // Dropping the sync leaves every record whole: store writes
                // happen off the async threads and always complete.
                _ = opts.interrupt.raised() => Err(SyncError::Interrupted),
            };
            match synced {
                Ok(()) => break,
                Err(SyncError::Imap(e))
                    if tokio::select! {
                        waited = outcome.pace.wait_if_throttled(e.throttle()) => waited,
                        _ = opts.interrupt.raised() => false,
                    } =>
                {
                    // The server asked us to slow down: wait as it asks (or
                    // until told to stop), then resume the folder on a new
                    // connection.
                    conn = None;
                }
                Err(e) if opts.interrupt.is_raised() && !e.index_damaged() => {
                    // Told to stop (maybe while waiting for the server): no retry.
                    conn = None;
                    outcome.error = Some(failure_text(&e));
                    break;
                }
                Err(e) if e.retryable() && attempt < opts.retries => {
                    // The connection is gone: reconnect and resume the folder;
                    // what was committed stays, the rest is fetched again.
                    // Only attempts that got nothing done count against the limit.
                    conn = None;
                    if outcome.new_messages == before {
                        attempt += 1;
                    }
                    backoff(attempt).await;
                }
                Err(e) if e.index_damaged() => {
                    // Every folder would fail the same way: stop them all.
                    outcome.error = Some(failure_text(&e));
                    fatal
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                    break;
                }
                Err(e) => {
                    if e.retryable() || matches!(e, SyncError::Interrupted) {
                        conn = None;
                    }
                    outcome.error = Some(failure_text(&e));
                    break;
                }
            }
        }
        match &outcome.error {
            None => tracing::debug!(
                account = name,
                folder = %outcome.folder,
                "{}: {} on the server, {} new ({} bytes, {} already stored), {} flag changes, {} gone",
                outcome.listing,
                outcome.on_server,
                outcome.new_messages,
                outcome.new_bytes,
                outcome.deduplicated,
                outcome.flag_updates,
                outcome.gone
            ),
            Some(e) => tracing::info!(account = name, folder = %outcome.folder, "failed: {e}"),
        }
        progress.folder_done(name, &outcome);
        outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(outcome);
        board.folder_done();
    }
    if let Some(c) = conn {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.logout()).await;
    }
}

/// Why a connection stopped helping with a folder.
#[derive(Debug, thiserror::Error)]
enum HelpStop {
    #[error("cannot connect: {0}")]
    Connect(OpError),
    #[error("the folder's UIDVALIDITY is now {0}")]
    Changed(u32),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// Downloads parts of `split` on this connection (connected and the folder
/// opened first, if need be) while it has parts for helpers. A server that
/// refuses another connection, or a folder whose UIDVALIDITY changed, ends
/// the help; the owner of the folder does the parts.
#[allow(clippy::too_many_arguments)]
async fn help(
    conn: &mut Option<Connection>,
    open: &mut Option<u64>,
    login: &Login<'_>,
    name: &str,
    store: &SharedStore,
    opts: &BackupOptions,
    sync: &SyncOptions,
    progress: &dyn Progress,
    split: &Arc<Split>,
) -> Result<(), HelpStop> {
    let c = match conn {
        Some(c) => c,
        None => {
            // Not paced: a server that says to wait gets no helper.
            let c = login.connect().await.map_err(HelpStop::Connect)?;
            *open = None;
            conn.insert(c)
        }
    };
    if *open != Some(split.serial()) {
        let state = c
            .examine(&split.folder.raw)
            .await
            .map_err(SyncError::from)?;
        if state.uidvalidity != split.uidvalidity {
            return Err(HelpStop::Changed(state.uidvalidity));
        }
        *open = Some(split.serial());
    }
    while let Some(mut part) = split.take(true) {
        tracing::debug!(
            account = name,
            folder = %split.folder.display,
            "helping: {} messages",
            part.part.len()
        );
        tokio::select! {
            r = exec::fetch_part(c, store, name, split, &mut part, sync, progress) => r?,
            // The part goes back as it is dropped.
            _ = opts.interrupt.raised() => return Err(SyncError::Interrupted.into()),
        }
        part.finish();
    }
    Ok(())
}

/// Indexes for search what the backup stores, on a thread of its own, while
/// the fetch goes on: the search index is a file of its own, and the
/// indexer reads the committed messages through a store of its own, opened
/// to read. When `done` is set it indexes what is left and ends; when
/// interrupted, between two messages.
struct Indexer {
    task: tokio::task::JoinHandle<Result<u64, OpError>>,
    progress: tokio::sync::mpsc::UnboundedReceiver<(u64, u64)>,
    done: Arc<crate::ops::search::Finish>,
}

impl Indexer {
    fn start(root: PathBuf, interrupt: &Interrupt) -> Indexer {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
        let done = Arc::new(crate::ops::search::Finish::default());
        let (until, stop) = (done.clone(), interrupt.clone());
        let task = tokio::task::spawn_blocking(move || {
            crate::ops::search::index_while(
                &root,
                &until,
                &|| stop.is_raised(),
                &mut |done, total| {
                    let _ = tx.send((done, total));
                },
            )
        });
        Indexer {
            task,
            progress: rx,
            done,
        }
    }

    /// Lets it index what is left, and waits for it.
    async fn finish(mut self, account: &str, progress: &dyn Progress) -> Result<u64, OpError> {
        self.done.set();
        loop {
            tokio::select! {
                r = &mut self.task => {
                    while let Ok((done, total)) = self.progress.try_recv() {
                        progress.indexing(account, done, total);
                    }
                    return r.expect("search indexing panicked");
                }
                Some((done, total)) = self.progress.recv() => progress.indexing(account, done, total),
            }
        }
    }
}

/// Folders the store holds as current that the server no longer lists are
/// recorded as gone (with their messages); nothing is deleted.
async fn record_vanished(
    store: &SharedStore,
    account: &str,
    listed: &BTreeSet<String>,
) -> Result<Vec<String>, OpError> {
    let store = store.clone();
    let account = account.to_string();
    let listed = listed.clone();
    store
        .run(move |s| -> Result<Vec<String>, OpError> {
            let mut vanished = Vec::new();
            let rows = s.index().mailboxes(&account)?;
            for mb in rows {
                if !mb.is_current || mb.gone_at.is_some() || listed.contains(&mb.raw_name) {
                    continue;
                }
                let at = now();
                let mut live: Vec<crate::model::Uid> = Vec::new();
                s.index().for_each_in_mailbox(mb.id, |m| {
                    if m.gone_at.is_none() && m.archived_at.is_none() {
                        live.push(m.uid);
                    }
                    Ok::<(), crate::index::IndexError>(())
                })?;
                for uid in live {
                    s.add_ref(RefRecord {
                        account: account.clone(),
                        mailbox: mb.raw_name.clone(),
                        uidvalidity: mb.uidvalidity,
                        uid,
                        at,
                        event: RefEvent::Gone,
                    })?;
                }
                s.put_mailbox(MailboxRecord {
                    account: account.clone(),
                    account_kind: "imap".into(),
                    mailbox: mb.raw_name.clone(),
                    name: mb.name.clone(),
                    delimiter: mb.delimiter.clone(),
                    special_use: mb.special_use.clone(),
                    uidvalidity: mb.uidvalidity,
                    uidnext: None,
                    highestmodseq: None,
                    server_count: None,
                    gone: true,
                    at,
                })?;
                vanished.push(mb.name);
            }
            s.commit()?;
            Ok(vanished)
        })
        .await
}

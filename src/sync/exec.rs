//! Applies a plan: asks the server what plan.rs needs, downloads new mail in
//! batches into the store, records flag changes and departures.
//!
//! Order matters, and is the same for every batch: records appended → pack
//! fsynced → index transaction (Store::commit). The folder's new UIDNEXT and
//! HIGHESTMODSEQ are written last, only when everything before succeeded, so
//! an interrupted folder is listed in full again next time and nothing is
//! skipped.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::path::PathBuf;

use crate::imap::{compress_uid_set, BoxError, Connection, ImapError, MessageIds};
use crate::index::IndexError;
use crate::model::records::{MailboxRecord, RefEvent, RefRecord};
use crate::model::{Folder, MessageMeta, Uid};
use crate::store::{now, SharedStore, StoreError};

use super::plan::{self, Listing, Plan, ServerView, StoredState};
use super::share::{Board, Split, Taken};

#[derive(Clone, Debug)]
pub struct SyncOptions {
    pub dry_run: bool,
    /// At most this many messages per UID FETCH.
    pub batch_count: usize,
    /// At most this many bytes per UID FETCH; a message this big or bigger
    /// is fetched alone, in chunks, through a file.
    pub batch_bytes: u64,
    pub chunk_size: u32,
    /// Where huge messages are spooled before they go into a pack.
    pub spool_dir: PathBuf,
    /// Ask the server for its message ids (set per account, where the
    /// server gives them and folders can share messages).
    pub message_ids: Option<MessageIds>,
}

impl SyncOptions {
    pub fn new(spool_dir: PathBuf) -> SyncOptions {
        SyncOptions {
            dry_run: false,
            batch_count: 500,
            batch_bytes: 8 * 1024 * 1024,
            chunk_size: 4 * 1024 * 1024,
            spool_dir,
            message_ids: None,
        }
    }
}

/// Progress reports from the engine; the CLI draws them.
pub trait Progress: Send + Sync {
    fn folder_planned(&self, _account: &str, _folder: &str, _messages: u64, _bytes: u64) {}
    fn fetched(&self, _account: &str, _folder: &str, _messages: u64, _bytes: u64) {}
    fn folder_done(&self, _account: &str, _outcome: &FolderOutcome) {}
    /// Search indexing after the fetch: `done` of `total` messages.
    fn indexing(&self, _account: &str, _done: u64, _total: u64) {}
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FolderOutcome {
    pub folder: String,
    pub raw: String,
    pub listing: String,
    pub on_server: u32,
    pub new_messages: u64,
    pub new_bytes: u64,
    /// New in this folder, but the bytes were already stored.
    pub deduplicated: u64,
    /// Of `new_messages`: known by the server's message id as one already
    /// stored (from another folder), so not downloaded.
    pub recognised: u64,
    pub flag_updates: u64,
    pub gone: u64,
    /// Listed by the server but not returned by FETCH (expunged meanwhile).
    pub not_returned: u64,
    /// Of `new_messages`: messages whose stored bytes were damaged or lost,
    /// fetched again.
    pub refetched: u64,
    pub new_generation: bool,
    /// How much the server slowed us down (throttling, too many connections).
    pub pace: crate::imap::Pace,
    pub error: Option<String>,
}

impl FolderOutcome {
    /// Adds `other`'s counts of new mail (another connection's part of this
    /// folder) to these.
    pub fn add_counts(&mut self, other: &FolderOutcome) {
        self.new_messages += other.new_messages;
        self.new_bytes += other.new_bytes;
        self.deduplicated += other.deduplicated;
        self.recognised += other.recognised;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("cannot spool a large message to `{path}`")]
    Spool {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("interrupted")]
    Interrupted,
    #[error("the server sent UID {uid} in `{folder}` twice in one FETCH")]
    Duplicate { folder: String, uid: Uid },
    #[error(
        "the server lists {count} messages in `{folder}` that it did not send when asked (UIDs {uids}); \
         they are not in the store, and the next run asks for them again"
    )]
    NotReturned {
        folder: String,
        count: usize,
        uids: String,
    },
}

impl SyncError {
    /// A dropped connection or a timeout: reconnecting and trying the folder
    /// again can help.
    pub fn retryable(&self) -> bool {
        matches!(self, SyncError::Imap(e) if e.retryable())
    }

    /// The store's index file is damaged (`mailkeep repair` mends it).
    pub fn index_damaged(&self) -> bool {
        match self {
            SyncError::Index(e) => e.is_damaged(),
            SyncError::Store(e) => e.index_damaged(),
            _ => false,
        }
    }
}

/// What the store holds for one folder generation; its messages only with
/// `with_messages` (deciding whether to list the folder needs only counts).
pub async fn stored_state(
    store: Option<&SharedStore>,
    account: &str,
    raw: &str,
    uidvalidity: u32,
    with_messages: bool,
) -> Result<Option<StoredState>, SyncError> {
    let Some(store) = store else {
        return Ok(None);
    };
    let (account, raw) = (account.to_string(), raw.to_string());
    store
        .run(move |s| -> Result<_, SyncError> {
            let Some(row) = s.index().mailbox(&account, &raw, uidvalidity)? else {
                return Ok(None);
            };
            let mut st = StoredState {
                uidvalidity,
                uidnext: row.uidnext,
                highestmodseq: row.highestmodseq,
                server_count: row.server_count,
                live_count: s.index().live_count(row.id)? as u32,
                unreadable: s.index().unreadable_uids(row.id)?,
                ..Default::default()
            };
            if !with_messages {
                return Ok(Some(st));
            }
            s.index()
                .for_each_in_mailbox(row.id, |m| -> Result<(), IndexError> {
                    st.known.insert(m.uid);
                    if m.gone_at.is_none() && m.archived_at.is_none() {
                        st.live.insert(m.uid, (m.flags, m.modseq));
                    }
                    Ok(())
                })?;
            Ok(Some(st))
        })
        .await
}

impl FolderOutcome {
    pub fn new(folder: &Folder) -> FolderOutcome {
        FolderOutcome {
            folder: folder.display.clone(),
            raw: folder.raw.clone(),
            ..Default::default()
        }
    }
}

/// For each folder, whether it is, by what the server says of it (its
/// STATUS, from `LIST … RETURN (STATUS …)`), exactly as its last complete
/// sync left it: same generation, UIDNEXT, HIGHESTMODSEQ (CONDSTORE) and
/// count, and no message to fetch again. Such a folder needs no EXAMINE at
/// all; the time it was found in step is noted (nothing goes into the packs;
/// one transaction for them all). `false` says only that the folder must be
/// opened to know.
pub async fn in_step_by_status(
    store: &SharedStore,
    account: &str,
    folders: &[(Folder, Option<crate::model::MailboxState>)],
) -> Result<Vec<bool>, SyncError> {
    let account = account.to_string();
    let folders: Vec<(String, Option<crate::model::MailboxState>)> = folders
        .iter()
        .map(|(f, st)| (f.raw.clone(), st.clone()))
        .collect();
    store
        .run(move |s| -> Result<Vec<bool>, SyncError> {
            let mut out = Vec::with_capacity(folders.len());
            let mut synced = Vec::new();
            for (raw, state) in &folders {
                // Without CONDSTORE a flag change leaves no trace in STATUS.
                let Some(state) = state.as_ref().filter(|st| st.highestmodseq.is_some()) else {
                    out.push(false);
                    continue;
                };
                let ix = s.index();
                let current = ix
                    .current_mailbox(&account, raw)?
                    .filter(|m| m.uidvalidity == state.uidvalidity);
                let Some(row) = current else {
                    out.push(false);
                    continue;
                };
                let stored = StoredState {
                    uidvalidity: state.uidvalidity,
                    uidnext: row.uidnext,
                    highestmodseq: row.highestmodseq,
                    server_count: row.server_count,
                    live_count: ix.live_count(row.id)? as u32,
                    unreadable: ix.unreadable_uids(row.id)?,
                    ..Default::default()
                };
                let same = plan::choose_listing(Some(&stored), state, true) == Listing::Skip
                    && stored.uidnext == state.uidnext
                    && stored.highestmodseq == state.highestmodseq
                    && stored.server_count == Some(state.exists);
                if same {
                    synced.push((raw.clone(), state.uidvalidity));
                }
                out.push(same);
            }
            s.index().mark_synced_all(&account, &synced, now())?;
            Ok(out)
        })
        .await
}

/// Brings one folder of the store up to date with the server. Counts are
/// added to `out`, also when it fails half-way, so that a retry after a
/// dropped connection continues the same tally. The account's other
/// connections on `board` may help with its download.
#[allow(clippy::too_many_arguments)]
pub async fn sync_folder(
    conn: &mut Connection,
    store: Option<&SharedStore>,
    account: &str,
    folder: &Folder,
    opts: &SyncOptions,
    progress: &dyn Progress,
    board: Option<&Board>,
    out: &mut FolderOutcome,
) -> Result<(), SyncError> {
    let raw = folder.raw.as_str();
    let state = conn.examine(raw).await?;
    out.on_server = state.exists;
    let summary = stored_state(store, account, raw, state.uidvalidity, false).await?;
    if let Some(store) = store {
        let (a, r) = (account.to_string(), raw.to_string());
        let uv = state.uidvalidity;
        out.new_generation = store
            .run(move |s| -> Result<_, SyncError> {
                Ok(s.index()
                    .current_mailbox(&a, &r)?
                    .is_some_and(|m| m.uidvalidity != uv))
            })
            .await?;
    }
    let condstore = conn.capabilities().has("CONDSTORE");
    let listing = plan::choose_listing(summary.as_ref(), &state, condstore);
    out.listing = match listing {
        Listing::Skip => "unchanged".into(),
        Listing::Full => "full".into(),
        Listing::ChangedSince(m) => format!("changedsince {m}"),
    };
    let stored = match (listing, summary) {
        (Listing::Skip, Some(summary)) => summary,
        (_, Some(_)) => stored_state(store, account, raw, state.uidvalidity, true)
            .await?
            .unwrap_or_default(),
        (_, None) => StoredState::default(),
    };
    let stored = StoredState {
        uidvalidity: state.uidvalidity,
        ..stored
    };

    let view = match listing {
        Listing::Skip => None,
        Listing::Full => {
            let metas = if state.exists == 0 {
                Vec::new()
            } else {
                conn.fetch_meta("1:*", None).await?
            };
            Some(ServerView::full(state.clone(), metas, &stored))
        }
        Listing::ChangedSince(modseq) => {
            let uids: BTreeSet<Uid> = if state.exists == 0 {
                BTreeSet::new()
            } else {
                conn.uid_search_all().await?.into_iter().collect()
            };
            let mut view = ServerView {
                state: state.clone(),
                uids,
                ..Default::default()
            };
            if state.exists > 0 {
                for (uid, flags, ms) in conn.fetch_flags("1:*", Some(modseq)).await? {
                    view.flags.insert(uid, (flags, ms));
                }
            }
            let new: Vec<Uid> = view
                .uids
                .iter()
                .copied()
                .filter(|u| !stored.holds(u))
                .collect();
            if !new.is_empty() {
                for m in conn.fetch_meta(&compress_uid_set(&new), None).await? {
                    view.meta.insert(m.uid, m);
                }
            }
            Some(view)
        }
    };
    let mut plan = view.map(|v| plan::plan(&stored, v)).unwrap_or_default();
    let planned_bytes: u64 = plan.fetch.iter().map(|m| m.size).sum();
    progress.folder_planned(
        account,
        &folder.display,
        plan.fetch.len() as u64,
        planned_bytes,
    );

    if opts.dry_run {
        out.new_messages = plan.fetch.len() as u64;
        out.new_bytes = planned_bytes;
        out.flag_updates = plan.flag_updates.len() as u64;
        out.gone = plan.gone.len() as u64;
        return Ok(());
    }
    let store = store.expect("a real run has a store");

    let in_step = plan.is_empty()
        && !out.new_generation
        && stored.uidnext == state.uidnext
        && stored.highestmodseq == state.highestmodseq
        && stored.server_count == Some(state.exists);
    if in_step {
        // Nothing to record in the log: only note in the index when the
        // folder was last found in step (a nightly run of an unchanged
        // mailbox appends nothing to the packs).
        let (a, r, uv, at) = (
            account.to_string(),
            raw.to_string(),
            state.uidvalidity,
            now(),
        );
        store
            .run(move |s| s.index().mark_synced(&a, &r, uv, at))
            .await?;
        return Ok(());
    }

    let mailbox = MailboxRecord {
        account: account.to_string(),
        account_kind: "imap".into(),
        mailbox: raw.to_string(),
        name: folder.display.clone(),
        delimiter: folder.delimiter.map(String::from),
        special_use: folder.special_use.clone(),
        uidvalidity: state.uidvalidity,
        uidnext: None,
        highestmodseq: None,
        server_count: None,
        gone: false,
        at: now(),
    };
    record_changes(store, account, raw, &state, &plan, mailbox.clone()).await?;
    out.flag_updates += plan.flag_updates.len() as u64;
    out.gone += plan.gone.len() as u64;

    let mut complete = true;
    let mut unaccounted: Vec<Uid> = plan.undescribed.clone();
    // Counted before the list is handed on (not copied: it is as long as
    // the folder's new mail).
    let refetch: Vec<Uid> = plan
        .fetch
        .iter()
        .filter(|m| stored.unreadable.contains(&m.uid))
        .map(|m| m.uid)
        .collect();
    // The new mail goes in parts, which idle connections of the account
    // help with (see share.rs); this one takes them from the front until
    // none is left and every helper is done.
    let split = Split::new(
        folder,
        state.uidvalidity,
        opts.message_ids,
        std::mem::take(&mut plan.fetch),
        board,
    );
    // Offered once this connection holds the first part: a folder of one
    // part gets no helper.
    let mut offered = None;
    let mut failed = None;
    loop {
        let changed = split.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if failed.is_none() {
            if let Some(mut part) = split.take(false) {
                if offered.is_none() {
                    offered = board.map(|b| b.offer(&split));
                }
                match fetch_part(conn, store, account, &split, &mut part, opts, progress).await {
                    Ok(()) => part.finish(),
                    Err(e) => {
                        split.stop_helpers();
                        failed = Some(e);
                    }
                }
                continue;
            }
        }
        if split.idle() && (failed.is_some() || !split.has_parts()) {
            break;
        }
        changed.await;
    }
    drop(offered);
    let helped = split.account_to(out, &mut unaccounted);
    if helped > 0 {
        tracing::debug!(
            account,
            folder = %folder.display,
            "{helped} parts downloaded by other connections"
        );
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let unaccounted_set: BTreeSet<Uid> = unaccounted.iter().copied().collect();
    out.refetched += refetch
        .iter()
        .filter(|u| !unaccounted_set.contains(u))
        .count() as u64;
    if !unaccounted.is_empty() {
        // Listed but not sent: fine if they were expunged meanwhile, a
        // failure to report if the server still has them.
        complete = false;
        let present: BTreeSet<Uid> = conn.uid_search_all().await?.into_iter().collect();
        let mut still: Vec<Uid> = unaccounted
            .into_iter()
            .filter(|u| present.contains(u))
            .collect();
        still.sort_unstable();
        still.dedup();
        out.not_returned += still.len() as u64;
        if !still.is_empty() {
            return Err(SyncError::NotReturned {
                folder: folder.display.clone(),
                count: still.len(),
                uids: compress_uid_set(&still),
            });
        }
    }

    if complete {
        // Everything the server listed is now stored: remember how far we got.
        let done = MailboxRecord {
            uidnext: Some(state.uidnext.unwrap_or(0)),
            highestmodseq: state.highestmodseq,
            server_count: Some(state.exists),
            at: now(),
            ..mailbox
        };
        store
            .run(move |s| -> Result<_, SyncError> {
                s.put_mailbox(done)?;
                s.commit()?;
                Ok(())
            })
            .await?;
    }
    Ok(())
}

/// Downloads one part of `split`'s new mail into the store, on a connection
/// that has the folder open (the folder's own, or a helper's that
/// `EXAMINE`d it with the split's UIDVALIDITY): the server's ids asked
/// (where it gives them), what is known by them recorded, the rest fetched
/// in batches. What was stored, recorded or found missing is noted in
/// `part.handled`.
pub async fn fetch_part(
    conn: &mut Connection,
    store: &SharedStore,
    account: &str,
    split: &Split,
    part: &mut Taken,
    opts: &SyncOptions,
    progress: &dyn Progress,
) -> Result<(), SyncError> {
    let (folder, uidvalidity) = (&split.folder, split.uidvalidity);
    let raw = folder.raw.as_str();
    // The server's own ids, where it gives them: a message already stored
    // from another folder (or an earlier part) is recorded here without
    // downloading it again, and one shown twice in this part is downloaded
    // once.
    let ids = message_ids(conn, &mut part.ask_ids, &part.part, &folder.display).await?;
    let batch = BatchCtx {
        store,
        account,
        raw,
        uidvalidity,
        folder: &folder.display,
        progress,
        ids: &ids,
        opts,
    };
    let mut pending = part.part.clone();
    while !pending.is_empty() {
        let before: Vec<Uid> = pending.iter().map(|m| m.uid).collect();
        let unknown = record_known(
            store,
            account,
            raw,
            uidvalidity,
            pending,
            &ids,
            &mut part.got,
        )
        .await?;
        let left: HashSet<Uid> = unknown.iter().map(|m| m.uid).collect();
        part.handled
            .extend(before.into_iter().filter(|u| !left.contains(u)));
        let (now, later) = first_of_each_id(unknown, &ids);
        pending = later;
        fetch_all(
            conn,
            &batch,
            now,
            &mut part.got,
            &mut part.unaccounted,
            &mut part.handled,
        )
        .await?;
    }
    Ok(())
}

/// The server's ids of `part`'s messages, while `ask` says to ask. A
/// server that will not say (a greeting that named Dovecot wrongly, a
/// proxy) is not asked again: every message is downloaded, as without.
async fn message_ids(
    conn: &mut Connection,
    ask: &mut Option<MessageIds>,
    part: &[MessageMeta],
    folder: &str,
) -> Result<BTreeMap<Uid, String>, SyncError> {
    let Some(kind) = *ask else {
        return Ok(BTreeMap::new());
    };
    let uids: Vec<Uid> = part.iter().map(|m| m.uid).collect();
    match conn.fetch_message_ids(kind, &uids).await {
        Ok(ids) => Ok(ids),
        Err(ImapError::Command { source, .. }) => {
            tracing::info!(folder, "no message ids: {source}");
            *ask = None;
            Ok(BTreeMap::new())
        }
        Err(e) => Err(e.into()),
    }
}

/// Fetches `metas` in batches (a huge message alone, through a file), adding
/// to `out`; UIDs the server did not send go to `unaccounted`. Every
/// message stored or found missing goes into `handled`, also when it fails
/// half-way.
async fn fetch_all(
    conn: &mut Connection,
    ctx: &BatchCtx<'_>,
    metas: Vec<MessageMeta>,
    out: &mut FolderOutcome,
    unaccounted: &mut Vec<Uid>,
    handled: &mut HashSet<Uid>,
) -> Result<(), SyncError> {
    let opts = ctx.opts;
    for batch in plan::batches(metas, opts.batch_count, opts.batch_bytes) {
        let mut got = BatchResult::default();
        let res = if batch.len() == 1 && batch[0].size >= opts.batch_bytes {
            let r = fetch_huge(conn, ctx, &batch[0], &mut got).await;
            ctx.progress.fetched(
                ctx.account,
                ctx.folder,
                got.received.len() as u64,
                got.bytes,
            );
            r
        } else {
            fetch_batch(conn, ctx, &batch, &mut got).await
        };
        out.new_messages += got.received.len() as u64;
        out.deduplicated += got.deduplicated;
        out.new_bytes += got.bytes;
        handled.extend(got.received);
        handled.extend(got.missing.iter().copied());
        unaccounted.extend(got.missing.iter().copied());
        res?;
    }
    Ok(())
}

/// Records the messages of `metas` whose server id leads to a message
/// already stored (same size, readable); returns the others.
async fn record_known(
    store: &SharedStore,
    account: &str,
    raw: &str,
    uidvalidity: u32,
    metas: Vec<MessageMeta>,
    ids: &BTreeMap<Uid, String>,
    out: &mut FolderOutcome,
) -> Result<Vec<MessageMeta>, SyncError> {
    if ids.is_empty() {
        return Ok(metas);
    }
    let (a, r) = (account.to_string(), raw.to_string());
    let wanted: Vec<(Uid, String, u64)> = metas
        .iter()
        .filter_map(|m| ids.get(&m.uid).map(|id| (m.uid, id.clone(), m.size)))
        .collect();
    let (metas, known) = store
        .run(move |s| -> Result<_, SyncError> {
            let asked: Vec<(Uid, &str, u64)> = wanted
                .iter()
                .map(|(u, id, n)| (*u, id.as_str(), *n))
                .collect();
            let found = s.index().stored_by_server_id(&a, &asked)?;
            let mut rest = Vec::with_capacity(metas.len());
            let mut known = 0u64;
            for m in metas {
                match found.get(&m.uid) {
                    Some(blob) => {
                        s.add_ref(seen_record(&a, &r, uidvalidity, &m, *blob))?;
                        known += 1;
                    }
                    None => rest.push(m),
                }
            }
            if known > 0 {
                s.commit()?;
            }
            Ok((rest, known))
        })
        .await?;
    out.new_messages += known;
    out.recognised += known;
    Ok(metas)
}

/// Splits `metas` into the first message of each server id (and those
/// without one), to fetch now, and the later ones with an id already in the
/// first part, to record from it once it is stored.
fn first_of_each_id(
    metas: Vec<MessageMeta>,
    ids: &BTreeMap<Uid, String>,
) -> (Vec<MessageMeta>, Vec<MessageMeta>) {
    let mut seen: HashSet<&str> = HashSet::new();
    metas
        .into_iter()
        .partition(|m| ids.get(&m.uid).is_none_or(|id| seen.insert(id.as_str())))
}

/// Writes the folder record, flag changes and departures in one commit.
async fn record_changes(
    store: &SharedStore,
    account: &str,
    raw: &str,
    state: &crate::model::MailboxState,
    plan: &Plan,
    mailbox: MailboxRecord,
) -> Result<(), SyncError> {
    let at = now();
    let base = RefRecord {
        account: account.to_string(),
        mailbox: raw.to_string(),
        uidvalidity: state.uidvalidity,
        uid: 0,
        at,
        event: RefEvent::Gone,
    };
    let flags = plan.flag_updates.clone();
    let gone = plan.gone.clone();
    store
        .run(move |s| -> Result<_, SyncError> {
            s.put_mailbox(mailbox)?;
            for (uid, flags, modseq) in flags {
                s.add_ref(RefRecord {
                    uid,
                    event: RefEvent::Flags {
                        flags: flags.to_text(),
                        modseq,
                    },
                    ..base.clone()
                })?;
            }
            for uid in gone {
                s.add_ref(RefRecord {
                    uid,
                    event: RefEvent::Gone,
                    ..base.clone()
                })?;
            }
            s.commit()?;
            Ok(())
        })
        .await
}

#[derive(Default)]
struct BatchResult {
    deduplicated: u64,
    bytes: u64,
    /// Stored, also of a batch that failed half-way.
    received: BTreeSet<Uid>,
    /// Asked for, not sent by the server.
    missing: Vec<Uid>,
}

fn seen_record(
    account: &str,
    raw: &str,
    uidvalidity: u32,
    m: &MessageMeta,
    blob: crate::model::BlobId,
) -> RefRecord {
    RefRecord {
        account: account.to_string(),
        mailbox: raw.to_string(),
        uidvalidity,
        uid: m.uid,
        at: now(),
        event: RefEvent::Seen {
            blob,
            internaldate: m.internaldate.unix,
            date_offset: m.internaldate.offset_min,
            size: m.size,
            flags: m.flags.to_text(),
            modseq: m.modseq,
        },
    }
}

struct BatchCtx<'a> {
    store: &'a SharedStore,
    account: &'a str,
    raw: &'a str,
    uidvalidity: u32,
    folder: &'a str,
    progress: &'a dyn Progress,
    /// The server's ids of the messages to fetch, remembered with them.
    ids: &'a BTreeMap<Uid, String>,
    opts: &'a SyncOptions,
}

/// Commit at least this often while a FETCH streams in, so a dropped
/// connection costs little download.
const COMMIT_EVERY_BYTES: u64 = 1024 * 1024;

/// One UID FETCH; each message goes into the store as it arrives, with a
/// commit every [`COMMIT_EVERY_BYTES`] and at the end, also when the fetch
/// fails half-way: what arrived whole is kept.
async fn fetch_batch(
    conn: &mut Connection,
    ctx: &BatchCtx<'_>,
    batch: &[MessageMeta],
    got: &mut BatchResult,
) -> Result<(), SyncError> {
    let uids: Vec<Uid> = batch.iter().map(|m| m.uid).collect();
    let metas: BTreeMap<Uid, MessageMeta> = batch.iter().map(|m| (m.uid, m.clone())).collect();
    let mut failure: Option<SyncError> = None;
    let mut since_commit = 0u64;
    let res = conn
        .fetch_bodies(&uids, &mut |uid, bytes| -> Result<(), BoxError> {
            let Some(meta) = metas.get(&uid) else {
                // Not asked for (an unsolicited FETCH): ignore.
                return Ok(());
            };
            if got.received.contains(&uid) {
                let e = SyncError::Duplicate {
                    folder: ctx.raw.to_string(),
                    uid,
                };
                let text = e.to_string();
                failure = Some(e);
                return Err(text.into());
            }
            let len = bytes.len() as u64;
            since_commit += len;
            let commit = since_commit >= COMMIT_EVERY_BYTES;
            if commit {
                since_commit = 0;
            }
            let stored = ctx.store.run_here(|s| -> Result<bool, SyncError> {
                let (id, new) = s.put_blob(&bytes)?;
                s.add_ref(seen_record(ctx.account, ctx.raw, ctx.uidvalidity, meta, id))?;
                if let Some(sid) = ctx.ids.get(&uid) {
                    s.index().put_server_id(ctx.account, sid, &id)?;
                }
                if commit {
                    s.commit()?;
                }
                Ok(new)
            });
            match stored {
                Ok(new) => {
                    got.received.insert(uid);
                    got.bytes += len;
                    got.deduplicated += u64::from(!new);
                    ctx.progress.fetched(ctx.account, ctx.folder, 1, len);
                    Ok(())
                }
                Err(e) => {
                    let text = e.to_string();
                    failure = Some(e);
                    Err(text.into())
                }
            }
        })
        .await;
    // Whatever arrived whole is made durable, whether or not the FETCH ended well.
    ctx.store.run(|s| s.commit()).await?;
    if let Some(e) = failure {
        return Err(e);
    }
    res?;
    got.missing = uids
        .iter()
        .copied()
        .filter(|u| !got.received.contains(u))
        .collect();
    Ok(())
}

/// A message too big to hold in memory: fetched in chunks into a spool file,
/// then streamed into a pack.
async fn fetch_huge(
    conn: &mut Connection,
    ctx: &BatchCtx<'_>,
    meta: &MessageMeta,
    got: &mut BatchResult,
) -> Result<(), SyncError> {
    let (store, opts, uidvalidity) = (ctx.store, ctx.opts, ctx.uidvalidity);
    let spool_err = |path: &PathBuf| {
        let path = path.clone();
        move |source| SyncError::Spool { path, source }
    };
    crate::store::pack::create_private_dir(&opts.spool_dir).map_err(spool_err(&opts.spool_dir))?;
    let path = opts.spool_dir.join(format!(
        "{}-{}-{}.part",
        std::process::id(),
        uidvalidity,
        meta.uid
    ));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(spool_err(&path))?;
    let mut written = 0u64;
    let res = conn
        .fetch_body_chunked(meta.uid, meta.size, opts.chunk_size, &mut |chunk| {
            file.write_all(chunk)?;
            written += chunk.len() as u64;
            Ok(())
        })
        .await;
    drop(file);
    if let Err(e) = res {
        let _ = std::fs::remove_file(&path);
        return Err(e.into());
    }
    if written == 0 {
        let _ = std::fs::remove_file(&path);
        got.missing = vec![meta.uid];
        return Ok(());
    }
    let uid = meta.uid;
    let (account, raw, meta) = (ctx.account.to_string(), ctx.raw.to_string(), meta.clone());
    let server_id = ctx.ids.get(&meta.uid).cloned();
    let spooled = path.clone();
    let result = store
        .run(move |s| -> Result<_, SyncError> {
            let (id, new) = s.put_blob_file(&spooled)?;
            s.add_ref(seen_record(&account, &raw, uidvalidity, &meta, id))?;
            if let Some(sid) = &server_id {
                s.index().put_server_id(&account, sid, &id)?;
            }
            s.commit()?;
            Ok(new)
        })
        .await;
    let _ = std::fs::remove_file(&path);
    let new = result?;
    got.received.insert(uid);
    got.deduplicated = u64::from(!new);
    got.bytes = written;
    Ok(())
}

//! `mailkeep search`, `show` and `reindex`, and the indexing that backup
//! (and import) run when they are done.
//!
//! The search index is a cache beside the rest of the index: one row per
//! stored message, filled from the stored bytes. `index_pending` indexes
//! whatever is not indexed yet, so it catches up after a crash, an upgrade
//! or an import; `reindex` empties the index and fills it again.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::index::{SearchDoc, SearchFilter, SearchHit, SearchState};
use crate::model::BlobId;
use crate::search::{extract, parse_query, Extracted};
use crate::store::{now, Store};

use super::{folder_matches, OpError};

/// Messages read per batch, and one transaction each.
const BATCH_MESSAGES: usize = 256;
/// A batch is also written once its text passes this many bytes.
const BATCH_TEXT_BYTES: usize = 16 * 1024 * 1024;
/// Only the first this-many bytes of a message are parsed (headers, text
/// and the attachments that start within them); memory stays bounded.
pub const MAX_PARSED_BYTES: u64 = 4 * 1024 * 1024;

/// Indexes every stored message that is not in the search index yet, in
/// transactions of a few hundred. `progress(done, total)`. A message whose
/// bytes cannot be read is recorded as unreadable (and counted by
/// [`unreadable`]) rather than stopping the rest. Returns how many were
/// indexed.
pub fn index_pending(
    store: &mut Store,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, OpError> {
    index_pending_until(store, progress, &|| false)
}

/// [`index_pending`], stopping between messages once `stop()` says so
/// (what was indexed stays; the rest is indexed next time).
pub fn index_pending_until(
    store: &mut Store,
    progress: &mut dyn FnMut(u64, u64),
    stop: &dyn Fn() -> bool,
) -> Result<u64, OpError> {
    require_search_tables(store)?;
    let total = store.index().search_pending_count()?;
    if total == 0 {
        return Ok(0);
    }
    let mut done = 0u64;
    let mut added = 0u64;
    let mut after: Option<BlobId> = None;
    loop {
        let ids = store
            .index()
            .search_pending(after.as_ref(), BATCH_MESSAGES)?;
        let Some(last) = ids.last().copied() else {
            break;
        };
        let mut docs = Vec::with_capacity(ids.len());
        let mut text_bytes = 0;
        for id in ids {
            if stop() {
                added += store.index().search_add(&docs, now())?;
                return Ok(added);
            }
            let doc = match read_prefix(store, &id) {
                Ok(bytes) => extract(&bytes).to_doc(id),
                Err(_) => SearchDoc::empty(id, -1),
            };
            text_bytes += doc.body.len() + doc.subject.len();
            docs.push(doc);
            done += 1;
            if text_bytes >= BATCH_TEXT_BYTES {
                added += store.index().search_add(&docs, now())?;
                docs.clear();
                text_bytes = 0;
            }
            progress(done.min(total), total);
        }
        added += store.index().search_add(&docs, now())?;
        after = Some(last);
    }
    Ok(added)
}

/// What `reindex` did.
#[derive(Debug, Default)]
pub struct ReindexReport {
    pub indexed: u64,
    /// Messages whose bytes could not be read (see `verify --deep`).
    pub unreadable: u64,
    pub elapsed: Duration,
}

/// Empties the search index and fills it again from the stored messages.
pub fn reindex(
    store: &mut Store,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReindexReport, OpError> {
    let started = Instant::now();
    require_search_tables(store)?;
    store.index().search_clear()?;
    let indexed = index_pending(store, progress)?;
    store.index().search_optimize()?;
    Ok(ReindexReport {
        indexed,
        unreadable: store.index().search_unreadable_count()?,
        elapsed: started.elapsed(),
    })
}

pub fn unreadable(store: &Store) -> Result<u64, OpError> {
    Ok(store.index().search_unreadable_count()?)
}

/// Reads at most [`MAX_PARSED_BYTES`] of a message (all of it is still
/// decompressed and hash-checked).
fn read_prefix(store: &Store, id: &BlobId) -> Result<Vec<u8>, crate::store::StoreError> {
    let mut w = CappedWriter {
        buf: Vec::new(),
        cap: MAX_PARSED_BYTES as usize,
    };
    store.copy_blob_to(id, &mut w)?;
    Ok(w.buf)
}

struct CappedWriter {
    buf: Vec<u8>,
    cap: usize,
}

impl Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.cap.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn require_search_tables(store: &Store) -> Result<(), OpError> {
    match store.index().search_state()? {
        SearchState::Ready => Ok(()),
        SearchState::Missing => Err(OpError::usage(
            format!(
                "the store `{}` has no search index yet",
                store.root().display()
            ),
            Some("run `mailkeep reindex` once to build it"),
        )),
        SearchState::Old => Err(OpError::usage(
            format!(
                "the search index of the store `{}` was made by an older mailkeep, which read less of the mail",
                store.root().display()
            ),
            Some("run `mailkeep reindex` once to rebuild it (the next backup or import does it too)"),
        )),
    }
}

#[derive(Clone, Debug, Default)]
pub struct SearchOptions {
    /// Only these accounts (exact names); empty: all.
    pub accounts: Vec<String>,
    /// Only folders matching one of these patterns; empty: all.
    pub folders: Vec<String>,
    pub limit: usize,
}

#[derive(Debug)]
pub struct SearchResults {
    /// Newest first, at most `limit`.
    pub hits: Vec<SearchHit>,
    /// More messages matched than `limit`.
    pub more: bool,
    /// Stored messages not in the search index yet.
    pub not_indexed: u64,
}

/// Runs a query (see `search::query` for the language) over the whole store.
pub fn search(store: &Store, query: &str, opts: &SearchOptions) -> Result<SearchResults, OpError> {
    let q = parse_query(query).map_err(|e| OpError::usage(e.message, Some(&e.hint)))?;
    require_search_tables(store)?;
    let mut accounts = opts.accounts.clone();
    accounts.extend(q.accounts.iter().cloned());
    let mut folders = opts.folders.clone();
    folders.extend(q.folders.iter().cloned());
    let known: Vec<String> = store
        .index()
        .accounts()?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for a in &accounts {
        if !known.contains(a) {
            return Err(OpError::usage(
                format!("the store holds no mail of account `{a}`"),
                Some("`mailkeep status` lists the accounts in the store"),
            ));
        }
    }
    let mailbox_ids = if accounts.is_empty() && folders.is_empty() {
        None
    } else {
        let mut ids = Vec::new();
        for a in known
            .iter()
            .filter(|a| accounts.is_empty() || accounts.contains(a))
        {
            for mb in store.index().mailboxes(a)? {
                if folders.is_empty() || folders.iter().any(|p| folder_matches(p, &mb.name)) {
                    ids.push(mb.id);
                }
            }
        }
        Some(ids)
    };
    let limit = opts.limit.max(1);
    let mut hits = store.index().search(&SearchFilter {
        terms: q.terms,
        mailbox_ids,
        since: q.since,
        before: q.before,
        has_attachment: q.has_attachment,
        limit,
    })?;
    let more = hits.len() > limit;
    hits.truncate(limit);
    Ok(SearchResults {
        hits,
        more,
        not_indexed: store.index().search_pending_count()?,
    })
}

/// The shortest id prefix `search` prints and `show` is sure to accept
/// for years to come.
pub const SHORT_ID: usize = 12;

/// The message whose id starts with `prefix` (hex, any length): like git,
/// an ambiguous prefix is an error that lists the candidates.
pub fn resolve_id(store: &Store, prefix: &str) -> Result<BlobId, OpError> {
    let p = prefix.trim().to_ascii_lowercase();
    if p.is_empty() || p.len() > 64 || !p.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(OpError::usage(
            format!("`{prefix}` is not a message id"),
            Some("ids are the hex strings in the last column of `mailkeep search`"),
        ));
    }
    let lo = BlobId::from_hex(&format!("{p:0<64}")).expect("64 hex digits");
    let hi = BlobId::from_hex(&format!("{p:f<64}")).expect("64 hex digits");
    let found = store.index().blobs_between(&lo, &hi, 6)?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(OpError::usage(
            format!("no message with id `{prefix}` in the store"),
            Some("ids are the hex strings in the last column of `mailkeep search`"),
        )),
        many => {
            let list: Vec<String> = many
                .iter()
                .take(5)
                .map(|b| b.to_hex()[..SHORT_ID.max(p.len() + 2).min(64)].to_string())
                .collect();
            Err(OpError::usage(
                format!(
                    "the id `{prefix}` is ambiguous: {}{}",
                    list.join(", "),
                    if many.len() > 5 { ", …" } else { "" }
                ),
                Some("give more characters of the id"),
            ))
        }
    }
}

/// One message for `show`.
#[derive(Debug)]
pub struct Shown {
    pub blob: BlobId,
    pub size: u64,
    /// Only the first [`MAX_PARSED_BYTES`] were read.
    pub truncated: bool,
    pub message: Extracted,
    pub places: Vec<crate::index::SearchPlace>,
}

pub fn show(store: &Store, id: &BlobId) -> Result<Shown, OpError> {
    let size = store.blob_location(id)?.raw_size;
    let bytes = read_prefix(store, id)?;
    Ok(Shown {
        blob: *id,
        size,
        truncated: size > bytes.len() as u64,
        message: extract(&bytes),
        places: store.index().places(id)?,
    })
}

/// Streams the exact stored bytes of a message to `out`.
pub fn write_raw(store: &Store, id: &BlobId, out: &mut dyn Write) -> Result<u64, OpError> {
    Ok(store.copy_blob_to(id, out)?)
}

//! `mailkeep search`, `show` and `reindex`, and the indexing that backup
//! (and import) run.
//!
//! The search index (`index::SearchIndex`, its own file) is a cache: one row
//! per stored message, filled from the stored bytes. `index_pending` indexes
//! whatever is not indexed yet, so it catches up after a crash, an upgrade
//! or an import; `reindex` empties the index and fills it again.
//!
//! A query is answered in two steps: the index gives the candidates, newest
//! first; a term the index cannot answer alone (a phrase, a CJK piece of 3
//! or more characters: see `SearchTerm::exact_in_index`) is then checked
//! against each candidate's own decoded text, until enough have matched.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::index::{
    Candidate, SearchColumn, SearchDoc, SearchFilter, SearchHit, SearchIndex, SearchTerm,
};
use crate::model::BlobId;
use crate::search::fold::index_form;
use crate::search::{extract, parse_query, Extracted};
use crate::store::Store;

use super::{folder_matches, OpError};

/// Messages read per batch, and one transaction each (fewer, bigger
/// transactions leave the full-text index fewer segments to merge).
const BATCH_MESSAGES: usize = 1024;
/// A batch is also written once its text passes this many bytes.
const BATCH_TEXT_BYTES: usize = 8 * 1024 * 1024;
/// Only the first this-many bytes of a message are parsed (headers, text
/// and the attachments that start within them); memory stays bounded.
pub const MAX_PARSED_BYTES: u64 = 4 * 1024 * 1024;
/// What is read of a message to show its headers in the results.
const HEAD_BYTES: usize = 64 * 1024;
/// Candidates read at a time while checking terms against the messages.
const PAGE: usize = 200;

/// Indexes every stored message that is not in the search index yet, in
/// transactions of a few hundred. `progress(done, total)`. A message whose
/// bytes cannot be read is recorded as unreadable (and counted by
/// [`unreadable`]) rather than stopping the rest. Returns how many were
/// indexed.
pub fn index_pending(
    store: &mut Store,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, OpError> {
    let search = SearchIndex::open(store.root())?;
    index_pending_until(store, &search, progress, &|| false)
}

/// [`index_pending`] into an open search index, stopping between messages
/// once `stop()` says so (what was indexed stays; the rest is indexed next
/// time). The store may be one opened to read, beside a writer: messages
/// stored meanwhile are indexed too, and dictionaries trained meanwhile
/// are loaded.
pub fn index_pending_until(
    store: &mut Store,
    search: &SearchIndex,
    progress: &mut dyn FnMut(u64, u64),
    stop: &dyn Fn() -> bool,
) -> Result<u64, OpError> {
    index_pending_after(store, search, i64::MIN, progress, stop).map(|(added, _)| added)
}

/// [`index_pending_until`] for the stored messages with a key past `after`
/// only; also returns the key it got to (every pending message up to it
/// is indexed now).
fn index_pending_after(
    store: &mut Store,
    search: &SearchIndex,
    after: i64,
    progress: &mut dyn FnMut(u64, u64),
    stop: &dyn Fn() -> bool,
) -> Result<(u64, i64), OpError> {
    // A pass from the start that runs to its end sees every message stored
    // up to `top` (stored before it began): the search index says so, and
    // the next pass from the start begins there while nothing else changed
    // the search index (a backup with nothing new reads no old message).
    let (after, top) = if after == i64::MIN {
        (
            search.swept_upto()?.unwrap_or(i64::MIN),
            search.max_stored_key()?,
        )
    } else {
        (after, None)
    };
    let mut total = search.pending_count_after(after)?;
    let mut done = 0u64;
    let mut added = 0u64;
    let mut after = after;
    loop {
        let keys = search.pending(after, BATCH_MESSAGES)?;
        let Some(&(last, _)) = keys.last() else {
            break;
        };
        total = total.max(done + keys.len() as u64);
        let mut docs = Vec::with_capacity(keys.len());
        let mut text_bytes = 0;
        let mut keys = keys.into_iter().peekable();
        while keys.peek().is_some() {
            if stop() {
                added += search.add(&docs)?;
                return Ok((added, after));
            }
            // Read a few messages (the store is one thread's), then decode
            // them on every core: decoding is most of indexing.
            let mut chunk: Vec<(i64, Option<Vec<u8>>)> = Vec::new();
            let mut chunk_bytes = 0;
            for (key, id) in keys.by_ref() {
                let read = read_prefix(store, &id).or_else(|_| {
                    // A dictionary trained since this store was opened?
                    store.refresh()?;
                    read_prefix(store, &id)
                });
                let bytes = read.ok();
                chunk_bytes += bytes.as_ref().map_or(0, Vec::len);
                chunk.push((key, bytes));
                if chunk_bytes >= CHUNK_BYTES || chunk.len() >= CHUNK_MESSAGES {
                    break;
                }
            }
            for doc in extract_all(chunk) {
                text_bytes += doc.body.len() + doc.subject.len();
                docs.push(doc);
                done += 1;
                if text_bytes >= BATCH_TEXT_BYTES {
                    added += search.add(&docs)?;
                    docs.clear();
                    text_bytes = 0;
                }
            }
            progress(done, total);
        }
        added += search.add(&docs)?;
        after = last;
    }
    if let Some(top) = top {
        search.record_sweep(top)?;
    }
    Ok((added, after))
}

/// Messages read before they are decoded together: at most this many, or
/// about this many bytes (memory stays bounded).
const CHUNK_MESSAGES: usize = 64;
const CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// The search documents of `chunk` (key, bytes or `None` when unreadable),
/// in its order, decoded on up to as many threads as there are cores.
fn extract_all(chunk: Vec<(i64, Option<Vec<u8>>)>) -> Vec<SearchDoc> {
    let one = |(key, bytes): &(i64, Option<Vec<u8>>)| match bytes {
        Some(b) => extract(b).to_doc(*key),
        None => SearchDoc::empty(*key, -1),
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_DECODE_THREADS)
        .min(chunk.len());
    if threads <= 1 {
        return chunk.iter().map(one).collect();
    }
    // A big message (an attachment) is left to this thread, after the
    // others: decoding takes a few times its size in memory, and two at
    // once would double that.
    let small: Vec<usize> = (0..chunk.len())
        .filter(|&i| {
            chunk[i]
                .1
                .as_ref()
                .is_none_or(|b| b.len() <= DECODE_ALONE_BYTES)
        })
        .collect();
    // Each thread takes the next small message not yet taken.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let take = || {
        let mut got = Vec::new();
        loop {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(&i) = small.get(n) else {
                return got;
            };
            got.push((i, one(&chunk[i])));
        }
    };
    let mut slots: Vec<Option<SearchDoc>> = (0..chunk.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(take)).collect();
        let mut all = take();
        for h in helpers {
            // A panic in decoding is caught inside `extract`; one here is a
            // bug, and the message is indexed again on this thread below.
            if let Ok(got) = h.join() {
                all.extend(got);
            }
        }
        for (i, doc) in all {
            slots[i] = Some(doc);
        }
    });
    slots
        .into_iter()
        .zip(&chunk)
        .map(|(doc, item)| doc.unwrap_or_else(|| one(item)))
        .collect()
}

/// Decoding threads at most (beyond a few, the single writer of the
/// search index is the limit).
const MAX_DECODE_THREADS: usize = 4;
/// A chunk that holds a message bigger than this is decoded on one thread.
const DECODE_ALONE_BYTES: usize = 1024 * 1024;

/// Indexes what a writer stores in the store at `root` while it works, from
/// a store of its own opened to read: what is pending, again and again,
/// until `done()` (then what is left) or `stop()`. Returns how many were
/// indexed.
pub fn index_while(
    root: &std::path::Path,
    until: &Finish,
    stop: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, OpError> {
    let mut store = Store::open_read_only(root)?;
    let search = SearchIndex::open(root)?;
    let mut indexed = 0;
    let mut seen = 0;
    // Each pass starts where the last one got to: the writer stores new
    // messages under ever larger keys, so a pass need not read the whole
    // store again (at 100,000 messages that read was most of a pass). The
    // last pass, once the writer is done, starts from the beginning, so
    // that nothing is missed whatever the order.
    let mut after = i64::MIN;
    loop {
        // Read before the pass: once done, this pass takes the rest.
        let last = until.is_set();
        let from = if last { i64::MIN } else { after };
        let (n, reached) = index_pending_after(
            &mut store,
            &search,
            from,
            &mut |d, t| progress(seen + d, seen + t),
            stop,
        )?;
        indexed += n;
        after = reached;
        seen = indexed;
        if last || stop() {
            return Ok(indexed);
        }
        // New mail becomes visible here as the writer commits it; the end
        // of the fetch wakes it at once.
        until.wait(Duration::from_millis(100));
    }
}

/// A flag one thread sets and another waits for, with a time limit.
#[derive(Debug, Default)]
pub struct Finish {
    set: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Finish {
    pub fn set(&self) {
        *self.set.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_all();
    }

    pub fn is_set(&self) -> bool {
        *self.set.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns when the flag is set, or after `limit`.
    pub fn wait(&self, limit: Duration) {
        let set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .changed
            .wait_timeout_while(set, limit, |set| !*set)
            .unwrap_or_else(|e| e.into_inner());
    }
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
    let search = SearchIndex::open(store.root())?;
    search.clear()?;
    let indexed = index_pending_until(store, &search, progress, &|| false)?;
    search.optimize()?;
    Ok(ReindexReport {
        indexed,
        unreadable: search.unreadable_count()?,
        elapsed: started.elapsed(),
    })
}

/// Reads at most [`MAX_PARSED_BYTES`] of a message; all of it is still
/// decompressed and hash-checked, so that damage is noticed.
fn read_prefix(store: &Store, id: &BlobId) -> Result<Vec<u8>, crate::store::StoreError> {
    if store.blob_location(id)?.raw_size <= MAX_PARSED_BYTES {
        return store.read_blob(id);
    }
    let mut w = CappedWriter {
        buf: Vec::new(),
        cap: MAX_PARSED_BYTES as usize,
    };
    store.copy_blob_to(id, &mut w)?;
    Ok(w.buf)
}

/// The first `cap` bytes of a message, read no further (no hash check: for
/// showing and matching, never for keeping).
fn read_head(store: &Store, id: &BlobId, cap: usize) -> Result<Vec<u8>, OpError> {
    if store.blob_location(id)?.raw_size <= cap as u64 {
        // Whole, through the zstd context this thread keeps (making one
        // per message, and once loading a dictionary each time, was a
        // tenth of a search's time).
        return Ok(store.read_blob(id)?);
    }
    let mut r = store.open_blob(id)?;
    let mut buf = Vec::with_capacity(cap.min(1 << 20));
    // An error is damage at the end of a message smaller than `cap`, which
    // was read whole: what came is what there is.
    let _ = (&mut r).take(cap as u64).read_to_end(&mut buf);
    Ok(buf)
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

/// The search index of a store, to query it; none yet is an error that
/// says how to make it.
fn search_index(store: &Store) -> Result<SearchIndex, OpError> {
    SearchIndex::open_read_only(store.root())?.ok_or_else(|| {
        OpError::usage(
            format!(
                "the store `{}` has no search index yet",
                store.root().display()
            ),
            Some("the next backup or import builds it, or run `mailkeep reindex`"),
        )
    })
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
    for t in &q.terms {
        if crate::search::tokens::tokens(&t.text).is_empty() {
            return Err(OpError::usage(
                format!("`{}` has no letters or digits to search for", t.text),
                Some("search for words, or a piece of Japanese text of 2 or more characters"),
            ));
        }
    }
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
    let search = search_index(store)?;
    let limit = opts.limit.max(1);
    let filter = SearchFilter {
        terms: q.terms,
        mailbox_ids,
        since: q.since,
        before: q.before,
        has_attachment: q.has_attachment,
    };
    let to_check: Vec<&SearchTerm> = filter
        .terms
        .iter()
        .filter(|t| !t.exact_in_index())
        .collect();
    let mut found: Vec<(Candidate, Option<Extracted>)> = Vec::new();
    let mut offset = 0;
    while found.len() <= limit {
        let want = if to_check.is_empty() { limit + 1 } else { PAGE };
        let (page, read) = search.candidates(&filter, offset, want)?;
        offset += read;
        let last_page = read < want;
        for c in page {
            if to_check.is_empty() {
                found.push((c, None));
                continue;
            }
            // Only the terms the index cannot answer alone are checked.
            let Ok(bytes) = read_head(store, &c.blob, MAX_PARSED_BYTES as usize) else {
                continue;
            };
            let e = extract(&bytes);
            if to_check.iter().all(|t| holds(&e, t)) {
                found.push((c, Some(e)));
                if found.len() > limit {
                    break;
                }
            }
        }
        if last_page || found.len() > limit {
            break;
        }
    }
    let more = found.len() > limit;
    found.truncate(limit);
    let mut hits = Vec::with_capacity(found.len());
    for (c, e) in found {
        let e = match e {
            Some(e) => e,
            None => extract(&read_head(store, &c.blob, HEAD_BYTES).unwrap_or_default()),
        };
        let mut places = store.index().places(&c.blob)?;
        if let Some(ids) = &filter.mailbox_ids {
            places.retain(|p| ids.contains(&p.mailbox_id));
        }
        hits.push(SearchHit {
            blob: c.blob,
            date: c.date,
            subject: if c.subject.is_empty() {
                crate::search::fold::normalize(&e.subject)
            } else {
                c.subject
            },
            from: crate::search::fold::normalize(&e.from),
            to: crate::search::fold::normalize(&e.to),
            has_attachment: c.has_attachment,
            message_id: e.message_id,
            places,
        });
    }
    Ok(SearchResults {
        hits,
        more,
        not_indexed: search.not_indexed_count()?,
    })
}

/// Whether the message's text holds `t`: the term as a piece of the field's
/// folded text (any field for a term without one).
fn holds(e: &Extracted, t: &SearchTerm) -> bool {
    let field = |c: SearchColumn| -> String {
        match c {
            SearchColumn::Subject => index_form(&e.subject),
            SearchColumn::From => index_form(&e.from),
            SearchColumn::To => index_form(&e.to),
            SearchColumn::Cc => index_form(&e.cc),
            SearchColumn::Attachments => {
                let names: Vec<&str> = e.attachments.iter().map(|a| a.name.as_str()).collect();
                index_form(&names.join(" "))
            }
            SearchColumn::Body => {
                let mut body = String::new();
                for x in e.texts.iter().chain(&e.nested_text) {
                    body.push_str(&index_form(x));
                    body.push(' ');
                }
                body
            }
        }
    };
    match t.column {
        Some(c) => field(c).contains(&t.text),
        None => [
            SearchColumn::Subject,
            SearchColumn::From,
            SearchColumn::To,
            SearchColumn::Cc,
            SearchColumn::Attachments,
            SearchColumn::Body,
        ]
        .into_iter()
        .any(|c| field(c).contains(&t.text)),
    }
}

/// Messages the search index could not read.
pub fn unreadable(store: &Store) -> Result<u64, OpError> {
    match SearchIndex::open_read_only(store.root())? {
        Some(s) => Ok(s.unreadable_count()?),
        None => Ok(0),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(i: usize) -> Vec<u8> {
        format!("Subject: note {i}\r\nFrom: a@example.com\r\n\r\nbody {i} quarterly\r\n")
            .into_bytes()
    }

    #[test]
    fn what_a_search_says_is_not_indexed_is_counted_right_by_the_cheap_way_and_the_full_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        for i in 0..20 {
            store.put_blob(&mail(i)).unwrap();
        }
        store.commit().unwrap();
        assert_eq!(index_pending(&mut store, &mut |_, _| {}).unwrap(), 20);
        let search = SearchIndex::open(dir.path()).unwrap();
        assert_eq!(search.not_indexed_count().unwrap(), 0);

        // Stored since the indexer's last complete pass: counted past it.
        for i in 20..25 {
            store.put_blob(&mail(i)).unwrap();
        }
        store.commit().unwrap();
        assert_eq!(search.not_indexed_count().unwrap(), 5);
        assert_eq!(search.pending_count().unwrap(), 5);

        // Rows gone from the search index below that point (as after a
        // crash of an older release): the count is the full one.
        let db = rusqlite::Connection::open(dir.path().join("search.sqlite")).unwrap();
        db.execute_batch("DELETE FROM docs WHERE key IN (SELECT key FROM docs LIMIT 3)")
            .unwrap();
        assert_eq!(search.not_indexed_count().unwrap(), 8);
        assert_eq!(index_pending(&mut store, &mut |_, _| {}).unwrap(), 8);
        assert_eq!(search.not_indexed_count().unwrap(), 0);
    }
}

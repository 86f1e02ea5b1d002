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
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use crate::index::{
    Candidate, SearchColumn, SearchDoc, SearchFilter, SearchHit, SearchIndex, SearchTerm,
};
use crate::model::BlobId;
use crate::search::fold::index_form;
use crate::search::{extract, parse_query, Extracted};
use crate::store::{Fetched, Store};

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
    index_pending_after(store, search, i64::MIN, ALONE, progress, stop).map(|(added, _)| added)
}

/// [`index_pending_until`] for the stored messages with a key past `after`
/// only; also returns the key it got to (every pending message up to it
/// is indexed now).
fn index_pending_after(
    store: &mut Store,
    search: &SearchIndex,
    after: i64,
    mode: Mode,
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
    let total = search.pending_count_after(after)?;
    // One core is the writer's (the full-text index's writer is the one
    // part that cannot be shared: decoders beside it on every core slowed
    // it down by a third).
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .clamp(1, MAX_DECODE_THREADS);
    let (work_tx, work_rx) = mpsc::channel::<Work>();
    let (done_tx, done_rx) = mpsc::channel::<Decoded>();
    let (work_rx, big) = (Mutex::new(work_rx), Mutex::new(()));
    let (added, after, whole) = std::thread::scope(|s| {
        for _ in 0..threads {
            let (work, done, big) = (&work_rx, done_tx.clone(), &big);
            s.spawn(move || decode_loop(work, &done, big));
        }
        drop(done_tx);
        let mut feed = Feed {
            store,
            search,
            work: work_tx,
            decoded: done_rx,
            progress,
            stop,
            total,
            mode,
            cursor: after,
            keys: std::collections::VecDeque::new(),
            held: None,
            in_flight: 0,
            in_flight_bytes: 0,
            last_sent: after,
            unwritten: std::collections::BTreeSet::new(),
            docs: Vec::new(),
            text_bytes: 0,
            done: 0,
            added: 0,
            exhausted: false,
        };
        // Dropping `feed` closes the work channel: the decoders end.
        feed.run()
    })?;
    if let Some(top) = top.filter(|_| whole) {
        search.record_sweep(top)?;
    }
    Ok((added, after))
}

/// A message read from the store, for a decoder: its record, still
/// compressed, or (a big one, read in part) its first bytes.
struct Work {
    key: i64,
    id: BlobId,
    payload: Payload,
}

enum Payload {
    Record(Fetched),
    Bytes(Vec<u8>),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::Record(f) => f.size() as usize,
            Payload::Bytes(b) => b.len(),
        }
    }
}

/// What a decoder made of it: `None` when the record did not decompress to
/// its hash, or decoding panicked (a bug): the feeding thread then reads
/// and decodes the message itself, the whole way (which tells damage and
/// notes it).
struct Decoded {
    key: i64,
    id: BlobId,
    len: usize,
    doc: Option<SearchDoc>,
}

/// How the indexer runs: alone (`reindex`, a search's catch-up) or beside
/// a backup's fetch.
#[derive(Clone, Copy)]
struct Mode {
    /// Messages read and not yet decoded, at most this many (one bigger
    /// message is let through alone) ...
    messages: usize,
    /// ... and this many bytes (as stored; held compressed until decoded):
    /// memory stays bounded.
    bytes: usize,
    /// Whether the freed pages are given back to the system after each
    /// write ([`crate::heap::give_back`]).
    give_back: bool,
}

/// As many in flight as one write of [`BATCH_MESSAGES`]: the decoders have
/// that much to do while the writer writes (at half of it they ran dry, and
/// `reindex` took 25 % longer). Giving pages back would save 6 MB (71 →
/// 65 MB) for 4 % more time.
const ALONE: Mode = Mode {
    messages: BATCH_MESSAGES,
    bytes: 16 * 1024 * 1024,
    give_back: false,
};
/// A quarter as many in flight: the fetch has the cores the decoders would
/// wait on, and memory counts more (at 1,000,000 messages the first
/// backup's peak went from 103 to 132 MB with the larger one). Freed pages
/// are given back: the fetch's threads and the decoders leave them spread
/// over the arenas, and a first backup of 101,000 messages held 109–127 MB
/// resident without it, 86–94 MB with it.
const BESIDE_A_FETCH: Mode = Mode {
    messages: BATCH_MESSAGES / 4,
    bytes: 4 * 1024 * 1024,
    give_back: true,
};

/// A decoder: takes the next message read, decodes it, hands it back, until
/// the feeding thread closes the channel. A message bigger than
/// [`DECODE_ALONE_BYTES`] (an attachment) is decoded by one decoder at a
/// time: decoding takes a few times its size in memory.
fn decode_loop(work: &Mutex<mpsc::Receiver<Work>>, done: &mpsc::Sender<Decoded>, big: &Mutex<()>) {
    loop {
        let next = work.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(Work { key, id, payload }) = next else {
            return;
        };
        let len = payload.len();
        // A panic in decoding is caught inside `extract`; one here is a bug.
        // Whatever goes wrong, the message is handed back undone: a decoder
        // that died would leave the feeding thread waiting for it.
        let doc = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let bytes = match payload {
                Payload::Bytes(b) => b,
                Payload::Record(f) => f.bytes().ok()?,
            };
            let _alone =
                (len > DECODE_ALONE_BYTES).then(|| big.lock().unwrap_or_else(|p| p.into_inner()));
            Some(extract(&bytes).to_doc(key))
        }))
        .ok()
        .flatten();
        if done.send(Decoded { key, id, len, doc }).is_err() {
            return;
        }
    }
}

/// The feeding thread of [`index_pending_after`]: reads the pending
/// messages in key order (the store is one thread's) and hands them to the
/// decoders, and writes what comes back to the search index in
/// transactions of [`BATCH_MESSAGES`] or [`BATCH_TEXT_BYTES`]. Reading and
/// writing go on while the decoders decode: the full-text index's writer,
/// the one part that cannot be shared, is never left waiting for a batch to
/// be decoded, nor the decoders for it to be written.
struct Feed<'a> {
    store: &'a mut Store,
    search: &'a SearchIndex,
    work: mpsc::Sender<Work>,
    decoded: mpsc::Receiver<Decoded>,
    progress: &'a mut dyn FnMut(u64, u64),
    stop: &'a dyn Fn() -> bool,
    total: u64,
    mode: Mode,
    /// Keys read and pending up to here.
    cursor: i64,
    /// Keys not yet read: the next ones after `cursor`.
    keys: std::collections::VecDeque<(i64, BlobId)>,
    /// A message read that waits for room among those in flight.
    held: Option<Work>,
    in_flight: usize,
    in_flight_bytes: usize,
    /// The last key handed out (keys go out in order), and those handed
    /// out and not yet written.
    last_sent: i64,
    unwritten: std::collections::BTreeSet<i64>,
    docs: Vec<SearchDoc>,
    text_bytes: usize,
    done: u64,
    added: u64,
    exhausted: bool,
}

impl Feed<'_> {
    /// Returns how many were added, up to which key every pending message
    /// is indexed, and whether that is every message that was pending.
    fn run(&mut self) -> Result<(u64, i64, bool), OpError> {
        loop {
            if (self.stop)() {
                self.write()?;
                return Ok((self.added, self.written_upto(), false));
            }
            self.fill()?;
            if self.batch_full() {
                // A write's worth of documents (`fill` stops there).
                self.write()?;
                continue;
            }
            if self.in_flight == 0 {
                // Nothing read is left undecoded, and nothing more to read.
                self.write()?;
                (self.progress)(self.done, self.total.max(self.done));
                return Ok((self.added, self.written_upto(), true));
            }
            let Ok(d) = self.decoded.recv() else {
                // Every decoder is gone (they end only when told to: a
                // bug). What they held stays pending, for the next pass.
                self.write()?;
                return Ok((self.added, self.written_upto(), false));
            };
            self.in_flight -= 1;
            self.in_flight_bytes -= d.len;
            let doc = match d.doc {
                Some(doc) => doc,
                None => self.decoded_here(d.key, &d.id),
            };
            self.keep(doc);
            if self.done.is_multiple_of(64) {
                let total = self.total.max(self.done + self.in_flight as u64);
                (self.progress)(self.done, total);
            }
        }
    }

    /// Reads messages and hands them to the decoders while there is room
    /// (and the documents made here do not fill a write).
    fn fill(&mut self) -> Result<(), OpError> {
        while !self.batch_full() {
            let work = match self.held.take() {
                Some(w) => w,
                None => {
                    if self.in_flight >= self.mode.messages {
                        return Ok(());
                    }
                    let Some((key, id, payload)) = self.read_next()? else {
                        return Ok(());
                    };
                    let Some(payload) = payload else {
                        // Unreadable: recorded as such, nothing to decode.
                        self.note_sent(key);
                        self.keep(SearchDoc::empty(key, -1));
                        continue;
                    };
                    Work { key, id, payload }
                }
            };
            let len = work.payload.len();
            if self.in_flight > 0 && self.in_flight_bytes + len > self.mode.bytes {
                self.held = Some(work);
                return Ok(());
            }
            self.note_sent(work.key);
            self.in_flight += 1;
            self.in_flight_bytes += len;
            if let Err(mpsc::SendError(w)) = self.work.send(work) {
                // No decoder to take it (see `run`): decoded here.
                self.in_flight -= 1;
                self.in_flight_bytes -= len;
                let doc = self.decoded_here(w.key, &w.id);
                self.keep(doc);
            }
        }
        Ok(())
    }

    /// The next pending message in key order, read (`None` when
    /// unreadable), or `None` when there is no more.
    fn read_next(&mut self) -> Result<Option<(i64, BlobId, Option<Payload>)>, OpError> {
        if self.keys.is_empty() && !self.exhausted {
            let more = self.search.pending(self.cursor, BATCH_MESSAGES)?;
            self.exhausted = more.is_empty();
            self.keys.extend(more);
        }
        let Some((key, id)) = self.keys.pop_front() else {
            return Ok(None);
        };
        self.cursor = key;
        let read = read_payload(self.store, &id).or_else(|_| {
            // A dictionary trained since this store was opened?
            self.store.refresh()?;
            read_payload(self.store, &id)
        });
        Ok(Some((key, id, read.ok())))
    }

    /// A message read and decoded on this thread, the whole way.
    fn decoded_here(&self, key: i64, id: &BlobId) -> SearchDoc {
        match read_prefix(self.store, id) {
            Ok(bytes) => extract(&bytes).to_doc(key),
            Err(_) => SearchDoc::empty(key, -1),
        }
    }

    fn note_sent(&mut self, key: i64) {
        self.last_sent = key;
        self.unwritten.insert(key);
    }

    /// A document made, kept for the next write.
    fn keep(&mut self, doc: SearchDoc) {
        self.text_bytes += doc.body.len() + doc.subject.len();
        self.docs.push(doc);
        self.done += 1;
    }

    fn batch_full(&self) -> bool {
        self.text_bytes >= BATCH_TEXT_BYTES || self.docs.len() >= BATCH_MESSAGES
    }

    /// Every pending key up to this one is written: keys go out in order,
    /// so all before the first one not yet written are.
    fn written_upto(&self) -> i64 {
        match self.unwritten.first() {
            Some(&k) => k - 1,
            None => self.last_sent,
        }
    }

    /// Writes the documents made so far in one transaction.
    fn write(&mut self) -> Result<(), OpError> {
        if !self.docs.is_empty() {
            let mut docs = std::mem::take(&mut self.docs);
            self.text_bytes = 0;
            // In key order: a row id lower than the one before makes FTS5
            // write out what it holds as a segment of its own (decoders
            // finish out of order; many small segments, then merges, made
            // indexing 40 % slower).
            docs.sort_unstable_by_key(|d| d.key);
            // The decoders have work while this thread writes.
            self.fill()?;
            self.added += self.search.add(&docs)?;
            for d in &docs {
                self.unwritten.remove(&d.key);
            }
            if self.mode.give_back {
                drop(docs);
                crate::heap::give_back();
            }
        }
        Ok(())
    }
}

/// Decoding threads at most (beyond a few, the single writer of the
/// search index is the limit).
const MAX_DECODE_THREADS: usize = 4;
/// A message bigger than this is decoded by one decoder at a time.
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
            BESIDE_A_FETCH,
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

/// A message for a decoder: its record as read, to be decompressed and
/// checked there, or, bigger than [`MAX_PARSED_BYTES`], its first bytes
/// (read here: see [`read_prefix`]).
fn read_payload(store: &Store, id: &BlobId) -> Result<Payload, crate::store::StoreError> {
    match store.fetch_blob(id, MAX_PARSED_BYTES) {
        Ok(Some(f)) => Ok(Payload::Record(f)),
        // Bigger, or a record that does not read: the whole way (which
        // tells damage and notes it).
        Ok(None) | Err(crate::store::StoreError::Corrupt { .. }) => {
            read_prefix(store, id).map(Payload::Bytes)
        }
        Err(e) => Err(e),
    }
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

    #[test]
    fn every_message_is_indexed_once_under_its_own_key_whatever_order_the_decoders_finish_in() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        // More than one write and than what is let in flight, with a few
        // big ones among them (decoded alone; one past what is parsed).
        let n = 2 * BATCH_MESSAGES + 300;
        let big = |i: usize, mib: usize| {
            let mut m = mail(i);
            m.extend(
                std::iter::repeat_n(b"filler line of a big message\r\n".as_slice(), mib * 36_000)
                    .flatten(),
            );
            m
        };
        for i in 0..n {
            let m = match i {
                7 => big(i, 2),
                1500 => big(i, 5),
                _ => mail(i),
            };
            store.put_blob(&m).unwrap();
        }
        store.commit().unwrap();
        let search = SearchIndex::open(dir.path()).unwrap();
        // Stopped part way: what was written stays, the rest comes next time.
        let calls = std::cell::Cell::new(0);
        let stop = || {
            calls.set(calls.get() + 1);
            calls.get() > 1500
        };
        let first = index_pending_until(&mut store, &search, &mut |_, _| {}, &stop).unwrap();
        assert!(
            first > 0 && (first as usize) < n,
            "stopped part way: {first}"
        );
        let rest = index_pending(&mut store, &mut |_, _| {}).unwrap();
        assert_eq!(first + rest, n as u64);
        assert_eq!(search.pending_count().unwrap(), 0);
        assert_eq!(search.not_indexed_count().unwrap(), 0);

        let db = rusqlite::Connection::open(dir.path().join("search.sqlite")).unwrap();
        db.execute(
            "ATTACH ?1 AS ix",
            [dir.path().join("index.sqlite").to_str().unwrap()],
        )
        .unwrap();
        let mut st = db
            .prepare("SELECT d.subject, b.id FROM docs d JOIN ix.blobs b ON b.key = d.key")
            .unwrap();
        let rows: Vec<(String, Vec<u8>)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), n);
        for (subject, id) in rows {
            let i: usize = subject.strip_prefix("note ").unwrap().parse().unwrap();
            let m = match i {
                7 => big(i, 2),
                1500 => big(i, 5),
                _ => mail(i),
            };
            assert_eq!(
                id,
                BlobId::of(&m).0.to_vec(),
                "message {i} under another's key"
            );
        }
    }

    #[test]
    fn a_damaged_message_is_indexed_as_unreadable_and_the_others_around_it_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let ids: Vec<BlobId> = (0..300)
            .map(|i| store.put_blob(&mail(i)).unwrap().0)
            .collect();
        store.commit().unwrap();
        // One byte of one message's compressed frame flipped on disk.
        let loc = store.blob_location(&ids[150]).unwrap();
        let path = crate::store::pack::pack_path(dir.path(), loc.pack);
        let mut pack = std::fs::read(&path).unwrap();
        pack[(loc.offset + loc.length / 2) as usize] ^= 0x40;
        std::fs::write(&path, pack).unwrap();

        assert_eq!(index_pending(&mut store, &mut |_, _| {}).unwrap(), 300);
        let search = SearchIndex::open(dir.path()).unwrap();
        assert_eq!(search.pending_count().unwrap(), 0);
        assert_eq!(search.unreadable_count().unwrap(), 1);
        let db = rusqlite::Connection::open(dir.path().join("search.sqlite")).unwrap();
        let readable: i64 = db
            .query_row("SELECT count(*) FROM docs WHERE state = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(readable, 299);
    }
}

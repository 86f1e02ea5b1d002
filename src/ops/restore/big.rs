//! Restoring a message too big to hold in memory ([`STREAM_FROM`] bytes or
//! more, the size from which backup fetches in chunks too).
//!
//! Such a message is never read whole. Instead:
//! 1. [`scan`] reads it once from the store (decompressed, hash-checked) and
//!    keeps what the duplicate check and the report need: its first
//!    [`HEAD_MAX`] bytes (the header: Message-ID, Subject), whether it holds
//!    a NUL (literal8), the length of its CRLF form, and BLAKE3 hashes of
//!    its exact, CRLF and CRLF-with-NUL-as-0x80 forms with trailing CR/LF
//!    dropped ([`TrimHasher`], the streaming [`same_bytes`](super::check::same_bytes));
//! 2. a target message without a Message-ID but of the right size and date
//!    is fetched in chunks and hashed the same way, so no body is held either;
//! 3. [`BlobStream`] feeds `Connection::append_from` from a blocking thread
//!    that reads the store, through a small bounded channel. For the CRLF
//!    retry the same thread converts on the fly ([`CrlfConverter`]): the
//!    converted length, which the literal announces up front, is known from
//!    the scan, so nothing is spooled to disk. The price is reading the
//!    message from the store once more (decompression is fast next to the
//!    network).
//!
//! The store reader checks the hash only at the end: a damaged message makes
//! the stream fail where its end would be, `append_from` then leaves the
//! APPEND unfinished (the server stores nothing) and gives the session up,
//! and the folder fails with the store's error.

use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

use crate::model::BlobId;
use crate::store::SharedStore;
use crate::store::StoreError;

use super::super::OpError;

/// Messages this big or bigger are streamed (as backup fetches them in chunks).
pub const STREAM_FROM: u64 = 8 * 1024 * 1024;
/// How much of the start of a big message is kept for its header.
pub const HEAD_MAX: usize = 256 * 1024;
/// Pieces read from the store and sent through the channel.
const PIECE: usize = 256 * 1024;
/// Pieces in flight between the store thread and the connection.
const IN_FLIGHT: usize = 4;
/// Chunk size for fetching a target's candidate message.
pub const FETCH_CHUNK: u32 = 4 * 1024 * 1024;

/// What a restore needs to know of a big message, from one pass over it.
#[derive(Debug)]
pub struct Scan {
    pub len: u64,
    /// The first [`HEAD_MAX`] bytes.
    pub head: Vec<u8>,
    pub contains_nul: bool,
    /// The length of its CRLF form ([`crlf_form`](super::check::crlf_form)).
    pub crlf_len: u64,
    /// Trimmed hashes of the exact, CRLF, and CRLF-with-NUL-as-0x80 forms.
    pub trimmed: [blake3::Hash; 3],
}

impl Scan {
    /// Whether the CRLF form differs from the exact bytes (conversion only
    /// ever adds bytes, so the lengths tell).
    pub fn crlf_differs(&self) -> bool {
        self.crlf_len != self.len
    }
}

/// Reads a stored message once; see the module docs.
pub async fn scan(store: &SharedStore, id: BlobId) -> Result<Scan, OpError> {
    let mut r = store.run(move |s| s.open_blob(&id)).await?;
    // Reading it needs the store no longer: the reader owns its pack file.
    tokio::task::spawn_blocking(move || -> Result<Scan, OpError> {
        let mut head = Vec::new();
        let mut contains_nul = false;
        let mut crlf = CrlfConverter::default();
        let mut crlf_len = 0u64;
        let mut exact = TrimHasher::default();
        let mut crlf_hash = TrimHasher::default();
        let mut nul80_hash = TrimHasher::default();
        let mut buf = vec![0u8; PIECE];
        let mut converted = Vec::with_capacity(PIECE * 2 + 2);
        let mut len = 0u64;
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(damage(&mut r, e)),
            };
            let piece = &buf[..n];
            len += n as u64;
            if head.len() < HEAD_MAX {
                let take = (HEAD_MAX - head.len()).min(n);
                head.extend_from_slice(&piece[..take]);
            }
            contains_nul |= piece.contains(&0);
            exact.update(piece);
            converted.clear();
            crlf.push(piece, &mut converted);
            feed_converted(&converted, &mut crlf_len, &mut crlf_hash, &mut nul80_hash);
        }
        converted.clear();
        crlf.finish(&mut converted);
        feed_converted(&converted, &mut crlf_len, &mut crlf_hash, &mut nul80_hash);
        Ok(Scan {
            len,
            head,
            contains_nul,
            crlf_len,
            trimmed: [
                exact.finalize(),
                crlf_hash.finalize(),
                nul80_hash.finalize(),
            ],
        })
    })
    .await
    .expect("store task panicked")
}

fn feed_converted(c: &[u8], len: &mut u64, crlf: &mut TrimHasher, nul80: &mut TrimHasher) {
    *len += c.len() as u64;
    crlf.update(c);
    if c.contains(&0) {
        let mapped: Vec<u8> = c.iter().map(|&b| if b == 0 { 0x80 } else { b }).collect();
        nul80.update(&mapped);
    } else {
        nul80.update(c);
    }
}

/// The store's error behind a failed read of a stored message.
fn damage(r: &mut crate::store::BlobReader, e: io::Error) -> OpError {
    match r.take_error() {
        Some(s) => s.into(),
        None => OpError::Output {
            path: "(stored message)".into(),
            source: e,
        },
    }
}

/// A stored message (or its CRLF form) as an `AsyncRead`, read from the
/// store by a blocking thread, [`IN_FLIGHT`] pieces ahead at most. It ends
/// only once the store reader has checked the hash; damage is an error in
/// place of the end.
pub struct BlobStream {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    task: tokio::task::JoinHandle<Option<StoreError>>,
}

impl BlobStream {
    pub fn new(store: &SharedStore, id: BlobId, crlf: bool) -> BlobStream {
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        let opened = store.run_here(|s| s.open_blob(&id));
        // Reading it needs the store no longer: the reader owns its pack file.
        let task = tokio::task::spawn_blocking(move || {
            let mut r = match opened {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
                    return Some(e);
                }
            };
            let mut conv = crlf.then(CrlfConverter::default);
            loop {
                let mut buf = vec![0u8; PIECE];
                let n = match r.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return r.take_error();
                    }
                };
                buf.truncate(n);
                let piece = match conv.as_mut() {
                    Some(c) => {
                        let mut out = Vec::with_capacity(n + n / 16 + 2);
                        if n == 0 {
                            c.finish(&mut out);
                        } else {
                            c.push(&buf, &mut out);
                        }
                        out
                    }
                    None => buf,
                };
                if !piece.is_empty() && tx.blocking_send(Ok(piece)).is_err() {
                    return None; // the connection side gave up
                }
                if n == 0 {
                    return None; // dropping `tx` is the end
                }
            }
        });
        BlobStream {
            rx,
            current: Vec::new(),
            at: 0,
            task,
        }
    }

    /// Stops the store thread (if still running) and returns the store
    /// error it met, if any.
    pub async fn finish(self) -> Option<StoreError> {
        drop(self.rx);
        self.task.await.expect("store task panicked")
    }
}

impl AsyncRead for BlobStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.at == this.current.len() {
            match this.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(Some(Ok(piece))) => {
                    this.current = piece;
                    this.at = 0;
                }
            }
        }
        let n = buf.remaining().min(this.current.len() - this.at);
        buf.put_slice(&this.current[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

/// [`crlf_form`](super::check::crlf_form) on a stream: every bare LF and
/// bare CR becomes CRLF, and a final CRLF is added to a non-empty message
/// that lacks one.
#[derive(Debug, Default)]
pub struct CrlfConverter {
    /// The last input byte was a CR (already written as CRLF): an LF right
    /// after it is part of that line ending.
    after_cr: bool,
    /// The output so far ends with CRLF.
    ends_crlf: bool,
    seen: bool,
}

impl CrlfConverter {
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.seen = true;
            match b {
                b'\r' => {
                    out.extend_from_slice(b"\r\n");
                    self.after_cr = true;
                    self.ends_crlf = true;
                }
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.ends_crlf = true;
                }
                b => {
                    out.push(b);
                    self.after_cr = false;
                    self.ends_crlf = false;
                }
            }
        }
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.seen && !self.ends_crlf {
            out.extend_from_slice(b"\r\n");
            self.ends_crlf = true;
        }
    }
}

/// BLAKE3 of a stream with its trailing CR and LF bytes dropped (what
/// [`same_bytes`](super::check::same_bytes) compares), in constant memory:
/// the state after the last byte that is neither is kept aside.
#[derive(Clone, Default)]
pub struct TrimHasher {
    all: blake3::Hasher,
    trimmed: Option<blake3::Hasher>,
}

impl TrimHasher {
    pub fn update(&mut self, data: &[u8]) {
        match data.iter().rposition(|&b| b != b'\r' && b != b'\n') {
            Some(p) => {
                self.all.update(&data[..=p]);
                self.trimmed = Some(self.all.clone());
                self.all.update(&data[p + 1..]);
            }
            None => {
                self.all.update(data);
            }
        }
    }

    pub fn finalize(&self) -> blake3::Hash {
        match &self.trimmed {
            Some(h) => h.finalize(),
            None => blake3::Hasher::new().finalize(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::{crlf_form, same_bytes};
    use super::*;

    const TRICKY: &[&[u8]] = &[
        b"",
        b"\n",
        b"\r",
        b"a\nb\n",
        b"a\rb\r",
        b"a\r\nb",
        b"a\n\r\nb\r\r\n",
        b"a\0b\r\n",
        b"x\r\n\r\n\n\r",
        b"\r\n",
        b"no line end",
    ];

    #[test]
    fn streamed_crlf_is_crlf_form_however_the_bytes_are_cut() {
        for m in TRICKY {
            let want = crlf_form(m).into_owned();
            for piece in 1..=4 {
                let mut c = CrlfConverter::default();
                let mut out = Vec::new();
                for chunk in m.chunks(piece) {
                    c.push(chunk, &mut out);
                }
                c.finish(&mut out);
                assert_eq!(
                    out,
                    want,
                    "{:?} in pieces of {piece}",
                    String::from_utf8_lossy(m)
                );
            }
        }
    }

    fn trimmed_hash(data: &[u8], piece: usize) -> blake3::Hash {
        let mut h = TrimHasher::default();
        for chunk in data.chunks(piece) {
            h.update(chunk);
        }
        h.finalize()
    }

    #[test]
    fn trimmed_hashes_agree_with_same_bytes() {
        let forms: &[&[u8]] = &[
            b"a\r\nb",
            b"a\r\nb\r",
            b"a\r\nb\r\n",
            b"a\r\nb\r\n\r\n",
            b"a\r\nc",
            b"a\nb",
            b"",
            b"\r\n",
        ];
        for a in forms {
            for b in forms {
                for piece in 1..=3 {
                    assert_eq!(
                        trimmed_hash(a, piece) == trimmed_hash(b, 2),
                        same_bytes(a, b),
                        "{:?} vs {:?}",
                        String::from_utf8_lossy(a),
                        String::from_utf8_lossy(b)
                    );
                }
            }
        }
    }
}

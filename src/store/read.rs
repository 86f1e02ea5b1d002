//! Reading a stored message: decompressed as it is read, its length and
//! BLAKE3 hash checked at its end. Damage is reported in place of the end,
//! so a consumer that stops at the first error never takes damaged bytes
//! for whole ones.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

use super::record::{self, Kind, BLOB_PREFIX_LEN, HEADER_LEN, TRAILER_LEN};
use super::{coding, io_err, pack, Result, Store, StoreError};
use crate::index::BlobLocation;
use crate::model::BlobId;

/// Messages up to this size are read in one piece by [`Store::read_blob`].
const WHOLE_READ: u64 = 8 * 1024 * 1024;

/// A dictionary digested for decompression (see `Dicts::prepared`).
type Prepared = std::sync::Arc<zstd::dict::DecoderDictionary<'static>>;

thread_local! {
    /// The decompression context of this thread (making one costs more than
    /// a small message); each read names its digested dictionary.
    static DCTX: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn corrupt_at(id: &BlobId, loc: &BlobLocation, what: String) -> StoreError {
    StoreError::Corrupt {
        id: *id,
        pack: loc.pack,
        offset: loc.offset,
        what,
    }
}

/// A stored message's record as read from its pack ([`Store::fetch_blob`]),
/// not yet decompressed.
pub struct Fetched {
    id: BlobId,
    loc: BlobLocation,
    kind: Kind,
    payload: Vec<u8>,
    dict: Option<Prepared>,
}

impl Fetched {
    pub fn id(&self) -> &BlobId {
        &self.id
    }

    /// The message's size, as the index records it.
    pub fn size(&self) -> u64 {
        self.loc.raw_size
    }

    /// The message's exact bytes, decompressed by this thread's
    /// decompressor, length and hash checked (`Corrupt` when they are not
    /// the message's).
    pub fn bytes(&self) -> Result<Vec<u8>> {
        let (id, loc) = (&self.id, &self.loc);
        let corrupt = |what: String| corrupt_at(id, loc, what);
        let frame = &self.payload[BLOB_PREFIX_LEN as usize..self.payload.len() - 32];
        // The coded form can be a little longer than the message (a
        // streamed one without base64 runs).
        let capacity = match self.kind {
            Kind::CodedBlob => coded_capacity(loc.raw_size),
            _ => loc.raw_size as usize,
        };
        let bytes = DCTX
            .with(|cell| -> std::result::Result<Vec<u8>, &'static str> {
                let mut cell = cell.borrow_mut();
                let dctx = match &mut *cell {
                    Some(d) => d,
                    None => cell
                        .insert(zstd::zstd_safe::DCtx::try_create().ok_or("no memory for zstd")?),
                };
                let mut out = Vec::with_capacity(capacity);
                match &self.dict {
                    Some(p) => dctx.decompress_using_ddict(&mut out, frame, p.as_ddict()),
                    None => dctx.decompress(&mut out, frame),
                }
                .map_err(zstd::zstd_safe::get_error_name)?;
                Ok(out)
            })
            .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
        let bytes = match self.kind {
            Kind::CodedBlob => coding::decode_all(&bytes, loc.raw_size)
                .map_err(|e| corrupt(format!("cannot decode: {e}")))?,
            _ => bytes,
        };
        if bytes.len() as u64 != loc.raw_size {
            return Err(corrupt(format!(
                "{} bytes instead of {}",
                bytes.len(),
                loc.raw_size
            )));
        }
        if BlobId::of(&bytes) != *id {
            return Err(corrupt("hash does not match".into()));
        }
        Ok(bytes)
    }
}

impl Store {
    pub fn blob_location(&self, id: &BlobId) -> Result<BlobLocation> {
        self.index
            .blob_location(id)?
            .ok_or(StoreError::NoSuchBlob { id: *id })
    }

    /// A stored message's exact bytes, hash-checked. One of up to
    /// [`WHOLE_READ`] bytes is decompressed in one piece, by a decompressor
    /// kept for the thread (making one costs more than a small message).
    /// Damage found reading a message whole is told the slow way too
    /// (streamed), before it is called damage.
    pub fn read_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        let read = match self.fetch_blob(id, WHOLE_READ) {
            Ok(Some(f)) => f.bytes(),
            Ok(None) => return self.slow_read(id),
            Err(e) => Err(e),
        };
        match read {
            Err(StoreError::Corrupt { .. }) => self.slow_read(id),
            r => r,
        }
    }

    /// The first half of [`read_blob`](Self::read_blob): a message of up to
    /// `max` bytes (and [`WHOLE_READ`]) read from its pack, to be
    /// decompressed and checked by [`Fetched::bytes`] on any thread
    /// (`None`: a bigger one, to be streamed).
    pub fn fetch_blob(&self, id: &BlobId, max: u64) -> Result<Option<Fetched>> {
        let loc = self.blob_location(id)?;
        if loc.raw_size > max.min(WHOLE_READ) {
            return Ok(None);
        }
        let corrupt = |what: String| corrupt_at(id, &loc, what);
        let (kind, payload) = pack::read_record(&self.root, loc.pack, loc.offset, loc.length)
            .map_err(|e| corrupt(e.to_string()))?;
        if !kind.is_blob() || payload.len() < (BLOB_PREFIX_LEN + 32) as usize {
            return Err(corrupt("record does not match the index".into()));
        }
        let dict = match loc.dict_id {
            0 => None,
            d => Some(self.prepared(d).map_err(|e| e.unwrap_or_else(corrupt))?),
        };
        Ok(Some(Fetched {
            id: *id,
            loc,
            kind,
            payload,
            dict,
        }))
    }

    fn slow_read(&self, id: &BlobId) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.copy_blob_to(id, &mut out)?;
        Ok(out)
    }

    /// Streams a stored message's bytes to `w`, checking its hash at the end
    /// (an error then means `w` got damaged bytes and must be discarded).
    pub fn copy_blob_to(&self, id: &BlobId, w: &mut dyn Write) -> Result<u64> {
        let mut r = self.open_blob(id)?;
        io::copy(&mut r, w).map_err(|e| match r.take_error() {
            Some(damage) => damage,
            // Not the stored bytes: the reading of the pack or the writer failed.
            None => io_err(&self.root)(e),
        })
    }

    /// A stored message as a reader that owns what it needs (the store can
    /// be used, or unlocked, while it is read): decompressed as it is read,
    /// in bounded memory whatever the message size. The hash and length are
    /// checked when the end is reached: instead of the end (`Ok(0)`), a
    /// damaged message gives an `InvalidData` error, so whoever consumed the
    /// bytes must discard them. A message found damaged is noted, so that
    /// the next backup fetches it again where the server still has it.
    pub fn open_blob(&self, id: &BlobId) -> Result<BlobReader> {
        let loc = self.blob_location(id)?;
        let r = self.open_at(id, &loc, None, true);
        if let Err(StoreError::Corrupt { what, .. }) = &r {
            self.note_damaged(id, what);
        }
        r
    }

    /// A reader of the blob record at `loc`; `dict` overrides the store's
    /// dictionary (to try a rebuilt one); with `note`, damage found while
    /// reading is noted in the index.
    fn open_at(
        &self,
        id: &BlobId,
        loc: &BlobLocation,
        dict: Option<&[u8]>,
        note: bool,
    ) -> Result<BlobReader> {
        let corrupt = |what: String| StoreError::Corrupt {
            id: *id,
            pack: loc.pack,
            offset: loc.offset,
            what,
        };
        let path = pack::pack_path(&self.root, loc.pack);
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => corrupt(format!("pack {:06} is missing", loc.pack)),
            _ => io_err(&path)(e),
        })?;
        let mut head = [0u8; (HEADER_LEN + BLOB_PREFIX_LEN) as usize];
        file.read_exact_at(&mut head, loc.offset).map_err(|e| {
            corrupt(match e.kind() {
                io::ErrorKind::UnexpectedEof => format!("pack {:06} is cut short", loc.pack),
                _ => e.to_string(),
            })
        })?;
        let (kind, len) =
            record::parse_header(&head).ok_or_else(|| corrupt("no record header".into()))?;
        if !kind.is_blob() || HEADER_LEN + len + TRAILER_LEN != loc.length {
            return Err(corrupt("record does not match the index".into()));
        }
        let frame_len = len - BLOB_PREFIX_LEN - 32;
        let frame_at = loc.offset + HEADER_LEN + BLOB_PREFIX_LEN;
        let reader = io::BufReader::new(OwnedRangeReader {
            file,
            pos: frame_at,
            end: frame_at + frame_len,
        });
        let mut prepared = None;
        let decoder = match (loc.dict_id, dict) {
            (0, _) => zstd::stream::Decoder::with_buffer(reader),
            (_, Some(bytes)) => zstd::stream::Decoder::with_dictionary(reader, bytes),
            (d, None) => {
                let dict = self.prepared(d).map_err(|e| e.unwrap_or_else(&corrupt))?;
                let decoder = zstd::stream::Decoder::with_prepared_dictionary(reader, &dict);
                // The decoder refers to it: kept with it, dropped after it.
                prepared = Some(dict);
                decoder
            }
        }
        .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
        let decoder = match kind {
            Kind::CodedBlob => Decoding::Coded(coding::Decoder::new(io::BufReader::new(decoder))),
            _ => Decoding::Plain(decoder),
        };
        Ok(BlobReader {
            decoder,
            _dict: prepared,
            id: *id,
            pack: loc.pack,
            offset: loc.offset,
            raw_size: loc.raw_size,
            hasher: blake3::Hasher::new(),
            len: 0,
            checked: false,
            failure: None,
            index_path: note.then(|| self.root.join("index.sqlite")),
        })
    }

    /// Dictionary `d`, digested for decompression. One not loaded (trained
    /// by a writer since this store was opened to read: [`Store::refresh`])
    /// is `Err(Ok(error))`, not damage; one whose every copy is damaged is
    /// `Err(Err(what))`.
    fn prepared(
        &self,
        d: u32,
    ) -> std::result::Result<Prepared, std::result::Result<StoreError, String>> {
        self.dicts.prepared(d).map_err(|what| {
            if self.dicts.lost().contains(&d) {
                Err(what)
            } else {
                Ok(StoreError::NoSuchDict(d))
            }
        })
    }

    /// Decompresses and hashes the blob record at `loc`: `Err` says what is
    /// wrong with it.
    pub(super) fn check_blob_at(&self, id: &BlobId, loc: &BlobLocation) -> Result<()> {
        let mut r = self.open_at(id, loc, None, false)?;
        match io::copy(&mut r, &mut io::sink()) {
            Ok(_) => Ok(()),
            Err(e) => Err(r.take_error().unwrap_or_else(|| io_err(&self.root)(e))),
        }
    }

    /// Whether the blob at `loc` decompresses to its hash with `dict`.
    pub(super) fn blob_decodes_with(&self, id: &BlobId, loc: &BlobLocation, dict: &[u8]) -> bool {
        match self.open_at(id, loc, Some(dict), false) {
            Ok(mut r) => io::copy(&mut r, &mut io::sink()).is_ok(),
            Err(_) => false,
        }
    }
}

pub(super) struct OwnedRangeReader {
    file: File,
    pos: u64,
    end: u64,
}

impl Read for OwnedRangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min((self.end - self.pos) as usize);
        if n == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..n], self.pos)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Room for the coded form of a message of `raw` bytes once decompressed:
/// what has no base64 run costs at most a few bytes per 64 KiB segment.
fn coded_capacity(raw: u64) -> usize {
    (raw + raw / 4096 + 64) as usize
}

type Frame = zstd::stream::Decoder<'static, io::BufReader<OwnedRangeReader>>;

/// How a blob record's frame becomes the message's bytes.
enum Decoding {
    /// `B`: the frame is the message.
    Plain(Frame),
    /// `C`: the frame is the message's line coding.
    Coded(coding::Decoder<io::BufReader<Frame>>),
}

impl Read for Decoding {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoding::Plain(d) => d.read(buf),
            Decoding::Coded(d) => d.read(buf),
        }
    }
}

/// A stored message being read; see [`Store::open_blob`].
pub struct BlobReader {
    decoder: Decoding,
    /// The digested dictionary `decoder` refers to (declared after it, so
    /// dropped after it).
    _dict: Option<Prepared>,
    id: BlobId,
    pack: u32,
    offset: u64,
    raw_size: u64,
    hasher: blake3::Hasher,
    len: u64,
    checked: bool,
    failure: Option<StoreError>,
    /// Where to note damage found while reading (none for trial reads).
    index_path: Option<std::path::PathBuf>,
}

impl BlobReader {
    /// The message's size, as the index records it.
    pub fn size(&self) -> u64 {
        self.raw_size
    }

    /// The damage behind an `InvalidData` error this reader returned, as a
    /// store error (so that callers can tell it from their own output's).
    pub fn take_error(&mut self) -> Option<StoreError> {
        self.failure.take()
    }

    fn damaged(&mut self, what: String) -> io::Error {
        let e = StoreError::Corrupt {
            id: self.id,
            pack: self.pack,
            offset: self.offset,
            what,
        };
        let io = io::Error::new(io::ErrorKind::InvalidData, e.to_string());
        if let (Some(path), StoreError::Corrupt { what, .. }) = (&self.index_path, &e) {
            // So that the next backup fetches it again (best effort).
            let _ = crate::index::Index::note_damaged_at(
                path,
                &[(self.id, what.clone())],
                super::now(),
            );
        }
        self.failure = Some(e);
        io
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self
            .decoder
            .read(buf)
            .map_err(|e| self.damaged(format!("cannot decompress: {e}")))?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
            self.len += n as u64;
            if self.len > self.raw_size {
                return Err(self.damaged(format!("more than {} bytes", self.raw_size)));
            }
            return Ok(n);
        }
        if !self.checked {
            if self.len != self.raw_size {
                return Err(
                    self.damaged(format!("{} bytes instead of {}", self.len, self.raw_size))
                );
            }
            if self.hasher.finalize().as_bytes() != &self.id.0 {
                return Err(self.damaged("hash does not match".into()));
            }
            self.checked = true;
        }
        Ok(0)
    }
}

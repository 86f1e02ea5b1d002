//! The store: content-addressed zstd blobs and ref records in append-only
//! packs, with the SQLite index as a cache of what the packs say.
//!
//! Uses: `index`, `model`. Knows nothing of IMAP.
//!
//! Write order (a crash at any point is harmless, see docs/design.md):
//! 1. records are appended to the current pack (blob before the refs to it);
//! 2. [`Store::commit`] fsyncs the pack;
//! 3. then, in one SQLite transaction, the index takes the records in and
//!    notes how far it has read the pack (`packs.indexed_len`).
//!
//! Opening a store for writing compares each pack with `indexed_len`: whole,
//! valid records after it (a crash between 2 and 3) are checked and indexed;
//! a torn record (a crash during 1) is cut off. Nothing the index points to
//! is ever rewritten.

pub mod pack;
pub mod record;

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::index::{BlobLocation, Index, IndexError};
use crate::model::records::{Located, MailboxRecord, Record, RefRecord};
use crate::model::BlobId;
use pack::{PackWriter, Tail, PACK_TARGET_SIZE};
use record::{Kind, BLOB_PREFIX_LEN, HEADER_LEN, TRAILER_LEN};

/// zstd level for message bytes.
pub const ZSTD_LEVEL: i32 = 3;
/// A dictionary is trained once the store holds this many blobs.
pub const DICT_TRAIN_AFTER: u64 = 1000;
/// Messages larger than this are compressed without a dictionary.
pub const DICT_MAX_MESSAGE: u64 = 4 * 1024 * 1024;
const DICT_SIZE: usize = 112 * 1024;
const DICT_SAMPLE_BYTES: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("another mailkeep process is writing to the store `{0}`")]
    Locked(PathBuf),
    #[error("no store at `{0}`")]
    Missing(PathBuf),
    #[error("`{0}` is not a directory, so it cannot hold a store")]
    NotADirectory(PathBuf),
    #[error("cannot use the store `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the store index is not usable")]
    Index(#[from] IndexError),
    #[error("message {id} is not in the store")]
    NoSuchBlob { id: BlobId },
    #[error("message {id} in pack {pack:06} at offset {offset} is damaged: {what}")]
    Corrupt {
        id: BlobId,
        pack: u32,
        offset: u64,
        what: String,
    },
    #[error("dictionary {0} is missing from the store")]
    NoSuchDict(u32),
    #[error("the store was opened read-only")]
    ReadOnly,
}

pub type Result<T> = std::result::Result<T, StoreError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

struct Dict {
    bytes: Vec<u8>,
}

/// What `open` found and did while recovering from an earlier crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub records_indexed: u64,
    pub bytes_truncated: u64,
}

pub struct Store {
    root: PathBuf,
    index: Index,
    /// Held while a writer has the store open (flock on `lock`).
    _lock: Option<File>,
    writer: Option<PackWriter>,
    pending: Vec<Located>,
    pending_blobs: HashSet<BlobId>,
    pending_bytes: u64,
    dicts: HashMap<u32, Arc<Dict>>,
    current_dict: Option<u32>,
    compressor: Option<(u32, zstd::bulk::Compressor<'static>)>,
    recovery: Recovery,
}

impl Store {
    /// Opens (creating if needed) a store for writing: takes the lock, then
    /// recovers from any interrupted run.
    pub fn open(root: &Path) -> Result<Store> {
        if root.exists() && !root.is_dir() {
            return Err(StoreError::NotADirectory(root.to_path_buf()));
        }
        pack::create_private_dir(root).map_err(io_err(root))?;
        restrict(root);
        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        // SAFETY: flock on a valid, owned file descriptor.
        let rc = unsafe {
            libc::flock(
                std::os::unix::io::AsRawFd::as_raw_fd(&lock),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(StoreError::Locked(root.to_path_buf()));
            }
            return Err(io_err(&lock_path)(err));
        }
        let index_path = root.join("index.sqlite");
        let index = Index::open(&index_path)?;
        for f in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
            restrict(&root.join(f));
        }
        let mut store = Store::with(root, index, Some(lock));
        store.recover()?;
        store.load_dicts()?;
        Ok(store)
    }

    /// Opens an existing store to read it; takes no lock and changes nothing.
    pub fn open_read_only(root: &Path) -> Result<Store> {
        if root.exists() && !root.is_dir() {
            return Err(StoreError::NotADirectory(root.to_path_buf()));
        }
        let index_path = root.join("index.sqlite");
        if !index_path.exists() {
            return Err(StoreError::Missing(root.to_path_buf()));
        }
        let index = Index::open_read_only(&index_path)?;
        let mut store = Store::with(root, index, None);
        store.load_dicts()?;
        Ok(store)
    }

    /// A store over an opened index; `lock` is held by writers only.
    fn with(root: &Path, index: Index, lock: Option<File>) -> Store {
        Store {
            root: root.to_path_buf(),
            index,
            _lock: lock,
            writer: None,
            pending: Vec::new(),
            pending_blobs: HashSet::new(),
            pending_bytes: 0,
            dicts: HashMap::new(),
            current_dict: None,
            compressor: None,
            recovery: Recovery::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    fn writable(&self) -> Result<()> {
        if self._lock.is_none() {
            return Err(StoreError::ReadOnly);
        }
        Ok(())
    }

    /// Indexes whole records the index has not taken in yet, and cuts torn ones.
    fn recover(&mut self) -> Result<()> {
        let packs = pack::list_packs(&self.root).map_err(io_err(&self.root))?;
        for no in packs {
            let from = self.index.pack_indexed_len(no)?.unwrap_or(0);
            let mut found = Vec::new();
            let root = self.root.clone();
            let tail = pack::scan(&root, no, from, &mut |raw| {
                found.push(raw);
                Ok(())
            })
            .map_err(io_err(&pack::pack_path(&root, no)))?;
            self.load_dicts()?;
            let mut records = Vec::new();
            let mut valid_end = from.max(record::PACK_MAGIC.len() as u64);
            for raw in found {
                // A blob is only taken in if its bytes hash to its id.
                match decode_record(&raw, no) {
                    Some(rec) => {
                        if let Record::Blob { id, dict_id, .. } = &rec.record {
                            if self.check_blob_payload(id, *dict_id, &raw.payload).is_err() {
                                break;
                            }
                        }
                        valid_end = raw.offset + raw.length;
                        if let Record::Dict { .. } = rec.record {
                            // Make the dictionary usable for the blobs after it.
                            self.index.apply(&[rec], no, valid_end)?;
                            self.load_dicts()?;
                        } else {
                            records.push(rec);
                        }
                    }
                    None => break,
                }
            }
            let file_len = std::fs::metadata(pack::pack_path(&self.root, no))
                .map(|m| m.len())
                .unwrap_or(0);
            if !records.is_empty() || file_len != valid_end || matches!(tail, Tail::Torn { .. }) {
                self.recovery.records_indexed += records.len() as u64;
                self.recovery.bytes_truncated += file_len.saturating_sub(valid_end);
                if file_len > valid_end {
                    let mut w = PackWriter::open(&self.root, no, Some(valid_end))
                        .map_err(io_err(&self.root))?;
                    w.sync().map_err(io_err(&self.root))?;
                }
                self.index.apply(&records, no, valid_end)?;
            }
        }
        Ok(())
    }

    fn load_dicts(&mut self) -> Result<()> {
        for (id, loc) in self.index.dictionaries()? {
            if self.dicts.contains_key(&id) {
                continue;
            }
            let (kind, payload) = pack::read_record(&self.root, loc.pack, loc.offset, loc.length)
                .map_err(io_err(&pack::pack_path(&self.root, loc.pack)))?;
            if kind != Kind::Dict || payload.len() < 4 {
                return Err(StoreError::NoSuchDict(id));
            }
            self.dicts.insert(
                id,
                Arc::new(Dict {
                    bytes: payload[4..].to_vec(),
                }),
            );
            self.current_dict = Some(self.current_dict.map_or(id, |c| c.max(id)));
        }
        Ok(())
    }

    fn writer(&mut self) -> Result<&mut PackWriter> {
        self.writable()?;
        let rotate = match &self.writer {
            Some(w) => w.len() >= PACK_TARGET_SIZE && self.pending.is_empty(),
            None => true,
        };
        if rotate {
            let packs = pack::list_packs(&self.root).map_err(io_err(&self.root))?;
            let mut no = packs.last().copied().unwrap_or(1);
            let mut valid = self.index.pack_indexed_len(no)?;
            let len = std::fs::metadata(pack::pack_path(&self.root, no))
                .map(|m| m.len())
                .unwrap_or(0);
            if len >= PACK_TARGET_SIZE {
                no += 1;
                valid = None;
            }
            let w = PackWriter::open(&self.root, no, valid).map_err(io_err(&self.root))?;
            self.writer = Some(w);
        }
        Ok(self.writer.as_mut().expect("writer just opened"))
    }

    /// True when the bytes with this id are stored (or in this batch).
    pub fn has_blob(&self, id: &BlobId) -> Result<bool> {
        Ok(self.pending_blobs.contains(id) || self.index.has_blob(id)?)
    }

    /// Stores a message's bytes once; returns its id and whether it was new.
    pub fn put_blob(&mut self, bytes: &[u8]) -> Result<(BlobId, bool)> {
        let id = BlobId::of(bytes);
        if self.has_blob(&id)? {
            return Ok((id, false));
        }
        let dict_id = self.dict_for(bytes.len() as u64);
        let frame = match dict_id {
            Some(d) => self.compressor(d).and_then(|c| c.compress(bytes)),
            None => zstd::bulk::compress(bytes, ZSTD_LEVEL),
        }
        .map_err(io_err(&self.root))?;
        let dict_id = dict_id.unwrap_or(0);
        let prefix = blob_prefix(dict_id, bytes.len() as u64);
        let root = self.root.clone();
        let w = self.writer()?;
        let (offset, length) = w
            .append(Kind::Blob, &[&prefix, &frame, &id.0])
            .map_err(io_err(&root))?;
        let pack = w.no;
        self.pending.push(Located {
            pack,
            offset,
            length,
            record: Record::Blob {
                id,
                raw_size: bytes.len() as u64,
                dict_id,
            },
        });
        self.pending_blobs.insert(id);
        self.pending_bytes += length;
        Ok((id, true))
    }

    /// Stores a message that is too big to hold in memory, from a file,
    /// streaming: hashed, compressed and appended in one pass. If the bytes
    /// were already stored, the record just written is cut off again.
    pub fn put_blob_file(&mut self, path: &Path) -> Result<(BlobId, bool)> {
        let raw_len = std::fs::metadata(path).map_err(io_err(path))?.len();
        let mut src = File::open(path).map_err(io_err(path))?;
        let root = self.root.clone();
        let w = self.writer()?;
        let pack = w.no;
        let start = w.len();
        // Header placeholder; patched once the length is known.
        let prefix = blob_prefix(0, raw_len);
        let file = pack_file_for_append(&root, pack).map_err(io_err(&root))?;
        let mut out = CountingWriter {
            file: &file,
            pos: start + HEADER_LEN,
            crc: crc32fast::Hasher::new(),
        };
        let result = (|| -> io::Result<BlobId> {
            out.write_all(&prefix)?;
            let mut hasher = blake3::Hasher::new();
            {
                let mut enc = zstd::stream::Encoder::new(&mut out, ZSTD_LEVEL)?;
                let mut buf = vec![0u8; 1024 * 1024];
                loop {
                    let n = src.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    enc.write_all(&buf[..n])?;
                }
                enc.finish()?;
            }
            let id = BlobId(*hasher.finalize().as_bytes());
            out.write_all(&id.0)?;
            Ok(id)
        })();
        let payload_len = out.pos - start - HEADER_LEN;
        let crc = out.crc.clone().finalize();
        let id = match result {
            Ok(id) => id,
            Err(e) => {
                let _ = self.writer()?.truncate(start);
                return Err(io_err(&root)(e));
            }
        };
        if self.has_blob(&id)? {
            self.writer()?.truncate(start).map_err(io_err(&root))?;
            return Ok((id, false));
        }
        let trailer_at = start + HEADER_LEN + payload_len;
        file.write_all_at(&crc.to_le_bytes(), trailer_at)
            .and_then(|_| file.write_all_at(&record::header(Kind::Blob, payload_len), start))
            .map_err(io_err(&root))?;
        let length = HEADER_LEN + payload_len + TRAILER_LEN;
        // Reopen the writer so it knows the new end.
        self.writer = Some(PackWriter::open(&root, pack, None).map_err(io_err(&root))?);
        debug_assert_eq!(self.writer.as_ref().map(|w| w.len()), Some(start + length));
        self.pending.push(Located {
            pack,
            offset: start,
            length,
            record: Record::Blob {
                id,
                raw_size: raw_len,
                dict_id: 0,
            },
        });
        self.pending_blobs.insert(id);
        self.pending_bytes += length;
        Ok((id, true))
    }

    pub fn add_ref(&mut self, r: RefRecord) -> Result<()> {
        let json = serde_json::to_vec(&r).expect("ref record serializes");
        self.append_meta(Kind::Ref, &json, Record::Ref(r))
    }

    pub fn put_mailbox(&mut self, m: MailboxRecord) -> Result<()> {
        let json = serde_json::to_vec(&m).expect("mailbox record serializes");
        self.append_meta(Kind::Mailbox, &json, Record::Mailbox(m))
    }

    fn append_meta(&mut self, kind: Kind, payload: &[u8], record: Record) -> Result<()> {
        let root = self.root.clone();
        let w = self.writer()?;
        let (offset, length) = w.append(kind, &[payload]).map_err(io_err(&root))?;
        let pack = w.no;
        self.pending.push(Located {
            pack,
            offset,
            length,
            record,
        });
        self.pending_bytes += length;
        Ok(())
    }

    /// Records and bytes written since the last commit.
    pub fn pending(&self) -> (usize, u64) {
        (self.pending.len(), self.pending_bytes)
    }

    /// Makes everything appended so far durable and indexed: fsync the pack,
    /// then one index transaction.
    pub fn commit(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let root = self.root.clone();
        let w = self
            .writer
            .as_mut()
            .expect("records pending imply a writer");
        w.sync().map_err(io_err(&root))?;
        let (pack, len) = (w.no, w.len());
        let records = std::mem::take(&mut self.pending);
        self.index.apply(&records, pack, len)?;
        self.pending_blobs.clear();
        self.pending_bytes = 0;
        self.maybe_train_dictionary()?;
        Ok(())
    }

    /// A compressor primed with dictionary `d`, built once (loading a
    /// dictionary costs far more than compressing a typical message).
    fn compressor(&mut self, d: u32) -> io::Result<&mut zstd::bulk::Compressor<'static>> {
        if self.compressor.as_ref().is_none_or(|(id, _)| *id != d) {
            let dict = self
                .dicts
                .get(&d)
                .ok_or_else(|| io::Error::other(format!("dictionary {d} is not loaded")))?;
            let c = zstd::bulk::Compressor::with_dictionary(ZSTD_LEVEL, &dict.bytes)?;
            self.compressor = Some((d, c));
        }
        Ok(&mut self.compressor.as_mut().expect("just set").1)
    }

    fn dict_for(&self, raw_len: u64) -> Option<u32> {
        if raw_len > DICT_MAX_MESSAGE {
            return None;
        }
        self.current_dict
    }

    /// Trains a zstd dictionary from the first messages once there are
    /// enough of them; later messages compress with it.
    fn maybe_train_dictionary(&mut self) -> Result<()> {
        if self.current_dict.is_some() || self.index.totals()?.blobs < DICT_TRAIN_AFTER {
            return Ok(());
        }
        let ids = self.index.sample_blobs(2000, DICT_MAX_MESSAGE)?;
        let mut samples = Vec::with_capacity(ids.len());
        for id in ids {
            let mut bytes = self.read_blob(&id)?;
            bytes.truncate(DICT_SAMPLE_BYTES);
            samples.push(bytes);
        }
        let Ok(dict) = zstd::dict::from_samples(&samples, DICT_SIZE) else {
            // Too little variety to train on: carry on without a dictionary.
            return Ok(());
        };
        let id: u32 = 1;
        let root = self.root.clone();
        let w = self.writer()?;
        let (offset, length) = w
            .append(Kind::Dict, &[&id.to_le_bytes(), &dict])
            .map_err(io_err(&root))?;
        w.sync().map_err(io_err(&root))?;
        let (pack, len) = (w.no, w.len());
        self.index.apply(
            &[Located {
                pack,
                offset,
                length,
                record: Record::Dict { id },
            }],
            pack,
            len,
        )?;
        self.dicts.insert(id, Arc::new(Dict { bytes: dict }));
        self.current_dict = Some(id);
        Ok(())
    }

    pub fn blob_location(&self, id: &BlobId) -> Result<BlobLocation> {
        self.index
            .blob_location(id)?
            .ok_or(StoreError::NoSuchBlob { id: *id })
    }

    /// A stored message's exact bytes, hash-checked.
    pub fn read_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
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
    /// bytes must discard them.
    pub fn open_blob(&self, id: &BlobId) -> Result<BlobReader> {
        let loc = self.blob_location(id)?;
        let corrupt = |what: String| StoreError::Corrupt {
            id: *id,
            pack: loc.pack,
            offset: loc.offset,
            what,
        };
        let path = pack::pack_path(&self.root, loc.pack);
        let file = File::open(&path).map_err(io_err(&path))?;
        let mut head = [0u8; (HEADER_LEN + BLOB_PREFIX_LEN) as usize];
        file.read_exact_at(&mut head, loc.offset)
            .map_err(|e| corrupt(e.to_string()))?;
        let (kind, len) =
            record::parse_header(&head).ok_or_else(|| corrupt("no record header".into()))?;
        if kind != Kind::Blob || HEADER_LEN + len + TRAILER_LEN != loc.length {
            return Err(corrupt("record does not match the index".into()));
        }
        let frame_len = len - BLOB_PREFIX_LEN - 32;
        let frame_at = loc.offset + HEADER_LEN + BLOB_PREFIX_LEN;
        let reader = io::BufReader::new(OwnedRangeReader {
            file,
            pos: frame_at,
            end: frame_at + frame_len,
        });
        let decoder = match loc.dict_id {
            0 => zstd::stream::Decoder::with_buffer(reader),
            d => {
                let dict = self.dicts.get(&d).ok_or(StoreError::NoSuchDict(d))?;
                zstd::stream::Decoder::with_dictionary(reader, &dict.bytes)
            }
        }
        .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
        Ok(BlobReader {
            decoder,
            id: *id,
            pack: loc.pack,
            offset: loc.offset,
            raw_size: loc.raw_size,
            hasher: blake3::Hasher::new(),
            len: 0,
            checked: false,
            failure: None,
        })
    }

    /// Checks a blob record's payload: decompresses it and compares the hash.
    fn check_blob_payload(&self, id: &BlobId, dict_id: u32, payload: &[u8]) -> Result<()> {
        let frame = &payload[BLOB_PREFIX_LEN as usize..payload.len() - 32];
        let raw_len = u64::from_le_bytes(payload[4..12].try_into().expect("8 bytes"));
        let mut hashing = HashingWriter {
            inner: &mut io::sink(),
            hasher: blake3::Hasher::new(),
            len: 0,
        };
        let res = match dict_id {
            0 => zstd::stream::Decoder::new(frame).and_then(|mut d| io::copy(&mut d, &mut hashing)),
            d => {
                let dict = self.dicts.get(&d).ok_or(StoreError::NoSuchDict(d))?;
                zstd::stream::Decoder::with_dictionary(io::BufReader::new(frame), &dict.bytes)
                    .and_then(|mut dec| io::copy(&mut dec, &mut hashing))
            }
        };
        let ok =
            res.is_ok() && hashing.len == raw_len && hashing.hasher.finalize().as_bytes() == &id.0;
        if ok {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                id: *id,
                pack: 0,
                offset: 0,
                what: "hash does not match".into(),
            })
        }
    }

    /// Checks the index against the packs. Shallow: every indexed record is
    /// where the index says, whole, with a good checksum, and every pack is
    /// fully indexed. Deep: also decompresses and re-hashes every message.
    pub fn verify(&self, deep: bool, progress: &mut dyn FnMut(u64, u64)) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let blobs = self.index.all_blobs()?;
        let total = blobs.len() as u64;
        for (i, (id, loc)) in blobs.iter().enumerate() {
            report.blobs_checked += 1;
            let res = if deep {
                self.copy_blob_to(id, &mut io::sink()).map(|_| ())
            } else {
                match pack::read_record(&self.root, loc.pack, loc.offset, loc.length) {
                    Ok((Kind::Blob, payload)) if payload.ends_with(&id.0) => Ok(()),
                    Ok(_) => Err(StoreError::Corrupt {
                        id: *id,
                        pack: loc.pack,
                        offset: loc.offset,
                        what: "record does not match the index".into(),
                    }),
                    Err(e) => Err(StoreError::Corrupt {
                        id: *id,
                        pack: loc.pack,
                        offset: loc.offset,
                        what: e.to_string(),
                    }),
                }
            };
            if let Err(e) = res {
                report.problems.push(e.to_string());
            }
            progress(i as u64 + 1, total);
        }
        let dangling = self.index.messages_without_blob()?;
        if dangling > 0 {
            report.problems.push(format!(
                "{dangling} message rows point to bytes that are not stored"
            ));
        }
        for (no, indexed) in self.index.packs()? {
            let path = pack::pack_path(&self.root, no);
            match std::fs::metadata(&path) {
                Ok(m) if m.len() != indexed => report.problems.push(format!(
                    "pack {no:06} is {} bytes but the index has read {indexed}",
                    m.len()
                )),
                Ok(_) => {}
                Err(e) => report
                    .problems
                    .push(format!("pack {no:06} cannot be read: {e}")),
            }
            if deep {
                let tail = pack::scan(&self.root, no, 0, &mut |_| Ok(())).map_err(io_err(&path))?;
                if let Tail::Torn { valid_len } = tail {
                    report.problems.push(format!(
                        "pack {no:06} has a damaged record at offset {valid_len}"
                    ));
                }
            }
            report.packs_checked += 1;
        }
        Ok(report)
    }

    /// Rebuilds the index from the packs alone.
    pub fn rebuild_index(&mut self) -> Result<u64> {
        self.writable()?;
        self.commit()?;
        self.index.clear()?;
        self.dicts.clear();
        self.current_dict = None;
        self.compressor = None;
        self.writer = None;
        self.recovery = Recovery::default();
        self.recover()?;
        self.load_dicts()?;
        Ok(self.recovery.records_indexed)
    }
}

#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub blobs_checked: u64,
    pub packs_checked: u64,
    pub problems: Vec<String>,
}

fn blob_prefix(dict_id: u32, raw_len: u64) -> [u8; BLOB_PREFIX_LEN as usize] {
    let mut p = [0u8; BLOB_PREFIX_LEN as usize];
    p[..4].copy_from_slice(&dict_id.to_le_bytes());
    p[4..].copy_from_slice(&raw_len.to_le_bytes());
    p
}

fn decode_record(raw: &pack::RawRecord, pack: u32) -> Option<Located> {
    let record = match raw.kind {
        Kind::Blob => {
            if (raw.payload.len() as u64) < BLOB_PREFIX_LEN + 32 {
                return None;
            }
            let dict_id = u32::from_le_bytes(raw.payload[..4].try_into().ok()?);
            let raw_size = u64::from_le_bytes(raw.payload[4..12].try_into().ok()?);
            let mut id = [0u8; 32];
            id.copy_from_slice(&raw.payload[raw.payload.len() - 32..]);
            Record::Blob {
                id: BlobId(id),
                raw_size,
                dict_id,
            }
        }
        Kind::Dict => Record::Dict {
            id: u32::from_le_bytes(raw.payload.get(..4)?.try_into().ok()?),
        },
        Kind::Ref => Record::Ref(serde_json::from_slice(&raw.payload).ok()?),
        Kind::Mailbox => Record::Mailbox(serde_json::from_slice(&raw.payload).ok()?),
    };
    Some(Located {
        pack,
        offset: raw.offset,
        length: raw.length,
        record,
    })
}

fn pack_file_for_append(root: &Path, no: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .open(pack::pack_path(root, no))
}

/// Owner-only permissions on a store file or directory (best effort: the
/// file may not exist yet).
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = if meta.is_dir() { 0o700 } else { 0o600 };
        if meta.permissions().mode() & 0o777 != mode {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
        }
    }
}

struct CountingWriter<'a> {
    file: &'a File,
    pos: u64,
    crc: crc32fast::Hasher,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all_at(buf, self.pos)?;
        self.crc.update(buf);
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct OwnedRangeReader {
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

/// A stored message being read; see [`Store::open_blob`].
pub struct BlobReader {
    decoder: zstd::stream::Decoder<'static, io::BufReader<OwnedRangeReader>>,
    id: BlobId,
    pack: u32,
    offset: u64,
    raw_size: u64,
    hasher: blake3::Hasher,
    len: u64,
    checked: bool,
    failure: Option<StoreError>,
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

struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hasher: blake3::Hasher,
    len: u64,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests;

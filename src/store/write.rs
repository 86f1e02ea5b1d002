//! Appending records to the current pack and committing them: records are
//! appended (a blob before the refs to it, a dictionary before the blobs
//! compressed with it), the pack is fsynced, then one index transaction
//! takes them in (see docs/design.md, "Write order").

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::pack::{self, PackWriter, PACK_TARGET_SIZE};
use super::record::{self, Kind, BLOB_PREFIX_LEN, HEADER_LEN, TRAILER_LEN};
use super::{coding, io_err, Result, Store, ZSTD_LEVEL};
use crate::model::records::{Located, MailboxRecord, Record, RefRecord};
use crate::model::BlobId;

impl Store {
    /// The pack records go to. The last pack is continued only when it ends
    /// exactly where the index has read it and is not full; otherwise (it
    /// is full, cut short, or missing) a new pack is started, which begins
    /// with a copy of every dictionary.
    pub(super) fn writer(&mut self) -> Result<&mut PackWriter> {
        self.writable()?;
        let rotate = match &self.writer {
            Some(w) => w.len() >= PACK_TARGET_SIZE && self.pending.is_empty(),
            None => true,
        };
        if rotate {
            let root = self.root.clone();
            let on_disk = pack::list_packs(&root).map_err(io_err(&root))?;
            let indexed = self.index.packs()?;
            let last = on_disk
                .last()
                .copied()
                .max(indexed.last().map(|(no, _)| *no));
            let mut cont = None;
            if let Some(no) = last {
                let len = std::fs::metadata(pack::pack_path(&root, no)).map(|m| m.len());
                let idx = self.index.pack_indexed_len(no)?;
                if let Ok(len) = len {
                    if idx == Some(len) && len < PACK_TARGET_SIZE {
                        cont = Some(no);
                    }
                }
            }
            let (no, fresh) = match cont {
                Some(no) => (no, false),
                None => (last.map_or(1, |n| n + 1), true),
            };
            let w = PackWriter::open(&root, no, None).map_err(io_err(&root))?;
            self.writer = Some(w);
            if fresh {
                for id in self.dicts.ids() {
                    self.append_dict_copy(id)?;
                }
            }
        }
        Ok(self.writer.as_mut().expect("writer just opened"))
    }

    /// True when the bytes with this id are stored, readable as far as
    /// anyone found (or in this batch).
    pub fn has_blob(&self, id: &BlobId) -> Result<bool> {
        Ok(self.pending_blobs.contains(id)
            || (self.index.has_blob(id)? && !self.index.is_damaged(id)?))
    }

    /// Stores a message's bytes once; returns its id and whether it was new.
    /// Bytes that were found damaged are stored again, and the new copy
    /// takes the place of the damaged one.
    pub fn put_blob(&mut self, bytes: &[u8]) -> Result<(BlobId, bool)> {
        let id = BlobId::of(bytes);
        if self.has_blob(&id)? {
            return Ok((id, false));
        }
        let dict_id = self.dict_for(bytes.len() as u64);
        // Base64 runs (attachments) are compressed as the bytes they encode.
        let coded = coding::encode_all(bytes);
        let (kind, body) = match &coded {
            Some(c) => (Kind::CodedBlob, c.as_slice()),
            None => (Kind::Blob, bytes),
        };
        let frame = self
            .compressor(dict_id)
            .and_then(|c| c.compress(body))
            .map_err(io_err(&self.root))?;
        drop(coded);
        let dict_id = dict_id.unwrap_or(0);
        let prefix = blob_prefix(dict_id, bytes.len() as u64);
        let root = self.root.clone();
        let w = self.writer()?;
        let (offset, length) = w
            .append(kind, &[&prefix, &frame, &id.0])
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
    /// streaming: hashed, coded, compressed and appended in one pass (always
    /// a coded blob: whether it has base64 runs is known only at its end).
    /// If the bytes were already stored, the record just written is cut off
    /// again.
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
                let zstd = zstd::stream::Encoder::new(&mut out, ZSTD_LEVEL)?;
                let mut enc = coding::Encoder::new(zstd);
                let mut buf = vec![0u8; 1024 * 1024];
                loop {
                    let n = src.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    enc.write_all(&buf[..n])?;
                }
                enc.finish()?.0.finish()?;
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
            .and_then(|_| file.write_all_at(&record::header(Kind::CodedBlob, payload_len), start))
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
        let payload = record::encode_event(&r);
        self.append_meta(Kind::Event, &payload, Record::Ref(r))
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
        if self.dicts.train_at.is_some() {
            self.dicts.stored += records
                .iter()
                .filter(|r| matches!(r.record, Record::Blob { .. }))
                .count() as u64;
        }
        self.pending_blobs.clear();
        self.pending_bytes = 0;
        self.maybe_train_dictionary()?;
        Ok(())
    }
}

pub(super) fn blob_prefix(dict_id: u32, raw_len: u64) -> [u8; BLOB_PREFIX_LEN as usize] {
    let mut p = [0u8; BLOB_PREFIX_LEN as usize];
    p[..4].copy_from_slice(&dict_id.to_le_bytes());
    p[4..].copy_from_slice(&raw_len.to_le_bytes());
    p
}

fn pack_file_for_append(root: &Path, no: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .open(pack::pack_path(root, no))
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

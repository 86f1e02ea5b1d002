//! Pack files: append-only logs of records (see `record.rs` for the layout).
//!
//! `packs/NN/PPPPPP.pack`, where `PPPPPP` is the pack number and `NN` is the
//! number divided by 100, so no directory holds more than 100 packs.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::record::{self, Kind, HEADER_LEN, PACK_MAGIC, TRAILER_LEN};

/// A pack is closed once it passes this size.
pub const PACK_TARGET_SIZE: u64 = 256 * 1024 * 1024;

pub fn pack_path(root: &Path, no: u32) -> PathBuf {
    root.join("packs")
        .join(format!("{:02}", no / 100))
        .join(format!("{no:06}.pack"))
}

/// Every pack number present under `root/packs`, sorted.
pub fn list_packs(root: &Path) -> io::Result<Vec<u32>> {
    let mut out = Vec::new();
    let dir = root.join("packs");
    if !dir.exists() {
        return Ok(out);
    }
    for sub in std::fs::read_dir(&dir)? {
        let sub = sub?;
        if !sub.file_type()?.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(sub.path())? {
            let name = f?.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name.strip_suffix(".pack").and_then(|n| n.parse().ok()) {
                out.push(n);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The pack records are appended to.
pub struct PackWriter {
    pub no: u32,
    file: File,
    len: u64,
}

impl PackWriter {
    /// Opens pack `no` for appending, creating it (with its header) if needed.
    /// `valid_len` is where the valid records end: anything after it is cut.
    pub fn open(root: &Path, no: u32, valid_len: Option<u64>) -> io::Result<PackWriter> {
        let path = pack_path(root, no);
        if let Some(parent) = path.parent() {
            create_private_dir(parent)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        let mut len = file.metadata()?.len();
        if len < PACK_MAGIC.len() as u64 {
            file.set_len(0)?;
            file.write_all(PACK_MAGIC)?;
            file.sync_all()?;
            if let Some(parent) = path.parent() {
                sync_dir(parent)?;
            }
            len = PACK_MAGIC.len() as u64;
        } else if let Some(valid) = valid_len {
            if valid < len {
                file.set_len(valid)?;
                file.sync_all()?;
                len = valid;
            }
        }
        file.seek(SeekFrom::Start(len))?;
        Ok(PackWriter { no, file, len })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len <= PACK_MAGIC.len() as u64
    }

    /// Appends one whole record; returns (offset, record length).
    pub fn append(&mut self, kind: Kind, payload: &[&[u8]]) -> io::Result<(u64, u64)> {
        let payload_len: u64 = payload.iter().map(|p| p.len() as u64).sum();
        let mut crc = crc32fast::Hasher::new();
        for p in payload {
            crc.update(p);
        }
        let offset = self.len;
        let mut w = io::BufWriter::with_capacity(256 * 1024, &mut self.file);
        let result = (|| {
            w.write_all(&record::header(kind, payload_len))?;
            for p in payload {
                w.write_all(p)?;
            }
            w.write_all(&crc.finalize().to_le_bytes())?;
            w.flush()
        })();
        drop(w);
        if let Err(e) = result {
            // Leave no half record behind.
            let _ = self.file.set_len(offset);
            let _ = self.file.seek(SeekFrom::Start(offset));
            return Err(e);
        }
        let length = HEADER_LEN + payload_len + TRAILER_LEN;
        self.len += length;
        Ok((offset, length))
    }

    /// Cuts the pack back to `offset` (drops records appended after it).
    pub fn truncate(&mut self, offset: u64) -> io::Result<()> {
        self.file.set_len(offset)?;
        self.file.seek(SeekFrom::Start(offset))?;
        self.len = offset;
        Ok(())
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// A record as found by [`scan`].
pub struct RawRecord {
    pub offset: u64,
    pub length: u64,
    pub kind: Kind,
    pub payload: Vec<u8>,
}

/// What [`scan`] found at the end of a pack.
#[derive(Debug, PartialEq, Eq)]
pub enum Tail {
    /// The file ends exactly after the last valid record.
    Clean,
    /// Bytes after `valid_len` are not a whole valid record (a torn write).
    Torn { valid_len: u64 },
}

/// Reads records of pack `no` from `from` to the end, calling `each` for each
/// valid one. Stops at the first invalid or incomplete record.
pub fn scan(
    root: &Path,
    no: u32,
    from: u64,
    each: &mut dyn FnMut(RawRecord) -> io::Result<()>,
) -> io::Result<Tail> {
    let path = pack_path(root, no);
    let mut file = File::open(&path)?;
    let file_len = file.metadata()?.len();
    let mut magic = [0u8; 16];
    if file_len < 16 || file.read_exact_at(&mut magic, 0).is_err() || &magic != PACK_MAGIC {
        return Ok(Tail::Torn { valid_len: 0 });
    }
    let mut pos = from.max(PACK_MAGIC.len() as u64);
    file.seek(SeekFrom::Start(pos))?;
    let mut r = io::BufReader::with_capacity(1024 * 1024, file);
    loop {
        if pos == file_len {
            return Ok(Tail::Clean);
        }
        let mut h = [0u8; HEADER_LEN as usize];
        if file_len - pos < HEADER_LEN + TRAILER_LEN || r.read_exact(&mut h).is_err() {
            return Ok(Tail::Torn { valid_len: pos });
        }
        let Some((kind, len)) = record::parse_header(&h) else {
            return Ok(Tail::Torn { valid_len: pos });
        };
        if len > file_len - pos - HEADER_LEN - TRAILER_LEN {
            return Ok(Tail::Torn { valid_len: pos });
        }
        let mut payload = vec![0u8; len as usize];
        let mut trailer = [0u8; 4];
        if r.read_exact(&mut payload).is_err() || r.read_exact(&mut trailer).is_err() {
            return Ok(Tail::Torn { valid_len: pos });
        }
        if crc32fast::hash(&payload) != u32::from_le_bytes(trailer) {
            return Ok(Tail::Torn { valid_len: pos });
        }
        let length = HEADER_LEN + len + TRAILER_LEN;
        each(RawRecord {
            offset: pos,
            length,
            kind,
            payload,
        })?;
        pos += length;
    }
}

/// Reads one whole record at a known place, checking header and CRC.
pub fn read_record(root: &Path, no: u32, offset: u64, length: u64) -> io::Result<(Kind, Vec<u8>)> {
    let file = File::open(pack_path(root, no))?;
    let mut buf = vec![0u8; length as usize];
    file.read_exact_at(&mut buf, offset)?;
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("pack {no:06} offset {offset}: {what}"),
        )
    };
    let (kind, len) = record::parse_header(&buf).ok_or_else(|| bad("no record header"))?;
    if HEADER_LEN + len + TRAILER_LEN != length {
        return Err(bad("record length differs from the index"));
    }
    let trailer_at = (HEADER_LEN + len) as usize;
    let crc = u32::from_le_bytes(buf[trailer_at..trailer_at + 4].try_into().expect("4 bytes"));
    let payload = buf[HEADER_LEN as usize..trailer_at].to_vec();
    if crc32fast::hash(&payload) != crc {
        return Err(bad("checksum mismatch"));
    }
    Ok((kind, payload))
}

pub fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

pub fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_scan_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::open(dir.path(), 1, None).unwrap();
        let (o1, l1) = w.append(Kind::Ref, &[b"{\"a\":1}"]).unwrap();
        let (o2, _) = w.append(Kind::Mailbox, &[b"xy", b"z"]).unwrap();
        assert_eq!(o2, o1 + l1);
        w.sync().unwrap();
        let end = w.len();
        drop(w);

        // A torn write: half a header at the end.
        let path = pack_path(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"MKR1R\0").unwrap();
        drop(f);

        let mut seen = Vec::new();
        let tail = scan(dir.path(), 1, 0, &mut |r| {
            seen.push((r.kind, r.payload));
            Ok(())
        })
        .unwrap();
        assert_eq!(tail, Tail::Torn { valid_len: end });
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].1, b"xyz");

        let (kind, payload) = read_record(dir.path(), 1, o1, l1).unwrap();
        assert_eq!((kind, payload.as_slice()), (Kind::Ref, &b"{\"a\":1}"[..]));

        // Reopening at the valid length cuts the torn bytes.
        let w = PackWriter::open(dir.path(), 1, Some(end)).unwrap();
        assert_eq!(w.len(), end);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), end);
        assert_eq!(list_packs(dir.path()).unwrap(), vec![1]);
    }

    #[test]
    fn corrupted_payload_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::open(dir.path(), 3, None).unwrap();
        let (o, l) = w.append(Kind::Ref, &[b"hello world"]).unwrap();
        drop(w);
        let path = pack_path(dir.path(), 3);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[(o + HEADER_LEN + 2) as usize] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        assert!(read_record(dir.path(), 3, o, l).is_err());
        let tail = scan(dir.path(), 3, 0, &mut |_| Ok(())).unwrap();
        assert_eq!(tail, Tail::Torn { valid_len: o });
    }
}

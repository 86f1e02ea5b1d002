//! Pack files: append-only logs of records (see `record.rs` for the layout).
//!
//! `packs/NN/PPPPPP.pack`, where `PPPPPP` is the pack number and `NN` is the
//! number divided by 100, so no directory holds more than 100 packs.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::record::{self, Kind, HEADER_LEN, PACK_MAGIC, TRAILER_LEN};

/// The pack header's length: [`PACK_MAGIC`], with the format version.
pub const PACK_HEADER_LEN: u64 = PACK_MAGIC.len() as u64;

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

/// A whole, checksummed record as found by [`scan`]. A blob's compressed
/// bytes are not held: only its fixed fields (`blob`), so scanning a pack
/// takes bounded memory whatever the message sizes.
pub struct RawRecord {
    pub offset: u64,
    pub length: u64,
    pub kind: Kind,
    /// The payload of a dictionary, ref or mailbox record; empty for a blob.
    pub payload: Vec<u8>,
    /// A blob record's fields.
    pub blob: Option<BlobHead>,
}

/// The fixed fields of a blob record's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobHead {
    pub dict_id: u32,
    pub raw_len: u64,
    pub id: [u8; 32],
}

/// What [`scan`] finds, in pack order.
pub enum Scanned {
    Record(RawRecord),
    /// Bytes that are not part of any whole record: damage, or a write that
    /// was cut short. Reading goes on at the next whole record after them.
    Damaged {
        offset: u64,
        len: u64,
    },
}

/// How a [`scan`] ended.
#[derive(Debug, PartialEq, Eq)]
pub struct ScanEnd {
    /// The 16-byte pack header is as written. Records are read whether or
    /// not it is: each record describes itself.
    pub header_ok: bool,
    /// Where the scan stopped (the end of the file, or `until`).
    pub end: u64,
    /// Where the last whole record ends, when damaged bytes follow it up to
    /// `end` with no whole record after them (a torn tail, if this is the
    /// pack being written and it lies past what the index has read).
    pub torn_from: Option<u64>,
}

/// Reads the records of pack `no` from `from` (at least the end of the pack
/// header) to `until` (default: the end of the file), calling `each` for
/// every whole record and every run of damaged bytes between them. A bad
/// magic, an unknown kind, a length past the end or a CRC mismatch make the
/// reader look for the next place where a whole record starts; nothing
/// after damage is given up.
pub fn scan(
    root: &Path,
    no: u32,
    from: u64,
    until: Option<u64>,
    each: &mut dyn FnMut(Scanned) -> io::Result<()>,
) -> io::Result<ScanEnd> {
    let path = pack_path(root, no);
    let file = File::open(&path)?;
    let file_len = file.metadata()?.len();
    let end = until.map_or(file_len, |u| u.min(file_len));
    let mut r = PackReader::new(&file);
    let header_ok = r.get(0, PACK_MAGIC.len())? == PACK_MAGIC;
    let mut pos = from.max(PACK_MAGIC.len() as u64);
    let mut torn_from = None;
    while pos < end {
        if let Some(rec) = record_at(&mut r, pos, end)? {
            let length = rec.length;
            each(Scanned::Record(rec))?;
            pos += length;
            continue;
        }
        // Damage: find the next place a whole record starts.
        let next = next_record(&file, pos + 1, end)?;
        let stop = next.unwrap_or(end);
        each(Scanned::Damaged {
            offset: pos,
            len: stop - pos,
        })?;
        if next.is_none() {
            torn_from = Some(pos);
        }
        pos = stop;
    }
    Ok(ScanEnd {
        header_ok,
        end,
        torn_from,
    })
}

/// Positional reads of a pack through one read-ahead buffer, so that a scan
/// of many small records costs few system calls.
struct PackReader<'f> {
    file: &'f File,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    at: u64,
    filled: usize,
}

const READ_AHEAD: usize = 1 << 20;

impl<'f> PackReader<'f> {
    fn new(file: &'f File) -> PackReader<'f> {
        PackReader {
            file,
            buf: vec![0u8; READ_AHEAD],
            at: 0,
            filled: 0,
        }
    }

    /// Up to `n` (at most [`READ_AHEAD`]) bytes at `offset`; fewer only at
    /// the end of the file.
    fn get(&mut self, offset: u64, n: usize) -> io::Result<&[u8]> {
        let n = n.min(READ_AHEAD);
        let inside = offset >= self.at && offset + n as u64 <= self.at + self.filled as u64;
        if !inside {
            self.at = offset;
            self.filled = read_fully_at(self.file, &mut self.buf, offset)?;
        }
        let start = (offset - self.at) as usize;
        let stop = (start + n).min(self.filled);
        Ok(&self.buf[start.min(stop)..stop])
    }
}

/// The whole, checksummed record at `pos`, if one starts there and ends by
/// `end`. Reads the payload in pieces: memory stays bounded.
fn record_at(r: &mut PackReader<'_>, pos: u64, end: u64) -> io::Result<Option<RawRecord>> {
    if end < pos + HEADER_LEN + TRAILER_LEN {
        return Ok(None);
    }
    let h = r.get(pos, HEADER_LEN as usize)?;
    let Some((kind, len)) = record::parse_header(h) else {
        return Ok(None);
    };
    if len > end - pos - HEADER_LEN - TRAILER_LEN {
        return Ok(None);
    }
    if kind.is_blob() && len < record::BLOB_PREFIX_LEN + 32 {
        return Ok(None);
    }
    let keep_all = !kind.is_blob();
    let mut payload = Vec::new();
    let mut prefix = [0u8; record::BLOB_PREFIX_LEN as usize];
    let mut tail = [0u8; 32];
    let mut crc = crc32fast::Hasher::new();
    let mut done = 0u64;
    let start = pos + HEADER_LEN;
    while done < len {
        let want = (len - done).min(READ_AHEAD as u64) as usize;
        let chunk = r.get(start + done, want)?;
        if chunk.len() < want {
            return Ok(None);
        }
        crc.update(chunk);
        if keep_all {
            payload.extend_from_slice(chunk);
        } else {
            // The fixed fields: the first 12 bytes and the last 32.
            copy_overlap(&mut prefix, 0, chunk, done);
            copy_overlap(&mut tail, len - 32, chunk, done);
        }
        done += want as u64;
    }
    let trailer = r.get(start + len, TRAILER_LEN as usize)?;
    if trailer.len() < TRAILER_LEN as usize
        || crc.finalize() != u32::from_le_bytes(trailer.try_into().expect("4 bytes"))
    {
        return Ok(None);
    }
    let blob = kind.is_blob().then(|| BlobHead {
        dict_id: u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes")),
        raw_len: u64::from_le_bytes(prefix[4..12].try_into().expect("8 bytes")),
        id: tail,
    });
    Ok(Some(RawRecord {
        offset: pos,
        length: HEADER_LEN + len + TRAILER_LEN,
        kind,
        payload,
        blob,
    }))
}

/// The first offset at or after `from` where a whole record starts.
fn next_record(file: &File, from: u64, end: u64) -> io::Result<Option<u64>> {
    let mut hay_buf = vec![0u8; READ_AHEAD];
    let mut check = PackReader::new(file);
    let mut at = from;
    while at + (HEADER_LEN + TRAILER_LEN) <= end {
        let want = ((end - at) as usize).min(hay_buf.len());
        let n = read_fully_at(file, &mut hay_buf[..want], at)?;
        let hay = &hay_buf[..n];
        let mut i = 0;
        while let Some(p) = find(&hay[i..], record::MAGIC) {
            let cand = at + (i + p) as u64;
            if record_at(&mut check, cand, end)?.is_some() {
                return Ok(Some(cand));
            }
            i += p + 1;
        }
        if n < hay_buf.len() {
            break;
        }
        // Overlap by the magic's length so that one split across two reads is seen.
        at += (n - record::MAGIC.len() + 1) as u64;
    }
    Ok(None)
}

/// Copies into `dest` (which holds bytes `dest_at..` of a payload) the part
/// of `chunk` (bytes `chunk_at..` of it) that falls inside it.
fn copy_overlap(dest: &mut [u8], dest_at: u64, chunk: &[u8], chunk_at: u64) {
    let lo = dest_at.max(chunk_at);
    let hi = (dest_at + dest.len() as u64).min(chunk_at + chunk.len() as u64);
    if lo < hi {
        let (d, c) = ((lo - dest_at) as usize, (lo - chunk_at) as usize);
        let n = (hi - lo) as usize;
        dest[d..d + n].copy_from_slice(&chunk[c..c + n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads as much of `buf` as the file has at `offset`; returns how much.
fn read_fully_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// The name of the file that keeps a copy of damaged bytes of pack `no`,
/// beside it: `PPPPPP.pack.damaged-OFFSET`, or `.torn-OFFSET` for a torn
/// tail that was cut off. Not a pack (it does not end in `.pack`).
pub fn quarantine_path(root: &Path, no: u32, offset: u64, torn: bool) -> PathBuf {
    let pack = pack_path(root, no);
    let name = format!(
        "{}.{}-{offset}",
        pack.file_name()
            .expect("a pack has a name")
            .to_string_lossy(),
        if torn { "torn" } else { "damaged" }
    );
    pack.with_file_name(name)
}

/// Copies `len` bytes of pack `no` at `offset` into its quarantine file
/// (made durable before this returns). A copy already there of the same
/// length is kept. Returns the file's path.
pub fn quarantine(root: &Path, no: u32, offset: u64, len: u64, torn: bool) -> io::Result<PathBuf> {
    let dest = quarantine_path(root, no, offset, torn);
    if std::fs::metadata(&dest).is_ok_and(|m| m.len() == len) {
        return Ok(dest);
    }
    let src = File::open(pack_path(root, no))?;
    let tmp = dest.with_extension("partial");
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let mut left = len;
    let mut at = offset;
    let mut buf = vec![0u8; (len.min(1 << 20) as usize).max(1)];
    while left > 0 {
        let want = (left as usize).min(buf.len());
        let n = read_fully_at(&src, &mut buf[..want], at)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        left -= n as u64;
        at += n as u64;
    }
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, &dest)?;
    if let Some(parent) = dest.parent() {
        sync_dir(parent)?;
    }
    Ok(dest)
}

/// Every quarantine file beside pack `no`: (offset, length, torn).
pub fn quarantined(root: &Path, no: u32) -> io::Result<Vec<(u64, u64, bool)>> {
    let pack = pack_path(root, no);
    let Some(dir) = pack.parent() else {
        return Ok(Vec::new());
    };
    let prefix = format!(
        "{}.",
        pack.file_name()
            .expect("a pack has a name")
            .to_string_lossy()
    );
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let (torn, off) = if let Some(o) = rest.strip_prefix("damaged-") {
            (false, o)
        } else if let Some(o) = rest.strip_prefix("torn-") {
            (true, o)
        } else {
            continue;
        };
        if let Ok(offset) = off.parse() {
            out.push((offset, e.metadata()?.len(), torn));
        }
    }
    out.sort_unstable();
    Ok(out)
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

    type Found = (Vec<(Kind, Vec<u8>)>, Vec<(u64, u64)>, ScanEnd);

    fn records(root: &Path, no: u32) -> Found {
        let mut recs = Vec::new();
        let mut damaged = Vec::new();
        let end = scan(root, no, 0, None, &mut |s| {
            match s {
                Scanned::Record(r) => recs.push((r.kind, r.payload)),
                Scanned::Damaged { offset, len } => damaged.push((offset, len)),
            }
            Ok(())
        })
        .unwrap();
        (recs, damaged, end)
    }

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

        let (seen, damaged, tail) = records(dir.path(), 1);
        assert_eq!(tail.torn_from, Some(end));
        assert!(tail.header_ok);
        assert_eq!(damaged, vec![(end, 6)]);
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
    fn damage_in_the_middle_is_skipped_to_the_next_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::open(dir.path(), 3, None).unwrap();
        let mut places = Vec::new();
        for i in 0..5u8 {
            places.push(w.append(Kind::Ref, &[&[b'a' + i; 40]]).unwrap());
        }
        drop(w);
        let path = pack_path(dir.path(), 3);
        let mut bytes = std::fs::read(&path).unwrap();
        // A flipped byte in the payload of the second record, one in the
        // length of the fourth, and one in the pack header.
        bytes[(places[1].0 + HEADER_LEN + 2) as usize] ^= 0xff;
        bytes[(places[3].0 + 9) as usize] ^= 0x01;
        bytes[15] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        assert!(read_record(dir.path(), 3, places[1].0, places[1].1).is_err());

        let (seen, damaged, end) = records(dir.path(), 3);
        assert!(!end.header_ok);
        assert_eq!(end.torn_from, None);
        let payloads: Vec<u8> = seen.iter().map(|(_, p)| p[0]).collect();
        assert_eq!(payloads, vec![b'a', b'c', b'e']);
        assert_eq!(damaged, vec![places[1], places[3]]);
    }

    #[test]
    fn a_blob_record_gives_its_fields_not_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::open(dir.path(), 1, None).unwrap();
        let id = [7u8; 32];
        let frame = vec![9u8; 3 << 20];
        let mut prefix = [0u8; 12];
        prefix[..4].copy_from_slice(&5u32.to_le_bytes());
        prefix[4..].copy_from_slice(&1234u64.to_le_bytes());
        w.append(Kind::Blob, &[&prefix, &frame, &id]).unwrap();
        drop(w);
        let mut heads = Vec::new();
        scan(dir.path(), 1, 0, None, &mut |s| {
            if let Scanned::Record(r) = s {
                assert!(r.payload.is_empty());
                heads.push(r.blob.unwrap());
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(
            heads,
            vec![BlobHead {
                dict_id: 5,
                raw_len: 1234,
                id
            }]
        );
    }

    #[test]
    fn quarantine_copies_the_bytes_beside_the_pack() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::open(dir.path(), 2, None).unwrap();
        let (o, l) = w.append(Kind::Ref, &[b"hello world"]).unwrap();
        drop(w);
        let q = quarantine(dir.path(), 2, o, l, false).unwrap();
        let pack = std::fs::read(pack_path(dir.path(), 2)).unwrap();
        assert_eq!(
            std::fs::read(&q).unwrap(),
            &pack[o as usize..(o + l) as usize]
        );
        assert_eq!(quarantined(dir.path(), 2).unwrap(), vec![(o, l, false)]);
        // Not taken for a pack.
        assert_eq!(list_packs(dir.path()).unwrap(), vec![2]);
    }
}

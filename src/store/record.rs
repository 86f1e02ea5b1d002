//! The records of a pack, and their byte layout (docs/design.md, "Records").
//!
//! ```text
//! record  := magic "MKR1" (4) | kind (1) | reserved 0 (3) | payload length u64 LE (8)
//!            | payload | crc32 of payload u32 LE (4)
//! kind 'B' blob     payload := dict id u32 LE | raw length u64 LE | zstd frame | blob id (32)
//! kind 'C' coded    payload := as 'B'; the frame holds the line coding of the
//!                   message's bytes (see [`super::coding`])
//! kind 'D' dict     payload := dict id u32 LE | zstd dictionary bytes
//! kind 'E' event    payload := binary RefRecord (see [`encode_event`]); format 2
//! kind 'R' ref      payload := JSON RefRecord (format 1; still read)
//! kind 'M' mailbox  payload := JSON MailboxRecord
//! ```
//! The blob id sits at the end of its payload so that a blob can be written in
//! one pass while it is hashed and compressed.

pub use crate::model::records::*;

pub const MAGIC: &[u8; 4] = b"MKR1";
pub const HEADER_LEN: u64 = 16;
pub const TRAILER_LEN: u64 = 4;
/// Fixed part of a blob payload before the zstd frame.
pub const BLOB_PREFIX_LEN: u64 = 12;
/// Pack file header: identifies the file and its format version.
pub const PACK_MAGIC: &[u8; 16] = b"MAILKEEP-PACK\0\0\x01";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Blob,
    /// A blob whose frame holds the message in the line coding (base64 runs
    /// kept decoded).
    CodedBlob,
    Dict,
    /// A ref as JSON (written by format 1).
    Ref,
    /// A ref in the compact binary form (format 2).
    Event,
    Mailbox,
}

impl Kind {
    pub fn byte(self) -> u8 {
        match self {
            Kind::Blob => b'B',
            Kind::CodedBlob => b'C',
            Kind::Dict => b'D',
            Kind::Ref => b'R',
            Kind::Event => b'E',
            Kind::Mailbox => b'M',
        }
    }
    /// Whether the record holds a message's bytes (`B` or `C`).
    pub fn is_blob(self) -> bool {
        matches!(self, Kind::Blob | Kind::CodedBlob)
    }
    pub fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            b'B' => Kind::Blob,
            b'C' => Kind::CodedBlob,
            b'D' => Kind::Dict,
            b'R' => Kind::Ref,
            b'E' => Kind::Event,
            b'M' => Kind::Mailbox,
            _ => return None,
        })
    }
}

pub fn header(kind: Kind, payload_len: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..4].copy_from_slice(MAGIC);
    h[4] = kind.byte();
    h[8..16].copy_from_slice(&payload_len.to_le_bytes());
    h
}

/// Parses a record header; `None` when it is not one.
pub fn parse_header(h: &[u8]) -> Option<(Kind, u64)> {
    if h.len() < HEADER_LEN as usize || &h[..4] != MAGIC || h[5..8] != [0, 0, 0] {
        return None;
    }
    let kind = Kind::from_byte(h[4])?;
    let len = u64::from_le_bytes(h[8..16].try_into().ok()?);
    Some((kind, len))
}

/// The binary form of a ref (an `E` record's payload), about a third of its
/// JSON:
///
/// ```text
/// event    := kind u8 | account str | mailbox str | uidvalidity uv | uid uv
///             | at sv | body
/// kind 1 seen:     blob id (32) | internaldate sv | date_offset sv | size uv
///                  | flags str | modseq opt
/// kind 2 flags:    flags str | modseq opt
/// kind 3 gone, kind 4 archived: no body
/// str := uv length | UTF-8 bytes      opt := uv (0: none; n: the value n - 1)
/// uv  := unsigned LEB128 varint       sv  := zigzag-encoded LEB128 varint
/// ```
pub fn encode_event(r: &RefRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    let kind = match &r.event {
        RefEvent::Seen { .. } => 1,
        RefEvent::Flags { .. } => 2,
        RefEvent::Gone => 3,
        RefEvent::Archived => 4,
    };
    out.push(kind);
    put_str(&mut out, &r.account);
    put_str(&mut out, &r.mailbox);
    put_uv(&mut out, r.uidvalidity as u64);
    put_uv(&mut out, r.uid as u64);
    put_sv(&mut out, r.at);
    match &r.event {
        RefEvent::Seen {
            blob,
            internaldate,
            date_offset,
            size,
            flags,
            modseq,
        } => {
            out.extend_from_slice(&blob.0);
            put_sv(&mut out, *internaldate);
            put_sv(&mut out, *date_offset as i64);
            put_uv(&mut out, *size);
            put_str(&mut out, flags);
            put_opt(&mut out, *modseq);
        }
        RefEvent::Flags { flags, modseq } => {
            put_str(&mut out, flags);
            put_opt(&mut out, *modseq);
        }
        RefEvent::Gone | RefEvent::Archived => {}
    }
    out
}

/// Reads an `E` payload; `None` if it is not one (nothing may follow it).
pub fn decode_event(p: &[u8]) -> Option<RefRecord> {
    let mut r = Reader { p, at: 0 };
    let kind = r.byte()?;
    let account = r.str()?;
    let mailbox = r.str()?;
    let uidvalidity = u32::try_from(r.uv()?).ok()?;
    let uid = u32::try_from(r.uv()?).ok()?;
    let at = r.sv()?;
    let event = match kind {
        1 => {
            let blob = crate::model::BlobId(r.take(32)?.try_into().ok()?);
            RefEvent::Seen {
                blob,
                internaldate: r.sv()?,
                date_offset: i32::try_from(r.sv()?).ok()?,
                size: r.uv()?,
                flags: r.str()?,
                modseq: r.opt()?,
            }
        }
        2 => RefEvent::Flags {
            flags: r.str()?,
            modseq: r.opt()?,
        },
        3 => RefEvent::Gone,
        4 => RefEvent::Archived,
        _ => return None,
    };
    (r.at == p.len()).then_some(RefRecord {
        account,
        mailbox,
        uidvalidity,
        uid,
        at,
        event,
    })
}

pub(super) fn put_uv(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_sv(out: &mut Vec<u8>, v: i64) {
    put_uv(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uv(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
    put_uv(out, v.map_or(0, |v| v + 1));
}

struct Reader<'a> {
    p: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.p.get(self.at)?;
        self.at += 1;
        Some(b)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.p.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn uv(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn sv(&mut self) -> Option<i64> {
        let u = self.uv()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    fn str(&mut self) -> Option<String> {
        let n = usize::try_from(self.uv()?).ok()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn opt(&mut self) -> Option<Option<u64>> {
        Some(self.uv()?.checked_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BlobId;

    #[test]
    fn header_round_trip() {
        let h = header(Kind::Ref, 1234);
        assert_eq!(parse_header(&h), Some((Kind::Ref, 1234)));
        let mut bad = h;
        bad[0] = b'X';
        assert_eq!(parse_header(&bad), None);
    }

    #[test]
    fn ref_record_json_round_trip() {
        let r = RefRecord {
            account: "work".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 7,
            uid: 42,
            at: 1,
            event: RefEvent::Seen {
                blob: BlobId::of(b"x"),
                internaldate: 100,
                date_offset: 540,
                size: 1,
                flags: "\\Seen".into(),
                modseq: Some(9),
            },
        };
        let j = serde_json::to_vec(&r).unwrap();
        assert_eq!(serde_json::from_slice::<RefRecord>(&j).unwrap(), r);
        let g = RefRecord {
            event: RefEvent::Gone,
            ..r
        };
        let j = serde_json::to_vec(&g).unwrap();
        assert_eq!(serde_json::from_slice::<RefRecord>(&j).unwrap(), g);
    }

    #[test]
    fn event_round_trip_and_size() {
        let seen = RefRecord {
            account: "work".into(),
            mailbox: "&kAFP4W4IMH8-".into(),
            uidvalidity: 1_700_000_000,
            uid: 4_000_000_000,
            at: 1_732_000_000,
            event: RefEvent::Seen {
                blob: BlobId::of(b"x"),
                internaldate: -5,
                date_offset: -480,
                size: 123_456,
                flags: "\\Seen $Label1".into(),
                modseq: Some(0),
            },
        };
        let events = [
            seen.clone(),
            RefRecord {
                event: RefEvent::Flags {
                    flags: String::new(),
                    modseq: None,
                },
                ..seen.clone()
            },
            RefRecord {
                event: RefEvent::Gone,
                ..seen.clone()
            },
            RefRecord {
                event: RefEvent::Archived,
                ..seen.clone()
            },
        ];
        for e in &events {
            let b = encode_event(e);
            assert_eq!(decode_event(&b).as_ref(), Some(e));
            // Cut short, or with a byte too many: not an event.
            assert_eq!(decode_event(&b[..b.len() - 1]), None);
            let mut longer = b.clone();
            longer.push(0);
            assert_eq!(decode_event(&longer), None);
        }
        let json = serde_json::to_vec(&seen).unwrap().len();
        let bin = encode_event(&seen).len();
        assert!(bin * 2 < json, "{bin} bytes against {json} as JSON");
        assert_eq!(decode_event(&[9]), None);
    }
}

//! The records of a pack, and their byte layout (docs/design.md, "Records").
//!
//! ```text
//! record  := magic "MKR1" (4) | kind (1) | reserved 0 (3) | payload length u64 LE (8)
//!            | payload | crc32 of payload u32 LE (4)
//! kind 'B' blob     payload := dict id u32 LE | raw length u64 LE | zstd frame | blob id (32)
//! kind 'D' dict     payload := dict id u32 LE | zstd dictionary bytes
//! kind 'R' ref      payload := JSON RefRecord
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
    Dict,
    Ref,
    Mailbox,
}

impl Kind {
    pub fn byte(self) -> u8 {
        match self {
            Kind::Blob => b'B',
            Kind::Dict => b'D',
            Kind::Ref => b'R',
            Kind::Mailbox => b'M',
        }
    }
    pub fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            b'B' => Kind::Blob,
            b'D' => Kind::Dict,
            b'R' => Kind::Ref,
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
}

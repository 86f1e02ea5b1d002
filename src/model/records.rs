//! What the log of a store says: where each message was seen and what
//! happened to it. Written to packs by `store`, taken into the index by
//! `index`. Plain data, no I/O.

use serde::{Deserialize, Serialize};

use super::BlobId;

/// Where a message was seen, and what happened to it there. Written for every
/// message seen (also when its bytes were already stored), again when its
/// flags change, when it leaves the server and when it is archived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefRecord {
    pub account: String,
    /// Mailbox name as on the wire.
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: u32,
    /// Unix seconds when this was recorded.
    pub at: i64,
    #[serde(flatten)]
    pub event: RefEvent,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RefEvent {
    Seen {
        #[serde(with = "hex_id")]
        blob: BlobId,
        internaldate: i64,
        date_offset: i32,
        size: u64,
        flags: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        modseq: Option<u64>,
    },
    Flags {
        flags: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        modseq: Option<u64>,
    },
    Gone,
    Archived,
}

/// A folder generation and what the last complete sync of it saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxRecord {
    pub account: String,
    /// `imap` or `import`.
    pub account_kind: String,
    pub mailbox: String,
    pub name: String,
    #[serde(default)]
    pub delimiter: Option<String>,
    #[serde(default)]
    pub special_use: Option<String>,
    pub uidvalidity: u32,
    #[serde(default)]
    pub uidnext: Option<u32>,
    #[serde(default)]
    pub highestmodseq: Option<u64>,
    #[serde(default)]
    pub server_count: Option<u32>,
    /// The folder is no longer listed by the server.
    #[serde(default)]
    pub gone: bool,
    pub at: i64,
}

/// A record as read from or written to a pack, with its place.
#[derive(Clone, Debug)]
pub struct Located {
    pub pack: u32,
    pub offset: u64,
    pub length: u64,
    pub record: Record,
}

#[derive(Clone, Debug)]
pub enum Record {
    Blob {
        id: BlobId,
        raw_size: u64,
        dict_id: u32,
    },
    Dict {
        id: u32,
    },
    Ref(RefRecord),
    Mailbox(MailboxRecord),
}

mod hex_id {
    use super::BlobId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &BlobId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&id.to_hex())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BlobId, D::Error> {
        let s = String::deserialize(d)?;
        BlobId::from_hex(&s).ok_or_else(|| serde::de::Error::custom("bad blob id"))
    }
}

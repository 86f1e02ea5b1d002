//! Writes imported messages into the store through its normal write path:
//! `put_blob` (or `put_blob_file` for big files), a `Seen` ref per folder,
//! `put_mailbox`, `commit` in batches. Everything it writes is in the packs,
//! so `repair` can rebuild it and a kill -9 costs at most one batch.
//!
//! Idempotency: before a message is added to a folder the index (and the
//! uncommitted batch) is asked whether that folder already holds these exact
//! bytes; if so it is skipped. UIDs continue after the highest one the folder
//! has, so a re-run after an interruption appends only what is missing.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::imap::encode_mailbox_name;
use crate::model::records::{MailboxRecord, RefEvent, RefRecord};
use crate::model::{BlobId, Flags, InternalDate};
use crate::store::{now, Store};

use super::super::OpError;

/// Every import folder has this UIDVALIDITY: there is no server to change it.
pub const UIDVALIDITY: u32 = 1;
/// Commit after this many bytes appended…
const COMMIT_EVERY_BYTES: u64 = 8 * 1024 * 1024;
/// …or this many messages.
const COMMIT_EVERY_MESSAGES: usize = 500;

/// A folder a message goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Display name, `/`-separated.
    pub folder: String,
    /// `\Sent`, `\Drafts`, … when known.
    pub special_use: Option<&'static str>,
}

impl Target {
    pub fn plain(folder: &str) -> Target {
        Target {
            folder: folder.to_string(),
            special_use: guess_special_use(folder),
        }
    }
}

/// The special use of a top-level folder with a well-known name.
fn guess_special_use(folder: &str) -> Option<&'static str> {
    match folder.to_ascii_lowercase().as_str() {
        "sent" | "sent mail" | "sent messages" | "sent items" => Some("\\Sent"),
        "drafts" => Some("\\Drafts"),
        "trash" | "deleted items" | "deleted messages" => Some("\\Trash"),
        "junk" | "spam" | "junk e-mail" => Some("\\Junk"),
        "archive" | "archives" => Some("\\Archive"),
        _ => None,
    }
}

/// A message's bytes: in memory, or a big file already hashed.
pub enum Content<'a> {
    Bytes(&'a [u8]),
    File {
        path: &'a Path,
        id: BlobId,
        size: u64,
    },
}

/// What happened to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// Added to at least one folder.
    New,
    /// Every folder it belongs in already held it.
    Already,
    /// A big file changed between hashing and storing; nothing was listed.
    Changed,
}

struct FolderState {
    raw: String,
    special_use: Option<&'static str>,
    next_uid: u32,
}

pub struct Sink<'s> {
    store: &'s mut Store,
    account: String,
    folders: BTreeMap<String, FolderState>,
    /// (raw folder, blob) added since the last commit: not in the index yet.
    in_batch: HashSet<(String, BlobId)>,
    batch_messages: usize,
}

impl<'s> Sink<'s> {
    pub fn new(store: &'s mut Store, account: &str) -> Sink<'s> {
        Sink {
            store,
            account: account.to_string(),
            folders: BTreeMap::new(),
            in_batch: HashSet::new(),
            batch_messages: 0,
        }
    }

    /// Folders this run has put (or found) messages in.
    pub fn folders(&self) -> impl Iterator<Item = &str> {
        self.folders.keys().map(String::as_str)
    }

    /// The folder's state, opened on first use: its next UID comes from the
    /// index, and a mailbox record (kind `import`) is appended so the folder
    /// and the account exist before the first ref to them.
    fn open_folder(&mut self, t: &Target) -> Result<(), OpError> {
        if self.folders.contains_key(&t.folder) {
            return Ok(());
        }
        let raw = raw_name(&t.folder);
        let max = self
            .store
            .index()
            .mailbox_max_uid(&self.account, &raw, UIDVALIDITY)?;
        self.store
            .put_mailbox(self.mailbox_record(&raw, &t.folder, t.special_use, None))?;
        self.folders.insert(
            t.folder.clone(),
            FolderState {
                raw,
                special_use: t.special_use,
                next_uid: max + 1,
            },
        );
        Ok(())
    }

    fn mailbox_record(
        &self,
        raw: &str,
        name: &str,
        special_use: Option<&str>,
        uidnext: Option<u32>,
    ) -> MailboxRecord {
        MailboxRecord {
            account: self.account.clone(),
            account_kind: "import".into(),
            mailbox: raw.to_string(),
            name: name.to_string(),
            delimiter: Some("/".into()),
            special_use: special_use.map(str::to_string),
            uidvalidity: UIDVALIDITY,
            uidnext,
            highestmodseq: None,
            server_count: None,
            gone: false,
            at: now(),
        }
    }

    fn holds(&self, raw: &str, id: &BlobId) -> Result<bool, OpError> {
        Ok(self.in_batch.contains(&(raw.to_string(), *id))
            || self
                .store
                .index()
                .mailbox_has_blob(&self.account, raw, UIDVALIDITY, id)?)
    }

    /// Adds one message to every target folder that does not hold it yet.
    pub fn add(
        &mut self,
        targets: &[Target],
        content: Content<'_>,
        flags: &Flags,
        date: InternalDate,
    ) -> Result<Added, OpError> {
        let (id, size) = match &content {
            Content::Bytes(b) => (BlobId::of(b), b.len() as u64),
            Content::File { id, size, .. } => (*id, *size),
        };
        let mut missing = Vec::new();
        for t in targets {
            self.open_folder(t)?;
            let raw = self.folders[&t.folder].raw.clone();
            if !missing.contains(&t.folder) && !self.holds(&raw, &id)? {
                missing.push(t.folder.clone());
            }
        }
        if missing.is_empty() {
            return Ok(Added::Already);
        }
        let stored = match content {
            Content::Bytes(b) => self.store.put_blob(b)?.0,
            Content::File { path, .. } => self.store.put_blob_file(path)?.0,
        };
        if stored != id {
            // The file changed between hashing and storing. The bytes stored
            // are listed nowhere (harmless); the caller reports the file.
            return Ok(Added::Changed);
        }
        let at = now();
        for folder in missing {
            let st = self.folders.get_mut(&folder).expect("opened above");
            let uid = st.next_uid;
            st.next_uid += 1;
            let raw = st.raw.clone();
            self.store.add_ref(RefRecord {
                account: self.account.clone(),
                mailbox: raw.clone(),
                uidvalidity: UIDVALIDITY,
                uid,
                at,
                event: RefEvent::Seen {
                    blob: id,
                    internaldate: date.unix,
                    date_offset: date.offset_min,
                    size,
                    flags: flags.to_text(),
                    modseq: None,
                },
            })?;
            self.in_batch.insert((raw, id));
        }
        self.batch_messages += 1;
        let (_, pending_bytes) = self.store.pending();
        if pending_bytes >= COMMIT_EVERY_BYTES || self.batch_messages >= COMMIT_EVERY_MESSAGES {
            self.commit()?;
        }
        Ok(Added::New)
    }

    /// Makes everything so far durable and indexed.
    pub fn commit(&mut self) -> Result<(), OpError> {
        self.store.commit()?;
        self.in_batch.clear();
        self.batch_messages = 0;
        Ok(())
    }

    /// Records each folder's UIDNEXT (and the time of this import) and commits.
    pub fn finish(mut self) -> Result<(), OpError> {
        let records: Vec<MailboxRecord> = self
            .folders
            .iter()
            .map(|(name, st)| self.mailbox_record(&st.raw, name, st.special_use, Some(st.next_uid)))
            .collect();
        for r in records {
            self.store.put_mailbox(r)?;
        }
        self.commit()
    }
}

/// The folder's name as a server would put it on the wire (modified UTF-7),
/// so an import account looks like any other to export and restore.
pub fn raw_name(display: &str) -> String {
    if display.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_string()
    } else {
        encode_mailbox_name(display)
    }
}

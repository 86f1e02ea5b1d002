//! The store: content-addressed zstd blobs and ref records in append-only
//! packs, with the SQLite index as a cache of what the packs say.
//!
//! Uses: `index`, `model`. Knows nothing of IMAP.
//!
//! One file per operation on the store: `lock` (one writer), `write`
//! (appending records and committing them), `read` (a stored message's
//! bytes, checked), `dicts` (zstd dictionaries and their copies), `health`
//! (what an open finds wrong), `recovery` (after an interrupted run),
//! `verify` and `repair`. The pack and record layouts are in `pack` and
//! `record`; the rules they follow are in docs/design.md.
//!
//! Write order (a crash at any point is harmless, see docs/design.md):
//! 1. records are appended to the current pack (blob before the refs to it);
//! 2. [`Store::commit`] fsyncs the pack;
//! 3. then, in one SQLite transaction, the index takes the records in and
//!    notes how far it has read the pack (`packs.indexed_len`).
//!
//! Recovery never deletes a valid record: damage is skipped over to the
//! next whole record and a copy of the damaged bytes is kept beside the
//! pack; only a torn tail of the pack being written, past `indexed_len`, is
//! cut, after it was copied aside. Nothing the index points to is ever
//! rewritten.

mod coding;
mod dicts;
mod health;
mod lock;
pub use lock::held_elsewhere as lock_held_elsewhere;
pub mod pack;
mod read;
pub mod record;
mod recovery;
pub mod repair;
mod shared;
mod verify;
pub(crate) mod write;

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::index::{Index, IndexError};
use crate::model::records::Located;
use crate::model::BlobId;
use pack::PackWriter;

pub use health::Problem;
pub use read::{BlobReader, Fetched};
pub use repair::{repair, RepairReport};
pub use shared::SharedStore;
pub use verify::{Damage, QuickCheck, VerifyReport};

/// zstd level for message bytes.
pub const ZSTD_LEVEL: i32 = 3;
/// A dictionary is trained once the store holds this many blobs.
pub const DICT_TRAIN_AFTER: u64 = 1000;
/// Messages larger than this are compressed without a dictionary.
/// (What is bigger is mostly attachments, where a dictionary learned from
/// headers and text gains nothing and costs compression speed.)
pub const DICT_MAX_MESSAGE: u64 = 256 * 1024;

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
    #[error("the store `{path}` has packs but no index")]
    NoIndex { path: PathBuf },
    /// Reading an index in WAL mode writes beside it (`-wal`, `-shm`).
    #[error("cannot read the store `{path}`: this user may not write into it, and SQLite writes beside the index even to read it")]
    Unwritable {
        path: PathBuf,
        #[source]
        source: Box<IndexError>,
    },
}

impl StoreError {
    /// The index file is damaged: `mailkeep repair` builds a new one.
    pub fn index_damaged(&self) -> bool {
        matches!(self, StoreError::Index(e) if e.is_damaged())
    }
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

/// What `open` found and did while recovering from an earlier crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub records_indexed: u64,
    /// Bytes of a torn write cut off the end of the pack being written
    /// (a copy is kept beside it).
    pub bytes_truncated: u64,
    /// Damaged bytes found past what the index had read, skipped over
    /// (and copied beside their pack).
    pub bytes_skipped: u64,
    /// Copies of dictionaries written because fewer than two could be read.
    pub dictionary_copies_written: u64,
}

pub struct Store {
    root: PathBuf,
    index: Index,
    /// Held while a writer has the store open (flock on `lock`).
    lock: Option<File>,
    writer: Option<PackWriter>,
    pending: Vec<Located>,
    pending_blobs: HashSet<BlobId>,
    pending_bytes: u64,
    dicts: dicts::Dicts,
    compressor: Option<(u32, zstd::bulk::Compressor<'static>)>,
    /// The compressor of messages that take no dictionary, kept as well.
    plain: Option<zstd::bulk::Compressor<'static>>,
    recovery: Recovery,
    problems: Vec<Problem>,
}

impl Store {
    /// Opens (creating if needed) a store for writing: takes the lock, then
    /// recovers from any interrupted run. A store with packs but no index
    /// (deleted, or moved aside by an interrupted `repair`) gets its index
    /// rebuilt from the packs.
    pub fn open(root: &Path) -> Result<Store> {
        if root.exists() && !root.is_dir() {
            return Err(StoreError::NotADirectory(root.to_path_buf()));
        }
        pack::create_private_dir(root).map_err(io_err(root))?;
        restrict(root);
        let index_path = root.join("index.sqlite");
        if !index_path.exists()
            && (root.join("index.old.sqlite").exists()
                || !pack::list_packs(root).map_err(io_err(root))?.is_empty())
        {
            // Packs but no index: deleted, or a repair was interrupted.
            repair(root, &mut |_, _| {})?;
        }
        let lock = lock::take(root)?;
        let index = Index::open(&index_path)?;
        for f in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
            restrict(&root.join(f));
        }
        let mut store = Store::with(root, index, Some(lock));
        store.load_dicts()?;
        store.recover()?;
        store.check_health()?;
        store.ensure_dictionary_copies()?;
        Ok(store)
    }

    /// Opens an existing store to read it; takes no lock and changes nothing.
    ///
    /// A store that is not there is [`StoreError::Missing`]; one that is
    /// there but cannot be looked into (permissions, a file in the path) is
    /// [`StoreError::Io`], never taken for an empty one.
    pub fn open_read_only(root: &Path) -> Result<Store> {
        match std::fs::metadata(root) {
            Ok(m) if !m.is_dir() => return Err(StoreError::NotADirectory(root.to_path_buf())),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::Missing(root.to_path_buf()))
            }
            Err(e) => return Err(io_err(root)(e)),
        }
        let index_path = root.join("index.sqlite");
        match std::fs::metadata(&index_path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !pack::list_packs(root).map_err(io_err(root))?.is_empty() {
                    return Err(StoreError::NoIndex {
                        path: root.to_path_buf(),
                    });
                }
                return Err(StoreError::Missing(root.to_path_buf()));
            }
            Err(e) => return Err(io_err(&index_path)(e)),
        }
        let unwritable = |e: IndexError| {
            if e.is_read_only() {
                StoreError::Unwritable {
                    path: root.to_path_buf(),
                    source: Box::new(e),
                }
            } else {
                StoreError::Index(e)
            }
        };
        if Index::is_behind(&index_path).map_err(unwritable)? {
            // Written by an older release: upgraded (under the writer's lock,
            // as a writer would) before it is read. A writer holding the lock
            // has upgraded it already.
            // One that cannot be written (a read-only copy) is read as it is.
            if let Ok(_held) = lock::take(root) {
                drop(Index::open(&index_path)?);
            }
        }
        let index = Index::open_read_only(&index_path).map_err(unwritable)?;
        let mut store = Store::with(root, index, None);
        store.load_dicts().map_err(|e| match e {
            StoreError::Index(e) => unwritable(e),
            e => e,
        })?;
        store.check_health()?;
        Ok(store)
    }

    /// A store over an opened index; `lock` is held by writers only.
    fn with(root: &Path, index: Index, lock: Option<File>) -> Store {
        Store {
            root: root.to_path_buf(),
            index,
            lock,
            writer: None,
            pending: Vec::new(),
            pending_blobs: HashSet::new(),
            pending_bytes: 0,
            dicts: dicts::Dicts::default(),
            compressor: None,
            plain: None,
            recovery: Recovery::default(),
            problems: Vec::new(),
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

    /// What opening the store found wrong (missing or short packs,
    /// dictionaries with no readable copy). Every other message stays
    /// readable; `mailkeep repair` mends the index.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Takes in what a writer added since this store was opened to read
    /// (a dictionary trained meanwhile); blobs and messages are read from
    /// the index as it is at each query anyway.
    pub fn refresh(&mut self) -> Result<()> {
        self.load_dicts()
    }

    fn writable(&self) -> Result<()> {
        if self.lock.is_none() {
            return Err(StoreError::ReadOnly);
        }
        Ok(())
    }

    /// Notes that a message's bytes were found damaged, so that the next
    /// backup fetches them again. Best effort from a read-only store (the
    /// note goes through a connection of its own).
    pub fn note_damaged(&self, id: &BlobId, what: &str) {
        let entry = [(*id, what.to_string())];
        let _ = if self.lock.is_some() {
            self.index.note_damaged(&entry, now())
        } else {
            Index::note_damaged_at(&self.root.join("index.sqlite"), &entry, now())
        };
    }
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

#[cfg(test)]
mod tests;

//! What opening a store checks before anything is read: every pack the
//! index knows is there and as long as the index has read it, and every
//! dictionary has a readable copy. These checks cost one `stat` per pack.
//! A problem found here locks nobody out: the messages it touches are named
//! as damaged when they are read, every other message stays readable, and a
//! writer notes the touched messages so that the next backup fetches them
//! again.

use std::fmt;

use super::{now, pack, Result, Store};
use crate::model::BlobId;

/// Something wrong with the store as a whole, found when it was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A pack the index refers to is not there.
    PackMissing { pack: u32, messages: u64 },
    /// A pack is shorter than what the index has read of it (cut short).
    PackShort {
        pack: u32,
        len: u64,
        indexed: u64,
        messages: u64,
    },
    /// No copy of a dictionary can be read, and it could not be rebuilt.
    DictionaryLost { id: u32, messages: u64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::PackMissing { pack, messages } => write!(
                f,
                "pack {pack:06} is missing: {messages} stored messages were in it"
            ),
            Problem::PackShort {
                pack,
                len,
                indexed,
                messages,
            } => write!(
                f,
                "pack {pack:06} is {len} bytes but the index has read {indexed} of it (cut short?): \
                 {messages} stored messages were past its end"
            ),
            Problem::DictionaryLost { id, messages } => write!(
                f,
                "every copy of dictionary {id} is damaged: the {messages} messages compressed \
                 with it cannot be read"
            ),
        }
    }
}

impl Store {
    /// Compares each pack the index knows with the file on disk.
    pub(super) fn check_health(&mut self) -> Result<()> {
        let mut problems = Vec::new();
        let mut touched: Vec<(BlobId, String)> = Vec::new();
        for (no, indexed) in self.index.packs()? {
            let path = pack::pack_path(&self.root, no);
            let (len, what) = match std::fs::metadata(&path) {
                Ok(m) if m.len() >= indexed => continue,
                Ok(m) => (m.len(), format!("pack {no:06} is cut short")),
                Err(_) => (0, format!("pack {no:06} is missing")),
            };
            let blobs = self.index.blobs_past(no, len)?;
            let messages = blobs.len() as u64;
            touched.extend(blobs.into_iter().map(|b| (b, what.clone())));
            problems.push(if len == 0 && !path.exists() {
                Problem::PackMissing { pack: no, messages }
            } else {
                Problem::PackShort {
                    pack: no,
                    len,
                    indexed,
                    messages,
                }
            });
        }
        for id in self.dicts.lost() {
            let blobs = self.index.blobs_with_dict(id)?;
            problems.push(Problem::DictionaryLost {
                id,
                messages: blobs.len() as u64,
            });
            let what = format!("every copy of dictionary {id} is damaged");
            touched.extend(blobs.into_iter().map(|b| (b, what.clone())));
        }
        if self.lock.is_some() && !touched.is_empty() {
            self.index.note_damaged(&touched, now())?;
        }
        self.problems = problems;
        Ok(())
    }
}

//! zstd dictionaries: trained once the store holds enough mail, kept in at
//! least two copies (and one more at the start of every pack written after
//! it), so that one damaged copy costs nothing.
//!
//! A store written before copies were kept has one copy of its dictionary.
//! Opening it for writing adds a second. If the only copy is already
//! damaged, the dictionary is trained again from the same messages it was
//! first trained on (those stored before it, without a dictionary, in log
//! order), which gives the same bytes; it is used only if messages
//! compressed with it then decompress to their hashes.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::Arc;

use super::record::Kind;
use super::{
    io_err, pack, Result, Store, StoreError, DICT_MAX_MESSAGE, DICT_TRAIN_AFTER, ZSTD_LEVEL,
};
use crate::index::{BlobLocation, BlobLocationLite};
use crate::model::records::{Located, Record};
use crate::model::BlobId;

const DICT_SIZE: usize = 112 * 1024;
const DICT_SAMPLE_BYTES: usize = 16 * 1024;
const DICT_SAMPLES: usize = 2000;
/// A dictionary is kept in at least this many readable copies.
pub(super) const DICT_COPIES: usize = 2;

/// The dictionaries of a store, as loaded from the first readable copy.
#[derive(Default)]
pub(super) struct Dicts {
    loaded: HashMap<u32, Arc<Vec<u8>>>,
    lost: BTreeSet<u32>,
    current: Option<u32>,
}

impl Dicts {
    pub(super) fn get(&self, id: u32) -> std::result::Result<&Arc<Vec<u8>>, String> {
        self.loaded.get(&id).ok_or_else(|| {
            if self.lost.contains(&id) {
                format!("every copy of its dictionary {id} is damaged")
            } else {
                format!("its dictionary {id} is not in the store")
            }
        })
    }

    pub(super) fn lost(&self) -> Vec<u32> {
        self.lost.iter().copied().collect()
    }

    pub(super) fn current(&self) -> Option<u32> {
        self.current
    }

    pub(super) fn ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.loaded.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Takes a dictionary that was trained again after every copy was lost.
    pub(super) fn insert_rebuilt(&mut self, id: u32, bytes: Vec<u8>) {
        self.insert(id, bytes);
    }

    /// Forgets that `id` was lost, so that the next load tries its copies again.
    pub(super) fn forget_lost(&mut self, id: u32) {
        self.lost.remove(&id);
    }

    fn insert(&mut self, id: u32, bytes: Vec<u8>) {
        self.loaded.insert(id, Arc::new(bytes));
        self.lost.remove(&id);
        self.current = Some(self.current.map_or(id, |c| c.max(id)));
    }
}

/// The dictionary bytes in the copy at `loc`, if it is whole and is `id`.
fn read_copy(store: &Store, id: u32, loc: &BlobLocationLite) -> Option<Vec<u8>> {
    let (kind, payload) = pack::read_record(&store.root, loc.pack, loc.offset, loc.length).ok()?;
    if kind != Kind::Dict || payload.len() < 4 || payload[..4] != id.to_le_bytes() {
        return None;
    }
    Some(payload[4..].to_vec())
}

impl Store {
    /// Loads every dictionary the index knows that is not loaded yet, each
    /// from its first readable copy. One with no readable copy is trained
    /// again if it can be (see the module's comment), else marked lost: the
    /// messages compressed with it are reported damaged, the rest read fine.
    pub(super) fn load_dicts(&mut self) -> Result<()> {
        let mut copies: Vec<(u32, Vec<BlobLocationLite>)> = Vec::new();
        for (id, loc) in self.index.dictionary_copies()? {
            match copies.last_mut() {
                Some((last, locs)) if *last == id => locs.push(loc),
                _ => copies.push((id, vec![loc])),
            }
        }
        for (id, locs) in copies {
            if self.dicts.loaded.contains_key(&id) || self.dicts.lost.contains(&id) {
                continue;
            }
            match locs.iter().find_map(|l| read_copy(self, id, l)) {
                Some(bytes) => self.dicts.insert(id, bytes),
                None => match self.retrain_lost(id, &locs[0])? {
                    Some(bytes) => self.dicts.insert(id, bytes),
                    None => {
                        self.dicts.lost.insert(id);
                    }
                },
            }
        }
        Ok(())
    }

    /// Trains dictionary `id` again from the messages stored before its
    /// first copy, as it was trained; `None` unless the result decompresses
    /// messages that use it to their hashes.
    fn retrain_lost(&self, id: u32, first: &BlobLocationLite) -> Result<Option<Vec<u8>>> {
        let mut users = Vec::new();
        for b in self.index.blobs_with_dict(id)?.into_iter().take(3) {
            users.push((b, self.blob_location(&b)?));
        }
        self.retrain(id, (first.pack, first.offset), &users)
    }

    /// Trains a dictionary from the messages stored without one before
    /// `before` (pack, offset) in log order, as the first dictionary was
    /// trained; `None` unless each of `users` (messages compressed with
    /// dictionary `id`) decompresses with it to its hash.
    pub(super) fn retrain(
        &self,
        _id: u32,
        before: (u32, u64),
        users: &[(BlobId, BlobLocation)],
    ) -> Result<Option<Vec<u8>>> {
        if users.is_empty() {
            return Ok(None);
        }
        let ids =
            self.index
                .sample_blobs_before(before.0, before.1, DICT_SAMPLES, DICT_MAX_MESSAGE)?;
        let Some(dict) = self.train(&ids)? else {
            return Ok(None);
        };
        let right = users
            .iter()
            .all(|(id, loc)| self.blob_decodes_with(id, loc, &dict));
        Ok(right.then_some(dict))
    }

    /// A zstd dictionary from the first bytes of these messages; `None`
    /// when there is too little variety to train on.
    fn train(&self, ids: &[BlobId]) -> Result<Option<Vec<u8>>> {
        let mut samples = Vec::with_capacity(ids.len());
        for id in ids {
            let mut bytes = self.read_blob(id)?;
            bytes.truncate(DICT_SAMPLE_BYTES);
            samples.push(bytes);
        }
        Ok(zstd::dict::from_samples(&samples, DICT_SIZE).ok())
    }

    /// A compressor primed with dictionary `d`, built once (loading a
    /// dictionary costs far more than compressing a typical message).
    pub(super) fn compressor(
        &mut self,
        d: u32,
    ) -> io::Result<&mut zstd::bulk::Compressor<'static>> {
        if self.compressor.as_ref().is_none_or(|(id, _)| *id != d) {
            let dict = self.dicts.get(d).map_err(io::Error::other)?;
            let c = zstd::bulk::Compressor::with_dictionary(ZSTD_LEVEL, dict)?;
            self.compressor = Some((d, c));
        }
        Ok(&mut self.compressor.as_mut().expect("just set").1)
    }

    pub(super) fn dict_for(&self, raw_len: u64) -> Option<u32> {
        if raw_len > DICT_MAX_MESSAGE {
            return None;
        }
        self.dicts.current()
    }

    /// Trains a zstd dictionary from the first messages once there are
    /// enough of them; later messages compress with it. Written twice.
    pub(super) fn maybe_train_dictionary(&mut self) -> Result<()> {
        if self.dicts.current().is_some()
            || !self.dicts.lost.is_empty()
            || self.index.totals()?.blobs < DICT_TRAIN_AFTER
        {
            return Ok(());
        }
        let ids = self.index.sample_blobs(DICT_SAMPLES, DICT_MAX_MESSAGE)?;
        let Some(dict) = self.train(&ids)? else {
            // Too little variety to train on: carry on without a dictionary.
            return Ok(());
        };
        let id: u32 = 1;
        self.dicts.insert(id, dict);
        for _ in 0..DICT_COPIES {
            self.append_dict_copy(id)?;
        }
        self.commit()
    }

    /// Appends a copy of loaded dictionary `id` to the current pack (taken
    /// into the index at the next commit).
    pub(super) fn append_dict_copy(&mut self, id: u32) -> Result<()> {
        let dict = self
            .dicts
            .get(id)
            .map_err(|_| StoreError::NoSuchDict(id))?
            .clone();
        let root = self.root.clone();
        let w = self.writer()?;
        let (offset, length) = w
            .append(Kind::Dict, &[&id.to_le_bytes(), &dict])
            .map_err(io_err(&root))?;
        let pack = w.no;
        self.pending.push(Located {
            pack,
            offset,
            length,
            record: Record::Dict { id },
        });
        self.pending_bytes += length;
        Ok(())
    }

    /// Makes sure every dictionary has at least [`DICT_COPIES`] readable
    /// copies (a store written before copies were kept has one; a damaged
    /// copy is replaced). Writers only.
    pub(super) fn ensure_dictionary_copies(&mut self) -> Result<()> {
        let mut good: HashMap<u32, usize> = HashMap::new();
        for (id, loc) in self.index.dictionary_copies()? {
            if read_copy(self, id, &loc).is_some() {
                *good.entry(id).or_default() += 1;
            }
        }
        let mut wrote = 0;
        for id in self.dicts.ids() {
            let have = good.get(&id).copied().unwrap_or(0);
            for _ in have..DICT_COPIES {
                self.append_dict_copy(id)?;
                wrote += 1;
            }
        }
        if wrote > 0 {
            self.recovery.dictionary_copies_written += wrote;
            self.commit()?;
        }
        Ok(())
    }
}

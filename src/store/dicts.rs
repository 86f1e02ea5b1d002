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

/// A dictionary's size: a 150th of the bytes it is trained on, within these.
const DICT_MIN_SIZE: usize = 16 * 1024;
const DICT_MAX_SIZE: usize = 512 * 1024;
/// A new dictionary is trained each time the store has grown this many times.
const DICT_GROWTH: u64 = 8;
/// How format 1 trained its one dictionary (to train a lost one again).
const V1_DICT_SIZE: usize = 112 * 1024;
const V1_SAMPLES: usize = 2000;
const V1_MAX_MESSAGE: u64 = 4 * 1024 * 1024;
const DICT_SAMPLE_BYTES: usize = 16 * 1024;
const DICT_SAMPLES: usize = 2000;

/// How a dictionary is made from its samples. A lost one is trained again
/// by each rule in turn (newest first) until messages that use it
/// decompress to their hashes, so a store keeps working whichever release
/// trained its dictionaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Trainer {
    /// zstd's fastCover with fixed parameters (k 1000, d 8, f 20, accel 1):
    /// every new dictionary. About 5 times faster than
    /// [`Trainer::Searched`], with the same compression on mail (a 512 KiB
    /// dictionary from 2,000 samples: 0.33 s against 1.55 s, 45.00 % against
    /// 45.06 % of the bytes; docs/benchmarks.md).
    FixedFastCover,
    /// zstd's default (`ZDICT_trainFromBuffer`: fastCover trying four
    /// values of k, each judged by compressing every sample): format 1 and
    /// format 2 before 2.1.
    Searched,
}

#[cfg(test)]
thread_local! {
    /// Tests train new dictionaries by this rule instead (to make a store
    /// as an older release did).
    pub(super) static NEW_DICTS_BY: std::cell::Cell<Trainer> =
        const { std::cell::Cell::new(Trainer::FixedFastCover) };
}

/// The rule new dictionaries are trained by.
fn new_dict_trainer() -> Trainer {
    #[cfg(test)]
    return NEW_DICTS_BY.with(|t| t.get());
    #[cfg(not(test))]
    Trainer::FixedFastCover
}

/// A dictionary of at most `size` bytes from `samples` (concatenated, with
/// their lengths), by `rule`; `None` when zstd finds too little to train on.
fn train_samples(samples: &[u8], sizes: &[usize], size: usize, rule: Trainer) -> Option<Vec<u8>> {
    match rule {
        Trainer::Searched => zstd::dict::from_continuous(samples, sizes, size).ok(),
        Trainer::FixedFastCover => {
            use zstd::zstd_safe::zstd_sys;
            if sizes.iter().sum::<usize>() != samples.len() {
                return None;
            }
            let mut dict = vec![0u8; size];
            // SAFETY: all-zero is the documented "default" for every field of
            // this plain C struct; the ones that matter are set below.
            let mut p: zstd_sys::ZDICT_fastCover_params_t = unsafe { std::mem::zeroed() };
            p.k = 1000;
            p.d = 8;
            p.f = 20;
            p.accel = 1;
            p.splitPoint = 1.0;
            p.zParams.compressionLevel = ZSTD_LEVEL;
            // SAFETY: `dict` has room for `size` bytes; `samples` holds exactly
            // the `sizes.len()` samples whose lengths are in `sizes` (checked
            // above); zstd reads and writes within those bounds.
            let n = unsafe {
                zstd_sys::ZDICT_trainFromBuffer_fastCover(
                    dict.as_mut_ptr().cast(),
                    dict.len(),
                    samples.as_ptr().cast(),
                    sizes.as_ptr(),
                    u32::try_from(sizes.len()).ok()?,
                    p,
                )
            };
            // SAFETY: a plain function of the returned code.
            if unsafe { zstd_sys::ZDICT_isError(n) } != 0 {
                return None;
            }
            dict.truncate(n);
            Some(dict)
        }
    }
}
/// A dictionary is kept in at least this many readable copies.
pub(super) const DICT_COPIES: usize = 2;

/// The dictionaries of a store, as loaded from the first readable copy.
#[derive(Default)]
pub(super) struct Dicts {
    loaded: HashMap<u32, Arc<Vec<u8>>>,
    lost: BTreeSet<u32>,
    current: Option<u32>,
    /// Stored messages (counted once a training is first considered).
    pub(super) stored: u64,
    /// The count of stored messages the next training waits for.
    pub(super) train_at: Option<u64>,
    /// Each dictionary digested once for decompression, made when a message
    /// is first read with it, and referred to by every decompressor after
    /// (loading a 512 KiB dictionary into a decompressor per message was a
    /// fifth of an export's CPU).
    prepared: std::sync::Mutex<HashMap<u32, Arc<zstd::dict::DecoderDictionary<'static>>>>,
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

    /// Dictionary `id` digested for decompression (see `prepared`).
    pub(super) fn prepared(
        &self,
        id: u32,
    ) -> std::result::Result<Arc<zstd::dict::DecoderDictionary<'static>>, String> {
        let bytes = self.get(id)?;
        let mut cache = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        Ok(cache
            .entry(id)
            .or_insert_with(|| Arc::new(zstd::dict::DecoderDictionary::copy(bytes)))
            .clone())
    }

    fn insert(&mut self, id: u32, bytes: Vec<u8>) {
        self.prepared
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
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

    /// Trains a dictionary again from the messages stored before `before`
    /// (pack, offset), by the rule it was made by — this release's
    /// ([`Store::training_set`]), or, for dictionary 1, format 1's (the first
    /// 2,000 messages, 112 KiB); `None` unless each of `users` (messages
    /// compressed with dictionary `id`) decompresses with it to its hash.
    pub(super) fn retrain(
        &self,
        id: u32,
        before: (u32, u64),
        users: &[(BlobId, BlobLocation)],
    ) -> Result<Option<Vec<u8>>> {
        if users.is_empty() {
            return Ok(None);
        }
        let (ids, size) = self.training_set(crate::index::blob_key(before.0, before.1))?;
        let mut tries = vec![
            (ids.clone(), size, Trainer::FixedFastCover),
            (ids, size, Trainer::Searched),
        ];
        if id == 1 {
            let first =
                self.index
                    .sample_blobs_before(before.0, before.1, V1_SAMPLES, V1_MAX_MESSAGE)?;
            tries.push((first, V1_DICT_SIZE, Trainer::Searched));
        }
        for (ids, size, rule) in tries {
            let Some(dict) = self.train(&ids, size, rule)? else {
                continue;
            };
            let right = users
                .iter()
                .all(|(id, loc)| self.blob_decodes_with(id, loc, &dict));
            if right {
                return Ok(Some(dict));
            }
        }
        Ok(None)
    }

    /// What a dictionary trained when the log reached `before` (a blob key)
    /// is trained on, and its size: a sample spread evenly, in log order,
    /// over every message stored before it (at most [`DICT_SAMPLES`], each
    /// message every `n / DICT_SAMPLES`-th), as big as a 150th of their
    /// bytes, between 16 KiB and 512 KiB. The same store gives the same
    /// sample, so a dictionary can be trained again.
    pub(super) fn training_set(&self, before: i64) -> Result<(Vec<BlobId>, usize)> {
        let all = self.index.blobs_before(before, DICT_MAX_MESSAGE)?;
        let total: u64 = all.iter().map(|(_, size)| *size).sum();
        let n = all.len();
        let pick: Vec<BlobId> = if n <= DICT_SAMPLES {
            all.into_iter().map(|(id, _)| id).collect()
        } else {
            (0..DICT_SAMPLES)
                .map(|i| all[i * n / DICT_SAMPLES].0)
                .collect()
        };
        let size = ((total / 150) as usize).clamp(DICT_MIN_SIZE, DICT_MAX_SIZE);
        Ok((pick, size))
    }

    /// A zstd dictionary of `size` bytes from the first bytes of these
    /// messages; `None` when there is too little variety to train on.
    fn train(&self, ids: &[BlobId], size: usize, rule: Trainer) -> Result<Option<Vec<u8>>> {
        // One buffer, not a copy of each sample: training needs it so. Its
        // room is reserved at once (pages that are never written take no
        // memory): grown by doubling, it held up to three times the samples
        // while it was copied (20 MB of a backup's peak of 50 MB).
        let mut all = Vec::with_capacity(ids.len() * DICT_SAMPLE_BYTES);
        let mut sizes = Vec::with_capacity(ids.len());
        for id in ids {
            // A sample lost to the same damage: the dictionary cannot be
            // trained as it was (and one trained without it would not
            // decompress what the old one compressed).
            let bytes = match self.read_blob(id) {
                Ok(b) => b,
                Err(StoreError::Corrupt { .. } | StoreError::NoSuchBlob { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            let n = bytes.len().min(DICT_SAMPLE_BYTES);
            all.extend_from_slice(&bytes[..n]);
            sizes.push(n);
        }
        Ok(train_samples(&all, &sizes, size, rule))
    }

    /// The compressor for dictionary `d`, or for messages that take none
    /// (those over [`DICT_MAX_MESSAGE`], all before the first dictionary),
    /// each built once: loading a dictionary costs far more than
    /// compressing a typical message, and a context made per message set
    /// its tables up in fresh pages each time.
    pub(super) fn compressor(
        &mut self,
        d: Option<u32>,
    ) -> io::Result<&mut zstd::bulk::Compressor<'static>> {
        let Some(d) = d else {
            if self.plain.is_none() {
                self.plain = Some(zstd::bulk::Compressor::new(ZSTD_LEVEL)?);
            }
            return Ok(self.plain.as_mut().expect("just set"));
        };
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

    /// Trains a new dictionary once the store holds [`DICT_TRAIN_AFTER`]
    /// messages, and again each time it holds [`DICT_GROWTH`] times as many
    /// as when the last one was trained: messages stored after it compress
    /// with it (those before keep theirs). Written twice.
    pub(super) fn maybe_train_dictionary(&mut self) -> Result<()> {
        if !self.dicts.lost.is_empty() {
            return Ok(());
        }
        let train_at = match self.dicts.train_at {
            Some(t) => t,
            None => {
                let t = self.next_training_at()?;
                self.dicts.train_at = Some(t);
                t
            }
        };
        if self.dicts.stored < train_at {
            return Ok(());
        }
        // Not again for this many: also when training fails.
        self.dicts.train_at = Some(self.dicts.stored.max(DICT_TRAIN_AFTER) * DICT_GROWTH);
        let before = match &self.writer {
            Some(w) => crate::index::blob_key(w.no, w.len()),
            None => i64::MAX,
        };
        let (ids, size) = self.training_set(before)?;
        let Some(dict) = self.train(&ids, size, new_dict_trainer())? else {
            // Too little variety to train on: carry on as before.
            return Ok(());
        };
        let id = self.dicts.ids().last().map_or(1, |last| last + 1);
        self.dicts.insert(id, dict);
        for _ in 0..DICT_COPIES {
            self.append_dict_copy(id)?;
        }
        self.commit()
    }

    /// How many stored messages the next dictionary waits for (see
    /// [`Store::maybe_train_dictionary`]); also counts what is stored now.
    fn next_training_at(&mut self) -> Result<u64> {
        self.dicts.stored = self.index.totals()?.blobs;
        let newest = self
            .index
            .dictionary_copies()?
            .into_iter()
            .filter(|(id, _)| Some(*id) == self.dicts.current())
            .map(|(_, l)| crate::index::blob_key(l.pack, l.offset))
            .min();
        Ok(match newest {
            None => DICT_TRAIN_AFTER,
            Some(key) => self.index.blobs_count_before(key)?.max(DICT_TRAIN_AFTER) * DICT_GROWTH,
        })
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

#[cfg(test)]
pub(super) fn train_for_test(
    samples: &[u8],
    sizes: &[usize],
    size: usize,
    rule: Trainer,
) -> Option<Vec<u8>> {
    train_samples(samples, sizes, size, rule)
}

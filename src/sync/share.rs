//! A folder's new mail shared out over an account's connections.
//!
//! The connection that takes a folder up lists it and plans it, as before;
//! the messages to download are then cut into parts ([`Split`]) that it
//! takes from the front one after the other. A connection of the same
//! account with no folder left to take helps: it opens the same folder
//! (read-only, `EXAMINE`), takes a part, downloads it into the store and
//! takes the next. The folder's owner records the folder as synced only
//! once every part is done, by whoever; a part whose helper failed goes
//! back, without the messages it stored, for the owner or another helper.
//! A folder smaller than one part is never shared, so a nightly run with a
//! little new mail opens no more connections than it did.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::imap::MessageIds;
use crate::model::{Folder, MessageMeta, Uid};

use super::exec::FolderOutcome;

/// At most this many messages in a part: as many as one UID FETCH asks for
/// (`SyncOptions::batch_count`'s default), so that sharing costs no round
/// trip, and few enough that the last part of a big folder is short.
pub const PART_MESSAGES: usize = 500;
/// At most this many bytes in a part (a message this big or bigger is a
/// part alone; parts are cut as batches are, by `plan::batches`).
pub const PART_BYTES: u64 = 32 * 1024 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An account's work: the folders not yet taken up, and the folders being
/// downloaded that take help. One per account and run, shared by its
/// connections.
pub struct Board {
    state: Mutex<BoardState>,
    /// Woken whenever a folder is done, a split is offered or ends, or a part
    /// is done or given back.
    changed: Arc<Notify>,
}

struct BoardState {
    folders: VecDeque<Folder>,
    /// Folders taken up and not done: each may still offer a split.
    active: usize,
    splits: Vec<Arc<Split>>,
}

/// What a connection of the account is to do next.
pub enum Work {
    /// Take this folder up.
    Folder(Folder),
    /// Help with this folder's download.
    Help(Arc<Split>),
    /// Nothing now, but a folder being synced may yet offer parts: wait for
    /// [`Board::changed`].
    Wait,
    /// Nothing left.
    Done,
}

impl Board {
    pub fn new(folders: VecDeque<Folder>) -> Board {
        Board {
            state: Mutex::new(BoardState {
                folders,
                active: 0,
                splits: Vec::new(),
            }),
            changed: Arc::new(Notify::new()),
        }
    }

    /// The next work for a connection: a folder if one is left, otherwise
    /// help with the split that has the most parts left (other than those in
    /// `refused`, the splits this connection gave up on).
    pub fn next(&self, refused: &HashSet<u64>) -> Work {
        let mut st = lock(&self.state);
        if let Some(f) = st.folders.pop_front() {
            st.active += 1;
            return Work::Folder(f);
        }
        let best = st
            .splits
            .iter()
            .filter(|s| !refused.contains(&s.serial))
            .map(|s| (s.parts_left(), s))
            .filter(|(n, _)| *n > 0)
            .max_by_key(|(n, _)| *n)
            .map(|(_, s)| s.clone());
        match best {
            Some(s) => Work::Help(s),
            None if st.active == 0 => Work::Done,
            None => Work::Wait,
        }
    }

    /// A folder taken up with [`Board::next`] is done, well or not.
    pub fn folder_done(&self) {
        lock(&self.state).active -= 1;
        self.changed.notify_waiters();
    }

    /// Waits for a change (call `enable` on the future before looking at the
    /// board, then await it: no change is missed in between).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Offers `split`'s parts to the other connections until the returned
    /// guard is dropped.
    pub fn offer(&self, split: &Arc<Split>) -> Offered<'_> {
        lock(&self.state).splits.push(split.clone());
        self.changed.notify_waiters();
        Offered {
            board: self,
            serial: split.serial,
        }
    }
}

/// A split on offer; dropping it takes the split off the board and closes
/// it to helpers.
pub struct Offered<'b> {
    board: &'b Board,
    serial: u64,
}

impl Drop for Offered<'_> {
    fn drop(&mut self) {
        let mut st = lock(&self.board.state);
        if let Some(i) = st.splits.iter().position(|s| s.serial == self.serial) {
            st.splits.remove(i).stop_helpers();
        }
        drop(st);
        self.board.changed.notify_waiters();
    }
}

/// One folder's new mail in parts, and what was done with them.
pub struct Split {
    serial: u64,
    pub folder: Folder,
    pub uidvalidity: u32,
    changed: Arc<Notify>,
    state: Mutex<SplitState>,
}

#[derive(Default)]
struct SplitState {
    todo: VecDeque<Vec<MessageMeta>>,
    /// Parts taken and not yet done or given back.
    busy: usize,
    /// No new part goes to a helper (the owner failed or is gone).
    closed: bool,
    /// Whether to ask the server for its message ids; set to `None` by the
    /// first part whose server would not say.
    ask_ids: Option<MessageIds>,
    /// The counts of every part done or given back.
    done: FolderOutcome,
    /// Asked for in a part, not sent by the server.
    unaccounted: Vec<Uid>,
    /// How many parts helpers did.
    helped: usize,
}

static SERIAL: AtomicU64 = AtomicU64::new(1);

impl Split {
    /// `fetch` cut into parts; `board` is the account's, whose connections
    /// may help (`None`: no one helps, the owner takes every part).
    pub fn new(
        folder: &Folder,
        uidvalidity: u32,
        ask_ids: Option<MessageIds>,
        fetch: Vec<MessageMeta>,
        board: Option<&Board>,
    ) -> Arc<Split> {
        Arc::new(Split {
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            folder: folder.clone(),
            uidvalidity,
            changed: board.map_or_else(|| Arc::new(Notify::new()), |b| b.changed.clone()),
            state: Mutex::new(SplitState {
                todo: super::plan::batches(fetch, PART_MESSAGES, PART_BYTES).into(),
                ask_ids,
                ..SplitState::default()
            }),
        })
    }

    pub fn serial(&self) -> u64 {
        self.serial
    }

    fn parts_left(&self) -> usize {
        let st = lock(&self.state);
        if st.closed {
            0
        } else {
            st.todo.len()
        }
    }

    /// Closes the split to helpers: its owner failed or let go.
    pub fn stop_helpers(&self) {
        lock(&self.state).closed = true;
    }

    /// The next part, for the owner (`helper` false) or a helper (not once
    /// the split is closed).
    pub fn take(self: &Arc<Self>, helper: bool) -> Option<Taken> {
        let mut st = lock(&self.state);
        if helper && st.closed {
            return None;
        }
        let part = st.todo.pop_front()?;
        st.busy += 1;
        Some(Taken {
            split: self.clone(),
            ask_ids: st.ask_ids,
            part,
            handled: HashSet::new(),
            got: FolderOutcome::default(),
            unaccounted: Vec::new(),
            helper,
            finished: false,
        })
    }

    /// No part left to take and none being done: the split is finished (or,
    /// after [`Split::stop_helpers`], the helpers have let go).
    pub fn idle(&self) -> bool {
        lock(&self.state).busy == 0
    }

    /// True when a part is left to take.
    pub fn has_parts(&self) -> bool {
        !lock(&self.state).todo.is_empty()
    }

    /// Waits for a change (see [`Board::changed`]).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Adds what every part did to `out` and `unaccounted`, and says how
    /// many parts helpers did.
    pub fn account_to(&self, out: &mut FolderOutcome, unaccounted: &mut Vec<Uid>) -> usize {
        let mut st = lock(&self.state);
        out.add_counts(&st.done);
        st.done = FolderOutcome::default();
        unaccounted.append(&mut st.unaccounted);
        st.helped
    }
}

/// A part being downloaded. Dropped without [`Taken::finish`] (a failure, an
/// interruption), it goes back to its split without the messages it
/// stored; its counts stay counted.
pub struct Taken {
    split: Arc<Split>,
    /// Whether to ask for the server's message ids.
    pub ask_ids: Option<MessageIds>,
    pub part: Vec<MessageMeta>,
    /// Messages of the part stored, recorded or found missing.
    pub handled: HashSet<Uid>,
    pub got: FolderOutcome,
    pub unaccounted: Vec<Uid>,
    helper: bool,
    finished: bool,
}

impl Taken {
    pub fn finish(mut self) {
        self.finished = true;
    }

    fn settle(&mut self) {
        let mut st = lock(&self.split.state);
        st.busy -= 1;
        if self.ask_ids.is_none() {
            st.ask_ids = None;
        }
        st.done.add_counts(&self.got);
        st.unaccounted.append(&mut self.unaccounted);
        if self.finished {
            st.helped += usize::from(self.helper);
        } else {
            let left: Vec<MessageMeta> = std::mem::take(&mut self.part)
                .into_iter()
                .filter(|m| !self.handled.contains(&m.uid))
                .collect();
            if !left.is_empty() {
                st.todo.push_front(left);
            }
        }
        drop(st);
        self.split.changed.notify_waiters();
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.settle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Flags, InternalDate};

    fn meta(uid: Uid, size: u64) -> MessageMeta {
        MessageMeta {
            uid,
            flags: Flags::default(),
            internaldate: InternalDate {
                unix: 0,
                offset_min: 0,
            },
            size,
            modseq: None,
        }
    }

    fn folder() -> Folder {
        Folder {
            raw: "INBOX".into(),
            display: "INBOX".into(),
            delimiter: Some('/'),
            special_use: None,
            selectable: true,
        }
    }

    fn uids(p: &[MessageMeta]) -> Vec<Uid> {
        p.iter().map(|m| m.uid).collect()
    }

    fn parts_of(fetch: Vec<MessageMeta>) -> Vec<Vec<Uid>> {
        let split = Split::new(&folder(), 7, None, fetch, None);
        let mut out = Vec::new();
        while let Some(t) = split.take(false) {
            out.push(uids(&t.part));
            t.finish();
        }
        out
    }

    #[test]
    fn parts_keep_order_and_limits() {
        let n = PART_MESSAGES as Uid;
        let fetch: Vec<MessageMeta> = (1..=2 * n + 1).map(|u| meta(u, 10)).collect();
        let got = parts_of(fetch);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (1..=n).collect::<Vec<_>>());
        assert_eq!(got[2], vec![2 * n + 1]);
        // A message of the part's size or more is a part alone.
        let big = PART_BYTES;
        let fetch = vec![meta(1, 40), meta(2, 40), meta(3, big), meta(4, 10)];
        assert_eq!(parts_of(fetch), vec![vec![3], vec![1, 2, 4]]);
        assert!(parts_of(Vec::new()).is_empty());
    }

    #[test]
    fn a_part_given_back_returns_without_what_it_stored() {
        let board = Board::new(VecDeque::new());
        let fetch: Vec<MessageMeta> = (1..=1200).map(|u| meta(u, 10)).collect();
        let split = Split::new(&folder(), 7, None, fetch, Some(&board));
        let offered = board.offer(&split);
        let mut t = split.take(true).expect("a part for a helper");
        assert_eq!(t.part.len(), PART_MESSAGES);
        t.handled.extend(1..=200);
        t.got.new_messages = 200;
        drop(t);
        // Back at the front, without the 200 stored.
        let mine = split.take(false).expect("the part again");
        assert_eq!(mine.part.first().map(|m| m.uid), Some(201));
        assert_eq!(mine.part.len(), 300);
        assert!(!split.idle());
        mine.finish();
        assert!(split.idle());
        let mut out = FolderOutcome::default();
        let mut missing = Vec::new();
        assert_eq!(split.account_to(&mut out, &mut missing), 0);
        assert_eq!(out.new_messages, 200);
        // Closed to helpers once the owner lets go; the owner still takes.
        drop(offered);
        assert!(split.take(true).is_none());
        split.take(false).expect("the owner's part").finish();
        split.take(false).expect("the last part").finish();
        assert!(split.take(false).is_none());
        assert!(split.idle());
    }

    #[test]
    fn the_board_hands_out_folders_then_help_then_done() {
        let board = Board::new(VecDeque::from(vec![folder()]));
        let none = HashSet::new();
        assert!(matches!(board.next(&none), Work::Folder(_)));
        assert!(matches!(board.next(&none), Work::Wait));
        let fetch: Vec<MessageMeta> = (1..=1000).map(|u| meta(u, 10)).collect();
        let split = Split::new(&folder(), 7, None, fetch, Some(&board));
        let offered = board.offer(&split);
        assert!(matches!(board.next(&none), Work::Help(_)));
        let refused: HashSet<u64> = [split.serial()].into();
        assert!(matches!(board.next(&refused), Work::Wait));
        drop(offered);
        assert!(matches!(board.next(&none), Work::Wait));
        board.folder_done();
        assert!(matches!(board.next(&none), Work::Done));
    }
}

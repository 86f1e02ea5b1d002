//! Progress bars on a terminal; nothing at all otherwise.
//!
//! A backup shows, per account, an overall bar and one bar per folder being
//! fetched, each with messages and bytes done of the total planned so far
//! (the same numbers the summary line says at the end, with or without a
//! terminal). The time left is the bytes still to come at the average rate
//! since the bar started: it does not swing with each message, as an
//! estimate over the last few seconds does. The layout follows the
//! terminal's width (a narrow one gets fewer columns, never a wrapped
//! line), and every bar is taken off the terminal on any way out
//! ([`clear_all`]).

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::fmt::human_bytes;
use crate::sync::exec::{FolderOutcome, Progress};

/// Every set of bars drawn, so that any way out of the process
/// ([`clear_all`]) takes them off the terminal.
static DRAWN: Mutex<Vec<MultiProgress>> = Mutex::new(Vec::new());

/// A new set of bars on stderr, remembered for [`clear_all`].
pub fn multi() -> MultiProgress {
    let m = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    DRAWN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(m.clone());
    m
}

/// Takes every bar off the terminal (before the process ends).
pub fn clear_all() {
    for m in DRAWN.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = m.clear();
    }
}

/// Columns of the terminal on stderr (80 when it cannot be told).
pub fn width() -> usize {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize we own; fd 2 may be anything.
    let rc = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) };
    if rc == 0 && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        80
    }
}

/// Time left at the average rate since the bar started: `~12 s`, `~3 min`.
fn steady_eta(s: &ProgressState, w: &mut dyn std::fmt::Write) {
    let (pos, len) = (s.pos(), s.len().unwrap_or(0));
    let secs = s.elapsed().as_secs_f64();
    if pos == 0 || len <= pos || secs < 1.0 {
        let _ = w.write_str("");
        return;
    }
    let left = secs * (len - pos) as f64 / pos as f64;
    let _ = w.write_str(&eta_text(left));
}

/// `~12 s`, `~3 min`, `~2 h 5 min`.
pub fn eta_text(secs: f64) -> String {
    let s = secs.round() as u64;
    if s < 60 {
        format!("~{s} s")
    } else if s < 3600 {
        format!("~{} min", (s + 30) / 60)
    } else {
        format!("~{} h {} min", s / 3600, (s % 3600) / 60)
    }
}

/// Bytes done of the total, in the units of every summary line.
fn bytes_done(s: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(
        w,
        "{}/{}",
        human_bytes(s.pos()),
        human_bytes(s.len().unwrap_or(0))
    );
}

/// The style of a bar over bytes for a terminal `cols` wide: the name
/// (`{prefix}`) and the counts (`{msg}`) first, cut to fit; the bar itself
/// only where there is room.
fn bytes_style(cols: usize) -> ProgressStyle {
    // Each layout takes at most cols - 1 columns with a time left of up to
    // 10 (`~2 h 5 min`): a line that ends in the last column wraps on some
    // terminals.
    let template = if cols >= 120 {
        "{prefix:32!} {msg:32!} [{bar:20}] {bytes_done:19} {steady_eta}"
    } else if cols >= 100 {
        "{prefix:32!} {msg:32!} {bytes_done:19} {steady_eta}"
    } else if cols >= 80 {
        "{prefix:24!} {msg:22!} {bytes_done:19} {steady_eta}"
    } else if cols >= 60 {
        "{prefix:22!} {msg:24!} {steady_eta}"
    } else if cols >= 45 {
        "{prefix:16!} {msg:16!} {steady_eta}"
    } else {
        "{prefix:12!} {percent:>3}% {steady_eta}"
    };
    ProgressStyle::with_template(template)
        .expect("valid template")
        .with_key("steady_eta", steady_eta)
        .with_key("bytes_done", bytes_done)
        .progress_chars("=> ")
}

/// A bar over bytes (verify, repair, import, restore), in decimal units
/// like every summary line.
pub fn bytes_bar(bar: ProgressBar, message: String) -> ProgressBar {
    bar.set_style(bytes_style(width()));
    bar.set_prefix(message);
    bar
}

/// Messages done of the total: `120/300 msgs`.
fn messages_text(done: u64, total: u64) -> String {
    format!("{done}/{total} msgs")
}

/// One folder being fetched.
struct FolderBar {
    bar: ProgressBar,
    messages: u64,
    done: u64,
}

/// An account's overall bar: everything planned so far, and done.
struct AccountBar {
    bar: ProgressBar,
    messages: u64,
    done: u64,
    folders_done: u64,
}

#[derive(Default)]
struct State {
    accounts: HashMap<String, AccountBar>,
    folders: HashMap<String, FolderBar>,
    other: HashMap<String, ProgressBar>,
}

pub struct Bars {
    multi: Option<MultiProgress>,
    state: Mutex<State>,
}

impl Bars {
    pub fn new(enabled: bool) -> Bars {
        Bars {
            multi: enabled.then(multi),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn clear(&self) {
        let mut st = self.state();
        for (_, b) in st.folders.drain() {
            b.bar.finish_and_clear();
        }
        for (_, b) in st.accounts.drain() {
            b.bar.finish_and_clear();
        }
        for (_, b) in st.other.drain() {
            b.finish_and_clear();
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }

    /// A bar over `total` items, for verify and export.
    pub fn counter(&self, total: u64, what: &str) -> Option<ProgressBar> {
        let m = self.multi.as_ref()?;
        let b = m.add(ProgressBar::new(total));
        let template = if width() >= 70 {
            "{prefix:20!} [{bar:30}] {pos}/{len} {steady_eta}"
        } else {
            "{prefix:14!} {pos}/{len} {steady_eta}"
        };
        b.set_style(
            ProgressStyle::with_template(template)
                .expect("valid template")
                .with_key("steady_eta", steady_eta)
                .progress_chars("=> "),
        );
        b.set_prefix(what.to_string());
        Some(b)
    }

    /// The overall bar of `account`, made on first use (above its folders).
    fn account<'s>(&self, st: &'s mut State, account: &str) -> Option<&'s mut AccountBar> {
        let m = self.multi.as_ref()?;
        if !st.accounts.contains_key(account) {
            let bar = bytes_bar(m.insert(0, ProgressBar::new(0)), format!("{account}: all"));
            st.accounts.insert(
                account.to_string(),
                AccountBar {
                    bar,
                    messages: 0,
                    done: 0,
                    folders_done: 0,
                },
            );
        }
        st.accounts.get_mut(account)
    }
}

fn key(account: &str, folder: &str) -> String {
    format!("{account}\0{folder}")
}

fn overall_message(a: &AccountBar) -> String {
    format!(
        "{}, {} folders done",
        messages_text(a.done, a.messages),
        a.folders_done
    )
}

impl Progress for Bars {
    fn folder_planned(&self, account: &str, folder: &str, messages: u64, bytes: u64) {
        let Some(m) = &self.multi else { return };
        let mut st = self.state();
        // Planned again after a reconnect: what is left, on top of what is done.
        let (done_msgs, done_bytes, old_msgs, old_bytes) =
            match st.folders.remove(&key(account, folder)) {
                Some(f) => {
                    let out = (
                        f.done,
                        f.bar.position(),
                        f.messages,
                        f.bar.length().unwrap_or(0),
                    );
                    f.bar.finish_and_clear();
                    out
                }
                None => (0, 0, 0, 0),
            };
        if let Some(a) = self.account(&mut st, account) {
            a.messages = a.messages - old_msgs + done_msgs + messages;
            let len = a.bar.length().unwrap_or(0) - old_bytes + done_bytes + bytes;
            a.bar.set_length(len);
            a.bar.set_message(overall_message(a));
        }
        if messages == 0 {
            return;
        }
        let bar = bytes_bar(
            m.add(ProgressBar::new(done_bytes + bytes)),
            format!("{account}: {folder}"),
        );
        bar.set_position(done_bytes);
        bar.set_message(messages_text(done_msgs, done_msgs + messages));
        st.folders.insert(
            key(account, folder),
            FolderBar {
                bar,
                messages: done_msgs + messages,
                done: done_msgs,
            },
        );
    }

    fn fetched(&self, account: &str, folder: &str, messages: u64, bytes: u64) {
        if self.multi.is_none() {
            return;
        }
        let mut st = self.state();
        if let Some(f) = st.folders.get_mut(&key(account, folder)) {
            f.done += messages;
            f.bar.inc(bytes);
            f.bar.set_message(messages_text(f.done, f.messages));
        }
        if let Some(a) = st.accounts.get_mut(account) {
            a.done += messages;
            a.bar.inc(bytes);
            a.bar.set_message(overall_message(a));
        }
    }

    fn indexing(&self, account: &str, done: u64, total: u64) {
        let key = format!("{account}\0search");
        let mut st = self.state();
        if !st.other.contains_key(&key) {
            let Some(b) = self.counter(total, &format!("{account}: search index")) else {
                return;
            };
            st.other.insert(key.clone(), b);
        }
        if let Some(b) = st.other.get(&key) {
            b.set_length(total);
            b.set_position(done);
        }
    }

    fn folder_done(&self, account: &str, outcome: &FolderOutcome) {
        if self.multi.is_none() {
            return;
        }
        let mut st = self.state();
        if let Some(f) = st.folders.remove(&key(account, &outcome.folder)) {
            f.bar.finish_and_clear();
        }
        if let Some(a) = self.account(&mut st, account) {
            a.folders_done += 1;
            a.bar.set_message(overall_message(a));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_plainly() {
        assert_eq!(eta_text(12.4), "~12 s");
        assert_eq!(eta_text(170.0), "~3 min");
        assert_eq!(eta_text(7500.0), "~2 h 5 min");
    }

    /// Whatever the width, a bar is one line: cut, never wrapped.
    #[test]
    fn bars_fit_narrow_terminals() {
        use indicatif::InMemoryTerm;
        let mut drawn = String::new();
        for cols in [30u16, 45, 60, 79, 80, 100, 140] {
            let term = InMemoryTerm::new(6, cols);
            let bar = ProgressBar::with_draw_target(
                Some(12_100_000),
                ProgressDrawTarget::term_like(Box::new(term.clone())),
            );
            bar.set_style(bytes_style(cols as usize));
            bar.set_prefix("work: Archives/2019/Projects/受信トレイ/very long name");
            bar.set_message(messages_text(1234, 56789));
            bar.set_position(5_000_000);
            bar.force_draw();
            let shown = term.contents();
            let lines: Vec<&str> = shown.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "{cols} columns: {shown:?}");
            assert!(lines[0].starts_with("work: "), "{cols} columns: {shown:?}");
            if cols >= 80 {
                assert!(lines[0].contains("1234/56789 msgs"), "{cols}: {shown:?}");
                assert!(lines[0].contains("5.0 MB/12.1 MB"), "{cols}: {shown:?}");
            }
            drawn.push_str(&format!("{cols:>3} |{}|\n", lines[0].trim_end()));
        }
        // What each width shows, as a user sees it.
        insta::assert_snapshot!("progress_by_width", drawn);
    }
}

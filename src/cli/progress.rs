//! Progress bars on a terminal; nothing at all otherwise.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

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

pub struct Bars {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new(enabled: bool) -> Bars {
        Bars {
            multi: enabled.then(multi),
            bars: Mutex::new(HashMap::new()),
        }
    }

    pub fn clear(&self) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        for (_, b) in bars.drain() {
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
        b.set_style(
            ProgressStyle::with_template("{msg:20} [{bar:30}] {pos}/{len} {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b.set_message(what.to_string());
        Some(b)
    }
}

/// A bar over bytes, in decimal units like every summary line.
pub fn bytes_bar(bar: ProgressBar, message: String) -> ProgressBar {
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:30!} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

impl Progress for Bars {
    fn folder_planned(&self, account: &str, folder: &str, messages: u64, bytes: u64) {
        let Some(m) = &self.multi else { return };
        if messages == 0 {
            return;
        }
        let b = bytes_bar(
            m.add(ProgressBar::new(bytes)),
            format!("{account}: {folder}"),
        );
        self.bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(format!("{account}\0{folder}"), b);
    }

    fn fetched(&self, account: &str, folder: &str, _messages: u64, bytes: u64) {
        if let Some(b) = self
            .bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&format!("{account}\0{folder}"))
        {
            b.inc(bytes);
        }
    }

    fn indexing(&self, account: &str, done: u64, total: u64) {
        let key = format!("{account}\0search");
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        if !bars.contains_key(&key) {
            let Some(b) = self.counter(total, &format!("{account}: indexing for search")) else {
                return;
            };
            bars.insert(key.clone(), b);
        }
        if let Some(b) = bars.get(&key) {
            b.set_length(total);
            b.set_position(done);
        }
    }

    fn folder_done(&self, account: &str, outcome: &FolderOutcome) {
        if let Some(b) = self
            .bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&format!("{account}\0{}", outcome.folder))
        {
            b.finish_and_clear();
        }
    }
}

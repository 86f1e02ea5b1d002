//! `mailkeep restore TARGET [--from ACCOUNT] [--folder P]… [--to-folder F]
//! [--since D] [--before D] [--archived-only] [--dry-run] [--jobs N]`

use super::out::{errln, out, outln};
use std::collections::HashMap;
use std::sync::Mutex;

use chrono::NaiveDate;
use indicatif::{MultiProgress, ProgressBar};

use crate::ops::restore::{
    plan::{FolderRules, Selection, ToFolder},
    restore, FolderReport, RestoreOptions, RestoreProgress, RestoreReport,
};
use crate::ops::OpError;
use crate::store::StoreError;

use super::fmt::{human_bytes, restore_summary};
use super::Globals;

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The account to restore to (a name from the config file).
    #[arg(value_name = "ACCOUNT")]
    target: String,
    /// Whose stored mail to restore (any account the store holds, imported
    /// ones too) [default: ACCOUNT].
    #[arg(long, value_name = "ACCOUNT")]
    from: Option<String>,
    /// Only source folders matching this pattern (`*` matches anything); may repeat.
    #[arg(long, value_name = "PATTERN")]
    folder: Vec<String>,
    /// Where on the target, with `/` between levels: `Restored/` puts the
    /// folders below `Restored`; without the final `/`, everything goes into
    /// that one folder.
    #[arg(long, value_name = "FOLDER")]
    to_folder: Option<String>,
    /// Only messages whose INTERNALDATE is on or after this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    since: Option<NaiveDate>,
    /// Only messages whose INTERNALDATE is before this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    before: Option<NaiveDate>,
    /// Only messages that `archive` removed from the server.
    #[arg(long)]
    archived_only: bool,
    /// Show per folder what would be appended; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Folders restored at once, each on its own connection.
    #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    jobs: u16,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date; write it as YYYY-MM-DD, e.g. 2019-01-01"))
}

pub async fn run(g: &Globals, args: RestoreArgs) -> Result<i32, OpError> {
    let config = g.load_config()?;
    if !config.exists() {
        return Err(OpError::usage(
            format!("no configuration file at `{}`", g.config_path.display()),
            Some("add the target account with `mailkeep account add NAME --host HOST --user USER`, or pass `--config FILE`"),
        ));
    }
    config.account(&args.target)?;
    let to_folder = match &args.to_folder {
        None => None,
        Some(s) => Some(ToFolder::parse(s).ok_or_else(|| {
            OpError::usage(
                format!("`--to-folder {s}` names no folder"),
                Some("give a folder name, e.g. `--to-folder Restored/`"),
            )
        })?),
    };
    if let (Some(s), Some(b)) = (args.since, args.before) {
        if s >= b {
            return Err(OpError::usage(
                format!("`--since {s}` is not before `--before {b}`: nothing would be restored"),
                Some("`--since` is the first day included, `--before` the first day left out"),
            ));
        }
    }
    let store = if args.dry_run {
        crate::store::SharedStore::new(g.store_to_read()?)
    } else {
        if !g.store_path.join("index.sqlite").exists() {
            return Err(StoreError::Missing(g.store_path.clone()).into());
        }
        crate::store::SharedStore::new(g.store_to_write()?)
    };
    let opts = RestoreOptions {
        target: args.target.clone(),
        from: args.from.clone(),
        selection: Selection {
            folders: args.folder.clone(),
            since: args.since,
            before: args.before,
            archived_only: args.archived_only,
            current_only: false,
        },
        rules: FolderRules {
            to_folder,
            ..FolderRules::default()
        },
        dry_run: args.dry_run,
        jobs: args.jobs as usize,
        retries: 3,
        sync_flags: false,
    };
    let bars = RestoreBars::new(g.progress);
    let report = restore(&config, &store, &opts, &bars).await;
    bars.clear();
    let report = report?;
    print_report(&report, g.quiet);
    Ok(if report.ok() { 0 } else { 1 })
}

/// The summary table to stdout; refused messages and failed folders to stderr.
fn print_report(r: &RestoreReport, quiet: bool) {
    outln!("{}", restore_summary(r));
    if !quiet {
        out!("{}", table(r));
    }
    print_problems(r);
}

/// Renamed folders, refused messages and failed folders, to stderr.
pub fn print_problems(r: &RestoreReport) {
    for f in &r.folders {
        if f.renamed {
            errln!(
                "note: `{}` is named `{}` on the target: the target's hierarchy separator inside a folder name became `_`",
                f.sources.join("`, `"),
                f.target
            );
        }
        for m in &f.refused {
            errln!(
                "refused: folder `{}`, {}, subject {:?}: {}",
                m.folder,
                m.date,
                m.subject,
                m.reason
            );
        }
        for e in &f.flag_errors {
            errln!(
                "error: folder `{}`: the target refused a flag change: {e}",
                f.target
            );
        }
        if let Some(e) = &f.error {
            errln!(
                "error: folder `{}` failed ({} messages not restored): {e}",
                f.target,
                f.not_done()
            );
        }
    }
    let refused: usize = r.folders.iter().map(|f| f.refused.len()).sum();
    if refused > 0 {
        errln!(
            "hint: the target refused {refused} messages; they are still in the store (export them with `mailkeep export`)"
        );
    }
    if r.folders.iter().any(|f| f.error.is_some()) {
        errln!(
            "hint: run the same command again: what is already on the target is not appended twice"
        );
    }
}

fn table(r: &RestoreReport) -> String {
    let verb = if r.dry_run {
        "would append"
    } else {
        "appended"
    };
    let rows: Vec<Vec<String>> = r
        .folders
        .iter()
        .map(|f: &FolderReport| {
            let mut name = f.target.clone();
            if f.created {
                name.push_str(if r.dry_run { " (new)" } else { " (created)" });
            }
            vec![
                name,
                f.in_store.to_string(),
                human_bytes(f.bytes),
                f.appended.to_string(),
                f.already_there.to_string(),
                f.converted.to_string(),
                f.refused.len().to_string(),
            ]
        })
        .collect();
    let head = [
        "folder",
        "in store",
        "size",
        verb,
        "already there",
        "converted",
        "refused",
    ];
    super::render_table(&head, &rows, 1)
}

/// One bar per folder being restored, on a terminal only.
pub(super) struct RestoreBars {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl RestoreBars {
    pub(super) fn new(enabled: bool) -> RestoreBars {
        RestoreBars {
            multi: enabled.then(super::progress::multi),
            bars: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn clear(&self) {
        for (_, b) in self.bars.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            b.finish_and_clear();
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

impl RestoreProgress for RestoreBars {
    fn folder_started(&self, folder: &str, messages: u64, bytes: u64) {
        let Some(m) = &self.multi else { return };
        if messages == 0 {
            return;
        }
        let b = super::progress::bytes_bar(m.add(ProgressBar::new(bytes)), folder.to_string());
        self.bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(folder.to_string(), b);
    }

    fn message_done(&self, folder: &str, bytes: u64) {
        if let Some(b) = self
            .bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(folder)
        {
            b.inc(bytes);
        }
    }

    fn folder_done(&self, folder: &str) {
        if let Some(b) = self
            .bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(folder)
        {
            b.finish_and_clear();
        }
    }
}

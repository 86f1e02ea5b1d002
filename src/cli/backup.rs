//! `mailkeep backup [ACCOUNT…] [--all]`

use super::out::{errln, outln};
use crate::ops::backup::{backup_account, BackupOptions};
use crate::ops::{FailureKind, OpError};
use crate::store::SharedStore;
use crate::sync::exec::SyncOptions;

use super::fmt::{backup_summary, human_bytes};
use super::progress::Bars;
use super::{report_account_error, Globals};

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// Accounts to back up (names from the config file).
    #[arg(
        value_name = "ACCOUNT",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    accounts: Vec<String>,
    /// Back up every configured account.
    #[arg(long)]
    all: bool,
    /// Connections at once: each backs up a folder, then helps with big ones.
    #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    jobs: u16,
    /// Only folders matching this pattern (`*` matches anything); may repeat.
    #[arg(long, value_name = "PATTERN")]
    folder: Vec<String>,
    /// Show what would be fetched; change nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(g: &Globals, args: BackupArgs) -> Result<i32, OpError> {
    let config = g.load_config()?;
    let names = g.account_names(&config, args.all, &args.accounts)?;
    let store: Option<SharedStore> = if args.dry_run {
        g.store_if_any()?.map(SharedStore::new)
    } else {
        Some(SharedStore::new(g.store_to_write()?))
    };
    let mut sync = SyncOptions::new(g.store_path.join("tmp"));
    sync.dry_run = args.dry_run;
    let opts = BackupOptions {
        jobs: args.jobs as usize,
        dry_run: args.dry_run,
        folders: args.folder.clone(),
        retries: 3,
        sync,
        interrupt: g.interrupt.clone(),
        describe: backup_summary,
    };
    let bars = Bars::new(g.progress);
    let mut kinds = Vec::new();
    for name in &names {
        if g.interrupt.is_raised() {
            break;
        }
        let report = backup_account(&config, name, store.as_ref(), &opts, &bars).await;
        bars.clear();
        if args.dry_run && !g.quiet {
            for f in &report.folders {
                if f.error.is_none() && (f.new_messages > 0 || f.flag_updates > 0 || f.gone > 0) {
                    outln!(
                        "{name}: {}: would fetch {} ({}), {} flag changes, {} gone",
                        f.folder,
                        f.new_messages,
                        human_bytes(f.new_bytes),
                        f.flag_updates,
                        f.gone
                    );
                }
            }
        }
        let failed: Vec<_> = report
            .failed_folders()
            .filter(|f| !(report.interrupted && f.error.as_deref() == Some("interrupted")))
            .collect();
        for f in &failed {
            errln!(
                "error: folder `{}` of account `{name}` failed: {}",
                f.folder,
                f.error.as_deref().unwrap_or("")
            );
        }
        match &report.error {
            Some(e) => {
                report_account_error(name, names.len() > 1, e);
                kinds.push(Some(account_failure(args.all, e)));
            }
            None => {
                outln!("{}", backup_summary(&report));
                kinds.push((!failed.is_empty()).then_some(FailureKind::Partial));
            }
        }
        if !failed.is_empty() && report.error.is_none() {
            errln!("hint: the other folders were backed up; run the same command again to retry the failed ones");
        }
        if let Some(e) = &report.search_error {
            errln!(
                "error: the mail of `{name}` was backed up, but the search index was not updated: {}",
                super::error_chain(e)
            );
            errln!("hint: run `mailkeep reindex` to rebuild the search index");
            kinds.push(Some(e.kind()));
        }
        if report.interrupted {
            break;
        }
    }
    if let Some(code) = g.interrupt.exit_code() {
        bars.clear();
        errln!("{}", super::INTERRUPTED);
        return Ok(code);
    }
    Ok(super::combine(kinds))
}

/// With `--all`, an account that its configuration makes unusable is named
/// and the others are done: partly done (1), not a usage error.
pub fn account_failure(all: bool, e: &OpError) -> FailureKind {
    match e {
        OpError::Config(_) if all => FailureKind::Partial,
        _ => e.kind(),
    }
}

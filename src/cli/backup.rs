//! `mailkeep backup [ACCOUNT…] [--all]`

use crate::ops::backup::{backup_account, summary_line, BackupOptions};
use crate::ops::{FailureKind, OpError};
use crate::sync::exec::{SharedStore, SyncOptions};

use super::progress::Bars;
use super::{report_error, Globals};

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
    /// Folders backed up at once, each on its own connection.
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
        g.store_if_any()?.map(crate::ops::share)
    } else {
        Some(crate::ops::share(g.store_to_write()?))
    };
    let mut sync = SyncOptions::new(g.store_path.join("tmp"));
    sync.dry_run = args.dry_run;
    let opts = BackupOptions {
        jobs: args.jobs as usize,
        dry_run: args.dry_run,
        folders: args.folder.clone(),
        retries: 3,
        sync,
    };
    let bars = Bars::new(g.progress);
    let mut kinds = Vec::new();
    for name in &names {
        let report = backup_account(&config, name, store.as_ref(), &opts, &bars).await;
        bars.clear();
        let indexed = match (&store, args.dry_run) {
            (Some(s), false) => index_for_search(s, &bars).await,
            _ => Ok(()),
        };
        bars.clear();
        if args.dry_run && !g.quiet {
            for f in &report.folders {
                if f.error.is_none() && (f.new_messages > 0 || f.flag_updates > 0 || f.gone > 0) {
                    println!(
                        "{name}: {}: would fetch {} ({}), {} flag changes, {} gone",
                        f.folder,
                        f.new_messages,
                        crate::ops::human_bytes(f.new_bytes),
                        f.flag_updates,
                        f.gone
                    );
                }
            }
        }
        for f in report.failed_folders() {
            eprintln!(
                "error: folder `{}` of account `{name}` failed: {}",
                f.folder,
                f.error.as_deref().unwrap_or("")
            );
        }
        match &report.error {
            Some(e) => {
                report_error(e);
                kinds.push(Some(e.kind()));
            }
            None => {
                println!("{}", summary_line(&report));
                kinds.push(report.failed_folders().next().map(|_| FailureKind::Partial));
            }
        }
        if report.failed_folders().next().is_some() && report.error.is_none() {
            eprintln!("hint: the other folders were backed up; run the same command again to retry the failed ones");
        }
        if let Err(e) = indexed {
            eprintln!(
                "error: the mail of `{name}` was backed up, but the search index was not updated: {}",
                crate::ops::backup::error_chain(&e)
            );
            eprintln!("hint: run `mailkeep reindex` to rebuild the search index");
            kinds.push(Some(e.kind()));
        }
    }
    Ok(super::combine(kinds))
}

/// Adds what the backup stored to the search index, off the async threads.
async fn index_for_search(store: &SharedStore, bars: &Bars) -> Result<(), OpError> {
    let store = store.clone();
    let bar = bars.counter(0, "indexing for search");
    tokio::task::spawn_blocking(move || {
        let mut s = store.lock().unwrap_or_else(|p| p.into_inner());
        crate::ops::search::index_pending(&mut s, &mut |done, total| {
            if let Some(b) = &bar {
                b.set_length(total);
                b.set_position(done);
            }
        })
        .map(|_| ())
    })
    .await
    .expect("search indexing task panicked")
}

//! `mailkeep archive ACCOUNT (--older-than AGE | --before DATE | --until-below PCT) …`

use super::out::{errln, outln};
use crate::ops::archive::select::{parse_date, parse_percent, Age};
use crate::ops::archive::{archive_account, ArchiveOptions};
use crate::ops::{FailureKind, OpError};
use crate::store::now;
use crate::store::SharedStore;
use crate::sync::exec::SyncOptions;

use super::fmt::{archive_summary, human_bytes};
use super::progress::Bars;
use super::Globals;

#[derive(clap::Args, Debug)]
pub struct ArchiveArgs {
    /// The account to free space on (a name from the config file).
    #[arg(value_name = "ACCOUNT")]
    account: String,
    /// Messages received longer ago than this: `2y`, `18m`, `6w`, `90d`.
    #[arg(long, value_name = "AGE", conflicts_with = "before")]
    older_than: Option<String>,
    /// Messages received before this day (`YYYY-MM-DD`, local time).
    #[arg(long, value_name = "DATE")]
    before: Option<String>,
    /// Oldest first until the quota usage is below this percentage (`70%`);
    /// with `--older-than`/`--before`, only among those messages.
    #[arg(long, value_name = "PERCENT")]
    until_below: Option<String>,
    /// Only folders matching this pattern (`*` matches anything); may repeat.
    #[arg(long, value_name = "PATTERN")]
    folder: Vec<String>,
    /// Never folders matching this pattern; may repeat.
    #[arg(long, value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Also archive from the drafts folder (left alone by default).
    #[arg(long)]
    include_drafts: bool,
    /// Show per folder what would be archived and the quota after; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Messages removed per STORE/EXPUNGE round trip.
    #[arg(long, default_value_t = 500, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=5000))]
    batch: u32,
}

fn bad(flag: &str, e: String) -> OpError {
    OpError::usage(
        format!("invalid value for `--{flag}`: {e}"),
        Some("see `mailkeep archive --help`"),
    )
}

pub async fn run(g: &Globals, args: ArchiveArgs) -> Result<i32, OpError> {
    let config = g.load_config()?;
    config.account(&args.account)?;
    let before = match (&args.older_than, &args.before) {
        (Some(a), _) => Some(
            Age::parse(a)
                .map_err(|e| bad("older-than", e))?
                .before(now()),
        ),
        (None, Some(d)) => Some(parse_date(d).map_err(|e| bad("before", e))?),
        (None, None) => None,
    };
    let until_below = match &args.until_below {
        Some(p) => Some(parse_percent(p).map_err(|e| bad("until-below", e))?),
        None => None,
    };
    if before.is_none() && until_below.is_none() {
        return Err(OpError::usage(
            "say which mail to archive",
            Some("give `--older-than 2y`, `--before 2022-01-01` or `--until-below 70%`; add `--dry-run` to see the plan first"),
        ));
    }
    let store: Option<SharedStore> = if args.dry_run {
        g.store_if_any()?.map(SharedStore::new)
    } else {
        Some(SharedStore::new(g.store_to_write()?))
    };
    let mut sync = SyncOptions::new(g.store_path.join("tmp"));
    sync.dry_run = args.dry_run;
    let opts = ArchiveOptions {
        before,
        until_below,
        folders: args.folder.clone(),
        exclude: args.exclude.clone(),
        include_drafts: args.include_drafts,
        dry_run: args.dry_run,
        batch: args.batch as usize,
        sync,
    };
    let bars = Bars::new(g.progress);
    let report = archive_account(&config, &args.account, store.as_ref(), &opts, &bars).await;
    bars.clear();
    let report = report?;
    let name = &report.account;

    for w in &report.resumed.warnings {
        errln!("warning: {w}");
    }
    for e in &report.resumed.errors {
        errln!("error: finishing an interrupted archive of `{name}`: {e}");
    }
    if report.pending_intents > 0 {
        errln!(
            "note: an interrupted archive left {} messages of `{name}` half done; the next real run finishes them first",
            report.pending_intents
        );
    }
    if !report.not_backed_up.is_empty() && !g.quiet {
        errln!(
            "note: the store holds nothing yet of {} folders of `{name}` (`{}`); a dry run plans only from mail already backed up",
            report.not_backed_up.len(),
            report.not_backed_up.join("`, `")
        );
        errln!("hint: run `mailkeep backup {name}` first to see the whole plan");
    }
    if !args.folder.is_empty() && !report.skipped_drafts.is_empty() && !g.quiet {
        errln!(
            "note: left the drafts folder `{}` alone; add `--include-drafts` to archive from it",
            report.skipped_drafts.join("`, `")
        );
    }
    if !g.quiet {
        for f in &report.folders {
            let (n, b) = if report.dry_run {
                (f.planned, f.planned_bytes)
            } else {
                (f.archived, f.archived_bytes)
            };
            if n == 0 {
                continue;
            }
            let verb = if report.dry_run {
                "would archive"
            } else {
                "archived"
            };
            outln!(
                "{name}: {}: {verb} {n} messages ({})",
                f.folder,
                human_bytes(b)
            );
        }
    }
    for f in report.failed_folders() {
        errln!(
            "error: folder `{}` of account `{name}` failed: {}",
            f.folder,
            f.error.as_deref().unwrap_or("")
        );
    }
    outln!("{}", archive_summary(&report));
    if let (Some(t), Some(q), false) = (report.target_percent, &report.quota_after, report.dry_run)
    {
        let above = q
            .iter()
            .filter_map(|r| r.storage.and_then(|s| s.percent()))
            .any(|p| p >= t);
        if above {
            errln!(
                "warning: the quota of `{name}` is still at or above {t}%: the selected folders hold no more mail that may be archived"
            );
            errln!("hint: widen the choice (`--folder`, `--exclude`, `--older-than`), or empty the trash");
        }
    }
    if !report.ok() {
        errln!("hint: nothing was removed from a failed folder that is not in the store; run the same command again to retry");
        return Ok(FailureKind::Partial.exit_code());
    }
    Ok(0)
}

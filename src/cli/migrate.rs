//! `mailkeep migrate SOURCE TARGET [--dry-run] [--map OLD=NEW]…
//! [--exclude P]… [--folder P]… [--jobs N]`, and `--batch FILE [--shard K/N]`.

use crate::ops::migrate::{self, DryRun, MigrateOptions, MigrateReport};
use crate::ops::restore::plan::FolderRules;
use crate::ops::{FailureKind, OpError};

use crate::store::SharedStore;

use super::fmt::human_bytes;
use super::out::{errln, out, outln};

use super::progress::Bars;
use super::{report_error, Globals};

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The account to move from (a name from the config file).
    #[arg(value_name = "SOURCE", required_unless_present = "batch")]
    source: Option<String>,
    /// The account to move to.
    #[arg(value_name = "TARGET", required_unless_present = "batch")]
    target: Option<String>,
    /// Show the folder map and the source's counts; write nothing anywhere.
    #[arg(long)]
    dry_run: bool,
    /// Put a source folder into a given target folder, `/` between levels:
    /// `--map 'Sent Messages=[Gmail]/Sent Mail'`. May repeat.
    #[arg(long, value_name = "OLD=NEW")]
    map: Vec<String>,
    /// Leave out source folders matching this pattern (`*` matches anything). May repeat.
    #[arg(long, value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Only source folders matching this pattern. May repeat.
    #[arg(long, value_name = "PATTERN")]
    folder: Vec<String>,
    /// Folders copied at once, each on its own connection. With `--batch`,
    /// mailboxes still go one after the other: run shards side by side
    /// (`--shard`) for more.
    #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    jobs: u16,
    /// Many mailboxes: a CSV file, one line per mailbox (see docs/migrate.md).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["source", "target"])]
    batch: Option<std::path::PathBuf>,
    /// With `--batch`: only the K-th of N equal shares of its lines (1-based),
    /// so that N jobs of a scheduler share one batch.
    #[arg(long, value_name = "K/N", requires = "batch", value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("`{s}` is not a shard; write K/N with 1 ≤ K ≤ N, e.g. 2/8");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

pub fn rules(map: &[String], exclude: &[String]) -> Result<FolderRules, OpError> {
    let mut maps = Vec::new();
    for m in map {
        maps.push(FolderRules::parse_map(m).ok_or_else(|| {
            OpError::usage(
                format!("`--map {m}` is not OLD=NEW"),
                Some("write the source folder, `=`, and the target folder: `--map 'Sent Messages=Sent'`"),
            )
        })?);
    }
    Ok(FolderRules {
        to_folder: None,
        maps,
        exclude: exclude.to_vec(),
    })
}

pub async fn run(g: &Globals, args: MigrateArgs) -> Result<i32, OpError> {
    if args.shard.is_some() && args.batch.is_none() {
        return Err(OpError::usage(
            "`--shard` shares out the lines of a batch: it needs `--batch FILE`",
            Some("`mailkeep migrate --batch office.csv --shard 2/8`"),
        ));
    }
    if let Some(file) = &args.batch {
        return super::migrate_batch::run(g, &args_for_batch(&args), file, args.shard).await;
    }
    let config = g.load_config()?;
    if !config.exists() {
        return Err(OpError::usage(
            format!("no configuration file at `{}`", g.config_path.display()),
            Some("add both accounts with `mailkeep account add NAME --host HOST --user USER`, or pass `--config FILE`"),
        ));
    }
    let (source, target) = (
        args.source.clone().unwrap_or_default(),
        args.target.clone().unwrap_or_default(),
    );
    let opts = MigrateOptions {
        source,
        target,
        folders: args.folder.clone(),
        rules: rules(&args.map, &args.exclude)?,
        jobs: args.jobs as usize,
        interrupt: g.interrupt.clone(),
        retries: 3,
        describe: super::fmt::backup_summary,
    };
    if args.dry_run {
        let plan = migrate::dry_run(&config, &opts).await?;
        print_dry_run(&opts, &plan);
        return Ok(0);
    }
    let store = SharedStore::new(g.store_to_write()?);
    let (code, _) = run_one(g, &config, &store, &opts, None).await;
    Ok(code)
}

/// What `--batch` needs of the command line.
pub struct BatchArgs {
    pub map: Vec<String>,
    pub exclude: Vec<String>,
    pub folder: Vec<String>,
    pub jobs: usize,
    pub dry_run: bool,
}

fn args_for_batch(a: &MigrateArgs) -> BatchArgs {
    BatchArgs {
        map: a.map.clone(),
        exclude: a.exclude.clone(),
        folder: a.folder.clone(),
        jobs: a.jobs as usize,
        dry_run: a.dry_run,
    }
}

/// Runs one migration and prints its report; the exit code and the summary
/// line. In a batch (`name`), the summary line starts with the mailbox's
/// name and the table is left out.
pub async fn run_one(
    g: &Globals,
    config: &crate::config::Config,
    store: &SharedStore,
    opts: &MigrateOptions,
    name: Option<&str>,
) -> (i32, String) {
    let bars = Bars::new(g.progress);
    let restore_bars = super::restore::RestoreBars::new(g.progress);
    let result = migrate::migrate(config, store, opts, &bars, &restore_bars).await;
    bars.clear();
    restore_bars.clear();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            report_error(&e);
            let line = format!(
                "migrate {} to {}: failed: {}",
                opts.source,
                opts.target,
                super::error_chain(&e)
            );
            return (super::combine(vec![Some(e.kind())]), line);
        }
    };
    if let Some(code) = g.interrupt.exit_code() {
        errln!("{}", super::INTERRUPTED);
        return (
            code,
            format!("migrate {} to {}: interrupted", opts.source, opts.target),
        );
    }
    let line = summary_line(&report);
    print_report(&report, name, g.quiet || name.is_some());
    let code = if let Some(e) = &report.backup.error {
        super::combine(vec![Some(e.kind())])
    } else if report.ok() {
        0
    } else {
        super::combine(vec![Some(FailureKind::Partial)])
    };
    (code, line)
}

pub fn summary_line(r: &MigrateReport) -> String {
    let head = format!("migrate {} to {}", r.source, r.target);
    if let Some(e) = &r.backup.error {
        return format!(
            "{head}: failed: the backup of `{}` failed: {}",
            r.source,
            super::error_chain(e)
        );
    }
    let Some(restore) = &r.restore else {
        return format!("{head}: stopped during the backup");
    };
    let sum = |f: fn(&migrate::Reconciled) -> u64| r.folders.iter().map(f).sum::<u64>();
    let appended: u64 = restore.folders.iter().map(|f| f.appended).sum();
    let bytes: u64 = restore.folders.iter().map(|f| f.appended_bytes).sum();
    let copied: u64 = restore.folders.iter().map(|f| f.copied).sum();
    let copied = if copied > 0 {
        format!(", {copied} copied on the server")
    } else {
        String::new()
    };
    let source: u64 = r.folders.iter().filter_map(|f| f.source).sum();
    let unmatched = r.folders.iter().filter(|f| !f.matches()).count();
    let (from, to) = (r.backup.total_pace(), restore.total_pace());
    let paced = format!(
        "{}{}",
        super::fmt::pace_phrase(from, "the source"),
        super::fmt::pace_phrase(to, "the target")
    );
    format!(
        "{head}: {} folder{}, {source} on source, {} stored, {} on target ({appended} appended, {}{copied}), {} left out, {} flag changes, {} refused{paced}, {unmatched} not matching in {:.1} s",
        r.folders.len(),
        if r.folders.len() == 1 { "" } else { "s" },
        sum(|f| f.stored),
        sum(|f| f.on_target),
        human_bytes(bytes),
        sum(|f| f.skipped),
        sum(|f| f.flags_changed),
        sum(|f| f.refused),
        r.elapsed.as_secs_f64()
    )
}

fn print_report(r: &MigrateReport, name: Option<&str>, quiet: bool) {
    if let Some(e) = &r.backup.error {
        report_error(e);
        return;
    }
    for f in r.backup.failed_folders() {
        errln!(
            "error: folder `{}` of `{}` could not be backed up: {}",
            f.folder,
            r.source,
            f.error.as_deref().unwrap_or("")
        );
    }
    match name {
        Some(n) => outln!("{n}: {}", summary_line(r)),
        None => outln!("{}", summary_line(r)),
    }
    if !quiet {
        let rows: Vec<Vec<String>> = r
            .folders
            .iter()
            .map(|f| {
                vec![
                    f.sources.join(", "),
                    f.target.clone(),
                    f.source.map_or("?".into(), |n| n.to_string()),
                    f.stored.to_string(),
                    f.on_target.to_string(),
                    f.skipped.to_string(),
                    f.refused.to_string(),
                    f.flags_changed.to_string(),
                    if f.matches() { "ok" } else { "NO" }.to_string(),
                ]
            })
            .collect();
        out!(
            "{}",
            super::render_table(
                &[
                    "source folder",
                    "target folder",
                    "source",
                    "stored",
                    "on target",
                    "left out",
                    "refused",
                    "flags",
                    "match"
                ],
                &rows,
                2
            )
        );
    }
    for s in &r.skipped {
        errln!(
            "note: `{}` ({} messages) is left out: {}",
            s.name,
            s.messages,
            s.reason
        );
    }
    if let Some(restore) = &r.restore {
        super::restore::print_problems(restore);
    }
    for f in &r.folders {
        if !f.matches() && f.error.is_none() && f.refused == 0 && f.flag_errors == 0 {
            errln!(
                "error: folder `{}`: {} on the source at the backup, {} stored, {} on the target, {} left out",
                f.target,
                f.source.map_or("?".into(), |n| n.to_string()),
                f.stored,
                f.on_target,
                f.skipped
            );
        }
    }
    if !r.ok() {
        errln!(
            "hint: run the same command again: what is already on the target is not copied twice"
        );
    }
}

fn print_dry_run(opts: &MigrateOptions, d: &DryRun) {
    outln!(
        "migrate {} to {} (dry run: nothing written): {} folders",
        opts.source,
        opts.target,
        d.folders.len()
    );
    let rows: Vec<Vec<String>> = d
        .folders
        .iter()
        .map(|f| {
            vec![
                f.source.clone(),
                format!("{}{}", f.target, if f.new { " (new)" } else { "" }),
                f.special_use.clone().unwrap_or_default(),
                f.messages.map_or("?".into(), |n| n.to_string()),
            ]
        })
        .collect();
    out!(
        "{}",
        super::render_table(
            &["source folder", "target folder", "use", "messages"],
            &rows,
            3
        )
    );
    for s in &d.skipped {
        outln!(
            "left out: `{}` ({} messages): {}",
            s.name,
            s.messages,
            s.reason
        );
    }
}

//! `mailkeep migrate SOURCE TARGET`: moves a whole mailbox to another
//! account through the store, so that a verified copy exists in between.
//!
//! 1. A backup of SOURCE into the store (incremental: a re-run fetches what
//!    is new and the flag changes).
//! 2. A restore of what SOURCE holds now (current folders, messages neither
//!    gone nor archived) to TARGET, through the folder map (special use,
//!    known names, `--map`, `--exclude`, Gmail's All Mail), every message
//!    read back from the store and checked against its hash on the way.
//!    Copies restored by an earlier run get the source's flag changes
//!    (`UID STORE` through the restore map); nothing is appended twice.
//! 3. Per folder, the counts reconciled: on the source at the backup, in
//!    the store, on the target, left out on purpose, refused. A folder whose
//!    counts do not add up makes the run fail.
//!
//! `--dry-run` does neither: it lists both servers' folders and prints the
//! folder map with the source's counts.

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::imap::decode_mailbox_name;
use crate::index::MailboxRow;
use crate::store::SharedStore;
use crate::sync::exec::{Progress, SyncOptions};

use super::backup::{backup_account, AccountReport, BackupOptions};
use super::interrupt::Interrupt;
use super::restore::plan::{self, FolderRules, Selection, SkippedFolder, TargetShape};
use super::restore::{restore, RestoreOptions, RestoreProgress, RestoreReport};
use super::{Login, OpError};

#[derive(Clone, Debug)]
pub struct MigrateOptions {
    pub source: String,
    pub target: String,
    /// `--folder`: only source folders matching one of these; empty: all.
    pub folders: Vec<String>,
    pub rules: FolderRules,
    pub jobs: usize,
    pub interrupt: Interrupt,
    /// Reconnect attempts per folder.
    pub retries: u32,
    /// How the backup is described in the store's record of runs.
    pub describe: fn(&AccountReport) -> String,
}

/// One row of the reconciliation table: a target folder and the source
/// folders that go into it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Reconciled {
    pub sources: Vec<String>,
    pub target: String,
    pub special_use: Option<String>,
    /// On the source at the backup (`None`: not known).
    pub source: Option<u64>,
    /// In the store, as the source holds them now.
    pub stored: u64,
    /// Of those, on the target: appended now or found there.
    pub on_target: u64,
    /// Left out because they come through another folder (Gmail's All Mail).
    pub skipped: u64,
    pub refused: u64,
    /// Flag changes carried over to copies restored before.
    pub flags_changed: u64,
    /// Flag changes the target refused (each named on stderr).
    pub flag_errors: u64,
    pub error: Option<String>,
}

impl Reconciled {
    /// Every message of the source is in the store, and every stored one on
    /// the target or left out on purpose.
    pub fn matches(&self) -> bool {
        self.error.is_none()
            && self.refused == 0
            && self.flag_errors == 0
            && self.source.is_none_or(|n| n == self.stored + self.skipped)
            && self.on_target == self.stored
    }
}

#[derive(Debug)]
pub struct MigrateReport {
    pub source: String,
    pub target: String,
    pub backup: AccountReport,
    /// `None` when the backup failed as a whole (nothing was restored).
    pub restore: Option<RestoreReport>,
    pub folders: Vec<Reconciled>,
    pub skipped: Vec<SkippedFolder>,
    pub elapsed: Duration,
}

impl MigrateReport {
    pub fn ok(&self) -> bool {
        self.backup.ok()
            && self.restore.as_ref().is_some_and(|r| r.ok())
            && self.folders.iter().all(Reconciled::matches)
    }
}

/// Backs SOURCE up, restores it to TARGET, reconciles.
pub async fn migrate(
    config: &Config,
    store: &SharedStore,
    opts: &MigrateOptions,
    backup_progress: &dyn Progress,
    restore_progress: &dyn RestoreProgress,
) -> Result<MigrateReport, OpError> {
    let started = Instant::now();
    config.account(&opts.source)?;
    config.account(&opts.target)?;
    if opts.source == opts.target {
        return Err(OpError::usage(
            format!("`{}` is both the source and the target", opts.source),
            Some("name two accounts: `mailkeep migrate OLD NEW`"),
        ));
    }
    let backup_opts = BackupOptions {
        jobs: opts.jobs,
        dry_run: false,
        folders: opts.folders.clone(),
        retries: opts.retries,
        sync: SyncOptions::new(store.run_here(|s| s.root().join("tmp"))),
        interrupt: opts.interrupt.clone(),
        describe: opts.describe,
    };
    let backup = backup_account(
        config,
        &opts.source,
        Some(store),
        &backup_opts,
        backup_progress,
    )
    .await;
    if backup.error.is_some() || backup.interrupted {
        return Ok(MigrateReport {
            source: opts.source.clone(),
            target: opts.target.clone(),
            backup,
            restore: None,
            folders: Vec::new(),
            skipped: Vec::new(),
            elapsed: started.elapsed(),
        });
    }
    let restore_opts = RestoreOptions {
        target: opts.target.clone(),
        from: Some(opts.source.clone()),
        selection: Selection {
            folders: opts.folders.clone(),
            current_only: true,
            ..Selection::default()
        },
        rules: opts.rules.clone(),
        dry_run: false,
        jobs: opts.jobs,
        retries: opts.retries,
        sync_flags: true,
    };
    let restored = restore(config, store, &restore_opts, restore_progress).await?;
    let folders = restored
        .folders
        .iter()
        .map(|f| Reconciled {
            sources: f.sources.clone(),
            target: f.target.clone(),
            special_use: f.special_use.clone(),
            source: f.source_count,
            stored: f.in_store,
            on_target: f.appended + f.already_there,
            skipped: f.skipped,
            refused: f.refused.len() as u64,
            flags_changed: f.flags_changed,
            flag_errors: f.flag_errors.len() as u64,
            error: f.error.clone(),
        })
        .collect();
    let skipped = restored.skipped.clone();
    Ok(MigrateReport {
        source: opts.source.clone(),
        target: opts.target.clone(),
        backup,
        restore: Some(restored),
        folders,
        skipped,
        elapsed: started.elapsed(),
    })
}

/// One row of the map `--dry-run` prints.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MappedFolder {
    pub source: String,
    pub special_use: Option<String>,
    /// Messages on the source now (STATUS or EXAMINE).
    pub messages: Option<u64>,
    pub target: String,
    /// The target has no folder of that name yet: it would be created.
    pub new: bool,
}

#[derive(Debug)]
pub struct DryRun {
    pub folders: Vec<MappedFolder>,
    pub skipped: Vec<SkippedFolder>,
}

/// The folder map, from both servers' folder lists; nothing is written
/// anywhere.
pub async fn dry_run(config: &Config, opts: &MigrateOptions) -> Result<DryRun, OpError> {
    let src_acct = config.account(&opts.source)?;
    let dst_acct = config.account(&opts.target)?;
    let mut src = Login::new(&opts.source, src_acct).connect().await?;
    let listed: Vec<(crate::model::Folder, Option<u64>)> = match src.list_with_status().await? {
        Some(v) => v
            .into_iter()
            .map(|(f, st)| (f, st.map(|s| s.exists as u64)))
            .collect(),
        None => {
            let mut out = Vec::new();
            for f in src.list().await? {
                let n = if f.selectable {
                    Some(src.examine(&f.raw).await?.exists as u64)
                } else {
                    None
                };
                out.push((f, n));
            }
            out
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), src.logout()).await;
    let mut dst = Login::new(&opts.target, dst_acct).connect().await?;
    let namespace = dst.namespace().await?;
    let target_listed = dst.list().await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), dst.logout()).await;
    let shape = TargetShape::from(namespace).with_special_use(&target_listed);

    // Each source folder as a store row would describe it (no messages: the
    // dry run names folders, their counts come from the server).
    let selectable: Vec<&(crate::model::Folder, Option<u64>)> = listed
        .iter()
        .filter(|(f, _)| f.selectable && src_acct.wants_folder(&f.display))
        .collect();
    let mailboxes: Vec<MailboxRow> = selectable
        .iter()
        .enumerate()
        .map(|(i, (f, n))| MailboxRow {
            id: i as i64,
            account: opts.source.clone(),
            raw_name: f.raw.clone(),
            name: f.display.clone(),
            delimiter: f.delimiter.map(String::from),
            special_use: f.special_use.clone(),
            uidvalidity: 1,
            uidnext: None,
            highestmodseq: None,
            server_count: n.map(|n| n as u32),
            is_current: true,
            last_sync_at: None,
            gone_at: None,
        })
        .collect();
    let all: Vec<(String, Option<String>)> = mailboxes
        .iter()
        .map(|m| (m.name.clone(), m.delimiter.clone()))
        .collect();
    let selection = Selection {
        folders: opts.folders.clone(),
        current_only: true,
        ..Selection::default()
    };
    let built = plan::build(
        &mailboxes,
        &all,
        &selection,
        &opts.rules,
        &shape,
        &mut std::collections::HashMap::new(),
    )?;
    let existing: std::collections::BTreeSet<String> = target_listed
        .iter()
        .map(|f| {
            if f.raw.eq_ignore_ascii_case("INBOX") {
                "INBOX".to_string()
            } else {
                f.raw.clone()
            }
        })
        .collect();
    let mut folders = Vec::new();
    for p in &built.folders {
        for source in &p.sources {
            let (f, n) = selectable
                .iter()
                .find(|(f, _)| &f.display == source)
                .map(|(f, n)| (f, *n))
                .expect("a planned folder was listed");
            let target_norm = if p.target_raw.eq_ignore_ascii_case("INBOX") {
                "INBOX".to_string()
            } else {
                p.target_raw.clone()
            };
            folders.push(MappedFolder {
                source: source.clone(),
                special_use: p.special_use.clone().or_else(|| f.special_use.clone()),
                messages: n,
                target: decode_mailbox_name(&p.target_raw),
                new: !existing.contains(&target_norm),
            });
        }
    }
    folders.sort_by(|a, b| a.source.cmp(&b.source));
    let mut skipped = built.skipped;
    for s in &mut skipped {
        s.messages = listed
            .iter()
            .find(|(f, _)| f.display == s.name)
            .and_then(|(_, n)| *n)
            .unwrap_or(0);
    }
    Ok(DryRun { folders, skipped })
}

//! Command line: clap types, one file per command, all printing and
//! progress bars. Uses: ops, config, and the types they return.
//!
//! Output rules: data and summaries to stdout, warnings and errors to
//! stderr; every error is `error: …` with its causes, then `hint: …` when
//! there is something to do; progress bars only on a terminal; `NO_COLOR`
//! respected (indicatif draws no colour when it is set).

mod account;
mod archive;
mod backup;
mod doctor;
mod export;
mod extras;
pub mod fmt;
mod import;
mod log;
mod migrate;
mod migrate_batch;
pub(crate) mod out;
mod progress;
mod providers;
mod quota;
mod repair;
mod restore;
mod search;
mod show;
mod status;
mod verify;

use std::io::IsTerminal;

use out::{err, errln};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::ops::interrupt::Interrupt;
use crate::ops::{FailureKind, OpError};
use crate::store::{Store, StoreError};
pub use fmt::{count, error_chain, human_bytes};

/// The heading of the options every command takes, below its own.
const GLOBAL: &str = "Global options";

#[derive(Parser, Debug)]
#[command(
    name = "mailkeep",
    version,
    about = "Keep your mail safe: back up IMAP accounts into a compressed local store.",
    long_about = None,
    after_help = "Exit codes: 0 done; 1 partly done (what failed is named); 2 usage or \
                  configuration; 3 authentication; 4 network or TLS; 5 store; \
                  6 store locked by another run; 130/143 stopped by Ctrl-C/SIGTERM (nothing lost); \
                  101 a bug in mailkeep (please report it).\n\
                  Shell completions: `mailkeep completions SHELL`; manual pages: `mailkeep man`."
)]
pub struct Cli {
    /// Configuration file [default: $MAILKEEP_CONFIG, else $XDG_CONFIG_HOME/mailkeep/config.toml]
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    config: Option<PathBuf>,
    /// Store directory [default: $MAILKEEP_STORE, else $XDG_DATA_HOME/mailkeep]
    #[arg(long, global = true, value_name = "DIR", help_heading = GLOBAL)]
    store: Option<PathBuf>,
    /// Print only errors and the summary.
    #[arg(long, short, global = true, help_heading = GLOBAL)]
    quiet: bool,
    /// Say on stderr what mailkeep does (-v), and how (-vv); `MAILKEEP_LOG`
    /// takes a filter instead (e.g. `mailkeep=debug`).
    #[arg(long, short, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    verbose: u8,
    /// Write the IMAP conversation to FILE (or stderr), for a bug report:
    /// passwords, tokens and the mail itself are left out.
    #[arg(long, global = true, value_name = "FILE", num_args = 0..=1, help_heading = GLOBAL,
          require_equals = true, default_missing_value = log::STDERR)]
    trace_imap: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Add, list or remove accounts, or store a password in the keyring.
    #[command(subcommand)]
    Account(account::AccountCmd),
    /// Copy new mail, flag changes and departures from the server into the store.
    Backup(backup::BackupArgs),
    /// Show what the store holds, per account and folder.
    Status(status::StatusArgs),
    /// Check the store (and optionally compare it with the server).
    Verify(verify::VerifyArgs),
    /// Write stored mail out as Maildir, mbox or .eml files.
    Export(export::ExportArgs),
    /// Put stored mail back on an IMAP account, never twice.
    Restore(restore::RestoreArgs),
    /// Move a whole mailbox to another account through the store; re-run until the switch.
    Migrate(migrate::MigrateArgs),
    /// Bring in mail from mbox files (Google Takeout too), a Maildir or .eml files.
    Import(import::ImportArgs),
    /// Show the server's quota: usage and limit per quota root.
    Quota(quota::QuotaArgs),
    /// Free server space: back up, verify, then remove old mail from the server (it stays in the store).
    Archive(archive::ArchiveArgs),
    /// Find stored mail: words, phrases, from:, subject:, before:, folder:, has:attachment ….
    Search(search::SearchArgs),
    /// Print one stored message (headers, text, attachments), or its exact bytes.
    Show(show::ShowArgs),
    /// Rebuild the search index from the stored messages.
    Reindex,
    /// Check an account step by step (DNS, TCP, TLS, login, folders, quota, store), or the config file.
    Doctor(doctor::DoctorArgs),
    /// List the provider presets (servers, login names, app passwords, OAuth2), or show one.
    Providers(providers::ProvidersArgs),
    /// Rebuild the store's index from its packs.
    Repair,
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(extras::CompletionsArgs),
    /// Print the manual page, or write one per command into a directory.
    Man(extras::ManArgs),
}

/// Resolved global settings.
pub struct Globals {
    pub config_path: PathBuf,
    /// Named by `--config` or `MAILKEEP_CONFIG`: then it must exist.
    pub config_given: bool,
    pub store_path: PathBuf,
    pub quiet: bool,
    pub progress: bool,
    /// Raised by SIGINT or SIGTERM.
    pub interrupt: Interrupt,
}

/// What a command stopped by SIGINT or SIGTERM says last, on stderr.
pub const INTERRUPTED: &str = "interrupted: nothing lost, run it again to resume";

impl Globals {
    /// The accounts a command names (or all of them with `--all`), each
    /// checked to be in the configuration.
    pub fn account_names(
        &self,
        config: &Config,
        all: bool,
        named: &[String],
    ) -> Result<Vec<String>, OpError> {
        if !config.exists() {
            return Err(OpError::usage(
                format!("no configuration file at `{}`", self.config_path.display()),
                Some("add an account with `mailkeep account add NAME --host HOST --user USER`, or pass `--config FILE`"),
            ));
        }
        // With `--all`, broken accounts too: each is named where it fails,
        // and the others are done.
        let names: Vec<String> = if all { config.names() } else { named.to_vec() };
        if names.is_empty() {
            return Err(OpError::usage(
                format!(
                    "the configuration `{}` has no accounts",
                    self.config_path.display()
                ),
                Some("add one with `mailkeep account add NAME --host HOST --user USER`"),
            ));
        }
        for n in &names {
            // With `--all`, a broken account is named where it fails.
            if !(all && config.broken.contains_key(n)) {
                config.account(n)?;
            }
        }
        Ok(names)
    }

    /// The store, opened to read; none there is an error (exit 5) whose
    /// hint says how to make one or where to point `--store`.
    pub fn store_to_read(&self) -> Result<Store, OpError> {
        let s = Store::open_read_only(&self.store_path)?;
        warn_problems(self, &s);
        Ok(s)
    }

    /// The store opened to read, or `None` when there is none yet.
    pub fn store_if_any(&self) -> Result<Option<Store>, OpError> {
        match Store::open_read_only(&self.store_path) {
            Ok(s) => {
                warn_problems(self, &s);
                Ok(Some(s))
            }
            Err(StoreError::Missing(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The store opened for writing (created if needed), saying what its
    /// recovery mended and what is wrong with it.
    pub fn store_to_write(&self) -> Result<Store, OpError> {
        let s = Store::open(&self.store_path)?;
        note_recovery(self, &s);
        warn_problems(self, &s);
        Ok(s)
    }

    /// Loads the config file and prints its warnings. A file named by
    /// `--config` or `MAILKEEP_CONFIG` that is not there is an error (a typo
    /// is not an empty configuration); the default one may be missing.
    pub fn load_config(&self) -> Result<Config, OpError> {
        if self.config_given && !self.config_path.exists() {
            return Err(OpError::usage(
                format!("no configuration file at `{}`", self.config_path.display()),
                Some("check the path given by `--config` or `MAILKEEP_CONFIG`; `mailkeep account add NAME --host HOST --user USER` creates the file"),
            ));
        }
        self.load_config_or_new()
    }

    /// Loads the config file, or an empty one where there is none yet (for
    /// `account add`, which creates it).
    pub fn load_config_or_new(&self) -> Result<Config, OpError> {
        let cfg = Config::load(&self.config_path)?;
        for w in &cfg.warnings {
            errln!("warning: {w}");
        }
        Ok(cfg)
    }
}

/// Runs the command line; returns the process exit code. The one funnel:
/// every error of a command comes back here as an [`OpError`] and is
/// printed by [`report_error`] (the error, its causes, a `hint:`), which
/// also picks the exit code; output goes through [`out`], so a closed stdout
/// ends the command quietly with success.
pub fn main() -> i32 {
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            if let Err(io) = e.print() {
                if !e.use_stderr() {
                    out::stdout_failed(io);
                }
            }
            return code;
        }
    };
    let logs_on_stderr = match log::init(cli.verbose, cli.trace_imap.as_deref()) {
        Ok(on) => on,
        Err(e) => return report_error(&e),
    };
    let env_config = std::env::var_os("MAILKEEP_CONFIG").filter(|v| !v.is_empty());
    let globals = Globals {
        config_given: cli.config.is_some() || env_config.is_some(),
        config_path: cli
            .config
            .clone()
            .unwrap_or_else(config::default_config_path),
        store_path: cli.store.clone().unwrap_or_else(config::default_store_path),
        quiet: cli.quiet,
        progress: !cli.quiet && !logs_on_stderr && std::io::stderr().is_terminal(),
        interrupt: Interrupt::new(),
    };
    // Backups stop at the next safe point and record that they were
    // interrupted; every other command stops at once (each is safe to stop
    // anywhere, like a crash, and resumes when run again).
    let cooperative = matches!(cli.command, Command::Backup(_));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            errln!("hint: the system is short of threads or memory; try again");
            return FailureKind::Store.exit_code();
        }
    };
    let result = runtime.block_on(async {
        listen_for_signals(globals.interrupt.clone(), cooperative, globals.progress);
        match cli.command {
            Command::Account(cmd) => account::run(&globals, cmd).await,
            Command::Backup(args) => backup::run(&globals, args).await,
            Command::Status(args) => status::run(&globals, args),
            Command::Verify(args) => verify::run(&globals, args).await,
            Command::Export(args) => export::run(&globals, args),
            Command::Repair => repair::run(&globals),
            Command::Restore(args) => restore::run(&globals, args).await,
            Command::Migrate(args) => migrate::run(&globals, args).await,
            Command::Quota(args) => quota::run(&globals, args).await,
            Command::Archive(args) => archive::run(&globals, args).await,
            Command::Search(args) => search::run(&globals, args),
            Command::Show(args) => show::run(&globals, args),
            Command::Reindex => search::reindex(&globals),
            Command::Doctor(args) => doctor::run(&globals, args).await,
            Command::Providers(args) => providers::run(args),
            Command::Import(args) => import::run_cmd(&globals, args),
            Command::Completions(args) => extras::completions(args),
            Command::Man(args) => extras::man(args),
        }
    });
    progress::clear_all();
    let code = match result {
        Ok(code) => code,
        Err(e) => report_error(&e),
    };
    out::flush();
    code
}

/// A panic is a bug: say so plainly, with what to report, after taking
/// the progress bars off the terminal (the exit code stays 101).
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        progress::clear_all();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        errln!("error: internal error{at}: {what}");
        errln!(
            "hint: this is a bug in mailkeep, not in your mail or store; nothing was lost. \
             Please report it with the command you ran and its `-vv` output"
        );
    }));
}

/// SIGINT and SIGTERM raise `interrupt`. A command that stops on its own
/// (`cooperative`) is left to do so at its next safe point; a second signal,
/// or any signal to another command, ends the process at once with
/// 128 + the signal (130, 143), saying so.
fn listen_for_signals(interrupt: Interrupt, cooperative: bool, bars: bool) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
            };
            let again = interrupt.is_raised();
            interrupt.raise(sig);
            if cooperative && !again {
                continue;
            }
            if bars {
                // Whatever progress bar is drawn: off the line.
                err!("\r\x1b[2K");
            }
            errln!("{INTERRUPTED}");
            std::process::exit(interrupt.exit_code().unwrap_or(128 + sig));
        }
    });
}

/// Says, unless quiet, what opening the store for writing mended after an
/// interrupted run.
fn note_recovery(g: &Globals, store: &Store) {
    let r = store.recovery();
    if !g.quiet && (r.records_indexed > 0 || r.bytes_truncated > 0) {
        errln!(
            "note: recovered from an interrupted run: {} records indexed, {} bytes of a torn \
             write set aside",
            r.records_indexed,
            r.bytes_truncated
        );
    }
    if r.bytes_skipped > 0 {
        errln!(
            "warning: {} damaged bytes in the store were skipped (a copy is kept beside the pack)",
            r.bytes_skipped
        );
        errln!("hint: run `mailkeep verify` to see what they held");
    }
    if !g.quiet && r.dictionary_copies_written > 0 {
        errln!(
            "note: wrote {} more copies of the store's compression dictionary",
            r.dictionary_copies_written
        );
    }
}

/// Warns about what opening the store found wrong with it (missing or
/// short packs, lost dictionaries): the rest of the store is used as usual.
fn warn_problems(_g: &Globals, store: &Store) {
    for p in store.problems() {
        errln!("warning: {p}");
    }
    if !store.problems().is_empty() {
        errln!(
            "hint: the other messages are fine; `mailkeep repair` rebuilds the index from what \
             the packs hold, and `mailkeep backup` fetches again what is still on the server"
        );
    }
}

/// Prints an error with its causes and what to do (`hint:`); returns its
/// exit code. Every error a command ends with, or names and goes on past
/// (one account of several), is printed here.
pub fn report_error(e: &OpError) -> i32 {
    progress::clear_all();
    errln!("error: {}", error_chain(e));
    errln!("hint: {}", e.hint().unwrap_or_else(|| fallback_hint(e)));
    e.kind().exit_code()
}

/// [`report_error`] for one account of several (`backup --all`): the error
/// names the account when its text does not already.
pub fn report_account_error(account: &str, several: bool, e: &OpError) -> i32 {
    let text = error_chain(e);
    if !several || text.contains(&format!("`{account}`")) {
        return report_error(e);
    }
    progress::clear_all();
    errln!("error: account `{account}`: {text}");
    errln!("hint: {}", e.hint().unwrap_or_else(|| fallback_hint(e)));
    e.kind().exit_code()
}

/// For an error whose kind says nothing more specific.
fn fallback_hint(e: &OpError) -> String {
    match e.kind() {
        FailureKind::Usage => "see `mailkeep --help`, or `mailkeep COMMAND --help`".into(),
        FailureKind::Auth => "check the user name and password of the account".into(),
        FailureKind::Network => "check the connection to the server; running the same command again resumes".into(),
        FailureKind::Store => "check that the store's directory is yours, readable and writable, on a disk with free space".into(),
        FailureKind::Locked => "wait for the other run to finish".into(),
        FailureKind::Partial => "the server answered in a way mailkeep cannot use; running the same command with `--trace-imap` shows the conversation (without passwords or mail) for a bug report".into(),
    }
}

/// The exit code for several results: the first failure's, else 0.
pub fn combine(codes: impl IntoIterator<Item = Option<FailureKind>>) -> i32 {
    codes
        .into_iter()
        .flatten()
        .next()
        .map(FailureKind::exit_code)
        .unwrap_or(0)
}

/// Local time for people, from unix seconds.
pub fn local_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| {
            d.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

/// Columns a string takes on a terminal (CJK characters take two).
pub fn display_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// A table of plain text: the first `left` columns aligned left, the others
/// right (numbers), two spaces between, no trailing spaces.
pub fn render_table(head: &[&str], rows: &[Vec<String>], left: usize) -> String {
    let mut width: Vec<usize> = head.iter().map(|h| display_width(h)).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            width[i] = width[i].max(display_width(c));
        }
    }
    let line = |cells: &[&str]| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = " ".repeat(width[i] - display_width(c));
            if i > 0 {
                s.push_str("  ");
            }
            if i < left {
                s.push_str(c);
                s.push_str(&pad);
            } else {
                s.push_str(&pad);
                s.push_str(c);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head);
    for row in rows {
        out.push_str(&line(&row.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out
}

/// `s` padded with spaces to `width` terminal columns.
pub fn pad(s: &str, width: usize) -> String {
    let mut out = s.to_string();
    out.extend(std::iter::repeat_n(
        ' ',
        width.saturating_sub(display_width(s)),
    ));
    out
}

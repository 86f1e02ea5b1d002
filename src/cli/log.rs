//! Diagnostics on stderr through `tracing`: `-v` (what mailkeep does),
//! `-vv` (and how), `-vvv` (everything); `MAILKEEP_LOG` takes a filter of
//! its own (`mailkeep=debug`, `mailkeep::sync=trace,info`). `--trace-imap`
//! adds the IMAP conversation (passwords, tokens and mail left out, see
//! [`crate::imap::trace`]), on stderr or in a file of its own.
//!
//! Without any of them nothing is logged: the command's own output says
//! what happened.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::imap::trace::TARGET;
use crate::ops::OpError;

/// Where `--trace-imap` writes: `-` is stderr.
pub const STDERR: &str = "-";

/// Sets up logging; returns whether anything will be written to stderr (so
/// that progress bars stay off it).
pub fn init(verbose: u8, trace_imap: Option<&Path>) -> Result<bool, OpError> {
    let from_env = std::env::var("MAILKEEP_LOG").ok().filter(|v| !v.is_empty());
    let directives = match (&from_env, verbose) {
        (Some(d), _) => d.clone(),
        (None, 0) => "off".into(),
        (None, 1) => "mailkeep=info".into(),
        (None, 2) => "mailkeep=debug".into(),
        (None, _) => "mailkeep=trace".into(),
    };
    let mut filter = EnvFilter::try_new(&directives).map_err(|e| {
        OpError::usage(
            format!("`MAILKEEP_LOG={directives}` is not a log filter: {e}"),
            Some("write it as `mailkeep=debug`, or `info,mailkeep::sync=trace`; or unset it and use `-v`/`-vv`"),
        )
    })?;
    if !directives.contains("imap::trace") {
        filter = filter.add_directive(format!("{TARGET}=off").parse().expect("valid directive"));
    }
    let logging = from_env.is_some() || verbose > 0;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let general = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_ansi(ansi)
        .with_filter(filter);
    let only_trace = Targets::new().with_target(TARGET, tracing::Level::TRACE);
    let trace_layer = match trace_imap {
        None => None,
        Some(p) if p == Path::new(STDERR) => Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_timer(tracing_subscriber::fmt::time::uptime())
                .with_ansi(ansi)
                .with_level(false)
                .with_target(false)
                .with_filter(only_trace)
                .boxed(),
        ),
        Some(p) => {
            // Owner only: the trace names the account and its folders.
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(p)
                .map_err(|source| OpError::Output {
                    path: p.to_path_buf(),
                    source,
                })?;
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(Mutex::new(file))
                    .with_timer(tracing_subscriber::fmt::time::uptime())
                    .with_ansi(false)
                    .with_level(false)
                    .with_target(false)
                    .with_filter(only_trace)
                    .boxed(),
            )
        }
    };
    let on_stderr = logging || trace_imap.is_some_and(|p| p == Path::new(STDERR));
    let _ = tracing_subscriber::registry()
        .with(general)
        .with(trace_layer)
        .try_init();
    Ok(on_stderr)
}

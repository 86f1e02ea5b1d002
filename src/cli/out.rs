//! The one way the command line writes: data and summaries to stdout,
//! everything else to stderr.
//!
//! - stdout closed by its reader (`mailkeep status | head -1`): the command
//!   ends there, quietly and with success (exit 0), as a program killed by
//!   SIGPIPE would, but without dying of a signal. Every command writes to
//!   stdout only between steps that are safe to stop at (each is safe to
//!   stop anywhere, like a crash), so nothing is lost.
//! - stdout failing otherwise (a full disk behind `> file`): `error:`, exit 5.
//! - stderr closed: what would have gone there is dropped; never a panic.
//!
//! Progress bars drawn on the terminal are taken off it before the process
//! ends on any of these paths ([`super::progress::clear_all`]).

use std::io::{self, Write};

/// Writes to stdout; ends the process when it cannot be written.
pub fn stdout(args: std::fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        drop(out);
        stdout_failed(e);
    }
}

/// Writes raw bytes to stdout (`show --raw`), as [`stdout`] does.
pub fn stdout_bytes(bytes: &[u8]) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(bytes) {
        drop(out);
        stdout_failed(e);
    }
}

/// Flushes stdout at the end of a command, as [`stdout`] writes.
pub fn flush() {
    if let Err(e) = io::stdout().lock().flush() {
        stdout_failed(e);
    }
}

/// Writes to stderr; a stderr that cannot be written is not an error.
pub fn stderr(args: std::fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// Whether an error writing stdout means its reader went away.
pub fn is_closed(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// The reader went away: a quiet success. Anything else: an error.
pub fn stdout_failed(e: io::Error) -> ! {
    super::progress::clear_all();
    if is_closed(&e) {
        std::process::exit(0);
    }
    stderr(format_args!("error: cannot write to stdout: {e}\n"));
    stderr(format_args!(
        "hint: check the file or pipe that stdout goes to (disk space, permissions)\n"
    ));
    std::process::exit(crate::ops::FailureKind::Store.exit_code());
}

/// `println!` to stdout, through [`stdout`].
macro_rules! outln {
    () => { $crate::cli::out::stdout(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::cli::out::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` to stdout, through [`stdout`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::out::stdout(format_args!($($arg)*)) };
}

/// `eprintln!`, through [`stderr`].
macro_rules! errln {
    () => { $crate::cli::out::stderr(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::cli::out::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!`, through [`stderr`].
macro_rules! err {
    ($($arg:tt)*) => { $crate::cli::out::stderr(format_args!($($arg)*)) };
}

pub(crate) use {err, errln, out, outln};

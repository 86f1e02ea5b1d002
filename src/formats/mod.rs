//! Mail file formats: Maildir++, mboxrd and one-file-per-message `.eml`.
//! Writers for `export`, readers for `import`. No store, no IMAP.
//! Uses: model (Flags, InternalDate). Nothing else of the crate.
//!
//! Promise 3 (byte-exact) holds here: writers put the stored bytes on disk
//! unchanged. The one exception is mbox, which quotes `From ` lines (undone by
//! the reader) and ends a message with a newline if it had none (see
//! [`mbox`]). Flags and INTERNALDATE go where each format keeps them: Maildir
//! info letters and file mtime; the mtime of `.eml` files; mbox keeps neither
//! beyond the date of its `From ` line.
//!
//! Folder names become paths through [`names`]: a display name is split on
//! `/`, and each part is escaped so that no name can leave the root or make
//! an empty, `.` or `..` component. Files and directories are created for the
//! owner only (0600 / 0700): exported mail is as private as the store.
//!
//! Errors are `io::Error`s whose text names the file (and line, for mbox).
//!
//! [`lines`] reads the lines and header fields of a message with any line
//! endings (CRLF, LF, CR alone, mixed): every header scan goes through it.

pub mod eml;
pub mod lines;
pub mod maildir;
pub mod mbox;
pub mod names;

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model::InternalDate;

/// An INTERNALDATE as a file time (dates before 1970 included).
fn system_time(date: &InternalDate) -> SystemTime {
    if date.unix >= 0 {
        UNIX_EPOCH + Duration::from_secs(date.unix as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(date.unix.unsigned_abs())
    }
}

/// A file's mtime as an INTERNALDATE in UTC (whole seconds, rounded down).
fn mtime_date(meta: &fs::Metadata) -> io::Result<InternalDate> {
    let t = meta.modified()?;
    let unix = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => {
            let d = e.duration();
            -(d.as_secs() as i64) - i64::from(d.subsec_nanos() > 0)
        }
    };
    Ok(InternalDate {
        unix,
        offset_min: 0,
    })
}

/// A file's mtime as an INTERNALDATE (what Maildir and `.eml` readers use).
pub fn file_date(meta: &fs::Metadata) -> io::Result<InternalDate> {
    mtime_date(meta)
}

/// `mkdir -p` with mode 0700 for what it creates.
fn create_private_dirs(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| with_path(e, "cannot create directory", path))
}

/// Writes `src` to `tmp` (0600), sets its times to `date`, fsyncs, and
/// renames it to `dest`, in bounded memory whatever its size: a reader never
/// sees a half-written file, and a killed export leaves at most a stray
/// temporary file. If `src` fails (even after its last byte: a store reader
/// reports damage at its end), the temporary file is removed and nothing is
/// renamed into place.
/// Returns the number of bytes written.
fn write_file_atomically(
    tmp: &Path,
    dest: &Path,
    src: &mut dyn Read,
    date: &InternalDate,
) -> io::Result<u64> {
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(tmp)?;
        let n = copy_chunked(src, &mut f)?;
        let t = system_time(date);
        f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t))?;
        f.sync_all()?;
        drop(f);
        fs::rename(tmp, dest)?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result.map_err(|e| with_path(e, "cannot write", dest))
}

/// Bytes are copied in pieces of this size: memory stays bounded whatever
/// the message size, and writes are big enough to be cheap.
const COPY_PIECE: usize = 256 * 1024;

/// Copies `src` to its end into `out`, one [`COPY_PIECE`] at a time.
fn copy_chunked(src: &mut dyn Read, out: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0u8; COPY_PIECE];
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// The same error with what we were doing and the path in its text.
fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} `{}`: {e}", path.display()))
}

/// Subdirectories of `dir`, sorted, symlinks not followed.
fn subdirs(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| with_path(e, "cannot read directory", dir))? {
        let entry = entry.map_err(|e| with_path(e, "cannot read directory", dir))?;
        if entry.file_type()?.is_dir() {
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod corpus_tests;

#[cfg(test)]
pub(crate) mod tests {
    use std::io::{self, Read};

    /// Gives its bytes, then fails where the end would be (as a store
    /// reader does when the bytes do not hash).
    pub(crate) struct FailsAtEnd<'a>(pub(crate) &'a [u8]);

    impl Read for FailsAtEnd<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "damaged"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
}

//! One writer at a time: `flock(LOCK_EX | LOCK_NB)` on `<store>/lock`. The
//! kernel releases it when the process ends, however it ends, so a crashed
//! run never leaves a stale lock.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{io_err, Result, StoreError};

/// Takes the store's lock, or fails at once with [`StoreError::Locked`].
pub(super) fn take(root: &Path) -> Result<File> {
    let lock_path = root.join("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io_err(&lock_path))?;
    // SAFETY: flock on a valid, owned file descriptor.
    let rc = unsafe {
        libc::flock(
            std::os::unix::io::AsRawFd::as_raw_fd(&lock),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(StoreError::Locked(root.to_path_buf()));
        }
        return Err(io_err(&lock_path)(err));
    }
    Ok(lock)
}

/// Whether another run holds the store's lock right now (taken and let go
/// at once when it is free). A store without a lock file is free.
pub fn held_elsewhere(root: &Path) -> Result<bool> {
    if !root.join("lock").exists() {
        return Ok(false);
    }
    match take(root) {
        Ok(lock) => {
            drop(lock);
            Ok(false)
        }
        Err(StoreError::Locked(_)) => Ok(true),
        Err(e) => Err(e),
    }
}

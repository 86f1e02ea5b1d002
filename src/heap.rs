//! The process's heap (glibc): the memory a run holds stays near what it
//! uses.
//!
//! Messages of a few MB pass through many threads; by default glibc raises
//! its mmap threshold each time such a buffer is freed, after which the
//! buffers come from per-thread arenas that keep their pages: a restore
//! whose heap peaked at 40 MB held 144 MB. A fixed threshold returns every
//! buffer of 1 MiB or more to the system when it is freed, and fewer arenas
//! bound the rest ([`bound`]).
//!
//! What one thread frees in the middle of an arena of another stays
//! resident all the same until it is given back ([`give_back`]; where and
//! what it saved: `ops::search`'s `BESIDE_A_FETCH`, and after each batch a
//! restore has sent, in `ops::restore`; docs/benchmarks.md).

/// Sets the allocator's limits; called first thing, on the only thread.
pub fn bound() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

/// Gives the pages of memory freed inside the arenas back to the system
/// (`malloc_trim`: each arena's free chunks are walked and released, to be
/// faulted in again when reused: a reindex that called it after every
/// write took 4 % longer). For a loop that has just dropped a batch's worth
/// of buffers made on other threads.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}

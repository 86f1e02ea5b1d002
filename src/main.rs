fn main() {
    bounded_heap();
    std::process::exit(mailkeep::cli::main());
}

/// Keeps the memory a run holds close to what it uses (glibc). Messages of
/// a few MB pass through many threads; by default glibc raises its mmap
/// threshold each time such a buffer is freed, after which the buffers come
/// from per-thread arenas that keep their pages: a restore whose heap peaks
/// at 40 MB held 144 MB. A fixed threshold returns every buffer of 1 MiB or
/// more to the system when it is freed, and fewer arenas bound the rest.
fn bounded_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called first
    // thing, on the only thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

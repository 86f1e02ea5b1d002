//! Peak memory of backup, export and restore of a mailbox holding one
//! 64 MiB message, through the real binary against a local Dovecot.
//!
//! GUIDE promise 5: memory does not grow with the size of a message. Each
//! command's peak resident set size (`ru_maxrss` from `wait4`) is printed;
//! the run fails (exit code 1) if any is above [`BOUND_MIB`]. A 64 MiB
//! message makes a whole-message copy in memory obvious: one copy alone
//! would take the peak past the bound.
//!
//! `cargo bench --bench memory` (or `cargo test --bench memory` for a
//! debug build: the peaks are alike, buffers are the same size). `MAILKEEP_MEMORY_BIN=/path/to/mailkeep`
//! measures another build of the binary (e.g. an older one, for comparison).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use support::{Dovecot, DovecotOptions, Env};

/// The message: 64 MiB.
const MESSAGE: usize = 64 * 1024 * 1024;
/// The most any command may use at its peak, in MiB.
const BOUND_MIB: u64 = 48;
/// … except backup, which after the transfer adds what it stored to the
/// search index: that parses up to 4 MiB of each message
/// (`ops::search::MAX_PARSED_BYTES`), and mail-parser plus the text
/// extraction take several times that at their peak (measured: 49 MiB in a
/// debug build). Bounded whatever the message size; the transfer itself
/// stays well under [`BOUND_MIB`].
const BACKUP_BOUND_MIB: u64 = 64;

fn main() {
    // `cargo bench` passes `--bench`; a filter that names nothing here skips.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args
        .iter()
        .any(|a| !a.starts_with('-') && !"memory".contains(a.as_str()))
    {
        return;
    }
    let bin = std::env::var_os("MAILKEEP_MEMORY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(support::mailkeep_bin);

    let srv = Dovecot::start(DovecotOptions::default());
    seed_big_message(&srv, "alice");

    let env = Env::new();
    env.add_account("src", &srv, "alice");
    env.add_account("dst", &srv, "bob");
    let out = env.dir.path().join("export");
    let out = out.to_str().expect("utf-8 temp path");
    let runs: Vec<(&str, Vec<&str>)> = vec![
        // What the binary takes doing next to nothing, for comparison.
        ("status (empty)", vec!["status"]),
        ("backup", vec!["backup", "src"]),
        (
            "export maildir",
            vec!["export", "--account", "src", "--format", "maildir", out],
        ),
        (
            "export mbox",
            vec!["export", "--account", "src", "--format", "mbox", out],
        ),
        (
            "export eml",
            vec!["export", "--account", "src", "--format", "eml", out],
        ),
        ("restore", vec!["restore", "dst", "--from", "src"]),
    ];
    println!(
        "peak RSS, one message of {} MiB (bound {BOUND_MIB} MiB, backup {BACKUP_BOUND_MIB} MiB), binary {}",
        MESSAGE >> 20,
        bin.display()
    );
    let mut over = Vec::new();
    for (name, args) in runs {
        let _ = std::fs::remove_dir_all(out);
        let mut cmd = env.command_for(&bin);
        cmd.arg("--config")
            .arg(&env.config)
            .arg("--store")
            .arg(&env.store)
            .args(&args);
        let (code, peak_kib, stderr) = run_measured(cmd);
        if code != 0 {
            eprintln!(
                "`mailkeep {}` failed with exit code {code}:\n{stderr}",
                args.join(" ")
            );
            std::process::exit(2);
        }
        let mib = peak_kib as f64 / 1024.0;
        println!("  {name:<16} {mib:>7.1} MiB");
        let bound = if name == "backup" {
            BACKUP_BOUND_MIB
        } else {
            BOUND_MIB
        };
        if peak_kib > bound * 1024 {
            over.push(format!("{name}: {mib:.1} MiB"));
        }
    }
    if !over.is_empty() {
        eprintln!("FAILED: peak memory above the bound: {}", over.join(", "));
        std::process::exit(1);
    }
}

/// Writes the big message straight into `user`'s Maildir (the GUIDE's
/// other way of seeding), line by line. The bench process must never hold
/// the message: a child started with vfork/exec inherits its parent's peak
/// RSS in `ru_maxrss`, which would hide the number we are after.
fn seed_big_message(srv: &Dovecot, user: &str) {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    let mut c = srv.client(user);
    c.select("INBOX"); // creates the Maildir
    c.logout();
    let maildir = srv.maildir(user);
    let owner = std::fs::metadata(&maildir).expect("maildir exists");
    let path = maildir
        .join("cur")
        .join("1700000000.big.mailkeep-bench:2,FS");
    let file = std::fs::File::create(&path).expect("create message file");
    let mut w = std::io::BufWriter::new(file);
    write!(
        w,
        "From: Sender <sender@example.org>\r\nTo: Alice <alice@example.com>\r\n\
         Subject: one big message\r\nMessage-ID: <big@mailkeep.bench>\r\n\
         Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\n"
    )
    .unwrap();
    let mut written = 0usize;
    let mut i = 0u64;
    while written < MESSAGE {
        // Lines that differ, so that zstd has work to do.
        let line = format!(
            "line {i:>9} {:016x} mail backup archive restore keep\r\n",
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        );
        w.write_all(line.as_bytes()).unwrap();
        written += line.len();
        i += 1;
    }
    let file = w.into_inner().expect("flush");
    file.sync_all().unwrap();
    drop(file);
    std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).expect("chown");
}

/// Runs `cmd` to its end; its exit code, peak RSS in KiB, and stderr.
fn run_measured(mut cmd: Command) -> (i32, u64, String) {
    let stderr_file = tempfile::tempfile().expect("temp file");
    cmd.stdout(Stdio::null())
        .stderr(stderr_file.try_clone().expect("dup"));
    let child = cmd.spawn().expect("cannot start mailkeep");
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: plain wait4 on our own child, with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    // The child is reaped: forget it rather than wait for it again.
    std::mem::forget(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let mut stderr = String::new();
    use std::io::{Read, Seek};
    let mut f = stderr_file;
    let _ = f.seek(std::io::SeekFrom::Start(0));
    let _ = f.read_to_string(&mut stderr);
    // Linux reports ru_maxrss in KiB.
    (code, usage.ru_maxrss as u64, stderr)
}

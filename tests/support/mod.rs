//! Shared integration-test support: a throwaway Dovecot, an independent IMAP client,
//! a fault-injecting TCP proxy, an isolated environment to run the `mailkeep` binary,
//! and deterministic test mail.
//!
//! Include it from a test file with `mod support;` and `use support::*;`:
//!
//! ```ignore
//! let server = Dovecot::start(DovecotOptions::default());   // alice, bob; Sent, Drafts, …
//! let mut imap = server.client("alice");                      // independent TLS client
//! let uid = imap.append("INBOX", &["\\Seen"], None, &gen_message(1, 2_000, "hi"));
//! let env = Env::new();
//! env.add_account("main", &server, "alice");                  // MK_PW_MAIN is set by run()
//! env.run(&["backup", "main"]).assert_success();
//! assert_eq!(imap.fetch_all("INBOX")[0].uid, uid);            // the server is unchanged
//!
//! let proxy = FaultProxy::start(server.imap_port(), Fault::DropAfterServerBytes(4_000));
//! env.add_account_via("flaky", &proxy, &server, "alice");     // tls = "none" via proxy
//! ```
//!
//! Everything panics with a clear message (and Dovecot's log where it helps) instead
//! of returning errors: it is test code. Nothing here skips a test except
//! `corpus_dir()` when `MAILKEEP_CORPUS` is unset.
#![allow(dead_code, unused_imports)]

mod client;
mod dovecot;
mod env;
pub mod imap_wire;
mod oauth;
mod proxy;
mod tls;

use std::path::PathBuf;

pub use client::{FetchedMessage, TestClient};
pub use dovecot::{free_port_pair, Dovecot, DovecotOptions};
pub use env::{copy_dir, toml_str, Env, Output};
pub use oauth::Authority;
pub use proxy::{Fault, FaultProxy};
pub use tls::CertKind;

/// The `mailkeep` binary built for these tests.
pub fn mailkeep_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mailkeep"))
}

/// The real-world corpus (`MAILKEEP_CORPUS`). When the variable is unset this prints
/// `skipped: MAILKEEP_CORPUS not set` and returns `None`; the test then returns.
/// A variable that names no directory is an error (panics), never a skip.
pub fn corpus_dir() -> Option<PathBuf> {
    match std::env::var_os("MAILKEEP_CORPUS") {
        None => {
            println!("skipped: MAILKEEP_CORPUS not set");
            eprintln!("skipped: MAILKEEP_CORPUS not set");
            None
        }
        Some(v) if v.is_empty() => {
            println!("skipped: MAILKEEP_CORPUS not set");
            eprintln!("skipped: MAILKEEP_CORPUS not set");
            None
        }
        Some(v) => {
            let p = PathBuf::from(v);
            assert!(
                p.join("varied").is_dir(),
                "MAILKEEP_CORPUS={} has no `varied/` directory",
                p.display()
            );
            Some(p)
        }
    }
}

/// A deterministic CRLF message number `i`: Date, From, To, Subject, Message-ID,
/// MIME headers and a text body padded to about `size` bytes (never less than the
/// headers plus one body line). Same `(i, size, subject)` → same bytes.
pub fn gen_message(i: usize, size: usize, subject: &str) -> Vec<u8> {
    let date = gen_date(i);
    let mut m = format!(
        "Date: {}\r\nFrom: Sender {} <sender{}@example.org>\r\nTo: Alice <alice@example.com>\r\nSubject: {subject}\r\nMessage-ID: <mk-{i}-{size}@mailkeep.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
        date.format("%a, %d %b %Y %H:%M:%S %z"),
        i % 7,
        i % 7,
    )
    .into_bytes();
    const WORDS: &[&str] = &[
        "mail", "backup", "folder", "quota", "archive", "restore", "server", "message", "header",
        "body", "lorem", "ipsum", "dolor", "sit", "amet", "keep",
    ];
    let mut state = (i as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut line = format!("Message {i}:");
    loop {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let w = WORDS[(state >> 33) as usize % WORDS.len()];
        if line.len() + 1 + w.len() > 72 {
            m.extend_from_slice(line.as_bytes());
            m.extend_from_slice(b"\r\n");
            line.clear();
            if m.len() >= size {
                break;
            }
            line.push_str(w);
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(w);
        }
    }
    m
}

/// The Date of `gen_message(i, ..)`: 2020-01-01 00:00 +0900 plus `i` hours.
pub fn gen_date(i: usize) -> chrono::DateTime<chrono::FixedOffset> {
    let tz = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
    chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00+09:00")
        .unwrap()
        .with_timezone(&tz)
        + chrono::Duration::hours(i as i64)
}

/// `gen_date(i)` in IMAP INTERNALDATE form (`01-Jan-2020 00:00:00 +0900`), for APPEND.
pub fn gen_internaldate(i: usize) -> String {
    gen_date(i).format("%d-%b-%Y %H:%M:%S %z").to_string()
}

/// Parses an IMAP INTERNALDATE (`" 1-Jan-2020 10:00:00 +0900"` or `01-Jan-…`).
pub fn parse_internaldate(s: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let t = s.trim();
    let t = if t.as_bytes().get(1) == Some(&b'-') {
        format!("0{t}")
    } else {
        t.to_string()
    };
    chrono::DateTime::parse_from_str(&t, "%d-%b-%Y %H:%M:%S %z")
        .unwrap_or_else(|e| panic!("bad INTERNALDATE {s:?}: {e}"))
}

/// Polls `cond` until it holds; fails the test after 60 s.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20)); // wait-ok: polling a condition
    }
}

/// What a user compares of a folder: each message's bytes, sorted flags and
/// INTERNALDATE instant; sorted.
pub fn folder_state(c: &mut TestClient, folder: &str) -> Vec<(Vec<u8>, Vec<String>, i64)> {
    let mut v: Vec<_> = c
        .fetch_all(folder)
        .into_iter()
        .map(|m| {
            let mut flags = m.flags.clone();
            flags.sort();
            (
                m.bytes,
                flags,
                parse_internaldate(&m.internaldate).timestamp(),
            )
        })
        .collect();
    v.sort();
    v
}

/// `STATUS folder (MESSAGES)`.
pub fn count(c: &mut TestClient, folder: &str) -> u64 {
    c.status_item(folder, "MESSAGES")
}

/// Appends generated messages `range` (`gen_message(i, size, subject)`,
/// dated `gen_internaldate(i)`) to `folder`, each with `flags`.
pub fn append_generated(
    c: &mut TestClient,
    folder: &str,
    range: std::ops::Range<usize>,
    size: usize,
    subject: &str,
    flags: &[&str],
) {
    for i in range {
        c.append(
            folder,
            flags,
            Some(&gen_internaldate(i)),
            &gen_message(i, size, subject),
        );
    }
}

/// Starts `mailkeep ARGS` in `env`, waits until `folder` on `target` holds
/// at least `at_least` messages, and kills it with SIGKILL; returns how many
/// the folder held then, which must be fewer than `all` (else the command
/// finished before it could be killed, and the test proves nothing).
pub fn kill_9_when(
    env: &Env,
    args: &[&str],
    target: &mut TestClient,
    folder: &str,
    at_least: u64,
    all: u64,
) -> u64 {
    let mut child = env.spawn(args);
    wait_for("the command to have appended some mail", || {
        count(target, folder) >= at_least
    });
    child.kill().unwrap(); // SIGKILL: no chance to record anything more
    child.wait().unwrap();
    let at_kill = count(target, folder);
    assert!(
        at_kill < all,
        "the command finished before it could be killed"
    );
    at_kill
}

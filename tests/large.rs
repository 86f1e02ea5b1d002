//! A message over the streaming threshold (8 MiB: fetched in chunks by
//! backup, streamed by export and restore), through the real binary against
//! real Dovecot servers: byte-exact all the way, and a damaged one is never
//! written out or appended. Memory itself is measured in `benches/memory.rs`.

mod support;

use std::path::{Path, PathBuf};

use mailkeep::formats::mbox::{self, Quoting};
use mailkeep::model::BlobId;
use support::{gen_message, parse_internaldate, Dovecot, DovecotOptions, Env};

const DATE: &str = "01-Feb-2024 10:00:00 +0000";

/// About 12 MB, with lines an mbox must quote (`From `, `>>From `), one
/// of them cut at an awkward place for any fixed read size.
fn large_message() -> Vec<u8> {
    let mut m = gen_message(1, 6_100_000, "a large message");
    m.extend_from_slice(b"From the middle of the body\r\n>>From quoted already\r\n");
    let more = gen_message(2, 6_100_000, "second half");
    // Only the body of the second one (after its header).
    let body_at = more.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    m.extend_from_slice(&more[body_at..]);
    m.extend_from_slice(b"From the end\r\n");
    assert!(m.len() > 12_000_000);
    m
}

fn export(env: &Env, format: &str, name: &str) -> (support::Output, PathBuf) {
    let out = env.dir.path().join(name);
    let r = env.run(&[
        "export",
        "--account",
        "src",
        "--format",
        format,
        out.to_str().unwrap(),
    ]);
    (r, out)
}

/// Every file below `dir` (recursively).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn backed_up(msg: &[u8]) -> (Dovecot, Env) {
    let src = Dovecot::start(DovecotOptions::default());
    src.client("alice")
        .append("INBOX", &["\\Seen", "\\Flagged"], Some(DATE), msg);
    let env = Env::new();
    env.add_account("src", &src, "alice");
    let r = env.run(&["backup", "src"]);
    assert_eq!(r.code, 0, "{r}");
    (src, env)
}

#[test]
fn a_large_message_is_backed_up_exported_and_restored_byte_exact() {
    let msg = large_message();
    let (_src, env) = backed_up(&msg);

    // Maildir: one file in cur/, the exact bytes, flags in its name.
    let (r, out) = export(&env, "maildir", "maildir");
    assert_eq!(r.code, 0, "{r}");
    let fs = files(&out.join("cur"));
    assert_eq!(fs.len(), 1, "{fs:?}");
    assert!(fs[0].to_string_lossy().ends_with(":2,FS"), "{fs:?}");
    assert!(
        std::fs::read(&fs[0]).unwrap() == msg,
        "maildir bytes differ"
    );
    assert!(files(&out.join("tmp")).is_empty());

    // eml.
    let (r, out) = export(&env, "eml", "eml");
    assert_eq!(r.code, 0, "{r}");
    let fs = files(&out);
    assert_eq!(fs.len(), 1, "{fs:?}");
    assert!(std::fs::read(&fs[0]).unwrap() == msg, "eml bytes differ");

    // mbox: quoted on the way out, unquoted by the reader, the same bytes.
    let (r, out) = export(&env, "mbox", "mbox");
    assert_eq!(r.code, 0, "{r}");
    let path = out.join("INBOX.mbox");
    let raw = std::fs::read(&path).unwrap();
    assert!(raw
        .windows(31)
        .any(|w| w == b"\n>From the middle of the body\r\n"));
    assert!(raw
        .windows(25)
        .any(|w| w == b"\n>>>From quoted already\r\n"));
    let got: Vec<_> = mbox::open(&path, Quoting::Rd)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].bytes == msg, "mbox bytes differ after un-quoting");

    // Restore to another server: the same bytes, flags and date; twice is once.
    let dst = Dovecot::start(DovecotOptions::default());
    env.add_account("dst", &dst, "alice");
    for run in 0..2 {
        let r = env.run(&["restore", "dst", "--from", "src"]);
        assert_eq!(r.code, 0, "run {run}: {r}");
    }
    let on_target = dst.client("alice").fetch_all("INBOX");
    assert_eq!(on_target.len(), 1, "restored once");
    assert!(on_target[0].bytes == msg, "restored bytes differ");
    let mut flags = on_target[0].flags.clone();
    flags.sort();
    assert_eq!(flags, vec!["\\Flagged", "\\Seen"]);
    assert_eq!(
        parse_internaldate(&on_target[0].internaldate).timestamp(),
        parse_internaldate(DATE).timestamp()
    );
}

#[test]
fn a_damaged_large_message_is_neither_exported_nor_restored() {
    let msg = large_message();
    let (_src, env) = backed_up(&msg);
    // Flip a byte in the middle of its compressed frame.
    let loc = {
        let store = mailkeep::store::Store::open_read_only(&env.store).unwrap();
        store.blob_location(&BlobId::of(&msg)).unwrap()
    };
    let pack = mailkeep::store::pack::pack_path(&env.store, loc.pack);
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[(loc.offset + loc.length / 2) as usize] ^= 0x5a;
    std::fs::write(&pack, bytes).unwrap();

    for format in ["maildir", "eml", "mbox"] {
        let (r, out) = export(&env, format, format);
        assert_ne!(r.code, 0, "{format}: {r}");
        assert!(r.stderr.contains("damaged"), "{format}: {r}");
        assert!(files(&out).is_empty(), "{format}: {:?}", files(&out));
    }

    let dst = Dovecot::start(DovecotOptions::default());
    env.add_account("dst", &dst, "alice");
    let r = env.run(&["restore", "dst", "--from", "src"]);
    assert_ne!(r.code, 0, "{r}");
    assert!(r.stderr.contains("damaged"), "{r}");
    assert_eq!(dst.client("alice").status_item("INBOX", "MESSAGES"), 0);
}

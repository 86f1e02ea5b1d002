//! Round trips of the real-world corpus through every writer and reader.
//! The corpus lives outside the repository; `MAILKEEP_CORPUS` points to it
//! (see its README). Without it these tests say they were skipped.

use std::fs;
use std::path::PathBuf;

use super::{eml, maildir, mbox};
use crate::model::{Flags, InternalDate};

fn corpus() -> Option<PathBuf> {
    match std::env::var_os("MAILKEEP_CORPUS").filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!("skipped: MAILKEEP_CORPUS not set");
            None
        }
    }
}

/// (file name, bytes) of every `varied/*.eml`, sorted by name.
fn varied(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(root.join("varied"))
        .expect("MAILKEEP_CORPUS/varied")
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() > 1000, "corpus looks incomplete: {}", out.len());
    out
}

fn date(i: usize) -> InternalDate {
    InternalDate {
        unix: 946_684_800 + i as i64 * 3_607,
        offset_min: 540,
    }
}

/// Spread the messages over a few folders, Japanese and odd names included.
fn folder(i: usize) -> &'static str {
    ["INBOX", "送信済み", "[Gmail]/All Mail", "a.b/../c"][i % 4]
}

fn flags(i: usize) -> Flags {
    match i % 3 {
        0 => Flags::default(),
        1 => Flags::new(["\\Seen"]),
        _ => Flags::new(["\\Seen", "\\Answered", "\\Flagged"]),
    }
}

#[test]
fn corpus_maildir_round_trip() {
    let Some(root) = corpus() else { return };
    let msgs = varied(&root);
    let dir = tempfile::tempdir().unwrap();
    let mut w = maildir::MaildirWriter::create(dir.path()).unwrap();
    let mut paths = std::collections::HashMap::new();
    for (i, (_, bytes)) in msgs.iter().enumerate() {
        let p = w
            .write(folder(i), bytes, &flags(i), &date(i), &format!("m{i}"))
            .unwrap();
        paths.insert(p, i);
    }
    let entries = maildir::read_dir(dir.path()).unwrap();
    assert_eq!(entries.len(), msgs.len());
    for e in entries {
        let i = paths[&e.path];
        assert!(fs::read(&e.path).unwrap() == msgs[i].1, "{}", msgs[i].0);
        assert_eq!(e.folder, folder(i));
        assert_eq!(e.flags, flags(i));
        assert_eq!(e.date.unix, date(i).unix);
    }
}

#[test]
fn corpus_eml_round_trip() {
    let Some(root) = corpus() else { return };
    let msgs = varied(&root);
    let dir = tempfile::tempdir().unwrap();
    let mut w = eml::EmlWriter::create(dir.path()).unwrap();
    let mut paths = std::collections::HashMap::new();
    for (i, (_, bytes)) in msgs.iter().enumerate() {
        let p = w
            .write(folder(i), bytes, &flags(i), &date(i), &format!("m{i}"))
            .unwrap();
        paths.insert(p, i);
    }
    let entries = eml::read_dir(dir.path()).unwrap();
    assert_eq!(entries.len(), msgs.len());
    for e in entries {
        let i = paths[&e.path];
        assert!(fs::read(&e.path).unwrap() == msgs[i].1, "{}", msgs[i].0);
        assert_eq!(e.folder, folder(i));
        assert_eq!(e.date.unix, date(i).unix);
    }
}

/// Byte-identical after the reader's un-quoting, except the final newline
/// that mbox adds to a message without one.
#[test]
fn corpus_mbox_round_trip() {
    let Some(root) = corpus() else { return };
    let msgs = varied(&root);
    let dir = tempfile::tempdir().unwrap();
    let mut w = mbox::MboxWriter::create(dir.path()).unwrap();
    for (i, (_, bytes)) in msgs.iter().enumerate() {
        w.write(folder(i), bytes, &flags(i), &date(i)).unwrap();
    }
    w.finish().unwrap();
    for f in 0..4 {
        let path = dir.path().join(mbox::folder_file(folder(f)));
        let want: Vec<usize> = (0..msgs.len()).filter(|i| i % 4 == f).collect();
        let got: Vec<mbox::MboxMessage> = mbox::open(&path, mbox::Quoting::Rd)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got.len(), want.len(), "{}", path.display());
        for (g, &i) in got.iter().zip(&want) {
            let mut expected = msgs[i].1.clone();
            if !expected.ends_with(b"\n") {
                expected.push(b'\n');
            }
            assert!(g.bytes == expected, "{}", msgs[i].0);
            assert_eq!(
                g.date,
                Some(InternalDate {
                    offset_min: 0,
                    ..date(i)
                })
            );
        }
    }
}

/// Each corpus mbox splits into the number of messages it holds (counted by
/// hand: `grep -c '^From '`, less the unquoted body lines of `unmunged`, plus
/// its first message behind a byte-order mark).
#[test]
fn corpus_mbox_files_parse() {
    let Some(root) = corpus() else { return };
    let expected = [
        ("enron__allen-p.inbox.mbox", 66),
        ("mimekit__content-length.mbox", 29),
        ("mimekit__issue1189.mbox", 4),
        ("mimekit__simple.mbox", 3),
        ("mimekit__unmunged.mbox", 2),
        ("sisimai__mbox-0.mbox", 37),
        ("sisimai__mbox-1.mbox", 1),
        ("spamassassin__nice.mbox", 3),
    ];
    for (name, count) in expected {
        let path = root.join("mbox").join(name);
        let msgs: Vec<mbox::MboxMessage> = mbox::open(&path, mbox::Quoting::Rd)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(msgs.len(), count, "{name}");
        for m in &msgs {
            assert!(m.from_line.starts_with("From "), "{name}");
            assert!(!m.bytes.is_empty(), "{name}: empty message");
        }
    }
    // Spot checks by hand.
    let unmunged: Vec<_> = mbox::open(&root.join("mbox/mimekit__unmunged.mbox"), mbox::Quoting::Rd)
        .unwrap()
        .map(|m| m.unwrap())
        .collect();
    let second = String::from_utf8_lossy(&unmunged[1].bytes);
    assert!(
        second.contains("\nFrom Russia with love\nYear: 1963\n"),
        "{second}"
    );
    let sa: Vec<_> = mbox::open(
        &root.join("mbox/spamassassin__nice.mbox"),
        mbox::Quoting::Rd,
    )
    .unwrap()
    .map(|m| m.unwrap())
    .collect();
    assert_eq!(
        sa[0].from_line,
        "From jm@dogma.slashnull.org  Wed May 16 00:40:34 2001"
    );
    assert_eq!(sa[0].date.unwrap().unix, 989_973_634);
}

//! `mailkeep import` through the real binary: mbox (the corpus), Google
//! Takeout labels, Maildir flags and dates, .eml trees, Thunderbird's layout,
//! re-runs, kill -9, and input that is not mail.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use mailkeep::formats::mbox::{self, Quoting};
use serde_json::Value;
use support::{gen_message, Env, Output};

/// `status --json`: per folder of `account`, (stored count, raw bytes).
fn folders(env: &Env, account: &str) -> BTreeMap<String, u64> {
    let st = status_json(env);
    let acct = st["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == account)
        .unwrap_or_else(|| panic!("no account {account} in {st}"));
    assert_eq!(acct["kind"], "import", "{acct}");
    acct["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["stored"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn status_json(env: &Env) -> Value {
    let out = env.run(&["status", "--json"]);
    out.assert_success();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{out}"))
}

fn import(env: &Env, args: &[&str]) -> Output {
    let mut a = vec!["import"];
    a.extend_from_slice(args);
    env.run(&a)
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Messages of an mbox file as the library's reader splits them.
fn read_mbox(path: &Path, q: Quoting) -> Vec<Vec<u8>> {
    mbox::open(path, q)
        .unwrap()
        .map(|m| m.unwrap().bytes)
        .collect()
}

/// Every file under `dir` (relative path → bytes), Maildir++ markers left out.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name() != "maildirfolder" {
                out.insert(
                    e.path().strip_prefix(dir).unwrap().to_path_buf(),
                    fs::read(e.path()).unwrap(),
                );
            }
        }
    }
    out
}

fn export(env: &Env, account: &str, format: &str, name: &str) -> PathBuf {
    let out = env.dir.path().join(name);
    let _ = fs::remove_dir_all(&out);
    env.run(&[
        "export",
        "--account",
        account,
        "--format",
        format,
        path_str(&out),
    ])
    .assert_success();
    out
}

fn set_mtime(path: &Path, unix: u64) {
    let t = UNIX_EPOCH + Duration::from_secs(unix);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

fn mtime(path: &Path) -> u64 {
    fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// mboxrd quoting of one message, with its envelope line and separator.
fn mbox_entry(envelope: &str, msg: &[u8]) -> Vec<u8> {
    let mut out = format!("{envelope}\n").into_bytes();
    for line in msg.split_inclusive(|&b| b == b'\n') {
        let start = line.iter().position(|&b| b != b'>').unwrap_or(line.len());
        if line[start..].starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
    }
    if !msg.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

#[test]
fn corpus_mboxes_import_with_their_counts_and_export_back_unchanged() {
    let Some(corpus) = support::corpus_dir() else {
        return;
    };
    let dir = corpus.join("mbox");
    let want: BTreeMap<&str, u64> = [
        ("enron__allen-p.inbox", 66),
        ("mimekit__content-length", 29),
        ("mimekit__issue1189", 4),
        ("mimekit__simple", 3),
        ("mimekit__unmunged", 2),
        ("sisimai__mbox-0", 37),
        ("sisimai__mbox-1", 1),
        ("spamassassin__nice", 3),
    ]
    .into_iter()
    .collect();
    let env = Env::new();
    // One file at a time: each becomes a folder named after it.
    for name in want.keys() {
        let file = dir.join(format!("{name}.mbox"));
        let out = import(&env, &["corpus", path_str(&file)]);
        out.assert_success();
        let n = want[name];
        assert!(
            out.stdout.starts_with(&format!(
                "corpus: imported {n} {} (",
                if n == 1 { "message" } else { "messages" }
            )) && out
                .stdout
                .ends_with(" into 1 folder, 0 already in the store, 0 failed\n"),
            "{out}"
        );
        assert_eq!(out.stderr, "", "{out}");
    }
    let got = folders(&env, "corpus");
    let got: BTreeMap<&str, u64> = got.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(got, want);

    // The whole directory again: everything is already there.
    let again = import(&env, &["corpus", path_str(&dir)]);
    again.assert_success();
    assert!(
        again.stdout.contains(
            "imported 0 messages (0 B) into 8 folders, 145 already in the store, 0 failed"
        ),
        "{again}"
    );
    assert_eq!(status_json(&env)["messages"], 145);

    // Exported as mbox and as .eml: the same messages, in file order, with
    // the bytes the reader got from the original file.
    let mbox_out = export(&env, "corpus", "mbox", "out-mbox");
    let eml_out = export(&env, "corpus", "eml", "out-eml");
    let mut eml_bytes: Vec<Vec<u8>> = files_under(&eml_out).into_values().collect();
    eml_bytes.sort();
    let mut all_original = Vec::new();
    for name in want.keys() {
        let original = read_mbox(&dir.join(format!("{name}.mbox")), Quoting::Rd);
        let exported = read_mbox(&mbox_out.join(format!("{name}.mbox")), Quoting::Rd);
        assert_eq!(original.len(), exported.len(), "{name}");
        for (i, (o, e)) in original.iter().zip(&exported).enumerate() {
            let mut o_nl = o.clone();
            if !o_nl.ends_with(b"\n") {
                o_nl.push(b'\n');
            }
            assert!(o_nl == *e, "{name}: message {i} differs after export");
        }
        all_original.extend(original);
    }
    all_original.sort();
    assert!(
        all_original == eml_bytes,
        "eml export is not the imported bytes"
    );

    let verify = env.run(&["verify", "--deep"]);
    verify.assert_success();
}

/// A Takeout-style mbox written here: labels, quoting, and an envelope with
/// the zone before the year as Google writes it.
fn takeout_file(dir: &Path) -> (PathBuf, Vec<Vec<u8>>) {
    let msgs: Vec<(&str, Vec<u8>)> = vec![
        (
            "Inbox,Work,\"Important stuff\",Opened,Category Updates",
            b"Subject: one\r\n\r\nFrom here on\r\n>From there\r\n".to_vec(),
        ),
        (
            "Sent,Unread,Category Personal",
            b"Subject: two\r\n\r\nhi\r\n".to_vec(),
        ),
        ("Spam,Unread", b"Subject: three\r\n\r\nbuy\r\n".to_vec()),
        (
            "Inbox,Starred",
            b"Subject: four\r\n\r\n\xE4\xBB\x95\xE4\xBA\x8B\r\n".to_vec(),
        ),
        ("Archived", b"Subject: five\r\n\r\nold\r\n".to_vec()),
    ];
    let mut file = Vec::new();
    let mut stored = Vec::new();
    for (i, (labels, rest)) in msgs.iter().enumerate() {
        let mut m = format!(
            "X-GM-THRID: 17{i}\r\nX-Gmail-Labels: {labels}\r\nDelivered-To: me@gmail.com\r\n"
        )
        .into_bytes();
        m.extend_from_slice(rest);
        file.extend(mbox_entry(
            &format!("From 17000000000000{i}@xxx Wed Nov 15 1{i}:00:00 +0000 2023"),
            &m,
        ));
        stored.push(m);
    }
    let path = dir.join("All mail Including Spam and Trash.mbox");
    fs::write(&path, file).unwrap();
    (path, stored)
}

#[test]
fn takeout_labels_become_folders_with_one_blob_per_message() {
    let env = Env::new();
    let (path, stored) = takeout_file(env.dir.path());
    let out = import(&env, &["takeout", path_str(&path)]);
    out.assert_success();
    let bytes: usize = stored.iter().map(Vec::len).sum();
    assert_eq!(
        out.stdout,
        format!(
            "takeout: imported 5 messages ({bytes} B) into 6 folders, 0 already in the store, 0 failed\n"
        ),
        "{out}"
    );
    let want: BTreeMap<String, u64> = [
        ("All Mail", 4),
        ("INBOX", 2),
        ("Important stuff", 1),
        ("Sent", 1),
        ("Spam", 1),
        ("Work", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // Archived, Category …, Opened, Starred and Unread are not folders.
    assert_eq!(folders(&env, "takeout"), want);
    let st = status_json(&env);
    assert_eq!(st["unique_messages"], 5, "one blob per message");
    assert_eq!(st["messages"], 10, "one listing per folder");

    // The bytes stored are the message, un-quoted; flags from the labels.
    let md = export(&env, "takeout", "maildir", "out-md");
    let files = files_under(&md);
    let in_folder = |dir: &str| -> Vec<(String, Vec<u8>)> {
        files
            .iter()
            .filter(|(p, _)| p.parent().and_then(|d| d.parent()) == Some(Path::new(dir)))
            .map(|(p, b)| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    b.clone(),
                )
            })
            .collect()
    };
    let inbox = in_folder("");
    assert_eq!(inbox.len(), 2);
    let one = inbox
        .iter()
        .find(|(_, b)| *b == stored[0])
        .expect("message one in INBOX");
    assert!(one.0.ends_with(":2,S"), "{}", one.0);
    let four = inbox
        .iter()
        .find(|(_, b)| *b == stored[3])
        .expect("message four");
    assert!(four.0.ends_with(":2,FS"), "{}", four.0);
    let sent = in_folder(".Sent");
    assert_eq!(sent.len(), 1);
    assert!(sent[0].0.ends_with(":2,"), "unread: {}", sent[0].0);
    assert!(sent[0].1 == stored[1]);
    assert_eq!(in_folder(".Important stuff").len(), 1);
    // INTERNALDATE from the envelope line: 2023-11-15 10:00:00 UTC.
    assert!(one.0.starts_with("1700042400."), "{}", one.0);

    // Re-running adds nothing.
    let again = import(&env, &["takeout", path_str(&path)]);
    again.assert_success();
    assert_eq!(
        again.stdout,
        "takeout: imported 0 messages (0 B) into 6 folders, 5 already in the store, 0 failed\n"
    );
    assert_eq!(folders(&env, "takeout"), want);
    assert_eq!(status_json(&env)["messages"], 10);

    // `status` marks the account as imported.
    let human = env.run(&["status"]);
    human.assert_success();
    assert!(
        human.stdout.contains("account takeout (imported)"),
        "{human}"
    );
    assert!(human.stdout.contains("last import:"), "{human}");
}

#[test]
fn mbox_format_o_unquotes_one_level_only() {
    let env = Env::new();
    let file = env.dir.path().join("old.mbox");
    fs::write(
        &file,
        "From a Mon Jan  1 00:00:00 2024\nSubject: q\n\n>From x\n>>From y\n\n",
    )
    .unwrap();
    for (account, fmt, want) in [
        ("rd", "rd", "Subject: q\n\nFrom x\n>From y\n"),
        ("o", "o", "Subject: q\n\nFrom x\n>>From y\n"),
    ] {
        import(&env, &[account, path_str(&file), "--mbox-format", fmt]).assert_success();
        let out = export(&env, account, "eml", &format!("out-{account}"));
        let files: Vec<Vec<u8>> = files_under(&out).into_values().collect();
        assert_eq!(files, [want.as_bytes().to_vec()], "{account}");
    }
}

#[test]
fn maildir_keeps_flags_and_internaldate() {
    let env = Env::new();
    let md = env.dir.path().join("Maildir");
    for d in ["cur", "new", "tmp", ".Sent/cur", ".Lists.rust/new"] {
        fs::create_dir_all(md.join(d)).unwrap();
    }
    let files = [
        ("cur/1600000000.a.host:2,FS", 1_600_000_000u64, "FS"),
        ("cur/1600000100.b.host:2,RS", 1_600_000_100, "RS"),
        ("new/1600000200.c.host", 1_600_000_200, ""),
        (".Sent/cur/1600000300.d.host,S=99:2,S", 1_600_000_300, "S"),
        (".Lists.rust/new/1600000400.e.host", 1_600_000_400, ""),
    ];
    let mut bytes_of = BTreeMap::new();
    for (i, (name, t, _)) in files.iter().enumerate() {
        let bytes = gen_message(i, 600 + i * 10, &format!("maildir {i}"));
        let p = md.join(name);
        fs::write(&p, &bytes).unwrap();
        set_mtime(&p, *t);
        bytes_of.insert(*t, bytes);
    }
    let out = import(&env, &["old-mutt", path_str(&md)]);
    out.assert_success();
    assert!(
        out.stdout.starts_with("old-mutt: imported 5 messages ("),
        "{out}"
    );
    assert!(
        out.stdout
            .ends_with(" into 3 folders, 0 already in the store, 0 failed\n"),
        "{out}"
    );
    let want: BTreeMap<String, u64> = [("INBOX", 3), ("Lists/rust", 1), ("Sent", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(folders(&env, "old-mutt"), want);

    let out_md = export(&env, "old-mutt", "maildir", "out-md");
    let exported = files_under(&out_md);
    assert_eq!(exported.len(), 5);
    for (rel, bytes) in &exported {
        let t = mtime(&out_md.join(rel));
        let want_bytes = bytes_of
            .get(&t)
            .unwrap_or_else(|| panic!("{rel:?}: mtime {t}"));
        assert!(bytes == want_bytes, "{rel:?}");
        let name = rel.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(&format!("{t}.")), "{name}");
        let (_, _, letters) = files.iter().find(|(_, ft, _)| *ft == t).unwrap();
        assert!(name.ends_with(&format!(":2,{letters}")), "{name}");
    }

    // A file in the Maildir that is not mail: reported by name, the rest
    // (here a new message) imported, exit 1.
    fs::write(
        md.join("cur/1600000500.jpg.host:2,S"),
        b"\xFF\xD8\xFF\xE0JFIF",
    )
    .unwrap();
    let new_msg = gen_message(9, 700, "late");
    fs::write(md.join("new/1600000600.f.host"), &new_msg).unwrap();
    let out = import(&env, &["old-mutt", path_str(&md)]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("1600000500.jpg.host:2,S`: not a mail message"),
        "{out}"
    );
    assert!(out.stderr.contains("JPEG"), "{out}");
    assert!(out.stderr.contains("hint:"), "{out}");
    assert_eq!(
        out.stdout,
        format!(
            "old-mutt: imported 1 message ({} B) into 3 folders, 5 already in the store, 1 failed\n",
            new_msg.len()
        ),
        "{out}"
    );
    assert_eq!(folders(&env, "old-mutt")["INBOX"], 4);
}

#[test]
fn eml_directory_and_thunderbird_layout() {
    let env = Env::new();
    // .eml files: the root's go to INBOX, subdirectories are folders.
    let eml = env.dir.path().join("saved");
    fs::create_dir_all(eml.join("Work/2023")).unwrap();
    let m1 = gen_message(1, 500, "eml one");
    let m2 = gen_message(2, 500, "eml two");
    fs::write(eml.join("one.eml"), &m1).unwrap();
    fs::write(eml.join("Work/2023/two.EML"), &m2).unwrap();
    fs::write(eml.join("Work/notes.txt"), "not mail, not .eml").unwrap();
    set_mtime(&eml.join("one.eml"), 1_500_000_000);
    let out = import(&env, &["saved", path_str(&eml)]);
    out.assert_success();
    assert_eq!(
        out.stdout,
        "saved: imported 2 messages (1.1 kB) into 2 folders, 0 already in the store, 0 failed\n",
        "{out}"
    );
    assert_eq!(m1.len() + m2.len(), 1103);
    let got = folders(&env, "saved");
    assert_eq!(got.keys().collect::<Vec<_>>(), ["INBOX", "Work/2023"]);
    let back = export(&env, "saved", "eml", "out-eml");
    let back = files_under(&back);
    let one = back
        .iter()
        .find(|(_, b)| **b == m1)
        .expect("one.eml exported unchanged");
    let name = one.0.display().to_string();
    assert!(name.starts_with("INBOX/20170714T024000Z-"), "{name}");

    // Thunderbird: mbox files without extension, subfolders in `.sbd`
    // directories, `.msf` indexes and empty folders ignored, flags from
    // X-Mozilla-Status.
    let tb = env.dir.path().join("Local Folders");
    fs::create_dir_all(tb.join("Inbox.sbd/Projects.sbd")).unwrap();
    let tb_msg = |i: usize, status: &str| -> Vec<u8> {
        let mut m = format!("X-Mozilla-Status: {status}\r\n").into_bytes();
        m.extend(gen_message(100 + i, 400, &format!("tb {i}")));
        m
    };
    let inbox = [tb_msg(1, "0001"), tb_msg(2, "0000")];
    let work = [tb_msg(3, "0005")];
    let deep = [tb_msg(4, "0003")];
    let write = |path: &Path, msgs: &[Vec<u8>]| {
        let mut f = Vec::new();
        for m in msgs {
            f.extend(mbox_entry("From - Mon Jun  3 12:50:27 2019", m));
        }
        fs::write(path, f).unwrap();
    };
    write(&tb.join("Inbox"), &inbox);
    write(&tb.join("Inbox.sbd/Work"), &work);
    write(&tb.join("Inbox.sbd/Projects.sbd/Deep"), &deep);
    fs::write(tb.join("Inbox.msf"), "// <!-- <mdb:mork:z v=\"1.4\"/> -->").unwrap();
    fs::write(tb.join("Trash"), "").unwrap();
    fs::write(tb.join("msgFilterRules.dat"), "version=\"9\"").unwrap();
    let out = import(&env, &["old-thunderbird", path_str(&tb)]);
    out.assert_success();
    assert!(
        out.stdout
            .starts_with("old-thunderbird: imported 4 messages (")
            && out
                .stdout
                .ends_with(" into 3 folders, 0 already in the store, 0 failed\n"),
        "{out}"
    );
    assert_eq!(out.stderr, "", "{out}");
    let want: BTreeMap<String, u64> = [("INBOX", 2), ("INBOX/Projects/Deep", 1), ("INBOX/Work", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(folders(&env, "old-thunderbird"), want);
    let md = export(&env, "old-thunderbird", "maildir", "out-tb");
    let files = files_under(&md);
    let name_of = |bytes: &[u8]| -> String {
        files
            .iter()
            .find(|(_, b)| b.as_slice() == bytes)
            .map(|(p, _)| p.display().to_string())
            .unwrap_or_else(|| panic!("not exported: {}", String::from_utf8_lossy(bytes)))
    };
    assert!(name_of(&inbox[0]).ends_with(":2,S"));
    assert!(name_of(&inbox[1]).ends_with(":2,"));
    assert!(name_of(&work[0]).starts_with(".INBOX.Work/cur/"));
    assert!(name_of(&work[0]).ends_with(":2,FS"));
    assert!(name_of(&deep[0]).starts_with(".INBOX.Projects.Deep/cur/"));
    assert!(name_of(&deep[0]).ends_with(":2,RS"));
}

#[test]
fn not_mail_and_wrong_names_are_refused_with_a_hint() {
    let env = Env::new();
    let jpeg = env.dir.path().join("photo.jpg");
    fs::write(&jpeg, b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01").unwrap();
    let empty = env.dir.path().join("empty.mbox");
    fs::write(&empty, b"").unwrap();
    let text = env.dir.path().join("notes.txt");
    fs::write(&text, "shopping list\nmilk\n").unwrap();
    let nothing = env.dir.path().join("nothing-here");
    fs::create_dir_all(nothing.join("sub")).unwrap();
    for (p, want) in [
        (&jpeg, "is not mail: it is a JPEG image"),
        (&empty, "is empty"),
        (&text, "is not mail: it starts with `shopping list`"),
        (&nothing, "no mail found in"),
    ] {
        let out = import(&env, &["x", path_str(p)]);
        assert_eq!(out.code, 2, "{out}");
        assert!(out.stderr.contains(want), "{out}");
        assert!(out.stderr.contains(path_str(p)), "names the input: {out}");
        assert!(out.stderr.contains("\nhint: "), "{out}");
        assert_eq!(out.stdout, "");
    }
    let out = import(&env, &["x", path_str(&env.dir.path().join("missing.mbox"))]);
    assert_eq!(out.code, 2, "{out}");
    assert!(!env.store.join("packs").exists(), "nothing written");

    // A configured IMAP account's name is refused.
    env.add_account_raw(
        "work",
        "host = \"imap.example.com\"\nusername = \"taro@example.com\"\npassword_env = \"X\"\n",
        None,
    );
    let (takeout, _) = takeout_file(env.dir.path());
    let out = import(&env, &["work", path_str(&takeout)]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("`work` is an IMAP account"), "{out}");
    assert!(out.stderr.contains("hint: choose another name"), "{out}");
    let out = import(&env, &["bad name", path_str(&takeout)]);
    assert_eq!(out.code, 2, "{out}");
}

#[test]
fn a_broken_message_inside_an_mbox_is_reported_and_the_rest_imported() {
    let env = Env::new();
    let path = env.dir.path().join("big.mbox");
    let mut file = Vec::new();
    for i in 0..5 {
        file.extend(mbox_entry(
            "From a@b Mon Jan  1 00:00:00 2024",
            &gen_message(i, 300, "ok"),
        ));
    }
    let broken_at = file.len();
    let broken_line = file.iter().filter(|&&b| b == b'\n').count() + 1;
    file.extend(mbox_entry(
        "From a@b Mon Jan  1 00:00:00 2024",
        b"\x00\x01\x02 garbage without any header\n",
    ));
    for i in 5..8 {
        file.extend(mbox_entry(
            "From a@b Mon Jan  1 00:00:00 2024",
            &gen_message(i, 300, "ok"),
        ));
    }
    fs::write(&path, file).unwrap();
    let out = import(&env, &["old", path_str(&path)]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "big.mbox` line {broken_line} (byte {broken_at}): not a mail message"
        )),
        "{out}"
    );
    assert!(out.stdout.contains("imported 8 messages"), "{out}");
    assert!(
        out.stdout.ends_with("0 already in the store, 1 failed\n"),
        "{out}"
    );
    assert_eq!(folders(&env, "old")["big"], 8);
}

#[test]
fn kill_9_during_a_big_import_then_rerun_completes_it() {
    let env = Env::new();
    let path = env.dir.path().join("big.mbox");
    let n = 4000;
    let mut file = Vec::new();
    let mut msgs = Vec::new();
    for i in 0..n {
        let m = gen_message(i, 6_000, &format!("big {i}"));
        file.extend(mbox_entry("From a@b Mon Jan  1 00:00:00 2024", &m));
        msgs.push(m);
    }
    fs::write(&path, file).unwrap();

    let mut child = env.spawn(&["import", "big", path_str(&path)]);
    // Wait until a few batches are committed (the index has taken in a few
    // MB of pack), then kill it in the middle.
    let pack = env.store.join("packs/00/000001.pack");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if fs::metadata(&pack).map(|m| m.len()).unwrap_or(0) > 2_000_000 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "import finished before it could be killed"
        );
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(10)); // wait-ok: polling the pack size
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let out = import(&env, &["big", path_str(&path)]);
    out.assert_success();
    let already: u64 = out
        .stdout
        .split(", ")
        .find_map(|s| s.strip_suffix(" already in the store"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(already > 0 && already < n as u64, "{out}");
    assert!(
        out.stdout
            .starts_with(&format!("big: imported {} messages", n as u64 - already)),
        "{out}"
    );
    env.run(&["verify", "--deep"]).assert_success();
    assert_eq!(folders(&env, "big")["big"], n as u64);
    let st = status_json(&env);
    assert_eq!(st["messages"], n as u64);
    assert_eq!(st["unique_messages"], n as u64);
    // In file order, each once.
    let out_mbox = export(&env, "big", "mbox", "out-big");
    let back = read_mbox(&out_mbox.join("big.mbox"), Quoting::Rd);
    assert_eq!(back.len(), n);
    assert!(
        back == msgs,
        "exported messages differ from the input, or are out of order"
    );
    // And once more: nothing new.
    let out = import(&env, &["big", path_str(&path)]);
    out.assert_success();
    assert!(
        out.stdout.contains(&format!(
            "imported 0 messages (0 B) into 1 folder, {n} already"
        )),
        "{out}"
    );
}

#[test]
fn imported_mail_is_searchable_at_once() {
    let env = Env::new();
    let dir = env.dir.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    let msg = "From: 田中 <tanaka@example.jp>\r\nTo: taro@example.jp\r\nSubject: =?UTF-8?B?5bel5LqL44Gu6KaL56mN44KC44KK?=\r\nDate: Mon, 1 Feb 2021 09:00:00 +0900\r\nMessage-ID: <quote-1@example.jp>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n請求書を添付します。\r\n";
    let file = dir.join("quotes.mbox");
    fs::write(
        &file,
        mbox_entry(
            "From tanaka@example.jp Mon Feb  1 00:00:00 2021",
            msg.as_bytes(),
        ),
    )
    .unwrap();
    let r = import(&env, &["old", path_str(&file)]);
    assert_eq!(r.code, 0, "{r}");
    let found = env.run(&["search", "見積 from:tanaka"]);
    assert_eq!(found.code, 0, "{found}");
    assert_eq!(found.stdout.lines().count(), 1, "{found}");
    let body = env.run(&["search", "請求書"]);
    assert_eq!(body.stdout.lines().count(), 1, "{body}");
}

#[test]
fn a_server_account_named_like_imported_mail_is_refused() {
    let srv = support::Dovecot::start(support::DovecotOptions::default());
    let env = Env::new();
    let dir = env.dir.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a.mbox");
    fs::write(
        &file,
        mbox_entry(
            "From a@example.com Mon Feb  1 00:00:00 2021",
            &gen_message(1, 200, "x"),
        ),
    )
    .unwrap();
    assert_eq!(import(&env, &["old", path_str(&file)]).code, 0);
    env.add_account("old", &srv, "alice");
    let r = env.run(&["backup", "old"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("imported") && r.stderr.contains("hint:"),
        "{r}"
    );
}

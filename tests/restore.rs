//! Restore against real Dovecot servers, through the real binary: from a
//! `/`-separated server into an `INBOX.`-prefixed, `.`-separated one.

mod support;

use std::collections::BTreeMap;

use support::{
    append_generated, count, folder_state, gen_internaldate, gen_message, kill_9_when, Dovecot,
    DovecotOptions, Env, Fault, FaultProxy, TestClient,
};

fn source_server() -> Dovecot {
    Dovecot::start(DovecotOptions::default())
}

/// Courier/Cyrus style: `.` separator, personal folders below `INBOX.`.
fn target_server() -> Dovecot {
    Dovecot::start(DovecotOptions {
        separator: '.',
        prefix: "INBOX.".into(),
        ..DovecotOptions::default()
    })
}

/// The number after `label` in the summary line (`appended 12`, `3 refused`).
fn summary_number(stdout: &str, before: &str, after: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("restore "))
        .unwrap_or_else(|| panic!("no summary line in {stdout}"));
    if !before.is_empty() {
        let at = line
            .find(before)
            .unwrap_or_else(|| panic!("{before:?} in {line}"))
            + before.len();
        return line[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
    }
    let at = line
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} in {line}"));
    line[..at]
        .split_whitespace()
        .last()
        .unwrap()
        .parse()
        .unwrap()
}

fn appended(stdout: &str) -> u64 {
    summary_number(stdout, "appended ", "")
}
fn already_there(stdout: &str) -> u64 {
    summary_number(stdout, "", " already there")
}
fn converted(stdout: &str) -> u64 {
    summary_number(stdout, "", " converted")
}
fn refused(stdout: &str) -> u64 {
    summary_number(stdout, "", " refused")
}

/// An environment with `work` on the source server and `new` on the target.
fn env_with(source: &Dovecot, target: &Dovecot) -> Env {
    let env = Env::new();
    env.add_account("work", source, "alice");
    env.add_account("new", target, "alice");
    env
}

/// Source mail: INBOX, Work, Work/2019, Sent, Reports, flags, dates, one
/// message without a Message-ID. (Dovecot's Maildir refuses a `.` in a name;
/// a name holding the target's separator is tested with an imported account.)
fn seed_source(c: &mut TestClient) {
    c.create("Work");
    c.create("Work/2019");
    c.create("Reports");
    for i in 0..20 {
        let flags: &[&str] = match i % 4 {
            0 => &["\\Seen"],
            1 => &["\\Seen", "\\Flagged"],
            2 => &["$Forwarded", "\\Answered", "\\Seen"],
            _ => &[],
        };
        c.append(
            "INBOX",
            flags,
            Some(&gen_internaldate(i)),
            &gen_message(i, 1500 + i * 100, "inbox"),
        );
    }
    for i in 20..30 {
        c.append(
            "Work/2019",
            &["\\Seen"],
            Some(&gen_internaldate(i)),
            &gen_message(i, 800, "report"),
        );
    }
    c.append(
        "Work",
        &[],
        Some(&gen_internaldate(40)),
        &gen_message(40, 600, "work"),
    );
    c.append(
        "Sent",
        &["\\Seen"],
        Some(&gen_internaldate(41)),
        &gen_message(41, 700, "sent"),
    );
    c.append(
        "Reports",
        &[],
        Some(&gen_internaldate(42)),
        &gen_message(42, 700, "dot"),
    );
    c.append(
        "INBOX",
        &["\\Seen"],
        Some("02-Mar-2021 08:00:00 -0500"),
        b"From: x@example.org\r\nSubject: no message id\r\n\r\nplain\nbare LF body\n",
    );
}

const MAPPED: [(&str, &str); 5] = [
    ("INBOX", "INBOX"),
    ("Work", "INBOX.Work"),
    ("Work/2019", "INBOX.Work.2019"),
    ("Sent", "INBOX.Sent"),
    ("Reports", "INBOX.Reports"),
];

#[test]
fn restore_to_a_prefixed_dot_server_is_exact_and_a_rerun_appends_nothing() {
    let src = source_server();
    let dst = target_server();
    seed_source(&mut src.client("alice"));
    let env = env_with(&src, &dst);
    env.run(&["backup", "work"]).assert_success();

    let r = env.run(&["restore", "new", "--from", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(appended(&r.stdout), 34, "{r}");
    assert_eq!(already_there(&r.stdout), 0, "{r}");
    let (mut s, mut t) = (src.client("alice"), dst.client("alice"));
    for (from, to) in MAPPED {
        let want = folder_state(&mut s, from);
        assert!(!want.is_empty());
        // Bytes as the source served them, same flags, same instant.
        assert_eq!(folder_state(&mut t, to), want, "{from} → {to}");
    }
    let listed = t.list();
    assert!(
        listed.contains(&"INBOX.Work.2019".to_string()),
        "{listed:?}"
    );

    // Again: nothing appended twice.
    let r = env.run(&["restore", "new", "--from", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(appended(&r.stdout), 0, "{r}");
    assert_eq!(already_there(&r.stdout), 34, "{r}");
    for (from, to) in MAPPED {
        assert_eq!(count(&mut t, to), count(&mut s, from), "{to}");
    }
    // The table names each folder with its counts.
    assert!(
        r.stdout.contains("INBOX.Work.2019") && r.stdout.contains("already there"),
        "{r}"
    );
}

#[test]
fn kill_9_in_the_middle_then_rerun_gives_no_duplicates_and_misses_nothing() {
    let src = source_server();
    let dst = target_server();
    let n = 600;
    append_generated(
        &mut src.client("alice"),
        "INBOX",
        0..n,
        20_000,
        "kill",
        &["\\Seen"],
    );
    let env = env_with(&src, &dst);
    env.run(&["backup", "work"]).assert_success();

    let mut t = dst.client("alice");
    let args = ["restore", "new", "--from", "work", "--jobs", "1"];
    kill_9_when(&env, &args, &mut t, "INBOX", 60, n as u64);

    let r = env.run(&["restore", "new", "--from", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        appended(&r.stdout) + already_there(&r.stdout),
        n as u64,
        "{r}"
    );
    assert_eq!(count(&mut t, "INBOX"), n as u64, "no duplicates");
    assert_eq!(
        folder_state(&mut t, "INBOX"),
        folder_state(&mut src.client("alice"), "INBOX"),
        "nothing missing"
    );
}

#[test]
fn a_target_holding_half_the_mail_gets_only_the_other_half() {
    let src = source_server();
    let dst = target_server();
    let mut s = src.client("alice");
    for i in 0..16 {
        let bytes = if i % 4 == 3 {
            // No Message-ID: recognised by size, date and bytes.
            format!("From: a@example.org\r\nSubject: no id {i}\r\n\r\nbody {i}\r\n").into_bytes()
        } else {
            gen_message(i, 900, "half")
        };
        s.append("INBOX", &["\\Seen"], Some(&gen_internaldate(i)), &bytes);
    }
    let env = env_with(&src, &dst);
    env.run(&["backup", "work"]).assert_success();

    // Half of it reached the target some other way: same bytes, same date.
    let mut t = dst.client("alice");
    for m in s.fetch_all("INBOX").iter().step_by(2) {
        let flags: Vec<&str> = m.flags.iter().map(String::as_str).collect();
        t.append("INBOX", &flags, Some(&m.internaldate), &m.bytes);
    }
    assert_eq!(count(&mut t, "INBOX"), 8);

    let r = env.run(&["restore", "new", "--from", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(already_there(&r.stdout), 8, "{r}");
    assert_eq!(appended(&r.stdout), 8, "{r}");
    assert_eq!(folder_state(&mut t, "INBOX"), folder_state(&mut s, "INBOX"));
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let src = source_server();
    let dst = target_server();
    seed_source(&mut src.client("alice"));
    let env = env_with(&src, &dst);
    env.run(&["backup", "work"]).assert_success();
    let mut t = dst.client("alice");
    let before = t.list();

    let r = env.run(&["restore", "new", "--from", "work", "--dry-run"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("would append 34"), "{r}");
    assert!(r.stdout.contains("would append"), "{r}");
    assert!(r.stdout.contains("INBOX.Work.2019 (new)"), "{r}");
    let inbox = r
        .stdout
        .lines()
        .find(|l| l.starts_with("INBOX "))
        .unwrap_or_else(|| panic!("an INBOX row: {r}"));
    assert!(inbox.split_whitespace().nth(1) == Some("21"), "{inbox}");
    let after = t.list();
    for f in ["INBOX.Work", "INBOX.Work.2019", "INBOX.Reports"] {
        assert!(!after.contains(&f.to_string()), "{f} created: {after:?}");
    }
    assert!(after.len() <= before.len().max(6), "{after:?}");
    assert_eq!(count(&mut t, "INBOX"), 0, "nothing appended");
}

#[test]
fn to_folder_folder_pattern_and_dates_select_what_is_restored() {
    let src = source_server();
    let dst = target_server();
    seed_source(&mut src.client("alice"));
    let env = env_with(&src, &dst);
    env.run(&["backup", "work"]).assert_success();

    let r = env.run(&[
        "restore",
        "new",
        "--from",
        "work",
        "--folder",
        "Work/*",
        "--to-folder",
        "Restored/",
    ]);
    assert_eq!(r.code, 0, "{r}");
    let mut t = dst.client("alice");
    assert_eq!(
        folder_state(&mut t, "INBOX.Restored.Work.2019"),
        folder_state(&mut src.client("alice"), "Work/2019")
    );
    assert_eq!(count(&mut t, "INBOX"), 0, "only the chosen folder");
    assert!(!t.list().contains(&"INBOX.Work".to_string()));

    // gen_date(i) is 2020-01-01 00:00 +0900 plus i hours; the 2nd of January
    // holds messages 24..48 in that zone and 33..57 in UTC (the zone the
    // server may serve dates in): of the seeded ones, 40, 41 and 42 either way.
    let r = env.run(&[
        "restore",
        "new",
        "--from",
        "work",
        "--since",
        "2020-01-02",
        "--before",
        "2020-01-03",
        "--to-folder",
        "Day2/",
    ]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(appended(&r.stdout), 3, "{r}");
    assert_eq!(count(&mut t, "INBOX.Day2.Work"), 1);
    assert_eq!(count(&mut t, "INBOX.Day2.Sent"), 1);
    assert_eq!(count(&mut t, "INBOX.Day2.Reports"), 1);
    assert!(
        !t.list().contains(&"INBOX.Day2.INBOX".to_string()),
        "no folder is created for nothing"
    );

    let bad = env.run(&["restore", "new", "--since", "2020-13-01"]);
    assert_eq!(bad.code, 2, "{bad}");
    let none = env.run(&["restore", "new", "--from", "nobody"]);
    assert_eq!(none.code, 2, "{none}");
    assert!(
        none.stderr.contains("`nobody`") && none.stderr.contains("hint:"),
        "{none}"
    );
}

#[test]
fn wrong_target_password_exits_3() {
    let src = source_server();
    let dst = target_server();
    src.client("alice")
        .append("INBOX", &[], None, &gen_message(1, 500, "x"));
    let env = env_with(&src, &dst);
    env.run(&["backup", "work"]).assert_success();
    env.set_var("MK_PW_NEW", "not-the-password");
    let r = env.run(&["restore", "new", "--from", "work"]);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("hint:"), "{r}");
    assert!(!r.stderr.contains("not-the-password"), "{r}");
}

fn proxied_target(env: &Env, proxy: &FaultProxy, dst: &Dovecot) {
    env.add_account_via("strict", proxy, dst, "alice");
}

#[test]
fn strict_append_fault_refuses_like_cyrus_and_yahoo() {
    let dst = target_server();
    let proxy = FaultProxy::start(
        dst.imap_port(),
        Fault::StrictAppend {
            max_size: Some(5000),
        },
    );
    let mut c = TestClient::connect_plain(proxy.port(), "alice", dst.password("alice"));
    assert!(c
        .try_append("INBOX", b"Subject: lf\n\nbody\n")
        .contains("NO"));
    assert!(c
        .try_append("INBOX", b"Subject: cr\r\n\r\nno end")
        .contains("NO"));
    assert!(c
        .try_append("INBOX", b"Subject: n\r\n\r\na\0b\r\n")
        .contains("NO"));
    assert!(c
        .try_append("INBOX", b"From x Tue Jan 1\r\nSubject: y\r\n\r\nz\r\n")
        .contains("NO"));
    assert!(c
        .try_append("INBOX", &gen_message(1, 6000, "big"))
        .contains("NO [LIMIT]"));
    let ok = c.try_append("INBOX", &gen_message(2, 1000, "fine"));
    assert!(ok.contains("OK"), "{ok}");
    assert_eq!(count(&mut dst.client("alice"), "INBOX"), 1);
}

/// A store with an imported account (no server behind it) whose messages have
/// bare LF, bare CR, no final newline, a NUL byte, a bad header line.
fn imported_store(env: &Env) -> Vec<Vec<u8>> {
    use mailkeep::model::records::{MailboxRecord, RefEvent, RefRecord};
    use mailkeep::model::{Flags, InternalDate};
    let msgs: Vec<Vec<u8>> = vec![
        b"From: a@example.org\nSubject: bare lf\nMessage-ID: <lf@x>\n\nline\n".to_vec(),
        b"From: a@example.org\rSubject: bare cr\rMessage-ID: <cr@x>\r\rline\r".to_vec(),
        b"From: a@example.org\r\nSubject: no end\r\nMessage-ID: <end@x>\r\n\r\nend".to_vec(),
        b"From: a@example.org\r\nSubject: exact\r\nMessage-ID: <ok@x>\r\n\r\nfine\r\n".to_vec(),
        b"From: a@example.org\r\nSubject: nul\r\nMessage-ID: <nul@x>\r\n\r\na\0b\r\n".to_vec(),
        b"From someone Tue Jan 1\r\nSubject: bad header\r\n\r\nx\r\n".to_vec(),
    ];
    let mut store = mailkeep::store::Store::open(&env.store).unwrap();
    store
        .put_mailbox(MailboxRecord {
            account: "old".into(),
            account_kind: "import".into(),
            mailbox: "Imported 1.5".into(),
            name: "Imported 1.5".into(),
            delimiter: Some("/".into()),
            special_use: None,
            uidvalidity: 1,
            uidnext: None,
            highestmodseq: None,
            server_count: None,
            gone: false,
            at: 1,
        })
        .unwrap();
    for (i, m) in msgs.iter().enumerate() {
        let (blob, _) = store.put_blob(m).unwrap();
        let date = InternalDate::parse_imap(&gen_internaldate(i)).unwrap();
        store
            .add_ref(RefRecord {
                account: "old".into(),
                mailbox: "Imported 1.5".into(),
                uidvalidity: 1,
                uid: i as u32 + 1,
                at: 1,
                event: RefEvent::Seen {
                    blob,
                    internaldate: date.unix,
                    date_offset: date.offset_min,
                    size: m.len() as u64,
                    flags: Flags::new(["\\Seen"]).to_text(),
                    modseq: None,
                },
            })
            .unwrap();
    }
    store.commit().unwrap();
    msgs
}

fn crlf(m: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < m.len() {
        match m[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if m.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn line_endings_are_converted_only_when_refused_and_the_rest_is_reported() {
    let dst = target_server();
    let proxy = FaultProxy::start(dst.imap_port(), Fault::StrictAppend { max_size: None });
    let env = Env::new();
    proxied_target(&env, &proxy, &dst);
    let msgs = imported_store(&env);

    let r = env.run(&["restore", "strict", "--from", "old"]);
    assert_eq!(r.code, 1, "refusals make the exit code 1: {r}");
    assert_eq!(converted(&r.stdout), 3, "{r}");
    assert_eq!(refused(&r.stdout), 2, "{r}");
    assert_eq!(appended(&r.stdout), 4, "{r}");
    assert!(
        r.stderr
            .contains("`Imported 1.5` is named `INBOX.Imported 1_5`"),
        "the renamed folder is named: {r}"
    );
    assert!(
        r.stderr.contains("refused: folder `INBOX.Imported 1_5`")
            && r.stderr.contains("\"nul\"")
            && r.stderr.contains("NUL characters")
            && r.stderr.contains("\"bad header\"")
            && r.stderr.contains("invalid header"),
        "each refused message is named with its reason: {r}"
    );
    let mut want: Vec<Vec<u8>> = msgs[..4].iter().map(|m| crlf(m)).collect();
    want.sort();
    let mut got: Vec<Vec<u8>> = dst
        .client("alice")
        .fetch_all("INBOX.Imported 1_5")
        .into_iter()
        .map(|m| m.bytes)
        .collect();
    got.sort();
    assert_eq!(got, want, "exact bytes, or the same with CRLF line endings");

    // Again: the converted ones are known, the refused ones are tried again.
    let r = env.run(&["restore", "strict", "--from", "old"]);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(appended(&r.stdout), 0, "{r}");
    assert_eq!(already_there(&r.stdout), 4, "{r}");
    assert_eq!(refused(&r.stdout), 2, "{r}");
}

#[test]
fn varied_corpus_is_restored_and_what_a_strict_server_refuses_is_reported() {
    let Some(corpus) = support::corpus_dir() else {
        return;
    };
    let src = source_server();
    let dst = target_server();
    let mut s = src.client("alice");
    s.create("Corpus");
    let mut files: Vec<_> = std::fs::read_dir(corpus.join("varied"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in &files {
        let _ = s.try_append("Corpus", &std::fs::read(f).unwrap());
    }
    // Identical files are one message in the store, restored as many times
    // as the folder held them.
    let mut served: Vec<Vec<u8>> = s.fetch_all("Corpus").into_iter().map(|m| m.bytes).collect();
    served.sort();
    let env = Env::new();
    env.add_account("work", &src, "alice");
    env.run(&["backup", "work"]).assert_success();

    // A plain Dovecot takes everything, byte for byte.
    env.add_account("new", &dst, "alice");
    let r = env.run(&["restore", "new", "--from", "work", "--jobs", "2"]);
    assert_eq!(r.code, 0, "{r}");
    // Dovecot does not keep every message it is given byte for byte (it
    // drops a bare CR at the very end): compare with what it serves for the
    // same bytes appended directly.
    let mut t = dst.client("alice");
    t.create("INBOX.Control");
    for m in &served {
        t.append("INBOX.Control", &[], None, m);
    }
    let bytes_of = |t: &mut TestClient, f: &str| {
        let mut v: Vec<Vec<u8>> = t.fetch_all(f).into_iter().map(|m| m.bytes).collect();
        v.sort();
        v
    };
    let control = bytes_of(&mut t, "INBOX.Control");
    let restored = bytes_of(&mut t, "INBOX.Corpus");
    assert_eq!(restored.len(), served.len());
    assert!(
        restored == control,
        "the corpus came back as a direct APPEND of it does"
    );
    let exact = restored
        .iter()
        .filter(|m| served.binary_search(m).is_ok())
        .count();
    assert!(
        exact + 40 > served.len(),
        "{exact} of {} byte for byte",
        served.len()
    );

    // Without the restore map (a crash before it was written, another
    // machine), the target itself tells what is there: nothing is appended.
    let db = rusqlite::Connection::open(env.store.join("index.sqlite")).unwrap();
    db.execute("DELETE FROM restored", []).unwrap();
    drop(db);
    let r = env.run(&["restore", "new", "--from", "work", "--folder", "Corpus"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(appended(&r.stdout), 0, "{r}");
    assert_eq!(already_there(&r.stdout), served.len() as u64, "{r}");

    // A strict server (Cyrus, Yahoo) behind the proxy: converted or refused,
    // every message accounted for, each refusal named.
    let proxy = FaultProxy::start(dst.imap_port(), Fault::StrictAppend { max_size: None });
    proxied_target(&env, &proxy, &dst);
    let r = env.run(&[
        "restore",
        "strict",
        "--from",
        "work",
        "--to-folder",
        "Strict",
    ]);
    assert_eq!(r.code, 1, "{r}");
    let n_refused = refused(&r.stdout);
    assert!(n_refused > 0, "{r}");
    assert_eq!(
        r.stderr
            .lines()
            .filter(|l| l.starts_with("refused: "))
            .count() as u64,
        n_refused,
        "{r}"
    );
    let n_appended = appended(&r.stdout);
    assert_eq!(n_appended + n_refused, served.len() as u64, "{r}");
    let strict: Vec<Vec<u8>> = dst
        .client("alice")
        .fetch_all("INBOX.Strict")
        .into_iter()
        .map(|m| m.bytes)
        .collect();
    assert_eq!(strict.len() as u64, n_appended);
    let mut as_served: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for m in &served {
        *as_served.entry(m.clone()).or_default() += 1;
        if crlf(m) != *m {
            *as_served.entry(crlf(m)).or_default() += 1;
        }
    }
    for m in &strict {
        assert!(
            as_served.contains_key(m),
            "a restored message is what the source served, or that with CRLF"
        );
    }
    let n_converted = converted(&r.stdout);
    let exact = strict.iter().filter(|m| served.contains(m)).count() as u64;
    assert!(exact + n_converted >= n_appended, "{r}");
}

#[test]
fn archived_mail_goes_back_to_the_account_it_came_from() {
    let src = source_server();
    let mut s = src.client("alice");
    for i in 0..12 {
        let date = if i < 6 {
            format!("{:02}-Mar-2019 10:00:00 +0000", i + 1)
        } else {
            format!("{:02}-Mar-2023 10:00:00 +0000", i + 1)
        };
        s.append(
            "INBOX",
            &["\\Seen"],
            Some(&date),
            &gen_message(i, 700, "arch"),
        );
    }
    let before = folder_state(&mut s, "INBOX");
    let env = Env::new();
    env.add_account("work", &src, "alice");
    env.run(&["backup", "work"]).assert_success();
    let r = env.run(&["archive", "work", "--before", "2020-01-01"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        count(&mut src.client("alice"), "INBOX"),
        6,
        "archive took the old half: {r}"
    );

    let dry = env.run(&["restore", "work", "--archived-only", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(dry.stdout.contains("would append 6"), "{dry}");
    let r = env.run(&["restore", "work", "--archived-only"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(appended(&r.stdout), 6, "{r}");
    assert_eq!(folder_state(&mut src.client("alice"), "INBOX"), before);
    let r = env.run(&["restore", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(appended(&r.stdout), 0, "{r}");
    assert_eq!(already_there(&r.stdout), 12, "{r}");
}

#[test]
fn corpus_mbox_files_are_imported_then_restored_with_refusals_reported() {
    let Some(corpus) = support::corpus_dir() else {
        return;
    };
    let dst = target_server();
    let proxy = FaultProxy::start(dst.imap_port(), Fault::StrictAppend { max_size: None });
    let env = Env::new();
    proxied_target(&env, &proxy, &dst);
    let r = env.run(&["import", "mboxes", corpus.join("mbox").to_str().unwrap()]);
    assert!(r.code == 0 || r.code == 1, "{r}");
    let st = env.run(&["status", "--json"]);
    let st: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    let acct = st["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "mboxes")
        .unwrap();
    let stored: u64 = acct["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["stored"].as_u64().unwrap())
        .sum();
    assert!(
        stored >= 140,
        "the corpus mbox files hold 145 messages: {st}"
    );

    let r = env.run(&["restore", "strict", "--from", "mboxes"]);
    assert!(r.code == 0 || r.code == 1, "{r}");
    // Every stored message is accounted for: appended (as is or converted) or refused, by name.
    let (appended, refused) = (appended(&r.stdout), refused(&r.stdout));
    assert_eq!(appended + refused, stored, "{r}");
    assert_eq!(
        r.stderr.matches("refused: folder").count() as u64,
        refused,
        "{r}"
    );
    let mut c = dst.client("alice");
    let on_server: u64 = c.list().iter().map(|f| count(&mut c, f)).sum();
    assert_eq!(
        on_server, appended,
        "the target holds exactly what was appended"
    );

    let again = env.run(&["restore", "strict", "--from", "mboxes"]);
    assert_eq!(
        appended_or_zero(&again.stdout),
        0,
        "a re-run appends nothing: {again}"
    );
}

fn appended_or_zero(stdout: &str) -> u64 {
    if stdout.lines().any(|l| l.starts_with("restore ")) {
        appended(stdout)
    } else {
        0
    }
}

#[test]
fn special_use_folders_land_in_the_targets_folders_of_that_use() {
    let src = source_server();
    // An iCloud-like target: the same uses, other names.
    let dst = Dovecot::start(DovecotOptions {
        special_names: vec![
            ("Sent Messages".into(), "\\Sent".into()),
            ("Deleted Messages".into(), "\\Trash".into()),
        ],
        ..DovecotOptions::default()
    });
    let mut c = src.client("alice");
    c.append("Sent", &["\\Seen"], None, &gen_message(1, 500, "sent one"));
    c.append("Trash", &[], None, &gen_message(2, 500, "thrown away"));
    c.append("INBOX", &[], None, &gen_message(3, 500, "inbox"));
    let env = env_with(&src, &dst);
    assert_eq!(env.run(&["backup", "work"]).code, 0);
    let r = env.run(&["restore", "new", "--from", "work"]);
    assert_eq!(r.code, 0, "{r}");
    let mut t = dst.client("alice");
    assert_eq!(folder_state(&mut t, "Sent Messages").len(), 1, "{r}");
    assert_eq!(folder_state(&mut t, "Deleted Messages").len(), 1, "{r}");
    let names = t.list();
    assert!(
        !names.iter().any(|n| n == "Sent" || n == "Trash"),
        "no second Sent or Trash: {names:?}"
    );
    assert_eq!(folder_state(&mut t, "INBOX").len(), 1);
}

/// The APPEND commands the proxy saw, and how many messages they carried
/// (one per literal: `{n}` or `{n+}` at the end of a line counts in the
/// recorded first line only, so MULTIAPPEND is told by the command count).
fn append_commands(proxy: &FaultProxy) -> usize {
    proxy
        .commands()
        .iter()
        .filter(|c| c.to_ascii_uppercase().starts_with("APPEND "))
        .count()
}

#[test]
fn identical_copies_in_a_folder_are_each_restored_with_their_own_flags_and_dates() {
    let src = source_server();
    let dst = target_server();
    let mut s = src.client("alice");
    let twin = gen_message(1, 1200, "twin");
    // Three copies of the same bytes, each with its own flags and date, among others.
    s.append("INBOX", &["\\Seen"], Some(&gen_internaldate(1)), &twin);
    s.append(
        "INBOX",
        &[],
        Some(&gen_internaldate(2)),
        &gen_message(2, 900, "x"),
    );
    s.append("INBOX", &["\\Flagged"], Some(&gen_internaldate(1)), &twin);
    s.append(
        "INBOX",
        &["\\Seen", "\\Answered"],
        Some(&gen_internaldate(3)),
        &twin,
    );
    s.append(
        "INBOX",
        &[],
        Some(&gen_internaldate(4)),
        &gen_message(4, 900, "y"),
    );
    let env = env_with(&src, &dst);
    env.run(&["backup", "work"]).assert_success();
    let status = env.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let work = v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "work")
        .unwrap();
    let stored = work["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "INBOX")
        .unwrap()["stored"]
        .as_u64()
        .unwrap();
    assert_eq!(stored, 5, "status counts every message: {status}");

    let r = env.run(&["restore", "new", "--from", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(appended(&r.stdout), 5, "{r}");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("INBOX ") && l.split_whitespace().nth(1) == Some("5")),
        "the table's `in store` is what status counts: {r}"
    );
    let mut t = dst.client("alice");
    assert_eq!(folder_state(&mut t, "INBOX"), folder_state(&mut s, "INBOX"));

    // Again: nothing appended, every copy found.
    let r = env.run(&["restore", "new", "--from", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(appended(&r.stdout), 0, "{r}");
    assert_eq!(already_there(&r.stdout), 5, "{r}");
    // Without the restore map, the target itself tells: still nothing twice.
    let db = rusqlite::Connection::open(env.store.join("index.sqlite")).unwrap();
    db.execute("DELETE FROM restored", []).unwrap();
    drop(db);
    let r = env.run(&["restore", "new", "--from", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(appended(&r.stdout), 0, "{r}");
    assert_eq!(count(&mut t, "INBOX"), 5);
}

#[test]
fn a_server_that_refuses_append_into_the_open_mailbox_gets_every_message() {
    let src = source_server();
    let dst = target_server();
    let mut s = src.client("alice");
    for i in 0..30 {
        s.append(
            "INBOX",
            &["\\Seen"],
            Some(&gen_internaldate(i)),
            &gen_message(i, 800, "c"),
        );
    }
    let env = env_with(&src, &dst);
    env.run(&["backup", "work"]).assert_success();
    // Half of it is on the target already, so the restore has to look at the
    // target folder (EXAMINE) before it appends.
    let mut t = dst.client("alice");
    for m in s.fetch_all("INBOX").iter().step_by(2) {
        t.append("INBOX", &["\\Seen"], Some(&m.internaldate), &m.bytes);
    }
    let proxy = FaultProxy::start(dst.imap_port(), Fault::CourierAppend);
    env.add_account_via("courier", &proxy, &dst, "alice");

    let r = env.run(&["restore", "courier", "--from", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(appended(&r.stdout), 15, "{r}");
    assert_eq!(already_there(&r.stdout), 15, "{r}");
    assert_eq!(refused(&r.stdout), 0, "{r}");
    assert_eq!(folder_state(&mut t, "INBOX"), folder_state(&mut s, "INBOX"));
    let commands = proxy.commands();
    assert!(
        commands.iter().any(|c| c.starts_with("EXAMINE")),
        "the target was looked at: {commands:?}"
    );
}

#[test]
fn courier_fault_refuses_append_into_the_open_mailbox() {
    let dst = target_server();
    let proxy = FaultProxy::start(dst.imap_port(), Fault::CourierAppend);
    let mut c = TestClient::connect_plain(proxy.port(), "alice", dst.password("alice"));
    let m = gen_message(1, 500, "open");
    assert!(c.try_append("INBOX", &m).contains("OK"));
    c.raw_command("EXAMINE INBOX");
    let no = c.try_append("INBOX", &m);
    assert!(no.contains("NO Current box is selected READ-ONLY"), "{no}");
    c.raw_command("CLOSE");
    assert!(c.try_append("INBOX", &m).contains("OK"));
    assert_eq!(count(&mut dst.client("alice"), "INBOX"), 2);
}

#[test]
fn every_way_of_appending_gives_the_same_exact_mail() {
    // MULTIAPPEND with LITERAL+ (Dovecot as it is), APPENDs sent without
    // waiting (no MULTIAPPEND), and one at a time (neither).
    let src = source_server();
    let mut s = src.client("alice");
    s.create("Work");
    let n = 450;
    for i in 0..n {
        let folder = if i % 3 == 0 { "Work" } else { "INBOX" };
        let flags: &[&str] = if i % 2 == 0 {
            &["\\Seen"]
        } else {
            &["\\Flagged"]
        };
        s.append(
            folder,
            flags,
            Some(&gen_internaldate(i)),
            &gen_message(i, 600 + i * 37, "w"),
        );
    }
    let env = Env::new();
    env.add_account("work", &src, "alice");
    env.run(&["backup", "work"]).assert_success();
    for (name, hidden) in [
        ("multi", ""),
        ("pipelined", "MULTIAPPEND"),
        ("single", "MULTIAPPEND LITERAL+ LITERAL-"),
    ] {
        let dst = target_server();
        let fault = if hidden.is_empty() {
            Fault::None
        } else {
            Fault::RemoveCapability(hidden.into())
        };
        let proxy = FaultProxy::start(dst.imap_port(), fault);
        env.add_account_via(name, &proxy, &dst, "alice");
        let r = env.run(&["restore", name, "--from", "work", "--jobs", "1"]);
        assert_eq!(r.code, 0, "{name}: {r}");
        assert_eq!(appended(&r.stdout), n as u64, "{name}: {r}");
        let mut t = dst.client("alice");
        assert_eq!(
            folder_state(&mut t, "INBOX"),
            folder_state(&mut s, "INBOX"),
            "{name}"
        );
        assert_eq!(
            folder_state(&mut t, "INBOX.Work"),
            folder_state(&mut s, "Work"),
            "{name}"
        );
        let appends = append_commands(&proxy);
        match name {
            // 300 + 150 messages in batches of at most 200.
            "multi" => assert!(appends <= 4, "{name}: {appends} APPEND commands"),
            _ => assert_eq!(appends, n, "{name}"),
        }
        let r = env.run(&["restore", name, "--from", "work"]);
        assert_eq!(appended(&r.stdout), 0, "{name}: {r}");
    }
}

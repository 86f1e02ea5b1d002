//! `mailkeep migrate` between real Dovecot servers, through the real
//! binary: a `/`-separated server with iCloud-like folder names into an
//! `INBOX.`-prefixed, `.`-separated one; re-runs, flag changes, kill -9,
//! the folder map, batches and shards.

mod support;

use support::{
    append_generated, count, folder_state, gen_internaldate, gen_message, kill_9_when, Dovecot,
    DovecotOptions, Env, Fault, FaultProxy, TestClient,
};

/// iCloud-like: `Sent Messages`, `Deleted Messages`, `Junk` with their
/// special-use flags; users alice, bob and carol.
fn source_server() -> Dovecot {
    Dovecot::start(DovecotOptions {
        users: users(),
        special_names: [
            ("Sent Messages", "\\Sent"),
            ("Drafts", "\\Drafts"),
            ("Deleted Messages", "\\Trash"),
            ("Junk", "\\Junk"),
        ]
        .iter()
        .map(|(n, f)| (n.to_string(), f.to_string()))
        .collect(),
        ..DovecotOptions::default()
    })
}

/// Courier/Cyrus style: `.` separator, personal folders below `INBOX.`,
/// `Sent`, `Drafts`, `Trash`, `Junk`, `Archive`.
fn target_server() -> Dovecot {
    Dovecot::start(DovecotOptions {
        separator: '.',
        prefix: "INBOX.".into(),
        users: users(),
        ..DovecotOptions::default()
    })
}

fn users() -> Vec<(String, String)> {
    ["alice", "bob", "carol"]
        .iter()
        .map(|u| (u.to_string(), format!("{u}-secret")))
        .collect()
}

/// Source folder → target folder, as the map should put them.
const MAPPED: &[(&str, &str)] = &[
    ("INBOX", "INBOX"),
    ("Work", "INBOX.Work"),
    ("Work/2019", "INBOX.Work.2019"),
    ("Sent Messages", "INBOX.Sent"),
    ("Deleted Messages", "INBOX.Trash"),
    ("Junk", "INBOX.Junk"),
];

/// 20 in INBOX with varied flags, 10 in Work/2019, one each in Work,
/// Sent Messages, Deleted Messages and Junk; one INBOX message twice.
fn seed(c: &mut TestClient) {
    c.create("Work");
    c.create("Work/2019");
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
    // The same bytes again, with other flags and date: a second copy.
    c.append(
        "INBOX",
        &["\\Flagged"],
        Some(&gen_internaldate(99)),
        &gen_message(3, 1800, "inbox"),
    );
    for i in 20..30 {
        c.append(
            "Work/2019",
            &["\\Seen"],
            Some(&gen_internaldate(i)),
            &gen_message(i, 800, "report"),
        );
    }
    for (i, folder) in [
        (40, "Work"),
        (41, "Sent Messages"),
        (42, "Deleted Messages"),
        (43, "Junk"),
    ] {
        c.append(
            folder,
            &["\\Seen"],
            Some(&gen_internaldate(i)),
            &gen_message(i, 700, folder),
        );
    }
}

fn env_with(src: &Dovecot, dst: &Dovecot) -> Env {
    let env = Env::new();
    env.add_account("old", src, "alice");
    env.add_account("new", dst, "alice");
    env
}

fn assert_same(src: &Dovecot, dst: &Dovecot, user: &str, map: &[(&str, &str)]) {
    let (mut s, mut t) = (src.client(user), dst.client(user));
    for (from, to) in map {
        let want = folder_state(&mut s, from);
        assert!(!want.is_empty(), "{from} is empty on the source");
        assert_eq!(folder_state(&mut t, to), want, "{user}: {from} → {to}");
    }
}

/// The numbers of the summary line: `N on source, N stored, N on target
/// (N appended, …), N left out, N flag changes, N refused, N not matching`.
fn summary(stdout: &str, label: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("migrate "))
        .unwrap_or_else(|| panic!("no summary line in {stdout}"));
    let at = line
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} in {line}"));
    line[..at]
        .trim_end()
        .rsplit([' ', '('])
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("a number before {label:?} in {line}"))
}

#[test]
fn migrate_moves_every_folder_flag_and_date_and_a_rerun_moves_only_what_changed() {
    let src = source_server();
    let dst = target_server();
    seed(&mut src.client("alice"));
    let env = env_with(&src, &dst);

    let r = env.run(&["migrate", "old", "new"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(summary(&r.stdout, " on source"), 35, "{r}");
    assert_eq!(summary(&r.stdout, " appended"), 35, "{r}");
    assert_eq!(summary(&r.stdout, " not matching"), 0, "{r}");
    assert_same(&src, &dst, "alice", MAPPED);
    // The reconciliation table: one row per folder, each matching.
    for (from, to) in MAPPED {
        let row = r
            .stdout
            .lines()
            .find(|l| l.starts_with(from) && l.contains(to))
            .unwrap_or_else(|| panic!("no row for {from} in {r}"));
        assert!(row.trim_end().ends_with("ok"), "{row}");
    }
    // Nothing lands in folders of the old names.
    let listed = dst.client("alice").list();
    assert!(
        !listed
            .iter()
            .any(|f| f.contains("Sent Messages") || f.contains("Deleted")),
        "{listed:?}"
    );

    // Again, nothing changed: nothing moves.
    let r = env.run(&["migrate", "old", "new"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(summary(&r.stdout, " appended"), 0, "{r}");
    assert_eq!(summary(&r.stdout, " on target"), 35, "{r}");
    assert_same(&src, &dst, "alice", MAPPED);

    // New mail and flag changes on the source move with the next run.
    let mut s = src.client("alice");
    for i in 50..53 {
        s.append(
            "INBOX",
            &[],
            Some(&gen_internaldate(i)),
            &gen_message(i, 900, "later"),
        );
    }
    let inbox = s.fetch_all("INBOX");
    s.store_flags("INBOX", inbox[0].uid, "+FLAGS", &["\\Flagged", "$Label1"]);
    s.store_flags("INBOX", inbox[1].uid, "-FLAGS", &["\\Seen", "\\Flagged"]);
    let report = s.fetch_all("Work/2019")[0].uid;
    s.store_flags("Work/2019", report, "+FLAGS", &["\\Answered"]);
    let r = env.run(&["migrate", "old", "new"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(summary(&r.stdout, " appended"), 3, "{r}");
    assert_eq!(summary(&r.stdout, " flag changes"), 3, "{r}");
    assert_same(&src, &dst, "alice", MAPPED);
    assert_eq!(count(&mut dst.client("alice"), "INBOX"), 24);
}

#[test]
fn dry_run_prints_the_folder_map_and_writes_nothing() {
    let src = source_server();
    let dst = target_server();
    seed(&mut src.client("alice"));
    let env = env_with(&src, &dst);
    let before = dst.client("alice").list();

    let r = env.run(&["migrate", "old", "new", "--dry-run"]);
    assert_eq!(r.code, 0, "{r}");
    for (from, to, n) in [
        ("Sent Messages", "INBOX.Sent", "1"),
        ("Work/2019", "INBOX.Work.2019 (new)", "10"),
        ("INBOX", "INBOX", "21"),
    ] {
        let row = r
            .stdout
            .lines()
            .find(|l| l.starts_with(from))
            .unwrap_or_else(|| panic!("no row for {from} in {r}"));
        assert!(
            row.contains(to) && row.split_whitespace().any(|w| w == n),
            "{row}"
        );
    }
    assert!(r.stdout.contains("\\Sent"), "the special use is shown: {r}");
    assert_eq!(dst.client("alice").list(), before, "no folder created");
    assert_eq!(count(&mut dst.client("alice"), "INBOX"), 0);
    assert!(!env.store.exists(), "no store written");
}

#[test]
fn map_and_exclude_override_the_folder_map() {
    let src = source_server();
    let dst = target_server();
    seed(&mut src.client("alice"));
    let env = env_with(&src, &dst);

    let r = env.run(&[
        "migrate",
        "old",
        "new",
        "--map",
        "Work/2019=Projects/Old reports",
        "--exclude",
        "Junk",
    ]);
    assert_eq!(r.code, 0, "{r}");
    let mut t = dst.client("alice");
    assert_eq!(count(&mut t, "INBOX.Projects.Old reports"), 10);
    assert_eq!(count(&mut t, "INBOX.Junk"), 0, "Junk left out");
    assert!(
        !t.list().iter().any(|f| f == "INBOX.Work.2019"),
        "mapped elsewhere"
    );
    assert_same(
        &src,
        &dst,
        "alice",
        &[
            ("Work/2019", "INBOX.Projects.Old reports"),
            ("INBOX", "INBOX"),
        ],
    );

    let r = env.run(&["migrate", "old", "new", "--map", "no equals sign"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("OLD=NEW") && r.stderr.contains("hint:"),
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
    let mut t = dst.client("alice");
    let args = ["migrate", "old", "new", "--jobs", "1"];
    kill_9_when(&env, &args, &mut t, "INBOX", 60, n as u64);

    let r = env.run(&["migrate", "old", "new"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(summary(&r.stdout, " on target"), n as u64, "{r}");
    assert_eq!(count(&mut t, "INBOX"), n as u64, "no duplicates");
    assert_same(&src, &dst, "alice", &[("INBOX", "INBOX")]);
}

/// `old` on the source server with the seeded mail, `new` on the target
/// through a proxy with `fault`.
fn via_proxy(fault: Fault) -> (Dovecot, Dovecot, Env, FaultProxy) {
    let src = source_server();
    let dst = target_server();
    seed(&mut src.client("alice"));
    let env = Env::new();
    env.add_account("old", &src, "alice");
    let proxy = FaultProxy::start(dst.imap_port(), fault);
    env.add_account_via("new", &proxy, &dst, "alice");
    (src, dst, env, proxy)
}

#[test]
fn a_refused_message_makes_the_counts_not_match_and_the_exit_non_zero() {
    let (src, dst, env, _proxy) = via_proxy(Fault::StrictAppend {
        max_size: Some(200_000),
    });
    append_generated(
        &mut src.client("alice"),
        "Work",
        60..61,
        300_000,
        "too big",
        &[],
    );

    let r = env.run(&["migrate", "old", "new"]);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(summary(&r.stdout, " refused"), 1, "{r}");
    assert_eq!(summary(&r.stdout, " not matching"), 1, "{r}");
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("Work ") && l.contains("INBOX.Work"))
        .unwrap_or_else(|| panic!("no Work row in {r}"));
    assert!(row.trim_end().ends_with("NO"), "{row}");
    assert!(r.stderr.contains("refused"), "{r}");
    assert_eq!(count(&mut dst.client("alice"), "INBOX.Work"), 1);
}

#[test]
fn a_flag_change_the_target_refuses_is_named_and_the_exit_is_non_zero() {
    let (src, dst, env, proxy) = via_proxy(Fault::None);
    let r = env.run(&["migrate", "old", "new"]);
    assert_eq!(r.code, 0, "{r}");

    let mut s = src.client("alice");
    let inbox = s.fetch_all("INBOX");
    s.store_flags("INBOX", inbox[0].uid, "+FLAGS", &["\\Flagged"]);
    proxy.set_fault(Fault::Refuse {
        containing: "UID STORE".into(),
        answer: "NO [NOPERM] Permission denied".into(),
    });
    let r = env.run(&["migrate", "old", "new"]);
    assert_eq!(r.code, 1, "a refused flag change is not a success: {r}");
    assert!(r.stderr.contains("Permission denied"), "{r}");
    assert_eq!(summary(&r.stdout, " not matching"), 1, "{r}");
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("INBOX "))
        .unwrap_or_else(|| panic!("no INBOX row in {r}"));
    assert!(row.trim_end().ends_with("NO"), "{row}");

    // Once the target takes it, the next run sets the flag and all match.
    proxy.set_fault(Fault::None);
    let r = env.run(&["migrate", "old", "new"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(summary(&r.stdout, " not matching"), 0, "{r}");
    assert_same(&src, &dst, "alice", MAPPED);
}

#[test]
fn a_batch_moves_each_mailbox_and_shards_share_it() {
    let src = source_server();
    let dst = target_server();
    for u in ["alice", "bob", "carol"] {
        let mut c = src.client(u);
        for i in 0..5 {
            c.append(
                "INBOX",
                &["\\Seen"],
                Some(&gen_internaldate(i)),
                &gen_message(i, 1000, u),
            );
        }
    }
    let env = Env::new();
    // alice from the config file; bob and carol given in the file.
    env.add_account("old-alice", &src, "alice");
    env.add_account("new-alice", &dst, "alice");
    let inline = |u: &str| {
        format!(
            "{u},,127.0.0.1,{u},printf %s {u}-secret,{},implicit,{},127.0.0.1,{u},printf %s {u}-secret,{},implicit,{}\n",
            src.imaps_port(),
            src.ca_file().display(),
            dst.imaps_port(),
            dst.ca_file().display(),
        )
    };
    let file = env.dir.path().join("office.csv");
    std::fs::write(
        &file,
        format!(
            "# our office\n\
             name,source,source_host,source_user,source_password_command,source_port,source_tls,source_ca_file,target_host,target_user,target_password_command,target_port,target_tls,target_ca_file\n\
             alice,old-alice,,,,,,,{},{},\"{}\",{},implicit,{}\n{}{}",
            "127.0.0.1",
            "alice",
            "printf %s alice-secret",
            dst.imaps_port(),
            dst.ca_file().display(),
            inline("bob"),
            inline("carol"),
        ),
    )
    .unwrap();
    let file = file.display().to_string();

    // Shard 2 of 2 is bob alone; shard 1 of 2 alice and carol, with its
    // own store.
    let r = env.run(&["migrate", "--batch", &file, "--shard", "2/2"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("1 of 1 mailboxes run, 1 ok"), "{r}");
    assert_eq!(count(&mut dst.client("bob"), "INBOX"), 5);
    assert_eq!(count(&mut dst.client("alice"), "INBOX"), 0);
    let other = Env::new();
    other.add_account("old-alice", &src, "alice");
    let r = other.run(&["migrate", "--batch", &file, "--shard", "1/2"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("2 of 2 mailboxes run, 2 ok"), "{r}");
    for u in ["alice", "bob", "carol"] {
        assert_same(&src, &dst, u, &[("INBOX", "INBOX")]);
    }

    // The whole batch again: every mailbox there, nothing appended twice.
    let r = env.run(&["migrate", "--batch", &file]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("3 of 3 mailboxes run, 3 ok"), "{r}");
    for u in ["alice", "bob", "carol"] {
        assert_eq!(count(&mut dst.client(u), "INBOX"), 5, "{u}");
    }

    // A line that cannot be used is named, with its line number.
    std::fs::write(
        env.dir.path().join("bad.csv"),
        "source,target\nold-alice,nobody\n",
    )
    .unwrap();
    let bad = env.dir.path().join("bad.csv").display().to_string();
    let r = env.run(&["migrate", "--batch", &bad]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("bad.csv:2") && r.stderr.contains("nobody"),
        "{r}"
    );
}

/// Gmail-like: `[Gmail]/All Mail` shows every message of every label, and
/// the ones archived (in no label) only there; `[Gmail]/Starred` shows the
/// flagged ones again.
fn gmail_server() -> Dovecot {
    Dovecot::start(DovecotOptions {
        users: users(),
        gmail: true,
        ..DovecotOptions::default()
    })
}

#[test]
fn from_gmail_each_message_lands_once_and_archived_mail_goes_to_the_archive() {
    let src = gmail_server();
    let dst = target_server();
    let mut c = src.client("alice");
    let listed = c.list_with_attributes();
    assert!(
        listed
            .iter()
            .any(|(n, a)| n == "[Gmail]/All Mail" && a.iter().any(|a| a == "\\All")),
        "{listed:?}"
    );
    c.create("Work");
    for i in 0..5 {
        let flags: &[&str] = if i == 0 {
            &["\\Flagged", "\\Seen"]
        } else {
            &["\\Seen"]
        };
        c.append(
            "INBOX",
            flags,
            Some(&gen_internaldate(i)),
            &gen_message(i, 1200, "inbox"),
        );
    }
    for i in 5..7 {
        c.append(
            "Work",
            &[],
            Some(&gen_internaldate(i)),
            &gen_message(i, 1200, "work"),
        );
    }
    // A message with two labels: the same bytes in INBOX and Work.
    c.append(
        "Work",
        &["\\Seen"],
        Some(&gen_internaldate(1)),
        &gen_message(1, 1200, "inbox"),
    );
    c.append(
        "hidden/Sent",
        &["\\Seen"],
        Some(&gen_internaldate(7)),
        &gen_message(7, 900, "sent"),
    );
    c.append(
        "hidden/Spam",
        &[],
        Some(&gen_internaldate(11)),
        &gen_message(11, 900, "spam"),
    );
    for i in 8..11 {
        c.append(
            "hidden/Archived",
            &["\\Seen"],
            Some(&gen_internaldate(i)),
            &gen_message(i, 900, "archived"),
        );
    }
    assert_eq!(
        count(&mut c, "[Gmail]/All Mail"),
        12,
        "All Mail shows every label"
    );
    let env = env_with(&src, &dst);

    let r = env.run(&["migrate", "old", "new", "--dry-run"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("INBOX.Archive"), "{r}");
    assert!(
        r.stdout.contains("Starred"),
        "the left-out view is named: {r}"
    );

    let r = env.run(&["migrate", "old", "new"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(summary(&r.stdout, " not matching"), 0, "{r}");
    assert_eq!(
        summary(&r.stdout, " appended"),
        13,
        "each message once per label: {r}"
    );
    assert!(r.stderr.contains("Starred"), "{r}");
    assert_same(
        &src,
        &dst,
        "alice",
        &[
            ("INBOX", "INBOX"),
            ("Work", "INBOX.Work"),
            ("[Gmail]/Sent Mail", "INBOX.Sent"),
            ("[Gmail]/Spam", "INBOX.Junk"),
            ("hidden/Archived", "INBOX.Archive"),
        ],
    );
    let listed = dst.client("alice").list();
    assert!(
        !listed
            .iter()
            .any(|f| f.contains("Gmail") || f.contains("Starred") || f.contains("All Mail")),
        "{listed:?}"
    );
    let r = env.run(&["migrate", "old", "new"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(summary(&r.stdout, " appended"), 0, "{r}");
}

#[test]
fn a_target_that_throttles_is_waited_for_and_gets_everything_once() {
    // Exchange Online's way: a BAD naming the wait, then the connection closed.
    let (src, dst, env, _proxy) = via_proxy(Fault::Throttle {
        nth_append: 2,
        answer: "BAD Request is throttled. Suggested Backoff Time: 700 milliseconds".into(),
        close: true,
    });

    let r = env.run(&["migrate", "old", "new", "--jobs", "1"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout
            .contains("slowed down by the target 1 time (waited 0.7 s)"),
        "{r}"
    );
    assert_eq!(summary(&r.stdout, " not matching"), 0, "{r}");
    assert_same(&src, &dst, "alice", MAPPED);
}

#[test]
fn too_many_connections_at_login_is_waited_for_not_called_a_wrong_password() {
    let (src, dst, env, proxy) = via_proxy(Fault::BusyLogin {
        times: 1,
        answer: "NO [ALERT] Too many simultaneous connections. (Failure)".into(),
    });
    env.append_config("max_connections = 1\n");

    let r = env.run(&["migrate", "old", "new", "--jobs", "4"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("slowed down by the target 1 time"), "{r}");
    assert_same(&src, &dst, "alice", MAPPED);
    // max_connections = 1: one connection to the target after the refused
    // login, whatever --jobs asks.
    assert_eq!(proxy.connections(), 2, "{r}");
}

#[test]
fn a_message_over_the_targets_appendlimit_is_reported_without_being_sent() {
    let src = source_server();
    let dst = Dovecot::start(DovecotOptions {
        separator: '.',
        prefix: "INBOX.".into(),
        users: users(),
        quota_kib: Some(100_000),
        max_mail_kib: Some(100),
        ..DovecotOptions::default()
    });
    let mut t = dst.client("alice");
    assert!(
        t.capabilities()
            .iter()
            .any(|c| c.eq_ignore_ascii_case("APPENDLIMIT=102400")),
        "Dovecot announces the limit: {:?}",
        t.capabilities()
    );
    seed(&mut src.client("alice"));
    src.client("alice").append(
        "Work",
        &[],
        Some(&gen_internaldate(60)),
        &gen_message(60, 300_000, "too big"),
    );
    let env = env_with(&src, &dst);

    let r = env.run(&["migrate", "old", "new"]);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(summary(&r.stdout, " refused"), 1, "{r}");
    // Named with mailkeep's own reason, which it gives only when it did not
    // send the message (a server's refusal carries the server's text).
    assert!(
        r.stderr.contains("too big") && r.stderr.contains("(APPENDLIMIT); not sent"),
        "{r}"
    );
    assert_eq!(count(&mut t, "INBOX.Work"), 1);
    assert_same(
        &src,
        &dst,
        "alice",
        &[("INBOX", "INBOX"), ("Work/2019", "INBOX.Work.2019")],
    );
}

#[test]
fn a_message_in_two_folders_is_uploaded_once_and_copied_on_the_server() {
    let src = source_server();
    let dst = target_server();
    let mut c = src.client("alice");
    c.create("Work");
    for i in 0..6 {
        c.append(
            "INBOX",
            &["\\Seen"],
            Some(&gen_internaldate(i)),
            &gen_message(i, 3000, "both"),
        );
    }
    // The same messages in Work, as a second label would show them: same
    // bytes and date, other flags.
    for i in 0..4 {
        let flags: &[&str] = if i % 2 == 0 {
            &["\\Flagged"]
        } else {
            &["\\Seen", "$Label2"]
        };
        c.append(
            "Work",
            flags,
            Some(&gen_internaldate(i)),
            &gen_message(i, 3000, "both"),
        );
    }
    // And one with the same bytes but another date: that one is uploaded.
    c.append(
        "Work",
        &[],
        Some(&gen_internaldate(40)),
        &gen_message(5, 3000, "both"),
    );
    let env = Env::new();
    env.add_account("old", &src, "alice");
    let proxy = FaultProxy::start(dst.imap_port(), Fault::None);
    env.add_account_via("new", &proxy, &dst, "alice");

    let r = env.run(&["migrate", "old", "new", "--jobs", "1"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("4 copied on the server"), "{r}");
    assert_eq!(summary(&r.stdout, " on target"), 11, "{r}");
    assert_same(
        &src,
        &dst,
        "alice",
        &[("INBOX", "INBOX"), ("Work", "INBOX.Work")],
    );
    let copies = proxy
        .commands()
        .iter()
        .filter(|c| c.to_ascii_uppercase().starts_with("UID COPY"))
        .count();
    assert_eq!(
        copies,
        1,
        "one UID COPY for the four: {:?}",
        proxy.commands()
    );

    // A re-run finds every copy where it is.
    let r = env.run(&["migrate", "old", "new", "--jobs", "1"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(summary(&r.stdout, " appended"), 0, "{r}");
    assert_eq!(count(&mut dst.client("alice"), "INBOX.Work"), 5);
}

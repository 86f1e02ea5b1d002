//! `quota` and `archive` against a real Dovecot, through the real binary:
//! space comes back on the server, and not a single message is lost.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use support::{gen_message, Dovecot, DovecotOptions, Env, Fault, FaultProxy, FetchedMessage};

/// INTERNALDATE of old message `i`: 1 Jan 2019 plus `i` hours.
fn old_date(i: usize) -> String {
    let t = chrono::DateTime::parse_from_rfc3339("2019-01-01T00:00:00+00:00").unwrap()
        + chrono::Duration::hours(i as i64);
    t.format("%d-%b-%Y %H:%M:%S %z").to_string()
}

fn all_files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// Every message of the account in the store, as exported `.eml` bytes.
fn exported(env: &Env, account: &str) -> BTreeSet<Vec<u8>> {
    let out = env.dir.path().join(format!("export-{account}"));
    let _ = std::fs::remove_dir_all(&out);
    let r = env.run(&[
        "export",
        "--account",
        account,
        "--format",
        "eml",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "export failed: {r}");
    all_files(&out).into_iter().collect()
}

/// folder → messages on the server now.
fn server_state(
    srv: &Dovecot,
    user: &str,
    folders: &[&str],
) -> BTreeMap<String, Vec<FetchedMessage>> {
    let mut c = srv.client(user);
    folders
        .iter()
        .map(|f| (f.to_string(), c.fetch_all(f)))
        .collect()
}

fn uids(msgs: &[FetchedMessage]) -> BTreeSet<u32> {
    msgs.iter().map(|m| m.uid).collect()
}

fn status_json(env: &Env) -> serde_json::Value {
    let r = env.run(&["status", "--json"]);
    assert_eq!(r.code, 0, "status failed: {r}");
    serde_json::from_str(&r.stdout).unwrap()
}

fn account_status<'a>(st: &'a serde_json::Value, account: &str) -> &'a serde_json::Value {
    st["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == account)
        .unwrap_or_else(|| panic!("no account {account} in {st}"))
}

/// folder → (stored live, archived, gone) from `status --json`.
fn store_counts(env: &Env, account: &str) -> BTreeMap<String, (u64, u64, u64)> {
    let st = status_json(env);
    account_status(&st, account)["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                (
                    f["stored"].as_u64().unwrap(),
                    f["archived"].as_u64().unwrap(),
                    f["gone_from_server"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn deep_verify_is_clean(env: &Env) {
    let r = env.run(&["verify", "--deep"]);
    assert_eq!(r.code, 0, "verify --deep: {r}");
    assert!(r.stdout.contains("no problems"), "{}", r.stdout);
}

fn backup_reports_nothing_gone(env: &Env, account: &str) {
    let r = env.run(&["backup", account]);
    r.assert_success();
    assert!(
        r.stdout.contains(" 0 gone from server"),
        "a backup after the archive must not see archived mail as gone:\n{r}"
    );
    for (folder, (_, _, gone)) in store_counts(env, account) {
        assert_eq!(gone, 0, "folder {folder} has messages marked gone");
    }
}

#[test]
fn until_below_frees_quota_oldest_first_and_loses_nothing() {
    let srv = Dovecot::start(DovecotOptions {
        quota_kib: Some(200),
        ..Default::default()
    });
    let mut c = srv.client("alice");
    // Old mail in INBOX and Sent, oldest first by INTERNALDATE, until past 90%.
    let mut i = 0;
    loop {
        let (used, limit) = c.quota_usage_kib();
        if used * 100 >= limit * 91 {
            break;
        }
        let folder = if i % 3 == 2 { "Sent" } else { "INBOX" };
        c.append(
            folder,
            &["\\Seen"],
            Some(&old_date(i + 10)),
            &gen_message(i, 4_000, "old"),
        );
        i += 1;
    }
    // The very oldest, but marked deleted by another program: not ours to remove.
    let deleted_uid = c.append(
        "INBOX",
        &["\\Deleted"],
        Some(&old_date(0)),
        &gen_message(900, 1_000, "marked deleted elsewhere"),
    );
    // An old draft: never archived without --include-drafts.
    c.append(
        "Drafts",
        &["\\Draft"],
        Some(&old_date(1)),
        &gen_message(901, 1_000, "draft"),
    );
    let folders = ["INBOX", "Sent", "Drafts"];
    let before = server_state(&srv, "alice", &folders);
    let (used_before, limit) = c.quota_usage_kib();
    assert!(used_before * 100 >= limit * 90, "{used_before} of {limit}");

    let env = Env::new();
    env.add_account("main", &srv, "alice");

    // quota shows what GETQUOTAROOT says, in bytes.
    let q = env.run(&["quota", "main", "--json"]);
    q.assert_success();
    let qj: serde_json::Value = serde_json::from_str(&q.stdout).unwrap();
    let root = &qj[0]["roots"][0];
    assert_eq!(root["storage"]["used"].as_u64(), Some(used_before * 1024));
    assert_eq!(root["storage"]["limit"].as_u64(), Some(limit * 1024));
    let q = env.run(&["quota", "main"]);
    q.assert_success();
    assert!(
        q.stdout.contains("storage") && q.stdout.contains("%"),
        "{q}"
    );

    // The dry run plans and changes nothing (there is no store yet).
    let dry = env.run(&["archive", "main", "--until-below", "70%", "--dry-run"]);
    dry.assert_success();
    assert!(dry.stderr.contains("mailkeep backup main"), "{dry}");
    assert_eq!(server_state(&srv, "alice", &folders), before);

    let r = env.run(&["archive", "main", "--until-below", "70%"]);
    r.assert_success();
    assert!(r.stdout.contains("main: archived "), "{r}");
    assert!(r.stdout.contains("quota "), "quota before and after: {r}");

    let (used_after, _) = c.quota_usage_kib();
    assert!(
        used_after * 100 < limit * 70,
        "usage {used_after} KiB of {limit} KiB is not below 70%\n{r}"
    );
    let after = server_state(&srv, "alice", &folders);
    // Drafts and the message marked deleted elsewhere are untouched.
    assert_eq!(after["Drafts"], before["Drafts"]);
    assert!(uids(&after["INBOX"]).contains(&deleted_uid));

    // status right after the archive counts what the server holds now.
    let st = status_json(&env);
    for f in account_status(&st, "main")["folders"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        if let Some(now) = after.get(name) {
            assert_eq!(
                f["on_server"].as_u64(),
                Some(now.len() as u64),
                "status of `{name}` after the archive: {f}"
            );
        }
    }

    // What left the server is exactly the oldest of the eligible messages.
    let mut eligible: Vec<(String, &FetchedMessage)> = Vec::new();
    for f in ["INBOX", "Sent"] {
        for m in &before[f] {
            if m.uid != deleted_uid {
                eligible.push((f.to_string(), m));
            }
        }
    }
    eligible.sort_by_key(|(_, m)| support::parse_internaldate(&m.internaldate));
    let removed: Vec<bool> = eligible
        .iter()
        .map(|(f, m)| !uids(&after[f.as_str()]).contains(&m.uid))
        .collect();
    let k = removed.iter().filter(|r| **r).count();
    assert!(k > 0, "nothing was archived\n{r}");
    assert!(
        removed[..k].iter().all(|r| *r) && removed[k..].iter().all(|r| !*r),
        "not oldest first: {removed:?}"
    );
    // Not more than needed: without the last one taken, usage was not below 70%.
    let last = eligible[k - 1].1.bytes.len() as u64;
    assert!(
        (used_after * 1024 + last) * 100 >= limit * 1024 * 69,
        "took more than needed: {used_after} KiB left of {limit} KiB"
    );
    // The quota dropped by about what was removed.
    let removed_bytes: u64 = eligible[..k]
        .iter()
        .map(|(_, m)| m.bytes.len() as u64)
        .sum();
    let dropped = (used_before - used_after) * 1024;
    assert!(
        dropped <= removed_bytes && dropped * 100 >= removed_bytes * 90,
        "quota dropped {dropped} bytes for {removed_bytes} bytes removed"
    );

    // Every message of the folders it archived from is in the store, byte
    // for byte (archive backs up only the folders it works on).
    let stored = exported(&env, "main");
    for f in ["INBOX", "Sent"] {
        for m in &before[f] {
            assert!(
                stored.contains(&m.bytes),
                "{f} UID {} is not in the store",
                m.uid
            );
        }
    }
    let counts = store_counts(&env, "main");
    let archived_total: u64 = counts.values().map(|c| c.1).sum();
    assert_eq!(archived_total, k as u64, "{counts:?}");
    assert!(!counts.contains_key("Drafts"), "{counts:?}");

    // status shows the quota archive saw last.
    let st = status_json(&env);
    let quota = &account_status(&st, "main")["quota"][0];
    assert_eq!(
        quota["storage"]["used"].as_u64(),
        Some(used_after * 1024),
        "{st}"
    );
    let text = env.run(&["status"]);
    assert!(text.stdout.contains("quota: "), "{text}");

    deep_verify_is_clean(&env);
    backup_reports_nothing_gone(&env, "main");
    let stored = exported(&env, "main");
    for m in &before["Drafts"] {
        assert!(stored.contains(&m.bytes), "the draft is backed up");
    }
    // Archived messages stay archived after the index is rebuilt from the packs.
    env.run(&["repair"]).assert_success();
    let again: u64 = store_counts(&env, "main").values().map(|c| c.1).sum();
    assert_eq!(again, k as u64);
}

#[test]
fn older_than_and_exclude_choose_by_age_and_folder_and_dry_run_changes_nothing() {
    let srv = Dovecot::start(DovecotOptions::default());
    let mut c = srv.client("alice");
    for i in 0..6 {
        c.append(
            "INBOX",
            &[],
            Some(&old_date(i)),
            &gen_message(i, 2_000, "old inbox"),
        );
        c.append(
            "Sent",
            &["\\Seen"],
            Some(&old_date(i)),
            &gen_message(100 + i, 2_000, "old sent"),
        );
    }
    for i in 0..3 {
        // Recent: the server's own INTERNALDATE, now.
        c.append("INBOX", &[], None, &gen_message(200 + i, 2_000, "new"));
    }
    c.append(
        "Drafts",
        &["\\Draft"],
        Some(&old_date(0)),
        &gen_message(300, 900, "draft"),
    );
    let folders = ["INBOX", "Sent", "Drafts"];
    let before = server_state(&srv, "alice", &folders);

    let env = Env::new();
    env.add_account("main", &srv, "alice");
    env.run(&["backup", "main"]).assert_success();
    let counts_before = store_counts(&env, "main");
    let packs_before = all_files(&env.store.join("packs"));

    let dry = env.run(&[
        "archive",
        "main",
        "--older-than",
        "2y",
        "--exclude",
        "Sent",
        "--dry-run",
    ]);
    dry.assert_success();
    assert!(
        dry.stdout.contains("main: INBOX: would archive 6 messages"),
        "{dry}"
    );
    assert!(!dry.stdout.contains("Sent:"), "{dry}");
    assert!(!dry.stdout.contains("Drafts:"), "{dry}");
    assert!(dry.stdout.contains("would archive 6 messages"), "{dry}");
    assert_eq!(
        server_state(&srv, "alice", &folders),
        before,
        "a dry run changed the server"
    );
    assert_eq!(
        store_counts(&env, "main"),
        counts_before,
        "a dry run changed the store"
    );
    assert_eq!(all_files(&env.store.join("packs")), packs_before);

    // Neither an age nor a target: refused, nothing happens.
    let none = env.run(&["archive", "main"]);
    assert_eq!(none.code, 2, "{none}");
    assert!(none.stderr.contains("hint:"), "{none}");
    let bad = env.run(&["archive", "main", "--older-than", "2 years"]);
    assert_eq!(bad.code, 2, "{bad}");
    assert!(bad.stderr.contains("--older-than"), "{bad}");

    let r = env.run(&["archive", "main", "--older-than", "2y", "--exclude", "Sent"]);
    r.assert_success();
    let after = server_state(&srv, "alice", &folders);
    let old_inbox: BTreeSet<u32> = before["INBOX"]
        .iter()
        .filter(|m| m.internaldate.contains("2019"))
        .map(|m| m.uid)
        .collect();
    assert_eq!(old_inbox.len(), 6);
    assert_eq!(
        uids(&after["INBOX"]),
        uids(&before["INBOX"])
            .difference(&old_inbox)
            .copied()
            .collect(),
        "exactly the old INBOX messages leave the server"
    );
    assert_eq!(after["Sent"], before["Sent"], "excluded folder untouched");
    assert_eq!(after["Drafts"], before["Drafts"], "drafts untouched");
    let counts = store_counts(&env, "main");
    assert_eq!(counts["INBOX"], (3, 6, 0));
    assert_eq!(counts["Sent"], (6, 0, 0));

    // Asking for Drafts by name still leaves it alone without --include-drafts.
    let d = env.run(&[
        "archive",
        "main",
        "--older-than",
        "2y",
        "--folder",
        "Drafts",
    ]);
    d.assert_success();
    assert!(d.stderr.contains("--include-drafts"), "{d}");
    assert_eq!(
        server_state(&srv, "alice", &["Drafts"])["Drafts"],
        before["Drafts"]
    );
    let d = env.run(&[
        "archive",
        "main",
        "--older-than",
        "2y",
        "--folder",
        "Drafts",
        "--include-drafts",
    ]);
    d.assert_success();
    assert!(server_state(&srv, "alice", &["Drafts"])["Drafts"].is_empty());

    let stored = exported(&env, "main");
    for msgs in before.values() {
        for m in msgs {
            assert!(
                stored.contains(&m.bytes),
                "UID {} is not in the store",
                m.uid
            );
        }
    }
    deep_verify_is_clean(&env);
    backup_reports_nothing_gone(&env, "main");
}

#[test]
fn a_server_without_uidplus_is_refused_and_nothing_changes() {
    let srv = Dovecot::start(DovecotOptions::default());
    let mut c = srv.client("alice");
    for i in 0..4 {
        c.append(
            "INBOX",
            &[],
            Some(&old_date(i)),
            &gen_message(i, 1_500, "old"),
        );
    }
    let before = server_state(&srv, "alice", &["INBOX"]);
    let proxy = FaultProxy::start(srv.imap_port(), Fault::RemoveCapability("UIDPLUS".into()));
    let env = Env::new();
    env.add_account_via("plain", &proxy, &srv, "alice");
    env.run(&["backup", "plain"]).assert_success();
    let counts = store_counts(&env, "plain");

    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["archive", "plain", "--older-than", "1y"];
        args.extend_from_slice(extra);
        let r = env.run(&args);
        assert_eq!(r.code, 2, "{r}");
        assert!(r.stderr.contains("UIDPLUS"), "{r}");
        assert!(r.stderr.contains("127.0.0.1"), "names the server: {r}");
        assert!(r.stderr.contains("hint:"), "{r}");
    }
    assert_eq!(server_state(&srv, "alice", &["INBOX"]), before);
    assert_eq!(store_counts(&env, "plain"), counts);
}

#[test]
fn without_quota_the_quota_command_says_so_and_until_below_is_refused() {
    let srv = Dovecot::start(DovecotOptions {
        quota_kib: Some(1_000),
        ..Default::default()
    });
    let mut c = srv.client("alice");
    c.append(
        "INBOX",
        &[],
        Some(&old_date(0)),
        &gen_message(0, 1_500, "old"),
    );
    let before = server_state(&srv, "alice", &["INBOX"]);
    let proxy = FaultProxy::start(srv.imap_port(), Fault::RemoveCapability("QUOTA".into()));
    let env = Env::new();
    env.add_account_via("noquota", &proxy, &srv, "alice");

    let q = env.run(&["quota", "noquota"]);
    q.assert_success();
    assert!(q.stdout.contains("no QUOTA capability"), "{q}");
    assert!(q.stderr.is_empty(), "{q}");

    let r = env.run(&["archive", "noquota", "--until-below", "70%"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("QUOTA"), "{r}");
    assert!(
        r.stderr.contains("hint:") && r.stderr.contains("--older-than"),
        "{r}"
    );
    assert_eq!(server_state(&srv, "alice", &["INBOX"]), before);

    // The same server with QUOTA: backup remembers it for status.
    env.add_account("direct", &srv, "alice");
    env.run(&["backup", "direct"]).assert_success();
    let st = status_json(&env);
    let quota = &account_status(&st, "direct")["quota"][0];
    assert_eq!(
        quota["storage"]["limit"].as_u64(),
        Some(1_000 * 1024),
        "{st}"
    );
    assert!(account_status(&st, "noquota")["quota"]
        .as_array()
        .unwrap()
        .is_empty());
}

/// Runs `archive` with a failpoint; the process must abort there.
fn crash_at(env: &Env, failpoint: &str, args: &[&str]) {
    let mut cmd = env.command(args);
    cmd.env("MAILKEEP_FAILPOINT", failpoint);
    let out = cmd.output().expect("run mailkeep");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "expected an abort at {failpoint}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn killed_at_each_step_a_rerun_converges_and_loses_nothing() {
    let users: Vec<(String, String)> = ["intent", "store", "expunge"]
        .iter()
        .map(|u| (u.to_string(), format!("{u}-secret")))
        .collect();
    let srv = Dovecot::start(DovecotOptions {
        users: users.clone(),
        ..Default::default()
    });
    for (user, _) in &users {
        let failpoint = format!("archive-after-{user}");
        let mut c = srv.client(user);
        for i in 0..12 {
            c.append(
                "INBOX",
                &[],
                Some(&old_date(i)),
                &gen_message(i, 1_500, "old"),
            );
        }
        for i in 0..3 {
            c.append(
                "INBOX",
                &["\\Seen"],
                None,
                &gen_message(50 + i, 1_500, "new"),
            );
        }
        let before = server_state(&srv, user, &["INBOX"]);
        let old: BTreeSet<u32> = before["INBOX"]
            .iter()
            .filter(|m| m.internaldate.contains("2019"))
            .map(|m| m.uid)
            .collect();
        let first_batch: BTreeSet<u32> = old.iter().copied().take(5).collect();

        let env = Env::new();
        env.add_account("acct", &srv, user);
        let args = ["archive", "acct", "--older-than", "2y", "--batch", "5"];
        crash_at(&env, &failpoint, &args);

        // What the crash left: the server as far as the step went, nothing
        // recorded as archived yet.
        let mid = server_state(&srv, user, &["INBOX"]);
        match user.as_str() {
            "intent" => assert_eq!(mid, before),
            "store" => {
                assert_eq!(uids(&mid["INBOX"]), uids(&before["INBOX"]));
                for m in &mid["INBOX"] {
                    let deleted = m.flags.iter().any(|f| f == "\\Deleted");
                    assert_eq!(deleted, first_batch.contains(&m.uid), "UID {}", m.uid);
                }
            }
            _ => assert_eq!(
                uids(&mid["INBOX"]),
                uids(&before["INBOX"])
                    .difference(&first_batch)
                    .copied()
                    .collect()
            ),
        }
        assert_eq!(store_counts(&env, "acct")["INBOX"].1, 0);
        // The messages removed so far are in the store already.
        let stored = exported(&env, "acct");
        for m in &before["INBOX"] {
            assert!(
                stored.contains(&m.bytes),
                "{failpoint}: UID {} not stored",
                m.uid
            );
        }

        let r = env.run(&args);
        r.assert_success();
        assert!(r.stdout.contains("interrupted run"), "{failpoint}: {r}");
        let after = server_state(&srv, user, &["INBOX"]);
        assert_eq!(
            uids(&after["INBOX"]),
            uids(&before["INBOX"]).difference(&old).copied().collect(),
            "{failpoint}: the server lost exactly the old messages"
        );
        assert!(after["INBOX"]
            .iter()
            .all(|m| !m.flags.iter().any(|f| f == "\\Deleted")));
        assert_eq!(
            store_counts(&env, "acct")["INBOX"],
            (3, 12, 0),
            "{failpoint}"
        );
        let stored = exported(&env, "acct");
        for m in &before["INBOX"] {
            assert!(stored.contains(&m.bytes), "{failpoint}: UID {} lost", m.uid);
        }
        deep_verify_is_clean(&env);
        // A third run finds nothing more to do.
        let again = env.run(&args);
        again.assert_success();
        assert!(again.stdout.contains("archived 0 messages"), "{again}");
        backup_reports_nothing_gone(&env, "acct");
    }
}

#[test]
fn a_folder_whose_uidvalidity_changed_is_refused_until_backed_up() {
    let srv = Dovecot::start(DovecotOptions::default());
    let mut c = srv.client("alice");
    c.create("Work");
    for i in 0..3 {
        c.append(
            "Work",
            &[],
            Some(&old_date(i)),
            &gen_message(i, 1_500, "old"),
        );
    }
    let env = Env::new();
    env.add_account("main", &srv, "alice");
    env.run(&["backup", "main"]).assert_success();
    // The folder is recreated: same mail, new UIDVALIDITY, UIDs from 1 again.
    c.delete_mailbox("Work");
    c.create("Work");
    for i in 3..6 {
        c.append(
            "Work",
            &[],
            Some(&old_date(i)),
            &gen_message(i, 1_500, "old"),
        );
    }
    let before = server_state(&srv, "alice", &["Work"]);

    let args = ["archive", "main", "--older-than", "2y", "--folder", "Work"];
    let r = env.run(&args);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains("`Work`") && r.stderr.contains("UIDVALIDITY"),
        "{r}"
    );
    assert_eq!(
        server_state(&srv, "alice", &["Work"]),
        before,
        "nothing removed"
    );

    // Its new generation is backed up now: the next run archives from it.
    env.run(&args).assert_success();
    assert!(server_state(&srv, "alice", &["Work"])["Work"].is_empty());
    let stored = exported(&env, "main");
    for m in &before["Work"] {
        assert!(stored.contains(&m.bytes), "UID {} lost", m.uid);
    }
    deep_verify_is_clean(&env);
}

//! Backup against a real Dovecot over TLS, through the real binary.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::{gen_message, Dovecot, DovecotOptions, Env, Fault, FaultProxy};

/// Compares two sorted lists of messages without printing megabytes.
fn assert_same_messages(ours: &[Vec<u8>], theirs: &[Vec<u8>], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: message counts differ");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        if a != b {
            let at = a
                .iter()
                .zip(b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            panic!(
                "{what}: message {i} differs at byte {at} (lengths {} and {}): {:?}",
                a.len(),
                b.len(),
                String::from_utf8_lossy(&a[..a.len().min(200)])
            );
        }
    }
}

fn server() -> Dovecot {
    Dovecot::start(DovecotOptions::default())
}

/// Every file under `dir`, by name, with its bytes.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.insert(
                    e.path().strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                );
            }
        }
    }
    out
}

/// The exported .eml files of one folder, as a sorted list of byte strings.
fn exported_folder(env: &Env, account: &str, folder: &str) -> Vec<Vec<u8>> {
    let out = env
        .dir
        .path()
        .join(format!("export-{account}-{}", folder.replace('/', "_")));
    let _ = std::fs::remove_dir_all(&out);
    let r = env.run(&[
        "export",
        "--account",
        account,
        "--format",
        "eml",
        "--folder",
        folder,
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "export failed: {}", r.stderr);
    let mut v: Vec<Vec<u8>> = files_under(&out).into_values().collect();
    v.sort();
    v
}

fn server_folder(server: &Dovecot, user: &str, folder: &str) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = server
        .client(user)
        .fetch_all(folder)
        .into_iter()
        .map(|m| m.bytes)
        .collect();
    v.sort();
    v
}

fn status_json(env: &Env) -> serde_json::Value {
    let r = env.run(&["status", "--json"]);
    assert_eq!(r.code, 0, "status failed: {}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

fn folder_status<'a>(
    st: &'a serde_json::Value,
    account: &str,
    folder: &str,
) -> &'a serde_json::Value {
    st["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == account)
        .unwrap_or_else(|| panic!("no account {account} in {st}"))["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == folder)
        .unwrap_or_else(|| panic!("no folder {folder} in {st}"))
}

fn deep_verify_is_clean(env: &Env) {
    let r = env.run(&["verify", "--deep"]);
    assert_eq!(r.code, 0, "verify --deep: {}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("no problems"), "{}", r.stdout);
}

#[test]
fn first_backup_is_byte_exact_and_second_fetches_nothing() {
    let srv = server();
    let mut c = srv.client("alice");
    c.create("Work");
    c.create("Work/2019");
    for i in 0..30 {
        c.append(
            "INBOX",
            &["\\Seen"],
            Some("01-Jan-2020 10:00:00 +0900"),
            &gen_message(i, 2000, "hello"),
        );
    }
    for i in 30..40 {
        c.append(
            "Work/2019",
            &["\\Flagged"],
            None,
            &gen_message(i, 500, "report"),
        );
    }
    // Bare LF and a message without a final newline are stored as served.
    c.append("Work", &[], None, b"Subject: bare\n\nbare LF body\n");
    c.append("Work", &[], None, b"Subject: no final newline\r\n\r\nend");

    let env = Env::new();
    env.add_account("work", &srv, "alice");
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout.lines().count(),
        1,
        "one summary line: {}",
        r.stdout
    );
    assert!(r.stdout.contains("fetched 42 new"), "{}", r.stdout);
    assert!(
        r.stderr.is_empty(),
        "nothing on stderr when all is well: {}",
        r.stderr
    );

    for folder in ["INBOX", "Work", "Work/2019"] {
        assert_same_messages(
            &exported_folder(&env, "work", folder),
            &server_folder(&srv, "alice", folder),
            folder,
        );
    }
    let st = status_json(&env);
    assert_eq!(folder_status(&st, "work", "INBOX")["stored"], 30);
    assert_eq!(folder_status(&st, "work", "INBOX")["on_server"], 30);

    let pack = env.store.join("packs/00/000001.pack");
    let pack_len = std::fs::metadata(&pack).unwrap().len();
    let again = env.run(&["backup", "work"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("fetched 0 new"), "{}", again.stdout);
    assert_eq!(
        std::fs::metadata(&pack).unwrap().len(),
        pack_len,
        "an unchanged mailbox adds nothing to the log"
    );
    deep_verify_is_clean(&env);
}

#[test]
fn flags_and_dates_are_kept_in_maildir_export() {
    let srv = server();
    let mut c = srv.client("alice");
    c.append(
        "INBOX",
        &["\\Seen", "\\Answered"],
        Some("15-Mar-2019 08:30:00 +0000"),
        &gen_message(1, 300, "a"),
    );
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    assert_eq!(env.run(&["backup", "work"]).code, 0);
    let out = env.dir.path().join("md");
    let r = env.run(&[
        "export",
        "--account",
        "work",
        "--format",
        "maildir",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files = files_under(&out);
    let (name, bytes) = files
        .iter()
        .find(|(n, _)| n.starts_with("cur/"))
        .expect("INBOX in cur/");
    assert!(name.ends_with(":2,RS"), "flags in the name: {name}");
    assert_eq!(bytes, &server_folder(&srv, "alice", "INBOX")[0]);
    let mtime = std::fs::metadata(out.join(name))
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(mtime, 1552638600, "mtime is the INTERNALDATE");
}

#[test]
fn new_mail_flag_changes_and_deletions_are_picked_up() {
    let srv = server();
    let mut c = srv.client("alice");
    let uids: Vec<u32> = (0..5)
        .map(|i| c.append("INBOX", &[], None, &gen_message(i, 400, "x")))
        .collect();
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    assert_eq!(env.run(&["backup", "work"]).code, 0);

    c.append("INBOX", &[], None, &gen_message(100, 400, "new one"));
    c.store_flags("INBOX", uids[0], "+FLAGS", &["\\Flagged"]);
    c.expunge_uids("INBOX", &[uids[1], uids[2]]);

    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("fetched 1 new"), "{}", r.stdout);
    assert!(r.stdout.contains("1 flag change,"), "{}", r.stdout);
    assert!(r.stdout.contains("2 gone from server"), "{}", r.stdout);

    let st = status_json(&env);
    let inbox = folder_status(&st, "work", "INBOX");
    assert_eq!(inbox["stored"], 4);
    assert_eq!(inbox["gone_from_server"], 2);
    // Gone from the server, not from the store: all six are exported.
    assert_eq!(exported_folder(&env, "work", "INBOX").len(), 6);

    let out = env.dir.path().join("md");
    env.run(&[
        "export",
        "--account",
        "work",
        "--format",
        "maildir",
        out.to_str().unwrap(),
    ]);
    let flagged = files_under(&out)
        .keys()
        .filter(|n| n.ends_with(":2,F"))
        .count();
    assert_eq!(flagged, 1);
    let v = env.run(&["verify", "--server", "work"]);
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
}

#[test]
fn uidvalidity_change_starts_a_new_generation_without_storing_bytes_again() {
    let srv = server();
    let mut c = srv.client("alice");
    c.create("Lists");
    for i in 0..4 {
        c.append("Lists", &[], None, &gen_message(i, 300, "list"));
    }
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    assert_eq!(env.run(&["backup", "work"]).code, 0);
    let before = c.uidvalidity("Lists");
    let unique_before = status_json(&env)["unique_messages"].clone();

    // Recreating the folder gives it a new UIDVALIDITY; same messages inside.
    let msgs = c.fetch_all("Lists");
    c.delete_mailbox("Lists");
    c.create("Lists");
    for m in &msgs {
        c.append("Lists", &[], None, &m.bytes);
    }
    assert_ne!(c.uidvalidity("Lists"), before);

    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("4 already stored"), "{}", r.stdout);
    let st = status_json(&env);
    assert_eq!(st["unique_messages"], unique_before);
    assert_eq!(
        folder_status(&st, "work", "Lists")["uidvalidity"],
        c.uidvalidity("Lists")
    );
    assert_eq!(folder_status(&st, "work", "Lists")["stored"], 4);
    deep_verify_is_clean(&env);
}

#[test]
fn renamed_folder_japanese_name_and_duplicates_stored_once() {
    let srv = server();
    let mut c = srv.client("alice");
    c.create("Old");
    c.create("&kAFP4W4IMH8-"); // 送信済み
    let shared = gen_message(1, 800, "in two folders");
    c.append("INBOX", &[], None, &shared);
    c.append("&kAFP4W4IMH8-", &["\\Seen"], None, &shared);
    c.append("Old", &[], None, &gen_message(2, 800, "old folder"));
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let st = status_json(&env);
    assert_eq!(st["messages"], 3);
    assert_eq!(
        st["unique_messages"], 2,
        "the same bytes in two folders are stored once"
    );
    assert_eq!(folder_status(&st, "work", "送信済み")["stored"], 1);
    let text = env.run(&["status"]);
    assert!(text.stdout.contains("送信済み"), "{}", text.stdout);

    c.rename("Old", "New");
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("1 folder gone from server"),
        "{}",
        r.stdout
    );
    let st = status_json(&env);
    assert_eq!(folder_status(&st, "work", "New")["stored"], 1);
    assert_eq!(folder_status(&st, "work", "Old")["folder_gone"], true);
    assert_eq!(
        st["unique_messages"], 2,
        "a renamed folder's mail is not stored again"
    );
    assert_same_messages(
        &exported_folder(&env, "work", "送信済み"),
        &server_folder(&srv, "alice", "&kAFP4W4IMH8-"),
        "送信済み",
    );
}

#[test]
fn wrong_password_exits_3_with_a_hint() {
    let srv = server();
    let env = Env::new();
    env.add_account_raw(
        "work",
        &format!(
            "host = \"localhost\"\nport = {}\ntls = \"implicit\"\nusername = \"alice\"\npassword_env = \"MK_BAD\"\nca_file = \"{}\"\n",
            srv.imaps_port(),
            srv.ca_file().display()
        ),
        Some(("MK_BAD", "not-the-password")),
    );
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 3, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("error:") && r.stderr.contains("alice"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hint:"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("not-the-password"),
        "the password leaked: {}",
        r.stderr
    );
}

#[test]
fn untrusted_certificate_exits_4_with_a_hint() {
    let srv = server();
    let env = Env::new();
    env.add_account_raw(
        "work",
        &format!(
            "host = \"localhost\"\nport = {}\ntls = \"implicit\"\nusername = \"alice\"\npassword_env = \"MK_PW\"\n",
            srv.imaps_port()
        ),
        Some(("MK_PW", srv.password("alice"))),
    );
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 4, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("ca_file"),
        "the hint names ca_file: {}",
        r.stderr
    );
}

#[test]
fn missing_config_and_unknown_account_are_usage_errors() {
    let env = Env::new();
    std::fs::remove_file(&env.config).ok();
    let r = env.run(&["backup", "--all"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("hint:"), "{}", r.stderr);

    let srv = server();
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    let r = env.run(&["backup", "nosuch"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("nosuch") && r.stderr.contains("work"),
        "{}",
        r.stderr
    );
}

fn proxied_account(env: &Env, name: &str, proxy: &FaultProxy, srv: &Dovecot) {
    env.add_account_raw(
        name,
        &format!(
            "host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"alice\"\npassword_env = \"MK_PROXY_PW\"\n",
            proxy.port()
        ),
        Some(("MK_PROXY_PW", srv.password("alice"))),
    );
}

#[test]
fn tagged_no_in_the_middle_of_a_fetch_fails_that_folder() {
    let srv = server();
    let mut c = srv.client("alice");
    c.create("Big");
    for i in 0..20 {
        c.append("Big", &[], None, &gen_message(i, 1000, "big"));
    }
    c.append("INBOX", &[], None, &gen_message(99, 1000, "inbox"));
    let proxy = FaultProxy::start(
        srv.imap_port(),
        Fault::TaggedNoInFetch { after_messages: 5 },
    );
    let env = Env::new();
    proxied_account(&env, "work", &proxy, &srv);
    let r = env.run(&["backup", "work", "--jobs", "1"]);
    assert_eq!(r.code, 1, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("folder `Big`"),
        "the failed folder is named: {}",
        r.stderr
    );
    assert!(r.stdout.contains("1 failed"), "{}", r.stdout);

    // Nothing was passed off as complete: a clean run fetches the rest.
    proxy.set_fault(Fault::None);
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_same_messages(
        &exported_folder(&env, "work", "Big"),
        &server_folder(&srv, "alice", "Big"),
        "Big",
    );
}

#[test]
fn dropped_connection_is_resumed() {
    let srv = server();
    let mut c = srv.client("alice");
    for i in 0..40 {
        c.append("INBOX", &[], None, &gen_message(i, 20_000, "drop"));
    }
    let proxy = FaultProxy::start(srv.imap_port(), Fault::DropAfterServerBytes(300_000));
    let env = Env::new();
    proxied_account(&env, "work", &proxy, &srv);
    let r = env.run(&["backup", "work", "--jobs", "1"]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(
        proxy.connections() >= 2,
        "the connection was cut and reopened"
    );
    assert_same_messages(
        &exported_folder(&env, "work", "INBOX"),
        &server_folder(&srv, "alice", "INBOX"),
        "INBOX",
    );
    deep_verify_is_clean(&env);
}

/// A server with one big folder (`n` messages of ~2 KB in INBOX) and two
/// small ones, behind a proxy.
fn one_big_folder(n: usize) -> Dovecot {
    let srv = server();
    let mut c = srv.client("alice");
    for name in ["Small", "Tiny"] {
        c.create(name);
        c.append(name, &[], None, &gen_message(1_000_000, 500, name));
    }
    fill_inbox(&srv, n);
    srv
}

fn fill_inbox(srv: &Dovecot, n: usize) {
    if n == 0 {
        return;
    }
    let msgs: Vec<(Vec<&str>, Option<String>, Vec<u8>)> = (0..n)
        .map(|i| (vec!["\\Seen"], None, gen_message(i, 2_000, "shared")))
        .collect();
    srv.client("alice").append_many("INBOX", &msgs);
}

/// Every folder backed up once, on one connection (the proxy's first), with
/// INBOX still empty; then `n` messages in INBOX: the next backup has one
/// folder to take up, on its first connection (the proxy's second), and its
/// helpers are the third connection on.
fn backed_up_then_inbox_filled(n: usize, fault: Fault) -> (Dovecot, FaultProxy, Env) {
    let srv = one_big_folder(0);
    let proxy = FaultProxy::start(srv.imap_port(), Fault::None);
    let env = Env::new();
    proxied_account(&env, "work", &proxy, &srv);
    let r = env.run(&["backup", "work", "--jobs", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(proxy.connections(), 1);
    fill_inbox(&srv, n);
    proxy.set_fault(fault);
    (srv, proxy, env)
}

fn examines_of(proxy: &FaultProxy, folder: &str) -> usize {
    proxy
        .commands()
        .iter()
        .filter(|c| {
            c.contains(&format!("EXAMINE \"{folder}\""))
                || c.ends_with(&format!("EXAMINE {folder}"))
        })
        .count()
}

/// INBOX in the store is the server's, byte for byte, and `status` counts
/// `n` messages stored in it.
fn assert_inbox_whole(env: &Env, srv: &Dovecot, n: usize) {
    assert_same_messages(
        &exported_folder(env, "work", "INBOX"),
        &server_folder(srv, "alice", "INBOX"),
        "INBOX",
    );
    let st = status_json(env);
    assert_eq!(folder_status(&st, "work", "INBOX")["stored"], n, "{st}");
}

#[test]
fn a_big_folder_is_downloaded_over_the_idle_connections() {
    // Once no folder is left to take up, the other connections help with
    // the one still downloading: each opens it and takes parts of its new
    // mail. The folder is stored whole, once, and counted once.
    let n = 6_000;
    let srv = one_big_folder(n);
    let proxy = FaultProxy::start(srv.imap_port(), Fault::None);
    let env = Env::new();
    proxied_account(&env, "work", &proxy, &srv);
    let r = env.run(&["backup", "work", "--jobs", "4", "-vv"]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!("fetched {} new", n + 2)),
        "counted once: {}",
        r.stdout
    );
    assert!(
        r.stderr.contains("parts downloaded by other connections"),
        "{}",
        r.stderr
    );
    assert!(
        examines_of(&proxy, "INBOX") >= 2,
        "INBOX was opened by more than one connection: {:?}",
        proxy.commands()
    );
    assert_inbox_whole(&env, &srv, n);
    // Recorded as complete: the next run opens nothing.
    let again = env.run(&["backup", "work", "--jobs", "4"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("fetched 0 new"), "{}", again.stdout);
    deep_verify_is_clean(&env);
}

#[test]
fn a_helper_that_loses_its_connection_gives_its_part_back() {
    // The first helper's connection is cut in the middle of a part. What it
    // stored stays; the rest of its part is done by another connection;
    // nothing is missing, nothing counted twice.
    let n = 6_000;
    let (srv, _proxy, env) = backed_up_then_inbox_filled(
        n,
        Fault::OnlyConnection {
            n: 3,
            fault: Box::new(Fault::DropAfterServerBytes(400_000)),
        },
    );
    let r = env.run(&["backup", "work", "--jobs", "4", "-vv"]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("stopped helping"), "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!("fetched {n} new")),
        "counted once: {}",
        r.stdout
    );
    assert_inbox_whole(&env, &srv, n);
    deep_verify_is_clean(&env);
}

#[test]
fn a_server_that_refuses_a_helper_still_gets_a_whole_quiet_backup() {
    // Gmail's answer to one connection too many, at the first helper's
    // login. The others do the work; the user sees one summary line and
    // nothing on stderr.
    let n = 3_000;
    let (srv, proxy, env) = backed_up_then_inbox_filled(
        n,
        Fault::OnlyConnection {
            n: 3,
            fault: Box::new(Fault::BusyLogin {
                times: 1,
                answer: "NO [ALERT] Too many simultaneous connections. (Failure)".into(),
            }),
        },
    );
    let r = env.run(&["backup", "work", "--jobs", "4"]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(proxy.connections() >= 3, "the helper tried");

    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("fetched {n} new")),
        "{}",
        r.stdout
    );
    assert!(r.stderr.is_empty(), "nothing on stderr: {}", r.stderr);
    assert_inbox_whole(&env, &srv, n);
}

#[test]
fn a_little_new_mail_opens_no_more_connections() {
    // New mail in one folder, less than a part: the run needs the one
    // connection that lists and downloads it; the others are not opened to
    // help with nothing.
    let srv = one_big_folder(600);
    let proxy = FaultProxy::start(srv.imap_port(), Fault::None);
    let env = Env::new();
    proxied_account(&env, "work", &proxy, &srv);
    let r = env.run(&["backup", "work", "--jobs", "4"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut c = srv.client("alice");
    for i in 0..100 {
        c.append("INBOX", &[], None, &gen_message(1_000 + i, 800, "later"));
    }
    let before = proxy.connections();
    let r = env.run(&["backup", "work", "--jobs", "4"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("fetched 100 new"), "{}", r.stdout);
    assert_eq!(
        proxy.connections() - before,
        1,
        "one connection for one small change"
    );
    assert_inbox_whole(&env, &srv, 700);
}

#[test]
fn a_second_concurrent_run_is_refused() {
    let srv = server();
    srv.client("alice")
        .append("INBOX", &[], None, &gen_message(1, 100, "x"));
    let proxy = FaultProxy::start(
        srv.imap_port(),
        Fault::Stall {
            after_server_bytes: 0,
        },
    );
    let env = Env::new();
    proxied_account(&env, "work", &proxy, &srv);
    let mut first = env.spawn(&["backup", "work"]);
    // The first run holds the lock from before it connects; wait until it has
    // reached the (stalled) server.
    support::wait_for("the first run to connect", || proxy.connections() >= 1);
    let second = env.run(&["backup", "work"]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(
        second.code, 6,
        "stdout: {}\nstderr: {}",
        second.stdout, second.stderr
    );
    assert!(
        second.stderr.contains("another mailkeep process"),
        "{}",
        second.stderr
    );
}

#[test]
fn kill_9_in_the_middle_then_rerun_loses_nothing() {
    let srv = server();
    let mut c = srv.client("alice");
    for i in 0..400 {
        c.append("INBOX", &[], None, &gen_message(i, 30_000, "kill"));
    }
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    let mut child = env.spawn(&["backup", "work"]);
    let pack = env.store.join("packs/00/000001.pack");
    support::wait_for("the backup to have written a few MB", || {
        std::fs::metadata(&pack)
            .map(|m| m.len() > 2_000_000)
            .unwrap_or(false)
    });
    // SIGKILL: no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();

    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let st = status_json(&env);
    assert_eq!(folder_status(&st, "work", "INBOX")["stored"], 400);
    assert_eq!(st["messages"], 400, "no duplicate rows");
    assert_same_messages(
        &exported_folder(&env, "work", "INBOX"),
        &server_folder(&srv, "alice", "INBOX"),
        "INBOX",
    );
    deep_verify_is_clean(&env);
    let v = env.run(&["verify", "--server", "work"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}

#[test]
fn dry_run_changes_nothing() {
    let srv = server();
    srv.client("alice")
        .append("INBOX", &[], None, &gen_message(1, 100, "x"));
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    let r = env.run(&["backup", "work", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("would fetch 1"), "{}", r.stdout);
    assert!(
        !env.store.join("index.sqlite").exists(),
        "no store was created"
    );
}

#[test]
fn corpus_survives_server_store_export_byte_for_byte() {
    let Some(corpus) = support::corpus_dir() else {
        return;
    };
    let srv = server();
    let mut c = srv.client("alice");
    c.create("Corpus");
    let mut appended = 0;
    let mut refused = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(corpus.join("varied"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let tagged = c.try_append("Corpus", &bytes);
        if tagged.contains(" OK") {
            appended += 1;
        } else {
            refused.push((f.clone(), tagged));
        }
    }
    assert!(
        appended > 1400,
        "Dovecot took {appended}; refused: {refused:?}"
    );
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_same_messages(
        &exported_folder(&env, "work", "Corpus"),
        &server_folder(&srv, "alice", "Corpus"),
        "Corpus",
    );
    deep_verify_is_clean(&env);
}

#[test]
fn a_huge_message_is_fetched_in_chunks_byte_for_byte() {
    let srv = server();
    let mut c = srv.client("alice");
    // Over the 8 MiB batch limit: fetched alone, in chunks, through a spool file.
    let mut big = gen_message(1, 9 * 1024 * 1024, "huge");
    big.extend_from_slice(b"the end\r\n");
    c.append("INBOX", &[], None, &big);
    c.append("INBOX", &[], None, &gen_message(2, 1000, "small"));
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("fetched 2 new"), "{}", r.stdout);
    assert_same_messages(
        &exported_folder(&env, "work", "INBOX"),
        &server_folder(&srv, "alice", "INBOX"),
        "INBOX",
    );
    assert!(
        std::fs::read_dir(env.store.join("tmp"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "no spool files are left behind"
    );
    deep_verify_is_clean(&env);
}

#[test]
fn without_condstore_flag_changes_are_found_by_a_full_listing() {
    let srv = server();
    let mut c = srv.client("alice");
    let uid = c.append("INBOX", &[], None, &gen_message(1, 300, "plain"));
    c.append("INBOX", &[], None, &gen_message(2, 300, "plain"));
    let proxy = FaultProxy::start(srv.imap_port(), Fault::RemoveCapability("CONDSTORE".into()));
    let env = Env::new();
    env.add_account_via("work", &proxy, &srv, "alice");
    assert_eq!(env.run(&["backup", "work"]).code, 0);
    c.store_flags("INBOX", uid, "+FLAGS", &["\\Seen", "$Important"]);
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("fetched 0 new") && r.stdout.contains("1 flag change,"),
        "{}",
        r.stdout
    );
}

#[test]
fn mbox_export_holds_every_message() {
    let srv = server();
    let mut c = srv.client("alice");
    c.create("Lists");
    // A body line that mbox readers would take for a message start.
    c.append(
        "Lists",
        &[],
        None,
        b"Subject: quoting\r\n\r\nFrom here on\r\n>From there\r\n",
    );
    let flags: [&[&str]; 5] = [
        &["\\Seen"],
        &["\\Seen", "\\Flagged"],
        &["\\Answered", "\\Seen"],
        &[],
        &["\\Draft"],
    ];
    for (i, f) in flags.iter().enumerate() {
        c.append("Lists", f, None, &gen_message(i, 700, "mbox"));
    }
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    assert_eq!(env.run(&["backup", "work"]).code, 0);
    let out = env.dir.path().join("mbox");
    let r = env.run(&[
        "export",
        "--account",
        "work",
        "--format",
        "mbox",
        "--folder",
        "Lists",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files = files_under(&out);
    assert_eq!(
        files.len(),
        1,
        "one mbox file per folder: {:?}",
        files.keys()
    );
    let text = String::from_utf8_lossy(files.values().next().unwrap()).to_string();
    assert_eq!(
        text.matches("\nFrom ").count() + usize::from(text.starts_with("From ")),
        6
    );
    assert!(
        text.contains("\n>From here on") && text.contains("\n>>From there"),
        "mboxrd quoting"
    );
    // Flags as mutt and Thunderbird read them: `Status:` R for read,
    // `X-Status:` A answered, F flagged, T draft; unread is `O`.
    for (subject_of, status, x_status) in [
        (0, "RO", ""),
        (1, "RO", "F"),
        (2, "RO", "A"),
        (3, "O", ""),
        (4, "O", "T"),
    ] {
        let id = format!("Message-ID: <mk-{subject_of}-700@mailkeep.test>");
        let start = text.find(&id).expect("message exported");
        let head = &text[text[..start].rfind("\nFrom mailkeep@localhost ").unwrap()..start];
        assert!(
            head.contains(&format!("\nStatus: {status}\r\nX-Status: {x_status}\r\n")),
            "message {subject_of}: {head}"
        );
    }
    // Imported again, the export gives back the stored bytes: the store
    // holds no new message bytes (each is stored once, by its hash).
    let unique = |env: &Env| status_json(env)["unique_messages"].as_u64().unwrap();
    let before = unique(&env);
    let r = env.run(&["import", "again", out.join("Lists.mbox").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("imported 6 messages"), "{r}");
    assert_eq!(unique(&env), before, "the same bytes came back");
}

#[test]
fn the_index_is_rebuilt_from_the_packs_alone() {
    let srv = server();
    let mut c = srv.client("alice");
    c.create("Work");
    for i in 0..12 {
        c.append(
            if i % 2 == 0 { "INBOX" } else { "Work" },
            &["\\Seen"],
            None,
            &gen_message(i, 900, "packs"),
        );
    }
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    assert_eq!(env.run(&["backup", "work"]).code, 0);
    let before = status_json(&env);

    for f in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
        let _ = std::fs::remove_file(env.store.join(f));
    }
    let r = env.run(&["repair"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let after = status_json(&env);
    assert_eq!(after["messages"], before["messages"]);
    assert_eq!(after["unique_messages"], before["unique_messages"]);
    for folder in ["INBOX", "Work"] {
        assert_eq!(
            folder_status(&after, "work", folder)["stored"],
            folder_status(&before, "work", folder)["stored"]
        );
    }
    assert_same_messages(
        &exported_folder(&env, "work", "Work"),
        &server_folder(&srv, "alice", "Work"),
        "Work",
    );
    // And the next backup carries on from the rebuilt index.
    let r = env.run(&["backup", "work"]);
    assert!(r.stdout.contains("fetched 0 new"), "{}", r.stdout);
    deep_verify_is_clean(&env);
}

#[test]
fn a_message_the_server_lists_but_does_not_send_fails_the_folder() {
    let srv = server();
    let mut c = srv.client("alice");
    for i in 0..5 {
        c.append("INBOX", &[], None, &gen_message(i, 700, "listed"));
    }
    let proxy = FaultProxy::start(srv.imap_port(), Fault::DropFetchBody { nth: 3 });
    let env = Env::new();
    env.add_account_via("work", &proxy, &srv, "alice");
    let r = env.run(&["backup", "work", "--jobs", "1"]);
    assert_eq!(r.code, 1, "not reported as success: {r}");
    assert!(
        r.stderr.contains("folder `INBOX`") && r.stderr.contains("did not send"),
        "{r}"
    );
    assert_eq!(
        folder_status(&status_json(&env), "work", "INBOX")["stored"],
        4
    );

    proxy.set_fault(Fault::None);
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains("fetched 1 new"),
        "the missing one is fetched: {r}"
    );
    assert_same_messages(
        &exported_folder(&env, "work", "INBOX"),
        &server_folder(&srv, "alice", "INBOX"),
        "INBOX",
    );
}

#[test]
fn a_rerun_with_nothing_new_opens_no_folder() {
    let srv = server();
    let mut c = srv.client("alice");
    for f in ["Work", "Lists", "Old"] {
        c.create(f);
        for i in 0..3 {
            c.append(f, &["\\Seen"], None, &gen_message(i, 900, f));
        }
    }
    let proxy = FaultProxy::start(srv.imap_port(), Fault::None);
    let env = Env::new();
    proxied_account(&env, "work", &proxy, &srv);
    env.run(&["backup", "work"]).assert_success();
    let before = proxy.commands().len();
    let r = env.run(&["backup", "work"]);
    r.assert_success();
    assert!(r.stdout.contains("fetched 0 new"), "{r}");
    let second: Vec<String> = proxy.commands()[before..].to_vec();
    // One LIST with every folder's STATUS says nothing changed: no folder
    // is opened, nothing is fetched.
    assert!(
        second
            .iter()
            .any(|c| c.starts_with("LIST") && c.contains("RETURN") && c.contains("STATUS")),
        "{second:?}"
    );
    assert!(
        !second
            .iter()
            .any(|c| c.starts_with("EXAMINE") || c.starts_with("SELECT") || c.contains("FETCH")),
        "{second:?}"
    );
    // A change in one folder opens that folder only.
    c.append("Lists", &[], None, &gen_message(9, 900, "new"));
    let before = proxy.commands().len();
    let r = env.run(&["backup", "work"]);
    assert!(r.stdout.contains("fetched 1 new"), "{r}");
    let opened: Vec<String> = proxy.commands()[before..]
        .iter()
        .filter(|c| c.starts_with("EXAMINE"))
        .cloned()
        .collect();
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert!(opened[0].contains("Lists"), "{opened:?}");
}

/// How many message bodies the client asked for (`UID FETCH <set> (UID
/// BODY.PEEK[])`), counted from what went through the proxy.
fn bodies_asked(proxy: &FaultProxy) -> usize {
    proxy
        .commands()
        .iter()
        .filter(|c| c.contains("BODY.PEEK[]"))
        .map(|c| {
            let set = c.split(' ').nth(2).unwrap();
            set.split(',')
                .map(|r| match r.split_once(':') {
                    Some((a, b)) => {
                        let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                        a.abs_diff(b) + 1
                    }
                    None => 1,
                })
                .sum::<usize>()
        })
        .sum()
}

#[test]
fn from_a_gmail_like_server_each_message_is_downloaded_once() {
    // `[Gmail]/All Mail` (a virtual folder, `\All`) shows every message of
    // every label again; a message COPYed to a second label keeps its id.
    let srv = Dovecot::start(DovecotOptions {
        gmail: true,
        ..DovecotOptions::default()
    });
    let mut c = srv.client("alice");
    c.create("Work");
    for i in 0..5 {
        let flags: &[&str] = if i == 0 { &["\\Flagged"] } else { &["\\Seen"] };
        c.append("INBOX", flags, None, &gen_message(i, 1500, "inbox"));
    }
    for i in 5..7 {
        c.append("Work", &[], None, &gen_message(i, 1500, "work"));
    }
    c.select("INBOX");
    c.raw_command("UID COPY 2 Work");
    c.append(
        "hidden/Sent",
        &["\\Seen"],
        None,
        &gen_message(7, 900, "sent"),
    );
    for i in 8..11 {
        c.append(
            "hidden/Archived",
            &[],
            None,
            &gen_message(i, 900, "archived"),
        );
    }
    let proxy = FaultProxy::start(srv.imap_port(), Fault::None);
    let env = Env::new();
    proxied_account(&env, "gmail", &proxy, &srv);

    let r = env.run(&["backup", "gmail", "--jobs", "1"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // 22 messages in the folders (All Mail 12, Starred 1, Sent Mail 1,
    // INBOX 5, Work 3), 11 distinct ones on the server.
    assert_eq!(bodies_asked(&proxy), 11, "{:?}", proxy.commands());
    assert!(r.stdout.contains("fetched 11 new"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("11 more already stored from another folder"),
        "{}",
        r.stdout
    );
    for folder in [
        "INBOX",
        "Work",
        "[Gmail]/All Mail",
        "[Gmail]/Starred",
        "[Gmail]/Sent Mail",
    ] {
        let ours = exported_folder(&env, "gmail", folder);
        assert!(!ours.is_empty(), "{folder}");
        assert_same_messages(&ours, &server_folder(&srv, "alice", folder), folder);
    }
    let st = status_json(&env);
    assert_eq!(
        folder_status(&st, "gmail", "[Gmail]/All Mail")["stored"],
        12,
        "{st}"
    );
    deep_verify_is_clean(&env);

    // New mail shows in INBOX and All Mail: downloaded once.
    let mut c = srv.client("alice");
    c.append("INBOX", &[], None, &gen_message(11, 1500, "inbox"));
    let before = bodies_asked(&proxy);
    let r = env.run(&["backup", "gmail", "--jobs", "1"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(bodies_asked(&proxy) - before, 1, "{}", r.stdout);
    assert!(r.stdout.contains("fetched 1 new"), "{}", r.stdout);
    assert_same_messages(
        &exported_folder(&env, "gmail", "[Gmail]/All Mail"),
        &server_folder(&srv, "alice", "[Gmail]/All Mail"),
        "All Mail",
    );
}

#[test]
fn a_folder_bigger_than_one_part_is_deduplicated_across_parts() {
    // New mail is taken in parts of 500 messages (its server ids asked per
    // part). A message shown twice in one folder, once in the first part
    // and once in the last, is still downloaded once; nothing is missed at
    // the edges.
    let srv = Dovecot::start(DovecotOptions {
        gmail: true,
        ..DovecotOptions::default()
    });
    let mut c = srv.client("alice");
    let n = 5_010;
    let msgs: Vec<(Vec<&str>, Option<String>, Vec<u8>)> = (0..n)
        .map(|i| (vec!["\\Seen"], None, gen_message(i, 300, "window")))
        .collect();
    c.append_many("INBOX", &msgs);
    c.select("INBOX");
    // UID 3 again, as UID 5011: the same server id, in the second window.
    c.raw_command("UID COPY 3 INBOX");
    let proxy = FaultProxy::start(srv.imap_port(), Fault::None);
    let env = Env::new();
    proxied_account(&env, "gmail", &proxy, &srv);

    let r = env.run(&["backup", "gmail", "--jobs", "1"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let id_asks = proxy
        .commands()
        .iter()
        .filter(|c| c.contains("X-GUID") && !c.contains("BODY"))
        .count();
    // Eleven parts each in INBOX and in All Mail (which shows them again).
    assert!(id_asks >= 22, "the ids were asked per part: {id_asks}");
    assert_eq!(bodies_asked(&proxy), n, "each message downloaded once");
    for folder in ["INBOX", "[Gmail]/All Mail"] {
        assert_same_messages(
            &exported_folder(&env, "gmail", folder),
            &server_folder(&srv, "alice", folder),
            folder,
        );
    }
    let st = status_json(&env);
    assert_eq!(
        folder_status(&st, "gmail", "INBOX")["stored"],
        n + 1,
        "{st}"
    );
}

#[test]
fn a_server_that_refuses_the_message_id_item_is_backed_up_all_the_same() {
    // A greeting that names Dovecot, a folder that looks virtual, and a
    // server (or a proxy before it) that answers `X-GUID` with BAD.
    let srv = Dovecot::start(DovecotOptions {
        gmail: true,
        ..DovecotOptions::default()
    });
    let mut c = srv.client("alice");
    for i in 0..3 {
        c.append("INBOX", &[], None, &gen_message(i, 1500, "inbox"));
    }
    let proxy = FaultProxy::start(
        srv.imap_port(),
        Fault::Refuse {
            containing: "X-GUID".into(),
            answer: "BAD Error in IMAP command UID FETCH: Unknown parameter".into(),
        },
    );
    let env = Env::new();
    proxied_account(&env, "gmail", &proxy, &srv);
    let r = env.run(&["backup", "gmail", "--jobs", "1"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        proxy.commands().iter().any(|c| c.contains("X-GUID")),
        "the ids were asked for: {:?}",
        proxy.commands()
    );
    for folder in ["INBOX", "[Gmail]/All Mail"] {
        assert_same_messages(
            &exported_folder(&env, "gmail", folder),
            &server_folder(&srv, "alice", folder),
            folder,
        );
    }
}

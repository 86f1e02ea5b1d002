//! Tests of the test harness itself (tests/support): the throwaway Dovecot, the
//! independent IMAP client, the fault proxy and the isolated environment. They say
//! nothing about mailkeep; they make sure the tools that judge it are right.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::imap_wire::{literal_len, parse_values, Value};
use support::*;

fn lf_to_crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 20);
    let mut prev = 0u8;
    for &b in bytes {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[test]
fn wire_literal_lengths() {
    assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12}\r\n"), Some(12));
    assert_eq!(literal_len(b"a APPEND x {3+}\r\n"), Some(3));
    assert_eq!(literal_len(b"* 1 FETCH (BINARY[] ~{7}\r\n"), Some(7));
    assert_eq!(literal_len(b"* OK {x}\r\n"), None);
    assert_eq!(literal_len(b"* OK done\r\n"), None);
}

#[test]
fn wire_parses_fetch_with_literal() {
    let v = parse_values(
        b"* 1 FETCH (UID 5 FLAGS (\\Seen $x) BODY[]<0> {4}\r\nab)\n INTERNALDATE \"x \\\" y\")\r\n",
    );
    assert_eq!(v[2], Value::Atom("FETCH".into()));
    let l = v[3].as_list();
    assert_eq!(l[0], Value::Atom("UID".into()));
    assert_eq!(
        l[3],
        Value::List(vec![Value::Atom("\\Seen".into()), Value::Atom("$x".into())])
    );
    assert_eq!(l[4], Value::Atom("BODY[]<0>".into()));
    assert_eq!(l[5], Value::Bytes(b"ab)\n".to_vec()));
    assert_eq!(l[7], Value::Bytes(b"x \" y".to_vec()));
}

#[test]
fn gen_message_is_deterministic_crlf_and_sized() {
    let a = gen_message(7, 5000, "hello");
    assert_eq!(a, gen_message(7, 5000, "hello"));
    assert_ne!(a, gen_message(8, 5000, "hello"));
    assert!(a.len() >= 5000 && a.len() < 5100, "size {}", a.len());
    let text = String::from_utf8(a.clone()).unwrap();
    assert!(text.contains("\r\nSubject: hello\r\n"));
    assert!(text.contains("Message-ID: <mk-7-5000@mailkeep.test>"));
    assert_eq!(lf_to_crlf(&a), a, "only CRLF line endings");
    assert!(text.lines().all(|l| l.len() <= 998));
    assert_eq!(gen_internaldate(0), "01-Jan-2020 00:00:00 +0900");
}

#[test]
fn dovecot_serves_imaps_and_starttls() {
    let d = Dovecot::start(DovecotOptions::default());
    let mut c = d.client("alice");
    assert!(c.has_capability("UIDPLUS"), "{:?}", c.capabilities());
    assert!(c.list().contains(&"INBOX".to_string()));
    c.logout();

    let plain = TestClient::connect_plain_no_login(d.imap_port());
    assert!(plain.has_capability("STARTTLS"), "{}", plain.greeting());
    let mut s = TestClient::connect_starttls(d.imap_port(), d.ca_file(), "bob", d.password("bob"));
    assert!(s.list().contains(&"INBOX".to_string()));
}

#[test]
fn special_use_mailboxes_exist() {
    let d = Dovecot::start(DovecotOptions::default());
    let mut c = d.client("alice");
    let boxes = c.list_with_attributes();
    for (name, flag) in [
        ("Sent", "\\Sent"),
        ("Drafts", "\\Drafts"),
        ("Trash", "\\Trash"),
        ("Junk", "\\Junk"),
        ("Archive", "\\Archive"),
    ] {
        let (_, attrs) = boxes
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {boxes:?}"));
        assert!(attrs.iter().any(|a| a == flag), "{name}: {attrs:?}");
    }
}

#[test]
fn append_then_fetch_is_byte_identical() {
    let d = Dovecot::start(DovecotOptions::default());
    let mut c = d.client("alice");
    let crlf = gen_message(1, 3000, "crlf");
    let big = gen_message(2, 300_000, "big");
    let u1 = c.append("INBOX", &[], None, &crlf);
    let u2 = c.append("INBOX", &[], None, &big);
    let got = c.fetch_all("INBOX");
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].uid, got[1].uid), (u1, u2));
    assert!(got[0].bytes == crlf, "CRLF message changed");
    assert!(got[1].bytes == big, "300 KB message changed");
    // A literal-looking line inside a body must not confuse the client.
    let tricky = b"Subject: tricky {5}\r\n\r\nline {12}\r\n* 3 FETCH (UID 9)\r\n".to_vec();
    let u3 = c.append("INBOX", &[], None, &tricky);
    let got = c.fetch_all("INBOX");
    assert_eq!(got[2].uid, u3);
    assert_eq!(got[2].bytes, tricky);
}

/// Dovecot (maildir, mail_save_crlf = no) stores LF and serves CRLF: a bare-LF or
/// mixed message comes back with every bare LF turned into CRLF.
#[test]
fn bare_lf_message_comes_back_with_crlf() {
    let d = Dovecot::start(DovecotOptions::default());
    let mut c = d.client("alice");
    let lf = b"From: a@example.org\nSubject: bare lf\n\nline one\nline two\n".to_vec();
    let mixed = b"From: a@example.org\r\nSubject: mixed\n\r\nline one\nline two\r\n".to_vec();
    c.append("INBOX", &[], None, &lf);
    c.append("INBOX", &[], None, &mixed);
    let got = c.fetch_all("INBOX");
    assert_eq!(got[0].bytes, lf_to_crlf(&lf));
    assert_eq!(got[1].bytes, lf_to_crlf(&mixed));
}

#[test]
fn flags_and_internaldate_round_trip() {
    let d = Dovecot::start(DovecotOptions::default());
    let mut c = d.client("alice");
    let m = gen_message(3, 500, "flags");
    let uid = c.append(
        "INBOX",
        &["\\Seen", "\\Flagged", "$Label1"],
        Some("01-Jan-2020 10:00:00 +0900"),
        &m,
    );
    let got = c.fetch_all("INBOX");
    let mut flags = got[0].flags.clone();
    flags.sort();
    assert_eq!(flags, ["$Label1", "\\Flagged", "\\Seen"]);
    // Maildir keeps the instant (file mtime), not the zone: compare instants.
    assert_eq!(
        parse_internaldate(&got[0].internaldate),
        parse_internaldate("01-Jan-2020 10:00:00 +0900")
    );
    c.store_flags("INBOX", uid, "-FLAGS", &["\\Flagged"]);
    c.store_flags("INBOX", uid, "+FLAGS", &["\\Answered"]);
    let mut flags = c.fetch_all("INBOX")[0].flags.clone();
    flags.sort();
    assert_eq!(flags, ["$Label1", "\\Answered", "\\Seen"]);
    c.store_flags("INBOX", uid, "FLAGS", &[]);
    assert!(c.fetch_all("INBOX")[0].flags.is_empty());
}

#[test]
fn expunge_rename_delete_and_uidvalidity() {
    let d = Dovecot::start(DovecotOptions::default());
    let mut c = d.client("alice");
    c.create("Work/2019");
    let uids: Vec<u32> = (0..4)
        .map(|i| c.append("Work/2019", &[], None, &gen_message(i, 200, "x")))
        .collect();
    c.expunge_uids("Work/2019", &uids[1..3]);
    let left: Vec<u32> = c.fetch_all("Work/2019").iter().map(|m| m.uid).collect();
    assert_eq!(left, [uids[0], uids[3]]);
    let v = c.uidvalidity("Work/2019");
    assert!(v > 0);
    c.rename("Work/2019", "Work/Old");
    assert!(c.list().contains(&"Work/Old".to_string()));
    assert_eq!(c.fetch_all("Work/Old").len(), 2);
    c.delete_mailbox("Work/Old");
    assert!(!c.list().contains(&"Work/Old".to_string()));
    let (untagged, tagged) = c.raw_command("SELECT \"no such box\"");
    assert!(tagged.contains(" NO "), "{tagged} {untagged:?}");
}

#[test]
fn two_servers_with_different_layouts() {
    let a = Dovecot::start(DovecotOptions::default());
    let b = Dovecot::start(DovecotOptions {
        separator: '.',
        prefix: "INBOX.".into(),
        ..Default::default()
    });
    assert_ne!(a.imaps_port(), b.imaps_port());
    let mut ca = a.client("alice");
    let mut cb = b.client("alice");
    ca.create("Work/2019");
    cb.create("INBOX.Work.2019");
    let la = ca.list();
    let lb = cb.list();
    assert!(la.contains(&"Sent".to_string()), "{la:?}");
    assert!(la.contains(&"Work/2019".to_string()), "{la:?}");
    assert!(lb.contains(&"INBOX".to_string()), "{lb:?}");
    assert!(lb.contains(&"INBOX.Sent".to_string()), "{lb:?}");
    assert!(lb.contains(&"INBOX.Work.2019".to_string()), "{lb:?}");
    let (untagged, _) = cb.raw_command("NAMESPACE");
    assert!(
        untagged.iter().any(|l| l.contains("((\"INBOX.\" \".\"))")),
        "{untagged:?}"
    );
    let m = gen_message(1, 800, "layout");
    cb.append("INBOX.Work.2019", &[], None, &m);
    assert_eq!(cb.fetch_all("INBOX.Work.2019")[0].bytes, m);
}

#[test]
fn quota_usage_rises_after_appends() {
    let d = Dovecot::start(DovecotOptions {
        quota_kib: Some(1024),
        ..Default::default()
    });
    let mut c = d.client("alice");
    let (before, limit) = c.quota_usage_kib();
    assert_eq!(limit, 1024);
    for i in 0..3 {
        c.append("INBOX", &[], None, &gen_message(i, 100_000, "quota"));
    }
    let (after, _) = c.quota_usage_kib();
    assert!(after >= before + 250, "quota {before} → {after}");
    // Over quota: APPEND is refused.
    let answer = c.try_append("INBOX", &gen_message(9, 900_000, "too big"));
    assert!(answer.contains(" NO "), "{answer}");
}

#[test]
fn japanese_mailbox_name() {
    let d = Dovecot::start(DovecotOptions::default());
    let mut c = d.client("alice");
    c.create("&kAFP4W4IMH8-");
    assert!(c.list().contains(&"&kAFP4W4IMH8-".to_string()));
    let m = gen_message(5, 400, "jp");
    c.append("&kAFP4W4IMH8-", &["\\Seen"], None, &m);
    assert_eq!(c.fetch_all("&kAFP4W4IMH8-")[0].bytes, m);
}

#[test]
fn restart_keeps_mail_and_ports() {
    let mut d = Dovecot::start(DovecotOptions::default());
    let port = d.imaps_port();
    let m = gen_message(1, 500, "restart");
    d.client("alice").append("INBOX", &[], None, &m);
    d.restart();
    assert_eq!(d.imaps_port(), port);
    assert_eq!(d.client("alice").fetch_all("INBOX")[0].bytes, m);
    d.stop();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn wrong_password_is_refused_quickly() {
    let d = Dovecot::start(DovecotOptions::default());
    let mut c = TestClient::connect_plain_no_login(d.imap_port());
    let start = std::time::Instant::now();
    for _ in 0..3 {
        let (_, tagged) = c.raw_command("LOGIN alice wrong");
        assert!(tagged.contains(" NO "), "{tagged}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

fn seeded(n: usize) -> Dovecot {
    let d = Dovecot::start(DovecotOptions::default());
    let mut c = d.client("alice");
    for i in 0..n {
        c.append("INBOX", &[], None, &gen_message(i, 2000, "proxy"));
    }
    d
}

#[test]
fn proxy_none_passes_traffic() {
    let d = seeded(3);
    let p = FaultProxy::start(d.imap_port(), Fault::None);
    let mut c = TestClient::connect_plain(p.port(), "alice", d.password("alice"));
    let m = gen_message(99, 70_000, "via proxy");
    c.append("INBOX", &["\\Seen"], None, &m);
    let got = c.fetch_all("INBOX");
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].bytes, m);
    assert_eq!(got[0].bytes, gen_message(0, 2000, "proxy"));
    assert_eq!(p.connections(), 1);
}

#[test]
fn proxy_removes_capability() {
    let d = seeded(0);
    let direct = TestClient::connect_plain(d.imap_port(), "alice", d.password("alice"));
    assert!(direct.has_capability("UIDPLUS"));
    let p = FaultProxy::start(d.imap_port(), Fault::RemoveCapability("UIDPLUS".into()));
    let mut c = TestClient::connect_plain_no_login(p.port());
    assert!(!c.greeting().to_ascii_uppercase().contains("UIDPLUS"));
    let (_, tagged) = c.raw_command(&format!("LOGIN alice {}", d.password("alice")));
    assert!(tagged.contains(" OK "), "{tagged}");
    assert!(tagged.contains("[CAPABILITY "), "{tagged}");
    assert!(!tagged.contains("UIDPLUS"), "{tagged}");
    let (untagged, _) = c.raw_command("CAPABILITY");
    assert!(untagged[0].starts_with("* CAPABILITY IMAP4rev1"));
    assert!(!untagged[0].contains("UIDPLUS"), "{untagged:?}");
    assert!(untagged[0].contains("MOVE"), "other capabilities kept");
}

#[test]
fn proxy_injects_tagged_no_in_fetch() {
    let d = seeded(5);
    let p = FaultProxy::start(d.imap_port(), Fault::TaggedNoInFetch { after_messages: 2 });
    let mut c = TestClient::connect_plain(p.port(), "alice", d.password("alice"));
    c.raw_command("EXAMINE INBOX");
    // A fetch without a body is not counted.
    let (untagged, tagged) = c.raw_command("UID FETCH 1:* (FLAGS)");
    assert_eq!(untagged.len(), 5);
    assert!(tagged.contains(" OK "), "{tagged}");
    let (untagged, tagged) = c.raw_command("UID FETCH 1:* (UID BODY.PEEK[])");
    let fetches = untagged.iter().filter(|l| l.contains(" FETCH ")).count();
    assert_eq!(fetches, 2, "{untagged:?}");
    assert!(
        tagged.ends_with(" NO [SERVERBUG] injected fault"),
        "{tagged}"
    );
    // The connection stays usable and the fault fired once.
    let (untagged, tagged) = c.raw_command("UID FETCH 1:* (UID BODY.PEEK[])");
    assert!(tagged.contains(" OK "), "{tagged}");
    assert_eq!(untagged.len(), 5);
    // A new connection gets the fault again.
    let mut c2 = TestClient::connect_plain(p.port(), "alice", d.password("alice"));
    c2.raw_command("EXAMINE INBOX");
    let (_, tagged) = c2.raw_command("FETCH 1:5 BODY[]");
    assert!(tagged.contains("NO [SERVERBUG]"), "{tagged}");
}

#[test]
fn proxy_tagged_no_with_zero_messages() {
    let d = seeded(2);
    let p = FaultProxy::start(d.imap_port(), Fault::TaggedNoInFetch { after_messages: 0 });
    let mut c = TestClient::connect_plain(p.port(), "alice", d.password("alice"));
    c.raw_command("EXAMINE INBOX");
    let (untagged, tagged) = c.raw_command("UID FETCH 1:* BODY.PEEK[]");
    assert!(untagged.is_empty(), "{untagged:?}");
    assert!(tagged.contains("NO [SERVERBUG]"), "{tagged}");
}

/// Reads everything the proxy lets through until EOF; panics on timeout.
fn read_to_eof(mut s: TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .expect("EOF, not a timeout or reset");
    got
}

#[test]
fn proxy_drops_after_server_bytes() {
    let d = seeded(3);
    let p = FaultProxy::start(d.imap_port(), Fault::DropAfterServerBytes(1000));
    let mut s = TcpStream::connect(("127.0.0.1", p.port())).unwrap();
    write!(
        s,
        "a LOGIN alice {}\r\nb EXAMINE INBOX\r\nc UID FETCH 1:* BODY.PEEK[]\r\n",
        d.password("alice")
    )
    .unwrap();
    let got = read_to_eof(s);
    assert_eq!(got.len(), 1000);
    assert!(got.starts_with(b"* OK "));
    // Through the client: a command after the cut fails with a connection error.
    let mut c = TestClient::connect_plain(p.port(), "alice", d.password("alice"));
    c.raw_command("EXAMINE INBOX");
    assert!(c.try_raw_command("UID FETCH 1:* BODY.PEEK[]").is_err());
    assert_eq!(p.connections(), 2);
}

#[test]
fn proxy_fault_on_one_connection_only() {
    let d = seeded(1);
    let p = FaultProxy::start(
        d.imap_port(),
        Fault::OnlyConnection {
            n: 2,
            fault: Box::new(Fault::DropAfterServerBytes(0)),
        },
    );
    let c1 = TestClient::connect_plain(p.port(), "alice", d.password("alice"));
    assert!(read_to_eof(TcpStream::connect(("127.0.0.1", p.port())).unwrap()).is_empty());
    let mut c3 = TestClient::connect_plain(p.port(), "alice", d.password("alice"));
    assert_eq!(c3.fetch_all("INBOX").len(), 1);
    drop(c1);
    // set_fault applies to later connections.
    p.set_fault(Fault::DropAfterServerBytes(0));
    assert!(read_to_eof(TcpStream::connect(("127.0.0.1", p.port())).unwrap()).is_empty());
    assert_eq!(
        c3.fetch_all("INBOX").len(),
        1,
        "earlier connection unaffected"
    );
    assert_eq!(p.connections(), 4);
}

#[test]
fn proxy_stalls_but_keeps_socket_open() {
    let d = seeded(0);
    let p = FaultProxy::start(
        d.imap_port(),
        Fault::Stall {
            after_server_bytes: 5,
        },
    );
    let mut s = TcpStream::connect(("127.0.0.1", p.port())).unwrap();
    let mut first = [0u8; 5];
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"* OK ");
    s.write_all(b"a NOOP\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut more = [0u8; 1];
    let err = s
        .read(&mut more)
        .expect_err("no byte after the stall point");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err:?}"
    );
    drop(p);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert_eq!(
        s.read(&mut more).unwrap_or(0),
        0,
        "closed when the proxy is dropped"
    );
}

#[test]
fn env_isolates_the_environment() {
    let env = Env::new();
    let d = Dovecot::start(DovecotOptions::default());
    env.add_account("demo-1", &d, "alice");
    env.add_account_raw(
        "other",
        "host = \"localhost\"\nport = 1\ntls = \"none\"\n",
        Some(("MK_PW_X", "x-secret")),
    );
    let text = std::fs::read_to_string(&env.config).unwrap();
    let parsed: toml::Table = toml::from_str(&text).expect("valid TOML");
    let acct = &parsed["accounts"]["demo-1"];
    assert_eq!(acct["port"].as_integer(), Some(d.imaps_port() as i64));
    assert_eq!(acct["tls"].as_str(), Some("implicit"));
    assert_eq!(acct["username"].as_str(), Some("alice"));
    assert_eq!(acct["password_env"].as_str(), Some("MK_PW_DEMO_1"));
    assert_eq!(
        acct["ca_file"].as_str(),
        Some(d.ca_file().to_str().unwrap())
    );
    assert_eq!(parsed["accounts"]["other"]["tls"].as_str(), Some("none"));
    let p = FaultProxy::start(d.imap_port(), Fault::None);
    env.add_account_via("via proxy", &p, &d, "bob");
    let text = std::fs::read_to_string(&env.config).unwrap();
    let parsed: toml::Table = toml::from_str(&text).expect("valid TOML");
    let acct = &parsed["accounts"]["via proxy"];
    assert_eq!(acct["port"].as_integer(), Some(p.port() as i64));
    assert_eq!(acct["tls"].as_str(), Some("none"));
    assert_eq!(acct["password_env"].as_str(), Some("MK_PW_VIA_PROXY"));

    let out = env
        .command_for(std::path::Path::new("env"))
        .output()
        .unwrap();
    let vars = String::from_utf8(out.stdout).unwrap();
    let mut names: Vec<&str> = vars.lines().map(|l| l.split('=').next().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "HOME",
            "MK_PW_DEMO_1",
            "MK_PW_VIA_PROXY",
            "MK_PW_X",
            "NO_COLOR",
            "PATH",
            "XDG_CACHE_HOME",
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "XDG_RUNTIME_DIR",
            "XDG_STATE_HOME"
        ]
    );
    assert!(vars.contains("MK_PW_DEMO_1=alice-secret\n"));
    let home = env.dir.path().join("home");
    assert!(vars.contains(&format!("HOME={}\n", home.display())));
}

#[test]
fn env_run_reports_exit_code_and_output() {
    let env = Env::new();
    assert!(mailkeep_bin().exists());
    let out = env.run_program(
        std::path::Path::new("sh"),
        &["-c", "echo out; echo err >&2; exit 3"],
        Duration::from_secs(20),
    );
    assert_eq!(out.code, 3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    // The real binary runs with --config/--store in front of the arguments.
    let cmd = env.command(&["status"]);
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(args[0], "--config");
    assert_eq!(args[2], "--store");
    assert_eq!(args[4], "status");
}

#[test]
#[should_panic(expected = "did not finish within")]
fn env_run_kills_a_hung_process() {
    let env = Env::new();
    env.run_program(
        std::path::Path::new("sleep"),
        &["30"],
        Duration::from_millis(200),
    );
}

#[test]
fn corpus_dir_follows_the_variable() {
    match std::env::var_os("MAILKEEP_CORPUS") {
        Some(v) if !v.is_empty() => {
            assert_eq!(corpus_dir().unwrap(), std::path::PathBuf::from(v));
        }
        _ => assert!(corpus_dir().is_none()),
    }
}

/// What Dovecot 2.3 (maildir) does with unusual bytes; mailkeep must store what is
/// served, so tests of it need to know:
/// - NUL in a plain APPEND literal is accepted and kept on disk, but `BODY[]` serves
///   it as 0x80; `BINARY.PEEK[]` (a `~{n}` literal8) serves the NUL;
/// - a message ending in a lone CR loses that last CR (other lone CRs are kept);
/// - a message without a final line ending is kept as is.
#[test]
fn dovecot_quirks_nul_cr_and_no_final_newline() {
    let d = Dovecot::start(DovecotOptions::default());
    let mut c = d.client("alice");
    let nul = b"From: a@example.org\r\nSubject: nul\r\n\r\nbefore\0after\r\n".to_vec();
    let cr = b"From: a@example.org\rSubject: cr\r\rbody\rline\r".to_vec();
    let noeol = b"From: a@example.org\r\nSubject: noeol\r\n\r\nno newline at end".to_vec();
    for m in [&nul, &cr, &noeol] {
        let answer = c.try_append("INBOX", m);
        assert!(answer.contains(" OK "), "{answer}");
    }
    let got = c.fetch_all("INBOX");
    let nul_as_0x80: Vec<u8> = nul.iter().map(|&b| if b == 0 { 0x80 } else { b }).collect();
    assert_eq!(got[0].bytes, nul_as_0x80);
    assert_eq!(got[1].bytes, cr[..cr.len() - 1]);
    assert_eq!(got[2].bytes, noeol);
    let (untagged, tagged) = c.raw_command(&format!("UID FETCH {} BINARY.PEEK[]", got[0].uid));
    assert!(tagged.contains(" OK "), "{tagged}");
    assert!(untagged[0].contains("BINARY[] ~{51}"), "{untagged:?}");
    assert!(untagged[0].as_bytes().ends_with(b"before\0after\r\n)"));
}

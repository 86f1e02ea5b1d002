//! Tests against a real Dovecot (see `test_server.rs`) and a few scripted
//! fake servers for what Dovecot will not do (no STARTTLS, silence).

use std::error::Error as _;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::test_server::{TestServer, BIG_USER, PASSWORD, USER};
use super::*;
use crate::model::{Endpoint, Flags, InternalDate, Secret, TlsMode, Uid};

fn opts() -> ConnectOptions {
    ConnectOptions {
        timeout: Duration::from_secs(20),
    }
}

async fn connect(server: &TestServer) -> Connection {
    let ep = server.endpoint(TlsMode::Implicit);
    match Connection::connect(&ep, &TestServer::password(), &opts()).await {
        Ok(c) => c,
        Err(e) => panic!("cannot connect: {e:?}\n{}", server.log()),
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.com>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn fetch_one(conn: &mut Connection, uid: Uid) -> Vec<u8> {
    let mut got = Vec::new();
    conn.fetch_bodies(&[uid], &mut |u, bytes| {
        got.push((u, bytes));
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(got.len(), 1, "one message for UID {uid}");
    assert_eq!(got[0].0, uid);
    got.pop().unwrap().1
}

async fn fetch_chunked(conn: &mut Connection, uid: Uid, size: u64, chunk: u32) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut pieces = 0;
    conn.fetch_body_chunked(uid, size, chunk, &mut |c| {
        assert!(c.len() <= chunk as usize);
        out.extend_from_slice(c);
        pieces += 1;
        Ok(())
    })
    .await
    .unwrap();
    (out, pieces)
}

#[tokio::test]
async fn connects_with_implicit_tls_starttls_and_plain_loopback() {
    let server = TestServer::start();
    let mut conn = connect(&server).await;
    let caps = conn.capabilities();
    for cap in [
        "IMAP4rev1",
        "CONDSTORE",
        "UIDPLUS",
        "QUOTA",
        "SPECIAL-USE",
        "namespace",
    ] {
        assert!(
            caps.has(cap),
            "post-login capabilities lack {cap}: {:?}",
            caps.iter().collect::<Vec<_>>()
        );
    }
    // Post-login list, not the pre-login one.
    assert!(!caps.has("AUTH=PLAIN"));
    assert_eq!(conn.endpoint().username, USER);
    conn.noop().await.unwrap();
    conn.logout().await.unwrap();

    let ep = server.endpoint(TlsMode::Starttls);
    let mut conn = Connection::connect(&ep, &TestServer::password(), &opts())
        .await
        .unwrap();
    assert!(conn.capabilities().has("CONDSTORE"));
    assert!(
        !conn.capabilities().has("STARTTLS"),
        "capabilities must be asked again after TLS"
    );
    conn.noop().await.unwrap();
    conn.logout().await.unwrap();

    let mut ep = server.endpoint(TlsMode::None);
    ep.host = "127.0.0.1".into();
    let mut conn = Connection::connect(&ep, &TestServer::password(), &opts())
        .await
        .unwrap();
    conn.noop().await.unwrap();
    conn.logout().await.unwrap();
}

#[tokio::test]
async fn certificate_and_password_failures_have_their_kinds() {
    let server = TestServer::start();
    for tls in [TlsMode::Implicit, TlsMode::Starttls] {
        let mut ep = server.endpoint(tls);
        ep.ca_file = None;
        let err = Connection::connect(&ep, &TestServer::password(), &opts())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{tls:?}: {err:?}");
        assert!(err.to_string().contains("localhost"), "{err}");
        match &err {
            crate::imap::ImapError::Certificate {
                problem: crate::imap::CertProblem::UnknownIssuer,
                cert: Some(cert),
                ..
            } => assert!(!cert.sha256.is_empty()),
            other => panic!("{tls:?}: not an untrusted-certificate error: {other:?}"),
        }
        assert!(!err.retryable());
    }

    let ep = server.endpoint(TlsMode::Implicit);
    let wrong = "wrong-password-123";
    let err = Connection::connect(&ep, &Secret::new(wrong), &opts())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err:?}");
    assert!(!err.retryable());
    assert_eq!(
        err.to_string(),
        format!("cannot log in to localhost as {USER}")
    );
    let text = chain(&err);
    assert!(text.contains("AUTHENTICATIONFAILED"), "{text}");
    assert!(!text.contains(wrong) && !format!("{err:?}").contains(wrong));
    assert!(!text.contains(PASSWORD));
}

#[tokio::test]
async fn folders_namespace_and_quota() {
    let server = TestServer::start();
    let mut conn = connect(&server).await;
    let sent_jp = encode_mailbox_name("送信済み");
    assert_eq!(sent_jp, "&kAFP4W4IMH8-");
    conn.create(&sent_jp).await.unwrap();
    conn.create("Projects/2024").await.unwrap();

    let folders = conn.list().await.unwrap();
    let find = |raw: &str| {
        folders
            .iter()
            .find(|f| f.raw == raw)
            .unwrap_or_else(|| panic!("{raw} not in {folders:?}"))
    };
    let jp = find("&kAFP4W4IMH8-");
    assert_eq!(jp.display, "送信済み");
    assert_eq!(jp.delimiter, Some('/'));
    assert!(jp.selectable);
    assert_eq!(find("Sent").special_use.as_deref(), Some("\\Sent"));
    assert_eq!(find("Trash").special_use.as_deref(), Some("\\Trash"));
    assert_eq!(find("INBOX").special_use, None);
    assert!(find("Projects/2024").selectable);
    // The parent exists only as a node of the tree.
    assert!(!find("Projects").selectable);

    // Creating an existing mailbox is a tagged NO, with the name in the error.
    let err = conn.create(&sent_jp).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(
        err.to_string().contains("CREATE of mailbox `送信済み`"),
        "{err}"
    );

    let ns = conn.namespace().await.unwrap();
    assert_eq!(
        ns,
        Namespace {
            prefix: String::new(),
            delimiter: Some('/')
        }
    );
    // The session survives the raw NAMESPACE read.
    conn.noop().await.unwrap();

    conn.append("INBOX", &Flags::default(), None, &vec![b'x'; 50_000])
        .await
        .unwrap();
    let roots = conn.quota_root("INBOX").await.unwrap();
    let root = roots
        .iter()
        .find(|r| r.name == "User quota")
        .unwrap_or_else(|| panic!("{roots:?}"));
    let storage = root
        .resources
        .iter()
        .find(|r| r.name == "STORAGE")
        .expect("STORAGE");
    assert_eq!(storage.limit, 10 * 1024);
    assert!(storage.usage >= 48, "{storage:?}");
    conn.logout().await.unwrap();
}

#[tokio::test]
async fn messages_round_trip_byte_exact() {
    let server = TestServer::start();
    let mut conn = connect(&server).await;
    let date = InternalDate::parse_imap("17-Jul-1996 02:44:25 -0700").unwrap();
    let flags = Flags::new(["\\Seen", "$Forwarded"]);
    let first = message("first", "hello");
    let uid1 = conn
        .append("INBOX", &flags, Some(&date), &first)
        .await
        .unwrap()
        .expect("APPENDUID");

    let state = conn.examine("INBOX").await.unwrap();
    assert!(state.uidvalidity > 0);
    assert_eq!(state.exists, 1);
    assert_eq!(state.uidnext, Some(uid1 + 1));
    assert!(state.highestmodseq.is_some_and(|m| m > 0), "{state:?}");

    let meta = conn.fetch_meta("1:*", None).await.unwrap();
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0].uid, uid1);
    assert_eq!(meta[0].flags, flags);
    // Maildir keeps INTERNALDATE as the file's mtime: the instant survives,
    // the zone becomes the server's.
    assert_eq!(meta[0].internaldate.unix, date.unix);
    assert_eq!(meta[0].size, first.len() as u64);
    assert!(meta[0].modseq.is_some());
    assert_eq!(fetch_one(&mut conn, uid1).await, first);

    // Bare LF line endings.
    let lf = b"From: a@example.com\nSubject: lf\n\nline one\nline two\n".to_vec();
    let uid_lf = conn
        .append("INBOX", &Flags::default(), None, &lf)
        .await
        .unwrap()
        .unwrap();
    // NUL bytes (literal8 with BINARY).
    assert!(conn.capabilities().has("BINARY"));
    let mut nul = message("nul", "before");
    nul.extend_from_slice(b"a\0b\0\0c\r\n");
    let uid_nul = conn
        .append("INBOX", &Flags::default(), None, &nul)
        .await
        .unwrap()
        .unwrap();
    // 3 MB through chunks.
    let mut big = message("big", "");
    for i in 0..55_000 {
        big.extend_from_slice(
            format!("{i:08} the quick brown fox jumps over the lazy dog......\r\n").as_bytes(),
        );
    }
    assert!(big.len() > 3_000_000);
    let uid_big = conn
        .append("INBOX", &Flags::default(), None, &big)
        .await
        .unwrap()
        .unwrap();

    conn.examine("INBOX").await.unwrap();
    assert_eq!(
        conn.uid_search_all().await.unwrap(),
        vec![uid1, uid_lf, uid_nul, uid_big]
    );
    // Dovecot accepts bare LF but always serves CRLF (and counts RFC822.SIZE
    // that way): what we get is what it serves, the same by both paths.
    let got_lf = fetch_one(&mut conn, uid_lf).await;
    let lf_as_crlf = String::from_utf8_lossy(&lf)
        .replace('\n', "\r\n")
        .into_bytes();
    assert_eq!(
        String::from_utf8_lossy(&got_lf),
        String::from_utf8_lossy(&lf_as_crlf)
    );
    let lf_size = conn.fetch_meta(&uid_lf.to_string(), None).await.unwrap()[0].size;
    assert_eq!(lf_size, lf_as_crlf.len() as u64);
    let (got, _) = fetch_chunked(&mut conn, uid_lf, lf_size, 10).await;
    assert_eq!(got, got_lf);
    // The NUL message was accepted (literal8), but Dovecot serves BODY[] with
    // each NUL as 0x80; only BINARY[] would give the NULs back.
    let got_nul = fetch_one(&mut conn, uid_nul).await;
    let nul_served: Vec<u8> = nul.iter().map(|&b| if b == 0 { 0x80 } else { b }).collect();
    assert_eq!(got_nul, nul_served);

    let (got, pieces) = fetch_chunked(&mut conn, uid_big, big.len() as u64, 256 * 1024).await;
    assert!(got == big, "3 MB message differs after chunked fetch");
    assert_eq!(pieces, big.len().div_ceil(256 * 1024));
    // A chunk size that divides the message exactly ends with an empty piece.
    let (got, _) = fetch_chunked(&mut conn, uid1, first.len() as u64, first.len() as u32).await;
    assert_eq!(got, first);
    let (got, _) = fetch_chunked(&mut conn, uid_nul, nul.len() as u64, 7).await;
    assert_eq!(got, nul_served);

    // Several at once, in UID order, one callback per message; a UID that
    // does not exist is simply not reported.
    let mut seen = Vec::new();
    conn.fetch_bodies(&[uid1, uid_big, 9999], &mut |u, bytes| {
        seen.push((u, bytes.len()));
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(seen, vec![(uid1, first.len()), (uid_big, big.len())]);

    // Flags with CHANGEDSINCE: nothing changed since the highest modseq.
    let now = conn.examine("INBOX").await.unwrap().highestmodseq.unwrap();
    assert!(conn.fetch_flags("1:*", Some(now)).await.unwrap().is_empty());
    let all = conn.fetch_flags("1:*", None).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].0, uid1);
    assert_eq!(all[0].1, flags);
    assert!(all[0].2.is_some());
    assert_eq!(
        conn.fetch_meta(&uid_big.to_string(), Some(0))
            .await
            .unwrap()[0]
            .size,
        big.len() as u64
    );

    // Without LITERAL+ the literal waits for the server's continuation.
    conn.wire.literal_plus = false;
    conn.wire.literal_minus = false;
    let sync = message("sync", "synchronising literal");
    let uid_sync = conn
        .append("INBOX", &Flags::default(), None, &sync)
        .await
        .unwrap()
        .unwrap();
    conn.examine("INBOX").await.unwrap();
    assert_eq!(fetch_one(&mut conn, uid_sync).await, sync);

    // The callback's error stops nothing on the wire: the session stays usable.
    let err = conn
        .fetch_bodies(&[uid1, uid_lf], &mut |_, _| Err("disk full".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Caller);
    assert_eq!(err.source().unwrap().to_string(), "disk full");
    conn.noop().await.unwrap();
    conn.logout().await.unwrap();
}

#[tokio::test]
async fn tagged_no_and_bad_are_errors() {
    let server = TestServer::start();
    let mut conn = connect(&server).await;
    // No mailbox selected: the server answers BAD to UID FETCH / SEARCH.
    let err = conn.fetch_meta("1:*", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err:?}");
    assert!(
        err.to_string().starts_with("UID FETCH failed on localhost"),
        "{err}"
    );
    assert!(err.server_response().is_some());
    assert!(conn.uid_search_all().await.is_err());

    let err = conn.examine("Nope").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(
        err.to_string().contains("EXAMINE of mailbox `Nope`"),
        "{err}"
    );
    assert!(err.server_text().is_some_and(|t| !t.is_empty()));
    assert!(!err.retryable());

    let err = conn
        .append("Nope", &Flags::default(), None, b"Subject: x\r\n\r\nx\r\n")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert_eq!(
        err.server_response().unwrap().code.as_deref(),
        Some("TRYCREATE")
    );

    let err = conn.fetch_meta("1:*) FOO", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    conn.noop().await.unwrap();
    conn.logout().await.unwrap();
}

#[tokio::test]
async fn expunge_removes_exactly_the_given_uids() {
    let server = TestServer::start();
    let mut conn = connect(&server).await;
    conn.create("Arch").await.unwrap();
    let mut uids = Vec::new();
    for i in 0..5 {
        let m = message(&format!("m{i}"), "body");
        uids.push(
            conn.append("Arch", &Flags::default(), None, &m)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    conn.select("Arch").await.unwrap();
    // Someone else marked uids[2] deleted: a plain EXPUNGE would remove it too.
    conn.uid_store_add_deleted(&uids[2].to_string())
        .await
        .unwrap();
    let chosen = compress_uid_set(&[uids[1], uids[3]]);
    conn.uid_store_add_deleted(&chosen).await.unwrap();
    conn.uid_expunge(&chosen).await.unwrap();
    assert_eq!(
        conn.uid_search_all().await.unwrap(),
        vec![uids[0], uids[2], uids[4]]
    );
    let meta = conn.fetch_meta("1:*", None).await.unwrap();
    assert!(meta
        .iter()
        .find(|m| m.uid == uids[2])
        .unwrap()
        .flags
        .contains("\\Deleted"));
    conn.logout().await.unwrap();
}

#[tokio::test]
async fn fetch_identity_gives_size_date_and_message_id_without_bodies() {
    let server = TestServer::start();
    let mut conn = connect(&server).await;
    conn.create("Ident").await.unwrap();
    let date = InternalDate::parse_imap("01-Feb-2019 10:20:30 +0900").unwrap();
    let with_id = message("ident", "body");
    let no_id = b"From: a@example.com\r\nSubject: no id\r\n\r\nbody\r\n".to_vec();
    let u1 = conn
        .append("Ident", &Flags::default(), Some(&date), &with_id)
        .await
        .unwrap()
        .unwrap();
    let u2 = conn
        .append("Ident", &Flags::default(), Some(&date), &no_id)
        .await
        .unwrap()
        .unwrap();
    conn.examine("Ident").await.unwrap();
    let got = conn.fetch_identity("1:*").await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].uid, got[1].uid), (u1, u2));
    assert_eq!(got[0].size, with_id.len() as u64);
    assert_eq!(got[0].internaldate.unix, date.unix);
    assert_eq!(
        String::from_utf8_lossy(&got[0].message_id_header).trim_end(),
        "Message-ID: <ident@example.com>"
    );
    assert_eq!(got[1].size, no_id.len() as u64);
    assert!(
        got[1]
            .message_id_header
            .iter()
            .all(|b| b.is_ascii_whitespace()),
        "{:?}",
        String::from_utf8_lossy(&got[1].message_id_header)
    );
    // A tagged NO is an error, never an empty answer.
    assert!(conn.fetch_identity("1:x").await.is_err());
    conn.logout().await.unwrap();
}

/// A fake server that greets and answers each command with `answer(tag, line)`.
async fn fake_server(answer: fn(&str, &str) -> String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        w.write_all(b"* OK fake ready\r\n").await.unwrap();
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let (tag, rest) = line.split_once(' ').unwrap_or((&line, ""));
            if w.write_all(answer(tag, rest).as_bytes()).await.is_err() {
                break;
            }
        }
    });
    port
}

fn fake_ep(port: u16, tls: TlsMode) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
        tls,
        username: "taro@example.com".into(),
        ca_file: None,
        tls_fingerprint: None,
    }
}

#[tokio::test]
async fn starttls_not_offered_is_an_error_never_plain_text() {
    let port = fake_server(|tag, cmd| {
        if cmd.eq_ignore_ascii_case("CAPABILITY") {
            format!("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n")
        } else {
            // Any login attempt would land here.
            format!("{tag} BAD unexpected\r\n")
        }
    })
    .await;
    let err = Connection::connect(
        &fake_ep(port, TlsMode::Starttls),
        &Secret::new("pw"),
        &opts(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ImapError::StartTlsNotOffered { .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Tls);
}

#[tokio::test]
async fn logindisabled_without_auth_plain_is_refused() {
    let port = fake_server(|tag, cmd| {
        if cmd.eq_ignore_ascii_case("CAPABILITY") {
            format!("* CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=GSSAPI\r\n{tag} OK done\r\n")
        } else {
            format!("{tag} BAD unexpected\r\n")
        }
    })
    .await;
    let err = Connection::connect(&fake_ep(port, TlsMode::None), &Secret::new("pw"), &opts())
        .await
        .unwrap_err();
    assert!(matches!(err, ImapError::LoginDisabled { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn login_without_auth_plain_quotes_the_password() {
    let port = fake_server(|tag, cmd| {
        if cmd.eq_ignore_ascii_case("CAPABILITY") {
            format!("* CAPABILITY IMAP4rev1 AUTH=LOGIN\r\n{tag} OK done\r\n")
        } else if cmd == r#"LOGIN "taro@example.com" "p\"w\\x y""# {
            format!("{tag} OK logged in\r\n")
        } else if cmd.starts_with("LOGIN") {
            format!("{tag} NO [AUTHENTICATIONFAILED] bad quoting\r\n")
        } else {
            format!("{tag} OK\r\n")
        }
    })
    .await;
    let ep = fake_ep(port, TlsMode::None);
    let conn = Connection::connect(&ep, &Secret::new(r#"p"w\x y"#), &opts()).await;
    conn.unwrap().logout().await.unwrap();
}

#[tokio::test]
async fn silence_times_out_and_refusal_is_a_network_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(sock);
    });
    let short = ConnectOptions {
        timeout: Duration::from_millis(300),
    };
    let err = Connection::connect(&fake_ep(port, TlsMode::None), &Secret::new("pw"), &short)
        .await
        .unwrap_err();
    assert!(matches!(err, ImapError::Timeout { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Network);
    assert!(err.retryable());
    assert!(err.to_string().contains("greeting"), "{err}");
    hold.abort();

    // Nothing listens on a port we just released.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = Connection::connect(&fake_ep(port, TlsMode::None), &Secret::new("pw"), &opts())
        .await
        .unwrap_err();
    assert!(matches!(err, ImapError::Connect { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Network);
}

#[tokio::test]
async fn tagged_no_after_fetch_data_and_unsolicited_floods_are_handled() {
    let port = fake_server(|tag, cmd| {
        if cmd.eq_ignore_ascii_case("CAPABILITY") {
            format!("* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n{tag} OK done\r\n")
        } else if cmd.starts_with("UID FETCH 10:11 (UID BODY.PEEK[])") {
            // Upstream issue #95: data, then a tagged NO that must not be lost.
            format!(
                "* 1 FETCH (UID 10 BODY[] {{5}}\r\nhello)\r\n{tag} NO [SERVERBUG] message 11 is broken\r\n"
            )
        } else if cmd.starts_with("UID FETCH 1:*") {
            // Far more unsolicited responses than async-imap's channel holds,
            // and a flag update of another message without the asked items.
            let mut out = String::new();
            for i in 0..500 {
                out.push_str(&format!("* {i} EXISTS\r\n* {i} RECENT\r\n"));
            }
            out.push_str("* 2 FETCH (FLAGS (\\Seen))\r\n* 3 EXPUNGE\r\n");
            out.push_str(
                "* 1 FETCH (UID 10 FLAGS (\\Seen \\Recent) INTERNALDATE \"01-Jan-2024 09:00:00 +0900\" RFC822.SIZE 5)\r\n",
            );
            out.push_str(&format!("{tag} OK done\r\n"));
            out
        } else {
            format!("{tag} OK\r\n")
        }
    })
    .await;
    let mut conn = Connection::connect(&fake_ep(port, TlsMode::None), &Secret::new("pw"), &opts())
        .await
        .unwrap();
    let mut got = Vec::new();
    let err = conn
        .fetch_bodies(&[10, 11], &mut |u, b| {
            got.push((u, b));
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(got, vec![(10, b"hello".to_vec())]);
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert_eq!(
        err.server_response().unwrap().code.as_deref(),
        Some("SERVERBUG")
    );

    for _ in 0..3 {
        let meta = conn.fetch_meta("1:*", None).await.unwrap();
        assert_eq!(meta.len(), 1);
        assert_eq!(meta[0].uid, 10);
        assert_eq!(meta[0].flags, Flags::new(["\\Seen"]));
        assert_eq!(meta[0].internaldate.offset_min, 540);
    }
    conn.noop().await.unwrap();
}

#[tokio::test]
async fn a_server_dropping_mid_command_is_a_network_error() {
    let port = fake_server(|tag, cmd| {
        if cmd.eq_ignore_ascii_case("CAPABILITY") {
            format!("* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n{tag} OK done\r\n")
        } else if cmd.starts_with("AUTHENTICATE") {
            format!("{tag} OK logged in\r\n")
        } else if cmd.starts_with("UID FETCH") {
            // Half a response, then the connection goes away.
            "* 1 FETCH (UID 1 BODY[] {100}\r\nabc".to_string()
        } else {
            format!("{tag} OK\r\n")
        }
    })
    .await;
    let short = ConnectOptions {
        timeout: Duration::from_millis(500),
    };
    let mut conn = Connection::connect(&fake_ep(port, TlsMode::None), &Secret::new("pw"), &short)
        .await
        .unwrap();
    // The 100-byte literal never completes.
    let err = conn
        .fetch_bodies(&[1], &mut |_, _| Ok(()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err:?}");
    // The session is not reused after that.
    let err = conn.noop().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network);
}

/// A source for `append_from` that hands out `data` in pieces of `piece`
/// bytes and then either ends or fails where the end would be.
struct PieceSource {
    data: Vec<u8>,
    at: usize,
    piece: usize,
    fail_at_end: bool,
}

impl tokio::io::AsyncRead for PieceSource {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at == this.data.len() {
            if this.fail_at_end {
                return std::task::Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the stored bytes do not hash",
                )));
            }
            return std::task::Poll::Ready(Ok(()));
        }
        let n = this
            .piece
            .min(buf.remaining())
            .min(this.data.len() - this.at);
        buf.put_slice(&this.data[this.at..this.at + n]);
        this.at += n;
        std::task::Poll::Ready(Ok(()))
    }
}

fn big_message(subject: &str, size: usize) -> Vec<u8> {
    let mut m = message(subject, "");
    let mut i = 0u64;
    while m.len() < size {
        m.extend_from_slice(format!("{i:09} {:016x} streamed line\r\n", i * 7919).as_bytes());
        i += 1;
    }
    m
}

#[tokio::test]
async fn streamed_append_of_a_big_message_comes_back_byte_exact() {
    let server = TestServer::start();
    let mut ep = server.endpoint(TlsMode::Implicit);
    ep.username = BIG_USER.into();
    let mut conn = Connection::connect(&ep, &TestServer::password(), &opts())
        .await
        .unwrap();
    let big = big_message("streamed", 20_000_000);
    let date = InternalDate::parse_imap("01-Feb-2024 10:00:00 +0000").unwrap();
    let flags = Flags::new(["\\Seen", "\\Flagged"]);
    let mut src = PieceSource {
        data: big.clone(),
        at: 0,
        piece: 100_003,
        fail_at_end: false,
    };
    let uid = conn
        .append_from(
            "INBOX",
            &flags,
            Some(&date),
            big.len() as u64,
            false,
            &mut src,
        )
        .await
        .unwrap()
        .expect("APPENDUID");
    // Synchronising literal too (a server without LITERAL+).
    let small = big_message("synchronising", 300_000);
    conn.wire.literal_plus = false;
    conn.wire.literal_minus = false;
    let uid2 = conn
        .append_from(
            "INBOX",
            &Flags::default(),
            None,
            small.len() as u64,
            false,
            &mut &small[..],
        )
        .await
        .unwrap()
        .expect("APPENDUID");
    assert!(conn.usable());

    conn.examine("INBOX").await.unwrap();
    assert_eq!(conn.uid_search_all().await.unwrap(), vec![uid, uid2]);
    let meta = conn.fetch_meta("1:*", None).await.unwrap();
    assert_eq!(meta[0].flags, flags);
    assert_eq!(meta[0].internaldate.unix, date.unix);
    assert_eq!(meta[0].size, big.len() as u64);
    let (got, pieces) = fetch_chunked(&mut conn, uid, big.len() as u64, 4 << 20).await;
    assert!(pieces > 1);
    assert!(got == big, "the 20 MB message differs");
    assert_eq!(fetch_one(&mut conn, uid2).await, small);
    conn.logout().await.unwrap();
}

#[tokio::test]
async fn streamed_append_refused_or_failing_at_its_source() {
    let server = TestServer::start();
    let mut conn = connect(&server).await;
    let m = big_message("refused", 200_000);

    // Refused by the server (no such mailbox): a tagged NO, session usable.
    for literal_plus in [true, false] {
        conn.wire.literal_plus = literal_plus;
        let err = conn
            .append_from(
                "Nope",
                &Flags::default(),
                None,
                m.len() as u64,
                false,
                &mut &m[..],
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err:?}");
        assert_eq!(
            err.server_response().unwrap().code.as_deref(),
            Some("TRYCREATE")
        );
        assert!(conn.usable());
        conn.noop().await.unwrap();
    }
    conn.wire.literal_plus = true;

    // The source fails where its end would be (damage found by the hash
    // check): the APPEND is never completed and the session is given up.
    let mut bad = PieceSource {
        data: m.clone(),
        at: 0,
        piece: 65_536,
        fail_at_end: true,
    };
    let err = conn
        .append_from(
            "INBOX",
            &Flags::default(),
            None,
            m.len() as u64,
            false,
            &mut bad,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ImapError::Source { .. }), "{err:?}");
    assert!(chain(&err).contains("do not hash"), "{}", chain(&err));
    assert!(!conn.usable());
    assert!(
        conn.noop().await.is_err(),
        "a given-up session stays given up"
    );
    drop(conn);

    // A source shorter than announced: the same.
    let mut conn = connect(&server).await;
    let err = conn
        .append_from(
            "INBOX",
            &Flags::default(),
            None,
            m.len() as u64 + 10,
            false,
            &mut &m[..],
        )
        .await
        .unwrap_err();
    assert!(chain(&err).contains("ended after"), "{}", chain(&err));
    drop(conn);

    // Nothing was stored by either.
    let mut conn = connect(&server).await;
    let state = conn.examine("INBOX").await.unwrap();
    assert_eq!(state.exists, 0);
    conn.logout().await.unwrap();
}

#[test]
fn appendlimit_is_read_from_the_capabilities() {
    let caps = super::Capabilities::new(["IMAP4rev1", "APPENDLIMIT=35651584", "LITERAL+"]);
    assert_eq!(caps.append_limit(), Some(35_651_584));
    // Without a value the limit is per mailbox (RFC 7889): not known here.
    assert_eq!(
        super::Capabilities::new(["APPENDLIMIT"]).append_limit(),
        None
    );
    assert_eq!(super::Capabilities::new(["IMAP4rev1"]).append_limit(), None);
}

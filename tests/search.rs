//! Search, show and reindex against mail backed up from a real Dovecot,
//! through the real binary.

mod support;

use std::collections::BTreeMap;

use base64::Engine;
use support::{Dovecot, DovecotOptions, Env};

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// `=?UTF-8?B?…?=`
fn utf8_word(s: &str) -> String {
    format!("=?UTF-8?B?{}?=", b64(s.as_bytes()))
}

fn headers(date: &str, from: &str, subject: &str, id: &str, ctype: &str) -> Vec<u8> {
    format!(
        "Date: {date}\r\nFrom: {from}\r\nTo: Alice <alice@example.com>\r\nSubject: {subject}\r\n\
         Message-ID: <{id}@mailkeep.test>\r\nMIME-Version: 1.0\r\n{ctype}\r\n"
    )
    .into_bytes()
}

/// 来週の打ち合わせ / 会議の議事録 in ISO-2022-JP (from iconv).
const JIS_SUBJECT: &[u8] = b"\x1b$BMh=5$NBG$A9g$o$;\x1b(B";
const JIS_BODY: &[u8] = b"\x1b$B2q5D$N5D;vO?\x1b(B";
/// 経費精算 / 請求書を送付します in Shift_JIS (from iconv).
const SJIS_SUBJECT: &[u8] = b"\x8c\x6f\x94\xef\x90\xb8\x8e\x5a";
const SJIS_BODY: &[u8] =
    b"\x90\xbf\x8b\x81\x8f\x91\x82\xf0\x91\x97\x95\x74\x82\xb5\x82\xdc\x82\xb7";

struct Msg {
    folder: &'static str,
    internaldate: &'static str,
    subject: &'static str,
    bytes: Vec<u8>,
}

/// The generated mail: English, Japanese in UTF-8, ISO-2022-JP and
/// Shift_JIS, an attachment, broken MIME, and something that is not mail.
fn messages() -> Vec<Msg> {
    let mut v = Vec::new();
    let mut m = headers(
        "Mon, 1 Feb 2021 10:00:00 +0900",
        "Alice Smith <alice.smith@example.org>",
        "Quarterly budget review",
        "en-1",
        "Content-Type: text/plain; charset=us-ascii",
    );
    m.extend_from_slice(b"\r\nPlease find the reconciliation numbers below.\r\nThanks\r\n");
    v.push(Msg {
        folder: "INBOX",
        internaldate: "01-Feb-2021 10:00:00 +0900",
        subject: "Quarterly budget review",
        bytes: m,
    });

    let mut m = headers(
        "Sun, 15 Nov 2020 09:30:00 +0900",
        &format!("{} <tanaka@example.jp>", utf8_word("田中 太郎")),
        &utf8_word("見積書の件について"),
        "ja-1",
        "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit",
    );
    // "お見積もり" is wrapped in the middle of the word, as Japanese mail is.
    m.extend_from_slice(
        "\r\nお世話になっております。\r\nご依頼のお見積\r\nもりをお送りします。\r\n".as_bytes(),
    );
    v.push(Msg {
        folder: "INBOX",
        internaldate: "15-Nov-2020 09:30:00 +0900",
        subject: "見積書の件について",
        bytes: m,
    });

    let mut m = headers(
        "Tue, 10 Mar 2020 09:00:00 +0900",
        "Suzuki <suzuki@example.jp>",
        &format!("=?ISO-2022-JP?B?{}?=", b64(JIS_SUBJECT)),
        "jis-1",
        "Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit",
    );
    m.extend_from_slice(b"\r\n");
    m.extend_from_slice(JIS_BODY);
    m.extend_from_slice(b"\r\n");
    v.push(Msg {
        folder: "INBOX",
        internaldate: "10-Mar-2020 09:00:00 +0900",
        subject: "来週の打ち合わせ",
        bytes: m,
    });

    let mut m = headers(
        "Sat, 1 Jun 2019 12:00:00 +0900",
        "Sato <sato@example.jp>",
        &format!("=?Shift_JIS?B?{}?=", b64(SJIS_SUBJECT)),
        "sjis-1",
        "Content-Type: text/plain; charset=Shift_JIS\r\nContent-Transfer-Encoding: 8bit",
    );
    m.extend_from_slice(b"\r\n");
    m.extend_from_slice(SJIS_BODY);
    m.extend_from_slice(b"\r\n");
    v.push(Msg {
        folder: "INBOX",
        internaldate: "01-Jun-2019 12:00:00 +0900",
        subject: "経費精算",
        bytes: m,
    });

    let mut m = headers(
        "Fri, 5 Mar 2021 15:00:00 +0900",
        "Alice <alice@example.com>",
        "Invoice for March",
        "att-1",
        "Content-Type: multipart/mixed; boundary=\"BOUNDARY\"",
    );
    m.extend_from_slice(
        b"\r\n--BOUNDARY\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe invoice is attached.\r\n\
          --BOUNDARY\r\nContent-Type: application/pdf; name=\"invoice-2021-03.pdf\"\r\n\
          Content-Disposition: attachment; filename=\"invoice-2021-03.pdf\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK\r\n\
          --BOUNDARY--\r\n",
    );
    v.push(Msg {
        folder: "Sent",
        internaldate: "05-Mar-2021 15:00:00 +0900",
        subject: "Invoice for March",
        bytes: m,
    });

    // The Date: header says 2022, the server received it in 2019: searches
    // go by the INTERNALDATE.
    let mut m = headers(
        "Fri, 1 Jul 2022 08:00:00 +0000",
        "News <news@example.net>",
        "Old newsletter",
        "old-1",
        "Content-Type: text/plain; charset=us-ascii",
    );
    m.extend_from_slice(b"\r\nIssue 12 of the newsletter.\r\n");
    v.push(Msg {
        folder: "Archive/2019",
        internaldate: "15-Jan-2019 08:00:00 +0000",
        subject: "Old newsletter",
        bytes: m,
    });

    // Broken MIME: a boundary that never comes, 8-bit garbage.
    v.push(Msg {
        folder: "INBOX",
        internaldate: "01-May-2021 10:00:00 +0000",
        subject: "broken widget report",
        bytes: b"Subject: broken widget report\r\nFrom: bob@example.net\r\n\
                 Content-Type: multipart/mixed; boundary=\"zzz\"\r\n\r\n--wrong\r\n\
                 nothing closes here \xff\xfe\r\n"
            .to_vec(),
    });
    // A message/rfc822 right inside another, holding a multipart (mail-parser
    // 0.11's debug build panics on it; the released one recovers).
    v.push(Msg {
        folder: "INBOX",
        internaldate: "01-Jun-2020 10:00:00 +0000",
        subject: "nested forward outer",
        bytes: b"From: carol@example.net\r\nSubject: nested forward outer\r\n\
                 Content-Type: multipart/mixed; boundary=\"B1\"\r\n\r\n--B1\r\n\
                 Content-Type: text/plain\r\n\r\nhi\r\n--B1\r\nContent-Type: message/rfc822\r\n\r\n\
                 Subject: mid\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\
                 Content-Type: multipart/mixed; boundary=--X\r\n\r\n----X\r\n\
                 Content-Type: text/plain\r\n\r\ninner platypus text\r\n----X--\r\n\r\n--B1--\r\n"
            .to_vec(),
    });
    // Not mail at all.
    v.push(Msg {
        folder: "INBOX",
        internaldate: "02-May-2021 10:00:00 +0000",
        subject: "",
        bytes: b"// Not an RFC-822 Document, just some zebrafish notes\r\n".to_vec(),
    });
    v
}

fn json(env: &Env, args: &[&str]) -> Vec<serde_json::Value> {
    let mut full = vec!["search", "--json"];
    full.extend_from_slice(args);
    let r = env.run(&full);
    assert_eq!(r.code, 0, "search {args:?}\n{r}");
    serde_json::from_str::<serde_json::Value>(&r.stdout)
        .unwrap_or_else(|e| panic!("search {args:?}: not JSON ({e}): {}", r.stdout))
        .as_array()
        .expect("a JSON array")
        .clone()
}

/// Subjects found, newest first.
fn subjects(env: &Env, args: &[&str]) -> Vec<String> {
    json(env, args)
        .iter()
        .map(|h| h["subject"].as_str().unwrap().to_string())
        .collect()
}

fn raw_stdout(env: &Env, args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = env.command(args).output().expect("run mailkeep");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn hex_id(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn seeded() -> (Dovecot, Env, Vec<Msg>) {
    let srv = Dovecot::start(DovecotOptions::default());
    let mut c = srv.client("alice");
    c.create("Archive/2019");
    let msgs = messages();
    for m in &msgs {
        c.append(m.folder, &[], Some(m.internaldate), &m.bytes);
    }
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.stdout.lines().count(), 1, "one summary line: {r}");
    assert!(r.stderr.is_empty(), "indexing is silent: {r}");
    (srv, env, msgs)
}

#[test]
fn search_finds_mail_in_every_charset_by_every_field() {
    let (srv, env, msgs) = seeded();
    let s = |args: &[&str]| subjects(&env, args);

    // Subject, from, body; ASCII without case; phrases.
    assert_eq!(s(&["subject:budget"]), ["Quarterly budget review"]);
    assert_eq!(s(&["QUARTERLY"]), ["Quarterly budget review"]);
    assert_eq!(s(&["\"budget review\""]), ["Quarterly budget review"]);
    assert!(s(&["\"review budget\""]).is_empty());
    assert_eq!(s(&["from:alice.smith"]), ["Quarterly budget review"]);
    assert_eq!(s(&["from:tanaka"]), ["見積書の件について"]);
    assert_eq!(s(&["from:田中"]), ["見積書の件について"]);
    assert_eq!(s(&["reconciliation"]), ["Quarterly budget review"]);
    assert_eq!(
        s(&["body:reconciliation", "from:alice"]),
        ["Quarterly budget review"]
    );
    assert!(s(&["subject:reconciliation"]).is_empty());
    assert_eq!(
        s(&["to:alice@example.com", "newsletter"]),
        ["Old newsletter"]
    );

    // Japanese: UTF-8, ISO-2022-JP and Shift_JIS; 2-character terms too.
    assert_eq!(s(&["見積書の件"]), ["見積書の件について"]);
    assert_eq!(s(&["見積"]), ["見積書の件について"]);
    assert_eq!(s(&["subject:見積"]), ["見積書の件について"]);
    assert_eq!(
        s(&["見積もり"]),
        ["見積書の件について"],
        "wrapped line joined"
    );
    assert_eq!(s(&["打ち合わせ"]), ["来週の打ち合わせ"]);
    assert_eq!(s(&["来週"]), ["来週の打ち合わせ"]);
    assert_eq!(s(&["議事録"]), ["来週の打ち合わせ"]);
    assert_eq!(s(&["body:会議"]), ["来週の打ち合わせ"]);
    assert_eq!(s(&["経費"]), ["経費精算"]);
    assert_eq!(s(&["請求書を送付"]), ["経費精算"]);
    assert_eq!(s(&["subject:経費精算", "body:請求"]), ["経費精算"]);

    // Dates are INTERNALDATEs: the newsletter's Date: header says 2022.
    assert_eq!(s(&["before:2020-01-01"]), ["経費精算", "Old newsletter"]);
    assert_eq!(
        s(&["after:2021-01-01", "before:2021-04-01"]),
        ["Invoice for March", "Quarterly budget review"]
    );
    assert!(s(&["since:2022-01-01"]).is_empty());

    // Folders and accounts.
    assert_eq!(s(&["folder:Sent"]), ["Invoice for March"]);
    assert_eq!(s(&["--folder", "Archive*"]), ["Old newsletter"]);
    assert_eq!(s(&["--folder", "Sent*", "invoice"]), ["Invoice for March"]);
    assert!(s(&["--folder", "INBOX", "invoice"]).is_empty());
    assert_eq!(s(&["--account", "work", "来週"]), ["来週の打ち合わせ"]);
    let r = env.run(&["search", "--account", "home", "x"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("`home`") && r.stderr.contains("hint:"),
        "{r}"
    );

    // Attachments: a file, and a forwarded message (message/rfc822), as
    // mail clients show them; the forward by its subject as a file name.
    assert_eq!(
        s(&["has:attachment"]),
        ["Invoice for March", "nested forward outer"]
    );
    assert_eq!(s(&["filename:invoice-2021"]), ["Invoice for March"]);
    assert_eq!(s(&["filename:mid.eml"]), ["nested forward outer"]);

    // Broken MIME by its headers; not-mail by its text.
    assert_eq!(s(&["subject:widget"]), ["broken widget report"]);
    assert_eq!(s(&["from:bob@example.net"]), ["broken widget report"]);
    assert_eq!(s(&["zebrafish"]), [""]);
    assert_eq!(s(&["platypus"]), ["nested forward outer"]);
    assert_eq!(s(&["from:carol"]), ["nested forward outer"]);

    // Everything, newest first; --limit.
    let all = s(&[]);
    let mut sorted = all.clone();
    sorted.sort();
    let mut want: Vec<&str> = msgs.iter().map(|m| m.subject).collect();
    want.sort();
    assert_eq!(sorted, want);
    assert_eq!(all[0], "", "the newest is the not-mail one");
    assert_eq!(all[1], "broken widget report");
    let r = env.run(&["search", "--limit", "2"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.stdout.lines().count(), 2, "{r}");
    assert!(r.stderr.contains("--limit"), "{r}");

    // Nothing found: exit 0, nothing on stdout, a note on stderr.
    let r = env.run(&["search", "見積", "reconciliation"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r}");
    assert!(r.stderr.contains("no messages matched"), "{r}");
    let r = env.run(&["search", "--json", "nothing-like-this"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "[]"), "{r}");

    // A bad query is a usage error with a hint.
    let r = env.run(&["search", "form:tanaka"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("`form:`") && r.stderr.contains("hint:"),
        "{r}"
    );
    let r = env.run(&["search", "before:yesterday"]);
    assert_eq!(r.code, 2, "{r}");

    // The human form: date, from, subject, folder, 12-digit id.
    let jis = &msgs[2];
    let r = env.run(&["search", "来週"]);
    assert_eq!(r.code, 0, "{r}");
    let line = r.stdout.lines().next().unwrap();
    assert!(line.starts_with("2020-03-"), "{line}");
    assert!(
        line.contains("Suzuki") && line.contains("来週の打ち合わせ"),
        "{line}"
    );
    assert!(line.contains("INBOX"), "{line}");
    assert!(line.ends_with(&hex_id(&jis.bytes)[..12]), "{line}");

    // JSON carries the full id and where the message is.
    let hit = &json(&env, &["議事録"])[0];
    assert_eq!(hit["id"], hex_id(&jis.bytes));
    assert_eq!(hit["folders"][0]["account"], "work");
    assert_eq!(hit["folders"][0]["folder"], "INBOX");
    assert_eq!(hit["from"], "Suzuki <suzuki@example.jp>");

    drop(srv);
}

#[test]
fn show_prints_decoded_text_and_raw_is_byte_exact() {
    let (srv, env, msgs) = seeded();
    // --raw gives back exactly what the server holds, for every message.
    let mut on_server: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut c = srv.client("alice");
    for folder in ["INBOX", "Sent", "Archive/2019"] {
        for m in c.fetch_all(folder) {
            on_server.insert(hex_id(&m.bytes), m.bytes);
        }
    }
    assert_eq!(on_server.len(), msgs.len());
    for (id, bytes) in &on_server {
        let (code, out, err) = raw_stdout(&env, &["show", "--raw", &id[..12]]);
        assert_eq!(code, 0, "{err}");
        assert!(out == *bytes, "show --raw {id} differs from the server");
    }

    let show = |i: usize| {
        let r = env.run(&["show", &hex_id(&msgs[i].bytes)[..12]]);
        assert_eq!(r.code, 0, "{r}");
        r.stdout
    };
    let ja = show(1);
    assert!(ja.contains("Subject:    見積書の件について"), "{ja}");
    assert!(
        ja.contains("From:       田中 太郎 <tanaka@example.jp>"),
        "{ja}"
    );
    assert!(ja.contains("お世話になっております。"), "{ja}");
    assert!(ja.contains("work: INBOX (uid "), "{ja}");
    let jis = show(2);
    assert!(jis.contains("Subject:    来週の打ち合わせ"), "{jis}");
    assert!(jis.contains("会議の議事録"), "{jis}");
    let sjis = show(3);
    assert!(sjis.contains("Subject:    経費精算"), "{sjis}");
    assert!(sjis.contains("請求書を送付します"), "{sjis}");
    let att = show(4);
    assert!(
        att.contains("invoice-2021-03.pdf  application/pdf"),
        "{att}"
    );
    assert!(att.contains("The invoice is attached."), "{att}");
    let broken = show(6);
    assert!(
        broken.contains("Subject:    broken widget report"),
        "{broken}"
    );
    let nested = show(7);
    assert!(
        nested.contains("Subject:    nested forward outer"),
        "{nested}"
    );
    let not_mail = show(8);
    assert!(not_mail.contains("zebrafish"), "{not_mail}");

    // Ids: any unique prefix; an ambiguous one is an error that says so.
    let ids: Vec<String> = on_server.keys().cloned().collect();
    let shared = ids
        .windows(2)
        .find(|w| w[0][..1] == w[1][..1])
        .map(|w| w[0][..1].to_string())
        .expect("two ids share a first digit");
    let r = env.run(&["show", &shared]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("ambiguous") && r.stderr.contains("hint:"),
        "{r}"
    );
    let r = env.run(&["show", &ids[0]]);
    assert_eq!(r.code, 0, "the full id works: {r}");
    let r = env.run(&["show", "not-hex"]);
    assert_eq!(r.code, 2, "{r}");
    let unused = (0..16)
        .map(|d| format!("{d:x}"))
        .find(|d| !ids.iter().any(|i| i.starts_with(d.as_str())))
        .unwrap_or_else(|| "0123456789abcdef0123".into());
    let r = env.run(&["show", &unused]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("no message with id"), "{r}");
}

#[test]
fn reindex_gives_the_same_results_and_backup_catches_up() {
    let (_srv, env, msgs) = seeded();
    let queries: Vec<Vec<&str>> = vec![
        vec![],
        vec!["見積"],
        vec!["打ち合わせ"],
        vec!["経費"],
        vec!["has:attachment"],
        vec!["before:2020-01-01"],
        vec!["subject:widget"],
        vec!["--folder", "Sent"],
    ];
    let before: Vec<_> = queries.iter().map(|q| json(&env, q)).collect();
    let r = env.run(&["reindex"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout
            .contains(&format!("indexed {} messages", msgs.len())),
        "{r}"
    );
    let after: Vec<_> = queries.iter().map(|q| json(&env, q)).collect();
    assert_eq!(before, after);

    // Forget part of the search index, as after a crash or an upgrade:
    // search says so, and the next backup (with nothing new) catches up.
    {
        let db = rusqlite::Connection::open(env.store.join("search.sqlite")).unwrap();
        db.execute_batch("DELETE FROM docs WHERE key IN (SELECT key FROM docs LIMIT 3);")
            .unwrap();
    }
    let r = env.run(&["search", "--json"]);
    assert!(
        r.stderr
            .contains("3 stored messages are not in the search index"),
        "{r}"
    );
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("fetched 0 new"), "{r}");
    let again: Vec<_> = queries.iter().map(|q| json(&env, q)).collect();
    assert_eq!(before, again);
    let r = env.run(&["search", "x"]);
    assert!(!r.stderr.contains("not in the search index"), "{r}");

    // verify stays clean with the search index beside the index.
    let r = env.run(&["verify", "--deep"]);
    assert_eq!(r.code, 0, "{r}");
}

/// Backs up the whole `varied/` corpus, then finds Japanese mail in it:
/// ISO-2022-JP, Shift_JIS/CP932 and unencoded headers, 2-character terms.
#[test]
fn corpus_japanese_mail_is_found() {
    let Some(corpus) = support::corpus_dir() else {
        return;
    };
    let srv = Dovecot::start(DovecotOptions::default());
    let mut c = srv.client("alice");
    c.create("Corpus");
    let mut files: Vec<_> = std::fs::read_dir(corpus.join("varied"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut appended = Vec::new();
    for f in &files {
        if c.try_append("Corpus", &std::fs::read(f).unwrap())
            .contains(" OK")
        {
            appended.push(f.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(
        appended.len() > 1400,
        "Dovecot took only {}",
        appended.len()
    );
    // The server may change line endings: ids are of the bytes it serves,
    // in the order they were appended.
    let served = c.fetch_all("Corpus");
    assert_eq!(served.len(), appended.len());
    let id_of: BTreeMap<String, String> = appended
        .iter()
        .cloned()
        .zip(served.iter().map(|m| hex_id(&m.bytes)))
        .collect();
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    let t = std::time::Instant::now();
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stderr.is_empty(), "indexing the corpus is silent: {r}");
    println!("backup with indexing: {:.1} s", t.elapsed().as_secs_f64());
    let t = std::time::Instant::now();
    let r = env.run(&["reindex"]);
    assert_eq!(r.code, 0, "{r}");
    println!(
        "{} (wall {:.1} s)",
        r.stdout.trim(),
        t.elapsed().as_secs_f64()
    );

    // (file, query, what its subject holds), each checked by hand.
    let cases: &[(&str, &str, &str)] = &[
        // ISO-2022-JP subjects and bodies.
        (
            "jpmobile__email-fixtures__au-email.eml",
            "subject:このままで送信",
            "※本文はこのままで送信してね",
        ),
        (
            "jpmobile__email-fixtures__au-email.eml",
            "body:本文",
            "※本文はこのままで送信してね",
        ),
        (
            "jpmobile__email-fixtures__pc-mail-multi.eml",
            "サブジェクト部分",
            "タイトルの長いメール",
        ),
        (
            "jpmobile__email-fixtures__pc-mail-multi.eml",
            "subject:件名",
            "タイトルの長いメール",
        ),
        // ISO-2022-JP with a carrier emoji mail-parser leaves encoded.
        (
            "jpmobile__email-fixtures__au-emoji.eml",
            "subject:題名",
            "題名",
        ),
        // Shift_JIS bodies and subjects.
        (
            "mikel-mail__multi_charset__japanese_shift_jis.eml",
            "テスト用のメール",
            "test",
        ),
        (
            "mikel-mail__multi_charset__japanese_shift_jis.eml",
            "body:今後",
            "test",
        ),
        (
            "jpmobile__email-fixtures__docomo-gmail-sjis.eml",
            "from:docomo@docomo.ne.jp subject:テスト",
            "テスト",
        ),
        (
            "jpmobile__email-fixtures__docomo-gmail-sjis.eml",
            "body:テストです",
            "テスト",
        ),
        // Unencoded ISO-2022-JP and CP932 in the Subject: header.
        (
            "milter-manager-test-mails__subject__folded-raw-iso-2022-jp.eml",
            "subject:\"テスト テスト\"",
            "テスト テスト",
        ),
        (
            "milter-manager-test-mails__subject__folded-raw-cp932.eml",
            "subject:④⑤⑥",
            "①②③ ④⑤⑥",
        ),
        // An attachment with a name, in ISO-2022-JP mail.
        (
            "spamassassin-tdata__cjk__iso-2022-jp.1.eml",
            "has:attachment filename:test-sjis",
            "Shift_JIS",
        ),
        // Not mail; and a message that makes mail-parser panic.
        (
            "enmime__mail__erroneous.raw.eml",
            "\"Not an RFC-822 Document\"",
            "",
        ),
        (
            "spamassassin-tdata__nice__mime9.eml",
            "subject:\"New University\"",
            "New University",
        ),
    ];
    let mut failures = Vec::new();
    for (file, query, subject) in cases {
        let id = &id_of[*file];
        let hits = json(&env, &["--limit", "500", query]);
        match hits.iter().find(|h| h["id"] == id.as_str()) {
            Some(h) if h["subject"].as_str().unwrap().contains(subject) => {}
            Some(h) => failures.push(format!("{file}: `{query}`: subject {}", h["subject"])),
            None => failures.push(format!(
                "{file}: `{query}` did not find it ({} hits)",
                hits.len()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // show decodes a Shift_JIS body.
    let id = &id_of["mikel-mail__multi_charset__japanese_shift_jis.eml"];
    let r = env.run(&["show", &id[..12]]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains("このメールはテスト用のメールです。"),
        "{r}"
    );
}

/// Mail as odd as real mail gets, imported from files (no server), then
/// found by search and shown decoded: lines ending in CR alone, UTF-7, a
/// wrong declared charset, full- and half-width text.
#[test]
fn odd_mail_is_read_as_a_mail_client_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
    // A carrier's bounce: CR alone, ISO-2022-JP; its subject is メールエラー通知.
    write(
        "cr-only.eml",
        b"From: no-reply@example.jp\rTo: a@example.jp\rSubject: =?ISO-2022-JP?B?GyRCJWEhPCVrJSglaSE8RExDThsoQg==?=\rMessage-ID: <cr@example.jp>\rMIME-Version: 1.0\rContent-Type: text/plain; charset=ISO-2022-JP\r\r\x1b$B%F%9%H\x1b(B report\r",
    );
    write(
        "utf7.eml",
        b"From: u@example.com\r\nSubject: =?UNICODE-1-1-UTF-7?Q?+MKgw8zCzMPwwyTDGMLkwyA-?=\r\nContent-Type: text/plain; charset=unicode-1-1-utf-7\r\n\r\n+MKgw8zCzMPwwyTDGMLkwyA- body\r\n",
    );
    // 経費精算 / 請求書を送付します in Shift_JIS, declared ISO-8859-1.
    let mut wrong = b"From: s@example.jp\r\nSubject: wrong charset\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n".to_vec();
    wrong.extend_from_slice(SJIS_BODY);
    wrong.extend_from_slice(b"\r\n");
    write("wrong.eml", &wrong);
    write(
        "width.eml",
        "From: w@example.jp\r\nSubject: =?UTF-8?B?77yh77yi77yjIO+9tu++gO+9tu++hQ==?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nStraße\r\n".as_bytes(),
    );
    let env = Env::new();
    let r = env.run(&["import", "odd", dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r}");
    let id_of = |name: &str| hex_id(&std::fs::read(dir.path().join(name)).unwrap());
    let ids = |args: &[&str]| -> Vec<String> {
        json(&env, args)
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&["subject:エラー通知"]), [id_of("cr-only.eml")]);
    assert_eq!(ids(&["body:\"テスト report\""]), [id_of("cr-only.eml")]);
    assert_eq!(ids(&["subject:エンコード"]), [id_of("utf7.eml")]);
    assert_eq!(ids(&["body:請求書"]), [id_of("wrong.eml")]);
    // Width and case fold both ways; results show the subject as written.
    for q in [
        "subject:abc",
        "subject:ＡＢＣ",
        "カタカナ",
        "ｶﾀｶﾅ",
        "STRASSE",
        "straße",
    ] {
        assert_eq!(ids(&[q]), [id_of("width.eml")], "{q}");
    }
    assert_eq!(
        subjects(&env, &["ｶﾀｶﾅ"]),
        ["ＡＢＣ ｶﾀｶﾅ"],
        "the subject as written"
    );

    let show = |name: &str| {
        let r = env.run(&["show", &id_of(name)[..12]]);
        assert_eq!(r.code, 0, "{r}");
        r.stdout
    };
    let out = show("cr-only.eml");
    assert!(out.contains("Subject:    メールエラー通知\n"), "{out}");
    assert!(out.contains("\n\nテスト report\n"), "{out}");
    assert!(!out.contains("not a MIME message"), "{out}");
    let out = show("wrong.eml");
    assert!(
        out.contains("Note:       text (declared iso-8859-1, read as Shift_JIS)\n"),
        "{out}"
    );
    assert!(out.contains("請求書を送付します"), "{out}");
    let out = show("utf7.eml");
    assert!(out.contains("Subject:    エンコードテスト\n"), "{out}");
    assert!(out.contains("エンコードテスト body"), "{out}");
    assert!(!out.contains("Note:"), "UTF-7 as declared: {out}");
}

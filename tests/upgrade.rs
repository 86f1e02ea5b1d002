//! Stores written by earlier releases keep working: each fixture under
//! `tests/fixtures/` (written by `scripts/make-fixture-store` with that
//! release's mailkeep) is opened with today's, read, upgraded, repaired, and
//! must give back exactly what that release exported.

mod support;

use std::path::{Path, PathBuf};

use base64::Engine;
use support::Env;

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("no fixtures in {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("store").is_dir() && p.join("expected.json").is_file())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixture store under {}", root.display());
    out
}

/// (Maildir folder, flags, INTERNALDATE as file time, bytes), sorted.
type Exported = Vec<(String, String, i64, Vec<u8>)>;

fn expected(fixture: &Path) -> (Exported, serde_json::Value) {
    let text = std::fs::read_to_string(fixture.join("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut msgs: Exported = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["dir"].as_str().unwrap().to_string(),
                m["flags"].as_str().unwrap().to_string(),
                m["mtime"].as_i64().unwrap(),
                base64::engine::general_purpose::STANDARD
                    .decode(m["bytes"].as_str().unwrap())
                    .unwrap(),
            )
        })
        .collect();
    msgs.sort();
    (msgs, v["status"].clone())
}

fn exported(env: &Env) -> Exported {
    let out = env.dir.path().join("export");
    let _ = std::fs::remove_dir_all(&out);
    let r = env.run(&[
        "export",
        "--account",
        "fx",
        "--format",
        "maildir",
        out.to_str().unwrap(),
    ]);
    r.assert_success();
    let mut msgs = Exported::new();
    let mut stack = vec![out.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
                continue;
            }
            let sub = d.file_name().unwrap().to_string_lossy().into_owned();
            if sub != "cur" && sub != "new" {
                continue;
            }
            let folder = d.parent().unwrap().strip_prefix(&out).unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let flags = name.split_once(":2,").map(|(_, f)| f).unwrap_or("");
            let mtime = std::fs::metadata(&p)
                .unwrap()
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            msgs.push((
                folder.to_string_lossy().into_owned(),
                flags.to_string(),
                mtime,
                std::fs::read(&p).unwrap(),
            ));
        }
    }
    msgs.sort();
    msgs
}

/// Imports three messages, two with a base64 attachment, into account
/// `added` and checks they read back; gives their bytes, sorted.
fn added_mail(env: &Env) -> Vec<Vec<u8>> {
    let dir = env.dir.path().join("added");
    std::fs::create_dir_all(&dir).unwrap();
    let mut want = Vec::new();
    for i in 0..3u32 {
        let mut m = format!(
            "From: new{i}@example.com\r\nSubject: added {i}\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
             Content-Type: text/plain\r\n\r\nHello.\r\n--b\r\n\
             Content-Type: application/octet-stream\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        )
        .into_bytes();
        if i < 2 {
            // 40 lines of base64 of bytes that do not repeat.
            let mut x = 0x9e37_79b9u32.wrapping_mul(i + 1);
            for _ in 0..40 {
                let line: String = (0..76)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        let a = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                        a[(x % 64) as usize] as char
                    })
                    .collect();
                m.extend_from_slice(line.as_bytes());
                m.extend_from_slice(b"\r\n");
            }
        }
        m.extend_from_slice(b"--b--\r\n");
        std::fs::write(dir.join(format!("{i}.eml")), &m).unwrap();
        want.push(m);
    }
    env.run(&["import", "added", dir.to_str().unwrap()])
        .assert_success();
    want.sort();
    assert_eq!(exported_eml(env), want);
    // The packs now hold both kinds of blob record (docs/design.md).
    let mut kinds = std::collections::BTreeSet::new();
    let mut stack = vec![env.store.join("packs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pack") {
                let bytes = std::fs::read(&p).unwrap();
                kinds.extend(
                    bytes
                        .windows(5)
                        .filter(|w| &w[..4] == b"MKR1")
                        .map(|w| w[4]),
                );
            }
        }
    }
    assert!(kinds.contains(&b'B') && kinds.contains(&b'C'), "{kinds:?}");
    let r = env.run(&["verify", "--deep"]);
    assert_eq!(r.code, 0, "{r}");
    want
}

/// The bytes of every message of account `added`, sorted.
fn exported_eml(env: &Env) -> Vec<Vec<u8>> {
    let out = env.dir.path().join("export-added");
    let _ = std::fs::remove_dir_all(&out);
    env.run(&[
        "export",
        "--account",
        "added",
        "--format",
        "eml",
        out.to_str().unwrap(),
    ])
    .assert_success();
    let mut got = Vec::new();
    let mut stack = vec![out];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                got.push(std::fs::read(&p).unwrap());
            }
        }
    }
    got.sort();
    got
}

/// Per folder of the fixture's account: (on server, stored, gone,
/// archived), from `status --json`.
fn counts(status: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = status["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] != "added")
        .flat_map(|a| a["folders"].as_array().unwrap().iter())
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                format!(
                    "{} {} {} {}",
                    f["on_server"], f["stored"], f["gone_from_server"], f["archived"]
                ),
            )
        })
        .collect();
    out.sort();
    out
}

fn status(env: &Env) -> serde_json::Value {
    let r = env.run(&["status", "--json"]);
    r.assert_success();
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn every_fixture_store_reads_the_same_upgraded_and_repaired() {
    for fixture in fixtures() {
        let what = fixture.display().to_string();
        let (want, want_status) = expected(&fixture);
        assert!(want.len() >= 40, "{what}: {} messages", want.len());
        let env = Env::new();
        support::copy_dir(&fixture.join("store"), &env.store);
        env.append_config(
            "[accounts.fx]\nhost = \"localhost\"\nusername = \"fixture\"\npassword_env = \"UNUSED\"\n",
        );

        // A reader first: it upgrades the index as a writer would, and gives
        // back the room of the tables the upgrade dropped.
        let size = |p: &Path| std::fs::metadata(p).unwrap().len();
        let index = env.store.join("index.sqlite");
        let old_size = size(&index);
        assert_eq!(counts(&status(&env)), counts(&want_status), "{what}");
        assert!(
            size(&index) < old_size,
            "{what}: index {} bytes after the upgrade, {old_size} before",
            size(&index)
        );
        assert_eq!(exported(&env), want, "{what}: read as written");
        let r = env.run(&["verify", "--deep"]);
        assert_eq!(r.code, 0, "{what}: {r}");
        assert!(r.stdout.contains("no problems"), "{what}: {r}");
        // The search index of an older release is filled again (it reads
        // more of each message now); until then search says so.
        let r = env.run(&["search", "subject:\"old note\""]);
        assert!(r.stderr.contains("mailkeep reindex"), "{what}: {r}");
        env.run(&["reindex"]).assert_success();
        // Archived mail stays searchable.
        let r = env.run(&["search", "--json", "subject:\"old note\""]);
        r.assert_success();
        let hits: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(hits.as_array().map(|h| h.len()), Some(8), "{what}: {r}");

        // New mail goes into the old packs' store in today's records (an
        // attachment is a coded blob) beside the old ones.
        let added = added_mail(&env);
        // A rebuild of the index from the packs alone.
        let r = env.run(&["repair"]);
        r.assert_success();
        assert_eq!(exported(&env), want, "{what}: after repair");
        assert_eq!(exported_eml(&env), added, "{what}: added mail after repair");
        // The search index was carried over to the rebuilt index.
        let r = env.run(&["search", "--json", "subject:\"old note\""]);
        assert!(!r.stderr.contains("not in the search index"), "{what}: {r}");
        let hits: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(hits.as_array().map(|h| h.len()), Some(8), "{what}: {r}");
        assert_eq!(counts(&status(&env)), counts(&want_status), "{what}");
        let r = env.run(&["verify", "--deep"]);
        assert_eq!(r.code, 0, "{what}: {r}");
    }
}

#[test]
fn a_fixture_is_never_changed_by_the_tests() {
    // The tests work on copies; the fixture files stay as that release wrote them.
    for fixture in fixtures() {
        let store = fixture.join("store");
        assert!(store.join("index.sqlite").is_file());
        for f in ["index.sqlite-wal", "index.sqlite-shm", "lock"] {
            assert!(!store.join(f).exists(), "{}: {f}", fixture.display());
        }
    }
}

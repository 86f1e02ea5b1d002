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

/// Per folder: (on server, stored, gone, archived), from `status --json`.
fn counts(status: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = status["accounts"]
        .as_array()
        .unwrap()
        .iter()
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

        // A rebuild of the index from the packs alone.
        let r = env.run(&["repair"]);
        r.assert_success();
        assert_eq!(exported(&env), want, "{what}: after repair");
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

//! Store integrity through the real binary (docs/reliability.md): one bad
//! byte costs at most the message it hit, and nothing locks the user out.
//!
//! Every test starts from a store of 1,053 messages backed up from a real
//! Dovecot, 200 of them archived (so in the store only), and damages a copy
//! of it the way disks and people do. The pack layout is read here from its
//! description in docs/design.md, not through mailkeep's own reader.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use support::{gen_message, wait_for, Dovecot, DovecotOptions, Env, Fault, FaultProxy, Output};

const INBOX: usize = 1_000;
const ARCHIVED: usize = 200;

/// INTERNALDATE of INBOX message `i`: the first `ARCHIVED` in 2019, the rest in 2024.
fn date(i: usize) -> String {
    let base = if i < ARCHIVED {
        "2019-01-01T00:00:00+00:00"
    } else {
        "2024-01-01T00:00:00+00:00"
    };
    let t = chrono::DateTime::parse_from_rfc3339(base).unwrap() + chrono::Duration::hours(i as i64);
    t.format("%d-%b-%Y %H:%M:%S %z").to_string()
}

struct Base {
    /// Kept running for the backups that heal a damaged store.
    _srv: Dovecot,
    env: Env,
    /// Every message on the server after the archive, by folder.
    on_server: BTreeMap<String, Vec<Vec<u8>>>,
    /// The archived messages: in the store only.
    archived: BTreeSet<Vec<u8>>,
}

impl Base {
    fn all(&self) -> BTreeSet<Vec<u8>> {
        let mut all = self.archived.clone();
        for msgs in self.on_server.values() {
            all.extend(msgs.iter().cloned());
        }
        all
    }

    fn still_on_server(&self) -> BTreeSet<Vec<u8>> {
        self.on_server.values().flatten().cloned().collect()
    }
}

fn base() -> Base {
    let srv = Dovecot::start(DovecotOptions::default());
    let mut c = srv.client("alice");
    let inbox: Vec<(Vec<&str>, Option<String>, Vec<u8>)> = (0..INBOX)
        .map(|i| {
            let subject = format!("message {i} of the inbox");
            (
                vec!["\\Seen"],
                Some(date(i)),
                gen_message(i, 1_200 + (i * 37) % 3_000, &subject),
            )
        })
        .collect();
    for chunk in inbox.chunks(250) {
        c.append_many("INBOX", chunk);
    }
    c.create("Work");
    for i in 0..30 {
        let flags: &[&str] = if i % 3 == 0 { &["\\Flagged"] } else { &[] };
        c.append("Work", flags, None, &gen_message(5_000 + i, 2_500, "work"));
    }
    for i in 0..23 {
        c.append(
            "Sent",
            &["\\Seen"],
            None,
            &gen_message(6_000 + i, 1_800, "sent"),
        );
    }
    let env = Env::new();
    env.add_account("main", &srv, "alice");
    env.run(&["backup", "main"]).assert_success();
    let r = env.run(&["archive", "main", "--before", "2021-01-01"]);
    r.assert_success();
    assert!(r.stdout.contains(&format!("archived {ARCHIVED}")), "{r}");
    let mut on_server = BTreeMap::new();
    for f in ["INBOX", "Work", "Sent"] {
        let msgs: Vec<Vec<u8>> = c.fetch_all(f).into_iter().map(|m| m.bytes).collect();
        on_server.insert(f.to_string(), msgs);
    }
    let archived: BTreeSet<Vec<u8>> = inbox[..ARCHIVED].iter().map(|m| m.2.clone()).collect();
    assert_eq!(on_server["INBOX"].len(), INBOX - ARCHIVED);
    Base {
        _srv: srv,
        env,
        on_server,
        archived,
    }
}

/// A record of a pack, as docs/design.md lays it out: magic `MKR1`, kind,
/// 3 reserved bytes, payload length (u64 LE), payload, CRC-32.
#[derive(Clone, Debug)]
struct Rec {
    offset: usize,
    kind: u8,
    payload: std::ops::Range<usize>,
}

impl Rec {
    fn end(&self) -> usize {
        self.payload.end + 4
    }
}

fn records(pack: &[u8]) -> Vec<Rec> {
    assert_eq!(
        &pack[..13],
        b"MAILKEEP-PACK",
        "a pack starts with its header"
    );
    let mut out = Vec::new();
    let mut pos = 16;
    while pos < pack.len() {
        assert_eq!(&pack[pos..pos + 4], b"MKR1", "record at {pos}");
        let len = u64::from_le_bytes(pack[pos + 8..pos + 16].try_into().unwrap()) as usize;
        out.push(Rec {
            offset: pos,
            kind: pack[pos + 4],
            payload: pos + 16..pos + 16 + len,
        });
        pos += 16 + len + 4;
    }
    out
}

/// An event record's kind, folder and UID, read as docs/design.md lays
/// them out: kind u8, account and mailbox as (LEB128 length, UTF-8),
/// UIDVALIDITY and UID as LEB128.
fn event(p: &[u8]) -> (u8, String, u64) {
    fn uv(p: &[u8], at: &mut usize) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = p[*at];
            *at += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }
    let mut at = 1;
    let mut strs = Vec::new();
    for _ in 0..2 {
        let n = uv(p, &mut at) as usize;
        strs.push(String::from_utf8_lossy(&p[at..at + n]).into_owned());
        at += n;
    }
    let _uidvalidity = uv(p, &mut at);
    (p[0], strs.pop().unwrap(), uv(p, &mut at))
}

fn pack_path(env: &Env) -> PathBuf {
    env.store.join("packs/00/000001.pack")
}

fn read_pack(env: &Env) -> Vec<u8> {
    std::fs::read(pack_path(env)).unwrap()
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

/// The blob record holding `message` (its id, BLAKE3 of the bytes, ends the payload).
fn blob_record(pack: &[u8], message: &[u8]) -> Rec {
    let id = blake3::hash(message);
    records(pack)
        .into_iter()
        .find(|r| r.kind == b'B' && &pack[r.payload.end - 32..r.payload.end] == id.as_bytes())
        .expect("the message's blob record")
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
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

/// Exports the account as `.eml` files: what came out, and the run.
fn export(env: &Env) -> (Output, BTreeSet<Vec<u8>>) {
    let out = env.dir.path().join("export");
    let _ = std::fs::remove_dir_all(&out);
    let r = env.run(&[
        "export",
        "--account",
        "main",
        "--format",
        "eml",
        out.to_str().unwrap(),
    ]);
    (r, files(&out).into_iter().collect())
}

fn status_ok(env: &Env) -> serde_json::Value {
    let r = env.run(&["status", "--json"]);
    assert_eq!(r.code, 0, "status is never locked out: {r}");
    serde_json::from_str(&r.stdout).unwrap()
}

fn stored_per_folder(st: &serde_json::Value) -> BTreeMap<String, (u64, u64)> {
    st["accounts"][0]["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                (
                    f["stored"].as_u64().unwrap(),
                    f["archived"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// `verify` (and `--deep`) never call a damaged store sound.
fn assert_verify_finds_damage(env: &Env, what: &str) -> Output {
    for args in [&["verify"][..], &["verify", "--deep"][..]] {
        let r = env.run(args);
        assert_eq!(r.code, 5, "{what}: {args:?} must find the damage: {r}");
        assert!(!r.stdout.contains("no problems"), "{what}: {r}");
        assert!(r.stderr.contains("mailkeep repair"), "{what}: {r}");
    }
    env.run(&["verify"])
}

fn assert_deep_verify_clean(env: &Env, what: &str) {
    let r = env.run(&["verify", "--deep"]);
    assert_eq!(r.code, 0, "{what}: {r}");
    assert!(r.stdout.contains("no problems"), "{what}: {r}");
}

#[test]
fn one_flipped_byte_costs_at_most_the_message_it_hit() {
    let base = base();
    let pack = read_pack(&base.env);

    // 1. Inside the pack, the bytes of an archived message (the last one
    // stored, so that most of the pack comes after it): only that message is
    // lost, and every record after it is kept.
    let env = base.env.fork();
    let lost_msg = base
        .archived
        .iter()
        .map(|m| (m, blob_record(&pack, m)))
        .max_by_key(|(_, r)| r.offset)
        .unwrap();
    let (lost_bytes, rec) = lost_msg;
    assert!(rec.offset > pack.len() / 20);
    flip(&pack_path(&env), (rec.payload.start + rec.payload.end) / 2);
    let r = assert_verify_finds_damage(&env, "archived message hit");
    assert!(
        r.stderr
            .contains("damaged message: account `main`, folder `INBOX`, UID")
            && r.stderr
                .contains("only in this store: lost unless you have another copy"),
        "the damaged message is named, and what it means: {r}"
    );
    status_ok(&env);
    let r = env.run(&["repair"]);
    assert_eq!(r.code, 1, "one message is lost, and repair says so: {r}");
    assert!(r.stderr.contains("1 message is lost"), "{r}");
    assert!(r.stderr.contains("folder `INBOX`"), "{r}");
    assert_eq!(read_pack(&env).len(), pack.len(), "repair cut nothing");
    let (r, got) = export(&env);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("not exported: folder `INBOX`"), "{r}");
    let mut expect = base.all();
    expect.remove(lost_bytes);
    assert_eq!(got, expect, "every other message, byte for byte");
    env.run(&["backup", "main"]).assert_success();
    let r = env.run(&["verify", "--deep"]);
    assert_eq!(r.code, 5, "a lost message is never `no problems`: {r}");
    assert!(r.stderr.contains("message not in the store"), "{r}");

    // 2. The bytes of a message still on the server: `verify` notes it, the
    // next backup fetches it again, and the store is whole.
    let env = base.env.fork();
    let hit = &base.on_server["Work"][4];
    let rec = blob_record(&pack, hit);
    flip(&pack_path(&env), rec.payload.start + 20);
    let r = assert_verify_finds_damage(&env, "message on the server hit");
    assert!(
        r.stderr.contains("folder `Work`, UID 5")
            && r.stderr
                .contains("still on the server: the next backup fetches it again"),
        "{r}"
    );
    let r = env.run(&["backup", "main"]);
    r.assert_success();
    assert!(
        r.stdout.contains("1 damaged in the store fetched again"),
        "{r}"
    );
    assert!(r.stdout.contains("fetched 0 new"), "{r}");
    let (r, got) = export(&env);
    r.assert_success();
    assert_eq!(got, base.all());
    // The damaged bytes are still in the pack until `repair` sets them aside.
    assert_verify_finds_damage(&env, "damaged bytes not yet set aside");
    env.run(&["repair"]).assert_success();
    assert_deep_verify_clean(&env, "after backup and repair");

    // 3. A message read damaged by `export` (no verify): the backup heals it too.
    let env = base.env.fork();
    let hit = &base.on_server["INBOX"][7];
    let rec = blob_record(&pack, hit);
    flip(&pack_path(&env), rec.payload.start + 20);
    let (r, _) = export(&env);
    assert_eq!(r.code, 1, "{r}");
    let r = env.run(&["backup", "main"]);
    assert!(
        r.stdout.contains("1 damaged in the store fetched again"),
        "{r}"
    );
    assert_eq!(export(&env).1, base.all());

    // 4. A ref record (where an archived message is, and its flags) and a
    // mailbox record: nothing is lost, the index still knew what they said.
    let recs = records(&pack);
    let text = |r: &Rec| String::from_utf8_lossy(&pack[r.payload.clone()]).into_owned();
    // INBOX UID 3 is archived: this record is all that says where it was.
    let seen_ref = recs
        .iter()
        .filter(|r| r.kind == b'E')
        .find(|r| event(&pack[r.payload.clone()]) == (1, "INBOX".into(), 3))
        .expect("the seen record of INBOX UID 3");
    let mailbox = recs
        .iter()
        .rev()
        .find(|r| r.kind == b'M' && text(r).contains("\"mailbox\":\"Work\""))
        .expect("a mailbox record of Work");
    let before = stored_per_folder(&status_ok(&base.env));
    for (what, rec) in [("ref record", seen_ref), ("mailbox record", mailbox)] {
        let env = base.env.fork();
        flip(&pack_path(&env), rec.payload.start + 5);
        assert_verify_finds_damage(&env, what);
        let r = env.run(&["repair"]);
        r.assert_success();
        assert!(
            r.stderr.contains("written again from the old index"),
            "{what}: {r}"
        );
        assert_eq!(stored_per_folder(&status_ok(&env)), before, "{what}");
        assert_eq!(export(&env).1, base.all(), "{what}");
        assert_deep_verify_clean(&env, what);
        // And what repair wrote is in the packs: a second rebuild from the
        // packs alone gives the same.
        std::fs::remove_file(env.store.join("index.sqlite")).unwrap();
        env.run(&["repair"]).assert_success();
        assert_eq!(stored_per_folder(&status_ok(&env)), before, "{what}");
    }
}

#[test]
fn damage_that_used_to_lock_everyone_out() {
    let base = base();
    let pack = read_pack(&base.env);
    let recs = records(&pack);

    // A flipped byte in the zstd dictionary: its second copy serves.
    let env = base.env.fork();
    let dicts: Vec<&Rec> = recs.iter().filter(|r| r.kind == b'D').collect();
    assert!(dicts.len() >= 2, "the dictionary is kept twice");
    flip(&pack_path(&env), dicts[0].payload.start + 1_000);
    status_ok(&env);
    let (r, got) = export(&env);
    r.assert_success();
    assert_eq!(got, base.all());
    let r = assert_verify_finds_damage(&env, "dictionary");
    assert!(r.stderr.contains("dictionary"), "{r}");
    env.run(&["repair"]).assert_success();
    assert_deep_verify_clean(&env, "dictionary");

    // A pack cut short in its middle: the messages before the cut stay
    // readable, every command says what is wrong and what mends it.
    let env = base.env.fork();
    let cut = recs
        .iter()
        .find(|r| r.offset > pack.len() * 6 / 10)
        .unwrap();
    let cut_at = cut.payload.start + 10;
    std::fs::OpenOptions::new()
        .write(true)
        .open(pack_path(&env))
        .unwrap()
        .set_len(cut_at as u64)
        .unwrap();
    let whole: BTreeSet<Vec<u8>> = base
        .all()
        .into_iter()
        .filter(|m| blob_record(&pack, m).end() <= cut_at)
        .collect();
    let r = env.run(&["status"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stderr.contains("cut short") && r.stderr.contains("mailkeep repair"),
        "{r}"
    );
    let (r, got) = export(&env);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(got, whole, "every message before the cut is exported");
    assert_verify_finds_damage(&env, "pack cut short");
    let lost: BTreeSet<Vec<u8>> = base.archived.difference(&whole).cloned().collect();
    let r = env.run(&["repair"]);
    assert_eq!(r.code, if lost.is_empty() { 0 } else { 1 }, "{r}");
    env.run(&["backup", "main"]).assert_success();
    let (_, got) = export(&env);
    let expect: BTreeSet<Vec<u8>> = base.all().difference(&lost).cloned().collect();
    assert_eq!(
        got, expect,
        "all but the archived mail past the cut is back"
    );

    // The pack gone altogether.
    let env = base.env.fork();
    std::fs::remove_file(pack_path(&env)).unwrap();
    let r = env.run(&["status"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stderr.contains("pack 000001 is missing"), "{r}");
    let r = env.run(&["repair"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains(&format!("{ARCHIVED} messages are lost")),
        "{r}"
    );
    let r = env.run(&["backup", "main"]);
    r.assert_success();
    assert!(
        r.stdout.contains("damaged in the store fetched again"),
        "{r}"
    );
    assert_eq!(export(&env).1, base.still_on_server());

    // 4 KiB of garbage in the middle of index.sqlite: verify says so, repair
    // builds a new index, and keeps the damaged one aside.
    let env = base.env.fork();
    let ix = env.store.join("index.sqlite");
    let mut bytes = std::fs::read(&ix).unwrap();
    let mid = bytes.len() / 2 / 4096 * 4096;
    bytes[mid..mid + 4096].fill(0x5a);
    std::fs::write(&ix, bytes).unwrap();
    let r = env.run(&["verify", "--deep"]);
    assert_eq!(r.code, 5, "{r}");
    assert!(r.stderr.contains("the index file is damaged"), "{r}");
    for cmd in [&["status"][..], &["backup", "main"][..]] {
        let r = env.run(cmd);
        assert!(
            r.code == 0 || (r.code == 5 && r.stderr.contains("mailkeep repair")),
            "{cmd:?}: {r}"
        );
    }
    let r = env.run(&["repair"]);
    r.assert_success();
    assert!(r.stderr.contains("the old index was damaged"), "{r}");
    let kept: Vec<_> = std::fs::read_dir(&env.store)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("index.damaged-") && n.ends_with(".sqlite")
        })
        .collect();
    assert_eq!(kept.len(), 1, "the damaged index is kept aside");
    assert_eq!(export(&env).1, base.all());
    assert_eq!(
        stored_per_folder(&status_ok(&env)),
        stored_per_folder(&status_ok(&base.env))
    );
    assert_deep_verify_clean(&env, "index rebuilt");
    env.run(&["backup", "main"]).assert_success();
}

/// xorshift64*, so that a failing run can be repeated from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn random_single_byte_flips_cost_at_most_one_message() {
    let seed = std::env::var("MAILKEEP_FLIP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("random flips: seed {seed} (MAILKEEP_FLIP_SEED={seed} repeats this run)");
    eprintln!("random flips: seed {seed} (MAILKEEP_FLIP_SEED={seed} repeats this run)");
    let mut rng = Rng(seed);
    let base = base();
    let pack = read_pack(&base.env);
    let recs = records(&pack);
    const FLIPS: usize = 16;
    for n in 0..FLIPS {
        // One offset in each sixteenth of the pack, and the header once.
        let at = if n == 0 {
            (rng.next() % 16) as usize
        } else {
            let slice = pack.len() / FLIPS;
            n * slice + (rng.next() as usize % slice)
        };
        let what = format!("seed {seed}, flip {n} at offset {at}");
        let hit = recs.iter().find(|r| r.offset <= at && at < r.end());
        // The messages whose bytes were hit, if any: at most these are lost.
        let may_lose: BTreeSet<Vec<u8>> = match hit {
            Some(r) if r.kind == b'B' => base
                .archived
                .iter()
                .filter(|m| blob_record(&pack, m).offset == r.offset)
                .cloned()
                .collect(),
            _ => BTreeSet::new(),
        };
        let env = base.env.fork();
        flip(&pack_path(&env), at);
        assert_verify_finds_damage(&env, &what);
        let r = env.run(&["repair"]);
        assert!(r.code == 0 || r.code == 1, "{what}: {r}");
        status_ok(&env);
        env.run(&["backup", "main"]).assert_success();
        let (_, got) = export(&env);
        for m in base.still_on_server() {
            assert!(
                got.contains(&m),
                "{what}: a message on the server is missing"
            );
        }
        let missing: Vec<_> = base.archived.iter().filter(|m| !got.contains(*m)).collect();
        assert!(
            missing.iter().all(|m| may_lose.contains(*m)),
            "{what}: {} archived messages lost that were not hit",
            missing.len()
        );
        let r = env.run(&["verify", "--deep"]);
        if missing.is_empty() {
            assert_eq!(r.code, 0, "{what}: {r}");
        } else {
            assert_eq!(r.code, 5, "{what}: a lost message is reported: {r}");
        }
    }
}

/// The index's view of pack 1: (indexed_len, messages committed).
fn index_progress(store: &Path) -> Option<(u64, u64)> {
    let conn = rusqlite::Connection::open_with_flags(
        store.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()?;
    let len: i64 = conn
        .query_row("SELECT indexed_len FROM packs WHERE no = 1", [], |r| {
            r.get(0)
        })
        .ok()?;
    let n: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .ok()?;
    Some((len as u64, n as u64))
}

/// Messages in the search index (a file of its own beside the index).
fn search_docs(store: &Path) -> u64 {
    rusqlite::Connection::open_with_flags(
        store.join("search.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .and_then(|c| c.query_row("SELECT count(*) FROM docs", [], |r| r.get::<_, i64>(0)))
    .unwrap_or(0) as u64
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on the pid of our own child, which has not been reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

fn finish(mut child: std::process::Child) -> Output {
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    Output {
        code: status.code().unwrap_or(128 + status.signal().unwrap_or(0)),
        stdout,
        stderr,
    }
}

fn last_run(env: &Env) -> serde_json::Value {
    status_ok(env)["accounts"][0]["last_run"].clone()
}

#[test]
fn verify_during_a_backup_and_signals_that_stop_one() {
    let srv = Dovecot::start(DovecotOptions::default());
    let mut c = srv.client("alice");
    let inbox: Vec<(Vec<&str>, Option<String>, Vec<u8>)> = (0..INBOX)
        .map(|i| (vec![], None, gen_message(i, 3_000, "slow")))
        .collect();
    for chunk in inbox.chunks(250) {
        c.append_many("INBOX", chunk);
    }
    let all: BTreeSet<Vec<u8>> = inbox.into_iter().map(|m| m.2).collect();
    // The server stalls after about 1.5 MB: a backup that has committed
    // some messages and appended more it has not committed yet.
    let proxy = FaultProxy::start(
        srv.imap_port(),
        Fault::Stall {
            after_server_bytes: 1_500_000,
        },
    );
    let env = Env::new();
    env.add_account_via("main", &proxy, &srv, "alice");
    let child = env.spawn(&["backup", "main", "--jobs", "1"]);
    let pack = env.store.join("packs/00/000001.pack");
    wait_for("a backup with committed and uncommitted records", || {
        let len = std::fs::metadata(&pack).map(|m| m.len()).unwrap_or(0);
        index_progress(&env.store).is_some_and(|(indexed, n)| n > 0 && len > indexed)
    });
    // verify reads the committed snapshot: a running backup is not damage.
    let r = env.run(&["verify", "--deep"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("no problems"), "{r}");
    assert!(r.stderr.contains("not in the index yet"), "{r}");

    // Ctrl-C: stops at the next safe point, says so, exits 130.
    signal(&child, libc::SIGINT);
    let r = finish(child);
    assert_eq!(r.code, 130, "{r}");
    assert!(
        r.stderr
            .contains("interrupted: nothing lost, run it again to resume"),
        "{r}"
    );
    let run = last_run(&env);
    assert_eq!(run["ok"], false, "{run}");
    assert!(
        run["summary"].as_str().unwrap().contains("interrupted"),
        "{run}"
    );
    assert_deep_verify_clean(&env, "after Ctrl-C");

    // SIGTERM while the mail is being indexed for search: recorded as
    // interrupted, not as a finished run; the next run finishes the job.
    proxy.set_fault(Fault::None);
    let indexed_before = search_docs(&env.store);
    let child = env.spawn(&["backup", "main"]);
    wait_for("search indexing under way", || {
        search_docs(&env.store) > indexed_before
    });
    signal(&child, libc::SIGTERM);
    let r = finish(child);
    assert_eq!(r.code, 143, "{r}");
    assert!(r.stderr.contains("interrupted: nothing lost"), "{r}");
    let run = last_run(&env);
    assert_eq!(run["ok"], false, "{run}");
    assert!(
        run["summary"].as_str().unwrap().contains("interrupted"),
        "{run}"
    );
    assert!(search_docs(&env.store) < all.len() as u64);

    let r = env.run(&["backup", "main"]);
    r.assert_success();
    assert_eq!(last_run(&env)["ok"], true);
    assert_eq!(search_docs(&env.store), all.len() as u64);
    let (r, got) = export(&env);
    r.assert_success();
    assert_eq!(got, all);
}

#[test]
fn a_password_in_the_keyring_serves_every_connection() {
    let srv = Dovecot::start(DovecotOptions::default());
    let mut c = srv.client("alice");
    for f in ["Work", "Lists", "Old", "Notes", "Travel"] {
        c.create(f);
        c.append(f, &[], None, &gen_message(1, 1_000, f));
    }
    let env = Env::new();
    // A name of its own: the kernel keyring is shared by this session.
    let name = format!("kr{}", std::process::id());
    env.add_account_raw(
        &name,
        &format!(
            "host = \"localhost\"\nport = {}\ntls = \"implicit\"\nusername = \"alice\"\nca_file = {:?}\n",
            srv.imaps_port(),
            srv.ca_file().display().to_string()
        ),
        None,
    );
    let mut set = env.command(&["account", "set-password", &name]);
    set.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = set.spawn().unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        format!("{}\n", srv.password("alice")).as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "a keyring must be usable here (Secret Service or the kernel's): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for run in 0..6 {
        let r = env.run(&["backup", &name, "--jobs", "4"]);
        assert_eq!(r.code, 0, "run {run}: {r}");
    }
    let _ = env.run(&["account", "remove", &name]);
}

#[test]
fn ctrl_c_while_the_server_says_to_wait_stops_at_once() {
    // The server asks for a 10-minute pause at login: Ctrl-C must not wait it out.
    let srv = Dovecot::start(DovecotOptions::default());
    srv.client("alice")
        .append("INBOX", &[], None, &gen_message(1, 2_000, "hello"));
    let proxy = FaultProxy::start(
        srv.imap_port(),
        Fault::BusyLogin {
            times: 1,
            answer:
                "NO [UNAVAILABLE] Request is throttled. Suggested Backoff Time: 600000 milliseconds"
                    .into(),
        },
    );
    let env = Env::new();
    env.add_account_via("main", &proxy, &srv, "alice");
    let mut child = env.spawn(&["backup", "main"]);
    wait_for("the throttled login", || {
        proxy
            .commands()
            .iter()
            .any(|c| c.starts_with("AUTHENTICATE") || c.starts_with("LOGIN"))
    });
    signal(&child, libc::SIGINT);
    // Well before the 10 minutes (wait_for gives up after one).
    wait_for("the backup to stop", || child.try_wait().unwrap().is_some());
    let r = finish(child);
    assert_eq!(r.code, 130, "{r}");
    assert!(r.stderr.contains("interrupted: nothing lost"), "{r}");
}

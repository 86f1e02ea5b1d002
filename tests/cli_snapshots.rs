//! What the command line prints, as a user sees it: exit code, stdout and
//! stderr together, snapshotted (`tests/snapshots/`). One test per row of
//! the table of issue 12 ("the command line tells the truth"), and the
//! `--help` of every command.
//!
//! Paths, ports, times and sizes on disk are replaced by `[ENV]`, `[PORT]`,
//! `[time]`, `[secs]` and `[size]`, so that the snapshots hold what does
//! not change from run to run. To update them after a deliberate change:
//! `INSTA_UPDATE=always cargo test --test cli_snapshots`, then read the diff.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use support::{gen_message, Dovecot, DovecotOptions, Env, Output};

/// `$ mailkeep ARGS` / exit code / stdout / stderr, normalized.
fn shown(env: &Env, args: &[&str], out: &Output) -> String {
    let text = format!(
        "$ mailkeep {}\nexit code: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.code,
        out.stdout,
        out.stderr
    );
    text.replace(&env.dir.path().display().to_string(), "[ENV]")
}

/// Snapshot settings: the filters that make a run's output repeatable.
fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.add_filter(r"\d{4}-\d\d-\d\d \d\d:\d\d", "[time]");
    s.add_filter(r"in \d+\.\d s", "in [secs] s");
    s.add_filter(r"localhost:\d+", "localhost:[PORT]");
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    s.add_filter(r"mk-env-[A-Za-z0-9]+", "[ENV]");
    s.add_filter(
        r"(on disk|messages|index|search|other) \d+(\.\d)? (B|kB|MB)",
        "$1 [size]",
    );
    s.add_filter(
        r"\(packs; \d+(\.\d)? (B|kB|MB) compressed\)",
        "(packs; [size] compressed)",
    );
    s.add_filter(r"UIDVALIDITY \d+", "UIDVALIDITY [n]");
    s
}

macro_rules! snap {
    ($name:expr, $text:expr) => {
        settings().bind(|| insta::assert_snapshot!($name, $text))
    };
}

/// Runs `mailkeep ARGS` in `env`, with its config and store unless ARGS
/// names others.
fn run(env: &Env, args: &[&str]) -> String {
    let has = |flag: &str| args.contains(&flag);
    let out = if has("--store") || has("--config") {
        let mut cmd = env.command_for(&support::mailkeep_bin());
        if !has("--config") {
            cmd.arg("--config").arg(&env.config);
        }
        if !has("--store") {
            cmd.arg("--store").arg(&env.store);
        }
        cmd.args(args);
        output(cmd)
    } else {
        env.run(args)
    };
    shown(env, args, &out)
}

/// Runs mailkeep with its stdout already closed by the reader (as
/// `| head -1` does once it has its line): exit code and stderr.
fn run_with_stdout_closed(env: &Env, args: &[&str]) -> (i32, String) {
    let mut cmd = env.command(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), err)
}

fn seeded_server() -> Dovecot {
    let srv = Dovecot::start(DovecotOptions::default());
    let mut c = srv.client("alice");
    c.create("Work");
    for i in 0..3 {
        c.append("INBOX", &["\\Seen"], None, &gen_message(i, 400, "hello"));
    }
    c.append("Work", &["\\Flagged"], None, &gen_message(9, 400, "work"));
    srv
}

#[test]
fn a_closed_stdout_ends_quietly_with_success() {
    let srv = seeded_server();
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    env.run(&["backup", "work"]).assert_success();
    let mut text = String::new();
    for args in [
        &["status"][..],
        &["quota", "--all"][..],
        &["verify", "--server", "work"][..],
        &["archive", "work", "--older-than", "1d", "--dry-run"][..],
        &["search", "hello"][..],
        &["account", "list"][..],
        &["completions", "bash"][..],
    ] {
        let (code, stderr) = run_with_stdout_closed(&env, args);
        text.push_str(&format!(
            "$ mailkeep {} | (closed)\nexit code: {code}\n--- stderr\n{stderr}\n",
            args.join(" ")
        ));
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    snap!("closed_stdout", text);
}

#[test]
fn a_missing_or_unreadable_store_is_named_never_empty() {
    let env = Env::new();
    let mut text = run(&env, &["status"]);
    text += &run(&env, &["--store", "./typo", "status"]);
    text += &run(&env, &["--store", "/etc/passwd/store", "status"]);
    text += &run(&env, &["--store", "./typo", "search", "x"]);
    text += &run(
        &env,
        &[
            "--store",
            "./typo",
            "export",
            "--account",
            "a",
            "--format",
            "eml",
            "out",
        ],
    );
    snap!("missing_store", text);
}

/// Runs as a user who may not read the store (nobody, when the tests run
/// as root; the owner with the mode taken away otherwise).
fn run_as_stranger(env: &Env, args: &[&str]) -> String {
    let root = unsafe { libc::geteuid() } == 0;
    let out = if root {
        let mut cmd = env.command_for(Path::new("/usr/bin/setpriv"));
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(support::mailkeep_bin())
            .arg("--config")
            .arg(&env.config)
            .arg("--store")
            .arg(&env.store)
            .args(args);
        output(cmd)
    } else {
        env.run(args)
    };
    shown(env, args, &out)
}

fn output(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_store_that_cannot_be_read_or_written_is_said_so_with_a_hint() {
    use std::os::unix::fs::PermissionsExt;
    let srv = seeded_server();
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    env.run(&["backup", "work"]).assert_success();
    let root = unsafe { libc::geteuid() } == 0;
    // The stranger may reach the config and the store's directory, not into it.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    if root {
        std::os::unix::fs::chown(&env.config, Some(65534), Some(65534)).unwrap();
    } else {
        std::fs::set_permissions(&env.store, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let mut text = run_as_stranger(&env, &["status"]);
    text += &run_as_stranger(&env, &["backup", "work"]);
    if !root {
        std::fs::set_permissions(&env.store, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    assert!(text.contains("exit code: 5"), "{text}");
    snap!("unreadable_store", text);
}

#[test]
fn a_missing_config_is_named() {
    let env = Env::new();
    let mut text = run(&env, &["--config", "/missing/config.toml", "status"]);
    text += &run(
        &env,
        &["--config", "/missing/config.toml", "backup", "--all"],
    );
    let mut cmd = env.command_for(&support::mailkeep_bin());
    cmd.env("MAILKEEP_CONFIG", "/missing/config.toml").args([
        "--store",
        env.store.to_str().unwrap(),
        "status",
    ]);
    std::fs::create_dir_all(&env.store).unwrap();
    text += &shown(
        &env,
        &["status", "(MAILKEEP_CONFIG=/missing/config.toml)"],
        &output(cmd),
    );
    snap!("missing_config", text);
}

#[test]
fn a_broken_account_stops_only_what_uses_it() {
    let srv = seeded_server();
    let env = Env::new();
    env.add_account("alice", &srv, "alice");
    env.add_account_raw(
        "remote",
        "host = \"imap.example.com\"\ntls = \"none\"\nusername = \"u\"\npassword_env = \"X\"\n",
        None,
    );
    env.add_account_raw(
        "typed",
        "host = \"imap.example.com\"\nusername = 5\npassword_env = \"X\"\n",
        None,
    );
    let mut text = run(&env, &["backup", "alice"]);
    text += &run(&env, &["status"]);
    text += &run(&env, &["backup", "--all"]);
    text += &run(&env, &["backup", "remote"]);
    text += &run(&env, &["backup", "typed"]);
    text += &run(&env, &["account", "list"]);
    text += &run(
        &env,
        &[
            "account",
            "add",
            "new",
            "--host",
            "h.example.com",
            "--user",
            "u",
            "--password-env",
            "Y",
        ],
    );
    snap!("broken_account", text);
}

#[test]
fn a_filter_that_matches_nothing_is_an_error() {
    let srv = seeded_server();
    let env = Env::new();
    env.add_account("bob", &srv, "alice");
    env.run(&["backup", "bob"]).assert_success();
    let out = env.dir.path().join("out").display().to_string();
    let mut text = run(&env, &["backup", "bob", "--folder", "NoSuchFolder"]);
    text += &run(
        &env,
        &["backup", "bob", "--folder", "NoSuchFolder", "--dry-run"],
    );
    text += &run(
        &env,
        &[
            "export",
            "--account",
            "bob",
            "--format",
            "mbox",
            "--folder",
            "Nope",
            &out,
        ],
    );
    text += &run(
        &env,
        &["export", "--account", "nobody", "--format", "mbox", &out],
    );
    text += &run(
        &env,
        &[
            "archive",
            "bob",
            "--older-than",
            "1d",
            "--folder",
            "Nope",
            "--dry-run",
        ],
    );
    // A pattern that matches is not an error.
    text += &run(&env, &["backup", "bob", "--folder", "Wo*"]);
    snap!("filter_matches_nothing", text);
}

#[test]
fn errors_of_values_and_stores_carry_a_hint() {
    let env = Env::new();
    env.add_account_raw("work", "host = \"imap.example.com\"\nusername = 5\n", None);
    let mut text = run(&env, &["backup", "work"]);
    let env2 = Env::new();
    env2.append_config(
        "[accounts.work]\nhost = \"imap.example.com\"\nusername = \"u\"\nport = \"993\"\n",
    );
    text += &run(&env2, &["backup", "work"]);
    let env3 = Env::new();
    env3.append_config("[accounts.work\nhost = 1\n");
    text += &run(&env3, &["status"]);
    snap!("value_errors", text);
    for part in text.split("$ mailkeep").skip(1) {
        assert!(part.contains("hint: "), "every error has a hint: {part}");
    }
}

#[test]
fn mbox_export_keeps_flags_for_mutt() {
    let srv = Dovecot::start(DovecotOptions::default());
    let mut c = srv.client("alice");
    c.append(
        "INBOX",
        &["\\Seen", "\\Answered"],
        None,
        b"Subject: read and answered\r\n\r\none\r\n",
    );
    c.append("INBOX", &[], None, b"Subject: new\r\n\r\ntwo\r\n");
    c.append(
        "INBOX",
        &["\\Flagged"],
        None,
        b"Subject: flagged\r\n\r\nFrom three\r\n",
    );
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    env.run(&["backup", "work"]).assert_success();
    let out = env.dir.path().join("mbox");
    let mut text = run(
        &env,
        &[
            "export",
            "--account",
            "work",
            "--format",
            "mbox",
            out.to_str().unwrap(),
        ],
    );
    let mbox = std::fs::read_to_string(out.join("INBOX.mbox")).unwrap();
    text.push_str("--- INBOX.mbox\n");
    text.push_str(&mbox.replace('\r', "\\r"));
    settings().bind(|| {
        let mut s = insta::Settings::clone_current();
        s.add_filter(
            r"From mailkeep@localhost .*",
            "From mailkeep@localhost [date]",
        );
        s.bind(|| insta::assert_snapshot!("mbox_flags", text));
    });
}

#[test]
fn account_list_prints_tls_as_the_config_writes_it() {
    let env = Env::new();
    for (name, tls) in [("a", "implicit"), ("b", "starttls"), ("c", "none")] {
        let host = if tls == "none" {
            "127.0.0.1"
        } else {
            "imap.example.com"
        };
        env.add_account_raw(
            name,
            &format!("host = \"{host}\"\ntls = \"{tls}\"\nusername = \"u@example.com\"\npassword_env = \"PW\"\n"),
            None,
        );
    }
    snap!("account_list_tls", run(&env, &["account", "list"]));
}

#[test]
fn status_after_archive_and_what_the_store_takes_on_disk() {
    let srv = Dovecot::start(DovecotOptions::default());
    let mut c = srv.client("alice");
    for i in 0..4 {
        c.append(
            "INBOX",
            &["\\Seen"],
            Some("01-Jan-2015 10:00:00 +0000"),
            &gen_message(i, 2_000, "old"),
        );
    }
    c.append("INBOX", &[], None, &gen_message(7, 2_000, "new"));
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    env.run(&["backup", "work"]).assert_success();
    let mut text = run(&env, &["archive", "work", "--older-than", "2y"]);
    text += &run(&env, &["status", "work"]);
    assert!(
        text.contains("  INBOX            1          5"),
        "the server holds 1, the store 5:\n{text}"
    );
    snap!("status_after_archive", text);
}

#[test]
fn one_message_one_folder() {
    let srv = Dovecot::start(DovecotOptions::default());
    srv.client("alice")
        .append("INBOX", &[], None, &gen_message(1, 300, "one"));
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    env.append_config("");
    let mut text = run(&env, &["backup", "work", "--folder", "INBOX"]);
    let out = env.dir.path().join("eml").display().to_string();
    text += &run(
        &env,
        &["export", "--account", "work", "--format", "eml", &out],
    );
    text += &run(&env, &["verify"]);
    snap!("one_message", text);
}

#[test]
fn verbose_and_trace_flags_exist() {
    let env = Env::new();
    let r = env.run(&["status", "-v"]);
    assert_ne!(r.code, 2, "-v is a flag: {r}");
    let r = env.run(&["status", "--verbose", "--trace-imap"]);
    assert_ne!(r.code, 2, "--verbose and --trace-imap are flags: {r}");
    let mut text = run(&env, &["--store", "/nonexistent-store", "status", "-v"]);
    text += &run(&env, &["-vv", "frobnicate"]);
    snap!("verbose_flags", text);
}

#[test]
fn completions_and_man_pages_are_installed_by_a_command() {
    let env = Env::new();
    let dir = env.dir.path().join("man1");
    let mut text = run(&env, &["man", "--dir", dir.to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    text.push_str(&format!("--- pages\n{}\n", pages.join("\n")));
    for shell in ["bash", "zsh", "fish"] {
        let r = env.run(&["completions", shell]);
        assert_eq!(r.code, 0, "{r}");
        assert!(
            r.stdout.contains("archive") && r.stdout.contains("trace-imap"),
            "{shell}: {}",
            r.stdout
        );
    }
    // The bash completion loads in bash.
    let script = env.dir.path().join("mailkeep.bash");
    std::fs::write(&script, env.run(&["completions", "bash"]).stdout).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p mailkeep",
            script.display()
        ))
        .output()
        .unwrap();
    text.push_str(&format!(
        "--- bash: complete -p mailkeep\n{}",
        String::from_utf8_lossy(&out.stdout)
    ));
    snap!("completions_and_man", text);
}

#[test]
fn every_command_has_its_help() {
    let env = Env::new();
    let commands: &[&[&str]] = &[
        &[],
        &["account"],
        &["account", "add"],
        &["account", "list"],
        &["account", "remove"],
        &["account", "set-password"],
        &["backup"],
        &["status"],
        &["verify"],
        &["export"],
        &["restore"],
        &["import"],
        &["quota"],
        &["archive"],
        &["search"],
        &["show"],
        &["reindex"],
        &["repair"],
        &["completions"],
        &["man"],
    ];
    for cmd in commands {
        let mut args: Vec<&str> = cmd.to_vec();
        args.push("--help");
        let out = env.run(&args);
        assert_eq!(out.code, 0, "{out}");
        let name = if cmd.is_empty() {
            "help".to_string()
        } else {
            format!("help_{}", cmd.join("_"))
        };
        snap!(name, shown(&env, &args, &out));
    }
}

/// `scripts/test` on a machine with dovecot-core but not dovecot-imapd:
/// the check finds the IMAP server missing and installs dovecot-imapd.
#[test]
fn the_test_script_installs_the_imap_server_when_only_the_core_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("apt.log");
    // A stand-in apt-get that only notes what it was asked.
    let apt = bin.join("apt-get");
    std::fs::write(
        &apt,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&apt, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let repo = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". {repo}/scripts/lib/common.sh; . {repo}/scripts/lib/dovecot.sh; mk_ensure_dovecot"
        ))
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("MK_DOVECOT_IMAP", dir.path().join("no-imap-here"))
        .output()
        .unwrap();
    let asked = std::fs::read_to_string(&log).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        asked.contains("install") && asked.contains("dovecot-imapd"),
        "apt-get was asked: {asked:?}\n{stderr}"
    );
    // Still missing after the (stand-in) install: said so, with what to do.
    assert!(!out.status.success());
    assert!(
        stderr.contains("no-imap-here") && stderr.contains("dovecot-imapd"),
        "{stderr}"
    );
}

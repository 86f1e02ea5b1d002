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
    env.add_account("other", &srv, "bob");
    env.run(&["backup", "work"]).assert_success();
    let mut text = String::new();
    for args in [
        &["status"][..],
        &["migrate", "work", "other", "--dry-run"][..],
        &["quota", "--all"][..],
        &["verify", "--server", "work"][..],
        &["archive", "work", "--older-than", "1d", "--dry-run"][..],
        &["search", "hello"][..],
        &["account", "list"][..],
        &["completions", "bash"][..],
        &["providers"][..],
        &["doctor", "work"][..],
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

    // Readable, not writable: SQLite writes beside the index even to read it.
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    if root {
        for e in walk(&env.store) {
            let m = if e.is_dir() { 0o755 } else { 0o644 };
            mode(&e, m).unwrap();
        }
    } else {
        mode(&env.store, 0o555).unwrap();
    }
    let mut text = run_as_stranger(&env, &["status"]);
    text += &run_as_stranger(&env, &["search", "hello"]);
    mode(&env.store, 0o700).unwrap();
    assert!(text.contains("exit code: 5"), "{text}");
    snap!("unwritable_store", text);
    env.run(&["status"]).assert_success();
}

/// `dir` and everything under it.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            for e in std::fs::read_dir(&out[i]).unwrap() {
                out.push(e.unwrap().path());
            }
        }
        i += 1;
    }
    out
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
            "--no-check",
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

/// `-v` says what is done, `--trace-imap` the conversation, on stderr,
/// and neither the password nor the mail.
#[test]
fn verbose_and_trace_say_what_is_done_without_secrets() {
    let srv = seeded_server();
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    env.run(&["backup", "work"]).assert_success();
    let mut text = run(&env, &["backup", "work", "--jobs", "1", "-v"]);
    text += &run(&env, &["quota", "work", "--trace-imap"]);
    assert!(!text.contains(srv.password("alice")), "{text}");
    settings().bind(|| {
        let mut s = insta::Settings::clone_current();
        s.add_filter(r"(?m)^ *\d+\.\d+s ", "[t] ");
        s.add_filter(r"\(\d+\.\d+( \+ \d+\.\d+)* secs\)", "([secs])");
        s.bind(|| insta::assert_snapshot!("verbose_and_trace", text));
    });
}

/// A backup of several accounts names the account of each error, does
/// the others, and exits with the first failure's code.
#[test]
fn backup_all_names_the_account_of_each_error() {
    let srv = seeded_server();
    let env = Env::new();
    env.add_account("good", &srv, "alice");
    env.add_account_raw(
        "wrongpw",
        &format!(
            "host = \"localhost\"\nport = {}\nusername = \"alice\"\npassword_env = \"MK_WRONG\"\nca_file = \"{}\"\n",
            srv.imaps_port(),
            srv.ca_file().display()
        ),
        Some(("MK_WRONG", "wrong")),
    );
    env.add_account_raw(
        "nokey",
        &format!(
            "host = \"localhost\"\nport = {}\nusername = \"alice\"\npassword_env = \"MK_UNSET\"\nca_file = \"{}\"\n",
            srv.imaps_port(),
            srv.ca_file().display()
        ),
        None,
    );
    let text = run(&env, &["backup", "--all"]);
    assert!(text.contains("exit code: 3"), "{text}");
    snap!("backup_all_errors", text);
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

/// The commands `--help` lists (`help` left out), two spaces in.
fn subcommands(help: &str) -> Vec<String> {
    let Some(start) = help.find("\nCommands:\n") else {
        return Vec::new();
    };
    help[start + "\nCommands:\n".len()..]
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

/// Every command and subcommand, found from `--help` itself (a new
/// command gets a snapshot without being listed here).
#[test]
fn every_command_has_its_help() {
    let env = Env::new();
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = Vec::new();
    while let Some(cmd) = todo.pop() {
        let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        args.push("--help");
        let out = env.run(&args);
        assert_eq!(out.code, 0, "{out}");
        for sub in subcommands(&out.stdout) {
            let mut next = cmd.clone();
            next.push(sub);
            todo.push(next);
        }
        let name = if cmd.is_empty() {
            "help".to_string()
        } else {
            format!("help_{}", cmd.join("_"))
        };
        snap!(name.clone(), shown(&env, &args, &out));
        seen.push(name);
    }
    for must in [
        "help_backup",
        "help_account_add",
        "help_completions",
        "help_man",
    ] {
        assert!(seen.iter().any(|s| s == must), "{must} in {seen:?}");
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

/// A line as it reads whatever the numbers, sizes, times and paths: for
/// comparing README's samples with what the binary prints.
fn shape(line: &str) -> String {
    let re = |p: &str| regex::Regex::new(p).unwrap();
    let s = re(r"\d{4}-\d\d-\d\d \d\d:\d\d").replace_all(line, "T");
    let s = re(r"store /\S+:").replace_all(&s, "store P:");
    let s = re(r"\d+(\.\d+)?( (B|kB|MB|GB))?").replace_all(&s, "N");
    // Said only when some were: the README's sample has it, a status may not.
    let s = s.replace(", N already stored", "");
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// README's sample of the indented block that follows `after` in it.
fn readme_sample(after: &str) -> Vec<String> {
    let readme = include_str!("../README.md");
    let start = readme.find(after).expect(after) + after.len();
    readme[start..]
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn readme_samples_are_what_the_binary_prints() {
    let srv = Dovecot::start(DovecotOptions::default());
    let mut c = srv.client("alice");
    let sent_ja = "&kAFP4W4IMH8-"; // 送信済み
    c.create(sent_ja);
    for i in 0..3 {
        c.append("INBOX", &[], None, &gen_message(i, 400, "in"));
    }
    c.append("Sent", &["\\Seen"], None, &gen_message(10, 400, "sent"));
    // The same message in two folders: stored once.
    c.append(sent_ja, &["\\Seen"], None, &gen_message(10, 400, "sent"));
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    let r = env.run(&[
        "backup",
        "work",
        "--folder",
        "INBOX",
        "--folder",
        "Sent",
        "--folder",
        "送信済み",
    ]);
    assert_eq!(r.code, 0, "{r}");
    let summary = readme_sample("failed, which goes to stderr:")
        .into_iter()
        .find(|l| l.starts_with("work: "))
        .unwrap();
    assert_eq!(shape(r.stdout.trim()), shape(&summary), "{r}");

    let r = env.run(&["status", "work"]);
    assert_eq!(r.code, 0, "{r}");
    let shown: Vec<String> = r.stdout.trim().lines().map(shape).collect();
    let readme: Vec<String> = readme_sample("`status` then reads like this:")
        .iter()
        .map(|l| shape(l))
        .collect();
    assert_eq!(shown, readme, "{r}");
}

/// README's table of exit codes, `mailkeep --help` and the codes the
/// binary uses say the same.
#[test]
fn readme_and_help_name_the_same_exit_codes() {
    let readme = include_str!("../README.md");
    let table = &readme[readme.find("## Exit codes").unwrap()..];
    let mut in_readme: Vec<u32> = table
        .lines()
        .skip(3)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1)?.trim().parse().ok())
        .collect();
    in_readme.sort();
    let env = Env::new();
    let help = env.run(&["--help"]).stdout;
    let after = &help[help.find("Exit codes:").unwrap()..];
    let after = &after[..after.find("Shell completions").unwrap()];
    let mut in_help: Vec<u32> = regex::Regex::new(r"\b\d+\b")
        .unwrap()
        .find_iter(after)
        .map(|m| m.as_str().parse().unwrap())
        .collect();
    in_help.sort();
    in_help.dedup();
    assert_eq!(in_readme, vec![0, 1, 2, 3, 4, 5, 6, 101, 130, 143]);
    assert_eq!(in_help, in_readme, "{after}");
}

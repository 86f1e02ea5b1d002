//! The command line as a user meets it: accounts, configuration, global
//! flags, messages and exit codes.

mod support;

use std::io::Write;
use std::process::Stdio;

use support::{gen_message, Dovecot, DovecotOptions, Env};

#[test]
fn account_add_list_backup_remove() {
    let srv = Dovecot::start(DovecotOptions::default());
    srv.client("alice")
        .append("INBOX", &[], None, &gen_message(1, 200, "hi"));
    let env = Env::new();
    env.set_var("ALICE_PW", srv.password("alice"));
    let port = srv.imaps_port().to_string();
    let ca = srv.ca_file().display().to_string();
    let r = env.run(&[
        "account",
        "add",
        "work",
        "--host",
        "localhost",
        "--port",
        &port,
        "--user",
        "alice",
        "--password-env",
        "ALICE_PW",
        "--ca-file",
        &ca,
    ]);
    assert_eq!(r.code, 0, "{r}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&env.config).unwrap().permissions(),
    );
    assert_eq!(mode & 0o077, 0, "the config is private");

    let list = env.run(&["account", "list"]);
    assert_eq!(list.code, 0, "{list}");
    assert!(
        list.stdout.contains("work") && list.stdout.contains("alice@localhost"),
        "{list}"
    );
    assert!(list.stdout.contains("$ALICE_PW"), "{list}");

    let dup = env.run(&[
        "account",
        "add",
        "work",
        "--host",
        "x",
        "--user",
        "y",
        "--password-env",
        "Z",
    ]);
    assert_eq!(dup.code, 2, "{dup}");

    let b = env.run(&["backup", "work"]);
    assert_eq!(b.code, 0, "{b}");
    assert!(b.stdout.contains("fetched 1 new"), "{b}");

    let rm = env.run(&["account", "remove", "work"]);
    assert_eq!(rm.code, 0, "{rm}");
    assert!(rm.stdout.contains("stays in the store"), "{rm}");
    let st = env.run(&["status"]);
    assert!(
        st.stdout.contains("work (not in config)"),
        "the mail is still there: {st}"
    );
}

#[test]
fn global_flags_go_before_or_after_the_command() {
    let env = Env::new();
    let config = env.config.display().to_string();
    let store = env.store.display().to_string();
    for args in [
        vec!["--config", &config, "--store", &store, "status"],
        vec!["status", "--config", &config, "--store", &store],
    ] {
        let out = std::process::Command::new(support::mailkeep_bin())
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .output()
            .unwrap();
        // No store there yet: the error names the one given, wherever the flag was.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{stderr}");
        assert!(
            stderr.contains(&format!("no store at `{store}`")),
            "{stderr}"
        );
    }
}

#[test]
fn config_problems_are_named_with_a_hint() {
    let env = Env::new();
    env.append_config(
        "[accounts.work]\nhost = \"imap.example.com\"\nusername = \"u\"\npasword_env = \"X\"\n",
    );
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("pasword_env"),
        "names the unknown key: {r}"
    );
    assert!(r.stderr.contains("hint:"), "{r}");

    let env = Env::new();
    env.append_config("[accounts.work]\nhost = \"imap.example.com\"\ntls = \"none\"\nusername = \"u\"\npassword_env = \"X\"\n");
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 2, "plain text to a remote host is refused: {r}");
}

#[test]
fn plaintext_password_and_readable_config_draw_warnings() {
    let srv = Dovecot::start(DovecotOptions::default());
    let env = Env::new();
    env.add_account_raw(
        "work",
        &format!(
            "host = \"localhost\"\nport = {}\nusername = \"alice\"\npassword = \"{}\"\nca_file = \"{}\"\n",
            srv.imaps_port(),
            srv.password("alice"),
            srv.ca_file().display()
        ),
        None,
    );
    std::fs::set_permissions(
        &env.config,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stderr.contains("warning:") && r.stderr.contains("plain"),
        "{r}"
    );
    assert!(
        r.stderr.contains("0644") || r.stderr.contains("other users"),
        "{r}"
    );
    assert!(
        !r.stderr.contains(srv.password("alice")),
        "the password is never printed: {r}"
    );
}

#[test]
fn missing_password_variable_is_an_auth_error_with_a_hint() {
    let srv = Dovecot::start(DovecotOptions::default());
    let env = Env::new();
    env.add_account_raw(
        "work",
        &format!(
            "host = \"localhost\"\nport = {}\nusername = \"alice\"\npassword_env = \"MK_UNSET_VAR\"\nca_file = \"{}\"\n",
            srv.imaps_port(),
            srv.ca_file().display()
        ),
        None,
    );
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("MK_UNSET_VAR"), "{r}");
    assert!(r.stderr.contains("hint:"), "{r}");
}

#[test]
fn starttls_account_backs_up() {
    let srv = Dovecot::start(DovecotOptions::default());
    srv.client("alice")
        .append("INBOX", &[], None, &gen_message(3, 500, "starttls"));
    let env = Env::new();
    env.add_account_raw(
        "work",
        &format!(
            "host = \"localhost\"\nport = {}\ntls = \"starttls\"\nusername = \"alice\"\npassword_env = \"MK_PW\"\nca_file = \"{}\"\n",
            srv.imap_port(),
            srv.ca_file().display()
        ),
        Some(("MK_PW", srv.password("alice"))),
    );
    let r = env.run(&["backup", "work"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("fetched 1 new"), "{r}");
}

#[test]
fn set_password_uses_the_keyring_or_says_there_is_none() {
    let env = Env::new();
    env.append_config("[accounts.k]\nhost = \"imap.example.com\"\nusername = \"u@example.com\"\n");
    let mut child = env.command(&["account", "set-password", "k"]);
    child
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = child.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret-pw\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stderr.contains("s3cret-pw") && !stdout.contains("s3cret-pw"));
    match out.status.code() {
        Some(0) => {
            assert!(stdout.contains("stored the password"), "{stdout}");
            if stderr.contains("kernel keyring") {
                assert!(
                    stderr.contains("forgets it at reboot") && stderr.contains("password_command"),
                    "a keyring that forgets at reboot is said so: {stderr}"
                );
            }
        }
        Some(3) => {
            assert!(stderr.contains("keyring"), "{stderr}");
            assert!(
                stderr.contains("password_env") || stderr.contains("password_command"),
                "{stderr}"
            );
        }
        other => panic!("unexpected exit {other:?}: {stderr}"),
    }
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    let r = env.run(&["backup"]);
    assert_eq!(r.code, 2, "an account or --all is required: {r}");
    let r = env.run(&["frobnicate"]);
    assert_eq!(r.code, 2, "{r}");
    let r = env.run(&["--help"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("Exit codes"), "{r}");
}

#[test]
fn status_of_an_empty_store_and_verify_of_none() {
    let env = Env::new();
    let r = env.run(&["status"]);
    assert_eq!(
        r.code, 5,
        "a store that is not there is not an empty one: {r}"
    );
    assert!(
        r.stderr.contains("no store at") && r.stderr.contains("hint:"),
        "{r}"
    );
    let r = env.run(&["verify"]);
    assert_eq!(r.code, 5, "{r}");
    assert!(r.stderr.contains("no store"), "{r}");
}

#[test]
fn backup_all_goes_on_past_a_failing_account_and_says_which() {
    let srv = Dovecot::start(DovecotOptions::default());
    srv.client("bob")
        .append("INBOX", &[], None, &gen_message(1, 300, "bob"));
    let env = Env::new();
    env.add_account_raw(
        "alice",
        &format!(
            "host = \"localhost\"\nport = {}\nusername = \"alice\"\npassword_env = \"MK_WRONG\"\nca_file = \"{}\"\n",
            srv.imaps_port(),
            srv.ca_file().display()
        ),
        Some(("MK_WRONG", "wrong")),
    );
    env.add_account("bob", &srv, "bob");
    let r = env.run(&["backup", "--all"]);
    assert_eq!(r.code, 3, "the failed account decides the exit code: {r}");
    assert!(
        r.stderr.contains("alice") && r.stderr.contains("hint:"),
        "{r}"
    );
    assert!(
        r.stdout.contains("bob: ") && r.stdout.contains("fetched 1 new"),
        "bob was still backed up: {r}"
    );
}

#[test]
fn a_store_path_that_is_a_file_is_refused_with_a_hint() {
    let env = Env::new();
    std::fs::write(&env.store, b"not a store").unwrap();
    for args in [&["status"][..], &["verify"][..]] {
        let r = env.run(args);
        assert_eq!(r.code, 5, "{r}");
        assert!(
            r.stderr.contains("not a directory") && r.stderr.contains("hint:"),
            "{r}"
        );
    }
    assert_eq!(
        std::fs::read(&env.store).unwrap(),
        b"not a store",
        "the file is left alone"
    );
}

#[test]
fn verbose_logs_and_the_imap_trace_leave_out_passwords_and_mail() {
    let srv = Dovecot::start(DovecotOptions::default());
    let body_word = "zanzibarquux";
    srv.client("alice").append(
        "INBOX",
        &["\\Seen"],
        None,
        format!("Subject: private subject line\r\n\r\n{body_word} body text\r\n").as_bytes(),
    );
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    let password = srv.password("alice").to_string();

    let r = env.run(&["backup", "work", "-v"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stderr.contains("connecting to localhost:"),
        "-v says what it does: {r}"
    );
    assert!(!r.stderr.contains("capabilities"), "-v is not -vv: {r}");
    let r = env.run(&["backup", "work", "-vv"]);
    assert!(r.stderr.contains("capabilities"), "-vv says how: {r}");

    let trace = env.dir.path().join("imap.trace");
    let arg = format!("--trace-imap={}", trace.display());
    // A first backup of its own, so that a message is fetched.
    let env = Env::new();
    env.add_account("work", &srv, "alice");
    let r = env.run(&["backup", "work", &arg]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("fetched 1 new"), "{r}");
    let text = std::fs::read_to_string(&trace).unwrap();
    if std::env::var_os("MK_SHOW_TRACE").is_some() {
        eprintln!("{text}");
    }
    assert!(text.contains(" C: M1 "), "the commands: {text}");
    assert!(
        text.contains("AUTHENTICATE PLAIN [redacted]") || text.contains("LOGIN [redacted]"),
        "{text}"
    );
    assert!(
        text.contains("FETCH") && text.contains("bytes]"),
        "bodies as their size: {text}"
    );
    use base64::Engine as _;
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0alice\0{password}"));
    for secret in [
        password.as_str(),
        plain.as_str(),
        body_word,
        "private subject line",
    ] {
        assert!(
            !text.contains(secret),
            "`{secret}` is in the trace:\n{text}"
        );
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&trace).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the trace is private");

    // On stderr when no file is named; a bad MAILKEEP_LOG is a usage error.
    let r = env.run(&["status", "--trace-imap"]);
    assert_eq!(r.code, 0, "{r}");
    let mut cmd = env.command(&["status"]);
    cmd.env("MAILKEEP_LOG", "mailkeep=loud[");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAILKEEP_LOG"));
}

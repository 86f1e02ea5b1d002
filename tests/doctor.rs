//! `mailkeep doctor`: each failure is named at its step with its fix and
//! exit code; a healthy account passes every step.

mod support;

use support::{toml_str, Authority, CertKind, Dovecot, DovecotOptions, Env, Output};

fn account(env: &Env, srv: &Dovecot, host: &str, port: u16, extra: &str, pw: &str) {
    env.add_account_raw(
        "main",
        &format!(
            "host = \"{host}\"\nport = {port}\nusername = \"alice\"\npassword_env = \"MK_PW\"\n{extra}"
        ),
        Some(("MK_PW", pw)),
    );
    let _ = srv;
}

fn ca_line(srv: &Dovecot) -> String {
    format!(
        "ca_file = {}\n",
        toml_str(&srv.ca_file().display().to_string())
    )
}

/// The line of the step `label`, and its fix line(s).
fn step<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find(|l| l.len() > 2 && l[l.char_indices().nth(2).unwrap().0..].starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` step in:\n{out}"))
}

/// `doctor main --json`, and its check of `step`.
fn json_step(env: &Env, step: &str) -> (Output, serde_json::Value) {
    let j = env.run(&["doctor", "main", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    let check = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["step"] == step)
        .unwrap_or_else(|| panic!("no `{step}` check in {}", j.stdout))
        .clone();
    (j, check)
}

#[test]
fn a_healthy_account_passes_every_step_and_json_says_so() {
    let srv = Dovecot::start(DovecotOptions {
        quota_kib: Some(100_000),
        ..Default::default()
    });
    let env = Env::new();
    account(
        &env,
        &srv,
        "localhost",
        srv.imaps_port(),
        &ca_line(&srv),
        srv.password("alice"),
    );
    let r = env.run(&["doctor", "main"]);
    println!("{}", r.stdout);
    assert_eq!(r.code, 0, "{r}");
    for label in [
        "config", "DNS", "TCP", "TLS", "greeting", "login", "folders", "INBOX", "quota", "store",
    ] {
        assert!(
            step(&r.stdout, label).starts_with('✓'),
            "`{label}` passes: {r}"
        );
    }
    assert!(step(&r.stdout, "TLS").contains("TLSv1."), "{r}");
    assert!(
        step(&r.stdout, "folders").contains("\\Sent = `Sent`"),
        "{r}"
    );
    let j = env.run(&["doctor", "main", "--json"]);
    assert_eq!(j.code, 0, "{j}");
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["exit_code"], 0);
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] != "fail"));
}

#[test]
fn a_self_signed_ca_true_certificate_in_ca_file_passes() {
    let srv = Dovecot::start(DovecotOptions {
        cert: CertKind::SelfSignedCa,
        ..Default::default()
    });
    let env = Env::new();
    account(
        &env,
        &srv,
        "localhost",
        srv.imaps_port(),
        &ca_line(&srv),
        srv.password("alice"),
    );
    let r = env.run(&["doctor", "main"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        step(&r.stdout, "TLS").contains("the certificate itself is in `ca_file`"),
        "{r}"
    );
}

/// Runs doctor and checks that it stops at the step `label` with `code`,
/// that what it saw holds each of `seen` and its fix each of `fix` (in the
/// text and in `--json`); returns the text.
fn fails_at(env: &Env, label: &str, code: i32, seen: &[&str], fix: &[&str]) -> String {
    let r = env.run(&["doctor", "main"]);
    println!("{}", r.stdout);
    assert_eq!(r.code, code, "{r}");
    let line = step(&r.stdout, label);
    assert!(line.starts_with('✗'), "`{label}` fails: {r}");
    let last = r
        .stdout
        .lines()
        .rfind(|l| l.starts_with('✗') || l.starts_with('✓'))
        .unwrap();
    assert_eq!(last, line, "doctor stops at the first failure: {r}");
    assert!(r.stdout.contains("fix:"), "{r}");

    let j = env.run(&["doctor", "main", "--json"]);
    assert_eq!(j.code, code, "{j}");
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["exit_code"], code);
    let checks = v["checks"].as_array().unwrap();
    let failed: Vec<&serde_json::Value> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert_eq!(failed.len(), 1, "one failure: {j}");
    let f = failed[0];
    assert_eq!(
        f["step"].as_str().unwrap(),
        label.to_ascii_lowercase(),
        "{j}"
    );
    assert!(std::ptr::eq(f, checks.last().unwrap()), "stops there: {j}");
    let (seen_text, fix_text) = (
        f["seen"].as_str().unwrap(),
        f["fix"].as_str().unwrap_or_else(|| panic!("a fix: {j}")),
    );
    for w in seen {
        assert!(seen_text.contains(w), "`{w}` in what doctor saw: {j}");
    }
    for w in fix {
        assert!(fix_text.contains(w), "`{w}` in the fix: {j}");
    }
    r.stdout
}

#[test]
fn doctor_names_the_failing_step_and_its_fix() {
    let srv = Dovecot::start(DovecotOptions::default());
    let pw = srv.password("alice").to_string();

    // An unresolvable host.
    let env = Env::new();
    account(&env, &srv, "no-such-host.invalid", 993, "", &pw);
    fails_at(
        &env,
        "DNS",
        4,
        &["cannot resolve the host name `no-such-host.invalid`"],
        &["check the spelling of `host`", "mailkeep providers"],
    );

    // A wrong port: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = Env::new();
    account(&env, &srv, "localhost", closed, &ca_line(&srv), &pw);
    fails_at(
        &env,
        "TCP",
        4,
        &["cannot connect", &closed.to_string()],
        &["check the host name and port"],
    );

    // Implicit TLS on the plain-text port.
    let env = Env::new();
    account(
        &env,
        &srv,
        "localhost",
        srv.imap_port(),
        &ca_line(&srv),
        &pw,
    );
    fails_at(
        &env,
        "TLS",
        4,
        &["answered in plain text", "* OK"],
        &["tls = \"starttls\"", "port = 993"],
    );

    // A certificate from a CA this machine does not trust.
    let env = Env::new();
    account(&env, &srv, "localhost", srv.imaps_port(), "", &pw);
    fails_at(
        &env,
        "TLS",
        4,
        &["not trusted", "subject:", "issuer:", "valid:", "SHA-256:"],
        &["tls_fingerprint = \"sha256:", "ca_file"],
    );

    // A wrong password: the login step, the general rule, no password shown.
    let env = Env::new();
    account(
        &env,
        &srv,
        "localhost",
        srv.imaps_port(),
        &ca_line(&srv),
        "wrong-password",
    );
    let out = fails_at(
        &env,
        "login",
        3,
        &[
            "cannot log in to localhost as alice",
            "AUTHENTICATIONFAILED",
        ],
        &["check the user name and password", "app-specific password"],
    );
    assert!(!out.contains("wrong-password"), "{out}");
    assert!(step(&out, "TLS").starts_with('✓'));

    // The same for an account made from a preset: that provider's rule.
    for (provider, want) in [
        (
            "icloud",
            vec![
                "part of the address before the @",
                "App-Specific Passwords",
                "App 用パスワード",
            ],
        ),
        (
            "gmail",
            vec![
                "app-specific password",
                "2-Step Verification",
                "IMAP must be on",
            ],
        ),
        ("docomo", vec!["d ACCOUNT ID", "IMAP専用パスワード"]),
        (
            "outlook",
            vec![
                "refuses passwords",
                "oauth2_client_id",
                "mailkeep account login main",
            ],
        ),
    ] {
        let env = Env::new();
        account(
            &env,
            &srv,
            "localhost",
            srv.imaps_port(),
            &format!("{}provider = \"{provider}\"\n", ca_line(&srv)),
            "wrong-password",
        );
        fails_at(&env, "login", 3, &["cannot log in"], &want);
    }

    let env = Env::new();
    account(
        &env,
        &srv,
        "localhost",
        srv.imaps_port(),
        "ca_file = \"/nonexistent/ca.pem\"\n",
        &pw,
    );
    fails_at(
        &env,
        "config",
        2,
        &["/nonexistent/ca.pem"],
        &["fix `ca_file`"],
    );
}

#[test]
fn doctor_on_a_self_signed_ca_true_certificate_without_ca_file_prints_the_pin() {
    let srv = Dovecot::start(DovecotOptions {
        cert: CertKind::SelfSignedCa,
        ..Default::default()
    });
    let env = Env::new();
    account(
        &env,
        &srv,
        "localhost",
        srv.imaps_port(),
        "",
        srv.password("alice"),
    );
    let out = fails_at(
        &env,
        "TLS",
        4,
        &["is self-signed", "CN=localhost"],
        &["tls_fingerprint = \"sha256:"],
    );
    // The line doctor prints is the fix: with it, doctor passes.
    let line = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("tls_fingerprint = "))
        .unwrap()
        .to_string();
    let env = Env::new();
    account(
        &env,
        &srv,
        "localhost",
        srv.imaps_port(),
        &format!("{line}\n"),
        srv.password("alice"),
    );
    let r = env.run(&["doctor", "main"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(step(&r.stdout, "TLS").contains("pinned"), "{r}");
}

#[test]
fn doctor_names_expired_and_misnamed_certificates() {
    for (kind, want, fix) in [
        (CertKind::Expired, "expired on 2021-01-01", "renew"),
        (
            CertKind::WrongName,
            "is for `mail.example.com`",
            "set `host` to a name the certificate is for (`mail.example.com`)",
        ),
    ] {
        let srv = Dovecot::start(DovecotOptions {
            cert: kind,
            ..Default::default()
        });
        let env = Env::new();
        account(
            &env,
            &srv,
            "localhost",
            srv.imaps_port(),
            &ca_line(&srv),
            srv.password("alice"),
        );
        fails_at(&env, "TLS", 4, &[want], &[fix]);
    }
}

#[test]
fn a_server_without_quota_is_said_plainly_and_a_full_one_warns() {
    let srv = Dovecot::start(DovecotOptions::default());
    let env = Env::new();
    account(
        &env,
        &srv,
        "localhost",
        srv.imaps_port(),
        &ca_line(&srv),
        srv.password("alice"),
    );
    let r = env.run(&["doctor", "main"]);
    assert_eq!(r.code, 0, "{r}");
    let q = step(&r.stdout, "quota");
    assert!(
        q.starts_with('-') && q.contains("no QUOTA capability"),
        "{r}"
    );
    let (j, q) = json_step(&env, "quota");
    assert_eq!(q["status"], "skipped", "{j}");
    assert!(
        q["fix"].as_str().unwrap().contains("provider's web page"),
        "says where to look instead: {j}"
    );

    let srv = Dovecot::start(DovecotOptions {
        quota_kib: Some(10),
        ..Default::default()
    });
    srv.client("alice")
        .append("INBOX", &[], None, &support::gen_message(1, 9_800, "big"));
    let env = Env::new();
    account(
        &env,
        &srv,
        "localhost",
        srv.imaps_port(),
        &ca_line(&srv),
        srv.password("alice"),
    );
    let r = env.run(&["doctor", "main"]);
    assert_eq!(r.code, 0, "a warning is not a failure: {r}");
    let q = step(&r.stdout, "quota");
    assert!(q.starts_with('!') && q.contains("nearly full"), "{r}");
    assert!(r.stdout.contains("mailkeep archive main"), "{r}");
    // For scripts, the figures themselves, in bytes.
    let (j, q) = json_step(&env, "quota");
    assert_eq!(q["status"], "warn", "{j}");
    assert_eq!(q["storage"]["limit"], 10 * 1024, "{j}");
    assert!(q["storage"]["used"].as_u64().unwrap() > 9 * 1024, "{j}");
}

#[test]
fn doctor_without_an_account_checks_the_config_file() {
    let env = Env::new();
    std::fs::remove_file(&env.config).unwrap();
    let r = env.run(&["doctor"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stdout.contains("no configuration file"), "{r}");

    let env = Env::new();
    env.add_account_raw(
        "main",
        "host = \"imap.example.com\"\nusername = \"u\"\npassword_env = \"DOCTOR_UNSET\"\n",
        None,
    );
    let r = env.run(&["doctor"]);
    assert_eq!(r.code, 3, "{r}");
    assert!(
        step(&r.stdout, "account").contains("`DOCTOR_UNSET` is not set"),
        "{r}"
    );

    let env = Env::new();
    env.append_config("[accounts.main]\nhost = \"imap.example.com\"\nusername = \"u\"\ntls_fingerprint = \"md5:00\"\n");
    let r = env.run(&["doctor"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stdout.contains("tls_fingerprint"), "{r}");
}

/// An OAuth2 account whose token comes from a command, on a server that
/// checks tokens with `auth`.
fn oauth_account(env: &Env, srv: &Dovecot, token: &str) {
    env.add_account_raw(
        "main",
        &format!(
            "host = \"localhost\"\nport = {}\nusername = \"alice\"\n{}oauth2_token_command = \"echo {token}\"\n",
            srv.imaps_port(),
            ca_line(srv)
        ),
        None,
    );
}

#[test]
fn doctor_tells_a_refused_token_from_an_endpoint_that_is_down() {
    let mut auth = Authority::start();
    auth.grant("good-token-1", "alice");
    let srv = Dovecot::start(DovecotOptions {
        oauth2_introspection: Some(auth.url("/introspect")),
        ..Default::default()
    });

    let env = Env::new();
    oauth_account(&env, &srv, "good-token-1");
    let r = env.run(&["doctor", "main"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        step(&r.stdout, "config").contains("OAuth2 token from `oauth2_token_command`"),
        "{r}"
    );

    // An expired (refused) token: a login failure, exit 3, what to do.
    let env = Env::new();
    oauth_account(&env, &srv, "expired-token-2");
    let out = fails_at(
        &env,
        "login",
        3,
        &["refused the OAuth2 token"],
        &["mailkeep account login main", "oauth2_token_command"],
    );
    assert!(!out.contains("expired-token-2"), "no token printed: {out}");

    // The introspection endpoint down: `NO [UNAVAILABLE]`, retryable, exit
    // 4 — not a wrong password.
    auth.shut_down();
    let env = Env::new();
    oauth_account(&env, &srv, "good-token-1");
    let out = fails_at(
        &env,
        "login",
        4,
        &["UNAVAILABLE"],
        &["not a wrong password", "try again later"],
    );
    assert!(!out.contains("good-token-1"), "no token printed: {out}");
}

#[test]
fn doctor_reads_messages_back_from_the_store_and_names_damage() {
    let srv = Dovecot::start(DovecotOptions::default());
    let message = support::gen_message(1, 4_000, "kept");
    srv.client("alice").append("INBOX", &[], None, &message);
    let env = Env::new();
    env.add_account("main", &srv, "alice");
    assert_eq!(env.run(&["backup", "main"]).code, 0);
    let r = env.run(&["doctor", "main"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        step(&r.stdout, "store").contains("1 of 1 stored message read back whole"),
        "{r}"
    );

    // One flipped byte inside the message's record (magic `MKR1`, kind
    // `B`, as docs/design.md lays records out).
    let pack = env.store.join("packs/00/000001.pack");
    let mut bytes = std::fs::read(&pack).unwrap();
    let mut pos = 16;
    let blob = loop {
        assert_eq!(&bytes[pos..pos + 4], b"MKR1", "record at {pos}");
        let len = u64::from_le_bytes(bytes[pos + 8..pos + 16].try_into().unwrap()) as usize;
        if bytes[pos + 4] == b'B' {
            break pos + 16 + len / 2;
        }
        pos += 16 + len + 4;
    };
    bytes[blob] ^= 0x5a;
    std::fs::write(&pack, bytes).unwrap();
    let r = env.run(&["doctor", "main"]);
    println!("{}", r.stdout);
    assert_eq!(r.code, 5, "{r}");
    let line = step(&r.stdout, "store");
    assert!(
        line.starts_with('✗') && line.contains("of 1 messages read back, 1 is damaged"),
        "{r}"
    );
    assert!(r.stdout.contains("mailkeep verify --deep"), "{r}");
}

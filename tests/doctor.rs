//! `mailkeep doctor`: each failure is named at its step with its fix and
//! exit code; a healthy account passes every step.

mod support;

use support::{toml_str, CertKind, Dovecot, DovecotOptions, Env};

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

/// Runs doctor and returns (exit code, stdout); checks the failing step.
fn fails_at(env: &Env, label: &str, code: i32, want: &[&str]) -> String {
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
    for w in want {
        assert!(r.stdout.contains(w), "`{w}` in: {r}");
    }
    assert!(r.stdout.contains("fix:"), "{r}");
    r.stdout
}

#[test]
fn doctor_names_the_failing_step_and_its_fix() {
    let srv = Dovecot::start(DovecotOptions::default());
    let pw = srv.password("alice").to_string();

    let env = Env::new();
    account(&env, &srv, "no-such-host.invalid", 993, "", &pw);
    fails_at(&env, "DNS", 4, &["cannot resolve the host name"]);

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = Env::new();
    account(&env, &srv, "localhost", closed, &ca_line(&srv), &pw);
    fails_at(&env, "TCP", 4, &["cannot connect"]);

    let env = Env::new();
    account(
        &env,
        &srv,
        "localhost",
        srv.imap_port(),
        &ca_line(&srv),
        &pw,
    );
    fails_at(&env, "TLS", 4, &["answered in plain text", "starttls"]);

    let env = Env::new();
    account(&env, &srv, "localhost", srv.imaps_port(), "", &pw);
    fails_at(
        &env,
        "TLS",
        4,
        &["not trusted", "tls_fingerprint = \"sha256:"],
    );

    let env = Env::new();
    account(
        &env,
        &srv,
        "localhost",
        srv.imaps_port(),
        &ca_line(&srv),
        "wrong-password",
    );
    let out = fails_at(&env, "login", 3, &["cannot log in to localhost as alice"]);
    assert!(!out.contains("wrong-password"), "{out}");
    assert!(step(&out, "TLS").starts_with('✓'));

    let env = Env::new();
    account(
        &env,
        &srv,
        "localhost",
        srv.imaps_port(),
        "ca_file = \"/nonexistent/ca.pem\"\n",
        &pw,
    );
    fails_at(&env, "config", 2, &["/nonexistent/ca.pem"]);
}

#[test]
fn doctor_names_expired_and_misnamed_certificates() {
    for (kind, want) in [
        (CertKind::Expired, "expired on 2021-01-01"),
        (CertKind::WrongName, "is for `mail.example.com`"),
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
        fails_at(&env, "TLS", 4, &[want]);
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

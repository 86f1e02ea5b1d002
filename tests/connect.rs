//! Connecting as users really do: the certificates they have (self-signed
//! CA:TRUE and CA:FALSE, untrusted, expired, for another name), the wrong
//! port or TLS mode, a cipher rustls does not speak, a missing CA file or
//! password variable; and `account add`, which logs in before it saves.

mod support;

use support::{toml_str, CertKind, Dovecot, DovecotOptions, Env};

fn server(cert: CertKind) -> Dovecot {
    Dovecot::start(DovecotOptions {
        cert,
        ..Default::default()
    })
}

/// An account on `srv`'s given port with `extra` TOML lines (ca_file, tls, …).
fn account(env: &Env, srv: &Dovecot, port: u16, extra: &str) {
    env.add_account_raw(
        "main",
        &format!(
            "host = \"localhost\"\nport = {port}\nusername = \"alice\"\npassword_env = \"MK_PW\"\n{extra}"
        ),
        Some(("MK_PW", srv.password("alice"))),
    );
}

fn ca_line(srv: &Dovecot) -> String {
    format!(
        "ca_file = {}\n",
        toml_str(&srv.ca_file().display().to_string())
    )
}

#[test]
fn a_self_signed_certificate_that_is_its_own_ca_works_in_ca_file() {
    let srv = server(CertKind::SelfSignedCa);
    let env = Env::new();
    account(&env, &srv, srv.imaps_port(), &ca_line(&srv));
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 0, "CA:TRUE self-signed certificate in ca_file: {r}");
    assert!(!r.stderr.contains("CaUsedAsEndEntity"), "{r}");
}

#[test]
fn a_self_signed_certificate_without_ca_true_works_in_ca_file() {
    let srv = server(CertKind::SelfSignedLeaf);
    let env = Env::new();
    account(&env, &srv, srv.imaps_port(), &ca_line(&srv));
    let r = env.run(&["backup", "main"]);
    assert_eq!(
        r.code, 0,
        "CA:FALSE self-signed certificate in ca_file: {r}"
    );
}

#[test]
fn an_untrusted_certificate_is_described_and_the_printed_line_pins_it() {
    let srv = server(CertKind::SelfSignedCa);
    let env = Env::new();
    account(&env, &srv, srv.imaps_port(), "");
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 4, "{r}");
    for want in [
        "is self-signed",
        "subject:",
        "issuer:",
        "valid:",
        "SHA-256:",
        "CN=localhost",
    ] {
        assert!(r.stderr.contains(want), "`{want}` in: {r}");
    }
    let line = r
        .stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("tls_fingerprint = \"sha256:"))
        .unwrap_or_else(|| panic!("the line to add: {r}"))
        .to_string();
    // The user adds exactly the line printed: it works, without a CA file.
    let env2 = Env::new();
    account(&env2, &srv, srv.imaps_port(), &format!("{line}\n"));
    let ok = env2.run(&["backup", "main"]);
    assert_eq!(ok.code, 0, "pinned by the printed line `{line}`: {ok}");

    // A pin of another certificate is refused.
    let env3 = Env::new();
    account(
        &env3,
        &srv,
        srv.imaps_port(),
        &format!("tls_fingerprint = \"sha256:{}\"\n", "ab".repeat(32)),
    );
    assert_eq!(env3.run(&["backup", "main"]).code, 4);
}

#[test]
fn a_ca_file_adds_to_the_system_roots_it_does_not_replace_them() {
    // The server's CA is a system root (rustls-native-certs reads
    // SSL_CERT_FILE); `ca_file` names another CA: trusted all the same.
    let srv = server(CertKind::CaSigned);
    let other = server(CertKind::SelfSignedCa);
    let env = Env::new();
    account(&env, &srv, srv.imaps_port(), &ca_line(&other));
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 4, "the server's CA is in neither: {r}");
    env.set_var("SSL_CERT_FILE", &srv.ca_file().display().to_string());
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 0, "the server's CA is a system root: {r}");
    // And the other way round: its CA in `ca_file`, not among the system's.
    let env = Env::new();
    account(&env, &srv, srv.imaps_port(), &ca_line(&srv));
    env.set_var("SSL_CERT_FILE", &other.ca_file().display().to_string());
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 0, "the server's CA is in ca_file: {r}");
}

#[test]
fn an_expired_certificate_says_when_it_expired() {
    let srv = server(CertKind::Expired);
    let env = Env::new();
    account(&env, &srv, srv.imaps_port(), &ca_line(&srv));
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("expired on 2021-01-01"), "{r}");
    assert!(r.stderr.contains("renew"), "{r}");
}

#[test]
fn a_certificate_for_another_name_names_the_right_one() {
    let srv = server(CertKind::WrongName);
    let env = Env::new();
    account(&env, &srv, srv.imaps_port(), &ca_line(&srv));
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(
        r.stderr
            .contains("is for `mail.example.com`, not for `localhost`"),
        "{r}"
    );
    assert!(r.stderr.contains("set `host`"), "{r}");
}

#[test]
fn a_missing_ca_file_is_a_configuration_error() {
    let srv = server(CertKind::CaSigned);
    let env = Env::new();
    account(
        &env,
        &srv,
        srv.imaps_port(),
        "ca_file = \"/nonexistent/ca.pem\"\n",
    );
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("/nonexistent/ca.pem"), "{r}");
    assert!(r.stderr.contains("does not exist"), "{r}");
    assert!(r.stderr.contains("hint: fix `ca_file`"), "{r}");
}

#[test]
fn implicit_tls_on_a_plain_text_port_says_so() {
    let srv = server(CertKind::CaSigned);
    let env = Env::new();
    account(
        &env,
        &srv,
        srv.imap_port(),
        &format!("tls = \"implicit\"\n{}", ca_line(&srv)),
    );
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("answered in plain text, not TLS"), "{r}");
    assert!(r.stderr.contains("* OK"), "quotes what it said: {r}");
    assert!(
        r.stderr.contains("tls = \\\"starttls\\\"") || r.stderr.contains("tls = \"starttls\""),
        "{r}"
    );
    assert!(!r.stderr.contains("InvalidContentType"), "{r}");
}

#[test]
fn starttls_on_an_implicit_tls_port_is_found_out_without_waiting_for_a_greeting() {
    let srv = server(CertKind::CaSigned);
    let env = Env::new();
    account(
        &env,
        &srv,
        srv.imaps_port(),
        &format!("tls = \"starttls\"\n{}", ca_line(&srv)),
    );
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(
        r.stderr.contains("expects TLS at once (implicit TLS)"),
        "{r}"
    );
    assert!(
        !r.stderr.contains("timed out"),
        "not the 60 s greeting timeout: {r}"
    );
    assert!(r.stderr.contains("tls = \"implicit\""), "{r}");
}

#[test]
fn starttls_on_the_plain_port_works() {
    let srv = server(CertKind::CaSigned);
    let env = Env::new();
    account(
        &env,
        &srv,
        srv.imap_port(),
        &format!("tls = \"starttls\"\n{}", ca_line(&srv)),
    );
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 0, "{r}");
}

#[test]
fn a_server_with_only_ciphers_rustls_does_not_speak_is_named_plainly() {
    let srv = Dovecot::start(DovecotOptions {
        ssl_cipher_list: Some("ECDHE-ECDSA-AES128-SHA".into()),
        ..Default::default()
    });
    let env = Env::new();
    account(&env, &srv, srv.imaps_port(), &ca_line(&srv));
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(
        r.stderr
            .contains("offers no TLS version or cipher suite that mailkeep speaks"),
        "{r}"
    );
    assert!(
        r.stderr.contains("stunnel"),
        "says what the user can do: {r}"
    );
}

#[test]
fn an_unset_password_variable_is_named_in_the_hint() {
    let srv = server(CertKind::CaSigned);
    let env = Env::new();
    env.add_account_raw(
        "main",
        &format!(
            "host = \"localhost\"\nport = {}\nusername = \"alice\"\npassword_env = \"WORK_PW_UNSET\"\n{}",
            srv.imaps_port(),
            ca_line(&srv)
        ),
        None,
    );
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("`WORK_PW_UNSET` is not set"), "{r}");
    assert!(r.stderr.contains("hint: export WORK_PW_UNSET="), "{r}");
}

fn add_args<'a>(srv_port: &'a str, ca: &'a str, var: &'a str) -> Vec<&'a str> {
    vec![
        "account",
        "add",
        "work",
        "--host",
        "localhost",
        "--port",
        srv_port,
        "--user",
        "alice",
        "--password-env",
        var,
        "--ca-file",
        ca,
    ]
}

#[test]
fn account_add_logs_in_first_and_saves_nothing_when_that_fails() {
    let srv = server(CertKind::CaSigned);
    let port = srv.imaps_port().to_string();
    let ca = srv.ca_file().display().to_string();
    let env = Env::new();
    let before = std::fs::read_to_string(&env.config).unwrap();

    env.set_var("PW", "wrong-password");
    let r = env.run(&add_args(&port, &ca, "PW"));
    assert_eq!(r.code, 3, "a wrong password: {r}");
    assert!(
        r.stderr.contains("cannot log in to localhost as alice"),
        "{r}"
    );
    assert!(r.stderr.contains("nothing was saved"), "{r}");
    assert_eq!(std::fs::read_to_string(&env.config).unwrap(), before);

    let r = env.run(&add_args(&port, "/nonexistent/ca.pem", "PW"));
    assert_eq!(r.code, 2, "a missing CA file: {r}");
    assert!(r.stderr.contains("/nonexistent/ca.pem"), "{r}");
    assert_eq!(std::fs::read_to_string(&env.config).unwrap(), before);

    let mut no_check = add_args(&port, &ca, "PW");
    no_check.push("--no-check");
    let r = env.run(&no_check);
    assert_eq!(r.code, 0, "--no-check saves without logging in: {r}");
    assert!(env.run(&["account", "remove", "work"]).code == 0);

    env.set_var("PW", srv.password("alice"));
    let r = env.run(&add_args(&port, &ca, "PW"));
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stderr.contains("logged in to localhost as alice"), "{r}");
    assert!(r.stderr.contains("folders"), "{r}");
    assert!(r.stdout.contains("added account `work`"), "{r}");
    assert_eq!(env.run(&["backup", "work"]).code, 0);
}

#[test]
fn account_add_guesses_the_provider_from_the_address() {
    let env = Env::new();
    env.set_var("PW", "x");
    let r = env.run(&[
        "account",
        "add",
        "ic",
        "--user",
        "emily@icloud.com",
        "--password-env",
        "PW",
        "--no-check",
    ]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stderr.contains("user name `emily`"), "{r}");
    let text = std::fs::read_to_string(&env.config).unwrap();
    assert!(text.contains("host = \"imap.mail.me.com\""), "{text}");
    assert!(text.contains("username = \"emily\""), "{text}");
    assert!(text.contains("provider = \"icloud\""), "{text}");

    let r = env.run(&[
        "account",
        "add",
        "o",
        "--user",
        "taro@outlook.com",
        "--password-env",
        "PW",
    ]);
    assert_eq!(r.code, 2, "Outlook refuses passwords: {r}");
    assert!(r.stderr.contains("OAuth2"), "{r}");

    let r = env.run(&[
        "account",
        "add",
        "x",
        "--user",
        "taro@example.org",
        "--password-env",
        "PW",
    ]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("--host HOST"), "{r}");

    let r = env.run(&[
        "account",
        "add",
        "d",
        "--provider",
        "docomo",
        "--user",
        "my-d-account-id",
        "--password-env",
        "PW",
        "--no-check",
    ]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stderr.contains("d ACCOUNT ID"), "{r}");
    assert!(
        r.stderr.contains("not confirmed"),
        "weak facts are said to be weak: {r}"
    );
}

#[test]
fn providers_lists_every_preset_and_shows_one() {
    let env = Env::new();
    let r = env.run(&["providers"]);
    assert_eq!(r.code, 0, "{r}");
    for id in [
        "gmail",
        "google-workspace",
        "icloud",
        "yahoo",
        "yahoo-japan",
        "outlook",
        "microsoft365",
        "docomo",
        "au",
        "softbank",
        "aol",
        "gmx",
        "fastmail",
        "zoho",
    ] {
        assert!(
            r.stdout.lines().any(|l| l.starts_with(&format!("{id} "))),
            "`{id}`: {r}"
        );
    }
    let r = env.run(&["providers", "taro@docomo.ne.jp"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("imap.spmode.ne.jp:993"), "{r}");
    assert!(r.stdout.contains("IMAP専用パスワード"), "{r}");
    assert!(r.stdout.contains("unconfirmed"), "{r}");
    assert_eq!(env.run(&["providers", "nope"]).code, 2);
}

#[test]
fn account_add_with_each_preset_writes_its_settings() {
    use mailkeep::config::providers::{self, LoginName};
    let env = Env::new();
    env.set_var("PW", "x");
    for (i, p) in providers::all().iter().enumerate() {
        let name = format!("a{i}");
        let address = format!("taro@{}", p.domains.first().unwrap_or(&"example.com"));
        let mut args = vec![
            "account",
            "add",
            &name,
            "--provider",
            p.id,
            "--user",
            &address,
            "--no-check",
        ];
        if p.auth == providers::Auth::OAuth2Only {
            args.extend(["--oauth2-token-command", "echo token"]);
        } else {
            args.extend(["--password-env", "PW"]);
        }
        let r = env.run(&args);
        assert_eq!(r.code, 0, "{}: {r}", p.id);
        let text = std::fs::read_to_string(&env.config).unwrap();
        let v: toml::Value = toml::from_str(&text).unwrap();
        let a = &v["accounts"][&name];
        assert_eq!(a["host"].as_str(), Some(p.host), "{}: {text}", p.id);
        assert_eq!(a["provider"].as_str(), Some(p.id), "{}", p.id);
        assert_eq!(a["tls"].as_str(), Some("implicit"), "{}", p.id);
        assert!(
            a.get("port")
                .is_none_or(|port| port.as_integer() == Some(p.port.into())),
            "{}: {text}",
            p.id
        );
        let want_user = match p.login {
            LoginName::LocalPart if !p.domains.is_empty() => "taro".to_string(),
            _ => address.clone(),
        };
        assert_eq!(a["username"].as_str(), Some(want_user.as_str()), "{}", p.id);
        if let LoginName::ProviderId(what) = p.login {
            assert!(r.stderr.contains(what), "{}: says which ID: {r}", p.id);
        }
        for w in p.weak {
            assert!(r.stderr.contains(w), "{}: weak fact said: {r}", p.id);
        }
        // And the account resolves to this preset again.
        let acct = mailkeep::config::Config::load(&env.config)
            .unwrap()
            .account(&name)
            .unwrap()
            .clone();
        assert_eq!(providers::for_account(&acct).unwrap().id, p.id);
        assert_eq!(providers::max_connections(&acct), p.max_connections);
    }
}

//! OAuth2 logins against Dovecot's oauth2 passdb, which asks a local
//! token-introspection endpoint run by the test (GUIDE §7): tokens from a
//! command, OAUTHBEARER and XOAUTH2, a refused (expired) token, the
//! endpoint down (`NO [UNAVAILABLE]`: retryable, not a wrong password), and
//! mailkeep's own device-code and loopback+PKCE sign-ins with refresh.

mod support;

use std::io::{BufRead, BufReader, Read, Write};

use support::{toml_str, Authority, Dovecot, DovecotOptions, Env, Fault, FaultProxy};

fn server(auth: &Authority) -> Dovecot {
    Dovecot::start(DovecotOptions {
        oauth2_introspection: Some(auth.url("/introspect")),
        ..Default::default()
    })
}

fn token_account(env: &Env, srv: &Dovecot, token: &str) {
    env.add_account_raw(
        "main",
        &format!(
            "host = \"localhost\"\nport = {}\nusername = \"alice\"\nca_file = {}\noauth2_token_command = \"echo {token}\"\n",
            srv.imaps_port(),
            toml_str(&srv.ca_file().display().to_string())
        ),
        None,
    );
}

#[test]
fn a_token_from_a_command_logs_in_with_oauthbearer_and_xoauth2() {
    let auth = Authority::start();
    auth.grant("good-token-1", "alice");
    let srv = server(&auth);
    let env = Env::new();
    token_account(&env, &srv, "good-token-1");
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(!r.stdout.contains("good-token-1") && !r.stderr.contains("good-token-1"));
    assert!(
        auth.log().iter().any(|l| l == "/introspect"),
        "Dovecot asked the endpoint"
    );

    // Without OAUTHBEARER on offer, XOAUTH2.
    let proxy = FaultProxy::start(
        srv.imap_port(),
        Fault::RemoveCapability("AUTH=OAUTHBEARER".into()),
    );
    let env = Env::new();
    env.add_account_raw(
        "x",
        &format!(
            "host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"alice\"\noauth2_token_command = \"echo good-token-1\"\n",
            proxy.port()
        ),
        None,
    );
    let r = env.run(&["backup", "x"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        proxy
            .commands()
            .iter()
            .any(|c| c.starts_with("AUTHENTICATE XOAUTH2")),
        "{:?}",
        proxy.commands()
    );
}

#[test]
fn a_refused_token_is_an_authentication_failure_with_a_hint_not_a_hang() {
    let auth = Authority::start();
    let srv = server(&auth);
    let env = Env::new();
    token_account(&env, &srv, "expired-token");
    let r = env.run_with_timeout(&["backup", "main"], std::time::Duration::from_secs(120));
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("refused the OAuth2 token"), "{r}");
    assert!(
        r.stderr.contains("invalid_token") || r.stderr.contains("401"),
        "the server's challenge: {r}"
    );
    assert!(r.stderr.contains("oauth2_token_command"), "{r}");
    assert!(!r.stderr.contains("expired-token"), "{r}");
}

#[test]
fn an_introspection_endpoint_that_is_down_is_retryable_not_a_wrong_password() {
    let mut auth = Authority::start();
    auth.grant("good-token-1", "alice");
    let srv = server(&auth);
    auth.shut_down();
    let env = Env::new();
    token_account(&env, &srv, "good-token-1");
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("UNAVAILABLE"), "{r}");
    assert!(r.stderr.contains("not a wrong password"), "{r}");
}

fn builtin_account(env: &Env, srv: &Dovecot, auth: &Authority, flow: &str) {
    let urls = match flow {
        "device" => format!("oauth2_device_url = \"{}\"\n", auth.url("/device")),
        _ => format!("oauth2_auth_url = \"{}\"\n", auth.url("/authorize")),
    };
    env.add_account_raw(
        "main",
        &format!(
            "host = \"localhost\"\nport = {}\nusername = \"alice\"\nca_file = {}\noauth2_client_id = \"test-client\"\noauth2_token_url = \"{}\"\n{urls}",
            srv.imaps_port(),
            toml_str(&srv.ca_file().display().to_string()),
            auth.url("/token"),
        ),
        None,
    );
}

/// Whether a keyring is usable here (the built-in flows keep tokens there).
fn keyring_usable(env: &Env) -> bool {
    let r = env.run(&["account", "login", "main"]);
    if r.stderr.contains("no system keyring is usable") {
        println!("skipped: no keyring here: {}", r.stderr);
        return false;
    }
    assert_eq!(r.code, 0, "{r}");
    for out in [&r.stdout, &r.stderr] {
        assert!(
            !out.contains("access-") && !out.contains("refresh-"),
            "the sign-in prints no token: {r}"
        );
    }
    true
}

#[test]
fn the_device_code_sign_in_keeps_a_refresh_token_and_refreshes_before_expiry() {
    let auth = Authority::start();
    auth.state.lock().unwrap().pending_polls = 2;
    // Tokens that expire within the refresh margin: every use refreshes.
    auth.state.lock().unwrap().expires_in = 60;
    let srv = server(&auth);
    let env = Env::new();
    builtin_account(&env, &srv, &auth, "device");
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 3, "not signed in yet: {r}");
    assert!(r.stderr.contains("mailkeep account login main"), "{r}");
    if !keyring_usable(&env) {
        return;
    }
    let polls = auth
        .log()
        .iter()
        .filter(|l| l.contains("device_code"))
        .count();
    assert_eq!(
        polls,
        3,
        "two pending answers, then the token: {:?}",
        auth.log()
    );
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        auth.log().iter().any(|l| l == "/token refresh_token"),
        "refreshed before use: {:?}",
        auth.log()
    );
    for out in [&r.stdout, &r.stderr] {
        assert!(
            !out.contains("access-") && !out.contains("refresh-"),
            "no token printed: {r}"
        );
    }
    // Nor by the commands that describe the account, nor in the config file.
    for args in [
        &["doctor", "main"][..],
        &["doctor", "main", "--json"],
        &["doctor"],
        &["account", "list"],
    ] {
        let r = env.run(args);
        assert_eq!(r.code, 0, "{args:?}: {r}");
        for out in [&r.stdout, &r.stderr] {
            assert!(
                !out.contains("access-") && !out.contains("refresh-"),
                "{args:?} prints no token: {r}"
            );
        }
    }
    let config = std::fs::read_to_string(&env.config).unwrap();
    assert!(!config.contains("refresh-"), "{config}");
    let _ = env.run(&["account", "remove", "main"]);
}

#[test]
fn the_loopback_sign_in_with_pkce_completes_when_the_browser_comes_back() {
    let auth = Authority::start();
    let srv = server(&auth);
    let env = Env::new();
    builtin_account(&env, &srv, &auth, "loopback");
    let mut child = env.spawn(&["account", "login", "main"]);
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut url = String::new();
    let mut seen = String::new();
    while url.is_empty() {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if let Some(u) = line.trim().strip_prefix(&auth.url("/authorize")) {
            url = u.to_string();
        }
    }
    assert!(!url.is_empty(), "the sign-in address is printed: {seen}");
    let q: std::collections::HashMap<String, String> = url
        .trim_start_matches('?')
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":").replace("%2F", "/")))
        .collect();
    assert_eq!(q["code_challenge_method"], "S256");
    auth.state.lock().unwrap().pkce = Some(("code-1".into(), q["code_challenge"].clone()));
    // The browser comes back to the loopback address with the code.
    let redirect = q["redirect_uri"]
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut s = std::net::TcpStream::connect(&redirect).unwrap();
    write!(
        s,
        "GET /?state={}&code=code-1 HTTP/1.1\r\nHost: {redirect}\r\n\r\n",
        q["state"]
    )
    .unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    assert!(page.contains("signed in"), "{page}");
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    if rest.contains("no system keyring is usable") {
        println!("skipped: no keyring here: {rest}");
        return;
    }
    assert!(status.success(), "{seen}{rest}");
    assert!(
        auth.log().iter().any(|l| l == "/token authorization_code"),
        "{:?}",
        auth.log()
    );
    let r = env.run(&["backup", "main"]);
    assert_eq!(r.code, 0, "{r}");
    let _ = env.run(&["account", "remove", "main"]);
}

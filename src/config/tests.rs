//! Tests of the config file: load, checks, warnings, save.

use super::*;
use std::os::unix::fs::PermissionsExt;

const SAMPLE: &str = r#"
# my accounts
[accounts.work]
host = "imap.example.com"
port = 993
tls = "implicit"
username = "taro@example.com"
password_env = "WORK_IMAP_PASSWORD"
ca_file = "/etc/ssl/private-ca.pem"
include = ["*"]
exclude = ["Trash", "Junk", "[Gmail]/Spam"]

[accounts.home]
host = "127.0.0.1"
tls = "none"
username = "taro"
password_command = "pass show mail/home"
"#;

fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
    let path = dir.join("config.toml");
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn load_err(text: &str) -> ConfigError {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), text, 0o600);
    match Config::load(&path) {
        Err(e) => e,
        // A broken account does not stop the file from loading: it stops
        // whatever uses that account.
        Ok(c) => {
            let name = c
                .broken
                .keys()
                .next()
                .expect("an account with an error")
                .clone();
            assert!(!c.accounts.contains_key(&name));
            c.account(&name).unwrap_err()
        }
    }
}

#[test]
fn loads_the_documented_form() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), SAMPLE, 0o600);
    let c = Config::load(&path).unwrap();
    assert!(c.exists());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let work = c.account("work").unwrap();
    assert_eq!(work.port, Some(993));
    assert_eq!(
        work.password_source(),
        PasswordSource::Env("WORK_IMAP_PASSWORD".into())
    );
    assert_eq!(work.exclude, ["Trash", "Junk", "[Gmail]/Spam"]);
    let home = c.account("home").unwrap();
    assert_eq!(home.tls, TlsMode::None);
    assert_eq!(
        home.password_source(),
        PasswordSource::Command("pass show mail/home".into())
    );
    let ep = home.endpoint();
    assert_eq!((ep.host.as_str(), ep.port), ("127.0.0.1", 143));
}

#[test]
fn missing_file_is_an_empty_config() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::load(&dir.path().join("nope.toml")).unwrap();
    assert!(!c.exists());
    assert!(c.accounts.is_empty());
    let err = c.account("work").unwrap_err();
    assert!(err.to_string().contains("has no accounts"), "{err}");
}

#[test]
fn default_port_follows_tls() {
    let mut a = AccountConfig::new("imap.example.com", "u");
    assert_eq!(a.endpoint().port, 993);
    a.tls = TlsMode::Starttls;
    assert_eq!(a.endpoint().port, 143);
    a.port = Some(1143);
    assert_eq!(a.endpoint().port, 1143);
    let dir = tempfile::tempdir().unwrap();
    let text = "[accounts.a]\nhost = \"h\"\nusername = \"u\"\ntls = \"starttls\"\n";
    let c = Config::load(&write(dir.path(), text, 0o600)).unwrap();
    assert_eq!(c.account("a").unwrap().endpoint().port, 143);
    assert_eq!(
        c.account("a").unwrap().password_source(),
        PasswordSource::Keyring
    );
}

#[test]
fn unknown_key_is_named() {
    let err = load_err("[accounts.work]\nhots = \"x\"\nhost = \"h\"\nusername = \"u\"\n");
    let msg = err.to_string();
    assert!(msg.contains("unknown key `hots`"), "{msg}");
    assert!(msg.contains("account `work`"), "{msg}");
    assert!(msg.contains("config.toml"), "{msg}");
    assert!(err.hint().unwrap().contains("`host`"));

    let err = load_err("verbose = true\n");
    assert!(err.to_string().contains("unknown key `verbose`"), "{err}");
}

#[test]
fn invalid_tls_and_port_are_errors() {
    let err = load_err("[accounts.a]\nhost = \"h\"\nusername = \"u\"\ntls = \"ssl\"\n");
    let msg = err.to_string();
    assert!(msg.contains("`tls`") && msg.contains("\"ssl\""), "{msg}");
    let err = load_err("[accounts.a]\nhost = \"h\"\nusername = \"u\"\nport = 70000\n");
    assert!(
        err.to_string()
            .contains("`port` must be between 1 and 65535, not 70000"),
        "{err}"
    );
    let err = load_err("[accounts.a]\nhost = \"h\"\nusername = \"u\"\nport = 0\n");
    assert!(err.to_string().contains("`port`"), "{err}");
    let err = load_err("[accounts.a]\nhost = \"h\"\nusername = \"u\"\nport = \"993\"\n");
    assert!(err.to_string().contains("must be an integer"), "{err}");
}

#[test]
fn tls_none_needs_a_loopback_host() {
    let err =
        load_err("[accounts.a]\nhost = \"imap.example.com\"\nusername = \"u\"\ntls = \"none\"\n");
    let msg = err.to_string();
    assert!(
        msg.contains("account `a`") && msg.contains("`tls`"),
        "{msg}"
    );
    assert!(msg.contains("imap.example.com"), "{msg}");
    assert!(err.hint().unwrap().contains("starttls"));
    for host in [
        "localhost",
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "[::1]",
        "LocalHost",
    ] {
        let text = format!("[accounts.a]\nhost = \"{host}\"\nusername = \"u\"\ntls = \"none\"\n");
        let dir = tempfile::tempdir().unwrap();
        Config::load(&write(dir.path(), &text, 0o600)).unwrap_or_else(|e| panic!("{host}: {e}"));
    }
    for host in ["128.0.0.1", "10.0.0.1", "localhost.example.com", "::2"] {
        let text = format!("[accounts.a]\nhost = \"{host}\"\nusername = \"u\"\ntls = \"none\"\n");
        load_err(&text);
    }
}

#[test]
fn syntax_error_has_a_line() {
    let err = load_err("[accounts.a]\nhost = \"h\"\nusername = \n");
    let msg = err.to_string();
    assert!(msg.contains("line 3"), "{msg}");
}

#[test]
fn missing_host_and_conflicting_sources() {
    let err = load_err("[accounts.a]\nusername = \"u\"\n");
    assert!(err.to_string().contains("`host` is missing"), "{err}");
    let err = load_err(
        "[accounts.a]\nhost = \"h\"\nusername = \"u\"\npassword_env = \"X\"\npassword_command = \"y\"\n",
    );
    assert!(
        err.to_string().contains("conflicts with `password_env`"),
        "{err}"
    );
    let err = load_err("[accounts.\"a.b\"]\nhost = \"h\"\nusername = \"u\"\n");
    assert!(err.to_string().contains("account `a.b`"), "{err}");
}

#[test]
fn plaintext_password_warns() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[accounts.a]\nhost = \"h\"\nusername = \"u\"\npassword = \"hunter2\"\n";
    let c = Config::load(&write(dir.path(), text, 0o600)).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("plain text"));
    assert!(!c.warnings[0].contains("hunter2"));
    assert_eq!(
        c.account("a").unwrap().password_source(),
        PasswordSource::Plain
    );
}

#[test]
fn readable_file_warns() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::load(&write(dir.path(), SAMPLE, 0o644)).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("0644"), "{}", c.warnings[0]);
    assert!(c.warnings[0].contains("chmod 600"), "{}", c.warnings[0]);
}

#[test]
fn save_round_trip_keeps_other_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), SAMPLE, 0o644);
    let mut c = Config::load(&path).unwrap();
    let mut new = AccountConfig::new("imap.gmail.com", "taro@gmail.com");
    new.exclude = vec!["[Gmail]/Spam".into(), "ゴミ箱".into()];
    c.add_account("gmail", new.clone()).unwrap();
    c.save().unwrap();

    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("password ="), "no password added:\n{text}");
    assert_eq!(
        text.matches("port = ").count(),
        1,
        "only the port the user set:\n{text}"
    );
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let again = Config::load(&path).unwrap();
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    assert_eq!(again.accounts, c.accounts);
    assert_eq!(again.account("gmail").unwrap(), &new);

    let mut again = again;
    let removed = again.remove_account("home").unwrap();
    assert_eq!(removed.host, "127.0.0.1");
    again.save().unwrap();
    let third = Config::load(&path).unwrap();
    assert_eq!(third.accounts.keys().collect::<Vec<_>>(), ["gmail", "work"]);
    // no temp files left behind
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["config.toml"]);
}

#[test]
fn save_creates_private_parent_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/config.toml");
    let mut c = Config::load(&path).unwrap();
    assert!(!c.exists());
    c.add_account("x", AccountConfig::new("h", "u")).unwrap();
    c.save().unwrap();
    assert!(c.exists());
    for d in [dir.path().join("a"), dir.path().join("a/b")] {
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn save_keeps_a_plaintext_password_the_user_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[accounts.a]\nhost = \"h\"\nusername = \"u\"\npassword = \"hunter2\"\n";
    let path = write(dir.path(), text, 0o600);
    let c = Config::load(&path).unwrap();
    c.save().unwrap();
    assert_eq!(Config::load(&path).unwrap().accounts, c.accounts);
}

#[test]
fn add_account_checks_name_and_duplicates() {
    let mut c = Config::empty(Path::new("/nonexistent/config.toml"));
    c.add_account("work-1_a", AccountConfig::new("h", "u"))
        .unwrap();
    let err = c
        .add_account("work-1_a", AccountConfig::new("h", "u"))
        .unwrap_err();
    assert!(matches!(err, ConfigError::DuplicateAccount { .. }), "{err}");
    for bad in ["", "a b", "a.b", "仕事", "a/b"] {
        let err = c
            .add_account(bad, AccountConfig::new("h", "u"))
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidName { .. }),
            "{bad}: {err}"
        );
    }
    let mut remote_plain = AccountConfig::new("imap.example.com", "u");
    remote_plain.tls = TlsMode::None;
    assert!(c.add_account("r", remote_plain).is_err());
    let err = c.account("nope").unwrap_err();
    assert!(
        err.to_string().contains("known accounts: `work-1_a`"),
        "{err}"
    );
    assert!(c.remove_account("nope").is_err());
}

#[test]
fn folder_selection() {
    let mut a = AccountConfig::new("h", "u");
    assert!(a.wants_folder("INBOX"));
    assert!(a.wants_folder("[Gmail]/Spam"));
    a.exclude = vec![
        "Trash".into(),
        "Junk".into(),
        "[Gmail]/Spam".into(),
        "ゴミ箱*".into(),
    ];
    assert!(!a.wants_folder("Trash"));
    assert!(a.wants_folder("Trash/Keep"));
    assert!(!a.wants_folder("[Gmail]/Spam"));
    assert!(a.wants_folder("G/Spam"));
    assert!(a.wants_folder("[Gmail]/All Mail"));
    assert!(!a.wants_folder("ゴミ箱"));
    assert!(!a.wants_folder("ゴミ箱/古い"));
    assert!(a.wants_folder("送信済み"));
    a.include = vec!["INBOX".into(), "仕事/*".into(), "[Gmail]/*".into()];
    assert!(a.wants_folder("INBOX"));
    assert!(a.wants_folder("仕事/2024"));
    assert!(!a.wants_folder("仕事"));
    assert!(!a.wants_folder("送信済み"));
    assert!(a.wants_folder("[Gmail]/Sent Mail"));
    assert!(!a.wants_folder("[Gmail]/Spam"), "exclude wins over include");
}

#[test]
fn wrong_types_name_the_key() {
    for (text, key) in [
        (
            "[accounts.a]\nhost = \"h\"\nusername = \"u\"\ninclude = \"*\"\n",
            "`include` must be an array of strings",
        ),
        (
            "[accounts.a]\nhost = \"h\"\nusername = \"u\"\nexclude = [1]\n",
            "`exclude` must be an array of strings",
        ),
        (
            "[accounts.a]\nhost = 3\nusername = \"u\"\n",
            "`host` must be a string, not an integer",
        ),
        (
            "[accounts.a]\nhost = \"h\"\nusername = \"u\"\nca_file = 1\n",
            "`ca_file` must be a string",
        ),
    ] {
        let msg = load_err(text).to_string();
        assert!(msg.contains("account `a`") && msg.contains(key), "{msg}");
    }
    let msg = load_err("[accounts]\na = 3\n").to_string();
    assert!(msg.contains("not an integer"), "{msg}");
}

#[test]
fn debug_output_never_shows_a_plaintext_password() {
    let mut acct = AccountConfig::new("imap.example.com", "taro@example.com");
    acct.password = Some("hunter2-plain".into());
    let shown = format!("{acct:?}");
    assert!(!shown.contains("hunter2-plain"), "{shown}");
    assert!(shown.contains("taro@example.com"), "{shown}");
}

//! Configuration: the config file (TOML) → accounts; default paths; credentials.
//! Uses: model (Endpoint, TlsMode, Secret). Nothing else of the crate.
//!
//! Error policy: every [`ConfigError`] names the file, the account and the key
//! it is about and says what is wrong with it; [`ConfigError::hint`] says what
//! to do. The CLI prints the hint on its own `hint:` line. Messages never
//! contain a password.
//!
//! The file form:
//!
//! ```toml
//! [accounts.work]
//! host = "imap.example.com"
//! port = 993                             # optional: 993 for implicit TLS, 143 otherwise
//! tls = "implicit"                       # "implicit" | "starttls" | "none" (loopback only)
//! username = "taro@example.com"
//! password_env = "WORK_IMAP_PASSWORD"    # or password_command = "…"; neither: keyring
//! ca_file = "/etc/ssl/private-ca.pem"    # optional
//! include = ["*"]                        # optional folder patterns, see `wants_folder`
//! exclude = ["Trash", "Junk", "[Gmail]/Spam"]
//! max_connections = 5                    # optional: at most this many at once
//! ```

pub mod credentials;
pub mod folders;
mod paths;
pub mod providers;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{CertPin, Endpoint, TlsMode};

pub use paths::{default_config_path, default_store_path};

/// The keys an account table may have, in the order `save` writes them.
const ACCOUNT_KEYS: &[&str] = &[
    "host",
    "port",
    "tls",
    "username",
    "password_env",
    "password_command",
    "password",
    "ca_file",
    "tls_fingerprint",
    "provider",
    "oauth2_token_command",
    "oauth2_client_id",
    "oauth2_client_secret",
    "oauth2_tenant",
    "oauth2_auth_url",
    "oauth2_token_url",
    "oauth2_device_url",
    "oauth2_scope",
    "include",
    "exclude",
    "max_connections",
];

/// The parsed config file.
///
/// `save` writes the file again from these values: other accounts are kept,
/// but comments and the layout of a hand-written file are lost (TOML is
/// re-serialized, not edited in place).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where the file was read from and where `save` writes it.
    pub path: PathBuf,
    pub accounts: BTreeMap<String, AccountConfig>,
    /// Accounts whose table has an error (a wrong key, a value of the wrong
    /// type, plain text to a remote host): each stops only what uses that
    /// account ([`Config::account`] returns the error); the others work.
    pub broken: BTreeMap<String, ConfigError>,
    /// Problems that do not stop us (plaintext password, a file others can read),
    /// for the CLI to show on stderr.
    pub warnings: Vec<String>,
}

/// One `[accounts.NAME]` table. Its `Debug` never shows a plaintext password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_command: Option<String>,
    /// Plaintext password: accepted, with a warning. Written back only when it
    /// was in the file (or set by the caller) — never added by mailkeep itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Trust exactly the certificate with this SHA-256 (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
    /// The provider preset the account was made from (`gmail`, `icloud`, …),
    /// for provider-specific hints; the settings above are what is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// OAuth2: a command that prints an access token (oama, mutt_oauth2.py, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_token_command: Option<String>,
    /// OAuth2 with mailkeep's own flows: the client ID you registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_client_id: Option<String>,
    /// Google "Desktop app" clients come with a secret (it is not secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_client_secret: Option<String>,
    /// Microsoft: the tenant (`common`, `consumers`, `organizations` or an id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_tenant: Option<String>,
    /// Endpoints and scope, when not the provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_auth_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_device_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_scope: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// At most this many connections to the account at once, whatever
    /// `--jobs` asks (providers limit them: Gmail 15 per account, shared
    /// with the phone and other mail apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u16>,
}

impl std::fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password_env", &self.password_env)
            .field("password_command", &self.password_command)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .field("tls_fingerprint", &self.tls_fingerprint)
            .field("provider", &self.provider)
            .field("oauth2_token_command", &self.oauth2_token_command)
            .field("oauth2_client_id", &self.oauth2_client_id)
            .field("include", &self.include)
            .field("exclude", &self.exclude)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// Where an account's password comes from, in the order they are looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// `password_env`: the name of an environment variable.
    Env(String),
    /// `password_command`: a shell command that prints the password.
    Command(String),
    /// `password`: plaintext in the file.
    Plain,
    /// None of the above: the system keyring.
    Keyring,
}

impl AccountConfig {
    /// How many connections to open for a command asking for `jobs`: at
    /// most the account's `max_connections`, else at most what its
    /// provider allows (Gmail 15, Microsoft 365 about 20).
    pub fn connections(&self, jobs: usize) -> usize {
        let max = self
            .max_connections
            .map(u32::from)
            .or_else(|| providers::max_connections(self))
            .map_or(usize::MAX, |n| n as usize);
        jobs.clamp(1, max.max(1))
    }

    /// A new account with the defaults: implicit TLS, default port, keyring
    /// password, all folders.
    pub fn new(host: impl Into<String>, username: impl Into<String>) -> AccountConfig {
        AccountConfig {
            host: host.into(),
            port: None,
            tls: TlsMode::Implicit,
            username: username.into(),
            password_env: None,
            password_command: None,
            password: None,
            ca_file: None,
            tls_fingerprint: None,
            provider: None,
            oauth2_token_command: None,
            oauth2_client_id: None,
            oauth2_client_secret: None,
            oauth2_tenant: None,
            oauth2_auth_url: None,
            oauth2_token_url: None,
            oauth2_device_url: None,
            oauth2_scope: None,
            include: Vec::new(),
            exclude: Vec::new(),
            max_connections: None,
        }
    }

    /// Whether the account logs in with an OAuth2 token rather than a password.
    pub fn uses_oauth2(&self) -> bool {
        self.oauth2_token_command.is_some() || self.oauth2_client_id.is_some()
    }

    /// Where to connect; the port defaults from the TLS mode (993 / 143).
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.host.clone(),
            port: self.port.unwrap_or_else(|| self.tls.default_port()),
            tls: self.tls,
            username: self.username.clone(),
            ca_file: self.ca_file.clone(),
            // Checked by `validate`; a bad one here is dropped (and fails to verify).
            tls_fingerprint: self
                .tls_fingerprint
                .as_deref()
                .and_then(|f| CertPin::parse(f).ok()),
        }
    }

    /// Whether a folder (its display name, `/` as the hierarchy separator) is
    /// backed up: it matches an `include` pattern (no patterns: all do) and no
    /// `exclude` pattern.
    ///
    /// A pattern matches the whole name. `*` matches any run of characters,
    /// the separator included (`Archive*` takes `Archive/2023`), `?` one
    /// character; everything else is literal — brackets too, so
    /// `[Gmail]/Spam` means that folder, not a character class. A pattern
    /// does not take a folder's children by itself: `Trash` leaves
    /// `Trash/Old` alone, `Trash*` excludes both. `INBOX` is matched without
    /// regard to case, as IMAP does.
    pub fn wants_folder(&self, display_name: &str) -> bool {
        let included = self.include.is_empty()
            || self
                .include
                .iter()
                .any(|p| folders::matches(p, display_name));
        included
            && !self
                .exclude
                .iter()
                .any(|p| folders::matches(p, display_name))
    }

    /// `password_env`, else `password_command`, else `password`, else the keyring.
    /// (`Config::load` refuses a file that sets more than one.)
    pub fn password_source(&self) -> PasswordSource {
        if let Some(var) = &self.password_env {
            PasswordSource::Env(var.clone())
        } else if let Some(cmd) = &self.password_command {
            PasswordSource::Command(cmd.clone())
        } else if self.password.is_some() {
            PasswordSource::Plain
        } else {
            PasswordSource::Keyring
        }
    }

    /// Checks the values `serde` cannot: port range, TLS on remote hosts,
    /// one password source, folder patterns.
    fn validate(&self, path: &Path, account: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, problem: String, hint: Option<&str>| ConfigError::InvalidValue {
            path: path.to_path_buf(),
            account: account.to_string(),
            key: key.to_string(),
            problem,
            hint: hint.map(str::to_string),
        };
        if self.host.trim().is_empty() {
            return Err(invalid("host", "is empty".into(), None));
        }
        if self
            .host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                "host",
                format!("`{}` contains spaces or control characters", self.host),
                None,
            ));
        }
        if self.username.is_empty() {
            return Err(invalid("username", "is empty".into(), None));
        }
        if self.port == Some(0) {
            return Err(invalid(
                "port",
                "must be between 1 and 65535, not 0".into(),
                Some("leave `port` out to use 993 (implicit TLS) or 143 (STARTTLS)"),
            ));
        }
        if self.tls == TlsMode::None && !is_loopback(&self.host) {
            return Err(invalid(
                "tls",
                format!(
                    "`none` is only allowed for loopback hosts, and `{}` is not one",
                    self.host
                ),
                Some("use `tls = \"implicit\"` (port 993) or `tls = \"starttls\"` (port 143)"),
            ));
        }
        let sources: Vec<&str> = [
            ("password_env", self.password_env.is_some()),
            ("password_command", self.password_command.is_some()),
            ("password", self.password.is_some()),
        ]
        .iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| *k)
        .collect();
        if sources.len() > 1 {
            return Err(invalid(
                sources[1],
                format!("conflicts with `{}`: set only one", sources[0]),
                Some("keep one of `password_env`, `password_command`, `password`; with none the keyring is used"),
            ));
        }
        if let Some(var) = &self.password_env {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(invalid(
                    "password_env",
                    format!("`{var}` is not a valid environment variable name"),
                    None,
                ));
            }
        }
        if self.max_connections == Some(0) {
            return Err(invalid(
                "max_connections",
                "is 0".into(),
                Some("give at least 1, or leave it out"),
            ));
        }
        if let Some(cmd) = &self.password_command {
            if cmd.trim().is_empty() {
                return Err(invalid("password_command", "is empty".into(), None));
            }
        }
        if let Some(f) = &self.tls_fingerprint {
            if let Err(problem) = CertPin::parse(f) {
                return Err(invalid(
                    "tls_fingerprint",
                    problem,
                    Some("copy the line `tls_fingerprint = \"sha256:…\"` that mailkeep printed, or `openssl x509 -noout -fingerprint -sha256 -in cert.pem` with `sha256:` in front"),
                ));
            }
        }
        if let Some(p) = &self.provider {
            if providers::preset(p).is_none() {
                return Err(invalid(
                    "provider",
                    format!("`{p}` is not a known provider"),
                    Some("`mailkeep providers` lists them; or leave `provider` out"),
                ));
            }
        }
        if self.oauth2_token_command.is_some() && self.oauth2_client_id.is_some() {
            return Err(invalid(
                "oauth2_client_id",
                "conflicts with `oauth2_token_command`: set only one".into(),
                Some("with `oauth2_token_command` your helper gets the token; with `oauth2_client_id` mailkeep does (`mailkeep account login NAME`)"),
            ));
        }
        if self.uses_oauth2() {
            if let Some(k) = [
                ("password_env", self.password_env.is_some()),
                ("password_command", self.password_command.is_some()),
                ("password", self.password.is_some()),
            ]
            .iter()
            .find(|(_, set)| *set)
            .map(|(k, _)| *k)
            {
                return Err(invalid(
                    k,
                    "conflicts with OAuth2 (`oauth2_token_command` or `oauth2_client_id`): an account logs in with one or the other".into(),
                    Some("remove the password setting, or the OAuth2 one"),
                ));
            }
        }
        for (key, patterns) in [("include", &self.include), ("exclude", &self.exclude)] {
            for p in patterns {
                if p.is_empty() {
                    return Err(invalid(key, "contains an empty pattern".into(), None));
                }
            }
        }
        Ok(())
    }
}

/// `localhost`, 127.0.0.0/8 or ::1 (with or without brackets).
fn is_loopback(host: &str) -> bool {
    let h = host.trim_end_matches('.');
    if h.eq_ignore_ascii_case("localhost") || h.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// An account name: `[A-Za-z0-9_-]+`.
fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What can go wrong with the config file or an account in it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("config file `{}`{}: {message}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Syntax {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("config file `{}`: unknown key `{key}`{}", path.display(), account.as_ref().map(|a| format!(" in account `{a}`")).unwrap_or_default())]
    UnknownKey {
        path: PathBuf,
        account: Option<String>,
        key: String,
    },
    #[error("config file `{}`: account `{account}`: {message}", path.display())]
    InvalidAccount {
        path: PathBuf,
        account: String,
        message: String,
    },
    #[error("config file `{}`: account `{account}`: `{key}` {problem}", path.display())]
    InvalidValue {
        path: PathBuf,
        account: String,
        key: String,
        problem: String,
        hint: Option<String>,
    },
    #[error("invalid account name `{name}`: use only letters, digits, `-` and `_`")]
    InvalidName { name: String },
    #[error("no account `{name}` in `{}`{}", path.display(), known_list(known))]
    UnknownAccount {
        path: PathBuf,
        name: String,
        known: Vec<String>,
    },
    #[error("account `{name}` already exists in `{}`", path.display())]
    DuplicateAccount { path: PathBuf, name: String },
    #[error("cannot rewrite config file `{}`: account `{account}` has an error and would be lost", path.display())]
    Unsaved {
        path: PathBuf,
        account: String,
        #[source]
        source: Box<ConfigError>,
    },
    #[error("cannot write config file `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (it has no accounts)".to_string()
    } else {
        let names: Vec<String> = known.iter().map(|n| format!("`{n}`")).collect();
        format!("; known accounts: {}", names.join(", "))
    }
}

impl Clone for ConfigError {
    fn clone(&self) -> ConfigError {
        self.again()
    }
}

/// Two errors are the same when they say the same.
impl PartialEq for ConfigError {
    fn eq(&self, other: &ConfigError) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for ConfigError {}

impl ConfigError {
    /// The same error once more (an account's error is kept, and given to
    /// each use of the account). Errors that carry an I/O error never
    /// concern one account; they are given as their text.
    pub fn again(&self) -> ConfigError {
        match self {
            ConfigError::UnknownKey { path, account, key } => ConfigError::UnknownKey {
                path: path.clone(),
                account: account.clone(),
                key: key.clone(),
            },
            ConfigError::InvalidAccount {
                path,
                account,
                message,
            } => ConfigError::InvalidAccount {
                path: path.clone(),
                account: account.clone(),
                message: message.clone(),
            },
            ConfigError::InvalidValue {
                path,
                account,
                key,
                problem,
                hint,
            } => ConfigError::InvalidValue {
                path: path.clone(),
                account: account.clone(),
                key: key.clone(),
                problem: problem.clone(),
                hint: hint.clone(),
            },
            ConfigError::Syntax {
                path,
                line,
                message,
            } => ConfigError::Syntax {
                path: path.clone(),
                line: *line,
                message: message.clone(),
            },
            other => ConfigError::Syntax {
                path: PathBuf::new(),
                line: None,
                message: other.to_string(),
            },
        }
    }

    /// What the user can do about it, for the CLI's `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Read { path, .. } => Some(format!(
                "check that `{}` is a readable file, or point MAILKEEP_CONFIG at another one",
                path.display()
            )),
            ConfigError::Syntax { .. } => Some(
                "the file must be TOML: `[accounts.NAME]` tables of `key = value` lines".into(),
            ),
            ConfigError::UnknownKey { account: None, .. } => {
                Some("the file holds only `[accounts.NAME]` tables".into())
            }
            ConfigError::UnknownKey { .. } => Some(format!(
                "an account may have: {}",
                ACCOUNT_KEYS
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            ConfigError::InvalidAccount { .. } => Some(
                "an account is a `[accounts.NAME]` table with at least `host` and `username`"
                    .into(),
            ),
            ConfigError::InvalidValue {
                hint,
                key,
                account,
                path,
                ..
            } => Some(hint.clone().unwrap_or_else(|| {
                format!(
                    "correct `{key}` in `[accounts.{account}]` of `{}`",
                    path.display()
                )
            })),
            ConfigError::InvalidName { .. } => Some("for example `work` or `gmail-old`".into()),
            ConfigError::UnknownAccount { path, .. } => Some(format!(
                "check the spelling, or add the account to `{}`",
                path.display()
            )),
            ConfigError::DuplicateAccount { .. } => {
                Some("choose another name, or remove the old account first".into())
            }
            ConfigError::Unsaved { account, path, .. } => Some(format!(
                "fix `[accounts.{account}]` in `{}` by hand first (or remove it), then run the same command again",
                path.display()
            )),
            ConfigError::Write { path, .. } => Some(format!(
                "check that the directory of `{}` is writable",
                path.display()
            )),
        }
    }
}

/// The top of the file: only `accounts`.
#[derive(Serialize)]
struct FileOut<'a> {
    accounts: &'a BTreeMap<String, AccountConfig>,
}

impl Config {
    /// An empty config that `save` would write to `path`.
    pub fn empty(path: &Path) -> Config {
        Config {
            path: path.to_path_buf(),
            accounts: BTreeMap::new(),
            broken: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// Reads and checks the file. A missing file is an empty config (then
    /// `exists()` is false); anything else wrong with it is an error.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut config = Config::empty(path);
        let text = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(config),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let text = String::from_utf8(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            line: None,
            message: format!("not UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
        })?;
        (config.accounts, config.broken) = parse(path, &text)?;

        if let Ok(meta) = fs::metadata(path) {
            let mode = meta.mode() & 0o777;
            if mode & 0o077 != 0 {
                config.warnings.push(format!(
                    "config file `{}` can be read by other users (mode {mode:04o}); run `chmod 600 {}`",
                    path.display(),
                    path.display()
                ));
            }
        }
        for (name, acct) in &config.accounts {
            if acct.password.is_some() {
                config.warnings.push(format!(
                    "account `{name}` in `{}` keeps its password in plain text (`password`); \
                     prefer `password_env`, `password_command` or the system keyring",
                    path.display()
                ));
            }
        }
        Ok(config)
    }

    /// Whether the file is there (false after loading a missing file, until `save`).
    pub fn exists(&self) -> bool {
        self.path.is_file()
    }

    /// The account named `name`; its own error when its table has one.
    pub fn account(&self, name: &str) -> Result<&AccountConfig, ConfigError> {
        if let Some(e) = self.broken.get(name) {
            return Err(e.again());
        }
        self.accounts
            .get(name)
            .ok_or_else(|| ConfigError::UnknownAccount {
                path: self.path.clone(),
                name: name.to_string(),
                known: self.names(),
            })
    }

    /// Every account of the file, broken ones too, in order.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .accounts
            .keys()
            .chain(self.broken.keys())
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Adds an account (checked as `load` would check it); the name must be
    /// new and made of `[A-Za-z0-9_-]`.
    pub fn add_account(&mut self, name: &str, acct: AccountConfig) -> Result<(), ConfigError> {
        if !valid_account_name(name) {
            return Err(ConfigError::InvalidName {
                name: name.to_string(),
            });
        }
        if self.accounts.contains_key(name) {
            return Err(ConfigError::DuplicateAccount {
                path: self.path.clone(),
                name: name.to_string(),
            });
        }
        acct.validate(&self.path, name)?;
        self.accounts.insert(name.to_string(), acct);
        Ok(())
    }

    pub fn remove_account(&mut self, name: &str) -> Result<AccountConfig, ConfigError> {
        self.account(name)?;
        Ok(self.accounts.remove(name).expect("checked above"))
    }

    /// Writes the file: all accounts, comments not kept.
    ///
    /// Order matters, so that a crash leaves either the old file or the new
    /// one, never a torn one: (1) create missing parent directories with mode
    /// 0700; (2) write a temporary file in the same directory, created 0600
    /// so no one else can read it even for a moment; (3) fsync it;
    /// (4) rename it over the file; (5) fsync the directory so the rename
    /// itself is durable. A symlinked config file is followed: its target is
    /// replaced, the link stays.
    pub fn save(&self) -> Result<(), ConfigError> {
        // Written again from what was understood, the file would lose a
        // broken account: it is fixed by hand first.
        if let Some((account, e)) = self.broken.iter().next() {
            return Err(ConfigError::Unsaved {
                path: self.path.clone(),
                account: account.clone(),
                source: Box::new(e.again()),
            });
        }
        let write_err = |source: io::Error| ConfigError::Write {
            path: self.path.clone(),
            source,
        };
        let text = toml::to_string(&FileOut {
            accounts: &self.accounts,
        })
        .map_err(|e| write_err(io::Error::other(e.to_string())))?;

        let target = match fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_symlink() => {
                fs::canonicalize(&self.path).map_err(write_err)?
            }
            _ => self.path.clone(),
        };
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(write_err)?;

        let file_name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.toml".into());
        let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            // An old temp file from a crashed run keeps its mode: force 0600.
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &target)?;
            fs::File::open(&dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(write_err)
    }
}

/// Accounts that parsed, and those that did not with their errors.
type Parsed = (
    BTreeMap<String, AccountConfig>,
    BTreeMap<String, ConfigError>,
);

/// Parses the text of a config file; `path` is for messages. An error in
/// the file as a whole fails it; an error in one account's table is kept
/// for that account.
fn parse(path: &Path, text: &str) -> Result<Parsed, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        line: e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
        message: e.message().trim().to_string(),
    })?;
    let mut accounts = BTreeMap::new();
    let mut broken = BTreeMap::new();
    for (key, value) in table {
        if key != "accounts" {
            return Err(ConfigError::UnknownKey {
                path: path.to_path_buf(),
                account: None,
                key,
            });
        }
        let toml::Value::Table(accts) = value else {
            return Err(ConfigError::Syntax {
                path: path.to_path_buf(),
                line: None,
                message: "`accounts` must be a table of `[accounts.NAME]` tables".into(),
            });
        };
        for (name, value) in accts {
            match parse_account(path, &name, value) {
                Ok(a) => {
                    accounts.insert(name, a);
                }
                Err(e) => {
                    broken.insert(name, e);
                }
            }
        }
    }
    Ok((accounts, broken))
}

fn parse_account(
    path: &Path,
    name: &str,
    value: toml::Value,
) -> Result<AccountConfig, ConfigError> {
    let bad = |message: String| ConfigError::InvalidAccount {
        path: path.to_path_buf(),
        account: name.to_string(),
        message,
    };
    if !valid_account_name(name) {
        return Err(bad(
            "the name may hold only letters, digits, `-` and `_`".into()
        ));
    }
    let toml::Value::Table(t) = value else {
        return Err(bad(format!(
            "must be a table (`[accounts.{name}]`), not {}",
            with_article(value.type_str())
        )));
    };
    // Look at the keys ourselves first, so that the error names the account
    // and the key, rather than relying on serde's wording.
    if let Some(key) = t.keys().find(|k| !ACCOUNT_KEYS.contains(&k.as_str())) {
        return Err(ConfigError::UnknownKey {
            path: path.to_path_buf(),
            account: Some(name.to_string()),
            key: key.clone(),
        });
    }
    let invalid = |key: &str, problem: String, hint: Option<String>| ConfigError::InvalidValue {
        path: path.to_path_buf(),
        account: name.to_string(),
        key: key.to_string(),
        problem,
        hint,
    };
    for (key, v) in &t {
        let ok = match key.as_str() {
            "port" | "max_connections" => true, // checked below, with its range
            "include" | "exclude" => v
                .as_array()
                .is_some_and(|a| a.iter().all(toml::Value::is_str)),
            _ => v.is_str(),
        };
        if !ok {
            let want = if matches!(key.as_str(), "include" | "exclude") {
                "an array of strings"
            } else {
                "a string"
            };
            let example = if matches!(key.as_str(), "include" | "exclude") {
                format!("`{key} = [\"INBOX\", \"Sent*\"]`")
            } else {
                format!("`{key} = \"{}\"`", v.to_string().trim_matches('"'))
            };
            return Err(invalid(
                key,
                format!("must be {want}, not {}", with_article(v.type_str())),
                Some(format!("write it in quotes, e.g. {example}")),
            ));
        }
    }
    if let Some(v) = t.get("port") {
        match v.as_integer() {
            Some(p) if (1..=65535).contains(&p) => {}
            Some(p) => {
                return Err(invalid(
                    "port",
                    format!("must be between 1 and 65535, not {p}"),
                    Some("leave `port` out to use 993 (implicit TLS) or 143 (STARTTLS)".into()),
                ))
            }
            None => {
                return Err(invalid(
                    "port",
                    format!("must be an integer, not {}", with_article(v.type_str())),
                    Some("write it without quotes, e.g. `port = 993`".into()),
                ))
            }
        }
    }
    if let Some(v) = t.get("max_connections") {
        match v.as_integer() {
            Some(n) if (1..=1000).contains(&n) => {}
            _ => {
                return Err(invalid(
                    "max_connections",
                    format!("must be a whole number from 1 to 1000, not {v}"),
                    Some("e.g. `max_connections = 5`; leave it out to use what --jobs asks".into()),
                ))
            }
        }
    }
    if let Some(v) = t.get("tls") {
        if !matches!(v.as_str(), Some("implicit" | "starttls" | "none")) {
            return Err(invalid(
                "tls",
                format!("must be \"implicit\", \"starttls\" or \"none\", not {v}"),
                None,
            ));
        }
    }
    for key in ["host", "username"] {
        if !t.contains_key(key) {
            return Err(bad(format!("`{key}` is missing")));
        }
    }
    let acct: AccountConfig = toml::Value::Table(t)
        .try_into()
        .map_err(|e: toml::de::Error| bad(e.message().trim().to_string()))?;
    acct.validate(path, name)?;
    Ok(acct)
}

/// "an integer", "a string": for messages about TOML types.
fn with_article(type_str: &str) -> String {
    let an = type_str.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {type_str}", if an { "an" } else { "a" })
}

#[cfg(test)]
mod tests;

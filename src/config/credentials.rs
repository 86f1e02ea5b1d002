//! Credentials: an account's password from an environment variable, a command,
//! the config file or the system keyring. Uses: model (Secret), config.
//!
//! Error policy: messages name the account and the source (variable, command,
//! keyring entry), never the secret itself; a command's stderr is quoted with
//! any copy of the secret blanked out. [`CredentialError::hint`] says what to do.
//!
//! The keyring is keyring-core with the Secret Service store when a session
//! D-Bus answers, else the kernel keyutils store. Both calls block (D-Bus
//! round trips): async callers use `spawn_blocking`. Entries are service
//! `mailkeep`, user `<account>:<username>`.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use keyring_core::Entry;

use super::{AccountConfig, PasswordSource};
use crate::model::Secret;

/// The keyring service name of every mailkeep entry.
pub const KEYRING_SERVICE: &str = "mailkeep";

/// How much of a failing command's stderr goes into the message.
const STDERR_LIMIT: usize = 2000;

/// Why an account's password could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("account `{account}`: environment variable `{var}` is not set")]
    EnvUnset { account: String, var: String },
    #[error("account `{account}`: environment variable `{var}` is empty")]
    EnvEmpty { account: String, var: String },
    #[error("account `{account}`: environment variable `{var}` is not valid UTF-8")]
    EnvNotUnicode { account: String, var: String },
    #[error("account `{account}`: cannot run password command `{command}`")]
    CommandSpawn {
        account: String,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("account `{account}`: password command `{command}` failed ({status}): {stderr}")]
    CommandFailed {
        account: String,
        command: String,
        status: String,
        /// The command's stderr, trimmed, shortened, the secret blanked out.
        stderr: String,
    },
    #[error("account `{account}`: password command `{command}` printed nothing on its first line")]
    CommandEmpty { account: String, command: String },
    #[error(
        "account `{account}`: password command `{command}` printed something that is not UTF-8"
    )]
    CommandNotUnicode { account: String, command: String },
    #[error("account `{account}`: no system keyring is usable here ({reason})")]
    NoKeyringBackend { account: String, reason: String },
    #[error("account `{account}`: no password for `{username}` in the {backend}")]
    KeyringNoEntry {
        account: String,
        username: String,
        backend: &'static str,
    },
    #[error("account `{account}`: the password in the {backend} is not UTF-8")]
    KeyringNotUnicode {
        account: String,
        backend: &'static str,
    },
    #[error("account `{account}`: the {backend} failed")]
    Keyring {
        account: String,
        backend: &'static str,
        #[source]
        source: keyring_core::Error,
    },
    #[error("account `{account}`: the {backend} did not give back the password just stored")]
    KeyringReadBack {
        account: String,
        backend: &'static str,
    },
}

impl CredentialError {
    /// What the user can do about it, for the CLI's `hint:` line.
    pub fn hint(&self) -> Option<String> {
        let fallback = "set `password_env = \"VAR\"` (and export VAR) or \
                        `password_command = \"…\"` for the account in the config file";
        Some(match self {
            CredentialError::EnvUnset { var, .. } | CredentialError::EnvEmpty { var, .. } => {
                format!("export {var}=… before running mailkeep, or change `password_env`")
            }
            CredentialError::EnvNotUnicode { var, .. } => {
                format!("the password in {var} must be UTF-8 text")
            }
            CredentialError::CommandSpawn { .. } => {
                "the command is run with `sh -c`; check that `sh` is on PATH".into()
            }
            CredentialError::CommandFailed { .. } | CredentialError::CommandEmpty { .. } => {
                "run the command yourself: it must print the password on its first line and exit 0"
                    .into()
            }
            CredentialError::CommandNotUnicode { .. } => {
                "the command must print the password as UTF-8 text".into()
            }
            CredentialError::NoKeyringBackend { .. } => {
                format!("without a Secret Service (D-Bus) or kernel keyring, {fallback}")
            }
            CredentialError::KeyringNoEntry { .. } => format!(
                "store the password in the keyring first (mailkeep asks for it when the account \
                 is added), or {fallback}"
            ),
            CredentialError::KeyringNotUnicode { .. } => {
                "store the password again, or use `password_env` / `password_command`".into()
            }
            CredentialError::Keyring { .. } | CredentialError::KeyringReadBack { .. } => {
                format!("if the keyring is locked, unlock it; or {fallback}")
            }
        })
    }
}

/// The account's password, from wherever the config says.
pub fn resolve(account_name: &str, acct: &AccountConfig) -> Result<Secret, CredentialError> {
    match acct.password_source() {
        PasswordSource::Env(var) => from_env(account_name, &var),
        PasswordSource::Command(cmd) => from_command(account_name, &cmd),
        PasswordSource::Plain => Ok(Secret::new(acct.password.clone().unwrap_or_default())),
        PasswordSource::Keyring => get_keyring(account_name, &acct.username),
    }
}

fn from_env(account: &str, var: &str) -> Result<Secret, CredentialError> {
    let err_ctx = || (account.to_string(), var.to_string());
    match std::env::var(var) {
        Ok(v) if v.is_empty() => {
            let (account, var) = err_ctx();
            Err(CredentialError::EnvEmpty { account, var })
        }
        Ok(v) => Ok(Secret::new(v)),
        Err(std::env::VarError::NotPresent) => {
            let (account, var) = err_ctx();
            Err(CredentialError::EnvUnset { account, var })
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            let (account, var) = err_ctx();
            Err(CredentialError::EnvNotUnicode { account, var })
        }
    }
}

/// Runs `sh -c COMMAND` with stdin from /dev/null; the password is the first
/// line of stdout without its line ending. On a non-zero exit the error
/// carries stderr — never stdout, which may hold the password.
pub fn from_command(account: &str, command: &str) -> Result<Secret, CredentialError> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| CredentialError::CommandSpawn {
            account: account.to_string(),
            command: command.to_string(),
            source,
        })?;
    let first_line = {
        let end = out
            .stdout
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(out.stdout.len());
        let line = &out.stdout[..end];
        line.strip_suffix(b"\r").unwrap_or(line).to_vec()
    };
    if !out.status.success() {
        let status = match (out.status.code(), out.status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => "abnormal exit".to_string(),
        };
        return Err(CredentialError::CommandFailed {
            account: account.to_string(),
            command: command.to_string(),
            status,
            stderr: scrub_stderr(&out.stderr, &first_line),
        });
    }
    if first_line.is_empty() {
        return Err(CredentialError::CommandEmpty {
            account: account.to_string(),
            command: command.to_string(),
        });
    }
    String::from_utf8(first_line)
        .map(Secret::new)
        .map_err(|_| CredentialError::CommandNotUnicode {
            account: account.to_string(),
            command: command.to_string(),
        })
}

/// stderr for a message: lossy UTF-8, trimmed, any copy of what the command
/// printed on stdout blanked out, at most `STDERR_LIMIT` characters.
fn scrub_stderr(stderr: &[u8], maybe_secret: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(stderr).trim().to_string();
    if let Ok(secret) = std::str::from_utf8(maybe_secret) {
        if !secret.is_empty() {
            text = text.replace(secret, "***");
        }
    }
    if text.is_empty() {
        return "nothing on stderr".to_string();
    }
    if text.chars().count() > STDERR_LIMIT {
        text = text.chars().take(STDERR_LIMIT).collect::<String>() + " […]";
    }
    text
}

/// Which keyring mailkeep uses on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyringBackend {
    /// The desktop keyring (GNOME Keyring, KWallet, KeePassXC) over D-Bus.
    SecretService,
    /// The kernel's key retention service: kept in memory, lost at reboot.
    KernelKeyutils,
}

impl KeyringBackend {
    pub fn name(self) -> &'static str {
        match self {
            KeyringBackend::SecretService => "Secret Service keyring",
            KeyringBackend::KernelKeyutils => "kernel keyring",
        }
    }

    /// False for the kernel keyring: the CLI should warn that the password
    /// must be stored again after a reboot.
    pub fn survives_reboot(self) -> bool {
        self == KeyringBackend::SecretService
    }
}

/// Chooses the keyring once per process and makes it keyring-core's default
/// store: the Secret Service when a session bus is there and answers, else
/// the kernel keyring if the kernel lets us use it (containers often don't).
pub fn keyring_backend() -> Result<KeyringBackend, String> {
    static CHOICE: OnceLock<Result<KeyringBackend, String>> = OnceLock::new();
    CHOICE.get_or_init(choose_backend).clone()
}

fn choose_backend() -> Result<KeyringBackend, String> {
    let mut reasons = Vec::new();
    if session_bus_configured() {
        match zbus_secret_service_keyring_store::Store::new() {
            Ok(store) => {
                keyring_core::set_default_store(store);
                return Ok(KeyringBackend::SecretService);
            }
            Err(e) => reasons.push(format!("Secret Service: {e}")),
        }
    } else {
        reasons.push("Secret Service: no session D-Bus (DBUS_SESSION_BUS_ADDRESS unset)".into());
    }
    match probe_keyutils() {
        Ok(store) => {
            keyring_core::set_default_store(store);
            Ok(KeyringBackend::KernelKeyutils)
        }
        Err(e) => {
            reasons.push(format!("kernel keyring: {e}"));
            Err(reasons.join("; "))
        }
    }
}

fn session_bus_configured() -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty()) {
        return true;
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(|d| PathBuf::from(d).join("bus").exists())
        .unwrap_or(false)
}

/// Builds the keyutils store and looks up an entry that does not exist: "no
/// entry" means the kernel keyring works; anything else means it does not.
fn probe_keyutils() -> Result<Arc<keyring_core::CredentialStore>, keyring_core::Error> {
    let store: Arc<keyring_core::CredentialStore> = linux_keyutils_keyring_store::Store::new()?;
    let probe = store.build(KEYRING_SERVICE, "probe:mailkeep-keyring-probe", None)?;
    match probe.get_password() {
        Ok(_) | Err(keyring_core::Error::NoEntry) => Ok(store),
        Err(e) => Err(e),
    }
}

fn entry(account: &str, username: &str) -> Result<(Entry, &'static str), CredentialError> {
    let backend = keyring_backend().map_err(|reason| CredentialError::NoKeyringBackend {
        account: account.to_string(),
        reason,
    })?;
    let entry = Entry::new(KEYRING_SERVICE, &format!("{account}:{username}"))
        .map_err(|e| keyring_error(account, backend.name(), e))?;
    Ok((entry, backend.name()))
}

fn keyring_error(account: &str, backend: &'static str, e: keyring_core::Error) -> CredentialError {
    match e {
        keyring_core::Error::NoDefaultStore => CredentialError::NoKeyringBackend {
            account: account.to_string(),
            reason: "no keyring store was set up".into(),
        },
        // The bytes may be the password: drop them, keep no source.
        keyring_core::Error::BadEncoding(_) | keyring_core::Error::BadDataFormat(..) => {
            CredentialError::KeyringNotUnicode {
                account: account.to_string(),
                backend,
            }
        }
        source => CredentialError::Keyring {
            account: account.to_string(),
            backend,
            source,
        },
    }
}

pub fn get_keyring(account: &str, username: &str) -> Result<Secret, CredentialError> {
    let (entry, backend) = entry(account, username)?;
    match entry.get_password() {
        Ok(p) => Ok(Secret::new(p)),
        Err(keyring_core::Error::NoEntry) => Err(CredentialError::KeyringNoEntry {
            account: account.to_string(),
            username: username.to_string(),
            backend,
        }),
        Err(e) => Err(keyring_error(account, backend, e)),
    }
}

/// Stores the password in the keyring, then reads it back to be sure.
pub fn set_keyring(
    account_name: &str,
    username: &str,
    secret: &Secret,
) -> Result<(), CredentialError> {
    let (entry, backend) = entry(account_name, username)?;
    entry
        .set_password(secret.expose())
        .map_err(|e| keyring_error(account_name, backend, e))?;
    match entry.get_password() {
        Ok(p) if p == secret.expose() => Ok(()),
        Ok(_) => Err(CredentialError::KeyringReadBack {
            account: account_name.to_string(),
            backend,
        }),
        Err(e) => Err(keyring_error(account_name, backend, e)),
    }
}

/// Removes the password from the keyring; one that is not there is fine.
pub fn delete_keyring(account_name: &str, username: &str) -> Result<(), CredentialError> {
    let (entry, backend) = entry(account_name, username)?;
    match entry.delete_credential() {
        Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
        Err(e) => Err(keyring_error(account_name, backend, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_command(cmd: &str) -> AccountConfig {
        let mut a = AccountConfig::new("imap.example.com", "taro@example.com");
        a.password_command = Some(cmd.to_string());
        a
    }

    fn with_env(var: &str) -> AccountConfig {
        let mut a = AccountConfig::new("imap.example.com", "taro@example.com");
        a.password_env = Some(var.to_string());
        a
    }

    #[test]
    fn env_variable_is_read() {
        // PATH is set in any test environment; a made-up name is not.
        let secret = resolve("work", &with_env("PATH")).unwrap();
        assert_eq!(secret.expose(), std::env::var("PATH").unwrap());
        let err = resolve("work", &with_env("MAILKEEP_TEST_SURELY_UNSET_4711")).unwrap_err();
        assert!(matches!(err, CredentialError::EnvUnset { .. }));
        let msg = err.to_string();
        assert!(msg.contains("`MAILKEEP_TEST_SURELY_UNSET_4711`"), "{msg}");
        assert!(msg.contains("`work`"), "{msg}");
        assert!(err
            .hint()
            .unwrap()
            .contains("export MAILKEEP_TEST_SURELY_UNSET_4711"));
    }

    #[test]
    fn command_first_line_without_newline() {
        let s = resolve("w", &with_command("printf 'hunter2\\nsecond line\\n'")).unwrap();
        assert_eq!(s.expose(), "hunter2");
        let s = resolve("w", &with_command("printf 'pa ss \\r\\n'")).unwrap();
        assert_eq!(s.expose(), "pa ss ");
        let s = resolve("w", &with_command("printf 'no-newline'")).unwrap();
        assert_eq!(s.expose(), "no-newline");
        // stdin is /dev/null: a command that reads it gets EOF, not a hang.
        let s = resolve("w", &with_command("cat; echo fromcat")).unwrap();
        assert_eq!(s.expose(), "fromcat");
    }

    #[test]
    fn command_failure_shows_stderr_not_stdout() {
        let cmd = "echo s3cret-value; echo 'gpg: decryption failed' >&2; exit 2";
        let err = resolve("work", &with_command(cmd)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("gpg: decryption failed"), "{msg}");
        assert!(msg.contains("exit code 2"), "{msg}");
        assert!(msg.contains("`work`"), "{msg}");
        // the secret is in the command text here only; check the rest of the message
        let rest = msg.replace(cmd, "");
        assert!(!rest.contains("s3cret-value"), "{msg}");
        assert!(err.hint().is_some());
    }

    #[test]
    fn command_stderr_is_scrubbed_of_the_secret() {
        let err = resolve(
            "w",
            &with_command("printf 'topsecret\\n'; echo 'bad: topsecret' >&2; false"),
        )
        .unwrap_err();
        let CredentialError::CommandFailed { stderr, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(stderr, "bad: ***");
    }

    #[test]
    fn command_empty_output_is_an_error() {
        let err = resolve("w", &with_command("true")).unwrap_err();
        assert!(
            matches!(err, CredentialError::CommandEmpty { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn plain_password_is_used() {
        let mut a = AccountConfig::new("h", "u");
        a.password = Some("plain".into());
        assert_eq!(resolve("w", &a).unwrap().expose(), "plain");
    }

    /// The keyring works here (round trip) or says that none is usable and
    /// points to the alternatives; both are honest outcomes on a test box.
    #[test]
    fn keyring_round_trip_or_no_backend() {
        let account = format!("test-{}", std::process::id());
        let user = "taro@example.com";
        let acct = AccountConfig::new("imap.example.com", user);
        let secret = Secret::new("correct horse battery staple");
        match set_keyring(&account, user, &secret) {
            Ok(()) => {
                let backend = keyring_backend().expect("set_keyring worked");
                eprintln!("keyring backend: {}", backend.name());
                assert_eq!(resolve(&account, &acct).unwrap(), secret);
                delete_keyring(&account, user).unwrap();
                let err = resolve(&account, &acct).unwrap_err();
                assert!(
                    matches!(err, CredentialError::KeyringNoEntry { .. }),
                    "{err:?}"
                );
                assert!(!err.to_string().contains(secret.expose()));
                // deleting again is fine
                delete_keyring(&account, user).unwrap();
            }
            Err(err @ CredentialError::NoKeyringBackend { .. }) => {
                eprintln!("no keyring backend here: {err}");
                let hint = err.hint().unwrap();
                assert!(hint.contains("password_env"), "{hint}");
                assert!(hint.contains("password_command"), "{hint}");
                assert!(!err.to_string().contains(secret.expose()));
                let again = resolve(&account, &acct).unwrap_err();
                assert!(matches!(again, CredentialError::NoKeyringBackend { .. }));
            }
            Err(other) => panic!("unexpected keyring error: {other} ({other:?})"),
        }
    }

    #[test]
    fn no_backend_message_points_to_alternatives() {
        let err = CredentialError::NoKeyringBackend {
            account: "work".into(),
            reason: "Secret Service: no session D-Bus; kernel keyring: not permitted".into(),
        };
        assert!(err.to_string().contains("no system keyring is usable"));
        let hint = err.hint().unwrap();
        assert!(hint.contains("password_env") && hint.contains("password_command"));
    }
}

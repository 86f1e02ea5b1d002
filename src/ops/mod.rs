//! One entry point per command. Uses: sync, imap, store, index, formats,
//! config, model. Never prints: results are returned, progress goes through
//! [`crate::sync::exec::Progress`].
//!
//! Error policy: an [`OpError`] says what failed on what; its [`OpError::kind`]
//! decides the exit code and its [`OpError::hint`] what the user can do.
//! Whether retrying can help is the IMAP layer's call (`retryable`).

pub mod archive;
pub mod backup;
pub mod check;
pub mod doctor;
pub mod export;
mod hints;
pub mod import;
pub mod interrupt;
pub mod migrate;
pub mod quota;
pub mod restore;
pub mod search;
pub mod status;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::credentials::{self, CredentialError};
use crate::config::providers::{self, Preset};
use crate::config::{AccountConfig, ConfigError};
use crate::imap::{ConnectOptions, Connection, ErrorKind, ImapError};
use crate::model::Credential;
use crate::store::StoreError;
use crate::sync::exec::SyncError;

/// What kind of failure, for the exit code (README "Exit codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Some folders failed; the rest were done.
    Partial,
    /// Bad command line or configuration.
    Usage,
    Auth,
    /// DNS, TCP, TLS, timeouts, dropped connections.
    Network,
    Store,
    /// Another run holds the store's lock.
    Locked,
}

impl FailureKind {
    pub fn exit_code(self) -> i32 {
        match self {
            FailureKind::Partial => 1,
            FailureKind::Usage => 2,
            FailureKind::Auth => 3,
            FailureKind::Network => 4,
            FailureKind::Store => 5,
            FailureKind::Locked => 6,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot get the password of account `{account}`")]
    Credential {
        account: String,
        #[source]
        source: CredentialError,
    },
    #[error(transparent)]
    Imap(#[from] ImapError),
    /// A login the server refused (not a temporary failure), with the
    /// account and its provider preset for a hint that fits.
    #[error("{source}")]
    Login {
        account: String,
        provider: Option<&'static Preset>,
        #[source]
        source: Box<ImapError>,
    },
    #[error("cannot get an OAuth2 token for account `{account}`")]
    Token {
        account: String,
        #[source]
        source: Box<crate::oauth::OAuthError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    #[error("cannot write to `{path}`")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl OpError {
    pub fn usage(message: impl Into<String>, hint: Option<&str>) -> OpError {
        OpError::Usage {
            message: message.into(),
            hint: hint.map(String::from),
        }
    }

    pub fn kind(&self) -> FailureKind {
        match self {
            OpError::Config(_) | OpError::Usage { .. } => FailureKind::Usage,
            OpError::Credential { .. } | OpError::Login { .. } => FailureKind::Auth,
            OpError::Token { source, .. } => match source.kind() {
                crate::oauth::OAuthErrorKind::Config => FailureKind::Usage,
                crate::oauth::OAuthErrorKind::Network => FailureKind::Network,
                crate::oauth::OAuthErrorKind::Auth => FailureKind::Auth,
            },
            OpError::Imap(e) => imap_kind(e),
            OpError::Sync(SyncError::Imap(e)) => imap_kind(e),
            OpError::Store(StoreError::Locked(_))
            | OpError::Sync(SyncError::Store(StoreError::Locked(_))) => FailureKind::Locked,
            OpError::Store(_) | OpError::Index(_) | OpError::Sync(_) | OpError::Output { .. } => {
                FailureKind::Store
            }
        }
    }

    /// The store's index file is damaged, or missing beside its packs.
    pub fn index_damaged(&self) -> bool {
        match self {
            OpError::Store(e) | OpError::Sync(SyncError::Store(e)) => {
                e.index_damaged() || matches!(e, StoreError::NoIndex { .. })
            }
            OpError::Index(e) | OpError::Sync(SyncError::Index(e)) => e.is_damaged(),
            _ => false,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        if self.index_damaged() {
            return Some(
                "the index is a cache of the packs, which hold your mail: `mailkeep repair` \
                 builds a new one from them (and keeps the damaged file aside)"
                    .into(),
            );
        }
        match self {
            OpError::Config(e) => e.hint(),
            OpError::Usage { hint, .. } => hint.clone(),
            OpError::Credential { account, source } => match source {
                CredentialError::KeyringNoEntry { .. } | CredentialError::NoKeyringBackend { .. } => {
                    Some(format!(
                        "set `password_env` or `password_command` for account `{account}` in the config file, \
                         or store the password with `mailkeep account set-password {account}`"
                    ))
                }
                other => other.hint(),
            },
            OpError::Login {
                account,
                provider,
                source,
            } => hints::login_hint(account, *provider, source),
            OpError::Token { account, source } => source.hint(account),
            OpError::Imap(e) | OpError::Sync(SyncError::Imap(e)) => hints::imap_hint(e),
            OpError::Store(StoreError::Locked(_)) | OpError::Sync(SyncError::Store(StoreError::Locked(_))) => {
                Some("wait for the other run to finish; if none is running, the lock is released when its process ends".into())
            }
            OpError::Store(StoreError::NotADirectory(_)) => {
                Some("pass `--store DIR` with a directory (it is created if missing)".into())
            }
            OpError::Store(StoreError::Missing(_)) => Some(
                "run `mailkeep backup ACCOUNT` to create it, or pass `--store DIR` where your store is".into(),
            ),
            OpError::Store(StoreError::Io { path, source })
            | OpError::Sync(SyncError::Store(StoreError::Io { path, source })) => {
                Some(io_hint(path, source, "the store"))
            }
            OpError::Store(StoreError::Unwritable { path, .. }) => Some(format!(
                "run mailkeep as the user who owns `{}` (`ls -ld {}` says who), or let this user write into it",
                path.display(),
                path.display()
            )),
            OpError::Output { path, source } => Some(io_hint(path, source, "the output")),
            OpError::Store(StoreError::Corrupt { .. }) => Some(
                "run `mailkeep verify` to see every damaged message; the next `mailkeep backup` \
                 fetches again what is still on the server"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// What to do about a file that could not be read or written.
fn io_hint(path: &std::path::Path, e: &std::io::Error, what: &str) -> String {
    use std::io::ErrorKind as K;
    let p = path.display();
    match e.kind() {
        K::PermissionDenied => format!(
            "you may not read or write `{p}`: check its owner and mode (and those of the \
             directories above it), or run mailkeep as the user who owns {what}"
        ),
        K::StorageFull | K::QuotaExceeded => format!(
            "the disk of `{p}` is full: free some space and run the same command again (nothing is lost)"
        ),
        K::ReadOnlyFilesystem => format!(
            "`{p}` is on a read-only file system: point `--store` at a writable copy, or mount it read-write"
        ),
        K::NotADirectory => format!(
            "a part of the path `{p}` is a file, not a directory: check the path"
        ),
        _ => format!("check that `{p}` is a directory of yours that can be read and written"),
    }
}

fn imap_kind(e: &ImapError) -> FailureKind {
    // A login the server could not check just now (`NO [UNAVAILABLE]`) is
    // not a wrong password: it is retried, and reported as trouble on the
    // other side (exit 4).
    if e.kind() == ErrorKind::Auth && e.retryable() {
        return FailureKind::Network;
    }
    match e.kind() {
        ErrorKind::Auth => FailureKind::Auth,
        ErrorKind::Network | ErrorKind::Tls => FailureKind::Network,
        ErrorKind::Protocol | ErrorKind::Unsupported => FailureKind::Partial,
        ErrorKind::Caller => FailureKind::Store,
        ErrorKind::Config => FailureKind::Usage,
    }
}

/// An account's login, shared by the connections of one command: the
/// password (or OAuth2 token) is looked up once (a keyring or a password
/// command asked by several connections at once can fail, or ask the user
/// several times).
pub struct Login<'a> {
    name: &'a str,
    acct: &'a AccountConfig,
    credential: tokio::sync::OnceCell<Credential>,
}

impl<'a> Login<'a> {
    pub fn new(name: &'a str, acct: &'a AccountConfig) -> Login<'a> {
        Login {
            name,
            acct,
            credential: tokio::sync::OnceCell::new(),
        }
    }

    /// A login with a credential at hand (one not stored yet: `account add`).
    pub fn with_credential(
        name: &'a str,
        acct: &'a AccountConfig,
        credential: Credential,
    ) -> Login<'a> {
        Login {
            name,
            acct,
            credential: tokio::sync::OnceCell::new_with(Some(credential)),
        }
    }

    /// The account's password or token (looked up the first time).
    pub async fn credential(&self) -> Result<&Credential, OpError> {
        self.credential
            .get_or_try_init(|| async {
                let (owned, acct) = (self.name.to_string(), self.acct.clone());
                if acct.uses_oauth2() {
                    let token =
                        crate::oauth::access_token(&owned, &acct)
                            .await
                            .map_err(|source| OpError::Token {
                                account: self.name.to_string(),
                                source: Box::new(source),
                            })?;
                    return Ok(Credential::Bearer(token));
                }
                tokio::task::spawn_blocking(move || credentials::resolve(&owned, &acct))
                    .await
                    .expect("credential task panicked")
                    .map(Credential::Password)
                    .map_err(|source| OpError::Credential {
                        account: self.name.to_string(),
                        source,
                    })
            })
            .await
    }

    /// Logs in (looking the password up the first time).
    pub async fn connect(&self) -> Result<Connection, OpError> {
        self.connect_observed(&mut |_| {}).await
    }

    /// Logs in, telling `observe` each step as it is done (for `doctor`).
    pub async fn connect_observed(
        &self,
        observe: &mut (dyn FnMut(crate::imap::Stage<'_>) + Send),
    ) -> Result<Connection, OpError> {
        let credential = self.credential().await?;
        let opts = ConnectOptions {
            timeout: Duration::from_secs(60),
        };
        let ep = self.acct.endpoint();
        tracing::info!(
            account = self.name,
            "connecting to {}:{} (tls = {}) as {}",
            ep.host,
            ep.port,
            ep.tls.config_name(),
            ep.username
        );
        let conn = match Connection::connect_observed(&ep, credential, &opts, observe).await {
            Ok(c) => Ok(c),
            Err(e) if e.kind() == ErrorKind::Auth && !e.retryable() => Err(OpError::Login {
                account: self.name.to_string(),
                provider: self.provider(),
                source: Box::new(e),
            }),
            Err(e) => Err(e.into()),
        };
        match &conn {
            Ok(c) => tracing::debug!(
                account = self.name,
                "logged in; capabilities: {}",
                c.capabilities().iter().collect::<Vec<_>>().join(" ")
            ),
            Err(e) => tracing::info!(
                account = self.name,
                "connection failed: {}",
                failure_text(e)
            ),
        }
        conn
    }

    /// The account's provider preset: named in the config, else guessed
    /// from the host name.
    pub fn provider(&self) -> Option<&'static Preset> {
        providers::for_account(self.acct)
    }
}

/// Resolves the password and logs in, for a command with one connection.
pub async fn connect(name: &str, acct: &AccountConfig) -> Result<Connection, OpError> {
    Login::new(name, acct).connect().await
}

/// Makes sure `conn` holds a live connection: connects when it is empty,
/// retrying a network failure with backoff while `attempt` (shared with the
/// caller's own retries) is below `retries`.
pub async fn ensure_connected<'c>(
    conn: &'c mut Option<Connection>,
    login: &Login<'_>,
    attempt: &mut u32,
    retries: u32,
    pace: &mut crate::imap::Pace,
) -> Result<&'c mut Connection, OpError> {
    while conn.is_none() {
        match connect_paced(login, pace).await {
            Ok(c) => *conn = Some(c),
            Err(e) if *attempt < retries && matches!(&e, OpError::Imap(i) if i.retryable()) => {
                *attempt += 1;
                backoff(*attempt).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(conn.as_mut().expect("connected above"))
}

/// The first connection of a command: like [`Login::connect`], but a
/// server that says to wait (too many connections, throttling) is waited
/// for, as [`crate::imap::Pace`] says.
pub async fn connect_paced(
    login: &Login<'_>,
    pace: &mut crate::imap::Pace,
) -> Result<Connection, OpError> {
    loop {
        match login.connect().await {
            Err(OpError::Imap(i)) if pace.wait_if_throttled(i.throttle()).await => {}
            other => return other,
        }
    }
}

/// 0.5 s before the first retry, doubling up to 16 s.
pub async fn backoff(attempt: u32) {
    let ms = 500u64 << attempt.min(5);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

pub use crate::config::folders::matches as folder_matches;

/// `--folder` patterns that match none of the folders `there` are (of
/// `account`, on its server or in the store, as `place` says): a usage
/// error that names the folders there are, never an empty result.
pub fn no_folder_matches(
    account: &str,
    patterns: &[String],
    there: &[String],
    place: &str,
) -> OpError {
    let pats: Vec<String> = patterns.iter().map(|p| format!("`--folder {p}`")).collect();
    let mut there = there.to_vec();
    there.sort();
    there.dedup();
    let hint = if there.is_empty() {
        format!("account `{account}` has no folders {place}")
    } else {
        const SHOWN: usize = 30;
        let mut names: Vec<String> = there.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
        if there.len() > SHOWN {
            names.push(format!("and {} more", there.len() - SHOWN));
        }
        format!(
            "the folders of `{account}` {place}: {}; `*` matches any run of characters \
             (`Sent*`), and a name is matched whole",
            names.join(", ")
        )
    };
    OpError::usage(
        format!(
            "{} matches no folder of account `{account}` {place}",
            pats.join(" or ")
        ),
        Some(&hint),
    )
}

/// The text of a failure as a report and the index's record of folder
/// errors keep it: the error and its causes, "a: b: c". What a cause says
/// that is already there is not said again: "cannot get the password of
/// account `a`" + "account `a`: no password …" reads "cannot get the
/// password of account `a`: no password …".
pub fn failure_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if s.contains(&text) {
            cur = c.source();
            continue;
        }
        let new: Vec<&str> = parts(&text)
            .into_iter()
            .filter(|p| p.trim().len() < 4 || !s.contains(p.trim()))
            .collect();
        if !new.is_empty() {
            s.push_str(": ");
            s.push_str(&new.join(": "));
        }
        cur = c.source();
    }
    s
}

/// `a: b: c` cut at each `: ` that is not inside backticks (a path or a
/// value quoted in a message may hold one).
fn parts(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'`' {
            quoted = !quoted;
        } else if !quoted && b == b':' && bytes.get(i + 1) == Some(&b' ') {
            out.push(&text[start..i]);
            start = i + 2;
        }
    }
    out.push(&text[start..]);
    out.retain(|p| !p.trim().is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::failure_text;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }
    fn chain(texts: &[&'static str]) -> E {
        let mut e: Option<Box<E>> = None;
        for t in texts.iter().rev() {
            e = Some(Box::new(E(t, e)));
        }
        *e.unwrap()
    }

    #[test]
    fn a_chain_says_each_thing_once() {
        assert_eq!(
            failure_text(&chain(&[
                "cannot open `x`",
                "Permission denied (os error 13)"
            ])),
            "cannot open `x`: Permission denied (os error 13)"
        );
        assert_eq!(
            failure_text(&chain(&[
                "cannot get the password of account `a`",
                "account `a`: no password for `u` in the keyring",
            ])),
            "cannot get the password of account `a`: no password for `u` in the keyring"
        );
        assert_eq!(
            failure_text(&chain(&[
                "index query failed",
                "attempt to write a readonly database",
                "Error code 1544: attempt to write a readonly database",
            ])),
            "index query failed: attempt to write a readonly database: Error code 1544"
        );
        // A `: ` inside backticks is part of the name.
        assert_eq!(
            failure_text(&chain(&["cannot read `a: b`", "`a: b`: gone"])),
            "cannot read `a: b`: gone"
        );
        assert_eq!(failure_text(&chain(&["a: b", "a: b"])), "a: b");
    }
}

//! `mailkeep doctor`: the troubleshooting chart as one command. For an
//! account it walks config → DNS → TCP → TLS → greeting and capabilities →
//! login → folders and their special use → INBOX → quota → the store, and
//! stops at the first step that fails, with that step's exit code. Without
//! an account it checks the config file and every account's settings.
//!
//! It returns typed checks (step, what was seen, what to do); `cli` prints
//! them.

use std::path::Path;

use serde::Serialize;

use crate::config::credentials::{self, CredentialError};
use crate::config::{providers, AccountConfig, Config, PasswordSource};
use crate::imap::{self, ImapError, Stage};
use crate::model::TlsMode;
use crate::store::{lock_held_elsewhere, Store, StoreError};

use super::quota::Usage;
// The chart's lines are text (what was seen): the quota is worded as
// `quota` words it.
use super::{Login, OpError};

/// A step of the chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Config,
    Account,
    Dns,
    Tcp,
    Tls,
    Greeting,
    Login,
    Folders,
    Inbox,
    Quota,
    Store,
}

impl Step {
    pub fn label(self) -> &'static str {
        match self {
            Step::Config => "config",
            Step::Account => "account",
            Step::Dns => "DNS",
            Step::Tcp => "TCP",
            Step::Tls => "TLS",
            Step::Greeting => "greeting",
            Step::Login => "login",
            Step::Folders => "folders",
            Step::Inbox => "INBOX",
            Step::Quota => "quota",
            Step::Store => "store",
        }
    }
}

/// How a step went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Works, but something needs attention (quota above 90 %).
    Warn,
    /// Not checked, and why is in `seen` (no QUOTA, tls = none).
    Skipped,
    Fail,
}

/// One line of the chart.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub step: Step,
    pub status: Status,
    /// What was seen.
    pub seen: String,
    /// What to do, when there is something.
    pub fix: Option<String>,
    /// The quota step: storage used against the limit, in bytes (`seen`
    /// says it in bytes too; the command line words it for people).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<Usage>,
}

/// The whole chart.
#[derive(Clone, Debug, Serialize)]
pub struct DoctorReport {
    pub account: Option<String>,
    pub checks: Vec<Check>,
    /// 0, or the exit code of the step that failed.
    pub exit_code: i32,
}

impl DoctorReport {
    fn new(account: Option<&str>) -> DoctorReport {
        DoctorReport {
            account: account.map(str::to_string),
            checks: Vec::new(),
            exit_code: 0,
        }
    }

    fn push(&mut self, step: Step, status: Status, seen: impl Into<String>, fix: Option<String>) {
        self.checks.push(Check {
            step,
            status,
            seen: seen.into(),
            fix,
            storage: None,
        });
    }

    /// The storage figures of the check just pushed.
    fn with_storage(&mut self, u: Usage) {
        if let Some(c) = self.checks.last_mut() {
            c.storage = Some(u);
        }
    }

    /// Records a failure and its exit code (the first one counts).
    fn fail(&mut self, step: Step, seen: impl Into<String>, fix: Option<String>, code: i32) {
        self.push(step, Status::Fail, seen, fix);
        if self.exit_code == 0 {
            self.exit_code = code;
        }
    }

    fn fail_with(&mut self, step: Step, e: &OpError) {
        self.fail(step, super::failure_text(e), e.hint(), e.kind().exit_code());
    }
}

/// Which step an error of opening a session belongs to.
fn step_of(e: &ImapError, last: Option<Step>) -> Step {
    match e {
        ImapError::Resolve { .. } => Step::Dns,
        ImapError::Connect { .. } => Step::Tcp,
        ImapError::Certificate { .. }
        | ImapError::NotTls { .. }
        | ImapError::ImplicitTlsPort { .. }
        | ImapError::NoCommonTls { .. }
        | ImapError::Tls { .. }
        | ImapError::TlsSetup { .. }
        | ImapError::CaFile { .. }
        | ImapError::StartTlsNotOffered { .. }
        | ImapError::PlaintextRefused { .. } => Step::Tls,
        ImapError::Greeting { .. } => Step::Greeting,
        ImapError::Login { .. }
        | ImapError::TokenRefused { .. }
        | ImapError::NoOAuth { .. }
        | ImapError::LoginDisabled { .. } => Step::Login,
        _ => match last {
            None => Step::Dns,
            Some(Step::Dns) => Step::Tcp,
            Some(Step::Tcp) => Step::Tls,
            Some(Step::Tls) => Step::Greeting,
            Some(Step::Greeting) => Step::Login,
            Some(s) => s,
        },
    }
}

fn password_text(a: &AccountConfig) -> String {
    if a.oauth2_token_command.is_some() {
        return "OAuth2 token from `oauth2_token_command`".into();
    }
    if a.oauth2_client_id.is_some() {
        return "OAuth2 (mailkeep's sign-in, tokens in the keyring)".into();
    }
    match a.password_source() {
        PasswordSource::Env(v) => format!("password from ${v}"),
        PasswordSource::Command(_) => "password from `password_command`".into(),
        PasswordSource::Plain => "password in the config file".into(),
        PasswordSource::Keyring => "password in the keyring".into(),
    }
}

fn describe_account(name: &str, a: &AccountConfig) -> String {
    let ep = a.endpoint();
    let tls = match ep.tls {
        TlsMode::Implicit => "implicit TLS",
        TlsMode::Starttls => "STARTTLS",
        TlsMode::None => "no TLS (loopback)",
    };
    let preset = a
        .provider
        .as_deref()
        .and_then(providers::preset)
        .map(|p| format!(", {} preset", p.name))
        .unwrap_or_default();
    format!(
        "account `{name}`: {}:{}, {tls}, user {}, {}{preset}",
        ep.host,
        ep.port,
        ep.username,
        password_text(a)
    )
}

/// The account's settings that can be checked without a network: the CA
/// file, and where the password comes from (without printing it).
fn offline_problems(name: &str, a: &AccountConfig) -> Result<(), OpError> {
    if let Some(path) = &a.ca_file {
        imap::read_ca_file(&a.host, path)?;
    }
    if a.uses_oauth2() {
        if a.oauth2_client_id.is_some() {
            crate::oauth::endpoints(a).map_err(|source| OpError::Token {
                account: name.to_string(),
                source: Box::new(source),
            })?;
        }
        return Ok(());
    }
    Ok(())
}

/// `mailkeep doctor ACCOUNT`.
pub async fn doctor_account(config: &Config, name: &str, store_path: &Path) -> DoctorReport {
    let mut r = DoctorReport::new(Some(name));
    let acct = match config.account(name) {
        Ok(a) => a,
        Err(e) => {
            let e = OpError::from(e);
            r.fail_with(Step::Config, &e);
            return r;
        }
    };
    if let Err(e) = offline_problems(name, acct) {
        r.fail_with(Step::Config, &e);
        return r;
    }
    let login = Login::new(name, acct);
    if let Err(e) = login.credential().await {
        r.fail_with(Step::Config, &e);
        return r;
    }
    r.push(Step::Config, Status::Ok, describe_account(name, acct), None);

    let ep = acct.endpoint();
    let mut last: Option<Step> = None;
    let mut seen: Vec<Check> = Vec::new();
    let result = login
        .connect_observed(&mut |stage| {
            let (step, text) = match stage {
                Stage::Resolved(addrs) => (
                    Step::Dns,
                    format!(
                        "{} → {}",
                        ep.host,
                        addrs
                            .iter()
                            .map(|a| a.ip().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                Stage::Connected(addr) => (Step::Tcp, format!("connected to {addr}")),
                Stage::Secured(info) => {
                    let cert = info
                        .certificate
                        .as_ref()
                        .map(|c| {
                            format!(
                                "; certificate {} from {}, valid {}, SHA-256 {} ({})",
                                c.subject,
                                c.issuer,
                                c.validity(),
                                c.pin(),
                                info.trusted_by.describe()
                            )
                        })
                        .unwrap_or_default();
                    (Step::Tls, format!("{} {}{cert}", info.version, info.cipher))
                }
                Stage::Greeted {
                    greeting,
                    capabilities,
                } => (
                    Step::Greeting,
                    format!(
                        "`{}`; before login: {}",
                        greeting.trim(),
                        capabilities.iter().collect::<Vec<_>>().join(" ")
                    ),
                ),
                Stage::LoggedIn { capabilities } => (
                    Step::Login,
                    format!(
                        "logged in as {}; after login: {}",
                        ep.username,
                        capabilities.iter().collect::<Vec<_>>().join(" ")
                    ),
                ),
            };
            last = Some(step);
            seen.push(Check {
                step,
                status: Status::Ok,
                seen: text,
                fix: None,
                storage: None,
            });
            if step == Step::Tcp && ep.tls == TlsMode::None {
                seen.push(Check {
                    step: Step::Tls,
                    status: Status::Skipped,
                    seen: "not used: `tls = \"none\"` (allowed for loopback hosts only)".into(),
                    fix: None,
                    storage: None,
                });
            }
        })
        .await;
    r.checks.extend(seen);
    let mut conn = match result {
        Ok(c) => c,
        Err(e) => {
            let step = match &e {
                OpError::Imap(i) => step_of(i, last),
                OpError::Login { source, .. } => step_of(source, last),
                _ => Step::Login,
            };
            r.fail_with(step, &e);
            return r;
        }
    };

    // Folders and their special use.
    let folders = match conn.list().await {
        Ok(f) => f,
        Err(e) => {
            r.fail_with(Step::Folders, &OpError::from(e));
            return r;
        }
    };
    let mut special: Vec<String> = folders
        .iter()
        .filter_map(|f| {
            f.special_use
                .as_ref()
                .map(|u| format!("{u} = `{}`", f.display))
        })
        .collect();
    special.sort();
    let preset = login.provider();
    let folder_text = if special.is_empty() {
        let by_name: Vec<String> = preset
            .map(|p| {
                p.folders
                    .iter()
                    .filter_map(|(u, names)| {
                        folders
                            .iter()
                            .find(|f| names.contains(&f.display.as_str()))
                            .map(|f| format!("{u} = `{}` (by name)", f.display))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if by_name.is_empty() {
            format!(
                "{} folders; none marked Sent/Drafts/Trash/Junk (no SPECIAL-USE): restore matches them by name",
                folders.len()
            )
        } else {
            format!("{} folders; {}", folders.len(), by_name.join(", "))
        }
    } else {
        format!("{} folders; {}", folders.len(), special.join(", "))
    };
    r.push(Step::Folders, Status::Ok, folder_text, None);

    // INBOX.
    let inbox = folders
        .iter()
        .find(|f| f.raw.eq_ignore_ascii_case("INBOX"))
        .map(|f| f.raw.clone())
        .unwrap_or_else(|| "INBOX".into());
    match conn.examine(&inbox).await {
        Ok(st) => r.push(
            Step::Inbox,
            Status::Ok,
            format!(
                "{} messages, UIDVALIDITY {}{}",
                st.exists,
                st.uidvalidity,
                if st.highestmodseq.is_some() {
                    ", CONDSTORE"
                } else {
                    ""
                }
            ),
            None,
        ),
        Err(e) => {
            r.fail_with(Step::Inbox, &OpError::from(e));
            return r;
        }
    }

    // Quota.
    if !conn.capabilities().has("QUOTA") {
        r.push(
            Step::Quota,
            Status::Skipped,
            "the server does not report its quota (no QUOTA capability)",
            Some("check how full the mailbox is on the provider's web page; `mailkeep archive` can free space by date".into()),
        );
    } else {
        match conn.quota_root(&inbox).await {
            Ok(roots) => {
                let storage: Vec<Usage> = roots
                    .iter()
                    .flat_map(|q| q.resources.iter())
                    .filter(|res| res.name == "STORAGE")
                    .map(|res| Usage {
                        used: res.usage * 1024,
                        limit: res.limit * 1024,
                    })
                    .collect();
                match storage.first() {
                    None => r.push(Step::Quota, Status::Ok, "no storage limit", None),
                    Some(u) if u.percent().is_some_and(|p| p > 90.0) => {
                        r.push(
                            Step::Quota,
                            Status::Warn,
                            format!("{} of {} bytes used — nearly full", u.used, u.limit),
                            Some(format!(
                                "new mail may bounce soon: free space with `mailkeep archive {name} --older-than 2y` (it backs up and verifies first)"
                            )),
                        );
                        r.with_storage(*u);
                    }
                    Some(u) => {
                        r.push(
                            Step::Quota,
                            Status::Ok,
                            format!("{} of {} bytes used", u.used, u.limit),
                            None,
                        );
                        r.with_storage(*u);
                    }
                }
            }
            Err(e) => r.push(
                Step::Quota,
                Status::Warn,
                format!(
                    "cannot read the quota: {}",
                    super::failure_text(&OpError::from(e))
                ),
                None,
            ),
        }
    }
    let _ = conn.logout().await;

    store_check(&mut r, store_path);
    r
}

/// How many messages doctor reads back from the store.
const QUICK_CHECK: usize = 8;

/// The store: there (or not yet), not locked by another run, its index
/// opening and its packs and dictionaries present.
fn store_check(r: &mut DoctorReport, store_path: &Path) {
    let locked = lock_held_elsewhere(store_path);
    match Store::open_read_only(store_path) {
        Err(StoreError::Missing(_)) => r.push(
            Step::Store,
            Status::Ok,
            format!(
                "no store yet at `{}`: the first backup makes it",
                store_path.display()
            ),
            None,
        ),
        Err(e) => {
            let e = OpError::from(e);
            r.fail_with(Step::Store, &e);
        }
        Ok(s) => {
            let problems: Vec<String> = s.problems().iter().map(|p| p.to_string()).collect();
            let lock_text = match locked {
                Ok(true) => "; a run holds its lock now (a second one would wait its turn: exit 6)",
                _ => "; not locked",
            };
            if problems.is_empty() {
                match s.quick_check(QUICK_CHECK) {
                    Ok(q) if q.failed.is_empty() => r.push(
                        Step::Store,
                        Status::Ok,
                        format!(
                            "`{}`: index opens, packs and dictionaries present, {} of {} stored {} read back whole{lock_text}",
                            store_path.display(),
                            q.read,
                            q.stored,
                            if q.stored == 1 { "message" } else { "messages" },
                        ),
                        None,
                    ),
                    Ok(q) => r.fail(
                        Step::Store,
                        format!(
                            "`{}`: of {} messages read back, {} {} damaged: {}",
                            store_path.display(),
                            q.read,
                            q.failed.len(),
                            if q.failed.len() == 1 { "is" } else { "are" },
                            q.failed
                                .iter()
                                .map(|(_, what)| what.as_str())
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                        Some("`mailkeep verify --deep` lists every damaged message and where it was; a backup fetches again those still on the server; `mailkeep repair` sets damaged records aside".into()),
                        5,
                    ),
                    Err(e) => r.fail_with(Step::Store, &OpError::from(e)),
                }
            } else {
                r.fail(
                    Step::Store,
                    format!("`{}`: {}", store_path.display(), problems.join("; ")),
                    Some("`mailkeep verify` names what is damaged; `mailkeep repair` rebuilds the index from the packs".into()),
                    5,
                );
            }
        }
    }
}

/// `mailkeep doctor` without an account: the config file and each
/// account's settings, without connecting.
pub fn doctor_config(config_path: &Path, store_path: &Path) -> DoctorReport {
    let mut r = DoctorReport::new(None);
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            r.fail_with(Step::Config, &OpError::from(e));
            return r;
        }
    };
    if !config.exists() {
        r.fail(
            Step::Config,
            format!("no configuration file at `{}`", config_path.display()),
            Some("add an account: `mailkeep account add NAME --user ADDRESS` (the server is guessed for the big providers; `mailkeep providers` lists them)".into()),
            2,
        );
        return r;
    }
    if config.warnings.is_empty() {
        r.push(
            Step::Config,
            Status::Ok,
            format!(
                "`{}`: {} account(s), private to its owner",
                config_path.display(),
                config.accounts.len() + config.broken.len()
            ),
            None,
        );
    } else {
        r.push(
            Step::Config,
            Status::Warn,
            format!(
                "`{}`: {}",
                config_path.display(),
                config.warnings.join("; ")
            ),
            None,
        );
    }
    // An account whose table has an error is named with it (the others
    // are still checked).
    for e in config.broken.values() {
        r.fail_with(Step::Account, &OpError::from(e.again()));
    }
    if config.accounts.is_empty() && config.broken.is_empty() {
        r.fail(
            Step::Config,
            "the file has no accounts",
            Some("add one with `mailkeep account add NAME --user ADDRESS`".into()),
            2,
        );
    }
    for (name, a) in &config.accounts {
        let problem = offline_problems(name, a).err().or_else(|| {
            if a.uses_oauth2() {
                return None;
            }
            match a.password_source() {
                // Looking into the keyring or running the command is what a
                // backup would do; an env var is only looked at.
                PasswordSource::Env(_) | PasswordSource::Plain => credentials::resolve(name, a)
                    .err()
                    .map(|source| OpError::Credential {
                        account: name.clone(),
                        source,
                    }),
                PasswordSource::Keyring => match credentials::resolve(name, a) {
                    Err(source @ CredentialError::KeyringNoEntry { .. })
                    | Err(source @ CredentialError::NoKeyringBackend { .. }) => {
                        Some(OpError::Credential {
                            account: name.clone(),
                            source,
                        })
                    }
                    _ => None,
                },
                PasswordSource::Command(_) => None,
            }
        });
        match problem {
            None => r.push(Step::Account, Status::Ok, describe_account(name, a), None),
            Some(e) => r.fail_with(Step::Account, &e),
        }
    }
    store_check(&mut r, store_path);
    r
}

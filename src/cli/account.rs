//! `mailkeep account add|list|remove|set-password`

use super::out::{errln, outln};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use crate::config::credentials;
use crate::config::providers::{self, Auth, LoginName};
use crate::config::{AccountConfig, Config, PasswordSource};
use crate::model::{Credential, Secret, TlsMode};
use crate::oauth::Tokens;
use crate::ops::check::{check_account, AccountCheck};
use crate::ops::{Login, OpError};

use super::Globals;

#[derive(clap::Subcommand, Debug)]
pub enum AccountCmd {
    /// Add an account to the configuration file.
    Add(Box<AddArgs>),
    /// List configured accounts.
    List,
    /// Remove an account from the configuration (the store keeps its mail).
    Remove { name: String },
    /// Store an account's password in the system keyring (asked on the terminal, or one line on stdin).
    SetPassword { name: String },
    /// Sign in with OAuth2 (Microsoft device code, Google browser sign-in) and keep the refresh token in the keyring.
    Login { name: String },
}

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// A short name for the account, e.g. `work`.
    name: String,
    /// The IMAP server [default: the provider's, guessed from the address]
    #[arg(long)]
    host: Option<String>,
    /// Your address or login name (iCloud, docomo and others: see `mailkeep providers`).
    #[arg(long, value_name = "USER")]
    user: String,
    /// Use this provider's settings (`mailkeep providers` lists them).
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,
    #[arg(long)]
    port: Option<u16>,
    /// [default: the provider's, else implicit]
    #[arg(long, value_enum)]
    tls: Option<TlsArg>,
    /// Save without logging in first.
    #[arg(long)]
    no_check: bool,
    /// Trust exactly the certificate with this SHA-256 (`sha256:…`).
    #[arg(long, value_name = "sha256:HEX")]
    tls_fingerprint: Option<String>,
    /// OAuth2: a command that prints an access token.
    #[arg(long, value_name = "CMD", conflicts_with_all = ["password_env", "password_command", "oauth2_client_id"])]
    oauth2_token_command: Option<String>,
    /// OAuth2 with mailkeep's sign-in: the client ID you registered (docs/providers.md).
    #[arg(long, value_name = "ID", conflicts_with_all = ["password_env", "password_command"])]
    oauth2_client_id: Option<String>,
    /// The client secret that comes with a Google "Desktop app" client.
    #[arg(long, value_name = "SECRET", requires = "oauth2_client_id")]
    oauth2_client_secret: Option<String>,
    /// Microsoft tenant [default: common].
    #[arg(long, value_name = "TENANT", requires = "oauth2_client_id")]
    oauth2_tenant: Option<String>,
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "password_command")]
    password_env: Option<String>,
    /// Run this command and use the first line of its output as the password.
    #[arg(long, value_name = "CMD")]
    password_command: Option<String>,
    /// Trust the CA certificates in this PEM file too.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum TlsArg {
    Implicit,
    Starttls,
    None,
}

pub async fn run(g: &Globals, cmd: AccountCmd) -> Result<i32, OpError> {
    let mut config = match cmd {
        AccountCmd::Add(_) => g.load_config_or_new()?,
        _ => g.load_config()?,
    };
    match cmd {
        AccountCmd::List => {
            if config.accounts.is_empty() && config.broken.is_empty() {
                errln!("no accounts in `{}`", g.config_path.display());
                errln!("hint: add one with `mailkeep account add NAME --host HOST --user USER`");
                return Ok(0);
            }
            for (name, a) in &config.accounts {
                let source = if a.oauth2_token_command.is_some() {
                    "OAuth2 token from a command".to_string()
                } else if a.oauth2_client_id.is_some() {
                    "OAuth2 (refresh token in the keyring)".to_string()
                } else {
                    match a.password_source() {
                        PasswordSource::Env(v) => format!("password from ${v}"),
                        PasswordSource::Command(_) => "password from a command".into(),
                        PasswordSource::Plain => "password in the config file".into(),
                        PasswordSource::Keyring => "password in the keyring".into(),
                    }
                };
                let ep = a.endpoint();
                outln!(
                    "{name}\t{}@{}:{}\t{}\t{source}",
                    a.username,
                    ep.host,
                    ep.port,
                    ep.tls.config_name()
                );
            }
            for (name, e) in &config.broken {
                outln!("{name}\tnot usable: {}", super::error_chain(e));
            }
            Ok(0)
        }
        AccountCmd::Add(args) => add(g, &mut config, *args).await,
        AccountCmd::Login { name } => {
            let acct = config.account(&name)?.clone();
            let tokens = sign_in(&name, &acct).await?;
            let login = Login::with_credential(
                &name,
                &acct,
                Credential::Bearer(Secret::new(tokens.access_token.clone())),
            );
            let found = check_account(&login, &acct).await?;
            save_tokens(&name, &acct, &tokens)?;
            outln!(
                "signed in to `{name}`: {}; the refresh token is in the keyring",
                found_text(&found)
            );
            Ok(0)
        }
        AccountCmd::Remove { name } => {
            let acct = config.remove_account(&name)?;
            config.save()?;
            if acct.oauth2_client_id.is_some() {
                let _ = crate::oauth::delete_tokens(&name, &acct);
            } else if matches!(acct.password_source(), PasswordSource::Keyring) {
                let _ = credentials::delete_keyring(&name, &acct.username);
            }
            outln!("removed account `{name}` from the configuration; its mail stays in the store");
            Ok(0)
        }
        AccountCmd::SetPassword { name } => {
            let acct = config.account(&name)?.clone();
            let secret = read_password(&format!(
                "password for {} at {}: ",
                acct.username, acct.host
            ))?;
            credentials::set_keyring(&name, &acct.username, &secret).map_err(|source| {
                OpError::Credential {
                    account: name.clone(),
                    source,
                }
            })?;
            if !matches!(acct.password_source(), PasswordSource::Keyring) {
                errln!("warning: account `{name}` takes its password from elsewhere (password_env, password_command or password); the keyring entry is used only without those");
            }
            warn_if_keyring_forgets(&name);
            outln!("stored the password of `{name}` in the keyring");
            Ok(0)
        }
    }
}

/// What `account add` says after a failed check.
const NOTHING_SAVED: &str = "nothing was saved: fix the above and run `mailkeep account add` again (`--no-check` saves without logging in)";

/// What a check found, in a few words.
fn found_text(c: &AccountCheck) -> String {
    let mut s = format!(
        "logged in to {} as {}, {}",
        c.host,
        c.username,
        super::count(c.folders, "folder", "folders")
    );
    if let Some(n) = c.inbox_messages {
        s.push_str(&format!(
            ", {} in INBOX",
            super::count(n as usize, "message", "messages")
        ));
    }
    s
}

/// Runs the account's OAuth2 sign-in, saying on stderr what to do.
async fn sign_in(name: &str, acct: &AccountConfig) -> Result<Tokens, OpError> {
    let token_err = |source| OpError::Token {
        account: name.to_string(),
        source: Box::new(source),
    };
    let ep = crate::oauth::endpoints(acct).map_err(token_err)?;
    crate::oauth::flows::sign_in(&ep, &mut |text| errln!("{text}"))
        .await
        .map_err(token_err)
}

fn save_tokens(name: &str, acct: &AccountConfig, t: &Tokens) -> Result<(), OpError> {
    crate::oauth::save_tokens(name, acct, t).map_err(|source| OpError::Token {
        account: name.to_string(),
        source: Box::new(source),
    })?;
    warn_if_keyring_forgets(name);
    Ok(())
}

/// `account add`: settings from the flags and the provider preset, then
/// (unless `--no-check`) a login and a folder list before anything is
/// saved; a failure saves nothing.
async fn add(g: &Globals, config: &mut Config, args: AddArgs) -> Result<i32, OpError> {
    let preset = match &args.provider {
        Some(p) => Some(providers::preset(p).ok_or_else(|| {
            OpError::usage(
                format!("unknown provider `{p}`"),
                Some("`mailkeep providers` lists the known ones; or pass `--host HOST` instead"),
            )
        })?),
        None if args.host.is_none() => Some(providers::for_address(&args.user).ok_or_else(|| {
            OpError::Usage {
                message: format!(
                    "cannot tell the IMAP server of `{}`: its domain is not one of the known providers",
                    args.user
                ),
                hint: Some(
                    "pass `--host HOST` (and `--port`, `--tls` if not 993 with implicit TLS), or `--provider NAME` (`mailkeep providers` lists them)"
                        .into(),
                ),
            }
        })?),
        None => None,
    };
    let from_preset = preset.filter(|_| args.host.is_none());
    let host = args
        .host
        .clone()
        .or_else(|| from_preset.map(|p| p.host.to_string()))
        .expect("a host or a preset");
    let tls = match args.tls {
        Some(TlsArg::Implicit) => TlsMode::Implicit,
        Some(TlsArg::Starttls) => TlsMode::Starttls,
        Some(TlsArg::None) => TlsMode::None,
        None => from_preset.map(|p| p.tls).unwrap_or(TlsMode::Implicit),
    };
    let port = args
        .port
        .or_else(|| from_preset.map(|p| p.port))
        .filter(|p| *p != tls.default_port() || args.port.is_some());
    let mut username = args.user.clone();
    if let Some(p) = preset {
        match p.login {
            LoginName::LocalPart
                if p.domains
                    .iter()
                    .any(|d| args.user.to_ascii_lowercase().ends_with(&format!("@{d}"))) =>
            {
                username = p.login_for(&args.user).expect("local part");
                errln!(
                    "note: {} logs in with the part before the @: user name `{username}`",
                    p.name
                );
            }
            LoginName::ProviderId(what) => {
                errln!(
                    "note: {} logs in with your {what}; `{}` is used as given",
                    p.name,
                    args.user
                );
            }
            _ => {}
        }
        if p.auth == Auth::OAuth2Only
            && args.oauth2_client_id.is_none()
            && args.oauth2_token_command.is_none()
        {
            let register = p
                .oauth2
                .map(|o| format!("register your own app: {}; then ", o.register))
                .unwrap_or_default();
            return Err(OpError::Usage {
                message: format!("{} refuses passwords: the account needs OAuth2", p.name),
                hint: Some(format!(
                    "{register}pass its `--oauth2-client-id ID` (mailkeep signs you in and keeps the refresh token in the keyring); or pass `--oauth2-token-command CMD` for a helper such as oama or mutt_oauth2.py"
                )),
            });
        }
        for w in p.weak {
            errln!("note: not confirmed for {}: {w}", p.name);
        }
    }
    let mut acct = AccountConfig::new(host, username);
    acct.port = port;
    acct.tls = tls;
    acct.password_env = args.password_env.clone();
    acct.password_command = args.password_command.clone();
    acct.ca_file = args.ca_file.clone();
    acct.tls_fingerprint = args.tls_fingerprint.clone();
    acct.provider = preset.map(|p| p.id.to_string());
    acct.oauth2_token_command = args.oauth2_token_command.clone();
    acct.oauth2_client_id = args.oauth2_client_id.clone();
    acct.oauth2_client_secret = args.oauth2_client_secret.clone();
    acct.oauth2_tenant = args.oauth2_tenant.clone();
    config.add_account(&args.name, acct.clone())?;
    let name = args.name.as_str();

    // Get the credential first: nothing is kept until the check passes.
    let mut tokens = None;
    let mut password = None;
    let credential = if acct.oauth2_client_id.is_some() {
        if args.no_check {
            None
        } else {
            let t = match sign_in(name, &acct).await {
                Ok(t) => t,
                Err(e) => {
                    super::report_error(&e);
                    errln!("{NOTHING_SAVED}");
                    return Ok(e.kind().exit_code());
                }
            };
            let c = Credential::Bearer(Secret::new(t.access_token.clone()));
            tokens = Some(t);
            Some(c)
        }
    } else if matches!(acct.password_source(), PasswordSource::Keyring) && !acct.uses_oauth2() {
        let secret = read_password(&format!(
            "password for {} at {}: ",
            acct.username, acct.host
        ))?;
        password = Some(secret.clone());
        Some(Credential::Password(secret))
    } else {
        None
    };
    if !args.no_check {
        let login = match credential {
            Some(c) => Login::with_credential(name, &acct, c),
            None => Login::new(name, &acct),
        };
        match check_account(&login, &acct).await {
            Ok(found) => errln!("{}", found_text(&found)),
            Err(e) => {
                super::report_error(&e);
                errln!("{NOTHING_SAVED}");
                return Ok(e.kind().exit_code());
            }
        }
    }
    if let Some(secret) = &password {
        credentials::set_keyring(name, &acct.username, secret).map_err(|source| {
            OpError::Credential {
                account: name.to_string(),
                source,
            }
        })?;
        warn_if_keyring_forgets(name);
    }
    if let Some(t) = &tokens {
        save_tokens(name, &acct, t)?;
    }
    config.save()?;
    outln!("added account `{name}` to {}", g.config_path.display());
    if acct.oauth2_client_id.is_some() && tokens.is_none() {
        errln!("hint: sign in once with `mailkeep account login {name}`");
    }
    Ok(0)
}

/// Warns when the keyring in use forgets its contents at reboot.
fn warn_if_keyring_forgets(name: &str) {
    if let Ok(backend) = credentials::keyring_backend() {
        if !backend.survives_reboot() {
            errln!(
                "warning: the password of `{name}` is in the {}, which forgets it at reboot",
                backend.name()
            );
            errln!("hint: for unattended runs, set `password_command` (e.g. `pass show mail/{name}`) or `password_env` for this account");
        }
    }
}

/// Asks on the terminal without echo, or reads one line from stdin.
fn read_password(prompt: &str) -> Result<Secret, OpError> {
    let pw = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)
            .map_err(|e| OpError::usage(format!("cannot read the password: {e}"), None))?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            OpError::usage(format!("cannot read the password from stdin: {e}"), None)
        })?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if pw.is_empty() {
        return Err(OpError::usage(
            "no password given",
            Some("type the password at the prompt, or pipe it on stdin"),
        ));
    }
    Ok(Secret::new(pw))
}

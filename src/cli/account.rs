//! `mailkeep account add|list|remove|set-password`

use super::out::{errln, outln};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use crate::config::credentials;
use crate::config::{AccountConfig, PasswordSource};
use crate::model::{Secret, TlsMode};
use crate::ops::OpError;

use super::Globals;

#[derive(clap::Subcommand, Debug)]
pub enum AccountCmd {
    /// Add an account to the configuration file.
    Add(AddArgs),
    /// List configured accounts.
    List,
    /// Remove an account from the configuration (the store keeps its mail).
    Remove { name: String },
    /// Store an account's password in the system keyring (asked on the terminal, or one line on stdin).
    SetPassword { name: String },
}

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// A short name for the account, e.g. `work`.
    name: String,
    #[arg(long)]
    host: String,
    #[arg(long, value_name = "USER")]
    user: String,
    #[arg(long)]
    port: Option<u16>,
    #[arg(long, value_enum, default_value = "implicit")]
    tls: TlsArg,
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
                let source = match a.password_source() {
                    PasswordSource::Env(v) => format!("password from ${v}"),
                    PasswordSource::Command(_) => "password from a command".into(),
                    PasswordSource::Plain => "password in the config file".into(),
                    PasswordSource::Keyring => "password in the keyring".into(),
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
        AccountCmd::Add(args) => {
            let tls = match args.tls {
                TlsArg::Implicit => TlsMode::Implicit,
                TlsArg::Starttls => TlsMode::Starttls,
                TlsArg::None => TlsMode::None,
            };
            let acct = AccountConfig {
                host: args.host.clone(),
                port: args.port,
                tls,
                username: args.user.clone(),
                password_env: args.password_env.clone(),
                password_command: args.password_command.clone(),
                password: None,
                ca_file: args.ca_file.clone(),
                include: Vec::new(),
                exclude: Vec::new(),
                max_connections: None,
            };
            let uses_keyring = matches!(acct.password_source(), PasswordSource::Keyring);
            config.add_account(&args.name, acct)?;
            if uses_keyring {
                // Ask first: the config is only written once the password is safe.
                let secret =
                    read_password(&format!("password for {} at {}: ", args.user, args.host))?;
                credentials::set_keyring(&args.name, &args.user, &secret).map_err(|source| {
                    OpError::Credential {
                        account: args.name.clone(),
                        source,
                    }
                })?;
                warn_if_keyring_forgets(&args.name);
            }
            config.save()?;
            outln!(
                "added account `{}` to {}",
                args.name,
                g.config_path.display()
            );
            Ok(0)
        }
        AccountCmd::Remove { name } => {
            let acct = config.remove_account(&name)?;
            config.save()?;
            if matches!(acct.password_source(), PasswordSource::Keyring) {
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

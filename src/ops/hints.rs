//! What to tell the user about a failed connection or login: one hint per
//! kind of failure, naming the setting to change and, for logins, the
//! provider's own rule (app-specific password, OAuth2, the carrier's login
//! ID and IMAP password).

use crate::config::providers::{self, Auth, LoginName, Preset};
use crate::imap::{CertInfo, CertProblem, ErrorKind, ImapError};

/// The line that pins `cert`, as it goes into the config file.
fn pin_line(cert: &CertInfo) -> String {
    format!("    tls_fingerprint = \"{}\"", cert.pin())
}

pub(super) fn imap_hint(e: &ImapError) -> Option<String> {
    match e {
        ImapError::Certificate { problem, cert, .. } => Some(cert_hint(e, problem, cert.as_deref())),
        ImapError::NotTls { port, .. } => Some(format!(
            "port {port} speaks plain IMAP: use it with `tls = \"starttls\"`, or use the implicit-TLS \
             port (usually `port = 993`) with `tls = \"implicit\"`"
        )),
        ImapError::ImplicitTlsPort { port, .. } => Some(format!(
            "set `tls = \"implicit\"` for port {port} (or use the STARTTLS port, usually 143, with \
             `tls = \"starttls\"`)"
        )),
        ImapError::NoCommonTls { .. } => Some(
            "the server offers only older encryption (static-RSA key exchange, DHE or CBC \
             ciphers; public reports say some SoftBank and docomo servers do), and mailkeep does \
             not fall back to it. Ask the provider for a server with TLS 1.2 ECDHE or TLS 1.3; \
             or run a local TLS proxy that speaks the old ciphers (e.g. stunnel) and point the \
             account at it: `host = \"127.0.0.1\"`, its port, `tls = \"none\"`"
                .into(),
        ),
        ImapError::CaFile { .. } => Some(
            "fix `ca_file` in the config file: it must name a PEM file holding the CA that \
             signed the server's certificate, or the server's own certificate; or remove it to \
             trust the system's CAs only"
                .into(),
        ),
        ImapError::StartTlsNotOffered { .. } => Some(
            "the server does not offer STARTTLS on this port: use its implicit-TLS port \
             (usually `port = 993`, `tls = \"implicit\"`)"
                .into(),
        ),
        ImapError::PlaintextRefused { .. } => Some(
            "use `tls = \"implicit\"` (port 993) or `tls = \"starttls\"` (port 143)".into(),
        ),
        ImapError::Resolve { host, .. } => Some(match providers::for_host(host) {
            Some(p) => format!(
                "`{host}` is {}'s server: check that this machine is online and can resolve \
                 names (network, DNS, a proxy or firewall), then try again",
                p.name
            ),
            None => format!(
                "check the spelling of `host` (`{host}`) and that this machine can resolve names \
                 (network, DNS); `mailkeep providers` lists the servers of the big providers"
            ),
        }),
        ImapError::NoOAuth { .. } => Some(
            "this server does not take OAuth2 tokens: log in with a password (remove \
             `oauth2_token_command` / `oauth2_client_id`)"
                .into(),
        ),
        e if e.kind() == ErrorKind::Auth && e.retryable() => Some(
            "the server could not check the login just now (it answered `UNAVAILABLE`): this \
             is not a wrong password; try again later"
                .into(),
        ),
        e => match e.kind() {
            ErrorKind::Auth => Some(
                "check the user name and password; iCloud, Gmail and Yahoo with two-step login \
                 need an app-specific password, Outlook needs OAuth2 (`mailkeep providers`)"
                    .into(),
            ),
            ErrorKind::Tls => Some(
                "the TLS connection failed: check `host`, `port` and `tls`; `mailkeep doctor \
                 ACCOUNT` walks through each step"
                    .into(),
            ),
            ErrorKind::Network => Some(
                "check the host name and port, and that the server is reachable from here; \
                 re-running resumes where this run stopped"
                    .into(),
            ),
            ErrorKind::Config => Some("fix the account in the config file".into()),
            ErrorKind::Protocol | ErrorKind::Unsupported | ErrorKind::Caller => None,
        },
    }
}

fn cert_hint(e: &ImapError, problem: &CertProblem, cert: Option<&CertInfo>) -> String {
    let host = match e {
        ImapError::Certificate { host, .. } => host.as_str(),
        _ => "",
    };
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    match (problem, cert) {
        (CertProblem::UnknownIssuer, Some(c)) => format!(
            "if this is your server's certificate (compare the SHA-256 with the server's), trust \
             exactly it by adding this line to the account in the config file:\n{}\nor, if a \
             private CA signed it, name the CA's PEM file: `ca_file = \"/path/to/ca.pem\"`",
            pin_line(c)
        ),
        (CertProblem::UnknownIssuer, None) => {
            "if a private CA signed it, set `ca_file = \"/path/to/ca.pem\"` for the account".into()
        }
        (CertProblem::Expired, Some(c)) => format!(
            "whoever runs the server must renew its certificate (this machine's clock says {now}: \
             check it too). To trust exactly this certificate anyway, add to the account:\n{}",
            pin_line(c)
        ),
        (CertProblem::Expired | CertProblem::NotYetValid, _) => format!(
            "check this machine's clock (it says {now}); otherwise the server's certificate \
             must be renewed"
        ),
        (CertProblem::WrongName, Some(c)) if !c.names.is_empty() => format!(
            "set `host` to a name the certificate is for ({}), not `{host}`; or ask the provider \
             for the server's right name",
            c.names
                .iter()
                .filter(|n| !n.starts_with("*."))
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (CertProblem::WrongName, _) => {
            "set `host` to the name the server's certificate is for".into()
        }
        (CertProblem::Revoked, _) => {
            "the certificate was withdrawn by its CA: do not connect; tell whoever runs the server"
                .into()
        }
        (CertProblem::Other(_), Some(c)) => format!(
            "to trust exactly this certificate, add to the account in the config file:\n{}",
            pin_line(c)
        ),
        (CertProblem::Other(_), None) => {
            "set `ca_file` for the account to the CA that signed the certificate".into()
        }
    }
}

/// A refused login: what this provider takes, or the general rule.
pub(super) fn login_hint(
    account: &str,
    provider: Option<&Preset>,
    e: &ImapError,
) -> Option<String> {
    if let ImapError::TokenRefused { .. } = e {
        return Some(format!(
            "the server refused the OAuth2 token (expired, revoked, or for another account or \
             scope): run `mailkeep account login {account}` again, or check what \
             `oauth2_token_command` prints"
        ));
    }
    let Some(p) = provider else {
        return imap_hint(e);
    };
    let mut hint = match p.login {
        LoginName::ProviderId(what) => format!("{} logs in with your {what}; ", p.name),
        LoginName::LocalPart => format!(
            "{} logs in with the part of the address before the @; ",
            p.name
        ),
        LoginName::Address => format!("{} logs in with the full address; ", p.name),
    };
    hint.push_str(&match p.auth {
        Auth::OAuth2Only => format!(
            "it refuses passwords: set `oauth2_client_id` (see docs/providers.md) and run \
             `mailkeep account login {account}`, or set `oauth2_token_command`"
        ),
        Auth::AppPassword => format!(
            "it wants an app-specific password: {}. Store it with `mailkeep account \
             set-password {account}`",
            p.password_steps
        ),
        Auth::ImapPassword | Auth::Password => format!(
            "the password: {}. Store it with `mailkeep account set-password {account}`",
            p.password_steps
        ),
    });
    if let Some(ja) = p.password_steps_ja {
        hint.push_str(&format!(" ({ja})"));
    }
    if let Some(enable) = p.enable_imap {
        hint.push_str(&format!("; IMAP must be on: {enable}"));
    }
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unresolved(host: &str) -> ImapError {
        ImapError::Resolve {
            host: host.into(),
            source: std::io::Error::other("Name or service not known"),
        }
    }

    #[test]
    fn an_unresolvable_preset_server_is_a_network_problem_not_a_typo() {
        let h = imap_hint(&unresolved("imap.mail.me.com")).unwrap();
        assert!(
            h.contains("iCloud Mail's server") && h.contains("online"),
            "{h}"
        );
        assert!(!h.contains("spelling"), "{h}");
        let h = imap_hint(&unresolved("imap.exmaple.com")).unwrap();
        assert!(h.contains("check the spelling of `host`"), "{h}");
    }
}

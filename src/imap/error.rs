//! Errors of the IMAP layer.
//!
//! Policy: every message says what failed on which host (and as whom, or on
//! which mailbox); the cause — an I/O error, rustls's certificate verdict, the
//! server's tagged `NO`/`BAD` text — is the `#[source]`, not repeated in the
//! text. A password never appears in any of them: none of the variants has a
//! place for it. [`ImapError::kind`] tells the CLI which hint to give and
//! [`ImapError::retryable`] tells the engine whether trying again can help.

use std::fmt;
use std::time::Duration;

/// A boxed error from a caller's callback or from a lower layer.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What kind of failure an [`ImapError`] is, for hints and exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The server rejected the credentials (or could not check them).
    Auth,
    /// DNS, connect, timeouts, dropped connections.
    Network,
    /// Certificate verification, TLS handshake, STARTTLS not offered,
    /// plain text refused.
    Tls,
    /// A tagged `NO`/`BAD`, or a response we cannot understand.
    Protocol,
    /// The server lacks something we need (UIDPLUS, QUOTA, a login method).
    Unsupported,
    /// The account's settings are wrong (a `ca_file` that is missing or
    /// holds no certificate): nothing was tried on the network.
    Config,
    /// The caller's own callback failed (e.g. the disk is full); the server
    /// is not at fault and the connection is still usable — except after
    /// [`ImapError::Source`] (the data of a streamed APPEND failed), which
    /// gives the session up.
    Caller,
}

/// A server's `NO`, `BAD` or `BYE` response: the cause of a failed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerResponse {
    /// `NO`, `BAD` or `BYE`.
    pub status: &'static str,
    /// The response code without brackets and arguments (`UNAVAILABLE`,
    /// `AUTHENTICATIONFAILED`, `TRYCREATE`, `OVERQUOTA`), when there is one.
    pub code: Option<String>,
    /// The human-readable text, with the bracketed code when there was one.
    pub text: String,
}

impl fmt::Display for ServerResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server said {} {}", self.status, self.text)
    }
}

impl std::error::Error for ServerResponse {}

impl ServerResponse {
    /// Temporary conditions (RFC 5530): trying again later can succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self.code.as_deref(), Some("UNAVAILABLE" | "INUSE")) || self.throttle().is_some()
    }

    /// A provider asking us to slow down: `Some(wait it suggests, if any)`.
    /// Gmail's `[THROTTLED]`, `[OVERQUOTA] … command or bandwidth limits`
    /// and `Too many simultaneous connections`; Exchange Online's `Request
    /// is throttled. Suggested Backoff Time: N milliseconds` and `Server
    /// Unavailable.`; Yahoo's `[LIMIT] … Rate limit hit`. A full mailbox
    /// (`[OVERQUOTA]` otherwise) or a message too large (`[LIMIT]`
    /// otherwise) is not throttling: waiting would not help.
    pub fn throttle(&self) -> Option<Option<Duration>> {
        throttle_in(self.code.as_deref(), &self.text)
    }
}

/// [`ServerResponse::throttle`] of a server's answer as text (`NO [THROTTLED]
/// …`, `BAD Request is throttled. …`): the bracketed code is read from it.
pub fn throttle_in_text(text: &str) -> Option<Option<Duration>> {
    let code = text.split_once('[').and_then(|(_, rest)| {
        let end = rest.find([']', ' '])?;
        Some(rest[..end].to_ascii_uppercase())
    });
    throttle_in(code.as_deref(), text)
}

fn throttle_in(code: Option<&str>, text: &str) -> Option<Option<Duration>> {
    let text = text.to_ascii_lowercase();
    let code = code.unwrap_or("");
    let throttled = code == "THROTTLED"
        || (code == "OVERQUOTA" && (text.contains("bandwidth") || text.contains("command")))
        || (code == "LIMIT" && text.contains("rate"))
        || text.contains("too many simultaneous connections")
        || text.contains("too many connections")
        || text.contains("maximum number of connections")
        || text.contains("request is throttled")
        || text.contains("suggested backoff time")
        || text.contains("server unavailable")
        || text.contains("exceeded command or bandwidth limits")
        || text.contains("session expired");
    throttled.then(|| suggested_backoff(&text))
}

/// How much a server slowed us down: each time it said so (throttling, too
/// many connections), we waited as long as it asked, or 4 s doubling up to
/// about 4 minutes, and tried again; after [`Pace::MAX_WAITS`] waits for
/// one folder, the error stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pace {
    pub waits: u32,
    /// Milliseconds waited in all.
    pub waited_ms: u64,
}

impl Pace {
    pub const MAX_WAITS: u32 = 12;
    /// The longest wait we take, whatever a server suggests.
    pub const LONGEST: Duration = Duration::from_secs(15 * 60);

    /// When `throttle` is a server's request to slow down (its suggested
    /// wait, if any) and waits are left: waits, and returns true.
    pub async fn wait_if_throttled(&mut self, throttle: Option<Option<Duration>>) -> bool {
        let Some(asked) = throttle else { return false };
        if self.waits >= Self::MAX_WAITS {
            return false;
        }
        self.waits += 1;
        let wait = asked
            .unwrap_or(Duration::from_secs(2u64 << self.waits.min(7)))
            .min(Self::LONGEST);
        tokio::time::sleep(wait).await;
        self.waited_ms += wait.as_millis() as u64;
        true
    }

    pub fn add(&mut self, other: Pace) {
        self.waits += other.waits;
        self.waited_ms += other.waited_ms;
    }
}

/// `Suggested Backoff Time: 299961 milliseconds` (Exchange Online), as a
/// duration.
fn suggested_backoff(lower: &str) -> Option<Duration> {
    let at = lower.find("backoff time")? + "backoff time".len();
    let rest = lower[at..].trim_start_matches([':', ' ']);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().ok()?;
    let unit = rest[digits.len()..].trim_start();
    Some(if unit.starts_with("ms") || unit.starts_with("milli") {
        Duration::from_millis(n)
    } else {
        Duration::from_secs(n)
    })
}

/// What is wrong with a server's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertProblem {
    /// No trusted CA signed it (self-signed, or a private CA).
    UnknownIssuer,
    Expired,
    NotYetValid,
    /// It is for other host names.
    WrongName,
    Revoked,
    /// Anything else webpki refused, as it said it.
    Other(String),
}

/// An error of the IMAP layer; see the module docs for the policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    #[error("cannot resolve the host name `{host}`")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to {host}:{port}")]
    Connect {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out after {secs} s waiting for {waiting_for} from {host}")]
    Timeout {
        host: String,
        waiting_for: String,
        secs: u64,
    },
    #[error("connection to {host} lost during {during}")]
    Disconnected {
        host: String,
        during: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("TLS handshake with {host} failed")]
    Tls {
        host: String,
        /// rustls's verdict (e.g. an unknown issuer), when that was the cause.
        #[source]
        source: BoxError,
    },
    #[error("the certificate of {host}:{port} {}{}", describe_problem(problem, cert.as_deref(), host), cert_lines(cert.as_deref()))]
    Certificate {
        host: String,
        port: u16,
        problem: CertProblem,
        /// What the server presented, when it got that far.
        cert: Option<Box<super::CertInfo>>,
    },
    #[error("{host}:{port} answered in plain text, not TLS (it said `{said}`)")]
    NotTls {
        host: String,
        port: u16,
        said: String,
    },
    #[error("{host}:{port} expects TLS at once (implicit TLS) and sends no plain-text greeting")]
    ImplicitTlsPort { host: String, port: u16 },
    #[error("{}", if *closed {
        format!("{host}:{port} closed the connection as soon as mailkeep offered its TLS versions and cipher suites (TLS 1.2 or 1.3 with ECDHE key exchange and AEAD ciphers): it most likely offers no TLS version or cipher suite that mailkeep speaks")
    } else {
        format!("{host}:{port} offers no TLS version or cipher suite that mailkeep speaks (TLS 1.2 or 1.3 with ECDHE key exchange and AEAD ciphers)")
    })]
    NoCommonTls {
        host: String,
        port: u16,
        /// It closed the connection instead of answering with an alert.
        closed: bool,
        #[source]
        source: BoxError,
    },
    #[error("the CA file `{}` (`ca_file`) {problem}", path.display())]
    CaFile {
        host: String,
        path: std::path::PathBuf,
        problem: String,
        #[source]
        source: Option<std::io::Error>,
    },
    #[error("cannot set up TLS for {host}: {what}")]
    TlsSetup {
        host: String,
        what: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("{host} does not offer STARTTLS; refusing to continue without TLS")]
    StartTlsNotOffered { host: String },
    #[error(
        "refusing an unencrypted connection to {host}: TLS can only be off for loopback hosts"
    )]
    PlaintextRefused { host: String },
    #[error("{host} refused the session in its greeting")]
    Greeting {
        host: String,
        #[source]
        source: Box<ServerResponse>,
    },
    #[error("cannot log in to {host} as {user}")]
    Login {
        host: String,
        user: String,
        #[source]
        source: Box<ServerResponse>,
    },
    #[error("cannot log in to {host} as {user}: the server refused the OAuth2 token ({mechanism}: {challenge})")]
    TokenRefused {
        host: String,
        user: String,
        mechanism: &'static str,
        /// The server's error challenge, decoded (`{"status":"401",…}`).
        challenge: String,
        #[source]
        source: Box<ServerResponse>,
    },
    #[error("cannot log in to {host} as {user} with an OAuth2 token: the server offers neither OAUTHBEARER nor XOAUTH2 (it offers: {})", if offered.is_empty() { "no AUTHENTICATE mechanism".to_string() } else { offered.join(", ") })]
    NoOAuth {
        host: String,
        user: String,
        offered: Vec<String>,
    },
    #[error("cannot log in to {host} as {user}: the server forbids LOGIN (LOGINDISABLED) and offers no AUTH=PLAIN")]
    LoginDisabled { host: String, user: String },
    #[error("{command}{} failed on {host}", in_mailbox(mailbox))]
    Command {
        host: String,
        command: &'static str,
        /// The mailbox concerned, decoded for people.
        mailbox: Option<String>,
        #[source]
        source: Box<ServerResponse>,
    },
    #[error("{host} does not support {what}")]
    Unsupported { host: String, what: String },
    #[error(
        "cannot understand {host}'s response to {command}{}",
        in_mailbox(mailbox)
    )]
    Parse {
        host: String,
        command: &'static str,
        mailbox: Option<String>,
        #[source]
        source: BoxError,
    },
    #[error("{command}{} on {host}: {what}", in_mailbox(mailbox))]
    Missing {
        host: String,
        command: &'static str,
        mailbox: Option<String>,
        what: String,
    },
    #[error("handling data from {command}{} on {host} failed", in_mailbox(mailbox))]
    Callback {
        host: String,
        command: &'static str,
        mailbox: Option<String>,
        #[source]
        source: BoxError,
    },
    #[error("invalid argument for {command}: {what}")]
    InvalidArgument { command: &'static str, what: String },
    /// The data of a streamed literal could not be read (or was damaged):
    /// the command was left unfinished and the session given up.
    #[error(
        "cannot read the data to send with {command}{}; the session to {host} was given up",
        in_mailbox(mailbox)
    )]
    Source {
        host: String,
        command: &'static str,
        mailbox: Option<String>,
        #[source]
        source: BoxError,
    },
}

fn describe_problem(p: &CertProblem, cert: Option<&super::CertInfo>, host: &str) -> String {
    let day = |t: i64| super::cert::day(t);
    match (p, cert) {
        (CertProblem::UnknownIssuer, Some(c)) if c.self_signed => {
            "is not trusted: it is self-signed".into()
        }
        (CertProblem::UnknownIssuer, _) => "is not trusted: no trusted CA signed it".into(),
        (CertProblem::Expired, Some(c)) => format!("expired on {}", day(c.not_after)),
        (CertProblem::Expired, None) => "has expired".into(),
        (CertProblem::NotYetValid, Some(c)) => {
            format!("is not valid before {}", day(c.not_before))
        }
        (CertProblem::NotYetValid, None) => "is not valid yet".into(),
        (CertProblem::WrongName, Some(c)) if !c.names.is_empty() => format!(
            "is for {}, not for `{host}`",
            c.names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (CertProblem::WrongName, _) => format!("is not for the name `{host}`"),
        (CertProblem::Revoked, _) => "has been revoked".into(),
        (CertProblem::Other(what), _) => format!("was refused ({what})"),
    }
}

fn cert_lines(cert: Option<&super::CertInfo>) -> String {
    match cert {
        Some(c) => format!("\n{}", c.describe()),
        None => String::new(),
    }
}

fn in_mailbox(mailbox: &Option<String>) -> String {
    match mailbox {
        Some(m) => format!(" of mailbox `{m}`"),
        None => String::new(),
    }
}

impl ImapError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImapError::Connect { .. }
            | ImapError::Resolve { .. }
            | ImapError::Timeout { .. }
            | ImapError::Disconnected { .. }
            | ImapError::Greeting { .. } => ErrorKind::Network,
            ImapError::Tls { .. }
            | ImapError::TlsSetup { .. }
            | ImapError::StartTlsNotOffered { .. }
            | ImapError::PlaintextRefused { .. }
            | ImapError::Certificate { .. }
            | ImapError::NotTls { .. }
            | ImapError::ImplicitTlsPort { .. }
            | ImapError::NoCommonTls { .. } => ErrorKind::Tls,
            ImapError::CaFile { .. } => ErrorKind::Config,
            ImapError::Login { .. } | ImapError::TokenRefused { .. } => ErrorKind::Auth,
            ImapError::NoOAuth { .. } => ErrorKind::Unsupported,
            ImapError::LoginDisabled { .. } | ImapError::Unsupported { .. } => {
                ErrorKind::Unsupported
            }
            ImapError::Command { .. }
            | ImapError::Parse { .. }
            | ImapError::Missing { .. }
            | ImapError::InvalidArgument { .. } => ErrorKind::Protocol,
            ImapError::Callback { .. } | ImapError::Source { .. } => ErrorKind::Caller,
        }
    }

    /// Whether trying again (on a new connection) can help: network trouble,
    /// timeouts, a greeting `BYE`, and `NO [UNAVAILABLE]`/`[INUSE]`.
    pub fn retryable(&self) -> bool {
        match self.kind() {
            ErrorKind::Network => true,
            _ => self
                .server_response()
                .is_some_and(ServerResponse::is_temporary),
        }
    }

    /// The server asks us to slow down (see [`ServerResponse::throttle`]):
    /// `Some(the wait it suggests, if any)`.
    pub fn throttle(&self) -> Option<Option<Duration>> {
        self.server_response().and_then(ServerResponse::throttle)
    }

    /// The server's `NO`/`BAD`/`BYE` behind this error, if any.
    pub fn server_response(&self) -> Option<&ServerResponse> {
        match self {
            ImapError::Greeting { source, .. }
            | ImapError::Login { source, .. }
            | ImapError::TokenRefused { source, .. }
            | ImapError::Command { source, .. } => Some(source.as_ref()),
            ImapError::Disconnected {
                source: Some(source),
                ..
            } => source.downcast_ref::<ServerResponse>(),
            _ => None,
        }
    }

    /// The server's text (with its bracketed code), if this error came from one.
    pub fn server_text(&self) -> Option<&str> {
        self.server_response().map(|r| r.text.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn throttling_is_told_from_a_full_mailbox_and_a_message_too_large() {
        let r = |status: &'static str, code: Option<&str>, text: &str| ServerResponse {
            status,
            code: code.map(str::to_string),
            text: text.to_string(),
        };
        let exchange = r(
            "BAD",
            None,
            "Request is throttled. Suggested Backoff Time: 299961 milliseconds",
        );
        assert_eq!(
            exchange.throttle(),
            Some(Some(Duration::from_millis(299_961)))
        );
        assert!(exchange.is_temporary());
        for t in [
            r("NO", Some("THROTTLED"), "[THROTTLED] Slow down"),
            r(
                "NO",
                Some("ALERT"),
                "[ALERT] Too many simultaneous connections. (Failure)",
            ),
            r(
                "NO",
                Some("OVERQUOTA"),
                "[OVERQUOTA] Account exceeded command or bandwidth limits.",
            ),
            r("NO", Some("LIMIT"), "[LIMIT] CAPABILITY Rate limit hit."),
            r("NO", None, "Server Unavailable. 15"),
        ] {
            assert_eq!(t.throttle(), Some(None), "{t}");
        }
        for not in [
            r(
                "NO",
                Some("OVERQUOTA"),
                "[OVERQUOTA] Quota exceeded (mailbox for user is full)",
            ),
            r("NO", Some("LIMIT"), "[LIMIT] Message too large"),
            r(
                "NO",
                Some("AUTHENTICATIONFAILED"),
                "[AUTHENTICATIONFAILED] Authentication failed.",
            ),
        ] {
            assert_eq!(not.throttle(), None, "{not}");
        }
    }

    fn no(code: Option<&str>, text: &str) -> ServerResponse {
        ServerResponse {
            status: "NO",
            code: code.map(str::to_string),
            text: text.to_string(),
        }
    }

    #[test]
    fn login_error_names_host_and_user_and_keeps_server_text_as_source() {
        let e = ImapError::Login {
            host: "imap.example.com".into(),
            user: "taro@example.com".into(),
            source: Box::new(no(
                Some("AUTHENTICATIONFAILED"),
                "[AUTHENTICATIONFAILED] Authentication failed.",
            )),
        };
        assert_eq!(
            e.to_string(),
            "cannot log in to imap.example.com as taro@example.com"
        );
        assert_eq!(
            e.source().unwrap().to_string(),
            "server said NO [AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(!e.retryable());
    }

    #[test]
    fn unavailable_is_retryable() {
        let e = ImapError::Login {
            host: "h".into(),
            user: "u".into(),
            source: Box::new(no(Some("UNAVAILABLE"), "[UNAVAILABLE] Temporary failure")),
        };
        assert!(e.retryable());
        let t = ImapError::Timeout {
            host: "h".into(),
            waiting_for: "the greeting".into(),
            secs: 60,
        };
        assert_eq!(t.kind(), ErrorKind::Network);
        assert!(t.retryable());
    }

    #[test]
    fn command_error_names_command_and_mailbox() {
        let e = ImapError::Command {
            host: "localhost".into(),
            command: "EXAMINE",
            mailbox: Some("Nope".into()),
            source: Box::new(no(
                Some("NONEXISTENT"),
                "[NONEXISTENT] Mailbox doesn't exist: Nope",
            )),
        };
        assert_eq!(
            e.to_string(),
            "EXAMINE of mailbox `Nope` failed on localhost"
        );
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert_eq!(
            e.server_text(),
            Some("[NONEXISTENT] Mailbox doesn't exist: Nope")
        );
    }
}

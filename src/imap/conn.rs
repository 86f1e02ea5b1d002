//! Opening a session: TCP, TLS (implicit or STARTTLS), greeting, capabilities,
//! authentication. Mailbox and message commands are in `commands.rs`.

use std::time::Duration;

use async_imap::imap_proto::{Capability, Response, Status};
use base64::Engine as _;

use std::net::SocketAddr;

use super::error::ImapError;
use super::tls::{self, TlsInfo};
use super::wire::{server_response, Cmd, Ctx, Wire};
use crate::model::{Credential, Endpoint, Secret, TlsMode};

/// How to talk to a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Limit for every single network wait (connect, handshake, each response,
    /// each 64 KiB written). A wait that exceeds it is a network error and the
    /// session is not used again.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: Duration::from_secs(60),
        }
    }
}

/// The server's capabilities, as listed by CAPABILITY (after login).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    caps: Vec<String>,
}

impl Capabilities {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(caps: I) -> Capabilities {
        Capabilities {
            caps: caps.into_iter().map(Into::into).collect(),
        }
    }

    /// Case-insensitive: `has("condstore")` is `has("CONDSTORE")`.
    pub fn has(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.caps.iter().map(String::as_str)
    }

    /// `APPENDLIMIT=N` (RFC 7889): the largest message the server takes, in
    /// bytes. `APPENDLIMIT` without a value (a limit per mailbox) is `None`.
    pub fn append_limit(&self) -> Option<u64> {
        self.caps.iter().find_map(|c| {
            let (name, n) = c.split_once('=')?;
            name.eq_ignore_ascii_case("APPENDLIMIT")
                .then(|| n.parse().ok())
                .flatten()
        })
    }
}

/// One authenticated IMAP session.
pub struct Connection {
    pub(crate) wire: Wire,
    pub(crate) ep: Endpoint,
    pub(crate) caps: Capabilities,
    /// The mailbox selected or examined last (raw name), for error messages.
    pub(crate) selected: Option<String>,
    /// The selected mailbox was opened with SELECT (CLOSE would expunge it).
    pub(crate) writable: bool,
    /// The text of the server's greeting (which software, at times).
    pub(crate) greeting: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.ep.host)
            .field("user", &self.ep.username)
            .field("selected", &self.selected)
            .finish_non_exhaustive()
    }
}

fn ctx<'a>(host: &'a str, command: &'static str) -> Ctx<'a> {
    Ctx {
        host,
        command,
        mailbox: None,
    }
}

/// Reads the greeting: `(preauth, text)`.
async fn greeting(wire: &mut Wire, host: &str) -> Result<(bool, String), ImapError> {
    let c = ctx(host, "the greeting");
    let greeting = wire
        .read(&c, |r| match r {
            Response::Data {
                status: Status::Ok,
                outcome,
            } => Ok((
                false,
                outcome.information.as_deref().unwrap_or("").to_string(),
            )),
            Response::Data {
                status: Status::PreAuth,
                outcome,
            } => Ok((
                true,
                outcome.information.as_deref().unwrap_or("").to_string(),
            )),
            Response::Data { status, outcome } => Err(Some(server_response(
                status,
                outcome.code.as_ref(),
                outcome.information.as_deref(),
            ))),
            _ => Err(None),
        })
        .await?;
    match greeting {
        Ok(g) => Ok(g),
        Err(Some(source)) => Err(ImapError::Greeting {
            host: host.to_string(),
            source: Box::new(source),
        }),
        Err(None) => Err(c.parse_error("the server's first response is not a greeting")),
    }
}

async fn capability(wire: &mut Wire, host: &str) -> Result<Capabilities, ImapError> {
    let mut caps = Vec::new();
    wire.run(&ctx(host, "CAPABILITY"), Cmd::new("CAPABILITY"), &mut |r| {
        if let Response::Capabilities(list) = r {
            caps.extend(list.iter().map(|c| match c {
                Capability::Imap4rev1 => "IMAP4rev1".to_string(),
                Capability::Auth(m) => format!("AUTH={m}"),
                Capability::Atom(a) => a.to_string(),
            }));
        }
        Ok(())
    })
    .await?;
    let caps = Capabilities::new(caps);
    wire.literal_plus = caps.has("LITERAL+");
    wire.literal_minus = caps.has("LITERAL-");
    Ok(caps)
}

/// The SASL mechanisms for a bearer token, in the order tried.
fn bearer_mechanism(caps: &Capabilities) -> Option<&'static str> {
    if caps.has("AUTH=OAUTHBEARER") {
        Some("OAUTHBEARER")
    } else if caps.has("AUTH=XOAUTH2") {
        Some("XOAUTH2")
    } else {
        None
    }
}

/// The initial client response of a bearer-token mechanism (before base64).
fn bearer_response(mechanism: &str, ep: &Endpoint, token: &str) -> Vec<u8> {
    match mechanism {
        // RFC 7628 §3.1: GS2 header, then key=value pairs separated by ^A.
        "OAUTHBEARER" => format!(
            "n,a={},\x01host={}\x01port={}\x01auth=Bearer {}\x01\x01",
            ep.username.replace('=', "=3D").replace(',', "=2C"),
            ep.host,
            ep.port,
            token
        )
        .into_bytes(),
        // Google's and Microsoft's XOAUTH2.
        _ => format!("user={}\x01auth=Bearer {}\x01\x01", ep.username, token).into_bytes(),
    }
}

async fn authenticate(
    wire: &mut Wire,
    ep: &Endpoint,
    credential: &Credential,
    caps: &Capabilities,
) -> Result<(), ImapError> {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let password = match credential {
        Credential::Password(p) => p,
        Credential::Bearer(token) => {
            let Some(mechanism) = bearer_mechanism(caps) else {
                return Err(ImapError::NoOAuth {
                    host: ep.host.clone(),
                    user: ep.username.clone(),
                    offered: caps
                        .iter()
                        .filter_map(|c| c.strip_prefix("AUTH="))
                        .map(str::to_string)
                        .collect(),
                });
            };
            let ir = b64(&bearer_response(mechanism, ep, token.expose()));
            let cmd = if caps.has("SASL-IR") {
                Cmd::new(format!("AUTHENTICATE {mechanism} {ir}"))
            } else {
                Cmd::new(format!("AUTHENTICATE {mechanism}")).after_continuation(ir)
            };
            // RFC 7628 §3.2.3: the client answers an error challenge with ^A.
            let reply = if mechanism == "OAUTHBEARER" {
                "AQ=="
            } else {
                ""
            };
            return match wire
                .run_sasl(&ctx(&ep.host, "AUTHENTICATE"), cmd, reply)
                .await
            {
                Ok(()) => Ok(()),
                Err((ImapError::Command { source, .. }, challenge)) => {
                    if source.is_temporary() || challenge.is_none() {
                        Err(ImapError::Login {
                            host: ep.host.clone(),
                            user: ep.username.clone(),
                            source,
                        })
                    } else {
                        Err(ImapError::TokenRefused {
                            host: ep.host.clone(),
                            user: ep.username.clone(),
                            mechanism,
                            challenge: challenge.unwrap_or_default(),
                            source,
                        })
                    }
                }
                Err((e, _)) => Err(e),
            };
        }
    };
    let (name, cmd) = if caps.has("AUTH=PLAIN") {
        let mut token = Vec::new();
        token.push(0);
        token.extend_from_slice(ep.username.as_bytes());
        token.push(0);
        token.extend_from_slice(password.expose().as_bytes());
        let b64 = b64(&token);
        let cmd = if caps.has("SASL-IR") {
            Cmd::new(format!("AUTHENTICATE PLAIN {b64}"))
        } else {
            Cmd::new("AUTHENTICATE PLAIN").after_continuation(b64)
        };
        ("AUTHENTICATE", cmd)
    } else if caps.has("LOGINDISABLED") {
        return Err(ImapError::LoginDisabled {
            host: ep.host.clone(),
            user: ep.username.clone(),
        });
    } else {
        (
            "LOGIN",
            Cmd::new("LOGIN").arg(&ep.username).arg(password.expose()),
        )
    };
    match wire.run(&ctx(&ep.host, name), cmd, &mut |_| Ok(())).await {
        Ok(_) => Ok(()),
        Err(ImapError::Command { source, .. }) => Err(ImapError::Login {
            host: ep.host.clone(),
            user: ep.username.clone(),
            source,
        }),
        Err(e) => Err(e),
    }
}

/// A step of opening a session, reported as it is done (for `doctor`).
#[derive(Debug)]
pub enum Stage<'a> {
    /// The host name's addresses.
    Resolved(&'a [SocketAddr]),
    /// The TCP connection is up, to this address.
    Connected(SocketAddr),
    /// TLS is up (implicit, or after STARTTLS).
    Secured(&'a TlsInfo),
    /// The server greeted; its capabilities before login.
    Greeted {
        greeting: &'a str,
        capabilities: &'a Capabilities,
    },
    /// Logged in (or PREAUTH); the capabilities after login.
    LoggedIn { capabilities: &'a Capabilities },
}

/// Waits for a plain-text greeting for a few seconds; if none comes, finds
/// out on a second connection whether the port expects TLS at once (then
/// no greeting will ever come, and waiting the full timeout helps nobody).
async fn greeting_or_tls_port(
    tcp: &tokio::net::TcpStream,
    ep: &Endpoint,
    opts: &ConnectOptions,
) -> Result<(), ImapError> {
    let wait = tls::GREETING_PROBE_AFTER.min(opts.timeout);
    if tokio::time::timeout(wait, tcp.readable()).await.is_ok() {
        return Ok(());
    }
    let Ok(addr) = tcp.peer_addr() else {
        return Ok(());
    };
    let probe_timeout = opts.timeout.min(Duration::from_secs(10));
    if tls::speaks_tls(addr, &ep.host, probe_timeout).await {
        return Err(ImapError::ImplicitTlsPort {
            host: ep.host.clone(),
            port: ep.port,
        });
    }
    Ok(())
}

impl Connection {
    /// Connects, secures and authenticates with a password. TLS is
    /// verified against the system roots plus `ep.ca_file` (or pinned by
    /// `ep.tls_fingerprint`); STARTTLS that is not offered is an error, and
    /// `TlsMode::None` is refused unless the host is loopback.
    pub async fn connect(
        ep: &Endpoint,
        password: &Secret,
        opts: &ConnectOptions,
    ) -> Result<Connection, ImapError> {
        Connection::connect_with(ep, &Credential::Password(password.clone()), opts).await
    }

    /// Like [`Connection::connect`], with a password or an OAuth2 token.
    pub async fn connect_with(
        ep: &Endpoint,
        credential: &Credential,
        opts: &ConnectOptions,
    ) -> Result<Connection, ImapError> {
        Connection::connect_observed(ep, credential, opts, &mut |_| {}).await
    }

    /// Like [`Connection::connect_with`], telling `observe` each step as it
    /// is done: the error then belongs to the step after the last one seen.
    pub async fn connect_observed(
        ep: &Endpoint,
        credential: &Credential,
        opts: &ConnectOptions,
        observe: &mut (dyn FnMut(Stage<'_>) + Send),
    ) -> Result<Connection, ImapError> {
        let host = ep.host.as_str();
        let setup = match ep.tls {
            TlsMode::None => {
                if !tls::is_loopback(host) {
                    return Err(ImapError::PlaintextRefused {
                        host: host.to_string(),
                    });
                }
                None
            }
            TlsMode::Implicit | TlsMode::Starttls => Some(tls::client_config(ep)?),
        };
        let addrs = tls::resolve(ep, opts.timeout).await?;
        observe(Stage::Resolved(&addrs));
        let tcp = tls::connect_addrs(ep, &addrs, opts.timeout).await?;
        if let Ok(a) = tcp.peer_addr() {
            observe(Stage::Connected(a));
        }
        let mut pre_greeting: Option<(bool, String)> = None;
        let mut wire = match (ep.tls, setup) {
            (TlsMode::Implicit, Some(setup)) => {
                let (stream, info) = tls::wrap(Box::new(tcp), ep, setup, opts.timeout).await?;
                observe(Stage::Secured(&info));
                Wire::new(stream, opts.timeout)
            }
            (TlsMode::Starttls, Some(setup)) => {
                greeting_or_tls_port(&tcp, ep, opts).await?;
                let mut plain = Wire::new(Box::new(tcp), opts.timeout);
                let g = greeting(&mut plain, host).await?;
                let caps = capability(&mut plain, host).await?;
                observe(Stage::Greeted {
                    greeting: &g.1,
                    capabilities: &caps,
                });
                if !caps.has("STARTTLS") {
                    return Err(ImapError::StartTlsNotOffered {
                        host: host.to_string(),
                    });
                }
                plain
                    .run(
                        &ctx(host, "STARTTLS"),
                        Cmd::new("STARTTLS"),
                        &mut |_| Ok(()),
                    )
                    .await?;
                let (stream, info) =
                    tls::wrap(plain.into_stream(), ep, setup, opts.timeout).await?;
                observe(Stage::Secured(&info));
                // No greeting after STARTTLS; capabilities are asked again.
                pre_greeting = Some((false, g.1));
                Wire::new(stream, opts.timeout)
            }
            _ => {
                greeting_or_tls_port(&tcp, ep, opts).await?;
                Wire::new(Box::new(tcp), opts.timeout)
            }
        };
        let after_tls = pre_greeting.is_some();
        let (preauth, text) = match pre_greeting {
            Some(g) => g,
            None => greeting(&mut wire, host).await?,
        };
        if !preauth {
            let caps = capability(&mut wire, host).await?;
            if !after_tls {
                observe(Stage::Greeted {
                    greeting: &text,
                    capabilities: &caps,
                });
            }
            authenticate(&mut wire, ep, credential, &caps).await?;
        }
        // Capabilities change with login (CONDSTORE, QUOTA, … often appear only now).
        let caps = capability(&mut wire, host).await?;
        observe(Stage::LoggedIn {
            capabilities: &caps,
        });
        Ok(Connection {
            wire,
            ep: ep.clone(),
            caps,
            selected: None,
            writable: false,
            greeting: text,
        })
    }

    /// Capabilities after login.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    pub async fn noop(&mut self) -> Result<(), ImapError> {
        let c = ctx(&self.ep.host, "NOOP");
        self.wire.run(&c, Cmd::new("NOOP"), &mut |_| Ok(())).await?;
        Ok(())
    }

    /// Ends the session politely. A server that closes the connection right
    /// after its BYE, without the tagged OK, is fine too.
    pub async fn logout(mut self) -> Result<(), ImapError> {
        let c = ctx(&self.ep.host, "LOGOUT");
        match self.wire.run(&c, Cmd::new("LOGOUT"), &mut |_| Ok(())).await {
            Ok(_) | Err(ImapError::Disconnected { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_case_insensitive() {
        let caps = Capabilities::new(["IMAP4rev1", "AUTH=PLAIN", "CONDSTORE"]);
        assert!(caps.has("condstore"));
        assert!(caps.has("auth=plain"));
        assert!(!caps.has("UIDPLUS"));
        assert_eq!(caps.iter().count(), 3);
    }

    #[test]
    fn default_timeout_is_a_minute() {
        assert_eq!(ConnectOptions::default().timeout, Duration::from_secs(60));
    }

    /// Sessions move between tasks: the type and its futures must be Send.
    #[allow(dead_code)]
    fn connection_and_its_futures_are_send(c: &mut Connection, ep: &Endpoint, pw: &Secret) {
        fn is_send<T: Send>(_: &T) {}
        is_send(c);
        is_send(&Connection::connect(ep, pw, &ConnectOptions::default()));
        is_send(&c.list());
        is_send(&c.namespace());
        is_send(&c.fetch_bodies(&[], &mut |_, _| Ok(())));
        is_send(&c.fetch_body_chunked(1, 0, 1, &mut |_| Ok(())));
        is_send(&c.append("INBOX", &crate::model::Flags::default(), None, b""));
        let mut src: &[u8] = b"";
        is_send(&c.append_from(
            "INBOX",
            &crate::model::Flags::default(),
            None,
            0,
            false,
            &mut src,
        ));
    }

    #[tokio::test]
    async fn plaintext_to_a_remote_host_is_refused_before_connecting() {
        let ep = Endpoint {
            host: "imap.example.com".into(),
            port: 143,
            tls: TlsMode::None,
            username: "taro@example.com".into(),
            ca_file: None,
            tls_fingerprint: None,
        };
        let err = Connection::connect(&ep, &Secret::new("hunter2"), &ConnectOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), super::super::ErrorKind::Tls);
        assert!(!err.to_string().contains("hunter2"));
    }
}

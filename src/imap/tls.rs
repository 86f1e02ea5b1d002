//! DNS, TCP connect and TLS (implicit or after STARTTLS) with tokio-rustls and
//! the `ring` provider: system roots (webpki-roots if none load) plus the
//! endpoint's own CA file; certificate and host name always verified. The
//! CA file's roots are tried first, and the system's are read only when
//! they do not verify the server (the same certificates are trusted either
//! way; a backup of a server with its own CA skips reading them).
//!
//! Certificates people really have:
//! - a server's own self-signed certificate named in `ca_file` is trusted as
//!   that server's certificate whether or not it says CA:TRUE (webpki refuses
//!   a CA certificate as an end entity, `CaUsedAsEndEntity`); its host name
//!   and dates are still checked;
//! - `tls_fingerprint = "sha256:…"` trusts exactly one certificate, whatever
//!   signed it and whatever its dates and names: the fingerprint is the
//!   identity;
//! - every refusal is classified ([`ImapError::Certificate`],
//!   [`ImapError::NotTls`], [`ImapError::NoCommonTls`]) with the certificate's
//!   details, so that the message can say what to do.

use std::fmt;
use std::io::BufReader;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::cert::{sha256, CertInfo};
use super::error::{CertProblem, ImapError};
use crate::model::Endpoint;

/// Anything a session can run over: a TLS stream, or plain TCP to loopback.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}
pub(crate) type Stream = Box<dyn Io>;

/// How long a STARTTLS or plain-text connection waits for the greeting
/// before checking whether the port speaks TLS instead (then it never will).
pub(crate) const GREETING_PROBE_AFTER: Duration = Duration::from_secs(3);

/// What a TLS session turned out to be, for `doctor`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    /// `TLSv1.3`
    pub version: String,
    /// `TLS13_AES_256_GCM_SHA384`
    pub cipher: String,
    pub certificate: Option<CertInfo>,
    /// Why the certificate was trusted.
    pub trusted_by: TrustedBy,
}

/// Why a server certificate was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustedBy {
    /// A chain to a trusted CA (the system's or `ca_file`'s).
    Chain,
    /// It is itself in `ca_file`.
    CaFileCertificate,
    /// Its SHA-256 is `tls_fingerprint`.
    Fingerprint,
}

impl TrustedBy {
    pub fn describe(self) -> &'static str {
        match self {
            TrustedBy::Chain => "signed by a trusted CA",
            TrustedBy::CaFileCertificate => "the certificate itself is in `ca_file`",
            TrustedBy::Fingerprint => "pinned by `tls_fingerprint`",
        }
    }
}

/// Loopback hosts, the only ones that may be reached without TLS.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn bare_host(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Looks the host name up (an IP address is taken as it is).
pub async fn resolve(ep: &Endpoint, timeout: Duration) -> Result<Vec<SocketAddr>, ImapError> {
    let host = bare_host(&ep.host).to_string();
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host, ep.port))).await {
        Err(_) => Err(ImapError::Timeout {
            host: ep.host.clone(),
            waiting_for: "the DNS answer".into(),
            secs: timeout.as_secs(),
        }),
        Ok(Err(source)) => Err(ImapError::Resolve {
            host: ep.host.clone(),
            source,
        }),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(ImapError::Resolve {
                    host: ep.host.clone(),
                    source: std::io::Error::other("no address"),
                })
            } else {
                Ok(addrs)
            }
        }
    }
}

/// Connects to the first address that answers, each with `timeout`.
pub(crate) async fn connect_addrs(
    ep: &Endpoint,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<TcpStream, ImapError> {
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                last = Some(ImapError::Timeout {
                    host: ep.host.clone(),
                    waiting_for: format!("the TCP connection to port {}", ep.port),
                    secs: timeout.as_secs(),
                })
            }
            Ok(Err(source)) => {
                last = Some(ImapError::Connect {
                    host: ep.host.clone(),
                    port: ep.port,
                    source,
                })
            }
            Ok(Ok(tcp)) => {
                // Small commands and the end of literals must not wait for Nagle.
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
        }
    }
    Err(last.expect("resolve returns at least one address"))
}

/// The system's roots, loaded once per process: reading them is not free and
/// a backup opens several connections.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        roots
    })
}

/// A client config for HTTPS (OAuth2 endpoints): the system's roots,
/// webpki's usual checks.
pub fn https_client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let config = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("ring offers TLS 1.2 and 1.3")
                .with_root_certificates(system_roots().clone())
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a `ca_file`, or why they cannot be had (a
/// configuration error: exit 2).
pub fn read_ca_file(
    host: &str,
    path: &std::path::Path,
) -> Result<Vec<CertificateDer<'static>>, ImapError> {
    let err = |problem: &str, source: Option<std::io::Error>| ImapError::CaFile {
        host: host.to_string(),
        path: path.to_path_buf(),
        problem: problem.to_string(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(err("does not exist", None))
        }
        Err(e) => return Err(err("cannot be read", Some(e))),
    };
    let mut certs = Vec::new();
    for cert in rustls_pemfile::certs(&mut BufReader::new(file)) {
        match cert {
            Ok(c) => certs.push(c),
            Err(e) => return Err(err("is not a readable PEM file", Some(e))),
        }
    }
    if certs.is_empty() {
        return Err(err(
            "holds no certificate (want PEM: `-----BEGIN CERTIFICATE-----`)",
            None,
        ));
    }
    Ok(certs)
}

/// Verifies as webpki does, then accepts what the user named: a certificate
/// that is itself in `ca_file` (name and dates still checked), or the one
/// whose SHA-256 is `tls_fingerprint`. Remembers the certificate presented,
/// for the error message.
#[derive(Debug)]
pub(crate) struct Verifier {
    /// webpki with the roots of `ca_file` alone, when there is one: tried
    /// first, so that a server whose CA the user named is verified without
    /// reading the system's 147 root certificates (about 5 ms of a no-change
    /// backup, docs/benchmarks.md).
    own: Option<Arc<WebPkiServerVerifier>>,
    /// webpki with the system's roots and `ca_file`'s, made when first
    /// needed. A chain ends at one root, so it verifies with these if and
    /// only if it does with `own` or with the system's roots: trying `own`
    /// first changes which certificates are trusted in no case.
    all: OnceLock<Result<Arc<WebPkiServerVerifier>, String>>,
    ca_roots: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    /// SHA-256 of each certificate in `ca_file`.
    ca_file_certs: Vec<[u8; 32]>,
    pin: Option<[u8; 32]>,
    seen: Mutex<Option<(CertificateDer<'static>, Option<TrustedBy>)>>,
}

impl Verifier {
    /// The end-entity certificate the server presented, if it got that far,
    /// and why it was trusted (`None`: it was not).
    pub fn seen(&self) -> Option<(CertInfo, Option<TrustedBy>)> {
        self.seen
            .lock()
            .expect("verifier lock")
            .as_ref()
            .map(|(der, t)| (CertInfo::from_der(der), *t))
    }

    fn note(&self, der: &CertificateDer<'_>, trusted: Option<TrustedBy>) {
        *self.seen.lock().expect("verifier lock") = Some((der.clone().into_owned(), trusted));
    }

    /// webpki's verdict: `ca_file`'s roots first, then all of them.
    fn webpki(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
        in_ca_file: bool,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verify = |v: &WebPkiServerVerifier| {
            v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        };
        if let Some(own) = &self.own {
            match verify(own) {
                Ok(v) => return Ok(v),
                // Trusted or not by its own checks below, whatever signed it.
                Err(e) if in_ca_file => return Err(e),
                Err(_) => {}
            }
        }
        let all = self.all.get_or_init(|| {
            let mut roots = system_roots().clone();
            for cert in &self.ca_roots {
                roots.add(cert.clone()).map_err(|e| e.to_string())?;
            }
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| e.to_string())
        });
        match all {
            Ok(all) => verify(all),
            Err(e) => Err(rustls::Error::General(format!(
                "cannot build the certificate verifier: {e}"
            ))),
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let hash = sha256(end_entity);
        if self.pin == Some(hash) {
            self.note(end_entity, Some(TrustedBy::Fingerprint));
            return Ok(ServerCertVerified::assertion());
        }
        match self.webpki(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
            self.ca_file_certs.contains(&hash),
        ) {
            Ok(v) => {
                let why = if self.ca_file_certs.contains(&hash) {
                    TrustedBy::CaFileCertificate
                } else {
                    TrustedBy::Chain
                };
                self.note(end_entity, Some(why));
                Ok(v)
            }
            Err(_) if self.ca_file_certs.contains(&hash) => {
                // The very certificate the user put in `ca_file` (a
                // self-signed one that calls itself a CA, typically): trusted
                // as this server's, once its name and dates fit.
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name).inspect_err(|_| {
                    self.note(end_entity, None);
                })?;
                let info = CertInfo::from_der(end_entity);
                let t = now.as_secs() as i64;
                if info.not_after != 0 && t > info.not_after {
                    self.note(end_entity, None);
                    return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
                }
                if info.not_before != 0 && t < info.not_before {
                    self.note(end_entity, None);
                    return Err(rustls::Error::InvalidCertificate(
                        CertificateError::NotValidYet,
                    ));
                }
                self.note(end_entity, Some(TrustedBy::CaFileCertificate));
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => {
                self.note(end_entity, None);
                Err(e)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One connection's TLS setup: the rustls config and its verifier (which
/// remembers what the server presented).
pub(crate) struct TlsSetup {
    pub config: Arc<ClientConfig>,
    pub verifier: Arc<Verifier>,
}

pub(crate) fn client_config(ep: &Endpoint) -> Result<TlsSetup, ImapError> {
    let setup = |what: String, source: Option<Box<dyn std::error::Error + Send + Sync>>| {
        ImapError::TlsSetup {
            host: ep.host.clone(),
            what,
            source,
        }
    };
    let provider = provider();
    let mut ca_file_certs = Vec::new();
    let mut ca_roots = Vec::new();
    let mut own = None;
    if let Some(path) = &ep.ca_file {
        let mut roots = RootCertStore::empty();
        for cert in read_ca_file(&ep.host, path)? {
            ca_file_certs.push(sha256(&cert));
            roots.add(cert.clone()).map_err(|e| {
                setup(
                    format!("unusable certificate in {}", path.display()),
                    Some(e.into()),
                )
            })?;
            ca_roots.push(cert);
        }
        let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| {
                setup(
                    "cannot build the certificate verifier".into(),
                    Some(e.into()),
                )
            })?;
        own = Some(v);
    }
    let verifier = Arc::new(Verifier {
        own,
        all: OnceLock::new(),
        ca_roots,
        provider: provider.clone(),
        ca_file_certs,
        pin: ep.tls_fingerprint.map(|p| p.0),
        seen: Mutex::new(None),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup("no usable TLS protocol version".into(), Some(e.into())))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    Ok(TlsSetup {
        config: Arc::new(config),
        verifier,
    })
}

/// Keeps the first bytes the server sent, so that a handshake that fails on
/// plain text can say what the server said instead.
#[derive(Debug)]
pub(crate) struct Sniff<S> {
    inner: S,
    first: Arc<Mutex<Vec<u8>>>,
    full: bool,
}

const SNIFF_BYTES: usize = 128;

impl<S> Sniff<S> {
    pub fn new(inner: S) -> (Sniff<S>, Arc<Mutex<Vec<u8>>>) {
        let first = Arc::new(Mutex::new(Vec::new()));
        (
            Sniff {
                inner,
                first: first.clone(),
                full: false,
            },
            first,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniff<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if !self.full {
            let new = &buf.filled()[before..];
            if !new.is_empty() {
                let mut first = self.first.lock().expect("sniff lock");
                let room = SNIFF_BYTES.saturating_sub(first.len());
                first.extend_from_slice(&new[..new.len().min(room)]);
                let full = first.len() >= SNIFF_BYTES;
                drop(first);
                self.full = full;
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniff<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The first line of what a server sent, printable, for a message.
fn printable_line(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len());
    let s: String = String::from_utf8_lossy(&bytes[..end])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(80)
        .collect();
    s
}

/// Whether the bytes look like an IMAP server talking in plain text.
fn is_plain_imap(bytes: &[u8]) -> bool {
    bytes.starts_with(b"* ") || bytes.starts_with(b"+ ")
}

/// Runs the TLS handshake over `tcp`. Every refusal is classified: the
/// certificate (with its details), plain text where TLS was expected, no
/// version or cipher suite in common; an I/O failure during the handshake
/// is a network error.
pub(crate) async fn wrap(
    tcp: Stream,
    ep: &Endpoint,
    setup: TlsSetup,
    timeout: Duration,
) -> Result<(Stream, TlsInfo), ImapError> {
    let host = bare_host(&ep.host);
    let name = ServerName::try_from(host.to_string()).map_err(|e| ImapError::TlsSetup {
        host: ep.host.clone(),
        what: "the host is not a valid DNS name or IP address".into(),
        source: Some(e.into()),
    })?;
    let (stream, first) = Sniff::new(tcp);
    let connector = TlsConnector::from(setup.config);
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Err(_) => Err(ImapError::Timeout {
            host: ep.host.clone(),
            waiting_for: "the TLS handshake".into(),
            secs: timeout.as_secs(),
        }),
        Ok(Ok(tls)) => {
            let conn = tls.get_ref().1;
            let version = conn
                .protocol_version()
                .map(|v| match v {
                    rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
                    rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_else(|| "?".into());
            let cipher = conn
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()))
                .unwrap_or_else(|| "?".into());
            let (certificate, trusted_by) = match setup.verifier.seen() {
                Some((info, t)) => (Some(info), t.unwrap_or(TrustedBy::Chain)),
                None => (None, TrustedBy::Chain),
            };
            Ok((
                Box::new(tls),
                TlsInfo {
                    version,
                    cipher,
                    certificate,
                    trusted_by,
                },
            ))
        }
        Ok(Err(e)) => {
            let sniffed = first.lock().expect("sniff lock").clone();
            if is_plain_imap(&sniffed) {
                return Err(ImapError::NotTls {
                    host: ep.host.clone(),
                    port: ep.port,
                    said: printable_line(&sniffed),
                });
            }
            let is_rustls = e
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            if !is_rustls && sniffed.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof {
                // Closed after our hello without a word: what OpenSSL
                // servers do when no version or cipher suite is shared.
                return Err(ImapError::NoCommonTls {
                    host: ep.host.clone(),
                    port: ep.port,
                    closed: true,
                    source: Box::new(e),
                });
            }
            if !is_rustls {
                return Err(ImapError::Disconnected {
                    host: ep.host.clone(),
                    during: "the TLS handshake".into(),
                    source: Some(e.into()),
                });
            }
            let source = e.into_inner().expect("checked above");
            let rustls_err = source
                .downcast_ref::<rustls::Error>()
                .expect("checked above")
                .clone();
            Err(classify(ep, rustls_err, source, &setup.verifier))
        }
    }
}

/// Turns rustls's verdict into an error that says what is wrong.
fn classify(
    ep: &Endpoint,
    err: rustls::Error,
    source: Box<dyn std::error::Error + Send + Sync>,
    verifier: &Verifier,
) -> ImapError {
    use rustls::Error as E;
    match err {
        E::InvalidCertificate(ce) => {
            let cert = verifier.seen().map(|(c, _)| Box::new(c));
            let problem = match ce {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    CertProblem::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    CertProblem::NotYetValid
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => CertProblem::WrongName,
                CertificateError::Revoked => CertProblem::Revoked,
                CertificateError::UnknownIssuer => CertProblem::UnknownIssuer,
                CertificateError::Other(o) if format!("{o:?}").contains("CaUsedAsEndEntity") => {
                    CertProblem::UnknownIssuer
                }
                other => CertProblem::Other(format!("{other:?}")),
            };
            ImapError::Certificate {
                host: ep.host.clone(),
                port: ep.port,
                problem,
                cert,
            }
        }
        E::AlertReceived(
            AlertDescription::HandshakeFailure
            | AlertDescription::InsufficientSecurity
            | AlertDescription::ProtocolVersion
            | AlertDescription::IllegalParameter,
        )
        | E::PeerIncompatible(_) => ImapError::NoCommonTls {
            host: ep.host.clone(),
            port: ep.port,
            closed: false,
            source,
        },
        _ => ImapError::Tls {
            host: ep.host.clone(),
            source,
        },
    }
}

/// Accepts any certificate: only to find out whether a port speaks TLS.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Whether the port answers a TLS handshake, on a connection of its own
/// that sends nothing else and is closed at once. Used when a server that
/// should greet in plain text stays silent: an implicit-TLS port waits for
/// the client's hello and would never greet.
pub(crate) async fn speaks_tls(addr: SocketAddr, host: &str, timeout: Duration) -> bool {
    let Ok(Ok(tcp)) = tokio::time::timeout(timeout, TcpStream::connect(addr)).await else {
        return false;
    };
    let provider = provider();
    let Ok(builder) =
        ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()
    else {
        return false;
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(bare_host(host).to_string())
        .unwrap_or_else(|_| ServerName::try_from("localhost").expect("valid name"));
    let connector = TlsConnector::from(Arc::new(config));
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Ok(Ok(_)) => true,
        // A TLS alert is TLS too (no common cipher, say).
        Ok(Err(e)) => e.get_ref().is_some_and(|inner| {
            matches!(
                inner.downcast_ref::<rustls::Error>(),
                Some(rustls::Error::AlertReceived(_) | rustls::Error::PeerIncompatible(_))
            )
        }),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1",
            "localhost.example.com",
            "::2",
            "",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    fn ep_with_ca(path: std::path::PathBuf) -> Endpoint {
        Endpoint {
            host: "localhost".into(),
            port: 993,
            tls: crate::model::TlsMode::Implicit,
            username: "u".into(),
            ca_file: Some(path),
            tls_fingerprint: None,
        }
    }

    #[test]
    fn ca_file_without_certificates_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = client_config(&ep_with_ca(path)).err().unwrap();
        assert_eq!(err.kind(), super::super::ErrorKind::Config);
        assert!(err.to_string().contains("holds no certificate"), "{err}");
    }

    #[test]
    fn missing_ca_file_is_a_configuration_error_naming_the_file() {
        let err = client_config(&ep_with_ca("/nonexistent/ca.pem".into()))
            .err()
            .unwrap();
        assert_eq!(err.kind(), super::super::ErrorKind::Config);
        let text = err.to_string();
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
        assert!(text.contains("does not exist"), "{text}");
    }

    #[test]
    fn plain_imap_is_recognised() {
        assert!(is_plain_imap(
            b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"
        ));
        assert!(!is_plain_imap(&[0x16, 0x03, 0x03, 0x00, 0x7a]));
        assert_eq!(printable_line(b"* OK hi\r\nmore"), "* OK hi");
    }
}

//! TCP connect and TLS (implicit or after STARTTLS) with tokio-rustls and the
//! `ring` provider: system roots (webpki-roots if none load) plus the
//! endpoint's own CA file; certificate and host name always verified.

use std::fmt;
use std::io::BufReader;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::error::ImapError;
use crate::model::Endpoint;

/// Anything a session can run over: a TLS stream, or plain TCP to loopback.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}
pub(crate) type Stream = Box<dyn Io>;

/// Loopback hosts, the only ones that may be reached without TLS.
pub(crate) fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub(crate) async fn connect_tcp(ep: &Endpoint, timeout: Duration) -> Result<TcpStream, ImapError> {
    let host = ep.host.trim_start_matches('[').trim_end_matches(']');
    match tokio::time::timeout(timeout, TcpStream::connect((host, ep.port))).await {
        Err(_) => Err(ImapError::Timeout {
            host: ep.host.clone(),
            waiting_for: format!("the TCP connection to port {}", ep.port),
            secs: timeout.as_secs(),
        }),
        Ok(Err(source)) => Err(ImapError::Connect {
            host: ep.host.clone(),
            port: ep.port,
            source,
        }),
        Ok(Ok(tcp)) => {
            // Small commands and the end of literals must not wait for Nagle.
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
    }
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

pub(crate) fn client_config(ep: &Endpoint) -> Result<Arc<ClientConfig>, ImapError> {
    let setup = |what: String, source: Option<Box<dyn std::error::Error + Send + Sync>>| {
        ImapError::TlsSetup {
            host: ep.host.clone(),
            what,
            source,
        }
    };
    let mut roots = system_roots().clone();
    if let Some(path) = &ep.ca_file {
        let file = std::fs::File::open(path).map_err(|e| {
            setup(
                format!("cannot read CA file {}", path.display()),
                Some(e.into()),
            )
        })?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut BufReader::new(file)) {
            let cert = cert.map_err(|e| {
                setup(
                    format!("cannot parse CA file {}", path.display()),
                    Some(e.into()),
                )
            })?;
            roots.add(cert).map_err(|e| {
                setup(
                    format!("unusable certificate in {}", path.display()),
                    Some(e.into()),
                )
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(setup(
                format!("no PEM certificate in CA file {}", path.display()),
                None,
            ));
        }
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| setup("no usable TLS protocol version".into(), Some(e.into())))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Runs the TLS handshake over `stream`. A rustls verdict (bad certificate,
/// wrong host name, no common cipher) is a [`ImapError::Tls`] with rustls's
/// error as the source; an I/O failure during the handshake is a network error.
pub(crate) async fn wrap(
    stream: Stream,
    ep: &Endpoint,
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<Stream, ImapError> {
    let host = ep.host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_string()).map_err(|e| ImapError::TlsSetup {
        host: ep.host.clone(),
        what: "the host is not a valid DNS name or IP address".into(),
        source: Some(e.into()),
    })?;
    let connector = TlsConnector::from(config);
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Err(_) => Err(ImapError::Timeout {
            host: ep.host.clone(),
            waiting_for: "the TLS handshake".into(),
            secs: timeout.as_secs(),
        }),
        Ok(Ok(tls)) => Ok(Box::new(tls)),
        Ok(Err(e)) => {
            let is_rustls = e
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            if is_rustls {
                let source = e.into_inner().expect("checked above");
                Err(ImapError::Tls {
                    host: ep.host.clone(),
                    source,
                })
            } else {
                Err(ImapError::Disconnected {
                    host: ep.host.clone(),
                    during: "the TLS handshake".into(),
                    source: Some(e.into()),
                })
            }
        }
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

    #[test]
    fn ca_file_without_certificates_is_a_tls_setup_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let ep = Endpoint {
            host: "localhost".into(),
            port: 993,
            tls: crate::model::TlsMode::Implicit,
            username: "u".into(),
            ca_file: Some(path),
        };
        let err = client_config(&ep).unwrap_err();
        assert_eq!(err.kind(), super::super::ErrorKind::Tls);
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }
}

//! Certificates for the test servers (generated in-process with rcgen) and the
//! rustls client configuration of the harness's own IMAP client.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

/// PEM texts of a fresh CA and of a server certificate it signed for
/// `localhost` and `127.0.0.1`.
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

/// The server certificates users really have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CertKind {
    /// Signed by a test CA (`ca.pem`), for `localhost` and `127.0.0.1`.
    #[default]
    CaSigned,
    /// Self-signed and its own CA (CA:TRUE), as `openssl req -x509` makes it;
    /// `ca.pem` is the certificate itself.
    SelfSignedCa,
    /// Self-signed, CA:FALSE (Debian's snakeoil); `ca.pem` is the certificate itself.
    SelfSignedLeaf,
    /// CA-signed, but expired in 2021.
    Expired,
    /// CA-signed for `mail.example.com` only.
    WrongName,
}

/// Generates the server's certificate of the given kind (and `ca.pem`).
pub fn generate(kind: CertKind) -> TestPki {
    let self_signed = |is_ca: bool| {
        let key = KeyPair::generate().expect("generate key");
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        p.subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        p.distinguished_name.push(DnType::CommonName, "localhost");
        if is_ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
        } else {
            p.is_ca = IsCa::ExplicitNoCa;
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        }
        let cert = p.self_signed(&key).expect("self-sign");
        TestPki {
            ca_pem: cert.pem(),
            server_cert_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
        }
    };
    match kind {
        CertKind::CaSigned => generate_pki(),
        CertKind::SelfSignedCa => self_signed(true),
        CertKind::SelfSignedLeaf => self_signed(false),
        CertKind::Expired => generate_leaf(&["localhost"], Some((2020, 2021))),
        CertKind::WrongName => generate_leaf(&["mail.example.com"], None),
    }
}

/// Generates a CA and a leaf certificate for `localhost` / `127.0.0.1`.
pub fn generate_pki() -> TestPki {
    generate_leaf(&["localhost"], None)
}

/// A CA and a leaf for `names` (and 127.0.0.1 when `localhost` is one),
/// valid from January of the first year to January of the second when given.
fn generate_leaf(names: &[&str], years: Option<(i32, i32)>) -> TestPki {
    let ca_key = KeyPair::generate().expect("generate CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mailkeep test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("self-sign CA");

    let leaf_key = KeyPair::generate().expect("generate server key");
    let mut leaf_params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("server cert params");
    if names.contains(&"localhost") {
        leaf_params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
    }
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, names[0]);
    if let Some((from, to)) = years {
        leaf_params.not_before = rcgen::date_time_ymd(from, 1, 1);
        leaf_params.not_after = rcgen::date_time_ymd(to, 1, 1);
    }
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca)
        .expect("sign server certificate");

    TestPki {
        ca_pem: ca.pem(),
        server_cert_pem: leaf.pem(),
        server_key_pem: leaf_key.serialize_pem(),
    }
}

/// A rustls client configuration (ring provider) that trusts only the CA in `ca_file`.
pub fn client_config(ca_file: &Path) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(ca_file)
        .unwrap_or_else(|e| panic!("cannot read CA file {}: {e}", ca_file.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut BufReader::new(&pem[..])) {
        let cert = cert.unwrap_or_else(|e| panic!("bad PEM in {}: {e}", ca_file.display()));
        roots
            .add(cert)
            .unwrap_or_else(|e| panic!("cannot add CA from {}: {e}", ca_file.display()));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("rustls protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

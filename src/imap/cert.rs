//! What a server's certificate says — subject, issuer, validity, names, the
//! SHA-256 fingerprint — for error messages, `doctor` and pinning.

use serde::Serialize;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::model::CertPin;

/// A server certificate, described for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// `CN=localhost, O=Example` (RFC 4514 order as the certificate has it).
    pub subject: String,
    pub issuer: String,
    /// Validity, unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// The DNS names and IP addresses it is valid for (subjectAltName).
    pub names: Vec<String>,
    /// basicConstraints CA:TRUE (what `openssl req -x509` makes).
    pub is_ca: bool,
    /// Issuer and subject are the same: nobody else vouches for it.
    pub self_signed: bool,
    /// SHA-256 of the DER bytes, lower-case hex.
    pub sha256: String,
}

/// SHA-256 of a certificate's DER bytes.
pub fn sha256(der: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl CertInfo {
    /// Describes a DER certificate; fields it cannot read are `?`.
    pub fn from_der(der: &[u8]) -> CertInfo {
        let hash = sha256(der);
        let sha256: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        match X509Certificate::from_der(der) {
            Ok((_, cert)) => {
                let mut names = Vec::new();
                let mut is_ca = false;
                if let Ok(Some(san)) = cert.subject_alternative_name() {
                    for n in &san.value.general_names {
                        match n {
                            GeneralName::DNSName(d) => names.push(d.to_string()),
                            GeneralName::IPAddress(ip) => names.push(ip_text(ip)),
                            _ => {}
                        }
                    }
                }
                if let Ok(Some(bc)) = cert.basic_constraints() {
                    is_ca = bc.value.ca;
                }
                let subject = cert.subject().to_string();
                let issuer = cert.issuer().to_string();
                CertInfo {
                    self_signed: subject == issuer,
                    subject: or_unknown(subject),
                    issuer: or_unknown(issuer),
                    not_before: cert.validity().not_before.timestamp(),
                    not_after: cert.validity().not_after.timestamp(),
                    names,
                    is_ca,
                    sha256,
                }
            }
            Err(_) => CertInfo {
                subject: "?".into(),
                issuer: "?".into(),
                not_before: 0,
                not_after: 0,
                names: Vec::new(),
                is_ca: false,
                self_signed: false,
                sha256,
            },
        }
    }

    /// The value for `tls_fingerprint`: `sha256:` and 64 hex digits.
    pub fn pin(&self) -> String {
        format!("sha256:{}", self.sha256)
    }

    /// `AB:CD:…`, as `openssl x509 -fingerprint -sha256` prints it.
    pub fn fingerprint_colons(&self) -> String {
        let up = self.sha256.to_ascii_uppercase();
        up.as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap_or("??"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// `2026-05-01 to 2027-05-01`.
    pub fn validity(&self) -> String {
        format!("{} to {}", day(self.not_before), day(self.not_after))
    }

    /// Whether `pin` names this very certificate.
    pub fn matches(&self, pin: &CertPin) -> bool {
        pin.hex() == self.sha256
    }

    /// The lines an error shows about it, indented by two spaces.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "  subject:  {}\n  issuer:   {}{}\n  valid:    {}\n",
            self.subject,
            self.issuer,
            if self.self_signed {
                " (self-signed)"
            } else {
                ""
            },
            self.validity()
        );
        if !self.names.is_empty() {
            s.push_str(&format!("  names:    {}\n", self.names.join(", ")));
        }
        s.push_str(&format!("  SHA-256:  {}", self.fingerprint_colons()));
        s
    }
}

fn or_unknown(s: String) -> String {
    if s.is_empty() {
        "(empty)".into()
    } else {
        s
    }
}

/// A UTC date from unix seconds.
pub(crate) fn day(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "?".into())
}

fn ip_text(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_described_without_panicking() {
        let info = CertInfo::from_der(b"not a certificate");
        assert_eq!(info.subject, "?");
        assert_eq!(info.sha256.len(), 64);
        assert!(info.pin().starts_with("sha256:"));
        assert_eq!(info.fingerprint_colons().len(), 32 * 3 - 1);
    }
}

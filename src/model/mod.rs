//! Plain types shared by every layer. No I/O here, and no dependency on any other
//! module of the crate.

pub mod records;

use std::fmt;

/// A message's UID within one mailbox generation (RFC 3501 §2.3.1.1).
pub type Uid = u32;
/// A mailbox's UIDVALIDITY; a change means a new generation of the folder.
pub type UidValidity = u32;

/// The id of a stored message: the BLAKE3 hash of its exact bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    pub fn of(bytes: &[u8]) -> BlobId {
        BlobId(*blake3::hash(bytes).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Parses a full 64-digit hex id.
    pub fn from_hex(s: &str) -> Option<BlobId> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).ok()?;
            out[i] = u8::from_str_radix(hex, 16).ok()?;
        }
        Some(BlobId(out))
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Message flags as the server gave them, system flags with their backslash
/// (`\Seen`) and keywords as they are (`$Forwarded`). `\Recent` is never kept:
/// it belongs to a session, not to a message.
///
/// Shared, not copied: each thread keeps the last distinct sets it made
/// (`SHARED`) and hands out the same one again. A listing of a big folder
/// holds one flag set per message, most of them the same few; a `Vec` of
/// `String`s each, 200,000 of them took 22 MB.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(std::sync::Arc<[String]>);

/// How many distinct flag sets a thread keeps to share; past that, a new
/// set is made as it is (a folder whose every message has keywords of its
/// own).
const SHARED_SETS: usize = 64;

thread_local! {
    static SHARED: std::cell::RefCell<Vec<Flags>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Flags {
    pub fn new<I, S>(flags: I) -> Flags
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut v: Vec<String> = flags
            .into_iter()
            .map(Into::into)
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent") && !f.is_empty())
            .collect();
        v.sort_by_key(|f| f.to_ascii_lowercase());
        v.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        SHARED.with(|cell| {
            let mut shared = cell.borrow_mut();
            if let Some(f) = shared.iter().find(|f| *f.0 == *v) {
                return f.clone();
            }
            let f = Flags(v.into());
            if shared.len() < SHARED_SETS {
                shared.push(f.clone());
            }
            f
        })
    }

    /// Space-separated, sorted: the form kept in the index and in ref records.
    pub fn to_text(&self) -> String {
        self.0.join(" ")
    }

    pub fn from_text(s: &str) -> Flags {
        Flags::new(s.split_ascii_whitespace())
    }

    pub fn contains(&self, flag: &str) -> bool {
        self.0.iter().any(|f| f.eq_ignore_ascii_case(flag))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Maildir info letters (`:2,` suffix), in ASCII order as the spec asks.
    pub fn maildir_letters(&self) -> String {
        let mut letters = Vec::new();
        for (flag, letter) in [
            ("\\Draft", 'D'),
            ("\\Flagged", 'F'),
            ("$Forwarded", 'P'),
            ("\\Answered", 'R'),
            ("\\Seen", 'S'),
            ("\\Deleted", 'T'),
        ] {
            if self.contains(flag) {
                letters.push(letter);
            }
        }
        letters.sort_unstable();
        letters.into_iter().collect()
    }

    pub fn from_maildir_letters(letters: &str) -> Flags {
        let mut v = Vec::new();
        for c in letters.chars() {
            let f = match c {
                'D' => "\\Draft",
                'F' => "\\Flagged",
                'P' => "$Forwarded",
                'R' => "\\Answered",
                'S' => "\\Seen",
                'T' => "\\Deleted",
                _ => continue,
            };
            v.push(f);
        }
        Flags::new(v)
    }
}

/// Seconds since the Unix epoch, UTC, plus the zone offset the server gave, so
/// an INTERNALDATE can be sent back exactly as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InternalDate {
    pub unix: i64,
    /// Offset east of UTC in minutes (+0900 → 540).
    pub offset_min: i32,
}

impl InternalDate {
    /// Parses the IMAP date-time form `"17-Jul-1996 02:44:25 -0700"`.
    pub fn parse_imap(s: &str) -> Option<InternalDate> {
        let s = s.trim().trim_matches('"').trim();
        let dt = chrono::DateTime::parse_from_str(s, "%d-%b-%Y %H:%M:%S %z").ok()?;
        Some(InternalDate {
            unix: dt.timestamp(),
            offset_min: dt.offset().local_minus_utc() / 60,
        })
    }

    /// The IMAP date-time form, with the original zone.
    pub fn to_imap(&self) -> String {
        let offset = chrono::FixedOffset::east_opt(self.offset_min * 60)
            .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
        let dt = chrono::DateTime::from_timestamp(self.unix, 0)
            .unwrap_or_default()
            .with_timezone(&offset);
        dt.format("%d-%b-%Y %H:%M:%S %z").to_string()
    }

    /// The asctime-like form of an mbox `From ` line, in UTC.
    pub fn to_mbox(&self) -> String {
        let dt = chrono::DateTime::from_timestamp(self.unix, 0).unwrap_or_default();
        dt.format("%a %b %e %H:%M:%S %Y").to_string()
    }

    pub fn to_rfc3339(&self) -> String {
        let offset = chrono::FixedOffset::east_opt(self.offset_min * 60)
            .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
        chrono::DateTime::from_timestamp(self.unix, 0)
            .unwrap_or_default()
            .with_timezone(&offset)
            .to_rfc3339()
    }
}

/// How the connection to a server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    #[default]
    Implicit,
    /// Plain connect, then STARTTLS, which must be offered (port 143).
    Starttls,
    /// No TLS at all: allowed only for loopback hosts.
    None,
}

impl TlsMode {
    /// As the config file writes it (`tls = "starttls"`).
    pub fn config_name(self) -> &'static str {
        match self {
            TlsMode::Implicit => "implicit",
            TlsMode::Starttls => "starttls",
            TlsMode::None => "none",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Implicit => 993,
            TlsMode::Starttls | TlsMode::None => 143,
        }
    }
}

/// Where and as whom to connect. The password is not part of it: it is
/// resolved separately and passed as a [`Secret`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    /// Extra trusted roots (PEM), for private CAs and tests. A certificate
    /// in it that is the server's own (self-signed, CA:TRUE or not) is
    /// trusted as that server's certificate.
    pub ca_file: Option<std::path::PathBuf>,
    /// `tls_fingerprint`: trust exactly the certificate with this SHA-256.
    pub tls_fingerprint: Option<CertPin>,
}

/// A certificate pinned by its SHA-256 fingerprint (`sha256:` then 64 hex
/// digits, colons allowed, any case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CertPin(pub [u8; 32]);

impl CertPin {
    /// Parses `sha256:ab12…` (or `sha256:AB:12:…`); says what is wrong otherwise.
    pub fn parse(s: &str) -> Result<CertPin, String> {
        let t = s.trim();
        let Some(hex) = t
            .strip_prefix("sha256:")
            .or_else(|| t.strip_prefix("SHA256:"))
            .or_else(|| t.strip_prefix("sha256="))
        else {
            return Err(format!(
                "`{s}` does not start with `sha256:` (only SHA-256 fingerprints are taken)"
            ));
        };
        let digits: String = hex.chars().filter(|c| *c != ':').collect();
        if digits.len() != 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "`{s}` is not a SHA-256 fingerprint: want 64 hex digits after `sha256:`, found {}",
                digits.len()
            ));
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(CertPin(out))
    }

    /// Lower-case hex, no colons.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for CertPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

/// A password or token. Its `Debug` never shows the value, so it cannot leak
/// into logs or error messages by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What an account logs in with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A password (or an app-specific password): AUTHENTICATE PLAIN or LOGIN.
    Password(Secret),
    /// An OAuth2 access token: SASL OAUTHBEARER (RFC 7628) or XOAUTH2.
    Bearer(Secret),
}

/// A mailbox as listed by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folder {
    /// The name exactly as on the wire (modified UTF-7), used in commands.
    pub raw: String,
    /// The name decoded for people (`送信済み`).
    pub display: String,
    /// Hierarchy separator, if the server has one.
    pub delimiter: Option<char>,
    /// `\Sent`, `\Drafts`, … when the server says so (RFC 6154).
    pub special_use: Option<String>,
    /// `\Noselect` / `\NonExistent`: a node of the tree, not a mailbox.
    pub selectable: bool,
}

/// What EXAMINE told us about a mailbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailboxState {
    pub uidvalidity: UidValidity,
    pub uidnext: Option<Uid>,
    pub exists: u32,
    /// Present when the server has CONDSTORE and the mailbox supports modseqs.
    pub highestmodseq: Option<u64>,
}

/// One message's metadata as the server lists it (no bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: Uid,
    pub flags: Flags,
    pub internaldate: InternalDate,
    pub size: u64,
    pub modseq: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_with_or_without_colons() {
        let hex = "ab".repeat(32);
        let a = CertPin::parse(&format!("sha256:{hex}")).unwrap();
        let colons = vec!["AB"; 32].join(":");
        let b = CertPin::parse(&format!("sha256:{colons}")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), format!("sha256:{hex}"));
        assert!(CertPin::parse(&hex).unwrap_err().contains("sha256:"));
        assert!(CertPin::parse("sha256:abcd")
            .unwrap_err()
            .contains("64 hex digits"));
    }

    #[test]
    fn flags_are_sorted_deduplicated_and_drop_recent() {
        let f = Flags::new(["\\Seen", "\\Recent", "$Label1", "\\seen", "\\Answered"]);
        assert_eq!(f.to_text(), "$Label1 \\Answered \\Seen");
        assert_eq!(Flags::from_text(&f.to_text()), f);
    }

    #[test]
    fn the_same_flags_are_one_shared_set_and_others_still_differ() {
        let a = Flags::new(["\\Seen", "$Work"]);
        let b = Flags::from_text("\\Seen $Work");
        // Equal sets, given in another order: one copy in memory.
        assert!(std::sync::Arc::ptr_eq(&a.0, &b.0));
        assert_ne!(a, Flags::new(["\\Seen"]));
        // Past the sets a thread keeps, new ones are made as they are.
        let many: Vec<Flags> = (0..SHARED_SETS + 10)
            .map(|i| Flags::new([format!("$k{i}")]))
            .collect();
        assert_eq!(
            many.last().unwrap().to_text(),
            format!("$k{}", SHARED_SETS + 9)
        );
        assert_eq!(Flags::new(["\\Seen", "$Work"]), a);
    }

    #[test]
    fn maildir_letters_round_trip() {
        let f = Flags::new(["\\Seen", "\\Flagged", "\\Answered", "\\Draft"]);
        assert_eq!(f.maildir_letters(), "DFRS");
        assert_eq!(Flags::from_maildir_letters("DFRS"), f);
    }

    #[test]
    fn internaldate_keeps_its_zone() {
        let d = InternalDate::parse_imap("\"17-Jul-1996 02:44:25 -0700\"").unwrap();
        assert_eq!(d.offset_min, -420);
        assert_eq!(d.to_imap(), "17-Jul-1996 02:44:25 -0700");
        let jp = InternalDate::parse_imap(" 1-Jan-2024 09:00:00 +0900").unwrap();
        assert_eq!(jp.unix, 1704067200);
        assert_eq!(jp.to_imap(), "01-Jan-2024 09:00:00 +0900");
    }

    #[test]
    fn blob_id_hex_round_trip() {
        let id = BlobId::of(b"hello");
        assert_eq!(BlobId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(BlobId::from_hex("zz"), None);
    }

    #[test]
    fn secret_never_prints() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}

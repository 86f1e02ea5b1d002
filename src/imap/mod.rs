//! IMAP client: connection (TLS, STARTTLS), authentication, commands, response
//! checks, mailbox names. Hides async-imap behind [`Connection`].
//!
//! Uses: `model` only. Never touches `store` or `index`.
//!
//! async-imap serves only as the framing and parsing layer; commands are
//! written and their tagged completions checked by our own loop (`wire.rs`),
//! which closes async-imap's known holes: swallowed tagged NO/BAD, dropped
//! APPENDUID, the bounded unsolicited channel, responses it cannot parse
//! (NAMESPACE). Every network wait has [`ConnectOptions::timeout`].
//!
//! API: [`Connection::connect`] → `list`, `namespace`, `examine`/`select`,
//! `uid_search_all`, `fetch_meta`, `fetch_flags`, `fetch_bodies`,
//! `fetch_body_chunked`, `fetch_identity`, `create`, `append` (→ APPENDUID),
//! `append_from` (the same, streaming a big message from a reader), `usable`, `uid_store_add_deleted`,
//! `uid_expunge` (UIDPLUS only), `quota_root`, `noop`, `logout`. Errors are
//! [`ImapError`] with [`ErrorKind`] and [`ImapError::retryable`]. Names:
//! [`decode_mailbox_name`]/[`encode_mailbox_name`] (modified UTF-7),
//! [`compress_uid_set`].
//!
//! Files: `conn.rs` (connect, TLS/STARTTLS, login), `commands.rs` (mailbox and
//! message commands), `wire.rs` (command/response loop), `tls.rs` (rustls
//! setup), `names.rs` (modified UTF-7, UID sets), `namespace.rs`, `error.rs`.

mod cert;
mod commands;
mod conn;
mod error;
mod ids;
mod names;
mod namespace;
mod tls;
pub mod trace;
mod wire;

#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

pub use cert::CertInfo;
pub use commands::{AppendMessage, MessageIdentity, QuotaResource, QuotaRoot};
pub use conn::{Capabilities, ConnectOptions, Connection, Stage};
pub use error::{
    throttle_in_text, BoxError, CertProblem, ErrorKind, ImapError, Pace, ServerResponse,
};
pub use ids::MessageIds;
pub use names::{compress_uid_set, decode_mailbox_name, encode_mailbox_name};
pub use namespace::Namespace;
pub use tls::{
    https_client_config, is_loopback as is_loopback_host, read_ca_file, resolve, TlsInfo, TrustedBy,
};

//! IMAP client: connection (TLS, STARTTLS), authentication, commands, response
//! checks, mailbox names. Hides async-imap behind [`Connection`].
//!
//! Uses: `model` only. Never touches `store` or `index`.
//!
//! CONTRACT (filled in by the imap work; keep these signatures):
//!
//! ```ignore
//! pub struct Connection;                       // one authenticated session
//! pub struct ConnectOptions { pub timeout: Duration }   // Default: 60 s per await
//! pub struct Capabilities;                     // has("CONDSTORE"), has("UIDPLUS"), …
//! pub enum ImapError { … }                     // thiserror; see kind()
//! pub enum ErrorKind { Auth, Network, Tls, Protocol, Refused }
//!
//! impl Connection {
//!     pub async fn connect(ep: &Endpoint, password: &Secret, opts: &ConnectOptions) -> Result<Connection, ImapError>;
//!     pub fn capabilities(&self) -> &Capabilities;
//!     pub async fn list(&mut self) -> Result<Vec<Folder>, ImapError>;
//!     pub async fn examine(&mut self, raw: &str) -> Result<MailboxState, ImapError>;
//!     pub async fn uid_search_all(&mut self) -> Result<Vec<Uid>, ImapError>;
//!     pub async fn fetch_meta(&mut self, uids: &str, changed_since: Option<u64>) -> Result<Vec<MessageMeta>, ImapError>;
//!     pub async fn fetch_bodies(&mut self, uids: &[Uid], on_message: &mut (dyn FnMut(Uid, Vec<u8>) -> Result<(), BoxError> + Send)) -> Result<(), ImapError>;
//!     pub async fn fetch_body_chunked(&mut self, uid: Uid, size: u64, chunk: u32, on_chunk: &mut (dyn FnMut(&[u8]) -> Result<(), BoxError> + Send)) -> Result<(), ImapError>;
//!     pub async fn logout(self) -> Result<(), ImapError>;
//! }
//! pub fn decode_utf7(raw: &str) -> String;   pub fn encode_utf7(display: &str) -> String;
//! ```

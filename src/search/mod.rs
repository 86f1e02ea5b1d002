//! Search: what the index stores about a message and how a query reads.
//!
//! Uses: index, store, formats, model (and mail-parser, encoding_rs). Between
//! `ops` and `index`: [`extract`] turns a message's bytes into decoded text
//! (subject, addresses, text bodies, attachment names) for the index and for
//! `show`, with [`header`] for header fields and [`charset`] for every
//! charset (and a wrong declared one); [`fold`] is the one form text takes
//! in the index and in a query (NFKC, case folding); [`query`] parses the
//! query language into an [`crate::index::SearchFilter`]. Reading and
//! writing the store is `ops::search`'s job.

pub mod charset;
pub mod extract;
pub mod fold;
pub mod header;
pub mod query;
pub mod tokens;

pub use extract::{extract, Attachment, Extracted};
pub use query::{parse_query, Query, QueryError};

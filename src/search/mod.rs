//! Search: what the index stores about a message and how a query reads.
//!
//! Uses: index, store, model (and mail-parser). Between `ops` and `index`:
//! [`extract`] turns a message's bytes into decoded text (subject,
//! addresses, text bodies, attachment names) for the index and for `show`;
//! [`query`] parses the query language into an [`crate::index::SearchFilter`].
//! Reading and writing the store is `ops::search`'s job.

pub mod extract;
pub mod query;

pub use extract::{extract, Attachment, Extracted};
pub use query::{parse_query, Query, QueryError};

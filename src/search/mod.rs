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

/// 5,000 strings of up to `max_len` characters drawn from `alphabet` by a
/// fixed xorshift stream from `seed`: for the tests that hold a quick path
/// to the rule it stands for.
#[cfg(test)]
pub(crate) fn random_strings(mut seed: u64, alphabet: &[char], max_len: u64) -> Vec<String> {
    (0..5000)
        .map(|_| {
            let n = seed % (max_len + 1);
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect()
        })
        .collect()
}

//! mailkeep: mirror IMAP accounts into a compressed local store, then archive,
//! search, restore and migrate from it.
//!
//! Layers, each may use only those below it (see docs/design.md):
//! `cli` → `ops` → `sync`, `search` → `imap`, `store` → `index` → `formats`,
//! `config` → `model`; `heap` (the allocator's settings) is used from any.

pub mod cli;
pub mod config;
pub mod formats;
pub mod heap;
pub mod imap;
pub mod index;
pub mod model;
pub mod oauth;
pub mod ops;
pub mod search;
pub mod store;
pub mod sync;

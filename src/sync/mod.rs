//! The sync engine: plan.rs decides, exec.rs applies. Uses: imap, store, index, model.
pub mod exec;
pub mod plan;
pub mod share;

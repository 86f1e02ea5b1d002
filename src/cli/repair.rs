//! `mailkeep repair`: rebuild the index from the packs.

use crate::ops::OpError;
use crate::store::Store;

use super::Globals;

pub fn run(g: &Globals) -> Result<i32, OpError> {
    if !g.store_path.join("index.sqlite").exists() && !g.store_path.join("packs").exists() {
        return Err(crate::store::StoreError::Missing(g.store_path.clone()).into());
    }
    let mut store = Store::open(&g.store_path)?;
    let n = store.rebuild_index()?;
    let t = store.index().totals()?;
    println!(
        "rebuilt the index from the packs: {n} records, {} messages, {} unique",
        t.messages, t.blobs
    );
    Ok(0)
}

//! `mailkeep verify [--deep] [--server ACCOUNT]`

use crate::ops::verify::{verify_server, verify_store};
use crate::ops::{FailureKind, OpError};

use super::progress::Bars;
use super::Globals;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Also decompress every message and check its hash.
    #[arg(long)]
    deep: bool,
    /// Compare per-folder counts and UIDs with this account's server (read-only).
    #[arg(long, value_name = "ACCOUNT")]
    server: Option<String>,
}

pub async fn run(g: &Globals, args: VerifyArgs) -> Result<i32, OpError> {
    let store = g.store_to_read()?;
    let bars = Bars::new(g.progress);
    let total = store.index().totals()?.blobs;
    let bar = bars.counter(total, if args.deep { "re-hashing" } else { "checking" });
    let report = verify_store(&store, args.deep, &mut |done, _| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    })?;
    bars.clear();
    let mut failed = None;
    if report.problems.is_empty() {
        println!(
            "store: {} messages in {} packs {}, no problems",
            report.blobs_checked,
            report.packs_checked,
            if args.deep {
                "decompressed and re-hashed"
            } else {
                "checked"
            }
        );
    } else {
        for p in &report.problems {
            eprintln!("error: {p}");
        }
        println!(
            "store: {} problems in {} messages",
            report.problems.len(),
            report.blobs_checked
        );
        eprintln!("hint: `mailkeep repair` rebuilds the index from the packs; damaged messages can be fetched again by `mailkeep backup` while they are still on the server");
        failed = Some(FailureKind::Store);
    }
    if let Some(account) = &args.server {
        let config = g.load_config()?;
        let rows = verify_server(&config, account, &store).await?;
        let width = rows
            .iter()
            .map(|r| super::display_width(&r.folder))
            .max()
            .unwrap_or(6)
            .max(6);
        println!();
        println!(
            "{:width$}  {:>9}  {:>7}  {:>16}  {:>13}",
            "folder", "on server", "stored", "missing in store", "only in store"
        );
        let mut behind = false;
        for r in &rows {
            println!(
                "{}  {:>9}  {:>7}  {:>16}  {:>13}{}",
                super::pad(&r.folder, width),
                r.on_server,
                r.stored,
                r.missing_in_store.len(),
                r.only_in_store.len(),
                if r.uidvalidity_differs {
                    "  (UIDVALIDITY changed since the last backup)"
                } else {
                    ""
                }
            );
            behind |= !r.in_step();
        }
        if behind {
            println!("the store is not in step with the server");
            eprintln!("hint: `mailkeep backup {account}` fetches what is missing and records what left the server");
            failed = failed.or(Some(FailureKind::Partial));
        } else {
            println!("every message on the server is in the store");
        }
    }
    Ok(super::combine([failed]))
}

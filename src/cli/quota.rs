//! `mailkeep quota ACCOUNT… [--all] [--json]`

use super::out::outln;
use crate::ops::quota::{quota, QuotaReport};

use super::fmt::{describe_count, describe_storage};
use crate::ops::OpError;

use super::{report_account_error, Globals};

#[derive(clap::Args, Debug)]
pub struct QuotaArgs {
    /// Accounts to ask (names from the config file).
    #[arg(
        value_name = "ACCOUNT",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    accounts: Vec<String>,
    /// Ask every configured account.
    #[arg(long)]
    all: bool,
    /// Machine-readable output (storage in bytes).
    #[arg(long)]
    json: bool,
}

pub async fn run(g: &Globals, args: QuotaArgs) -> Result<i32, OpError> {
    let config = g.load_config()?;
    let names = g.account_names(&config, args.all, &args.accounts)?;
    let mut reports = Vec::new();
    let mut kinds = Vec::new();
    for name in &names {
        match quota(&config, name, &g.store_path).await {
            Ok(r) => {
                if !args.json {
                    print_report(&r);
                }
                reports.push(r);
                kinds.push(None);
            }
            Err(e) => {
                report_account_error(name, names.len() > 1, &e);
                kinds.push(Some(super::backup::account_failure(args.all, &e)));
            }
        }
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&reports).expect("quota serializes")
        );
    }
    Ok(super::combine(kinds))
}

fn print_report(r: &QuotaReport) {
    let Some(roots) = &r.roots else {
        outln!(
            "{}: {} offers no quota information (no QUOTA capability)",
            r.account,
            r.host
        );
        return;
    };
    if roots.is_empty() {
        outln!("{}: {} sets no quota", r.account, r.host);
        return;
    }
    for root in roots {
        let folders = match root.folders.len() {
            0 => String::new(),
            1 => format!(" ({})", root.folders[0]),
            n => format!(" ({} and {} other folders)", root.folders[0], n - 1),
        };
        outln!("{}: quota root `{}`{folders}", r.account, root.root);
        if let Some(s) = &root.storage {
            outln!("  storage   {}", describe_storage(s));
        }
        if let Some(m) = &root.messages {
            outln!("  messages  {}", describe_count(m));
        }
        for (name, u) in &root.other {
            outln!("  {:9} {}", name.to_ascii_lowercase(), describe_count(u));
        }
        if root.storage.is_none() && root.messages.is_none() && root.other.is_empty() {
            outln!("  no limits");
        }
    }
}

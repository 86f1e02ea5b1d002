//! `mailkeep export --account A --format maildir|mbox|eml [--folder F] OUT`

use super::out::{errln, outln};
use std::path::PathBuf;

use crate::ops::export::{export, Format};
use crate::ops::{FailureKind, OpError};

use super::fmt::human_bytes;

use super::progress::Bars;
use super::Globals;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The account whose mail to export.
    #[arg(long)]
    account: String,
    #[arg(long, value_enum)]
    format: FormatArg,
    /// Only folders matching this pattern.
    #[arg(long, value_name = "PATTERN")]
    folder: Option<String>,
    /// Output directory (created if missing).
    out: PathBuf,
}

/// The layout of the files written.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum FormatArg {
    /// One Maildir per folder (flags in the file names, mtime = INTERNALDATE).
    Maildir,
    /// One mboxrd file per folder (flags in `Status:` and `X-Status:`).
    Mbox,
    /// One `.eml` file per message.
    Eml,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Maildir => Format::Maildir,
            FormatArg::Mbox => Format::Mbox,
            FormatArg::Eml => Format::Eml,
        }
    }
}

pub fn run(g: &Globals, args: ExportArgs) -> Result<i32, OpError> {
    let store = g.store_to_read()?;
    let bars = Bars::new(g.progress);
    let bar = bars.counter(store.index().totals()?.messages, "exporting");
    let report = export(
        &store,
        &args.account,
        args.format.into(),
        args.folder.as_deref(),
        &args.out,
        &mut |n| {
            if let Some(b) = &bar {
                b.set_position(n);
            }
        },
    )?;
    bars.clear();
    outln!(
        "exported {} ({}) in {} to {}",
        super::count(report.messages, "message", "messages"),
        human_bytes(report.bytes),
        super::count(report.folders, "folder", "folders"),
        args.out.display()
    );
    if report.damaged.is_empty() {
        return Ok(0);
    }
    for d in &report.damaged {
        errln!(
            "error: not exported: folder `{}`, UID {}, {}: {}",
            d.folder,
            d.uid,
            super::local_time(d.internaldate),
            d.why
        );
    }
    errln!(
        "hint: {} messages could not be read from the store; `mailkeep verify` says which are \
         still on the server (the next backup fetches them again)",
        report.damaged.len()
    );
    Ok(FailureKind::Partial.exit_code())
}

//! `mailkeep import NAME PATH [--format …] [--mbox-format rd|o]`

use super::out::{errln, outln};
use std::path::PathBuf;

use indicatif::ProgressBar;

use crate::ops::import::{check_account, plan, run, Format, MboxFormat};

use super::fmt::import_summary;
use crate::ops::OpError;

use super::Globals;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The account to import into: a name of your choice, not an IMAP account
    /// of the config (created on first import; importing again adds to it).
    #[arg(value_name = "NAME")]
    account: String,
    /// An mbox file, a Maildir, a directory of .eml files or of mbox files.
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// What PATH holds; `auto` tells from the path and the first bytes.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
    /// How the mbox files quote body lines starting with `From `: `rd`
    /// (mboxrd: `>>From ` → `>From `) or `o` (mboxo: only `>From ` → `From `).
    #[arg(long, value_enum, default_value_t = MboxArg::Rd, value_name = "rd|o")]
    mbox_format: MboxArg,
}

/// What the input is (`auto`: find out).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum FormatArg {
    /// Tell from the path and the first bytes of its files.
    Auto,
    /// An mbox file, or a directory of them (Thunderbird's Local Folders).
    Mbox,
    /// A Maildir (Maildir++ or nested).
    Maildir,
    /// `.eml` files below a directory, or one message file.
    Eml,
    /// Google Takeout mbox: `X-Gmail-Labels` become folders.
    Takeout,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Auto => Format::Auto,
            FormatArg::Mbox => Format::Mbox,
            FormatArg::Maildir => Format::Maildir,
            FormatArg::Eml => Format::Eml,
            FormatArg::Takeout => Format::Takeout,
        }
    }
}

/// How `From ` lines in the bodies of an mbox file were quoted.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum MboxArg {
    /// mboxrd: `>From `, `>>From `, … each lose one `>`.
    Rd,
    /// mboxo: only `>From ` loses its `>`.
    O,
}

impl From<MboxArg> for MboxFormat {
    fn from(f: MboxArg) -> MboxFormat {
        match f {
            MboxArg::Rd => MboxFormat::Rd,
            MboxArg::O => MboxFormat::O,
        }
    }
}

pub fn run_cmd(g: &Globals, args: ImportArgs) -> Result<i32, OpError> {
    let config = g.load_config()?;
    let configured: Vec<String> = config.names();
    // Everything that can be refused is refused before the store is touched.
    let existing = g.store_if_any()?;
    check_account(existing.as_ref(), &configured, &args.account)?;
    drop(existing);
    let plan = plan(&args.path, args.format.into())?;

    let mut store = g.store_to_write()?;
    // The store may have changed hands since the check above.
    check_account(Some(&store), &configured, &args.account)?;
    let bar = g.progress.then(|| {
        super::progress::bytes_bar(
            super::progress::multi().add(ProgressBar::new(plan.total_bytes)),
            format!("importing {}", args.account),
        )
    });
    let report = run(
        &mut store,
        &args.account,
        &plan,
        MboxFormat::from(args.mbox_format).into(),
        &mut |done, _| {
            if let Some(b) = &bar {
                b.set_position(done);
            }
        },
        import_summary,
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report?;
    for (path, why) in &report.skipped {
        errln!("warning: skipped `{path}`: {why}");
    }
    for f in &report.failures {
        errln!("error: {}: {}", f.place, f.error);
    }
    outln!("{}", import_summary(&report));
    if report.failures.is_empty() {
        Ok(0)
    } else {
        errln!(
            "hint: the other messages were imported; fix or remove the ones named above and run the same command again (nothing is imported twice)"
        );
        Ok(1)
    }
}

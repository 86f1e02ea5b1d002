//! `mailkeep completions SHELL` and `mailkeep man [--dir DIR]`: shell
//! completions and manual pages made from the command line's own
//! definitions, so they always match the binary.

use std::path::PathBuf;

use clap::CommandFactory;

use crate::ops::OpError;

use super::out;

#[derive(clap::Args, Debug)]
#[command(after_help = "Install, e.g.:
  mailkeep completions bash > ~/.local/share/bash-completion/completions/mailkeep
  mailkeep completions zsh > ~/.zfunc/_mailkeep      (with `fpath+=~/.zfunc` in ~/.zshrc)
  mailkeep completions fish > ~/.config/fish/completions/mailkeep.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Install, e.g.:
  mailkeep man --dir ~/.local/share/man/man1     (then `man mailkeep`, `man mailkeep-backup`)")]
pub struct ManArgs {
    /// Write mailkeep.1 and one page per command (mailkeep-backup.1, …)
    /// into this directory (created if missing); without it, mailkeep.1 to stdout.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> Result<i32, OpError> {
    let mut cmd = super::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "mailkeep", &mut buf);
    out::stdout_bytes(&buf);
    Ok(0)
}

pub fn man(args: ManArgs) -> Result<i32, OpError> {
    let cmd = super::Cli::command();
    let Some(dir) = args.dir else {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut buf)
            .map_err(|source| OpError::Output {
                path: "stdout".into(),
                source,
            })?;
        out::stdout_bytes(&buf);
        return Ok(0);
    };
    std::fs::create_dir_all(&dir).map_err(|source| OpError::Output {
        path: dir.clone(),
        source,
    })?;
    let mut written = 0;
    let mut pages = vec![("mailkeep".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("mailkeep-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut buf)
            .and_then(|_| std::fs::write(&path, &buf))
            .map_err(|source| OpError::Output {
                path: path.clone(),
                source,
            })?;
        written += 1;
    }
    super::out::outln!(
        "wrote {} into {}",
        super::count(written as u64, "manual page", "manual pages"),
        dir.display()
    );
    Ok(0)
}

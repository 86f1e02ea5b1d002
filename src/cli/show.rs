//! `mailkeep show ID [--raw]`

use std::io::{self, Write};

use crate::ops::search::{resolve_id, show, write_raw};
use crate::ops::OpError;

use super::fmt::human_bytes;

use super::Globals;

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The message's id, or the start of it (as `mailkeep search` prints it).
    id: String,
    /// Write the exact stored bytes to stdout (for a mail reader or a file).
    #[arg(long)]
    raw: bool,
}

pub fn run(g: &Globals, args: ShowArgs) -> Result<i32, OpError> {
    let store = g.store_to_read()?;
    let id = resolve_id(&store, &args.id)?;
    let stdout = io::stdout();
    if args.raw {
        let mut out = WatchedWriter {
            inner: stdout.lock(),
            error: None,
        };
        let res = write_raw(&store, &id, &mut out).and_then(|_| {
            out.flush().map_err(|source| OpError::Output {
                path: "stdout".into(),
                source,
            })
        });
        return match (res, out.error) {
            (_, Some(e)) => {
                drop(out.inner);
                super::out::stdout_failed(e)
            }
            (Err(e), None) => Err(e),
            (Ok(()), None) => Ok(0),
        };
    }
    let shown = show(&store, &id)?;
    let m = &shown.message;
    let mut s = String::new();
    let mut field = |name: &str, value: &str| {
        if !value.is_empty() {
            s.push_str(&format!("{name:<12}{value}\n"));
        }
    };
    field("From:", &m.from);
    field("To:", &m.to);
    field("Cc:", &m.cc);
    field("Date:", m.date_header.as_deref().unwrap_or(""));
    field("Subject:", &m.subject);
    field(
        "Message-ID:",
        &m.message_id
            .as_deref()
            .map(|i| format!("<{i}>"))
            .unwrap_or_default(),
    );
    field("Id:", &shown.blob.to_hex());
    field("Size:", &human_bytes(shown.size));
    let places: Vec<String> = shown
        .places
        .iter()
        .map(|p| {
            let mut t = format!("{}: {} (uid {})", p.account, p.folder, p.uid);
            if p.archived_at.is_some() {
                t.push_str(", archived");
            } else if p.gone_at.is_some() {
                t.push_str(", gone from server");
            }
            t
        })
        .collect();
    field("Folders:", &places.join("; "));
    if !m.parsed {
        s.push_str("Note:       not a MIME message; headers read line by line\n");
    }
    for note in &m.notes {
        s.push_str(&format!("Note:       {note}\n"));
    }
    if !m.attachments.is_empty() {
        s.push_str("Attachments:\n");
        for a in &m.attachments {
            s.push_str(&format!(
                "  {}  {}  {}\n",
                a.name,
                a.content_type,
                human_bytes(a.size)
            ));
        }
    }
    if shown.truncated {
        s.push_str(&format!(
            "Note:       only the first {} of the message were read\n",
            human_bytes(crate::ops::search::MAX_PARSED_BYTES)
        ));
    }
    s.push('\n');
    match m.texts.first() {
        Some(t) => {
            s.push_str(t.trim_end());
            s.push('\n');
        }
        None => s.push_str("(no text)\n"),
    }
    super::out::stdout_bytes(s.as_bytes());
    Ok(0)
}

/// Remembers the error of the writer, so that a failed write to stdout is
/// not mistaken for damage in the store.
struct WatchedWriter<W: Write> {
    inner: W,
    error: Option<io::Error>,
}

impl<W: Write> Write for WatchedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|e| {
            self.error = Some(io::Error::new(e.kind(), e.to_string()));
        })
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|e| {
            self.error = Some(io::Error::new(e.kind(), e.to_string()));
        })
    }
}

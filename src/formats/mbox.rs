//! mbox: an mboxrd writer for export, an mboxrd/mboxo reader for import.
//!
//! # Writing
//!
//! One file per folder, `root/<folder>.mbox`, the display name split on `/`
//! into directories (each level escaped by [`names`](super::names); a
//! directory level ending in `.mbox` gets that dot escaped, so it never
//! clashes with a folder's file). Each message is
//!
//! ```text
//! From mailkeep@localhost <asctime of INTERNALDATE in UTC>\n
//! Status: RO             (`R` when the message is \Seen; `O`: not new)
//! X-Status: AFTD         (\Answered, \Flagged, \Draft, \Deleted; may be empty)
//! <the message, every line matching ^>*From  with one more '>' in front>
//! \n                      (only if the message does not end with one)
//! \n                      (the blank line that separates messages)
//! ```
//!
//! The two status lines, which mutt, Thunderbird and Dovecot read as the
//! message's flags, are the first lines of the header block, written always
//! (so that they can be told from the message's own) and with the line ending
//! of the message's first line. Nothing else changes: line endings stay as
//! they are (a CRLF message stays CRLF; the `From ` line and the separator
//! are LF). [`MboxReader`] takes the two lines back out of a message under
//! a `From mailkeep@localhost ` line, so an export imported again gives the
//! stored bytes back. The newline added to a message that lacks a final one
//! is the only change the reader cannot undo — every mbox reader expects a
//! message to end in one. Only mbox changes: Maildir and `.eml` carry flags
//! in file names and leave the message's bytes as they are.
//!
//! A file is written as `.<name>.mbox.mailkeep-partial` beside its place and
//! renamed into place by [`MboxWriter::finish`], after an fsync: a killed
//! export leaves partial files, never a truncated `.mbox`; a finished one
//! replaces an `.mbox` of the same name.
//!
//! [`MboxWriter::write_from`] takes the message from a reader: memory stays
//! bounded whatever its size, the quoting is done line by line on the
//! stream (a `>>From ` cut between two reads is still quoted). A message
//! that fails half-way cannot be taken back out of the file, so it spoils
//! the writer: `finish` then fails and `abandon` removes the partial files.
//!
//! # Reading
//!
//! [`MboxReader`] streams messages: memory is bounded by the largest single
//! message. It takes LF and CRLF files, a UTF-8 byte-order mark and blank
//! lines before the first `From ` line, and a last message without a final
//! newline. A file whose first non-blank line is not a `From ` line is an
//! error naming the file and the line.
//!
//! A line starting `From ` separates messages when it looks like an envelope:
//! `From <sender>` alone, or followed by something with a time of day
//! (`14:23:23`) and a month name or a year. So an unquoted body line such as
//! `From Russia with love` stays in its message (files written by tools that
//! do not quote). `Content-Length:` headers are ignored: they are too often
//! wrong to be trusted, and the heuristic above covers the files that use them.
//!
//! Un-quoting follows [`Quoting`]: mboxrd (the default) removes one `>` from
//! every `^>+From ` line; mboxo only from `^>From `. The two cannot be told
//! apart from the data, so there is no detection. One blank line before each
//! separator (and at the end of the file) is the separator's and is removed.
//! Flags come from `Status:` (`R`), `X-Status:` (`A`, `F`, `T`, `D`) and
//! `X-Mozilla-Status:` headers when present; the headers stay in the bytes,
//! except the two status lines mailkeep's own export put first.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::names::{self, Style};
use super::{create_private_dirs, with_path, COPY_PIECE};
use crate::model::{Flags, InternalDate};

/// Where a folder's mbox file goes, relative to the root.
pub fn folder_file(folder_display: &str) -> PathBuf {
    let parts = names::split_folder(folder_display);
    let mut path = PathBuf::new();
    for (i, part) in parts.iter().enumerate() {
        let mut c = names::encode_component(part, Style::Plain);
        if i + 1 == parts.len() {
            c.push_str(".mbox");
        } else if c.ends_with(".mbox") {
            c.truncate(c.len() - ".mbox".len());
            c.push_str("%2Embox");
        }
        path.push(c);
    }
    path
}

/// Writes one mboxrd file per folder.
#[derive(Debug)]
pub struct MboxWriter {
    root: PathBuf,
    /// The file being appended to: (final path, partial file).
    current: Option<(PathBuf, BufWriter<fs::File>)>,
    /// Every file started, final path → partial path.
    started: BTreeMap<PathBuf, PathBuf>,
    /// The file a message failed to go into: nothing can be finished.
    spoiled: Option<PathBuf>,
}

impl MboxWriter {
    /// Creates `root` if needed.
    pub fn create(root: &Path) -> io::Result<MboxWriter> {
        create_private_dirs(root)?;
        Ok(MboxWriter {
            root: root.to_path_buf(),
            current: None,
            started: BTreeMap::new(),
            spoiled: None,
        })
    }

    /// Appends one message to its folder's file, its flags in the
    /// `Status:` and `X-Status:` lines above it.
    pub fn write(
        &mut self,
        folder_display: &str,
        bytes: &[u8],
        flags: &Flags,
        date: &InternalDate,
    ) -> io::Result<()> {
        self.write_from(folder_display, &mut &bytes[..], flags, date)
            .map(|_| ())
    }

    /// [`write`](Self::write) from a reader, in bounded memory whatever the
    /// message size (quoting is done line by line on the stream). Returns
    /// the message's size.
    ///
    /// When the message fails (from `src` too, even at its very end, where
    /// a store reader reports damage), the file is cut back to where the
    /// message began and the error returned: the caller may go on with the
    /// next message. Only if that cut fails is the whole writer spoiled:
    /// every later call and [`finish`](Self::finish) fail, and no partial
    /// file is renamed into place. [`abandon`](Self::abandon) removes them.
    pub fn write_from(
        &mut self,
        folder_display: &str,
        src: &mut dyn Read,
        flags: &Flags,
        date: &InternalDate,
    ) -> io::Result<u64> {
        self.check_unspoiled()?;
        let dest = self.root.join(folder_file(folder_display));
        let start = match self.switch_to(&dest).and_then(|out| {
            out.flush()?;
            Ok(out.get_ref().metadata()?.len())
        }) {
            Ok(start) => start,
            Err(e) => {
                self.spoiled = Some(dest.clone());
                return Err(with_path(e, "cannot write", &dest));
            }
        };
        let res = self
            .switch_to(&dest)
            .and_then(|out| write_message_from(out, src, date, flags))
            .map_err(|e| with_path(e, "cannot write", &dest));
        if res.is_err() && self.take_back(start).is_err() {
            self.spoiled = Some(dest);
        }
        res
    }

    /// Drops what is buffered for the current file and cuts it to `len`.
    fn take_back(&mut self, len: u64) -> io::Result<()> {
        let (p, w) = self.current.take().expect("a message was being written");
        let (mut file, _dropped) = w.into_parts();
        file.set_len(len)?;
        io::Seek::seek(&mut file, io::SeekFrom::Start(len))?;
        self.current = Some((p, BufWriter::with_capacity(1 << 16, file)));
        Ok(())
    }

    fn check_unspoiled(&self) -> io::Result<()> {
        match &self.spoiled {
            None => Ok(()),
            Some(p) => Err(io::Error::other(format!(
                "an earlier message could not be written to `{}`: the export cannot be finished",
                p.display()
            ))),
        }
    }

    /// Removes every partial file (after a failure: nothing is renamed
    /// into place, and nothing half-written is left behind).
    pub fn abandon(mut self) {
        self.current = None;
        for partial in std::mem::take(&mut self.started).into_values() {
            let _ = fs::remove_file(partial);
        }
    }

    /// Makes `dest`'s partial file the current one, opening it if needed.
    fn switch_to(&mut self, dest: &Path) -> io::Result<&mut BufWriter<fs::File>> {
        if self.current.as_ref().is_some_and(|(p, _)| p != dest) {
            let (p, mut w) = self.current.take().expect("checked");
            w.flush().map_err(|e| with_path(e, "cannot write", &p))?;
        }
        if self.current.is_none() {
            let partial = match self.started.get(dest) {
                Some(p) => p.clone(),
                None => {
                    if let Some(dir) = dest.parent() {
                        create_private_dirs(dir)?;
                    }
                    partial_path(dest)
                }
            };
            let first = !self.started.contains_key(dest);
            let file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .append(!first)
                .truncate(first)
                .mode(0o600)
                .open(&partial)
                .map_err(|e| with_path(e, "cannot create", &partial))?;
            self.started.insert(dest.to_path_buf(), partial);
            self.current = Some((dest.to_path_buf(), BufWriter::with_capacity(1 << 16, file)));
        }
        Ok(&mut self.current.as_mut().expect("just set").1)
    }

    /// Flushes and fsyncs every file, then renames each into place.
    pub fn finish(mut self) -> io::Result<()> {
        self.check_unspoiled()?;
        if let Some((p, mut w)) = self.current.take() {
            w.flush().map_err(|e| with_path(e, "cannot write", &p))?;
        }
        for (dest, partial) in std::mem::take(&mut self.started) {
            let f = fs::OpenOptions::new()
                .write(true)
                .open(&partial)
                .map_err(|e| with_path(e, "cannot open", &partial))?;
            if f.metadata().is_ok_and(|m| m.len() == 0) {
                // Every message of it was taken back out: no file for it.
                let _ = fs::remove_file(&partial);
                continue;
            }
            f.sync_all()
                .map_err(|e| with_path(e, "cannot sync", &partial))?;
            fs::rename(&partial, &dest).map_err(|e| with_path(e, "cannot rename into", &dest))?;
            if let Some(dir) = dest.parent() {
                fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| with_path(e, "cannot sync", dir))?;
            }
        }
        Ok(())
    }
}

fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.mailkeep-partial"))
}

/// From_ line, quoted message, final newline if missing, separator.
#[cfg(test)]
fn write_message(
    out: &mut impl Write,
    bytes: &[u8],
    date: &InternalDate,
    flags: &Flags,
) -> io::Result<()> {
    write_message_from(out, &mut &bytes[..], date, flags).map(|_| ())
}

/// The envelope sender of every message mailkeep writes.
const OUR_ENVELOPE: &str = "From mailkeep@localhost ";

/// `Status:` and `X-Status:` values for `flags`, as mutt writes them.
fn status_values(flags: &Flags) -> (String, String) {
    let has = |f: &str| flags.iter().any(|g| g.eq_ignore_ascii_case(f));
    let status = if has("\\Seen") { "RO" } else { "O" };
    let mut x = String::new();
    for (f, c) in [
        ("\\Answered", 'A'),
        ("\\Flagged", 'F'),
        ("\\Draft", 'T'),
        ("\\Deleted", 'D'),
    ] {
        if has(f) {
            x.push(c);
        }
    }
    (status.to_string(), x)
}

/// The two status lines at the start of `bytes`, as the export writes
/// them: their flags and how many bytes they take.
fn our_status_lines(bytes: &[u8]) -> Option<(Flags, usize)> {
    let line_end = |from: usize| {
        bytes[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| from + i + 1)
    };
    let first = line_end(0)?;
    let second = line_end(first)?;
    let value = |line: &[u8], name: &str| -> Option<String> {
        let text = std::str::from_utf8(line).ok()?;
        let v = text.strip_prefix(name)?.trim_end_matches(['\r', '\n']);
        Some(v.trim().to_string())
    };
    let status = value(&bytes[..first], "Status:")?;
    let x = value(&bytes[first..second], "X-Status:")?;
    if !matches!(status.as_str(), "O" | "RO")
        || !x.chars().all(|c| matches!(c, 'A' | 'F' | 'T' | 'D'))
    {
        return None;
    }
    let mut flags: Vec<&str> = Vec::new();
    if status == "RO" {
        flags.push("\\Seen");
    }
    for (c, f) in [
        ('A', "\\Answered"),
        ('F', "\\Flagged"),
        ('T', "\\Draft"),
        ('D', "\\Deleted"),
    ] {
        if x.contains(c) {
            flags.push(f);
        }
    }
    Some((Flags::new(flags), second))
}

/// [`write_message`] from a reader, in bounded memory: the message goes
/// through a [`FromQuoter`] one piece at a time. Returns the message's size
/// (as read, before quoting).
fn write_message_from(
    out: &mut impl Write,
    src: &mut dyn Read,
    date: &InternalDate,
    flags: &Flags,
) -> io::Result<u64> {
    writeln!(out, "{OUR_ENVELOPE}{}", date.to_mbox())?;
    let mut buf = vec![0u8; COPY_PIECE];
    // The first piece, read up to the end of the message's first line (or
    // a full piece), says that line's line ending.
    let mut first = 0;
    while first < buf.len() && !buf[..first].contains(&b'\n') {
        match src.read(&mut buf[first..]) {
            Ok(0) => break,
            Ok(n) => first += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let crlf = buf[..first]
        .iter()
        .position(|&b| b == b'\n')
        .is_some_and(|i| i > 0 && buf[i - 1] == b'\r');
    let eol = if crlf { "\r\n" } else { "\n" };
    let (status, x_status) = status_values(flags);
    write!(out, "Status: {status}{eol}X-Status: {x_status}{eol}")?;
    let mut q = FromQuoter::new(out);
    q.write(&buf[..first])?;
    let mut total = first as u64;
    loop {
        if first == 0 {
            break;
        }
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        q.write(&buf[..n])?;
        total += n as u64;
    }
    q.finish()?;
    out.write_all(b"\n")?;
    Ok(total)
}

/// mboxrd quoting on a stream: every line matching `^>*From ` gets one more
/// `>` in front, wherever the pieces it arrives in are cut. Only the start
/// of a line is held back (at most `>…>From`, while it may still become a
/// `From ` line); the rest of a line passes straight through.
struct FromQuoter<'a, W: Write> {
    out: &'a mut W,
    /// The start of the current line, while undecided (`>`s, then a prefix
    /// of `From `).
    head: Vec<u8>,
    /// Whether the start of the current line is still being looked at
    /// (false: in the middle of a line, passing bytes through).
    at_start: bool,
    /// The last byte written of the message.
    last: Option<u8>,
}

impl<'a, W: Write> FromQuoter<'a, W> {
    fn new(out: &'a mut W) -> Self {
        FromQuoter {
            out,
            head: Vec::new(),
            at_start: true,
            last: None,
        }
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(&b) = bytes.last() {
            self.out.write_all(bytes)?;
            self.last = Some(b);
        }
        Ok(())
    }

    /// Writes out the held-back start of a line, unquoted.
    fn release_head(&mut self) -> io::Result<()> {
        let head = std::mem::take(&mut self.head);
        self.emit(&head)?;
        self.head = head;
        self.head.clear();
        Ok(())
    }

    fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if !self.at_start {
                match data.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.emit(&data[..=i])?;
                        data = &data[i + 1..];
                        self.at_start = true;
                    }
                    None => {
                        self.emit(data)?;
                        return Ok(());
                    }
                }
                continue;
            }
            let b = data[0];
            let gts = self.head.iter().take_while(|&&c| c == b'>').count();
            let matched = self.head.len() - gts;
            if b == b'>' && matched == 0 {
                self.head.push(b);
                data = &data[1..];
            } else if b == b"From "[matched] {
                self.head.push(b);
                data = &data[1..];
                if matched + 1 == b"From ".len() {
                    self.out.write_all(b">")?;
                    self.release_head()?;
                    self.at_start = false;
                }
            } else {
                // Not a `From ` line: what was held back goes out as it is,
                // and this byte is looked at as the rest of the line.
                self.release_head()?;
                self.at_start = false;
            }
        }
        Ok(())
    }

    /// Writes out what is held back and the final newline if the message
    /// lacks one.
    fn finish(mut self) -> io::Result<()> {
        self.release_head()?;
        if self.last != Some(b'\n') {
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// `^>*From `
fn is_quoted_from(line: &[u8]) -> bool {
    let start = line.iter().position(|&b| b != b'>').unwrap_or(line.len());
    line[start..].starts_with(b"From ")
}

/// How body lines that start with `From ` were quoted by the file's writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Quoting {
    /// mboxrd: every `^>*From ` line got one more `>`; remove one from `^>+From `.
    #[default]
    Rd,
    /// mboxo: only `^From ` got a `>`; remove one from `^>From ` only.
    O,
}

/// One message read from an mbox file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MboxMessage {
    /// The message, un-quoted, without its `From ` line and separator.
    pub bytes: Vec<u8>,
    /// The envelope line, without its line ending.
    pub from_line: String,
    /// The date of the `From ` line (UTC unless it has a numeric zone).
    pub date: Option<InternalDate>,
    /// From `Status:`, `X-Status:` and `X-Mozilla-Status:` headers.
    pub flags: Flags,
    /// Line number (from 1) of the envelope line in the file.
    pub line: u64,
    /// Byte offset of the envelope line in the file (a byte-order mark counts).
    pub offset: u64,
}

/// Streams the messages of an mbox file.
#[derive(Debug)]
pub struct MboxReader<R: BufRead> {
    inner: R,
    name: String,
    quoting: Quoting,
    /// Lines read so far.
    line_no: u64,
    /// Bytes read so far.
    offset: u64,
    /// The envelope line of the next message, already read, with its line
    /// number and byte offset.
    pending_from: Option<(String, u64, u64)>,
    started: bool,
    done: bool,
}

/// Opens a file for [`MboxReader`], named by its path in errors.
pub fn open(path: &Path, quoting: Quoting) -> io::Result<MboxReader<BufReader<fs::File>>> {
    let f = fs::File::open(path).map_err(|e| with_path(e, "cannot open", path))?;
    Ok(
        MboxReader::new(BufReader::with_capacity(1 << 16, f), quoting)
            .with_name(path.display().to_string()),
    )
}

impl<R: BufRead> MboxReader<R> {
    pub fn new(inner: R, quoting: Quoting) -> MboxReader<R> {
        MboxReader {
            inner,
            name: "mbox".to_string(),
            quoting,
            line_no: 0,
            offset: 0,
            pending_from: None,
            started: false,
            done: false,
        }
    }

    /// The name errors use for the input (a file name).
    pub fn with_name(mut self, name: impl Into<String>) -> MboxReader<R> {
        self.name = name.into();
        self
    }

    /// Reads one line (with its `\n`, if any) into `buf`; false at the end.
    fn read_line(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        buf.clear();
        let n = self
            .inner
            .read_until(b'\n', buf)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read `{}`: {e}", self.name)))?;
        if n > 0 {
            self.line_no += 1;
            self.offset += n as u64;
        }
        Ok(n > 0)
    }

    /// Bytes of the input read so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.offset
    }

    /// The name errors use for the input.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Finds the first envelope line, past a byte-order mark and blank lines.
    fn start(&mut self) -> io::Result<bool> {
        let mut line = Vec::new();
        loop {
            if !self.read_line(&mut line)? {
                return Ok(false);
            }
            if self.line_no == 1 && line.starts_with(b"\xEF\xBB\xBF") {
                line.drain(..3);
            }
            if is_blank(&line) {
                continue;
            }
            if line.starts_with(b"From ") {
                let at = self.offset - line.len() as u64;
                self.pending_from = Some((line_text(&line), self.line_no, at));
                return Ok(true);
            }
            let shown: String = line_text(&line).chars().take(60).collect();
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "`{}` line {}: not an mbox file: expected a `From ` line, found `{shown}`",
                    self.name, self.line_no
                ),
            ));
        }
    }

    fn next_message(&mut self) -> io::Result<Option<MboxMessage>> {
        if !self.started {
            self.started = true;
            if !self.start()? {
                self.done = true;
                return Ok(None);
            }
        }
        let Some((from_line, from_line_no, from_offset)) = self.pending_from.take() else {
            self.done = true;
            return Ok(None);
        };
        let mut bytes = Vec::new();
        let mut last_line_start = 0;
        let mut line = Vec::new();
        while self.read_line(&mut line)? {
            if is_envelope(&line) {
                let at = self.offset - line.len() as u64;
                self.pending_from = Some((line_text(&line), self.line_no, at));
                break;
            }
            last_line_start = bytes.len();
            let skip = usize::from(self.unquote(&line));
            bytes.extend_from_slice(&line[skip..]);
        }
        if self.pending_from.is_none() {
            self.done = true;
        }
        // The separator's blank line, if the writer put one.
        if bytes.len() > last_line_start && is_blank(&bytes[last_line_start..]) {
            bytes.truncate(last_line_start);
        }
        // The status lines mailkeep's export put above the message.
        let ours = if from_line.starts_with(OUR_ENVELOPE) {
            our_status_lines(&bytes)
        } else {
            None
        };
        let flags = match ours {
            Some((flags, len)) => {
                bytes.drain(..len);
                flags
            }
            None => header_flags(&bytes),
        };
        Ok(Some(MboxMessage {
            flags,
            date: envelope_date(&from_line),
            from_line,
            bytes,
            line: from_line_no,
            offset: from_offset,
        }))
    }

    /// Whether the line loses its first `>`.
    fn unquote(&self, line: &[u8]) -> bool {
        match self.quoting {
            Quoting::Rd => line.first() == Some(&b'>') && is_quoted_from(line),
            Quoting::O => line.starts_with(b">From "),
        }
    }
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = io::Result<MboxMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_message() {
            Ok(m) => m.map(Ok),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// A line without its line ending, as text.
fn line_text(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line).into_owned()
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Whether a `From ` line separates messages (see the module doc).
fn is_envelope(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"From ") else {
        return false;
    };
    let rest = line_text(rest);
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    if tokens.len() <= 1 {
        return true;
    }
    let is_time = |t: &str| {
        let parts: Vec<&str> = t.split(':').collect();
        (2..=3).contains(&parts.len())
            && parts
                .iter()
                .all(|p| (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let is_month = |t: &str| MONTHS.iter().any(|m| t.eq_ignore_ascii_case(m));
    let is_year = |t: &str| t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit());
    let after = &tokens[1..];
    after.iter().any(|t| is_time(t)) && after.iter().any(|t| is_month(t) || is_year(t))
}

/// The date of an envelope line: `Www Mmm dd hh:mm:ss yyyy`, with an optional
/// numeric zone before or after the year; UTC without one.
fn envelope_date(from_line: &str) -> Option<InternalDate> {
    let tokens: Vec<&str> = from_line.split_whitespace().collect();
    let i = (1..tokens.len().saturating_sub(1)).find(|&i| {
        WEEKDAYS.iter().any(|w| tokens[i].eq_ignore_ascii_case(w))
            && MONTHS.iter().any(|m| tokens[i + 1].eq_ignore_ascii_case(m))
    })?;
    let t = &tokens[i..];
    let zone = |s: &str| -> Option<i32> {
        let sign = match s.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let digits = &s[1..];
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: i32 = digits.parse().ok()?;
        Some(sign * ((n / 100) * 60 + n % 100))
    };
    // (month, day, time, year, zone in minutes)
    let (year, offset) = match t.get(4).copied().and_then(zone) {
        Some(z) => (t.get(5)?, z),
        None => (t.get(4)?, t.get(5).copied().and_then(zone).unwrap_or(0)),
    };
    let text = format!("{} {} {} {}", t[1], t[2], t[3], year);
    let naive = chrono::NaiveDateTime::parse_from_str(&text, "%b %d %H:%M:%S %Y")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&text, "%b %d %H:%M %Y"))
        .ok()?;
    Some(InternalDate {
        unix: naive.and_utc().timestamp() - i64::from(offset) * 60,
        offset_min: offset,
    })
}

/// Flags from the mbox status headers of a message's header block.
fn header_flags(message: &[u8]) -> Flags {
    let mut flags: Vec<&str> = Vec::new();
    for field in super::lines::fields(message) {
        let name = String::from_utf8_lossy(field.name.trim_ascii()).to_ascii_lowercase();
        let value = String::from_utf8_lossy(&field.value).into_owned();
        match name.as_str() {
            "status" if value.contains('R') => flags.push("\\Seen"),
            "x-status" => {
                for (c, f) in [
                    ('A', "\\Answered"),
                    ('F', "\\Flagged"),
                    ('T', "\\Draft"),
                    ('D', "\\Deleted"),
                ] {
                    if value.contains(c) {
                        flags.push(f);
                    }
                }
            }
            "x-mozilla-status" => {
                if let Ok(bits) = u32::from_str_radix(&value, 16) {
                    for (bit, f) in [
                        (0x0001, "\\Seen"),
                        (0x0002, "\\Answered"),
                        (0x0004, "\\Flagged"),
                        (0x0008, "\\Deleted"),
                        (0x1000, "$Forwarded"),
                    ] {
                        if bits & bit != 0 {
                            flags.push(f);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Flags::new(flags)
}

#[cfg(test)]
mod tests;

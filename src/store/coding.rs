//! The line coding of a coded blob (a `C` record; docs/design.md, "Coded
//! blobs"): runs of base64 lines — attachments, mostly — are kept as the
//! bytes they encode, a quarter smaller, and given back character for
//! character; every other byte is kept as it is.
//!
//! ```text
//! coded   := segment*
//! segment := 0x00 | uv n | n bytes                      n bytes as they are
//!          | 0x01 | uv q | eol u8 | uv k | k × 3q bytes  k lines of base64
//! uv      := unsigned LEB128
//! ```
//!
//! A lines segment stands for `k` lines, each the standard base64 (RFC 4648
//! §4: `A–Z a–z 0–9 + /`, no `=`) of the next `3q` bytes — `4q` characters —
//! followed by CRLF (`eol` 0) or LF (`eol` 1). Four bytes of base64 with no
//! padding are exactly three bytes, so the coding is exact by construction;
//! the blob's hash, of the message's own bytes, checks it all the same.
//!
//! The encoder is a line state machine that holds at most one segment (64 KiB
//! of plain bytes, 48 KiB of decoded ones) whatever the message's size, so a
//! message streamed from a spool file stays in bounded memory.

use std::io::{self, Read, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Base64 lines shorter than this (in characters) are left as they are.
const MIN_CHARS: usize = 40;
/// The longest line coded: 996 characters and CRLF fit the 998 of RFC 5322.
const MAX_QUADS: usize = 249;
/// A run of fewer lines than this is left as it is.
const MIN_RUN: u64 = 4;
/// Plain bytes per literal segment, at most (more only for one long line).
const LITERAL_CHUNK: usize = 64 * 1024;
/// Decoded bytes per lines segment, about.
const RUN_CHUNK: usize = 48 * 1024;

const TAG_LITERAL: u8 = 0;
const TAG_LINES: u8 = 1;

/// Which bytes are base64 characters (no `=`).
static ALPHABET: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
        b += 1;
    }
    t
};

/// The coded form of `raw`, when it holds a run of base64 lines; `None`
/// when coding would keep every byte as it is (the blob is then stored
/// plain, as a `B` record).
pub fn encode_all(raw: &[u8]) -> Option<Vec<u8>> {
    // Most mail has no run: found out by a look at its lines, without
    // copying it into a coded form only to throw that away.
    if !has_run(raw) {
        return None;
    }
    let mut enc = Encoder::new(Vec::with_capacity(raw.len()));
    enc.write_all(raw).expect("a Vec takes every byte");
    let (coded, runs) = enc.finish().expect("a Vec takes every byte");
    (runs > 0 && coded.len() < raw.len()).then_some(coded)
}

/// The bytes `coded` stands for, refusing to give more than `limit` (damage
/// must not make a reader allocate without bound).
pub fn decode_all(coded: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(limit.min(coded.len() as u64 * 2) as usize);
    Decoder::new(coded).take(limit + 1).read_to_end(&mut out)?;
    Ok(out)
}

/// A whole line's base64 content, and whether it ends in CRLF, when the
/// line is one the coding keeps decoded: `4q` base64 characters, no `=`,
/// `MIN_CHARS ≤ 4q ≤ 4 × MAX_QUADS`.
fn base64_line(line: &[u8]) -> Option<(&[u8], bool)> {
    let (content, crlf) = match line {
        [c @ .., b'\r', b'\n'] => (c, true),
        [c @ .., b'\n'] => (c, false),
        _ => return None,
    };
    (content.len() % 4 == 0
        && content.len() >= MIN_CHARS
        && content.len() / 4 <= MAX_QUADS
        && content.iter().all(|&b| ALPHABET[b as usize]))
    .then_some((content, crlf))
}

/// Whether `raw` has a run the coding would keep decoded: [`MIN_RUN`]
/// base64 lines in a row of one length and line end.
fn has_run(raw: &[u8]) -> bool {
    let mut run: Option<(usize, bool)> = None;
    let mut lines = 0;
    let mut start = 0;
    while let Some(i) = memchr::memchr(b'\n', &raw[start..]) {
        let line = &raw[start..start + i + 1];
        start += i + 1;
        let this = base64_line(line).map(|(c, crlf)| (c.len(), crlf));
        if this.is_some() && this == run {
            lines += 1;
        } else {
            run = this;
            lines = u64::from(this.is_some());
        }
        if lines >= MIN_RUN {
            return true;
        }
    }
    false
}

/// Writes the coded form of what is written to it into `W`.
pub struct Encoder<W: Write> {
    out: W,
    /// The current line so far, while it may still be a base64 line.
    line: Vec<u8>,
    /// The current line was too long to be base64: it went to `lit`.
    long: bool,
    /// Plain bytes not yet written.
    lit: Vec<u8>,
    run: Run,
    /// Lines segments written.
    runs: u64,
}

#[derive(Default)]
struct Run {
    active: bool,
    quads: usize,
    crlf: bool,
    /// Lines in `decoded` (not yet written).
    lines: u64,
    decoded: Vec<u8>,
    /// The lines as they were, until the run is long enough to code.
    raw: Vec<u8>,
    committed: bool,
}

impl<W: Write> Encoder<W> {
    pub fn new(out: W) -> Self {
        Encoder {
            out,
            line: Vec::new(),
            long: false,
            lit: Vec::new(),
            run: Run::default(),
            runs: 0,
        }
    }

    /// Writes what is held and gives back the writer and how many lines
    /// segments were written.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        if !self.long && !self.line.is_empty() {
            // A last line without a line end is never coded.
            self.end_run()?;
            self.lit.append(&mut self.line);
        }
        self.end_run()?;
        self.write_literal()?;
        Ok((self.out, self.runs))
    }

    /// Takes a piece of a line: all of it when `ends_line`.
    fn take(&mut self, piece: &[u8], ends_line: bool) -> io::Result<()> {
        if self.long {
            self.lit.extend_from_slice(piece);
            self.long = !ends_line;
            return self.spill();
        }
        if !ends_line {
            self.line.extend_from_slice(piece);
            if self.line.len() > MAX_QUADS * 4 + 1 {
                self.end_run()?;
                self.lit.append(&mut self.line);
                self.long = true;
                self.spill()?;
            }
            return Ok(());
        }
        if self.line.is_empty() {
            self.line_done(piece)
        } else {
            let mut line = std::mem::take(&mut self.line);
            line.extend_from_slice(piece);
            let r = self.line_done(&line);
            line.clear();
            self.line = line;
            r
        }
    }

    /// A whole line, its line end included.
    fn line_done(&mut self, line: &[u8]) -> io::Result<()> {
        let mut three = [0u8; MAX_QUADS * 3];
        let decoded = base64_line(line).filter(|(content, _)| {
            STANDARD.decode_slice(content, &mut three) == Ok(content.len() / 4 * 3)
        });
        let Some((content, crlf)) = decoded else {
            self.end_run()?;
            self.lit.extend_from_slice(line);
            return self.spill();
        };
        let quads = content.len() / 4;
        if self.run.active && (self.run.quads != quads || self.run.crlf != crlf) {
            self.end_run()?;
        }
        let run = &mut self.run;
        if !run.active {
            run.active = true;
            run.quads = quads;
            run.crlf = crlf;
            run.committed = false;
        }
        run.decoded.extend_from_slice(&three[..quads * 3]);
        run.lines += 1;
        if !run.committed {
            run.raw.extend_from_slice(line);
            if run.lines >= MIN_RUN {
                run.committed = true;
                run.raw.clear();
            }
        }
        if run.committed && run.decoded.len() >= RUN_CHUNK {
            self.write_lines()?;
        }
        Ok(())
    }

    /// Ends the current run: coded if it was long enough, else as it was.
    fn end_run(&mut self) -> io::Result<()> {
        if !self.run.active {
            return Ok(());
        }
        if self.run.committed {
            self.write_lines()?;
        } else {
            self.lit.append(&mut self.run.raw);
        }
        self.run.active = false;
        self.run.lines = 0;
        self.run.decoded.clear();
        self.spill()
    }

    /// Writes the run's lines so far as one segment (after the plain bytes
    /// before them).
    fn write_lines(&mut self) -> io::Result<()> {
        if self.run.lines == 0 {
            return Ok(());
        }
        self.write_literal()?;
        let mut head = vec![TAG_LINES];
        super::record::put_uv(&mut head, self.run.quads as u64);
        head.push(if self.run.crlf { 0 } else { 1 });
        super::record::put_uv(&mut head, self.run.lines);
        self.out.write_all(&head)?;
        self.out.write_all(&self.run.decoded)?;
        self.run.decoded.clear();
        self.run.lines = 0;
        self.runs += 1;
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.lit.len() >= LITERAL_CHUNK {
            self.write_literal()?;
        }
        Ok(())
    }

    fn write_literal(&mut self) -> io::Result<()> {
        if self.lit.is_empty() {
            return Ok(());
        }
        let mut head = vec![TAG_LITERAL];
        super::record::put_uv(&mut head, self.lit.len() as u64);
        self.out.write_all(&head)?;
        self.out.write_all(&self.lit)?;
        self.lit.clear();
        Ok(())
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    self.take(&rest[..=i], true)?;
                    rest = &rest[i + 1..];
                }
                None => {
                    self.take(rest, false)?;
                    rest = &[];
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads the bytes a coded stream stands for. Anything that is not a coded
/// stream is an `InvalidData` error, never a panic or an unbounded
/// allocation.
pub struct Decoder<R: Read> {
    inner: R,
    state: State,
    /// Lines made from a lines segment, and how far they were given.
    out: Vec<u8>,
    at: usize,
    three: Vec<u8>,
}

enum State {
    Tag,
    Literal(u64),
    Lines { quads: usize, crlf: bool, left: u64 },
    End,
}

/// Lines made at once from a lines segment, about this many characters.
const LINES_AT_ONCE: usize = 16 * 1024;

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("coded blob: {what}"))
}

impl<R: Read> Decoder<R> {
    pub fn new(inner: R) -> Self {
        Decoder {
            inner,
            state: State::Tag,
            out: Vec::new(),
            at: 0,
            three: Vec::new(),
        }
    }

    /// The next byte, `None` at the end of the stream.
    fn byte(&mut self) -> io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        loop {
            match self.inner.read(&mut b) {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(b[0])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn uv(&mut self) -> io::Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?.ok_or_else(|| invalid("cut short"))?;
            v |= ((b & 0x7f) as u64)
                .checked_shl(shift)
                .ok_or_else(|| invalid("bad length"))?;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(invalid("bad length"))
    }

    fn next_segment(&mut self) -> io::Result<()> {
        self.state = match self.byte()? {
            None => State::End,
            Some(TAG_LITERAL) => State::Literal(self.uv()?),
            Some(TAG_LINES) => {
                let quads = self.uv()?;
                if quads == 0 || quads > MAX_QUADS as u64 {
                    return Err(invalid("bad line length"));
                }
                let crlf = match self.byte()? {
                    Some(0) => true,
                    Some(1) => false,
                    _ => return Err(invalid("bad line end")),
                };
                State::Lines {
                    quads: quads as usize,
                    crlf,
                    left: self.uv()?,
                }
            }
            Some(_) => return Err(invalid("unknown segment")),
        };
        Ok(())
    }

    /// Makes the next lines of a lines segment into `out`.
    fn make_lines(&mut self, quads: usize, crlf: bool, left: u64) -> io::Result<()> {
        let width = quads * 4 + if crlf { 2 } else { 1 };
        let n = ((LINES_AT_ONCE / width).max(1) as u64).min(left) as usize;
        self.three.resize(n * quads * 3, 0);
        self.inner
            .read_exact(&mut self.three)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => invalid("cut short"),
                _ => e,
            })?;
        self.out.resize(n * width, 0);
        for (src, dst) in self
            .three
            .chunks_exact(quads * 3)
            .zip(self.out.chunks_exact_mut(width))
        {
            STANDARD
                .encode_slice(src, &mut dst[..quads * 4])
                .expect("room for the line");
            if crlf {
                dst[quads * 4] = b'\r';
            }
            dst[width - 1] = b'\n';
        }
        self.at = 0;
        self.state = State::Lines {
            quads,
            crlf,
            left: left - n as u64,
        };
        Ok(())
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.at < self.out.len() {
                let n = buf.len().min(self.out.len() - self.at);
                buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            match self.state {
                State::End => return Ok(0),
                State::Tag => self.next_segment()?,
                State::Literal(0) | State::Lines { left: 0, .. } => self.state = State::Tag,
                State::Literal(left) => {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = self.inner.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(invalid("cut short"));
                    }
                    self.state = State::Literal(left - n as u64);
                    return Ok(n);
                }
                State::Lines { quads, crlf, left } => self.make_lines(quads, crlf, left)?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic random stream (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    fn base64_lines(rng: &mut Rng, out: &mut Vec<u8>, width: usize, eol: &[u8]) {
        let n = rng.below(3000);
        let data = rng.bytes(n);
        let text = STANDARD.encode(&data);
        for line in text.as_bytes().chunks(width) {
            out.extend_from_slice(line);
            out.extend_from_slice(eol);
        }
    }

    /// Mail-like bytes: headers, text, base64 bodies of every width and line
    /// end, padding, lines too long, NULs, a last line without an end.
    fn mixed(seed: u64) -> Vec<u8> {
        let mut rng = Rng(seed * 2654435761 + 1);
        let mut out = Vec::new();
        for _ in 0..rng.below(30) {
            match rng.below(9) {
                0 => out.extend_from_slice(b"Subject: hello there\r\n"),
                1 => base64_lines(&mut rng, &mut out, 76, b"\r\n"),
                2 => base64_lines(&mut rng, &mut out, 64, b"\n"),
                3 => {
                    let w = 4 * (1 + rng.below(260));
                    let eol: &[u8] = if rng.below(2) == 0 { b"\r\n" } else { b"\n" };
                    base64_lines(&mut rng, &mut out, w, eol)
                }
                4 => {
                    // Alphabet-only text, a line too long, and binary junk.
                    let n = rng.below(3000);
                    out.extend((0..n).map(|i| b"ABCDabcd0123+/="[i % 15]));
                    out.extend_from_slice(b"\r\n");
                }
                5 => {
                    let n = rng.below(200);
                    out.extend(rng.bytes(n));
                }
                6 => out.extend_from_slice(b"\r\n\r\n\n\r"),
                7 => {
                    // Lines of 76 characters with a stray CR or a short one.
                    out.extend_from_slice(&[b'Q'; 76]);
                    out.extend_from_slice(b"\r\r\n");
                    out.extend_from_slice(&[b'Q'; 80]);
                    out.extend_from_slice(b"\n");
                }
                _ => out.extend_from_slice("本文です。\r\n".as_bytes()),
            }
        }
        if rng.below(2) == 0 {
            out.extend_from_slice(b"QUJDRA");
        }
        out
    }

    fn encode_in_pieces(raw: &[u8], seed: u64) -> (Vec<u8>, u64) {
        let mut rng = Rng(seed + 7);
        let mut enc = Encoder::new(Vec::new());
        let mut rest = raw;
        while !rest.is_empty() {
            let n = (1 + rng.below(300)).min(rest.len());
            enc.write_all(&rest[..n]).unwrap();
            rest = &rest[n..];
        }
        enc.finish().unwrap()
    }

    #[test]
    fn every_byte_comes_back_and_pieces_do_not_matter() {
        for seed in 0..400 {
            let raw = mixed(seed);
            let mut whole = Encoder::new(Vec::new());
            whole.write_all(&raw).unwrap();
            let (coded, runs) = whole.finish().unwrap();
            assert_eq!(
                encode_in_pieces(&raw, seed),
                (coded.clone(), runs),
                "seed {seed}"
            );
            // The quick look says what the whole coding would.
            let worth = runs > 0 && coded.len() < raw.len();
            assert_eq!(
                encode_all(&raw),
                worth.then(|| coded.clone()),
                "seed {seed}"
            );
            assert_eq!(
                decode_all(&coded, raw.len() as u64).unwrap(),
                raw,
                "seed {seed}"
            );
            // Read back in small pieces too.
            let mut back = Vec::new();
            let mut d = Decoder::new(&coded[..]);
            let mut buf = [0u8; 7];
            loop {
                let n = d.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                back.extend_from_slice(&buf[..n]);
            }
            assert_eq!(back, raw, "seed {seed}");
        }
    }

    #[test]
    fn an_attachment_is_coded_a_quarter_smaller() {
        let mut rng = Rng(99);
        let mut raw =
            b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
        base64_lines(&mut rng, &mut raw, 76, b"\r\n");
        let data = rng.bytes(200_000);
        for line in STANDARD.encode(&data).as_bytes().chunks(76) {
            raw.extend_from_slice(line);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"--boundary--\r\n");
        let coded = encode_all(&raw).expect("coded");
        assert!(coded.len() < 200_000 + 4_000, "{} bytes", coded.len());
        assert_eq!(decode_all(&coded, raw.len() as u64).unwrap(), raw);
    }

    #[test]
    fn text_and_short_runs_are_not_coded() {
        assert_eq!(encode_all(b""), None);
        assert_eq!(encode_all(b"Subject: x\r\n\r\nHello.\r\n"), None);
        // Three lines of base64 are fewer than a run.
        let three = [[b'A'; 76].as_slice(), b"\r\n"].concat().repeat(3);
        assert_eq!(encode_all(&three), None);
        let four = [[b'A'; 76].as_slice(), b"\r\n"].concat().repeat(4);
        let coded = encode_all(&four).expect("four lines are a run");
        assert_eq!(decode_all(&coded, four.len() as u64).unwrap(), four);
    }

    #[test]
    fn damage_is_an_error_or_other_bytes_never_a_panic() {
        let raw = mixed(3);
        let mut enc = Encoder::new(Vec::new());
        enc.write_all(&raw).unwrap();
        let (coded, _) = enc.finish().unwrap();
        let mut rng = Rng(5);
        for _ in 0..2000 {
            let mut bad = coded.clone();
            if bad.is_empty() {
                break;
            }
            let at = rng.below(bad.len() as u64);
            bad[at] ^= 1 << rng.below(8);
            bad.truncate(bad.len() - rng.below(3).min(bad.len()));
            let _ = decode_all(&bad, raw.len() as u64);
        }
        // A length past the limit is not believed.
        let mut huge = vec![TAG_LITERAL];
        crate::store::record::put_uv(&mut huge, u64::MAX / 2);
        assert!(decode_all(&huge, 10).is_err());
        assert!(decode_all(&[7], 10).is_err());
    }
}

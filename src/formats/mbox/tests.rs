//! Hand-made edge cases of the mbox writer and reader.

use super::*;

fn date(unix: i64) -> InternalDate {
    InternalDate {
        unix,
        offset_min: 0,
    }
}

fn read_all(data: &[u8], quoting: Quoting) -> io::Result<Vec<MboxMessage>> {
    MboxReader::new(data, quoting)
        .with_name("test.mbox")
        .collect()
}

fn write_one(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_message(&mut out, bytes, &date(1_704_067_200), &Flags::default()).unwrap();
    out
}

#[test]
fn writer_quotes_from_lines_and_adds_separator() {
    let out = write_one(b"Subject: x\n\nFrom here\n>From there\n>>From far\nFromage\n");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "From mailkeep@localhost Mon Jan  1 00:00:00 2024\n\
         Status: O\nX-Status: \n\
         Subject: x\n\n>From here\n>>From there\n>>>From far\nFromage\n\n"
    );
}

#[test]
fn writer_keeps_crlf_and_ends_with_newline() {
    let out = write_one(b"A: b\r\n\r\nFrom x\r\nlast");
    assert_eq!(
        out,
        b"From mailkeep@localhost Mon Jan  1 00:00:00 2024\nStatus: O\r\nX-Status: \r\nA: b\r\n\r\n>From x\r\nlast\n\n"
    );
}

#[test]
fn round_trip_of_tricky_messages() {
    let messages: Vec<&[u8]> = vec![
        b"Subject: a\n\nFrom the start\n>From quoted\n>>From twice\n",
        b"From envelope-looking first line\nSubject: b\n\nbody\n",
        b"Subject: crlf\r\n\r\nFrom x\r\n>From y\r\n",
        b"Subject: ends with blank lines\n\nbody\n\n\n",
        b"Subject: no final newline\n\nbody",
        b"",
        b"\n",
        b"Subject: cr only\r\rFrom x\rbody\r",
        b"From Mon Jan  1 00:00:00 2024\n",
    ];
    let mut file = Vec::new();
    for m in &messages {
        write_message(&mut file, m, &date(0), &Flags::new(["\\Seen", "\\Flagged"])).unwrap();
    }
    let got = read_all(&file, Quoting::Rd).unwrap();
    assert_eq!(got.len(), messages.len());
    for (m, g) in messages.iter().zip(&got) {
        let mut want = m.to_vec();
        if !want.ends_with(b"\n") {
            want.push(b'\n');
        }
        assert_eq!(
            String::from_utf8_lossy(&g.bytes),
            String::from_utf8_lossy(&want)
        );
        assert_eq!(
            g.from_line,
            "From mailkeep@localhost Thu Jan  1 00:00:00 1970"
        );
        assert_eq!(g.date, Some(date(0)));
        assert_eq!(
            g.flags,
            Flags::new(["\\Seen", "\\Flagged"]),
            "flags come back"
        );
    }
}

#[test]
fn mboxo_unquotes_only_one_level() {
    let file = b"From a Mon Jan  1 00:00:00 2024\n\n>From x\n>>From y\n";
    let o = read_all(file, Quoting::O).unwrap();
    assert_eq!(o[0].bytes, b"\nFrom x\n>>From y\n");
    let rd = read_all(file, Quoting::Rd).unwrap();
    assert_eq!(rd[0].bytes, b"\nFrom x\n>From y\n");
}

#[test]
fn crlf_file() {
    let file = b"From a Mon Jan  1 00:00:00 2024\r\nA: 1\r\n\r\nx\r\n\r\nFrom b Tue Jan  2 00:00:00 2024\r\nA: 2\r\n\r\ny\r\n";
    let got = read_all(file, Quoting::Rd).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].bytes, b"A: 1\r\n\r\nx\r\n");
    assert_eq!(got[0].from_line, "From a Mon Jan  1 00:00:00 2024");
    assert_eq!(got[1].bytes, b"A: 2\r\n\r\ny\r\n");
    assert_eq!(got[1].date.unwrap().unix, 1_704_153_600);
}

#[test]
fn last_message_without_newline() {
    let got = read_all(b"From a\nA: 1\n\nx", Quoting::Rd).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].bytes, b"A: 1\n\nx");
    assert_eq!(got[0].date, None);
}

#[test]
fn leading_blank_lines_and_bom() {
    let got = read_all(b"\xEF\xBB\xBF\n\r\nFrom -\nA: 1\n", Quoting::Rd).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].bytes, b"A: 1\n");
    assert!(read_all(b"", Quoting::Rd).unwrap().is_empty());
    assert!(read_all(b"\n\n", Quoting::Rd).unwrap().is_empty());
}

#[test]
fn no_leading_from_line_is_an_error() {
    let err = read_all(b"\n\nSubject: hi\n\nbody\n", Quoting::Rd).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let msg = err.to_string();
    assert!(msg.contains("`test.mbox` line 3"), "{msg}");
    assert!(msg.contains("Subject: hi"), "{msg}");
}

#[test]
fn unquoted_body_from_lines_that_are_not_envelopes_stay() {
    let file =
        b"From -\nSubject: 1\n\nFrom Russia with love\nYear: 1963\n\nFrom -\nSubject: 2\n\nbye\n";
    let got = read_all(file, Quoting::Rd).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].bytes,
        b"Subject: 1\n\nFrom Russia with love\nYear: 1963\n"
    );
}

#[test]
fn envelope_lines() {
    for yes in [
        "From -\n",
        "From \n",
        "From 1844347792267117879@xxx\n",
        "From MAILER-DAEMON Mon Apr 18 14:23:23 2022\n",
        "From jm@dogma.slashnull.org  Wed May 16 00:40:34 2001\n",
        "From - Mon Jun  3 12:50:27 1996\r\n",
        "From a@b Thu Sep 18 17:54:04 +0900 2008\n",
        "From \"john doe\"@example.com Sat Jan  3 01:05:34 1996\n",
    ] {
        assert!(is_envelope(yes.as_bytes()), "{yes:?}");
    }
    for no in [
        "From Russia with love\n",
        "From: a@b\n",
        "from x\n",
        ">From x Mon Jan 1 00:00:00 2024\n",
    ] {
        assert!(!is_envelope(no.as_bytes()), "{no:?}");
    }
}

#[test]
fn envelope_dates() {
    let d = envelope_date("From a Thu Sep 18 17:54:04 +0900 2008").unwrap();
    assert_eq!(d.offset_min, 540);
    assert_eq!(d.unix, 1_221_728_044);
    let d = envelope_date("From a Thu Sep 18 17:54:04 2008 -0100").unwrap();
    assert_eq!((d.unix, d.offset_min), (1_221_764_044, -60));
    let d = envelope_date("From - Mon Jun  3 12:50:27 1996").unwrap();
    assert_eq!(d.to_mbox(), "Mon Jun  3 12:50:27 1996");
    let d = envelope_date("From a Mon Jan  1 00:00:00 2024 remote from b").unwrap();
    assert_eq!(d.unix, 1_704_067_200);
    assert_eq!(envelope_date("From -"), None);
    assert_eq!(envelope_date("From a Mon Foo 1 00:00:00 2024"), None);
}

#[test]
fn status_headers_give_flags() {
    let file = b"From a\nStatus: RO\nX-Status: AF\nSubject: x\n\nStatus: ignored in body\n\n\
                 From b\nX-Mozilla-Status: 1003\n\nx\n";
    let got = read_all(file, Quoting::Rd).unwrap();
    assert_eq!(
        got[0].flags,
        Flags::new(["\\Seen", "\\Answered", "\\Flagged"])
    );
    assert_eq!(
        got[1].flags,
        Flags::new(["\\Seen", "\\Answered", "$Forwarded"])
    );
    // the headers stay in the bytes
    assert!(got[0].bytes.starts_with(b"Status: RO\n"));
}

#[test]
fn writer_files_and_finish() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let mut w = MboxWriter::create(&root).unwrap();
    let f = Flags::new(["\\Seen"]);
    w.write("INBOX", b"A: 1\n\nx\n", &f, &date(0)).unwrap();
    w.write("Work/Sub", b"A: 2\n\ny\n", &f, &date(0)).unwrap();
    w.write("INBOX", b"A: 3\n\nFrom z\n", &f, &date(0)).unwrap();
    w.write("a.mbox/b", b"A: 4\n", &f, &date(0)).unwrap();
    w.write("a", b"A: 5\n", &f, &date(0)).unwrap();
    w.write("../../escape", b"A: 6\n", &f, &date(0)).unwrap();
    assert!(!root.join("INBOX.mbox").exists(), "only after finish");
    w.finish().unwrap();

    let inbox: Vec<_> = open(&root.join("INBOX.mbox"), Quoting::Rd)
        .unwrap()
        .map(|m| m.unwrap().bytes)
        .collect();
    assert_eq!(
        inbox,
        [b"A: 1\n\nx\n".to_vec(), b"A: 3\n\nFrom z\n".to_vec()]
    );
    assert!(root.join("Work/Sub.mbox").is_file());
    assert!(root.join("a.mbox").is_file());
    assert!(root.join("a%2Embox/b.mbox").is_file());
    assert!(root.join("%2E./%2E./escape.mbox").is_file());
    let mut names: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["%2E.", "INBOX.mbox", "Work", "a%2Embox", "a.mbox"]);
}

#[test]
fn messages_know_their_line_and_offset() {
    let file = b"\xEF\xBB\xBFFrom a\nA: 1\n\nx\n\nFrom b\nA: 2\n\n>From y\n\nFrom c\nA: 3\n";
    let mut r = MboxReader::new(&file[..], Quoting::Rd);
    let got: Vec<MboxMessage> = r.by_ref().map(|m| m.unwrap()).collect();
    let places: Vec<(u64, u64)> = got.iter().map(|m| (m.line, m.offset)).collect();
    assert_eq!(places, [(1, 3), (6, 19), (11, 41)]);
    assert_eq!(&file[19..25], b"From b");
    assert_eq!(&file[41..47], b"From c");
    assert_eq!(r.bytes_read(), file.len() as u64);
}

/// A reader that hands out its bytes `piece` at a time (the last piece
/// shorter), then fails instead of ending if `fail_at_end`.
struct Pieces<'a> {
    data: &'a [u8],
    piece: usize,
    fail_at_end: bool,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() {
            return if self.fail_at_end {
                Err(io::Error::new(io::ErrorKind::InvalidData, "damaged"))
            } else {
                Ok(0)
            };
        }
        let n = self.piece.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn streamed_quoting_is_the_same_however_the_bytes_are_cut() {
    let messages: Vec<&[u8]> = vec![
        b"Subject: a\n\nFrom the start\n>From quoted\n>>From twice\n",
        b"From envelope-looking first line\nSubject: b\n\nbody\n",
        b"Subject: crlf\r\n\r\nFrom x\r\n>From y\r\n",
        b"Subject: no final newline\n\n>>From",
        b"Subject: ends in a From line\n\nFrom ",
        b"Fro\nFrom\n>Fro>m \n>>>>\n\n>\nFromage\n",
        b"",
        b"\n",
        b"Subject: cr only\r\rFrom x\rbody\r",
    ];
    for m in messages {
        let want = write_one(m);
        for piece in 1..=9 {
            let mut got = Vec::new();
            let mut src = Pieces {
                data: m,
                piece,
                fail_at_end: false,
            };
            let n = write_message_from(&mut got, &mut src, &date(1_704_067_200), &Flags::default())
                .unwrap();
            assert_eq!(n, m.len() as u64);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "pieces of {piece}"
            );
        }
    }
}

#[test]
fn a_quoted_from_line_cut_between_reads_is_still_quoted() {
    // Reads of 4 bytes cut `>>From ` after `>>Fr`, and `From ` after `Fro`.
    let m = b"A: b\n\n>>From far\nxFrom \nFrom here\n";
    let mut got = Vec::new();
    let mut src = Pieces {
        data: m,
        piece: 4,
        fail_at_end: false,
    };
    write_message_from(&mut got, &mut src, &date(0), &Flags::default()).unwrap();
    let body = String::from_utf8(got).unwrap();
    assert!(body.contains("\n>>>From far\n"), "{body}");
    assert!(body.contains("\nxFrom \n>From here\n"), "{body}");
    let back = read_all(body.as_bytes(), Quoting::Rd).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].bytes, m);
}

#[test]
fn a_source_that_fails_leaves_no_trace_of_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let mut w = MboxWriter::create(&root).unwrap();
    w.write(
        "INBOX",
        b"Subject: fine\n\nok\n",
        &Flags::default(),
        &date(0),
    )
    .unwrap();
    // Long enough that part of it reaches the file before the source fails.
    let body = format!("Subject: damaged\n\n{}\n", "x".repeat(200_000));
    let mut bad = Pieces {
        data: body.as_bytes(),
        piece: 5000,
        fail_at_end: true,
    };
    let err = w
        .write_from("INBOX", &mut bad, &Flags::default(), &date(0))
        .unwrap_err();
    assert!(err.to_string().contains("INBOX.mbox"), "{err}");
    // The export goes on with the next message.
    w.write("INBOX", b"Subject: later\n\n", &Flags::default(), &date(0))
        .unwrap();
    w.finish().unwrap();
    let text = fs::read(root.join("INBOX.mbox")).unwrap();
    let back = read_all(&text[..], Quoting::Rd).unwrap();
    let subjects: Vec<_> = back.iter().map(|m| m.bytes.clone()).collect();
    assert_eq!(
        subjects,
        vec![
            b"Subject: fine\n\nok\n".to_vec(),
            b"Subject: later\n\n".to_vec()
        ]
    );
}

#[test]
fn abandon_removes_every_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let mut w = MboxWriter::create(&root).unwrap();
    w.write("INBOX", b"Subject: a\n\n", &Flags::default(), &date(0))
        .unwrap();
    w.write("Work", b"Subject: b\n\n", &Flags::default(), &date(0))
        .unwrap();
    w.abandon();
    let left: Vec<_> = fs::read_dir(&root).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!root.join("Work.mbox").exists());
}

#[test]
fn flags_go_into_status_lines_that_mutt_reads() {
    let mut out = Vec::new();
    let flags = Flags::new(["\\Seen", "\\Answered", "\\Draft", "$Forwarded"]);
    write_message(&mut out, b"Subject: s\n\nbody\n", &date(0), &flags).unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        text.contains("\nStatus: RO\nX-Status: AT\nSubject: s\n"),
        "{text}"
    );
    // Unread: `O` (seen by a mail program, not read).
    let mut unread = Vec::new();
    write_message(
        &mut unread,
        b"Subject: s\n\nb\n",
        &date(0),
        &Flags::default(),
    )
    .unwrap();
    assert!(String::from_utf8(unread)
        .unwrap()
        .contains("\nStatus: O\nX-Status: \n"));
    // Read back: the stored bytes and the flags mbox can carry.
    let back = read_all(&out, Quoting::Rd).unwrap();
    assert_eq!(back[0].bytes, b"Subject: s\n\nbody\n");
    assert_eq!(
        back[0].flags,
        Flags::new(["\\Seen", "\\Answered", "\\Draft"])
    );
}

#[test]
fn status_lines_of_another_writer_stay_in_the_message() {
    let file = b"From someone@example.com Mon Jan  1 00:00:00 2024\nStatus: RO\nX-Status: F\nSubject: s\n\nb\n";
    let back = read_all(file, Quoting::Rd).unwrap();
    assert_eq!(back[0].bytes, b"Status: RO\nX-Status: F\nSubject: s\n\nb\n");
    assert_eq!(back[0].flags, Flags::new(["\\Seen", "\\Flagged"]));
}

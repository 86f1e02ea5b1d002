use super::*;
use crate::model::records::RefEvent;

fn seen(uid: u32, blob: BlobId) -> RefRecord {
    RefRecord {
        account: "work".into(),
        mailbox: "INBOX".into(),
        uidvalidity: 1,
        uid,
        at: 5,
        event: RefEvent::Seen {
            blob,
            internaldate: 1,
            date_offset: 0,
            size: 1,
            flags: String::new(),
            modseq: None,
        },
    }
}

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: a{i}@example.com\r\nTo: b@example.com\r\nSubject: message number {i}\r\n\
         Message-ID: <{i}@example.com>\r\n\r\nBody of message {i}, with some words.\r\n"
    )
    .into_bytes()
}

#[test]
fn bytes_round_trip_and_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let bytes = b"Subject: x\n\nbare LF body\0with NUL\r\n".to_vec();
    let (id, new) = s.put_blob(&bytes).unwrap();
    assert!(new);
    let (id2, new2) = s.put_blob(&bytes).unwrap();
    assert_eq!((id2, new2), (id, false));
    s.add_ref(seen(1, id)).unwrap();
    s.commit().unwrap();
    assert_eq!(s.read_blob(&id).unwrap(), bytes);
    assert_eq!(s.index().totals().unwrap().blobs, 1);
    drop(s);

    let s = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(s.read_blob(&id).unwrap(), bytes);
    assert!(s.verify(true, &mut |_, _| {}).unwrap().problems.is_empty());
}

#[test]
fn second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _s = Store::open(dir.path()).unwrap();
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::Locked(_))
    ));
}

#[test]
fn records_appended_but_not_committed_are_indexed_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let mut s = Store::open(&root).unwrap();
    let (a, _) = s.put_blob(&message(1)).unwrap();
    s.add_ref(seen(1, a)).unwrap();
    s.commit().unwrap();
    let (b, _) = s.put_blob(&message(2)).unwrap();
    s.add_ref(seen(2, b)).unwrap();
    // The process dies here: the pack has the records, the index does not.
    s.writer.as_mut().unwrap().sync().unwrap();
    std::mem::forget(s);
    // forget() keeps the lock fd open; release it like process exit would.
    let s = reopen_after_crash(&root);
    assert_eq!(s.recovery().records_indexed, 2);
    assert_eq!(s.read_blob(&b).unwrap(), message(2));
    assert!(s.verify(true, &mut |_, _| {}).unwrap().problems.is_empty());
}

#[test]
fn a_torn_record_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let (a, _) = s.put_blob(&message(1)).unwrap();
    s.commit().unwrap();
    let (no, len) = {
        let w = s.writer.as_ref().unwrap();
        (w.no, w.len())
    };
    drop(s);
    let path = pack::pack_path(dir.path(), no);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&record::header(Kind::Blob, 1000)).unwrap();
    f.write_all(b"half a record").unwrap();
    drop(f);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.recovery().bytes_truncated, 16 + 13);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    assert_eq!(s.read_blob(&a).unwrap(), message(1));
}

#[test]
fn a_blob_whose_bytes_do_not_hash_is_not_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    s.put_blob(&message(1)).unwrap();
    s.commit().unwrap();
    let good_len = s.writer.as_ref().unwrap().len();
    // A well-formed record that claims the wrong id.
    let frame = zstd::bulk::compress(b"other bytes", 3).unwrap();
    let prefix = blob_prefix(0, 11);
    s.writer
        .as_mut()
        .unwrap()
        .append(Kind::Blob, &[&prefix, &frame, &BlobId::of(b"not it").0])
        .unwrap();
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.recovery().records_indexed, 0);
    assert_eq!(
        std::fs::metadata(pack::pack_path(dir.path(), 1))
            .unwrap()
            .len(),
        good_len
    );
}

#[test]
fn dictionary_is_trained_and_used_and_index_rebuilds_from_packs() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let mut ids = Vec::new();
    for i in 0..(DICT_TRAIN_AFTER as usize + 50) {
        let (id, _) = s.put_blob(&message(i)).unwrap();
        s.add_ref(seen(i as u32 + 1, id)).unwrap();
        ids.push(id);
        if i % 100 == 99 {
            s.commit().unwrap();
        }
    }
    s.commit().unwrap();
    assert!(s.current_dict.is_some(), "a dictionary was trained");
    let (late, _) = s.put_blob(&message(5000)).unwrap();
    s.commit().unwrap();
    assert_eq!(s.blob_location(&late).unwrap().dict_id, 1);
    let before = s.index().totals().unwrap();
    let rebuilt = s.rebuild_index().unwrap();
    assert!(rebuilt > 2000);
    assert_eq!(s.index().totals().unwrap(), before);
    assert_eq!(s.read_blob(&late).unwrap(), message(5000));
    assert_eq!(s.read_blob(&ids[3]).unwrap(), message(3));
    let mb = s.index().current_mailbox("work", "INBOX").unwrap().unwrap();
    assert_eq!(s.index().messages(mb.id).unwrap().len(), ids.len());
    assert!(s.verify(true, &mut |_, _| {}).unwrap().problems.is_empty());
}

#[test]
fn big_messages_stream_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let src = dir.path().join("big.eml");
    std::fs::write(&src, &big).unwrap();
    let (id, new) = s.put_blob_file(&src).unwrap();
    assert!(new);
    assert_eq!(id, BlobId::of(&big));
    let (_, again) = s.put_blob_file(&src).unwrap();
    assert!(!again);
    let (small, _) = s.put_blob(&message(1)).unwrap();
    s.commit().unwrap();
    assert_eq!(s.read_blob(&id).unwrap(), big);
    assert_eq!(s.read_blob(&small).unwrap(), message(1));
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.recovery(), &Recovery::default());
    assert!(s.verify(true, &mut |_, _| {}).unwrap().problems.is_empty());
}

#[test]
fn deep_verify_finds_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let (id, _) = s.put_blob(&message(7)).unwrap();
    s.commit().unwrap();
    let loc = s.blob_location(&id).unwrap();
    drop(s);
    let path = pack::pack_path(dir.path(), loc.pack);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(loc.offset + HEADER_LEN + BLOB_PREFIX_LEN + 6) as usize] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let s = Store::open_read_only(dir.path()).unwrap();
    let report = s.verify(true, &mut |_, _| {}).unwrap();
    assert!(
        report.problems[0].contains(&id.to_hex()),
        "{:?}",
        report.problems
    );
    assert!(s.read_blob(&id).is_err());
}

#[test]
fn store_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let mut s = Store::open(&root).unwrap();
    s.put_blob(&message(1)).unwrap();
    s.commit().unwrap();
    for p in [
        root.clone(),
        root.join("index.sqlite"),
        pack::pack_path(&root, 1),
    ] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o077;
        assert_eq!(mode, 0, "{} is readable by others", p.display());
    }
}

/// Opens a store whose previous writer died without closing: the lock of a
/// dead process is gone, but in this test the forgotten fd still holds it, so
/// copy the store aside the way a new process would find it.
fn reopen_after_crash(root: &Path) -> Store {
    let copy = root.parent().unwrap().join(format!(
        "{}-after-crash",
        root.file_name().unwrap().to_string_lossy()
    ));
    copy_dir(root, &copy);
    let _ = std::fs::remove_file(copy.join("lock"));
    Store::open(&copy).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn open_blob_streams_the_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let src = dir.path().join("big.eml");
    std::fs::write(&src, &big).unwrap();
    let (id, _) = s.put_blob_file(&src).unwrap();
    let (small, _) = s.put_blob(&message(2)).unwrap();
    s.commit().unwrap();
    let mut r = s.open_blob(&id).unwrap();
    assert_eq!(r.size(), big.len() as u64);
    // Read in odd pieces: the reader owns its file, the store stays usable.
    let mut got = Vec::new();
    let mut buf = [0u8; 7777];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        assert!(s.has_blob(&small).unwrap());
    }
    assert_eq!(got, big);
    assert_eq!(r.read(&mut buf).unwrap(), 0, "the end stays the end");
    let mut small_bytes = Vec::new();
    s.open_blob(&small)
        .unwrap()
        .read_to_end(&mut small_bytes)
        .unwrap();
    assert_eq!(small_bytes, message(2));
}

#[test]
fn open_blob_reports_damage_instead_of_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    // Noise does not compress: zstd keeps it as a raw block, so a flipped
    // byte still decompresses and only the hash can tell.
    let bytes = noise(200_000, 7);
    let (id, _) = s.put_blob(&bytes).unwrap();
    s.commit().unwrap();
    let loc = s.blob_location(&id).unwrap();
    drop(s);
    let path = pack::pack_path(dir.path(), loc.pack);
    let mut pack_bytes = std::fs::read(&path).unwrap();
    pack_bytes[(loc.offset + HEADER_LEN + BLOB_PREFIX_LEN + 100_000) as usize] ^= 0x55;
    std::fs::write(&path, pack_bytes).unwrap();
    let s = Store::open_read_only(dir.path()).unwrap();
    let mut r = s.open_blob(&id).unwrap();
    let mut got = Vec::new();
    let err = r.read_to_end(&mut got).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains(&id.to_hex()), "{err}");
    assert_eq!(got.len(), bytes.len(), "all bytes came, then the error");
    assert!(matches!(r.take_error(), Some(StoreError::Corrupt { .. })));
}

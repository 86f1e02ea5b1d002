use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;

use super::*;
use crate::model::records::{RefEvent, RefRecord};
use record::{Kind, BLOB_PREFIX_LEN, HEADER_LEN};

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
    assert!(s.verify(true, &mut |_, _| {}).unwrap().is_clean());
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
    assert!(s.verify(true, &mut |_, _| {}).unwrap().is_clean());
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
    // Moved aside, not destroyed.
    let aside = pack::quarantine_path(dir.path(), no, len, true);
    assert_eq!(std::fs::metadata(aside).unwrap().len(), 16 + 13);
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
    let prefix = write::blob_prefix(0, 11);
    let (_, bad_len) = s
        .writer
        .as_mut()
        .unwrap()
        .append(Kind::Blob, &[&prefix, &frame, &BlobId::of(b"not it").0])
        .unwrap();
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.recovery().records_indexed, 0);
    assert_eq!(s.recovery().bytes_skipped, bad_len);
    // A whole record is never cut: it is skipped, and a copy kept aside.
    assert_eq!(
        std::fs::metadata(pack::pack_path(dir.path(), 1))
            .unwrap()
            .len(),
        good_len + bad_len
    );
    assert!(pack::quarantine_path(dir.path(), 1, good_len, false).exists());
    assert!(!s.has_blob(&BlobId::of(b"not it")).unwrap());
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
    assert!(s.dicts.current().is_some(), "a dictionary was trained");
    let (late, _) = s.put_blob(&message(5000)).unwrap();
    s.commit().unwrap();
    assert_eq!(s.blob_location(&late).unwrap().dict_id, 1);
    let before = s.index().totals().unwrap();
    let s = repaired(s);
    assert!(s.recovery().records_indexed == 0);
    assert_eq!(s.index().totals().unwrap(), before);
    assert_eq!(s.read_blob(&late).unwrap(), message(5000));
    assert_eq!(s.read_blob(&ids[3]).unwrap(), message(3));
    let mb = s.index().current_mailbox("work", "INBOX").unwrap().unwrap();
    assert_eq!(s.index().messages(mb.id).unwrap().len(), ids.len());
    assert!(s.verify(true, &mut |_, _| {}).unwrap().is_clean());
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
    assert!(s.verify(true, &mut |_, _| {}).unwrap().is_clean());
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
    assert!(!report.is_clean());
    assert_eq!(report.damaged[0].blob, id, "{report:?}");
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

/// Closes the store, rebuilds its index with `repair`, opens it again.
fn repaired(s: Store) -> Store {
    let root = s.root().to_path_buf();
    drop(s);
    repair(&root, &mut |_, _| {}).unwrap();
    Store::open(&root).unwrap()
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

/// A store of `n` messages in INBOX (UIDs 1..=n), committed in batches of
/// 100; returns the ids in UID order.
fn filled(root: &Path, n: usize) -> Vec<BlobId> {
    let mut s = Store::open(root).unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let (id, _) = s.put_blob(&message(i)).unwrap();
        s.add_ref(seen(i as u32 + 1, id)).unwrap();
        ids.push(id);
        if i % 100 == 99 {
            s.commit().unwrap();
        }
    }
    s.commit().unwrap();
    ids
}

fn flip(root: &Path, pack: u32, at: u64) {
    let path = pack::pack_path(root, pack);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at as usize] ^= 0x5a;
    std::fs::write(&path, bytes).unwrap();
}

fn inbox(s: &Store) -> std::collections::BTreeMap<u32, crate::index::StoredMessage> {
    let mb = s.index().current_mailbox("work", "INBOX").unwrap().unwrap();
    s.index().messages(mb.id).unwrap()
}

#[test]
fn a_flipped_byte_in_the_middle_costs_one_message_and_repair_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let ids = filled(dir.path(), 40);
    let s = Store::open_read_only(dir.path()).unwrap();
    let hit = s.blob_location(&ids[10]).unwrap();
    drop(s);
    let pack_len = std::fs::metadata(pack::pack_path(dir.path(), 1))
        .unwrap()
        .len();
    flip(dir.path(), 1, hit.offset + HEADER_LEN + BLOB_PREFIX_LEN + 3);

    let s = Store::open_read_only(dir.path()).unwrap();
    let report = s.verify(false, &mut |_, _| {}).unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert_eq!(report.damaged[0].blob, ids[10]);
    assert_eq!(report.damaged[0].places[0].uid, 11);
    drop(s);

    let r = repair(dir.path(), &mut |_, _| {}).unwrap();
    assert_eq!(r.skipped_bytes, hit.length);
    assert_eq!(r.messages, 40, "every message keeps its row");
    assert_eq!(r.unique_messages, 39);
    assert_eq!(r.lost.len() + r.to_fetch_again.len(), 1);
    // Nothing was rewritten or cut; the damaged record is copied aside.
    assert_eq!(
        std::fs::metadata(pack::pack_path(dir.path(), 1))
            .unwrap()
            .len(),
        pack_len
    );
    let aside = pack::quarantine_path(dir.path(), 1, hit.offset, false);
    assert_eq!(std::fs::metadata(aside).unwrap().len(), hit.length);

    let s = Store::open_read_only(dir.path()).unwrap();
    for (i, id) in ids.iter().enumerate() {
        if i == 10 {
            assert!(matches!(
                s.read_blob(id),
                Err(StoreError::NoSuchBlob { .. })
            ));
        } else {
            assert_eq!(s.read_blob(id).unwrap(), message(i), "message {i}");
        }
    }
    let report = s.verify(true, &mut |_, _| {}).unwrap();
    assert_eq!(report.missing.len(), 1, "{report:?}");
    assert!(report.regions.iter().all(|g| g.set_aside), "{report:?}");
    assert!(!report.is_clean(), "a lost message is never `no problems`");
}

#[test]
fn a_fresh_copy_of_damaged_bytes_takes_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let ids = filled(dir.path(), 5);
    let s = Store::open_read_only(dir.path()).unwrap();
    let hit = s.blob_location(&ids[2]).unwrap();
    drop(s);
    flip(dir.path(), 1, hit.offset + HEADER_LEN + BLOB_PREFIX_LEN + 3);
    let s = Store::open_read_only(dir.path()).unwrap();
    assert!(s.read_blob(&ids[2]).is_err());
    drop(s);
    let mut s = Store::open(dir.path()).unwrap();
    assert!(
        s.index().is_damaged(&ids[2]).unwrap(),
        "the failed read was noted"
    );
    assert!(!s.has_blob(&ids[2]).unwrap());
    let (id, new) = s.put_blob(&message(2)).unwrap();
    assert_eq!((id, new), (ids[2], true));
    s.commit().unwrap();
    assert_eq!(s.read_blob(&ids[2]).unwrap(), message(2));
    assert!(!s.index().is_damaged(&ids[2]).unwrap());
    assert_ne!(s.blob_location(&ids[2]).unwrap().offset, hit.offset);
}

#[test]
fn a_damaged_dictionary_copy_costs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let n = DICT_TRAIN_AFTER as usize + 60;
    let ids = filled(dir.path(), n);
    let s = Store::open_read_only(dir.path()).unwrap();
    let copies = s.index().dictionary_copies().unwrap();
    assert_eq!(copies.len(), 2, "a dictionary is written twice");
    let late = *ids.last().unwrap();
    assert_eq!(s.blob_location(&late).unwrap().dict_id, 1);
    drop(s);
    flip(dir.path(), 1, copies[0].1.offset + HEADER_LEN + 500);

    let s = Store::open_read_only(dir.path()).unwrap();
    assert!(s.problems().is_empty(), "{:?}", s.problems());
    assert_eq!(s.read_blob(&late).unwrap(), message(n - 1));
    assert!(!s.verify(false, &mut |_, _| {}).unwrap().is_clean());
    drop(s);
    // A writer puts a second readable copy back.
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.recovery().dictionary_copies_written, 1);
    drop(s);
    repair(dir.path(), &mut |_, _| {}).unwrap();
    let s = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(s.index().dictionary_copies().unwrap().len(), 2);
    assert!(s.verify(true, &mut |_, _| {}).unwrap().is_clean());
    assert_eq!(s.read_blob(&late).unwrap(), message(n - 1));
}

#[test]
fn a_dictionary_with_no_whole_copy_is_trained_again() {
    let dir = tempfile::tempdir().unwrap();
    let n = DICT_TRAIN_AFTER as usize + 60;
    let ids = filled(dir.path(), n);
    let s = Store::open_read_only(dir.path()).unwrap();
    let copies = s.index().dictionary_copies().unwrap();
    drop(s);
    // As in a store written before copies were kept, whose one copy is hit.
    for (_, c) in &copies {
        flip(dir.path(), c.pack, c.offset + HEADER_LEN + 777);
    }
    let late = *ids.last().unwrap();
    let s = Store::open_read_only(dir.path()).unwrap();
    assert!(s.problems().is_empty(), "{:?}", s.problems());
    assert_eq!(s.read_blob(&late).unwrap(), message(n - 1));
    drop(s);
    let r = repair(dir.path(), &mut |_, _| {}).unwrap();
    assert_eq!(r.dictionaries_rebuilt, vec![1]);
    assert!(r.lost.is_empty() && r.to_fetch_again.is_empty(), "{r:?}");
    let s = Store::open_read_only(dir.path()).unwrap();
    assert!(s.index().dictionary_copies().unwrap().len() >= 2);
    assert!(s.verify(true, &mut |_, _| {}).unwrap().is_clean());
}

#[test]
fn a_lost_dictionary_whose_samples_are_damaged_too_is_named_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let n = DICT_TRAIN_AFTER as usize + 60;
    let ids = filled(dir.path(), n);
    let s = Store::open_read_only(dir.path()).unwrap();
    let copies = s.index().dictionary_copies().unwrap();
    // A message the dictionary was trained on (every one before it is).
    let sample = s.blob_location(&ids[10]).unwrap();
    drop(s);
    for (_, c) in &copies {
        flip(dir.path(), c.pack, c.offset + HEADER_LEN + 777);
    }
    flip(dir.path(), sample.pack, sample.offset + HEADER_LEN + 20);
    // It cannot be trained again as it was: lost, and said so; the store
    // still opens and the messages stored without it read fine.
    let s = Store::open_read_only(dir.path()).unwrap();
    assert!(!s.problems().is_empty(), "the lost dictionary is named");
    assert_eq!(s.read_blob(&ids[0]).unwrap(), message(0));
}

#[test]
fn a_pack_cut_short_locks_nobody_out() {
    let dir = tempfile::tempdir().unwrap();
    let ids = filled(dir.path(), 40);
    let s = Store::open_read_only(dir.path()).unwrap();
    let cut_in = s.blob_location(&ids[25]).unwrap();
    drop(s);
    let path = pack::pack_path(dir.path(), 1);
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(cut_in.offset + 20).unwrap();
    drop(f);

    let s = Store::open_read_only(dir.path()).unwrap();
    assert!(
        matches!(
            s.problems(),
            [Problem::PackShort {
                pack: 1,
                messages: 15,
                ..
            }]
        ),
        "{:?}",
        s.problems()
    );
    assert_eq!(s.read_blob(&ids[3]).unwrap(), message(3));
    assert!(matches!(
        s.read_blob(&ids[30]),
        Err(StoreError::Corrupt { .. })
    ));
    drop(s);
    // A writer goes on in a new pack, and notes what it cannot read.
    let mut s = Store::open(dir.path()).unwrap();
    assert!(s.index().is_damaged(&ids[30]).unwrap());
    let (late, _) = s.put_blob(&message(99)).unwrap();
    s.commit().unwrap();
    assert_eq!(s.blob_location(&late).unwrap().pack, 2);
    drop(s);
    let r = repair(dir.path(), &mut |_, _| {}).unwrap();
    assert_eq!(r.unique_messages, 25 + 1);
    assert_eq!(r.lost.len() + r.to_fetch_again.len(), 15);
    let s = Store::open_read_only(dir.path()).unwrap();
    assert!(s.problems().is_empty());
    assert_eq!(s.read_blob(&ids[24]).unwrap(), message(24));
    assert_eq!(s.read_blob(&late).unwrap(), message(99));
}

#[test]
fn a_damaged_index_file_is_rebuilt_and_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    let ids = filled(dir.path(), 300);
    let ix = dir.path().join("index.sqlite");
    let mut bytes = std::fs::read(&ix).unwrap();
    let mid = bytes.len() / 2 / 4096 * 4096;
    for b in &mut bytes[mid..mid + 4096] {
        *b = 0xA5;
    }
    std::fs::write(&ix, bytes).unwrap();
    let r = repair(dir.path(), &mut |_, _| {}).unwrap();
    let crate::store::repair::OldIndex::Damaged { kept, .. } = &r.old_index else {
        panic!("the old index was not found damaged: {:?}", r.old_index);
    };
    assert!(kept.exists());
    assert_eq!(r.messages, 300);
    let s = Store::open_read_only(dir.path()).unwrap();
    assert!(s.verify(true, &mut |_, _| {}).unwrap().is_clean());
    assert_eq!(s.read_blob(&ids[150]).unwrap(), message(150));
}

#[test]
fn a_damaged_ref_record_is_written_again_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ids = filled(root, 10);
    let mut s = Store::open(root).unwrap();
    s.add_ref(RefRecord {
        at: 9,
        event: RefEvent::Archived,
        ..seen(4, ids[3])
    })
    .unwrap();
    s.add_ref(RefRecord {
        at: 9,
        event: RefEvent::Flags {
            flags: "\\Flagged".into(),
            modseq: Some(3),
        },
        ..seen(5, ids[4])
    })
    .unwrap();
    s.commit().unwrap();
    let before = inbox(&s);
    drop(s);
    // The `seen` record of UID 4 and the flag change of UID 5 are hit.
    let mut hits = Vec::new();
    pack::scan(root, 1, 0, None, &mut |item| {
        if let pack::Scanned::Record(r) = item {
            if r.kind == Kind::Event {
                let e = record::decode_event(&r.payload).unwrap();
                let hit = match e.event {
                    RefEvent::Seen { .. } => e.uid == 4,
                    RefEvent::Flags { flags, .. } => flags.contains("Flagged"),
                    _ => false,
                };
                if hit {
                    hits.push(r.offset + HEADER_LEN + 4);
                }
            }
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(hits.len(), 2);
    for h in hits {
        flip(root, 1, h);
    }
    let r = repair(root, &mut |_, _| {}).unwrap();
    assert!(r.healed >= 3, "{r:?}");
    let s = Store::open_read_only(root).unwrap();
    assert_eq!(inbox(&s), before, "nothing the old index knew is lost");
    drop(s);
    // And a second repair, from the packs alone, gives the same.
    std::fs::remove_file(root.join("index.sqlite")).unwrap();
    repair(root, &mut |_, _| {}).unwrap();
    let s = Store::open_read_only(root).unwrap();
    assert_eq!(inbox(&s), before);
}

#[test]
fn verify_reads_a_snapshot_while_a_writer_appends() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path(), 20);
    let mut w = Store::open(dir.path()).unwrap();
    for i in 100..120 {
        let (id, _) = w.put_blob(&message(i)).unwrap();
        w.add_ref(seen(i as u32, id)).unwrap();
    }
    // Appended, not committed: a backup at work.
    let r = Store::open_read_only(dir.path())
        .unwrap()
        .verify(true, &mut |_, _| {})
        .unwrap();
    assert!(r.is_clean(), "{r:?}");
    assert_eq!(r.unindexed.len(), 1);
    w.commit().unwrap();
}

#[test]
fn dictionaries_are_trained_again_as_the_store_grows() {
    let dir = tempfile::tempdir().unwrap();
    let n = DICT_TRAIN_AFTER as usize * 8 + 50;
    let ids = filled(dir.path(), n);
    let s = Store::open_read_only(dir.path()).unwrap();
    let dicts: BTreeSet<u32> = s
        .index()
        .dictionary_copies()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(dicts, [1, 2].into(), "one at 1,000 messages, one at 8,000");
    assert_eq!(s.blob_location(&ids[1500]).unwrap().dict_id, 1);
    assert_eq!(s.blob_location(&ids[n - 1]).unwrap().dict_id, 2);
    let copies: Vec<_> = s
        .index()
        .dictionary_copies()
        .unwrap()
        .into_iter()
        .filter(|(id, _)| *id == 2)
        .collect();
    drop(s);
    // Every copy of the second one lost: it is trained again, by the same rule.
    for (_, c) in &copies {
        flip(dir.path(), c.pack, c.offset + HEADER_LEN + 300);
    }
    let r = repair(dir.path(), &mut |_, _| {}).unwrap();
    assert_eq!(r.dictionaries_rebuilt, vec![2]);
    let s = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(s.read_blob(&ids[n - 1]).unwrap(), message(n - 1));
    assert_eq!(s.read_blob(&ids[10]).unwrap(), message(10));
}

#[test]
fn a_lost_dictionary_trained_by_the_older_rule_is_trained_again_by_it() {
    // A store whose dictionaries an earlier release trained (zstd's own
    // parameter search); every copy of one is then lost.
    let dir = tempfile::tempdir().unwrap();
    let n = DICT_TRAIN_AFTER as usize + 60;
    super::dicts::NEW_DICTS_BY.with(|t| t.set(super::dicts::Trainer::Searched));
    let ids = filled(dir.path(), n);
    super::dicts::NEW_DICTS_BY.with(|t| t.set(super::dicts::Trainer::FixedFastCover));
    let s = Store::open_read_only(dir.path()).unwrap();
    let copies = s.index().dictionary_copies().unwrap();
    drop(s);
    for (_, c) in &copies {
        flip(dir.path(), c.pack, c.offset + HEADER_LEN + 777);
    }
    let r = repair(dir.path(), &mut |_, _| {}).unwrap();
    assert_eq!(r.dictionaries_rebuilt, vec![1]);
    assert!(r.lost.is_empty() && r.to_fetch_again.is_empty(), "{r:?}");
    let s = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(s.read_blob(ids.last().unwrap()).unwrap(), message(n - 1));
    assert!(s.verify(true, &mut |_, _| {}).unwrap().is_clean());
}

#[test]
fn the_two_training_rules_give_different_dictionaries() {
    // Otherwise the test above would prove nothing about the fallback.
    let samples: Vec<Vec<u8>> = (0..1500).map(message).collect();
    let sizes: Vec<usize> = samples.iter().map(|m| m.len().min(16 * 1024)).collect();
    let all: Vec<u8> = samples
        .iter()
        .zip(&sizes)
        .flat_map(|(m, n)| m[..*n].to_vec())
        .collect();
    let fixed = super::dicts::train_for_test(
        &all,
        &sizes,
        32 * 1024,
        super::dicts::Trainer::FixedFastCover,
    );
    let searched =
        super::dicts::train_for_test(&all, &sizes, 32 * 1024, super::dicts::Trainer::Searched);
    assert!(fixed.is_some() && searched.is_some());
    assert_ne!(fixed, searched);
}

/// A message with an attachment: `kib` KiB of random bytes in base64 lines
/// of 76 characters.
fn with_attachment(i: usize, kib: usize) -> Vec<u8> {
    use base64::Engine as _;
    let mut m = format!(
        "From: a{i}@example.com\r\nSubject: report {i}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n\
         Content-Type: text/plain\r\n\r\nSee the file.\r\n--b{i}\r\n\
         Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    let text = base64::engine::general_purpose::STANDARD.encode(noise(kib * 1024, i as u64 + 1));
    for line in text.as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
    m
}

fn record_kind(root: &Path, loc: &crate::index::BlobLocation) -> u8 {
    let bytes = std::fs::read(pack::pack_path(root, loc.pack)).unwrap();
    bytes[loc.offset as usize + 4]
}

#[test]
fn attachments_are_stored_decoded_and_come_back_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let mail = with_attachment(1, 300);
    let (id, _) = s.put_blob(&mail).unwrap();
    let (plain, _) = s.put_blob(&message(2)).unwrap();
    let streamed = with_attachment(3, 2048);
    let src = dir.path().join("big.eml");
    std::fs::write(&src, &streamed).unwrap();
    let (big, _) = s.put_blob_file(&src).unwrap();
    s.commit().unwrap();

    let loc = s.blob_location(&id).unwrap();
    assert_eq!(record_kind(dir.path(), &loc), b'C');
    // Random bytes do not compress: what is saved is base64's quarter.
    assert!(
        (loc.length as f64) < 0.76 * mail.len() as f64,
        "{} bytes stored of {}",
        loc.length,
        mail.len()
    );
    assert_eq!(
        record_kind(dir.path(), &s.blob_location(&plain).unwrap()),
        b'B'
    );
    let big_loc = s.blob_location(&big).unwrap();
    assert_eq!(record_kind(dir.path(), &big_loc), b'C');
    assert!((big_loc.length as f64) < 0.76 * streamed.len() as f64);

    for (id, bytes) in [(id, &mail), (plain, &message(2)), (big, &streamed)] {
        assert_eq!(&s.read_blob(&id).unwrap(), bytes);
        let mut streamed_back = Vec::new();
        s.open_blob(&id)
            .unwrap()
            .read_to_end(&mut streamed_back)
            .unwrap();
        assert_eq!(&streamed_back, bytes);
    }
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.recovery(), &Recovery::default());
    assert!(s.verify(true, &mut |_, _| {}).unwrap().is_clean());
    drop(s);
    // The index rebuilt from the packs knows coded blobs as blobs.
    let r = repair(dir.path(), &mut |_, _| {}).unwrap();
    assert_eq!(r.unique_messages, 3, "{r:?}");
    let s = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(s.read_blob(&big).unwrap(), streamed);
    assert!(s.verify(true, &mut |_, _| {}).unwrap().is_clean());
}

#[test]
fn a_flipped_byte_in_a_decoded_attachment_costs_that_message_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let mails: Vec<Vec<u8>> = (0..12)
        .map(|i| {
            if i % 2 == 0 {
                with_attachment(i, 40)
            } else {
                message(i)
            }
        })
        .collect();
    let ids: Vec<BlobId> = mails
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (id, _) = s.put_blob(m).unwrap();
            s.add_ref(seen(i as u32 + 1, id)).unwrap();
            id
        })
        .collect();
    s.commit().unwrap();
    let hit = s.blob_location(&ids[4]).unwrap();
    drop(s);
    // Well inside the attachment's bytes.
    flip(dir.path(), hit.pack, hit.offset + hit.length / 2);

    let s = Store::open_read_only(dir.path()).unwrap();
    let report = s.verify(true, &mut |_, _| {}).unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert_eq!(report.damaged[0].blob, ids[4]);
    assert!(s.read_blob(&ids[4]).is_err());
    let mut out = Vec::new();
    assert!(s.open_blob(&ids[4]).unwrap().read_to_end(&mut out).is_err());
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| *i != 4) {
        assert_eq!(&s.read_blob(id).unwrap(), &mails[i], "message {i}");
    }
}

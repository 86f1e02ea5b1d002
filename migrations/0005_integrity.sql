-- Store integrity (docs/reliability.md). Never edit this file once released.

-- Every copy of every dictionary. A dictionary is written at least twice
-- (and once more at the start of each pack that uses it), so that one
-- damaged copy does not make the messages compressed with it unreadable.
-- `dictionaries` keeps the first copy, as before.
CREATE TABLE dictionary_copies (
    id      INTEGER NOT NULL,
    pack    INTEGER NOT NULL,
    offset  INTEGER NOT NULL,
    length  INTEGER NOT NULL,
    PRIMARY KEY (pack, offset)
);
INSERT INTO dictionary_copies (id, pack, offset, length)
    SELECT id, pack, offset, length FROM dictionaries;

-- Stored messages whose bytes a read, `verify` or an open of the store found
-- damaged or missing. Working state, not in the packs: the next backup fetches
-- them again from any folder of the server that still has them, and a fresh
-- copy of the bytes (from a backup or an import) takes the place of the
-- damaged one. `repair` does not index damaged records at all.
CREATE TABLE damaged_blobs (
    blob_id   BLOB    PRIMARY KEY,
    found_at  INTEGER NOT NULL,
    what      TEXT    NOT NULL
) WITHOUT ROWID;

-- `messages` without the foreign key on `blob_id`: a message whose bytes were
-- lost to damage keeps its row (folder, UID, flags, date), so that it can be
-- named, counted and fetched again; with the key, one damaged blob record made
-- the whole rebuild of the index fail.
CREATE TABLE messages_v5 (
    id            INTEGER PRIMARY KEY,
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id),
    uid           INTEGER NOT NULL,
    blob_id       BLOB    NOT NULL,
    internaldate  INTEGER NOT NULL,
    date_offset   INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    flags         TEXT    NOT NULL,
    modseq        INTEGER,
    first_seen_at INTEGER NOT NULL,
    gone_at       INTEGER,
    archived_at   INTEGER,
    UNIQUE (mailbox_id, uid)
);
INSERT INTO messages_v5 SELECT id, mailbox_id, uid, blob_id, internaldate, date_offset, size,
    flags, modseq, first_seen_at, gone_at, archived_at FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v5 RENAME TO messages;
CREATE INDEX messages_by_blob ON messages(blob_id);

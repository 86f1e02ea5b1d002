-- Format 2 of the index: a blob is known by an integer key instead of its
-- 32-byte id everywhere but in one place, and a message row takes a third of
-- the room it took. Never edit this file once released.
--
-- A blob's key is where its record is: pack * 2^40 + offset. It does not
-- change when `repair` builds the index again from the packs, so the search
-- index (search.sqlite), which is keyed by it, outlives a repair. A message
-- whose bytes are not in the store (lost to damage) keeps a row here with a
-- negative key and length 0, so that it can be named, counted, and fetched
-- again: a fresh copy of the bytes takes that row and gets its own key.

CREATE TABLE blobs_v7 (
    key       INTEGER PRIMARY KEY,       -- pack * 2^40 + offset; < 0: not stored
    id        BLOB    NOT NULL UNIQUE,   -- BLAKE3 of the raw bytes, 32 bytes
    length    INTEGER NOT NULL,          -- whole record, header and trailer; 0: not stored
    raw_size  INTEGER NOT NULL,
    dict_id   INTEGER NOT NULL           -- 0: compressed without a dictionary
);
INSERT INTO blobs_v7 (key, id, length, raw_size, dict_id)
    SELECT pack * 1099511627776 + offset, id, length, raw_size, dict_id FROM blobs;
INSERT INTO blobs_v7 (key, id, length, raw_size, dict_id)
    SELECT -row_number() OVER (ORDER BY blob_id), blob_id, 0, max(size), 0
    FROM messages WHERE blob_id NOT IN (SELECT id FROM blobs) GROUP BY blob_id;

CREATE TABLE messages_v7 (
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id),
    uid           INTEGER NOT NULL,
    blob_key      INTEGER NOT NULL,      -- blobs.key
    internaldate  INTEGER NOT NULL,      -- unix seconds
    date_offset   INTEGER NOT NULL,      -- zone of the INTERNALDATE, minutes east of UTC
    size          INTEGER NOT NULL,
    flags         TEXT    NOT NULL,      -- space-separated, sorted
    modseq        INTEGER,
    gone_at       INTEGER,               -- noticed missing from the server; never deleted here
    archived_at   INTEGER,               -- removed from the server by `archive`
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
INSERT INTO messages_v7
    SELECT m.mailbox_id, m.uid, b.key, m.internaldate, m.date_offset, m.size, m.flags, m.modseq,
           m.gone_at, m.archived_at
    FROM messages m JOIN blobs_v7 b ON b.id = m.blob_id;

DROP TABLE messages;
DROP TABLE blobs;
ALTER TABLE blobs_v7 RENAME TO blobs;
ALTER TABLE messages_v7 RENAME TO messages;
CREATE INDEX messages_by_blob ON messages(blob_key);

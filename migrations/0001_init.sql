-- The index of a mailkeep store. Everything here can be rebuilt from the packs
-- (`mailkeep repair`): the packs are the truth, this is a cache that makes them
-- fast to query. Never edit this file once released; add a new migration.

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL DEFAULT 'imap',   -- 'imap' | 'import'
    created_at  INTEGER NOT NULL
);

-- One row per generation of a folder: (account, wire name, UIDVALIDITY).
CREATE TABLE mailboxes (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id),
    raw_name      TEXT    NOT NULL,      -- as on the wire (modified UTF-7)
    name          TEXT    NOT NULL,      -- decoded for people
    delimiter     TEXT,
    special_use   TEXT,
    uidvalidity   INTEGER NOT NULL,
    uidnext       INTEGER,               -- as of the last complete sync
    highestmodseq INTEGER,               -- as of the last complete sync
    server_count  INTEGER,               -- messages on the server at the last complete sync
    is_current    INTEGER NOT NULL DEFAULT 1,  -- the generation the server had last time we looked
    last_sync_at  INTEGER,
    gone_at       INTEGER,               -- folder no longer listed by the server
    UNIQUE (account_id, raw_name, uidvalidity)
);

CREATE TABLE blobs (
    id        BLOB    PRIMARY KEY,       -- BLAKE3 of the raw bytes, 32 bytes
    pack      INTEGER NOT NULL,
    offset    INTEGER NOT NULL,          -- start of the record in the pack
    length    INTEGER NOT NULL,          -- whole record, header and trailer included
    raw_size  INTEGER NOT NULL,
    dict_id   INTEGER NOT NULL           -- 0: compressed without a dictionary
) WITHOUT ROWID;

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id),
    uid           INTEGER NOT NULL,
    blob_id       BLOB    NOT NULL REFERENCES blobs(id),
    internaldate  INTEGER NOT NULL,      -- unix seconds
    date_offset   INTEGER NOT NULL,      -- zone of the INTERNALDATE, minutes east of UTC
    size          INTEGER NOT NULL,
    flags         TEXT    NOT NULL,      -- space-separated, sorted
    modseq        INTEGER,
    first_seen_at INTEGER NOT NULL,
    gone_at       INTEGER,               -- noticed missing from the server; never deleted here
    archived_at   INTEGER,               -- removed from the server by `archive`
    UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_by_blob ON messages(blob_id);

CREATE TABLE dictionaries (
    id         INTEGER PRIMARY KEY,
    pack       INTEGER NOT NULL,
    offset     INTEGER NOT NULL,
    length     INTEGER NOT NULL
);

-- How far the index has taken in each pack. Records past this point are
-- either indexed or truncated when the store is next opened for writing.
CREATE TABLE packs (
    no          INTEGER PRIMARY KEY,
    indexed_len INTEGER NOT NULL
);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    command     TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    ok          INTEGER,
    summary     TEXT
);

CREATE TABLE folder_errors (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    raw_name    TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    message     TEXT    NOT NULL,
    PRIMARY KEY (account_id, raw_name)
);

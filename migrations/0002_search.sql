-- The search index: one row per stored message (blob), not per folder
-- occurrence; folder, account and date filters join through `messages`.
-- Like the rest of the index it is a cache: `mailkeep reindex` empties and
-- refills it from the stored messages. Never edit this file once released.

CREATE TABLE search_docs (
    id             INTEGER PRIMARY KEY,      -- = rowid of the row in search_fts
    blob_id        BLOB    NOT NULL UNIQUE,  -- the message (BLAKE3 of its bytes)
    parsed         INTEGER NOT NULL,         -- 1: MIME-parsed; 0: raw header scan; -1: bytes unreadable
    header_date    INTEGER,                  -- the Date: header, unix seconds (NULL if absent or bad)
    message_id     TEXT,
    has_attachment INTEGER NOT NULL,
    indexed_at     INTEGER NOT NULL
);

-- Decoded text. The trigram tokenizer matches any substring of 3 or more
-- characters (Japanese and other text without spaces included), without
-- case. Shorter terms are matched with LIKE on these same stored columns.
CREATE VIRTUAL TABLE search_fts USING fts5(
    subject, sender, recipients, cc, body, attachments,
    tokenize = 'trigram'
);

-- The search index, `search.sqlite` beside `index.sqlite`: a cache of its own,
-- filled from the stored messages, never from the packs' records, so that
-- indexing can run beside a backup on its own connection. Keyed by the
-- blob's key in index.sqlite (where its record is), which a rebuild of the
-- index from the packs gives back unchanged. Never edit this file once
-- released.

-- One row per indexed message (its bytes; once however many folders list it).
CREATE TABLE docs (
    key      INTEGER PRIMARY KEY,   -- blobs.key in index.sqlite
    state    INTEGER NOT NULL,      -- 1: MIME-parsed; 0: raw header scan only; -1: unreadable
    date     INTEGER NOT NULL,      -- what search sorts and filters by: the earliest
                                    -- INTERNALDATE, else the Date: header, else 0
    attach   INTEGER NOT NULL,      -- has an attachment
    subject  TEXT    NOT NULL       -- as written (white space made single), for results
);
CREATE INDEX docs_by_date ON docs(date);

-- Folded text (search::fold), cut into words and CJK pairs (search::tokens).
-- Contentless: the text itself is not kept; a candidate is checked against
-- the message where a term needs it (phrases, longer CJK pieces).
-- The header fields keep which column a word is in (for `from:`, `subject:`
-- …); the body keeps only which messages a word is in.
CREATE VIRTUAL TABLE fts_head USING fts5(
    subject, sender, recipients, cc, attachments,
    tokenize = 'unicode61 remove_diacritics 0',
    content = '', columnsize = 0, detail = column
);
CREATE VIRTUAL TABLE fts_body USING fts5(
    body,
    tokenize = 'unicode61 remove_diacritics 0',
    content = '', columnsize = 0, detail = none
);

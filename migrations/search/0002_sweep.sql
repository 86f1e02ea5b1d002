-- How far the indexer's last complete pass got: every message stored under
-- a key up to `upto` was in the search index then, when `docs` held
-- `docs_count` rows. A search trusts it while `docs` still holds that many
-- rows and counts the messages not indexed past `upto` only; otherwise it
-- counts them all. Never edit this file once released.

CREATE TABLE sweep (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    upto       INTEGER NOT NULL,
    docs_count INTEGER NOT NULL
);

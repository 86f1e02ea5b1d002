-- Archive (free server space) and quota. Neither table comes from pack
-- records, and neither refers to row ids that `mailkeep repair` renumbers:
-- both name the account and folder, so a rebuilt index keeps them.

-- Messages that `archive` verified in the store and is about to expunge.
-- A row is committed before `UID STORE +FLAGS.SILENT (\Deleted)` and removed
-- only after the message's `archived` ref record is durable in a pack, so a
-- run killed at any step leaves rows that the next run resumes: UIDs still on
-- the server are verified and expunged again, absent ones recorded as archived.
CREATE TABLE archive_intents (
    account      TEXT    NOT NULL,
    raw_name     TEXT    NOT NULL,      -- as on the wire (modified UTF-7)
    uidvalidity  INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    blob_id      BLOB    NOT NULL,      -- the verified copy in the store
    size         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (account, raw_name, uidvalidity, uid)
);

-- The last quota (RFC 2087 GETQUOTAROOT) seen per account, root and resource,
-- as the server said it: STORAGE in KiB, MESSAGE as a count.
CREATE TABLE quota_seen (
    account      TEXT    NOT NULL,
    root         TEXT    NOT NULL,
    resource     TEXT    NOT NULL,
    usage        INTEGER NOT NULL,
    quota_limit  INTEGER NOT NULL,
    seen_at      INTEGER NOT NULL,
    PRIMARY KEY (account, root, resource)
);

-- The restore map keeps one row per copy: a folder that held the same bytes
-- under several UIDs gets each of them back, and each has its own target
-- UID. `copy` counts the copies of one message in one target folder from 0.
-- `flags` are the flags the target copy was given or last set to by
-- mailkeep (NULL: not known), so that a later run can carry the source's
-- flag changes over without undoing what was changed on the target.
-- Never edit this file once released.

CREATE TABLE restored_v9 (
    target_account  TEXT    NOT NULL,
    target_mailbox  TEXT    NOT NULL,      -- as on the wire (modified UTF-7)
    blob_id         BLOB    NOT NULL,      -- the stored message that was restored
    copy            INTEGER NOT NULL,      -- 0, 1, …: which copy of it in that folder
    uidvalidity     INTEGER NOT NULL,      -- of the target folder when appended
    uid             INTEGER NOT NULL,      -- APPENDUID, or the UID found there
    flags           TEXT,                  -- space-separated, sorted; NULL: not known
    restored_at     INTEGER NOT NULL,
    PRIMARY KEY (target_account, target_mailbox, blob_id, copy)
) WITHOUT ROWID;
INSERT INTO restored_v9
    (target_account, target_mailbox, blob_id, copy, uidvalidity, uid, flags, restored_at)
    SELECT target_account, target_mailbox, blob_id, 0, uidvalidity, uid, NULL, restored_at
    FROM restored;
DROP TABLE restored;
ALTER TABLE restored_v9 RENAME TO restored;

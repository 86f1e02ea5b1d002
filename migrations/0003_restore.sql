-- What `mailkeep restore` put where: (target account, target folder, message)
-- → the UID the target gave it (APPENDUID). A cache that lives only in the
-- index, not in the packs: losing it (`repair`, a new store) costs a re-check
-- on the target (Message-ID, size, INTERNALDATE), never a duplicate.
-- No foreign keys: `repair` empties `accounts` and must not trip over this.

CREATE TABLE restored (
    target_account  TEXT    NOT NULL,
    target_mailbox  TEXT    NOT NULL,      -- as on the wire (modified UTF-7)
    blob_id         BLOB    NOT NULL,      -- the stored message that was restored
    uidvalidity     INTEGER NOT NULL,      -- of the target folder when appended
    uid             INTEGER NOT NULL,      -- APPENDUID, or the UID found there
    restored_at     INTEGER NOT NULL,
    PRIMARY KEY (target_account, target_mailbox, blob_id)
) WITHOUT ROWID;

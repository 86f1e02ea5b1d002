-- How many messages of each folder generation are live (neither gone from
-- the server nor archived), kept by triggers as the messages change, so
-- that a backup can tell that a folder is as the server says without
-- counting its messages (at 100,000 messages that count was most of a
-- no-change backup). Built from the messages already stored; `repair`
-- builds it anew with the index. The index's writes to `messages` are
-- inserts (with an upsert) and updates, never deletes or replaces. A
-- later migration that builds `messages` anew (DROP TABLE and RENAME, as
-- 0005 and 0007 did) drops these triggers with it and must create them
-- again.
-- Never edit this file once released.

CREATE TABLE mailbox_live (
    mailbox_id INTEGER PRIMARY KEY,
    live INTEGER NOT NULL
);

INSERT INTO mailbox_live (mailbox_id, live)
SELECT mailbox_id, sum(gone_at IS NULL AND archived_at IS NULL)
FROM messages GROUP BY mailbox_id;

CREATE TRIGGER messages_live_insert AFTER INSERT ON messages
WHEN NEW.gone_at IS NULL AND NEW.archived_at IS NULL
BEGIN
    INSERT INTO mailbox_live (mailbox_id, live) VALUES (NEW.mailbox_id, 1)
    ON CONFLICT (mailbox_id) DO UPDATE SET live = live + 1;
END;

CREATE TRIGGER messages_live_update AFTER UPDATE OF mailbox_id, gone_at, archived_at ON messages
BEGIN
    UPDATE mailbox_live SET live = live - 1
    WHERE mailbox_id = OLD.mailbox_id AND OLD.gone_at IS NULL AND OLD.archived_at IS NULL;
    INSERT INTO mailbox_live (mailbox_id, live)
    SELECT NEW.mailbox_id, 1 WHERE NEW.gone_at IS NULL AND NEW.archived_at IS NULL
    ON CONFLICT (mailbox_id) DO UPDATE SET live = live + 1;
END;

CREATE TRIGGER messages_live_delete AFTER DELETE ON messages
WHEN OLD.gone_at IS NULL AND OLD.archived_at IS NULL
BEGIN
    UPDATE mailbox_live SET live = live - 1 WHERE mailbox_id = OLD.mailbox_id;
END;

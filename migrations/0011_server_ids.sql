-- The server's own id of a message (Gmail's X-GM-MSGID, RFC 8474 EMAILID,
-- Dovecot's X-GUID) and the stored message with those bytes, per account,
-- so that a message the server shows in several folders (Gmail's labels and
-- All Mail) is downloaded once. A cache outside the packs: a row is used
-- only while its message is stored, readable, and of the size the server
-- gives. Never edit this file once released.

CREATE TABLE server_ids (
    account TEXT NOT NULL,
    server_id TEXT NOT NULL,
    blob_id BLOB NOT NULL,
    PRIMARY KEY (account, server_id)
) WITHOUT ROWID;

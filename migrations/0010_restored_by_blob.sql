-- Where else a stored message was restored on a target account, so that a
-- message going into a second folder can be copied there on the server
-- (UID COPY; on Gmail, one more label on the same message) instead of being
-- uploaded again. Never edit this file once released.

CREATE INDEX restored_by_blob ON restored (target_account, blob_id);

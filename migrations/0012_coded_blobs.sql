-- From this version on, packs may hold coded blobs (`C` records: a
-- message whose base64 lines are kept as the bytes they encode; see
-- docs/design.md, "Coded blobs"). A release that does not know them would
-- take them for damage, so this version number is what keeps it out: a
-- release with fewer migrations refuses to open an index that is ahead of
-- it. The table only notes when this index began to allow them (a rebuilt
-- index notes its rebuild). Never edit this file once released.

CREATE TABLE store_features (
    name TEXT PRIMARY KEY,
    since INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO store_features (name, since) VALUES ('coded-blobs', CAST(strftime('%s', 'now') AS INTEGER));

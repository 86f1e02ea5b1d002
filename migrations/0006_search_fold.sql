-- The search index holds text folded for matching from now on (NFKC, then
-- Unicode case folding: `ｶﾀｶﾅ` is `カタカナ`, `ＡＢＣ` is `abc`), and decodes
-- more (CR-only line endings, UTF-7, wrong declared charsets). The subject
-- and addresses that search results print are kept as written in
-- search_docs, apart from the folded text.
--
-- What an older mailkeep indexed is neither folded nor complete, so the
-- index is emptied here: like all of it, it is a cache, and the next backup
-- or import (or `mailkeep reindex`) fills it again from the stored messages.
-- Never edit this file once released.

DROP TABLE search_fts;
DELETE FROM search_docs;

ALTER TABLE search_docs ADD COLUMN subject    TEXT NOT NULL DEFAULT '';
ALTER TABLE search_docs ADD COLUMN sender     TEXT NOT NULL DEFAULT '';
ALTER TABLE search_docs ADD COLUMN recipients TEXT NOT NULL DEFAULT '';

-- Folded text, as in 0002 (same columns, same trigram tokenizer). Short
-- terms are still matched with LIKE on these columns, folded the same way.
CREATE VIRTUAL TABLE search_fts USING fts5(
    subject, sender, recipients, cc, body, attachments,
    tokenize = 'trigram'
);

-- The search index has moved to its own file, search.sqlite (see
-- migrations/search/), and holds words and CJK pairs instead of trigrams:
-- a tenth of the room. The old tables go; the next backup or import (or
-- `mailkeep reindex`) fills the new index from the stored messages.
-- Never edit this file once released.

DROP TABLE search_fts;
DROP TABLE search_docs;

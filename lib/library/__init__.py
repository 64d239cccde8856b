"""library: what Folio keeps between runs, and the long work that fills it.

Owns the store (`store.py`: SQLite with WAL in the data folder; documents with their
original bytes and passages, conversations and their turns; schema migrations), the
full-text index and how searches and questions become queries (`fulltext.py`: words for
most languages, character bigrams for scripts without spaces), collections and the paged
document list (`catalog.py`, methods of Store), ranking documents by relevance to a
question (`ranking.py`: BM25 over passages, in memory or in the store), jobs (`jobs.py`:
long work stored as it goes, resumable after a crash, stoppable from any process), and
ingesting many files (`sources.py`: files, folders and .zip archives; `ingestion.py`: the
"ingest" job kind). Details and examples: docs/readme/library.md.

May import: the shared ground and lib.reading (documents and passages it stores). Never
lib.servers, lib.asking, lib.output or lib.cli: the kinds of jobs those stages own are
registered from there (`jobs.register_kind`).
"""

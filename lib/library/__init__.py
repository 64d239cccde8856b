"""library: what Folio keeps between runs.

Owns the store (`store.py`: SQLite with WAL and FTS5 in the data folder; documents with
their original bytes and passages, conversations and their turns).

May import: the shared ground and lib.reading (documents and passages it stores). Never
lib.servers, lib.asking, lib.output or lib.cli.
"""

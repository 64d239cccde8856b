"""A library written by the Folio before collections (schema 1: trigram index) opens in this
one: migrated in place, in one transaction, nothing lost, searchable with the new index."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from lib.library.store import SCHEMA_VERSION, Store, migrate

ROOT = Path(__file__).resolve().parent.parent
PASSAGES = [
    "The lessee shall pay the rent on the first day of every month. ",
    "本合同自双方签字之日起生效。承租人应当按月支付租金。",
    "The lessor keeps the roof in repair. ",
]


def old_library(data_dir: Path) -> str:
    """A schema-1 library as the previous Folio wrote it (its own DDL and INSERTs); returns the sha."""
    (data_dir / "files").mkdir(parents=True)
    sha = "ab" * 32
    (data_dir / "files" / sha).write_bytes(b"original bytes")
    conn = sqlite3.connect(data_dir / "folio.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        migrate(conn, target=1)
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO documents (sha256, name, format, pages, chars, tokens, counter, passages, warnings, page_labels, "
            "size, added_at, text) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (sha, "lease.pdf", "pdf", 3, len("".join(PASSAGES)), 60, "exact", 3, "[]", None, 14,
             "2025-01-02T03:04:05+00:00", "".join(PASSAGES)),
        )
        start = 0
        for index, text in enumerate(PASSAGES):
            conn.execute(
                'INSERT INTO passages (sha256, idx, id, page, page_end, page_label, heading, tokens, start, "end", text) '
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (sha, index, f"kzt-{index + 1}", index + 1, index + 1, None, "", 20, start, start + len(text), text),
            )
            start += len(text)
        conn.execute("INSERT INTO conversations (title, created_at, updated_at, documents, settings) VALUES (?,?,?,?,?)",
                     ("Rent", "2025-01-02", "2025-01-02", json.dumps([{"sha256": sha, "name": "lease.pdf"}]), "{}"))
        conn.execute("COMMIT")
        assert conn.execute("SELECT COUNT(*) FROM passages_fts WHERE passages_fts MATCH '\"lessee shall\"'").fetchone()[0] == 1
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        conn.close()
    return sha


def test_an_old_library_is_migrated_and_keeps_everything(tmp_path):
    data_dir = tmp_path / "library"
    sha = old_library(data_dir)

    store = Store(data_dir)

    conn = sqlite3.connect(store.db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {"collections", "collection_documents", "jobs", "job_items", "passages_search"} <= tables
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'passages_fts'").fetchone()[0]
        assert "unicode61" in ddl and "trigram" not in ddl
    finally:
        conn.close()
    document = store.get_document(sha)
    assert [p.text for p in document.passages] == PASSAGES and document.name == "lease.pdf"
    assert store.get_original(sha) == b"original bytes"
    assert [h.passage_id for h in store.search_passages("lessee")] == ["kzt-1"]
    assert [h.passage_id for h in store.search_passages("签字之日")] == ["kzt-2"]
    assert [h.passage_id for h in store.search_passages("租")] == ["kzt-2"]
    assert store.list_conversations()[0]["documents"][0]["available"]
    store.create_collection("Old matter")
    assert store.add_to_collection("Old matter", [sha]) == 1
    assert store.rank_documents("Who pays the rent?", [sha])[0].best == ("kzt-1",)
    assert store.check_integrity() == []
    Store(data_dir)  # a second open finds nothing to migrate
    assert [h.passage_id for h in Store(data_dir).search_passages("roof")] == ["kzt-3"]


def test_two_processes_opening_an_old_library_at_once_migrate_it_once(tmp_path):
    data_dir = tmp_path / "library"
    old_library(data_dir)
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from lib.library.store import Store; Store({str(data_dir)!r})"
    children = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for child in children:
        assert child.wait(timeout=120) == 0, child.stderr.read()
    store = Store(data_dir)
    assert [h.passage_id for h in store.search_passages("lessee")] == ["kzt-1"]
    assert store.check_integrity() == []

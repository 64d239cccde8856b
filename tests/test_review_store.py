"""Review tables in the store: the migration step, rows stored whole, reviewer fields apart."""

from __future__ import annotations

import sqlite3

import pytest

from lib.errors import StoreError
from lib.library import store as store_module
from lib.library.reviews import ReviewStore, documents_key
from lib.library.store import Store

COLUMN = {"key": "c1", "title": "Court", "question": "Which court?", "type": "text", "options": [], "fingerprint": "f1"}


def cell(status="answered", **more) -> dict:
    return {"column": "c1", "status": status, "fingerprint": "f1", "value": "High Court", **more}


def test_an_older_library_gains_the_review_tables(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    conn = sqlite3.connect(folder / "folio.db")
    for statement in store_module.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = Store(folder)
    table_id = ReviewStore(store).create("T", [("a" * 64, "a.pdf")], [COLUMN])
    assert ReviewStore(store).get(table_id)["columns"][0]["title"] == "Court"
    with sqlite3.connect(folder / "folio.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION


def test_a_row_is_stored_whole_or_not_at_all(tmp_path):
    reviews = ReviewStore(Store(tmp_path / "data"))
    table_id = reviews.create("T", [("a" * 64, "a.pdf")], [COLUMN])
    broken = {"column": "c1", "fingerprint": "f1"}  # no status: the insert fails
    with pytest.raises((KeyError, StoreError)):
        reviews.save_row(table_id, "a" * 64, [cell(), broken], {"document": "a.pdf"})
    assert reviews.cells(table_id) == {} and reviews.calls(table_id) == []
    reviews.save_row(table_id, "a" * 64, [cell()], {"document": "a.pdf"})
    assert len(reviews.cells(table_id)) == 1 and len(reviews.calls(table_id)) == 1


def test_reviewer_fields_survive_a_new_model_answer(tmp_path):
    reviews = ReviewStore(Store(tmp_path / "data"))
    sha = "b" * 64
    table_id = reviews.create("T", [(sha, "b.pdf")], [COLUMN])
    reviews.set_edit(table_id, sha, "c1", {"value": "Court of Appeal"})  # before the model answered
    reviews.set_checked(table_id, sha, "c1", True)
    reviews.save_row(table_id, sha, [cell()], None)
    stored = reviews.cells(table_id)[(sha, "c1")]
    assert stored.status == "answered" and stored.cell["value"] == "High Court"
    assert stored.edit == {"value": "Court of Appeal"} and stored.checked
    assert reviews.reset(table_id, [(sha, "c1")]) == 1
    stored = reviews.cells(table_id)[(sha, "c1")]
    assert stored.status == "pending" and stored.edit and stored.checked


def test_tables_are_found_by_their_set_of_documents(tmp_path):
    reviews = ReviewStore(Store(tmp_path / "data"))
    a, b = "a" * 64, "b" * 64
    first = reviews.create("T", [(a, "a"), (b, "b")], [COLUMN])
    assert reviews.find([b, a, a]) == first and reviews.find([a]) is None
    reviews.add_rows(first, [("c" * 64, "c")])
    assert reviews.find([a, b]) is None and reviews.find([a, b, "c" * 64]) == first
    assert documents_key([a, b]) == documents_key([b, a])


def test_deleting_a_table_or_a_column_removes_their_cells(tmp_path):
    store = Store(tmp_path / "data")
    reviews = ReviewStore(store)
    sha = "d" * 64
    table_id = reviews.create("T", [(sha, "d.pdf")], [COLUMN, dict(COLUMN, key="c2", title="Date", fingerprint="f2")])
    reviews.save_row(table_id, sha, [cell(), cell(column="c2", fingerprint="f2")], {"x": 1})
    reviews.remove_column(table_id, "c2")
    assert set(reviews.cells(table_id)) == {(sha, "c1")}
    assert reviews.delete(table_id) and reviews.list() == []
    assert store.check_integrity() == []

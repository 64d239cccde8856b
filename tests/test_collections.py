"""Collections and the paged library over 300 generated judgments: create, rename, delete,
add, remove; pages filtered by name, collection and format; counts and token totals."""

from __future__ import annotations

import sqlite3

import pytest

from library_fixtures import documents, topic_of
from lib.library.catalog import CollectionError
from lib.library.store import Store

COUNT = 300


@pytest.fixture
def library(library_300) -> Store:
    """300 generated judgments in a store; collections "Limitation" and "Chinese" (conftest.py)."""
    return library_300


def test_pages_cover_the_library_once_in_order(library):
    seen, offset = [], 0
    while True:
        page = library.list_documents_page(sort="name", offset=offset, limit=40)
        assert page.total == COUNT and page.limit == 40 and page.pages == 8
        if not page.documents:
            break
        seen += [d.name for d in page.documents]
        offset += 40
    assert seen == sorted((d.name for d, _ in documents(COUNT)), key=str.lower)
    newest = library.list_documents_page(limit=5).documents
    assert [d.added_at for d in newest] == sorted((d.added_at for d in newest), reverse=True)
    assert library.list_documents_page(sort="tokens", limit=1).documents[0].tokens == max(d.tokens for d, _ in documents(COUNT))
    assert library.list_documents_page(limit=5000).limit == 1000  # never the whole library at once


def test_filters_by_name_collection_and_format_with_totals(library):
    limitation = [d for d, _ in documents(COUNT) if topic_of(d.name) == "limitation"]
    by_name = library.list_documents_page(name=" LIMITATION ", limit=10)
    assert by_name.total == len(limitation) and by_name.tokens == sum(d.tokens for d in limitation)
    assert all("limitation" in d.name for d in by_name.documents) and len(by_name.documents) == 10

    chinese = [d for d, _ in documents(COUNT) if d.format == "markdown"]
    in_collection = library.list_documents_page(collection="chinese", limit=100)  # names are case-insensitive
    assert {d.sha256 for d in in_collection.documents} == {d.sha256 for d in chinese}
    assert library.list_documents_page(formats=["markdown"]).total == len(chinese)
    assert library.list_documents_page(collection="Chinese", formats=["text"]).total == 0
    assert library.list_documents_page(name="50%_").total == 0  # LIKE wildcards are literal
    assert library.document_formats() == {"text": COUNT - len(chinese), "markdown": len(chinese)}
    with pytest.raises(CollectionError, match="There is no collection 'Nope'. Collections: Chinese, Limitation"):
        library.list_documents_page(collection="Nope")


def test_collections_count_documents_and_tokens(library):
    collections = {c.name: c for c in library.list_collections()}
    limitation = [d for d, _ in documents(COUNT) if topic_of(d.name) == "limitation"]
    assert collections["Limitation"].documents == len(limitation)
    assert collections["Limitation"].tokens == sum(d.tokens for d in limitation)
    assert collections["Limitation"].size == sum(len(o) for d, o in documents(COUNT) if topic_of(d.name) == "limitation")
    shas = library.collection_shas("Limitation")
    assert sorted(shas) == sorted(d.sha256 for d in limitation)
    assert [s.sha256 for s in library.document_summaries(shas[:3])] == shas[:3]
    assert library.collections_of(limitation[0].sha256) == ["Limitation"]


def test_create_rename_add_remove_delete(tmp_path):
    store = Store(tmp_path / "data")
    pairs = documents(COUNT)[:4]
    for document, original in pairs:
        store.add_document(document, original)
    a, b, c, d = (p[0].sha256 for p in pairs)

    matter = store.create_collection("  Smith   v Jones ")
    assert matter.name == "Smith v Jones" and matter.documents == 0
    with pytest.raises(CollectionError, match="already exists"):
        store.create_collection("smith v jones")
    assert store.add_to_collection("Smith v Jones", [a, b, b]) == 2
    assert store.add_to_collection(matter.id, [b, c]) == 1  # by id too; b was in it already
    store.create_collection("Appeal")
    store.add_to_collection("Appeal", [a])  # a document can be in several collections
    assert store.collections_of(a) == ["Appeal", "Smith v Jones"]
    assert store.document_collections([a, c, d]) == {a: ["Appeal", "Smith v Jones"], c: ["Smith v Jones"], d: []}

    renamed = store.rename_collection("Smith v Jones", "Smith (trial)")
    assert (renamed.id, renamed.name, renamed.documents) == (matter.id, "Smith (trial)", 3)
    with pytest.raises(CollectionError, match="already exists"):
        store.rename_collection("Appeal", "SMITH (TRIAL)")
    assert store.remove_from_collection("Smith (trial)", [c, d]) == 1
    assert sorted(store.collection_shas("Smith (trial)")) == sorted([a, b])

    with pytest.raises(CollectionError, match="not in the library"):
        store.add_to_collection("Appeal", [d, "0" * 64])
    assert store.collection_shas("Appeal") == [a]  # all or nothing

    assert store.delete_collection("Smith (trial)")
    assert not store.delete_collection("Smith (trial)")
    assert store.list_documents_page().total == 4  # deleting a collection keeps its documents
    assert [c.name for c in store.list_collections()] == ["Appeal"]

    store.delete_document(a)  # deleting a document takes it out of every collection
    assert store.get_collection("Appeal").documents == 0
    assert store.check_integrity() == []


@pytest.mark.parametrize("name, message", [
    ("   ", "needs a name"),
    ("x" * 201, "under 200"),
    ("a\x00b", "control character"),
])
def test_collection_names_are_checked(tmp_path, name, message):
    with pytest.raises(CollectionError, match=message):
        Store(tmp_path / "data").create_collection(name)


def test_documents_are_resolved_by_sha_prefix_or_name(library):
    document = documents(COUNT)[0][0]
    assert library.resolve_documents([document.sha256[:10], document.name, document.name.upper()]) == [document.sha256] * 3
    with pytest.raises(CollectionError, match="No document"):
        library.resolve_documents(["no such judgment.pdf"])


def test_collections_table_cascades_in_sql(tmp_path):
    """The foreign keys hold in the database itself, not only in Folio's code."""
    store = Store(tmp_path / "data")
    document, original = documents(COUNT)[0]
    store.add_document(document, original)
    store.create_collection("M")
    store.add_to_collection("M", [document.sha256])
    conn = sqlite3.connect(store.db_path)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("DELETE FROM collections")
        conn.commit()
        assert conn.execute("SELECT COUNT(*) FROM collection_documents").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 1
    finally:
        conn.close()

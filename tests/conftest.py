"""Shared test setup: no test touches a real user's data folder or a real server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """Point Folio's data folder at a temp dir and clear FOLIO_*/OLLAMA_HOST settings."""
    import os

    for name in list(os.environ):
        if name.startswith("FOLIO_") or name == "OLLAMA_HOST":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FOLIO_DATA_DIR", str(tmp_path / "folio-data"))
    yield


@pytest.fixture(scope="session")
def library_300(tmp_path_factory):
    """300 generated judgments (tests/library_fixtures.py) in one store, built once per session;
    collections "Limitation" (that topic's documents) and "Chinese" (the Chinese ones). Read only."""
    from library_fixtures import documents, topic_of
    from lib.library.store import Store

    store = Store(tmp_path_factory.mktemp("library-300") / "data")
    for document, original in documents(300):
        store.add_document(document, original)
    store.create_collection("Limitation")
    store.add_to_collection("Limitation", [d.sha256 for d, _ in documents(300) if topic_of(d.name) == "limitation"])
    store.create_collection("Chinese")
    store.add_to_collection("Chinese", [d.sha256 for d, _ in documents(300) if d.format == "markdown"])
    return store

"""The library as the pages use it: documents in the store, cached full documents, the selection."""

from __future__ import annotations

import streamlit as st

from lib.errors import FolioError
from lib.output import presenting as view
from ui.page_images import clear_page_images
from ui.resources import settings, store, store_at
from ui.state import new_conversation


def list_documents() -> list[dict]:
    """The library, newest first, as plain dicts (DocumentSummary fields)."""
    from dataclasses import asdict

    try:
        return [asdict(d) | {"added": d.added_at[:16].replace("T", " ")} for d in store().list_documents()]
    except FolioError as exc:
        st.error(view.escape_markdown(exc.message))
        return []


def has_document(sha: str) -> bool:
    return store().has_document(sha)


def document_name(sha: str) -> str:
    for doc in list_documents():
        if doc["sha256"] == sha:
            return doc["name"]
    return sha[:12]


def ingest(data: bytes, name: str, *, password: str | None = None, progress=None):
    from lib.reading.ingest import ingest_bytes

    return ingest_bytes(data, name, password=password, settings=settings(), progress=progress)


def add_document(document, data: bytes, *, password: str | None = None) -> bool:
    """Store a document with its original; remember its password for page images."""
    _, is_new = store().add_document(document, data)
    if password:
        st.session_state.passwords[document.sha256] = password
    _load_document.clear()
    return is_new


def delete_document(sha: str) -> None:
    """Remove a document everywhere: store, caches, selection."""
    store().delete_document(sha)
    _load_document.clear()
    clear_page_images()
    st.session_state.selected = [s for s in st.session_state.selected if s != sha]
    st.session_state.passwords.pop(sha, None)


def passages_on_page(sha: str, page: int) -> list:
    return store().passages_on_page(sha, page)


def passages_slice(sha: str, offset: int, limit: int) -> list:
    return store().list_passages(sha, offset, limit)


def page_label(sha: str, page: int) -> str | None:
    labels = load_documents([sha])[0].page_labels if sha else None
    if labels and 0 < page <= len(labels):
        return labels[page - 1]
    return None


def search_passages(query: str, sha: str | None = None) -> list:
    try:
        return store().search_passages(query, sha)
    except FolioError as exc:
        st.error(view.escape_markdown(exc.message))
        return []


@st.cache_resource(max_entries=32, show_spinner=False)
def _load_document(data_dir: str, sha: str):
    return store_at(data_dir).get_document(sha)


def load_documents(shas: list[str]) -> list:
    """Full documents (passages included), cached per process: they never change."""
    data_dir = str(settings().data_dir)
    return [_load_document(data_dir, sha) for sha in shas]


def select_documents(shas: list[str]) -> None:
    """Choose documents for the Ask page (a new conversation)."""
    st.session_state.selected = list(shas)
    st.session_state.pop("ask-docs", None)
    new_conversation(keep_selection=True)

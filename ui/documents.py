"""The library as the pages use it: documents in the store, cached full documents, the selection.

Lists come a page at a time (ui/document_list.py); this module never loads the whole library.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import streamlit as st

from lib.errors import FolioError
from lib.output import presenting as view
from ui.page_images import clear_page_images
from ui.resources import settings, store, store_at
from ui.state import new_conversation, set_selection

CACHE_TOKENS = 1_500_000
"""Full documents kept in memory, in tokens (about 6 MB of text): several whole contexts' worth,
so a selection that fits one call and the ones before it load once. Bounded by tokens rather than
a count, so 400 short judgments and 3 long books cost the same."""


def has_document(sha: str) -> bool:
    return store().has_document(sha)


def document_name(sha: str) -> str:
    try:
        found = store().document_summaries([sha])
    except FolioError:
        found = []
    return found[0].name if found else sha[:12]


def ingest(data: bytes, name: str, *, password: str | None = None, progress=None):
    from lib.reading.ingest import ingest_bytes

    return ingest_bytes(data, name, password=password, settings=settings(), progress=progress)


def add_document(document, data: bytes, *, password: str | None = None) -> bool:
    """Store a document with its original; remember its password for page images."""
    _, is_new = store().add_document(document, data)
    if password:
        st.session_state.passwords[document.sha256] = password
    return is_new


def delete_document(sha: str) -> None:
    """Remove a document everywhere: store, caches, selection, ticks."""
    store().delete_document(sha)
    _CACHE.drop(sha)
    clear_page_images()
    st.session_state.selected = [s for s in st.session_state.selected if s != sha]
    st.session_state.ticked = [s for s in st.session_state.get("ticked", []) if s != sha]
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


class _DocumentCache:
    """Full documents by (data folder, SHA-256), least recently used first out, bounded in tokens.

    A document never changes for its SHA-256, so an entry is never stale; shared by every session.
    """

    def __init__(self, budget: int):
        self.budget = budget
        self.entries: OrderedDict = OrderedDict()
        self.tokens = 0
        self.lock = threading.Lock()

    def get_many(self, data_dir: str, shas: list[str]) -> list:
        with self.lock:
            found = {sha: self.entries.get((data_dir, sha)) for sha in shas}
            for sha in shas:
                if found[sha] is not None:
                    self.entries.move_to_end((data_dir, sha))
        missing = [sha for sha in dict.fromkeys(shas) if found[sha] is None]
        if missing:
            loaded = store_at(data_dir).get_documents(missing)  # one snapshot; NotInStore for a deleted one
            found.update({document.sha256: document for document in loaded})
            self._keep(data_dir, loaded, pinned=set(shas))
        return [found[sha] for sha in shas]

    def _keep(self, data_dir: str, documents: list, pinned: set[str]) -> None:
        with self.lock:
            for document in documents:
                key = (data_dir, document.sha256)
                if key not in self.entries:
                    self.entries[key] = document
                    self.tokens += document.tokens
            for key in list(self.entries):
                if self.tokens <= self.budget:
                    break
                if key[1] not in pinned:  # what the page needs now stays, whatever its size
                    self.tokens -= self.entries.pop(key).tokens

    def drop(self, sha: str) -> None:
        with self.lock:
            for key in [k for k in self.entries if k[1] == sha]:
                self.tokens -= self.entries.pop(key).tokens


_CACHE = _DocumentCache(CACHE_TOKENS)


def load_documents(shas: list[str]) -> list:
    """Full documents (passages included), cached per process: they never change."""
    return _CACHE.get_many(str(settings().data_dir), list(shas))


def select_documents(shas: list[str], *, origin: int | None = None) -> None:
    """Choose documents for the Ask page (always a new conversation: an explicit "Ask about")."""
    set_selection(shas, origin=origin)
    new_conversation(keep_selection=True)

"""One document on the Library page: its facts, collections and actions, read page by page, searched.

Also the search over the whole library. Passages are shown exactly as the model sees them,
with their IDs; nothing here loads more than one page or screen of passages at a time.
"""

from __future__ import annotations

import streamlit as st

import ui.collections
import ui.documents
from lib.output import presenting as view

PASSAGES_PER_SCREEN = 12
SEARCH_LIMIT = 50  # lib.library.store.search_passages' default limit


def document_panel(doc: dict, collections: list) -> None:
    """One document: its facts, warnings, collections, actions, and the passage browser."""
    sha = doc["sha256"]
    facts = view.join_nonempty(
        [
            doc["format"].upper(),
            f"{doc['pages']} pages" if doc["pages"] else "",
            f"{doc['tokens']:,} tokens" + ("" if doc["counter"] == "exact" else " (estimate)"),
            view.count_noun(doc["passages"], "passage"),
            f"sha256 {sha[:12]}…",
        ]
    )
    st.caption(facts)
    for warning in doc["warnings"]:
        st.warning(view.escape_markdown(warning), icon=":material/warning:")
    ui.collections.document_collections(sha, collections)
    row = st.container(horizontal=True)
    if row.button("Ask about it", key=f"ask-{sha}", icon=":material/forum:", type="primary"):
        ui.documents.select_documents([sha])
        st.switch_page("pages/ask.py")
    if row.button("Delete", key=f"del-{sha}", icon=":material/delete:"):
        st.session_state[f"confirm-{sha}"] = True
    if st.session_state.get(f"confirm-{sha}"):
        _confirm_delete(doc)
    browse, search = st.tabs(["Read", "Search"])
    with browse:
        passage_browser(sha, doc)
    with search:
        passage_search(sha)


def _confirm_delete(doc: dict) -> None:
    sha = doc["sha256"]
    st.warning(
        f"Delete **{view.escape_markdown(doc['name'])}** with its passages and original file? "
        "Saved answers keep their text."
    )
    row = st.container(horizontal=True)
    if row.button("Delete for good", key=f"really-{sha}", type="primary"):
        ui.documents.delete_document(sha)
        st.session_state.pop(f"confirm-{sha}", None)
        st.toast(f"Deleted {view.escape_markdown(doc['name'])}")
        st.rerun()
    if row.button("Keep it", key=f"keep-{sha}"):
        st.session_state.pop(f"confirm-{sha}", None)
        st.rerun()


def passage_browser(sha: str, doc: dict) -> None:
    """Page by page for paged formats; screens of passages otherwise."""
    if doc["pages"]:
        page = st.number_input("Page", min_value=1, max_value=int(doc["pages"]), value=1, key=f"page-{sha}")
        passages = ui.documents.passages_on_page(sha, int(page))
        label = ui.documents.page_label(sha, int(page))
        st.caption(f"Page {page} of {doc['pages']}" + (f" (printed {view.escape_markdown(label)})" if label and label != str(page) else ""))
        if not passages:
            st.info("No text on this page.")
    else:
        screens = max(1, -(-doc["passages"] // PASSAGES_PER_SCREEN))
        screen = st.number_input("Part", min_value=1, max_value=screens, value=1, key=f"screen-{sha}")
        passages = ui.documents.passages_slice(sha, (int(screen) - 1) * PASSAGES_PER_SCREEN, PASSAGES_PER_SCREEN)
        st.caption(f"Part {screen} of {screens}")
    for passage in passages:
        passage_card(passage)


def passage_card(passage, highlight: tuple[int, int] | None = None, document_name: str = "") -> None:
    """A passage: ID, place and heading above, its exact text below."""
    where = view.join_nonempty(
        [
            view.inline_code(passage.id),
            view.escape_markdown(document_name),
            passage.pages_text,
            view.escape_markdown(passage.heading) if passage.heading else "",
            f"{passage.tokens} tokens",
        ]
    )
    with st.container(border=True):
        st.caption(where)
        if highlight:
            st.markdown(view.highlight(passage.text, *highlight))
        else:
            st.markdown(view.escape_markdown(passage.text))


def passage_search(sha: str | None) -> None:
    """Full-text search (SQLite FTS5 words, character pairs for Chinese and Japanese)."""
    query = st.text_input(
        "Search this document" if sha else "Search every document",
        key=f"q-{sha or 'all'}",
        placeholder="Words or a phrase, e.g. “duty of care” or 合同",
        type="search",
    )
    if not query.strip():
        return
    hits = ui.documents.search_passages(query, sha)
    if len(hits) >= SEARCH_LIMIT:  # the store returns at most this many: there may be more
        st.caption(f"The first {len(hits)} matching passages are shown; add words to narrow the search.")
    else:
        st.caption(f"{len(hits)} passage(s) found")
    for hit in hits:
        hit_card(hit, with_document=sha is None)


def hit_card(hit, with_document: bool) -> None:
    """A search hit: where it is, and a snippet with the matched words highlighted."""
    pages = ""
    if hit.page:
        first = view.escape_markdown(hit.page_label or str(hit.page))
        pages = f"pp. {first}-{hit.page_end}" if hit.page_end and hit.page_end != hit.page else f"p. {first}"
    where = view.join_nonempty(
        [
            view.inline_code(hit.passage_id),
            view.escape_markdown(hit.document) if with_document else "",
            pages,
            view.escape_markdown(hit.heading) if hit.heading else "",
        ]
    )
    with st.container(border=True):
        st.caption(where)
        st.markdown(view.highlight_spans(hit.snippet, hit.spans))

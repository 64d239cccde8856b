"""Choosing what the Ask page reads, at any library size.

A whole collection in one step (one choice, however many documents it holds), or documents
picked one by one from the filtered, paged list (a "Read" tick per row), and a summary of the
choice that stays one line long whether it holds 2 documents or 2,000. The choice lives in
session state (`selected`, in the order chosen; ui.state.set_selection): changing it starts
a new conversation. A choice that cannot fit one call whatever happens (its documents alone
hold more tokens than the context) is said at once, without loading or rendering them.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

import ui.collections
import ui.server
from lib.errors import FolioError
from lib.output import presenting as view
from ui.document_list import (
    COMPACT, all_matching, fetch_page, filter_controls, library_formats, page_number, pager, tick_table, ticked_after,
    totals_caption,
)
from ui.resources import store
from ui.state import chat, set_selection

READ = "Read"
NAMED = 5
"""A choice of up to this many documents is named in full in the summary; a larger one by its count."""


def chosen_summaries() -> list:
    """The chosen documents still in the library (one deleted in another tab leaves the choice)."""
    selected = list(st.session_state.selected)
    if not selected:
        return []
    try:
        rows = store().document_summaries(selected)
    except FolioError as exc:
        st.error(view.escape_markdown(exc.message), icon=":material/error:")
        return []
    if len(rows) != len(selected):
        st.session_state.selected = [row.sha256 for row in rows]  # the conversation stays: its answers are kept
        st.session_state.selection_version += 1
    return rows


def choose_documents() -> list[str]:
    """The whole-collection choice, the summary, and the one-by-one picker; returns the chosen SHA-256."""
    rows = chosen_summaries()
    collections = ui.collections.list_collections()
    ui.collections.flash_notice()
    whole_collection(collections)
    summary(rows, collections)
    with st.expander("Choose documents one by one", expanded=not rows, icon=":material/checklist:"):
        picker(collections, library_formats())
        if rows:
            save_as_collection()
    deleted_documents_notice()
    return list(st.session_state.selected)


# --- a whole collection -------------------------------------------------------------------


def whole_collection(collections: list) -> None:
    """One choice reads every document of a collection."""
    if not collections:
        st.caption("Group documents into collections on the **Library** page to choose a whole matter here in one step.")
        return
    by_id = {c.id: c for c in collections}
    origin = st.session_state.selection_origin
    key = f"ask-collection-{st.session_state.selection_version}"
    st.selectbox(
        "Read a whole collection",
        list(by_id),
        index=list(by_id).index(origin) if origin in by_id else None,
        key=key,
        format_func=lambda cid: ui.collections.describe(by_id[cid]),
        placeholder="Choose a collection…",
        on_change=_collection_chosen,
        args=(key,),
    )


def _collection_chosen(key: str) -> None:
    collection_id = st.session_state.get(key)
    if collection_id is None:
        return
    try:
        set_selection(store().collection_shas(collection_id), origin=collection_id)
    except FolioError as exc:  # deleted in another tab a moment ago
        st.session_state[ui.collections.FLASH] = ("error", exc.message)


# --- the summary --------------------------------------------------------------------------


def summary(rows: list, collections: list) -> None:
    """'3 documents, 45,210 tokens: a.pdf, b.docx, c.html' or '300 documents of the collection X, 1.5M tokens'."""
    if not rows:
        return
    tokens = sum(row.tokens for row in rows)
    head = f"**{view.count_noun(len(rows), 'document')} chosen**, {tokens:,} tokens"
    origin = next((c for c in collections if c.id == st.session_state.selection_origin), None)
    if origin is not None:
        head += f": the collection **{view.escape_markdown(origin.name)}**"
        if origin.documents != len(rows):
            head += f" (it has {origin.documents:,} documents now: choose it again to read them all)"
    row = st.container(horizontal=True, vertical_alignment="center")
    row.markdown(head)
    if row.button("Clear", key="ask-clear", icon=":material/clear_all:", type="tertiary",
                  help="Choose nothing (starts a new conversation)"):
        set_selection([])
        st.rerun()
    if len(rows) <= NAMED:
        st.caption(view.join_nonempty(f"{view.escape_markdown(r.name)} ({r.tokens:,})" for r in rows))
    else:
        largest = sorted(rows, key=lambda r: r.tokens, reverse=True)[:3]
        st.caption("Largest: " + view.join_nonempty(f"{view.escape_markdown(r.name)} ({r.tokens:,})" for r in largest)
                   + f" and {len(rows) - 3:,} more: see them with “Only the chosen ones” below.")


def over_the_context(selected: list[str]) -> tuple[int, int] | None:
    """(documents, tokens) when more than NAMED chosen documents hold more tokens than the whole
    context: one call cannot read them, whatever the settings (the Ask page then offers a plan).

    Nothing is loaded or rendered for that: their stored counts are exact, and rendering only
    adds to them. A few documents get the exact budget instead (which names the one too large).
    """
    if len(selected) <= NAMED:
        return None
    try:
        rows = store().document_summaries(selected)
    except FolioError:
        return None  # the budget says what is wrong
    tokens = sum(row.tokens for row in rows)
    return (len(rows), tokens) if tokens > ui.server.real_context() else None


# --- one by one ---------------------------------------------------------------------------


def picker(collections: list, formats: dict[str, int]) -> None:
    """The filtered, paged library with a Read tick per document (`formats`: format -> count)."""
    selected = list(st.session_state.selected)
    only = st.toggle("Only the chosen ones", key="ask-only-chosen", disabled=not selected,
                     help="List the chosen documents, to review them or untick some")
    f = filter_controls("ask", collections, formats)
    if only and selected:
        f = replace(f, within=tuple(selected))
    page_key = f"ask-page-{f.signature()}"
    result = fetch_page(f, page_number(page_key))
    page = result.offset // result.limit + 1
    st.caption(totals_caption(result, f, sum(formats.values())))
    if result.documents:
        changes = tick_table(result.documents, set(selected), tick=READ,
                             key=f"ask-table-{f.signature()}-{page}-{st.session_state.selection_version}",
                             tick_help="Tick to read this document; untick to leave it out", columns=COMPACT)
        if _apply(changes):
            st.rerun()
    pager(page_key, result)
    bulk(f, result.total, selected)


def _apply(changes: list[tuple[str, bool]]) -> bool:
    chosen = ticked_after(st.session_state.selected, changes)
    return set_selection(chosen) if chosen != st.session_state.selected else False


def bulk(f, matching: int, selected: list[str]) -> None:
    """Choose, or leave out, every document the filters match (all 40 whose name has "lease")."""
    if not f.narrowed or not matching:
        return
    row = st.container(horizontal=True)
    if f.within is None and row.button(f"Read all {matching:,} in the list", key="ask-all", icon=":material/done_all:"):
        already = set(selected)
        set_selection(selected + [sha for sha in all_matching(f) if sha not in already])
        st.rerun()
    if selected and row.button(f"Leave out all {matching:,} in the list", key="ask-none", icon=":material/remove_done:"):
        out = set(all_matching(f))
        set_selection([sha for sha in selected if sha not in out])
        st.rerun()


def save_as_collection() -> None:
    """Keep a hand-made choice as a collection, to choose it again in one step."""
    with st.form("ask-save-collection", border=False, clear_on_submit=True):
        row = st.columns([4, 1], vertical_alignment="bottom")
        name = row[0].text_input("Save the chosen documents as a collection", key="ask-save-name",
                                 placeholder="A name, e.g. Smith v Jones: the key judgments")
        submitted = row[1].form_submit_button("Save", icon=":material/save:")
    if not submitted:
        return
    try:
        collection = store().create_collection(name)
        store().add_to_collection(collection.id, st.session_state.selected)
    except FolioError as exc:
        st.session_state[ui.collections.FLASH] = ("error", exc.message)
    else:
        st.session_state.selection_origin = collection.id
        st.session_state.selection_version += 1
        ui.collections.notice(f"Saved the {view.count_noun(len(st.session_state.selected), 'chosen document')} "
                              f"as the collection {collection.name}.")
    st.rerun()


# --- documents of this conversation that are gone -----------------------------------------


def deleted_documents_notice() -> None:
    """Documents this conversation read that are no longer in the library (deleted in another tab)."""
    named: dict[str, str] = {}
    for turn in chat()["turns"]:
        named.update(zip(turn.get("shas", []), turn.get("documents", [])))
    if not named:
        return
    try:
        present = {row.sha256 for row in store().document_summaries(list(named))}
    except FolioError:
        return
    gone = [name for sha, name in named.items() if sha not in present]
    if gone:
        st.warning(
            "No longer in the library (deleted, perhaps in another tab): "
            + ", ".join(f"“{view.escape_markdown(name)}”" for name in gone)
            + ". The answers below are kept; add the document again to ask about it.",
            icon=":material/delete:",
        )

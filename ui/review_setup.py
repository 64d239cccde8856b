"""A new review table: its rows (a whole collection in one step, or documents ticked a page at a
time: never a widget listing every document), its columns, then Create and run."""

from __future__ import annotations

import streamlit as st

import ui.collections
from lib.asking.review.table import create_table
from lib.errors import FolioError
from lib.output import presenting as view
from ui.document_list import COMPACT, all_matching, fetch_page, filter_controls, library_formats, page_number, pager, tick_table, totals_caption
from ui.resources import store
from ui.review_columns import columns_editor
from ui.review_run import flash, start

TICK = "Row"
NAMED = 5


def new_table() -> None:
    st.subheader("A new table")
    title = st.text_input("Title", key="review-new-title", placeholder="Smith v Jones: the judgments")
    st.markdown("**Rows: one per document**")
    shas = choose_rows()
    st.markdown("**Columns: one per question**")
    columns = columns_editor()
    ready = bool(shas) and bool(columns)
    if not shas:
        st.caption("Choose the documents first.")
    if st.button("Create the table and run it", key="review-create", type="primary", icon=":material/play_arrow:",
                 disabled=not ready, help="Each document is read whole in one call that answers every column"):
        _create(title, shas, columns)


def _create(title: str, shas: list[str], columns) -> None:
    try:
        rows = store().document_summaries(shas)
        name = title.strip() or (rows[0].name if len(rows) == 1 else f"{rows[0].name} and {len(rows) - 1} more")
        table = create_table(store(), name, [(r.sha256, r.name) for r in rows], columns)
    except FolioError as exc:
        flash("error", exc.message)
        st.rerun()
        return
    st.session_state["review-table"] = table.id
    st.session_state["review-ticked"] = []
    start(table.id)
    st.rerun()


def choose_rows() -> list[str]:
    """The documents of the table: a collection, or those ticked in the paged list."""
    collections = ui.collections.list_collections()
    how = st.radio("Rows from", ["collection", "documents"], key="review-rows-from", horizontal=True,
                   format_func={"collection": "A collection", "documents": "Documents I tick"}.get,
                   index=0 if collections else 1, label_visibility="collapsed")
    if how == "collection":
        if not collections:
            st.caption("No collections yet: make one on the **Library** page, or tick documents instead.")
            return []
        by_id = {c.id: c for c in collections}
        chosen = st.selectbox("Collection", list(by_id), index=None, key="review-collection",
                              format_func=lambda cid: ui.collections.describe(by_id[cid]),
                              placeholder="Choose a collection…")
        if chosen is None:
            return []
        try:
            return store().collection_shas(chosen)
        except FolioError as exc:
            st.error(view.escape_markdown(exc.message), icon=":material/error:")
            return []
    return _ticked_rows(collections)


def _ticked_rows(collections: list) -> list[str]:
    formats = library_formats()
    ticked = list(st.session_state["review-ticked"])
    f = filter_controls("review", collections, formats)
    page_key = f"review-docs-page-{f.signature()}"
    result = fetch_page(f, page_number(page_key))
    st.caption(totals_caption(result, f, sum(formats.values())))
    if result.documents:
        page = result.offset // result.limit + 1
        changes = tick_table(result.documents, set(ticked), tick=TICK, columns=COMPACT,
                             key=f"review-docs-{f.signature()}-{page}-{len(ticked)}",
                             tick_help="Tick to make this document a row of the table")
        if changes:
            for sha, on in changes:
                if on and sha not in ticked:
                    ticked.append(sha)
                elif not on and sha in ticked:
                    ticked.remove(sha)
            st.session_state["review-ticked"] = ticked
            st.rerun()
    pager(page_key, result)
    row = st.container(horizontal=True)
    if f.narrowed and result.total and row.button(f"Tick all {result.total:,} in the list", key="review-tick-all",
                                                  icon=":material/done_all:"):
        st.session_state["review-ticked"] = ticked + [s for s in all_matching(f) if s not in set(ticked)]
        st.rerun()
    if ticked and row.button("Untick all", key="review-untick", icon=":material/remove_done:"):
        st.session_state["review-ticked"] = []
        st.rerun()
    if ticked:
        st.caption(f"{view.count_noun(len(ticked), 'document')} ticked.")
    return ticked

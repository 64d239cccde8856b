"""The Review page's open table: which table, its run, its rows a page at a time with filters,
a cell opened, columns added, the table asked, and its exports.

The table shown is read from the store and its views built once per version of the table
(lib/output/review_view.py, pure), kept for the process: a page of a 2,000-row table renders
in well under a second, and a running table refreshes every second (a fragment) as its rows
arrive. Opening a cell (a click in the grid, or the pickers under it) shows it below the grid.
"""

from __future__ import annotations

import gc
import hashlib

import pandas as pd
import streamlit as st

from lib.asking.review.table import load_table
from lib.errors import FolioError
from lib.library.reviews import ReviewStore
from lib.output import presenting as view
from lib.output import review_view
from ui.document_list import page_number
from ui.resources import settings, store, store_at
from ui.review_ask import SHOWN
from ui.review_cell import cell_panel
from ui.review_run import POLL_S, current_job, run_panel

NEW = 0
"""The table chooser's "new table" option."""
PAGE_ROWS = 50
"""Rows of one page of the grid."""
FLAG_CSS = {"review": "background-color: #fff2cc", "problem": "background-color: #f8cbad", "": ""}
ANY = None
ROWS_PER_POLL = 500
"""A running table of more rows than this refreshes less often than every POLL_S (2,000 rows: every 4 s)."""


# --- which table -------------------------------------------------------------------------


def choose_table() -> int | None:
    """The tables of this library, newest first, and "A new table"; the id chosen (None: new)."""
    try:
        tables = ReviewStore(store()).list()
    except FolioError as exc:
        st.error(view.message_markdown(exc.message), icon=":material/error:")
        return None
    by_id = {t["id"]: t for t in tables}
    if "review-opened" not in st.session_state:  # a new session opens the table changed last
        st.session_state["review-opened"] = True
        if st.session_state["review-table"] is None and tables:
            st.session_state["review-table"] = tables[0]["id"]
    current = st.session_state["review-table"]
    if current not in by_id:
        current = st.session_state["review-table"] = None
    st.session_state["review-choose"] = current or NEW
    st.selectbox("Table", [NEW, *by_id], key="review-choose", on_change=_chosen,
                 format_func=lambda tid: "A new table…" if tid == NEW else _describe(by_id[tid]))
    return current


def _chosen() -> None:
    st.session_state["review-table"] = st.session_state["review-choose"] or None
    st.session_state["review-cell"] = None


def _describe(table: dict) -> str:
    return (f"{table['title']} · {view.count_noun(table['rows'], 'row')} × "
            f"{view.count_noun(table['columns'], 'column')} · {table['updated_at'][:16].replace('T', ' ')}")


# --- the table as stored, once per version -------------------------------------------------


@st.cache_resource(max_entries=4, show_spinner=False)
def _loaded(data_dir: str, table_id: int, version: str):
    """(ReviewTable, [RowView]) of one version of a table; shared by every session (read only).

    The garbage collector is paused while the table's objects are made (2,000 rows x 6 columns
    make some 100,000): its full collections would otherwise scan everything the app holds, several
    times over, and double the time (0.5 s -> 0.25 s on the project's machine)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        table = load_table(store_at(data_dir), table_id)
        return table, review_view.table_rows(table)
    finally:
        if paused:
            gc.enable()


def loaded(table_id: int):
    """The table and its row views as stored now; (None, []) after an error, said."""
    try:
        version = ReviewStore(store()).version(table_id)
        return _loaded(str(settings().data_dir), table_id, version) + (version,)
    except FolioError as exc:
        st.error(view.message_markdown(exc.message), icon=":material/error:")
        return None, [], ""


# --- the live part: run, filters, grid, opened cell ----------------------------------------


def live_table(table_id: int, rows: int) -> None:
    """The run, the grid and the opened cell; refreshed while the table runs: every POLL_S seconds,
    less often for a large table (each refresh reads it: about 0.15 ms a cell)."""
    info = current_job(table_id)
    running = info is not None and info.state == "running"
    every = max(POLL_S, rows / ROWS_PER_POLL)
    st.fragment(_live_body, run_every=every if running else None)(table_id)


def _live_body(table_id: int) -> None:
    info = current_job(table_id)
    running = info is not None and info.state == "running"
    was = st.session_state.get("review-was-running")
    st.session_state["review-was-running"] = (table_id, running)
    if was == (table_id, True) and not running:
        st.rerun(scope="app")  # the run ended: counts, exports and the jobs list catch up
    table, rows, _version = loaded(table_id)
    if table is None:
        return
    counts(table, rows)
    run_panel(table_id, rows, info, len(table.work()))
    shown = filters(table, rows)
    page = grid(table, shown, len(rows))
    opened(table, rows, page)


def filters(table, rows: list) -> list:
    """Rows by a column's value, by 'needs review', by status, by the document's name."""
    keys = [c.key for c in table.columns]
    titles = {c.key: c.title for c in table.columns}
    top = st.columns([3, 3, 2.2, 2.3, 2.5], vertical_alignment="bottom")
    column = top[0].selectbox("Filter by column", [ANY, *keys], key=f"review-filter-column-{table.id}",
                              format_func=lambda k: "Any column" if k is ANY else titles[k])
    value = None
    if column is not ANY:
        value = top[1].selectbox("Value", [ANY, *review_view.column_choices(rows, column)],
                                 key=f"review-filter-value-{table.id}-{column}",
                                 format_func=lambda v: "Any value" if v is ANY else v)
    status = top[2].selectbox("Status", [ANY, *review_view.STATUS_LABELS], key=f"review-filter-status-{table.id}",
                              format_func=lambda s: "Any status" if s is ANY else review_view.STATUS_LABELS[s])
    needs = top[3].toggle("Needs review", key=f"review-filter-review-{table.id}",
                          help="Only rows with a cell a reviewer must look at (no verified citation, a value not "
                               "read in its type, a failed cell), not yet checked")
    search = top[4].text_input("Document name", key=f"review-filter-name-{table.id}", placeholder="Part of a name")
    shown = review_view.filter_rows(rows, column=column, value=value, needs_review=needs, status=status,
                                    search=search or "")
    narrowed = column is not ANY and value is not ANY or needs or status is not ANY or bool((search or "").strip())
    st.session_state[SHOWN] = (table.id, [r.sha256 for r in shown]) if narrowed else None
    return shown


def _signature(*parts) -> str:
    return hashlib.sha1(repr(parts).encode("utf-8")).hexdigest()[:10]


def grid(table, shown: list, total: int):
    """One page of the rows as a grid (a cell is opened by clicking it), with the pager."""
    sig = _signature(table.id, len(shown), tuple(r.sha256 for r in shown[:3]))
    page_key = f"review-page-{table.id}-{sig}"
    page = review_view.page_of(shown, page_number(page_key), PAGE_ROWS)
    if not page.rows:
        st.info("No row matches these filters." if total else "This table has no rows.", icon=":material/filter_alt_off:")
        return page
    keys = [c.key for c in table.columns]
    frame = pd.DataFrame(review_view.grid_records(page.rows, table.columns), columns=["document", *keys])
    flags = pd.DataFrame(review_view.grid_flags(page.rows, table.columns), columns=["document", *keys])
    styled = frame.style.apply(lambda _f: flags.map(FLAG_CSS.get), axis=None)
    config = {"document": st.column_config.TextColumn("Document", pinned=True, width="medium")}
    config.update({c.key: st.column_config.TextColumn(c.title, help=c.question, width="medium") for c in table.columns})
    grid_key = f"review-grid-{table.id}-{sig}-{page.number}"
    event = st.dataframe(styled, key=grid_key, on_select="rerun", selection_mode="single-cell", hide_index=True,
                         column_config=config, width="stretch")
    _open_from_grid(grid_key, event, page)
    first = page.offset + 1
    narrowed = f" of {total:,}" if len(shown) != total else ""
    st.caption(f"{len(shown):,}{narrowed} rows" + (f"; {first:,}-{page.offset + len(page.rows):,} shown" if page.pages > 1
                                                   else "") + ". " + view.escape_markdown(review_view.LEGEND))
    if page.pages > 1:
        st.pagination(page.pages, key=page_key, max_visible_pages=9)
    return page


def _open_from_grid(grid_key: str, event, page) -> None:
    """A click on a cell of the grid opens it (once per click: the pickers may change it after)."""
    cells = list(getattr(getattr(event, "selection", None), "cells", None) or [])
    clicked = (grid_key, tuple(cells[0])) if cells else None
    if clicked is None or clicked == st.session_state.get("review-grid-click"):
        return
    st.session_state["review-grid-click"] = clicked
    position, column = cells[0]
    if 0 <= position < len(page.rows):
        row = page.rows[position]
        key = column if column != "document" else (row.cells[0].key if row.cells else None)
        if key is not None:
            st.session_state["review-cell"] = (row.sha256, key)


def opened(table, rows: list, page) -> None:
    """The pickers of the cell to open (a document of this page, a column) and the opened cell."""
    by_sha = {r.sha256: r for r in rows}
    keys = [c.key for c in table.columns]
    titles = {c.key: c.title for c in table.columns}
    current = st.session_state["review-cell"]
    if current is not None and (current[0] not in by_sha or current[1] not in titles):
        current = st.session_state["review-cell"] = None
    st.session_state["review-first-column"] = keys[0] if keys else None
    options = [r.sha256 for r in page.rows]
    if current is not None and current[0] not in options:
        options.insert(0, current[0])
    st.session_state["review-open-row"] = current[0] if current else None
    st.session_state["review-open-column"] = current[1] if current else None
    pick = st.columns([4, 3], vertical_alignment="bottom")
    pick[0].selectbox("Open a cell: document", options, key="review-open-row", on_change=_picked,
                      format_func=lambda sha: by_sha[sha].document, placeholder="Click a cell, or choose a document…")
    pick[1].selectbox("Column", keys, key="review-open-column", on_change=_picked, format_func=titles.get,
                      placeholder="…and a column")
    if current is not None:
        cell_panel(table, by_sha[current[0]], table.column(current[1]))


def _picked() -> None:
    """A document or a column chosen under the grid: open that cell (the column kept, else the first)."""
    sha, key = st.session_state.get("review-open-row"), st.session_state.get("review-open-column")
    if sha is not None and key is None:
        key = (st.session_state.get("review-cell") or (None, st.session_state.get("review-first-column")))[1]
    st.session_state["review-cell"] = (sha, key) if sha is not None and key is not None else None


# --- the rest of an open table ---------------------------------------------------------------


def header(table) -> None:
    st.markdown(f"### {view.escape_markdown(table.title)}")


def counts(table, rows: list) -> None:
    """'30 rows × 6 columns · 174 answered · 4 not stated · 6 need review' (refreshed while it runs)."""
    st.caption(view.escape_markdown(
        f"{view.count_noun(len(rows), 'row')} × {view.count_noun(len(table.columns), 'column')} · "
        + review_view.counts_line(table.counts())))


def manage(table) -> None:
    """Rename or delete the table (its documents stay in the library)."""
    with st.form(f"review-rename-{table.id}", border=False):
        row = st.columns([4, 1], vertical_alignment="bottom")
        title = row[0].text_input("Title", value=table.title, key=f"review-title-{table.id}")
        if row[1].form_submit_button("Rename", icon=":material/edit:") and title.strip():
            ReviewStore(store()).rename(table.id, title)
            st.rerun()
    confirm = st.checkbox("Yes, delete this table (its answers, edits and marks; the documents stay)",
                          key=f"review-delete-confirm-{table.id}")
    if st.button("Delete the table", key=f"review-delete-{table.id}", icon=":material/delete:", disabled=not confirm):
        info = current_job(table.id)
        if info is not None and info.state == "running":
            st.error("The table is running: cancel its run first.", icon=":material/error:")
            return
        ReviewStore(store()).delete(table.id)
        st.session_state["review-table"] = None
        st.rerun()

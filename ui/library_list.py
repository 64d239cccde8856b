"""The Library page's document list: filter, page, tick, and act on the ticked (or every matching) document.

Ticks live in session state (`ticked`, SHA-256 in the order ticked) and survive paging and
filtering, so documents from several pages can be added to a collection at once. Actions
apply to the ticked documents, or to every document the filters match (all 120 judgments
whose name has "lease", a whole format, a whole collection) without ticking each one.
"""

from __future__ import annotations

from dataclasses import asdict

import streamlit as st

import ui.collections
import ui.documents
import ui.reader
from lib.errors import FolioError
from lib.output import presenting as view
from ui.document_list import (
    all_matching, fetch_page, filter_controls, page_number, pager, tick_table, ticked_after, totals_caption,
)
from ui.resources import store

TICK = "✓"
SCOPE_TICKED, SCOPE_ALL = "ticked", "all"


def documents_section(collections: list, formats: dict[str, int]) -> None:
    """Filters, one page of the list with ticks, the pager, actions, and one document opened.

    `collections` and `formats` (format -> count) are the page's, read once per run and passed down.
    """
    f = filter_controls("lib", collections, formats)
    page_key = f"lib-page-{f.signature()}"
    result = fetch_page(f, page_number(page_key))
    page = result.offset // result.limit + 1
    st.caption(totals_caption(result, f, sum(formats.values())))
    if result.documents:
        shas = [d.sha256 for d in result.documents]
        changes = tick_table(
            result.documents, set(st.session_state.ticked), tick=TICK,
            key=f"lib-table-{f.signature()}-{page}-{st.session_state.ticked_version}",
            tick_help="Tick documents (on any page) to add them to a collection, ask about them or delete them",
            collections=_collections_of(shas),
        )
        if apply_ticks(changes):
            st.rerun()
    else:
        st.info("No document matches these filters.", icon=":material/filter_alt_off:")
    pager(page_key, result)
    actions(f, result.total, collections)
    open_document(result.documents, collections)


def _collections_of(shas: list[str]) -> dict:
    try:
        return store().document_collections(shas)
    except FolioError:
        return {}


def apply_ticks(changes: list[tuple[str, bool]]) -> bool:
    """Apply the table's tick changes to the ticked list; True when it changed."""
    ticked = ticked_after(st.session_state.ticked, changes)
    if ticked == st.session_state.ticked:
        return False
    set_ticked(ticked)
    return True


def set_ticked(shas: list[str]) -> None:
    st.session_state.ticked = list(shas)
    st.session_state.ticked_version += 1  # the table shows the new ticks, not its old edits


# --- acting on documents ----------------------------------------------------------------


def actions(f, matching: int, collections: list) -> None:
    """Ask about, add to a collection, take out of one, delete: the ticked or all matching documents."""
    ticked = st.session_state.ticked
    with st.container(border=True, key="lib-actions"):
        scope = st.segmented_control(
            "Apply to", [SCOPE_TICKED, SCOPE_ALL], key="lib-scope", default=SCOPE_TICKED,
            format_func=lambda s: f"{len(ticked):,} ticked" if s == SCOPE_TICKED else f"All {matching:,} in the list",
        ) or SCOPE_TICKED
        count = len(ticked) if scope == SCOPE_TICKED else matching
        if not count:
            st.caption("Tick documents in the list (on any page), or choose “All in the list”.")
        row = st.columns([2, 3, 2], vertical_alignment="bottom")
        with row[1]:
            target = ui.collections.target_chooser("lib-add-target", collections, label="Collection to add them to")
        if row[0].button("Ask about them", key="lib-ask", icon=":material/forum:", type="primary", disabled=not count):
            ui.documents.select_documents(_scope_shas(scope, f))
            st.switch_page("pages/ask.py")
        if row[2].button("Add to the collection", key="lib-add", icon=":material/create_new_folder:",
                         disabled=not count or not target):
            if ui.collections.add_documents(target, _scope_shas(scope, f)):
                set_ticked([])
            st.rerun()
        buttons = st.container(horizontal=True)
        _remove_button(buttons, f, scope, count, collections)
        if scope == SCOPE_TICKED and buttons.button("Delete…", key="lib-delete", icon=":material/delete:", disabled=not count):
            st.session_state["lib-confirm-delete"] = True
        if ticked and buttons.button("Untick all", key="lib-untick", icon=":material/deselect:"):
            set_ticked([])
            st.rerun()
        if st.session_state.get("lib-confirm-delete") and scope == SCOPE_TICKED and ticked:
            confirm_delete(list(ticked))


def _scope_shas(scope: str, f) -> list[str]:
    return list(st.session_state.ticked) if scope == SCOPE_TICKED else all_matching(f)


def _remove_button(row, f, scope: str, count: int, collections: list) -> None:
    """When the list shows one collection: take the documents out of it (they stay in the library)."""
    if f.collection is None:
        return
    name = next((c.name for c in collections if c.id == f.collection), "")
    if row.button(f"Take out of {name}", key="lib-remove", icon=":material/folder_off:", disabled=not count):
        if ui.collections.remove_documents(f.collection, name, _scope_shas(scope, f)):
            set_ticked([])
        st.rerun()


def confirm_delete(shas: list[str]) -> None:
    st.warning(
        f"Delete {view.count_noun(len(shas), 'ticked document')} with their passages and original files? "
        "They leave every collection too; saved answers keep their text."
    )
    row = st.container(horizontal=True)
    if row.button("Delete for good", key="lib-really-delete", type="primary"):
        bar = st.progress(0.0, text="Deleting…")
        for number, sha in enumerate(shas, start=1):
            try:
                ui.documents.delete_document(sha)
            except FolioError as exc:
                st.session_state[ui.collections.FLASH] = ("error", exc.message)
                break
            bar.progress(number / len(shas), text=f"Deleted {number:,} of {len(shas):,}")
        else:
            ui.collections.notice(f"Deleted {view.count_noun(len(shas), 'document')}.")
        st.session_state.pop("lib-confirm-delete", None)
        set_ticked([])
        st.rerun()
    if row.button("Keep them", key="lib-keep"):
        st.session_state.pop("lib-confirm-delete", None)
        st.rerun()


# --- one document -------------------------------------------------------------------------


def open_document(rows: list, collections: list) -> None:
    """Read, search, ask about or delete one document of this page."""
    if not rows:
        return
    st.subheader("Open a document")
    by_sha = {row.sha256: row for row in rows}
    key = "library-open"
    if key in st.session_state and st.session_state[key] not in by_sha:
        del st.session_state[key]  # another page of the list: open its first document
    chosen = st.selectbox("Document", list(by_sha), key=key, label_visibility="collapsed",
                          format_func=lambda sha: by_sha[sha].name, help="One of the documents on this page of the list")
    if chosen:
        ui.reader.document_panel(asdict(by_sha[chosen]), collections)

"""A review cell opened: its value and answer, why it needs review or failed, its quotes
highlighted in their passages (and, for PDFs, the page image), the reviewer's edit beside the
model's answer, the check marks, and retrying it alone.

What to show is lib's (lib/output/review_view.py: CellView, cell_evidence); the document is
read from the store only when a cell is opened.
"""

from __future__ import annotations

import streamlit as st

from lib.asking.review.table import ReviewTable, clear_edit, edit_cell, mark_cell, mark_row, retry_cells
from lib.errors import FolioError
from lib.output import presenting as view
from lib.output import review_view
from lib.output.exports import page_text
from ui.answers import quote_in_passage
from ui.page_images import page_image
from ui.resources import store
from ui.review_run import flash, start

TYPE_HINTS = {
    "text": "A few words.",
    "yesno": "Yes or no (是 / 否 too).",
    "date": "A date: 2022-02-11, 11 February 2022, Feb. 11, 2022, 2022年2月11日.",
    "number": "A number and its unit: 1,250,000 EUR, 24 months, 12.5 %.",
    "options": "One of the options.",
    "list": "One item per line.",
}


def cell_panel(table: ReviewTable, row, column) -> None:
    """The opened cell of `row` (a RowView) in `column`."""
    cell_view = row.cell(column.key)
    cell = table.cell(row.sha256, column.key)
    with st.container(border=True, key="review-cell-panel"):
        st.markdown(f"**{view.escape_markdown(row.document)}** · {view.escape_markdown(column.title)} "
                    f"· {cell_view.mark} {view.escape_markdown(cell_view.status_label)}")
        st.caption(view.escape_markdown(column.question))
        _value(cell_view, cell, column)
        _problems(table, row, cell_view, cell)
        _evidence(row, cell_view)
        _marks(table, row, cell, column)
        _editor(table, row, cell_view, column)


def _value(cell_view, cell, column) -> None:
    if cell_view.status == "pending" and not cell_view.edited:
        st.info("Not asked yet: the next run asks it.", icon=":material/schedule:")
        return
    if cell_view.edited:
        edit = cell.edit or {}
        left, right = st.columns(2)
        left.markdown("**Reviewer's edit**  \n" + view.escape_markdown(cell_view.text or "(no value)") + "  \n"
                      + view.escape_markdown(edit.get("answer") or ""))
        right.markdown("**The model's answer**  \n" + view.escape_markdown(cell_view.model_text or "(no value)")
                       + "  \n" + view.escape_markdown(cell.answer))
    else:
        st.markdown(f"**{view.escape_markdown(cell_view.text or '(no value)')}**")
        if cell_view.answer and cell_view.answer != cell_view.text:
            st.markdown(view.escape_markdown(cell_view.answer))
    notes = []
    if cell_view.parts > 1:
        notes.append(f"read in {cell_view.parts} parts (the document is longer than one call)")
    if cell.source == "composed":
        notes.append("composed from the parts' answers")
    if cell.text and cell.value is None and cell_view.status == "answered":
        notes.append(f"the model wrote: “{cell.text}”")
    if notes:
        st.caption(view.escape_markdown("; ".join(notes).capitalize() + "."))


def _problems(table: ReviewTable, row, cell_view, cell) -> None:
    if cell_view.status in ("failed", "refused", "unreadable"):
        st.error(view.message_markdown(cell_view.reason or review_view.STATUS_LABELS[cell_view.status]),
                 icon=":material/error:")
        if cell.raw:
            with st.expander("The model's reply, as it came"):
                st.code(cell.raw, language=None, wrap_lines=True)
    elif cell_view.needs_review:
        st.warning("Needs review: " + view.escape_markdown("; ".join(cell_view.review)) + ".",
                   icon=":material/rate_review:")
    if cell_view.status != "pending" and st.button(
            "Retry this cell", key="review-retry-cell", icon=":material/replay:",
            help="Ask this document again for this column alone; the reviewer's edit and marks stay"):
        try:
            retry_cells(store(), table.id, [(row.sha256, cell_view.key)])
        except FolioError as exc:
            flash("error", exc.message)
        else:
            start(table.id, columns=[cell_view.key], rows=[row.sha256])
        st.rerun(scope="app")


def _evidence(row, cell_view) -> None:
    """Each citation: its badge, place and quote, the passage with the quote highlighted, the page image."""
    if not cell_view.citations:
        if cell_view.status == "answered":
            st.caption("No citation: the value rests on nothing the document was seen to say.")
        return
    try:
        document = store().get_document(row.sha256)
    except FolioError as exc:
        st.warning(view.message_markdown(exc.message), icon=":material/warning:")
        return
    for number, item in enumerate(review_view.cell_evidence(document, cell_view), start=1):
        citation = item["citation"]
        status = citation.get("status", "invalid")
        place = view.join_nonempty([page_text(citation), f"passage {citation.get('id', '')}"])
        icon = view.STATUS_ICONS.get(status)
        with st.expander(f"\\[{number}\\] {view.escape_markdown(place)} · {status}", icon=icon, expanded=number == 1):
            is_pdf = document.format == "pdf" and item["page"] and status != "invalid"
            text_side, page_side = st.columns([5, 4]) if is_pdf else (st.container(), None)
            with text_side:
                quote_in_passage(citation.get("quote"), status, citation.get("reason"), item["passage"], item["span"],
                                 invalid="No passage with this ID exists in the document.", heading=item["heading"])
            if page_side is not None:
                with page_side:
                    page_image({"format": "pdf", "sha": row.sha256, "page": item["page"],
                                "quote": citation.get("quote") or "", "document": row.document},
                               key=f"review-{row.sha256[:12]}-{cell_view.key}-{number}")


def _marks(table: ReviewTable, row, cell, column) -> None:
    """The reviewer's check marks: this cell, or the whole row (each takes cells out of "needs review")."""
    marks = st.container(horizontal=True)
    where = f"{table.id}-{row.sha256[:16]}"
    marks.toggle("Cell checked", value=bool(cell.checked), key=f"review-checked-{where}-{column.key}",
                 on_change=_mark_cell, args=(table.id, row.sha256, column.key, f"review-checked-{where}-{column.key}"),
                 help="You checked this cell: it no longer counts as needing review")
    marks.toggle("Row checked", value=bool(row.checked), key=f"review-row-checked-{where}",
                 on_change=_mark_row, args=(table.id, row.sha256, f"review-row-checked-{where}"),
                 help="You checked every cell of this document's row")


def _mark_cell(table_id: int, sha256: str, key: str, widget: str) -> None:
    try:
        mark_cell(store(), table_id, sha256, key, bool(st.session_state.get(widget)))
    except FolioError as exc:
        flash("error", exc.message)


def _mark_row(table_id: int, sha256: str, widget: str) -> None:
    try:
        mark_row(store(), table_id, sha256, bool(st.session_state.get(widget)))
    except FolioError as exc:
        flash("error", exc.message)


def _editor(table: ReviewTable, row, cell_view, column) -> None:
    """The reviewer's value and answer, read in the column's type; the model's answer stays beside it."""
    where = f"{table.id}-{row.sha256[:16]}-{column.key}"
    with st.form(f"review-edit-{where}", border=False):
        st.markdown("**Your edit** (the model's answer is kept beside it)")
        value = _value_input(column, cell_view, f"review-edit-value-{where}")
        answer = st.text_input("Answer (one line)", value=cell_view.answer if cell_view.edited else "",
                               key=f"review-edit-answer-{where}")
        buttons = st.container(horizontal=True)
        save = buttons.form_submit_button("Save the edit", icon=":material/edit:")
        remove = buttons.form_submit_button("Back to the model's answer", icon=":material/undo:",
                                            disabled=not cell_view.edited)
    if save:
        try:
            edit_cell(store(), table.id, row.sha256, column.key, value, answer)
        except FolioError as exc:
            flash("error", exc.message)
        st.rerun(scope="app")
    if remove:
        try:
            clear_edit(store(), table.id, row.sha256, column.key)
        except FolioError as exc:
            flash("error", exc.message)
        st.rerun(scope="app")


def _value_input(column, cell_view, key: str) -> str:
    """The value as text, with the widget that fits the column's type."""
    current = cell_view.text if cell_view.status in ("answered", "pending") or cell_view.edited else ""
    if column.type == "yesno":
        choices = ["", "Yes", "No"]
        return st.selectbox("Value", choices, index=choices.index(current) if current in choices else 0, key=key) or ""
    if column.type == "options":
        choices = ["", *column.options]
        return st.selectbox("Value", choices, index=choices.index(current) if current in choices else 0, key=key) or ""
    if column.type == "list":
        items = cell_view.value if isinstance(cell_view.value, list) else []
        return st.text_area("Value", value="\n".join(map(str, items)), key=key, help=TYPE_HINTS["list"])
    return st.text_input("Value", value=current, key=key, help=TYPE_HINTS.get(column.type))

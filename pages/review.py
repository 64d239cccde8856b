"""Review: the same questions put to every document of a collection, one row per document, one
column per question, every cell cited and checked; run as a job, reviewed, asked, exported."""

from __future__ import annotations

import streamlit as st

import ui.review
import ui.review_ask
import ui.review_columns
import ui.review_export
import ui.review_run
import ui.review_setup
import ui.state
from ui.document_list import library_total


def main() -> None:
    st.title("Review")
    st.caption("One row per document, one column per question. Each document is read whole in one call that "
               "answers every column; every cell cites the words it rests on, checked by Folio.")
    ui.review_run.flash_notice()
    if not library_total():
        st.info("Add documents on the **Library** page first.", icon=":material/info:")
        st.page_link("pages/library.py", label="Go to the Library", icon=":material/library_books:")
        return
    table_id = ui.review.choose_table()
    if table_id is None:
        ui.review_setup.new_table()
        return
    table, rows, version = ui.review.loaded(table_id)
    if table is None:
        return
    ui.review.header(table)
    ui.review.live_table(table_id, len(rows))
    with st.expander("Add a column", icon=":material/view_column:"):
        ui.review_columns.add_column_form(table_id)
    with st.expander("Ask the table", icon=":material/forum:", expanded=bool(st.session_state.get(ui.review_ask.ANSWERS))):
        ui.review_ask.ask_section(table)
    with st.expander("Export: Excel, CSV, Word", icon=":material/file_export:"):
        ui.review_export.export_section(table, version)
    with st.expander("Rename or delete the table", icon=":material/settings:"):
        ui.review.manage(table)


ui.state.require_router("pages/review.py")
main()

"""A review table taken away: Excel (typed cells, a sheet of every citation), CSV and a Word memo
with footnoted citations (lib/output/review_exports.py). The files are made on request, once
per version of the table: a 2,000-row workbook takes a moment, and the page never waits for it."""

from __future__ import annotations

import re

import streamlit as st

from lib.errors import FolioError
from lib.output import review_exports
from lib.output import presenting as view

KEY = "review-export"
FORMATS = (
    ("xlsx", "Excel", review_exports.table_xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("csv", "CSV", review_exports.table_csv, "text/csv"),
    ("docx", "Word memo", review_exports.table_docx,
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
)


def stem(title: str) -> str:
    return re.sub(r"[^\w\- ]+", "", title, flags=re.UNICODE).strip().replace(" ", "-")[:60] or "review-table"


def export_section(table, version: str) -> None:
    """'Make the files', then a download button for each."""
    made = st.session_state.get(KEY)
    current = made is not None and made["table"] == table.id and made["version"] == version
    label = "Make the files again (the table changed)" if made and made["table"] == table.id and not current else (
        "Make the files" if not current else "")
    if label and st.button(label, key="review-export-make", icon=":material/file_export:",
                           help="Excel (typed cells and every citation), CSV and a Word memo of the table as it is now"):
        try:
            files = {ext: make(table) for ext, _label, make, _mime in FORMATS}
        except (FolioError, OSError, ValueError) as exc:
            st.error(view.message_markdown(f"The files could not be made: {exc}"), icon=":material/error:")
            return
        st.session_state[KEY] = made = {"table": table.id, "version": version, "files": files}
        current = True
    if not current:
        return
    row = st.container(horizontal=True)
    for ext, label, _make, mime in FORMATS:
        row.download_button(label, made["files"][ext], file_name=f"{stem(table.title)}.{ext}", mime=mime,
                            key=f"review-download-{ext}", icon=":material/download:", on_click="ignore")

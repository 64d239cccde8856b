"""Defining a review table's columns: a ready set to start from, edited in a table (title,
question, type, options), and a column added to a table later (only it is then asked)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.asking.review.columns import PRESETS, Column, check_columns, preset
from lib.asking.review.table import add_columns
from lib.asking.review.values import TYPES
from lib.errors import FolioError
from lib.output import presenting as view
from ui.resources import store
from ui.review_run import flash, start

TYPE_HELP = ("text: a few words · yesno: yes or no · date: a date · number: a number with its unit (1,250,000 EUR, "
             "24 months) · options: one of the options listed (comma between them) · list: a list of items")
FIELDS = ["Title", "Question", "Type", "Options"]


def columns_editor() -> list[Column] | None:
    """A ready set (or nothing) edited in a table; the columns, or None (and why) when they are not right."""
    choice = st.selectbox("Start from", ["", *PRESETS], key="review-preset",
                          format_func=lambda name: PRESETS[name].label if name else "No ready set: my own columns",
                          help="A ready set of columns for court judgments, technical manuals or theses: edit, remove "
                               "or add columns below")
    base = preset(choice) if choice else []
    frame = pd.DataFrame([{"Title": c.title, "Question": c.question, "Type": c.type, "Options": ", ".join(c.options)}
                          for c in base], columns=FIELDS)
    frame["Type"] = frame["Type"].astype("object")
    edited = st.data_editor(
        frame, key=f"review-columns-{choice or 'own'}", num_rows="dynamic", hide_index=True, width="stretch",
        column_config={
            "Title": st.column_config.TextColumn("Title", required=True, max_chars=80, help="The column's heading"),
            "Question": st.column_config.TextColumn("Question", required=True, width="large",
                                                    help="The question put to every document"),
            "Type": st.column_config.SelectboxColumn("Type", options=list(TYPES), required=True, default="text",
                                                     help=TYPE_HELP),
            "Options": st.column_config.TextColumn("Options", help="For the type options: the allowed answers, "
                                                   "separated by commas (Allowed, Dismissed, Allowed in part)"),
        },
    )
    st.caption("Types: " + view.escape_markdown(TYPE_HELP) + ". Add a row for each question.")
    return _columns_of(edited)


def _columns_of(frame: pd.DataFrame) -> list[Column] | None:
    columns = []
    for record in frame.to_dict("records"):
        title, question = _text(record.get("Title")), _text(record.get("Question"))
        if not title and not question:
            continue  # an empty row the editor added
        kind = _text(record.get("Type")) or "text"
        options = tuple(o.strip() for o in _text(record.get("Options")).replace("|", ",").split(",") if o.strip())
        columns.append(Column(title, question, kind, options if kind == "options" else ()))
    if not columns:
        st.caption("No column yet: start from a ready set, or add a row (the + above the table) for each question.")
        return None
    try:
        return check_columns(columns)
    except FolioError as exc:
        st.error(view.message_markdown(exc.message), icon=":material/error:")
        return None


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip()


def add_column_form(table_id: int) -> None:
    """A new column for an open table: stored, then only it is asked of every document."""
    with st.form(f"review-add-column-{table_id}", clear_on_submit=True, border=False):
        top = st.columns([2, 4])
        title = top[0].text_input("Title", key=f"review-new-column-title-{table_id}", max_chars=80)
        question = top[1].text_input("Question", key=f"review-new-column-question-{table_id}")
        bottom = st.columns([2, 4])
        kind = bottom[0].selectbox("Type", list(TYPES), key=f"review-new-column-type-{table_id}", help=TYPE_HELP)
        options = bottom[1].text_input("Options (for the type options, separated by commas)",
                                       key=f"review-new-column-options-{table_id}")
        submitted = st.form_submit_button("Add the column and ask it", icon=":material/add:")
    if not submitted:
        return
    listed = tuple(o.strip() for o in options.replace("|", ",").split(",") if o.strip()) if kind == "options" else ()
    try:
        [added] = add_columns(store(), table_id, [Column(title, question, kind, listed)])
    except FolioError as exc:
        flash("error", exc.message)
    else:
        flash("success", f"Added the column {added.title}: only it is asked of every document.")
        start(table_id)
    st.rerun()

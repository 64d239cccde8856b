"""Ask the table: one question over the whole table (or the rows shown), answered in one call from
the cells and the passages they cite (lib/asking/review/table_question.py), every citation
verified against the original passage and shown as on the Ask page."""

from __future__ import annotations

import streamlit as st

from lib.asking.review.table_question import ask_table
from lib.errors import FolioError
from lib.output import advice, turns
from lib.output import presenting as view
from ui.answers import render_turn
from ui.resources import backend_for, settings, store

ANSWERS = "review-answers"
"""Session state: table id -> the turns asked of it this session (newest last)."""
SHOWN = "review-shown-rows"
"""Session state: (table id, sha256 of the rows a filter shows) or None: what "only the rows shown" asks."""


def ask_section(table) -> None:
    shown = st.session_state.get(SHOWN)
    filtered = shown is not None and shown[0] == table.id
    with st.form(f"review-ask-{table.id}", border=False):
        question = st.text_area("A question about the whole table", key=f"review-question-{table.id}",
                                placeholder="Which judgments upheld the limitation defence, and on what ground?",
                                height=80)
        only = st.checkbox(f"Only the {view.count_noun(len(shown[1]), 'row')} the filter shows" if filtered else
                           "Only the rows a filter shows", value=filtered, disabled=not filtered,
                           key=f"review-ask-only-{table.id}")
        asked = st.form_submit_button("Ask the table", icon=":material/forum:", type="primary")
    if asked and question.strip():
        _ask(table, question.strip(), shown[1] if filtered and only else None)
    for index, turn in reversed(list(enumerate(st.session_state.get(ANSWERS, {}).get(table.id, [])))):
        render_turn(turn, key=f"review-answer-{table.id}-{index}", exports=False)


def _ask(table, question: str, rows: list[str] | None) -> None:
    s = settings()
    pending = _pending(table, question, rows, s.think)
    with st.status(f"The model reads the answers and quotes of {view.count_noun(len(pending['shas']), 'row')}…",
                   expanded=False) as status:
        try:
            answer = ask_table(store(), table.id, question, s, rows=rows, backend=backend_for(s))
        except FolioError as exc:
            status.update(label="The table could not be asked", state="error")
            st.error(view.message_markdown(advice.for_app(exc.message)), icon=":material/error:")
            return
        status.update(label="Answered", state="complete")
    turn = turns.with_context(turns.turn_from_answer(answer, pending), pending, s)
    st.session_state.setdefault(ANSWERS, {}).setdefault(table.id, []).append(turn)


def _pending(table, question: str, rows: list[str] | None, think: bool) -> dict:
    """What a turn record needs of the rows asked: their names and formats (for page images)."""
    wanted = set(rows) if rows is not None else None
    shas = [r.sha256 for r in table.rows if wanted is None or r.sha256 in wanted]
    try:
        formats = {d.sha256: d.format for d in store().document_summaries(shas)}
    except FolioError:
        formats = {}
    names = {r.sha256: r.name for r in table.rows}
    return {"question": question, "think": think, "started": turns.now_iso(), "shas": shas,
            "names": [names[s] for s in shas], "formats": formats}

"""Session state of the web app: its defaults, the conversation, and routing deep links.

Plain data only: the chat dict is read by reference while an answer streams.
"""

from __future__ import annotations

import copy
from typing import Any

import streamlit as st

# Session state, initialised once per browser session (plain data only).
DEFAULT_STATE: dict[str, Any] = {
    "selected": [],  # sha256 of the documents chosen on the Ask page, in the order they were chosen
    "selection_origin": None,  # the collection the selection was taken from whole (its id), else None
    "selection_version": 0,  # bumped on every change of the selection: the choosing widgets start afresh
    "ticked": [],  # sha256 of the documents ticked in the Library list (across its pages)
    "ticked_version": 0,  # bumped when the ticks change other than by a click in the table
    "jobs_running": [],  # ids of the jobs this session last saw running (to refresh the page when one ends)
    # The conversation on the Ask page, one plain dict held by reference while an answer
    # streams (a Stop ends the script, and session state cannot be touched after that):
    # id (store id or None), turns (dicts, see lib/output/turns.py), error (str), pending (dict),
    # unsent (a question that got no word of an answer, offered again: turns.unsent),
    # plan (a question planned but not sent yet: ui/plan.py), plan_job (the id of the job
    # answering this conversation's question in several calls: ui/plan_run.py).
    "chat": {"id": None, "turns": [], "error": None, "pending": None, "unsent": None, "plan": None, "plan_job": None},
    "overrides": {},  # Settings fields changed on the Settings page
    "upload_log": [],  # one line per file of the uploads of this session
    "locked": {},  # encrypted uploads waiting for a password: key -> {name, data, message}
    "seen_uploads": [],  # file_ids of uploads already handled
    "uploader_key": 0,
    "passwords": {},  # sha256 -> password of encrypted PDFs opened this session (memory only)
    # The Review page (ui/review*.py): the table open (its id, None for a new one), the cell
    # opened (sha256, column key), the documents ticked for a new table.
    "review-table": None,
    "review-cell": None,
    "review-ticked": [],
}


def init_state() -> None:
    """Give every session-state key its default, once."""
    for key, value in DEFAULT_STATE.items():
        if key not in st.session_state:
            st.session_state[key] = copy.deepcopy(value)


def require_router(page: str) -> None:
    """Pages run only inside app.py's router; `page` is the calling script ("pages/ask.py").

    On a freshly started server, Streamlit serves a deep link (a bookmark of /ask, a tab the
    browser restores) straight from the pages/ folder, without app.py, until some session has
    called st.navigation: no session state, Streamlit's own page list. Go through app.py,
    which then opens the page that was asked for.
    """
    if any(key not in st.session_state for key in DEFAULT_STATE):
        st.session_state[DEEP_LINK] = page
        st.switch_page("app.py")


DEEP_LINK = "deep-link"  # the page a deep link asked for, opened by app.py once it routes


def chat() -> dict:
    """The Ask page's conversation: {'id', 'turns', 'error', 'pending', 'unsent', 'plan', 'plan_job'}."""
    return st.session_state.chat


def new_conversation(*, keep_selection: bool = True, conversation_id=None, turns=(), error=None,
                     plan_job: int | None = None) -> None:
    """A fresh conversation dict (a running answer keeps writing to the old one)."""
    st.session_state.chat = {"id": conversation_id, "turns": list(turns), "error": error, "pending": None,
                             "unsent": None, "plan": None, "plan_job": plan_job}
    if not keep_selection:
        st.session_state.selected = []


def set_selection(shas, *, origin: int | None = None) -> bool:
    """Choose the documents the Ask page reads (in this order); a different choice starts a new
    conversation. `origin`: the collection they were taken from whole. True when it changed."""
    shas = list(dict.fromkeys(shas))
    changed = shas != list(st.session_state.selected)
    st.session_state.selected = shas
    st.session_state.selection_origin = origin
    st.session_state.selection_version += 1  # the choosing widgets show the new choice, not their old state
    if changed:
        new_conversation(keep_selection=True)
    return changed

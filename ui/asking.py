"""Asking from the Ask page: the token budget, the stream, and the job that saves its turn.

Building and saving the turn is lib/output/turns.py (plain objects, also after a Stop); this
module gathers what it needs while Streamlit calls are still allowed.
"""

from __future__ import annotations

import streamlit as st

from lib.config import Settings
from lib.errors import FolioError
from lib.output import presenting as view
from lib.output import turns
from ui.resources import backend_for, settings, store
from ui.server import real_context
from ui.state import chat


def budget(documents: list, *, think: bool, history=(), question: str = ""):
    """The budget of a question; documents are rendered and counted once per process (lib keeps
    them), so a refresh counts only the question and the earlier turns."""
    from lib.asking.budget import compute_budget

    return compute_budget(documents, settings(), question=question, think=think,
                          context=real_context(), history=list(history))


def ask_stream(documents, question, s: Settings, *, think, history, cancel, asked_at=None):
    """lib.asking.answering.ask_stream with the shared backend (its server check is remembered),
    times counted from `asked_at` (time.monotonic() when the question was submitted)."""
    from lib.asking.answering import ask_stream as _ask_stream

    return _ask_stream(documents, question, s, think=think, history=history, cancel=cancel,
                       backend=backend_for(s), asked_at=asked_at)


def start_job(question: str, think: bool, documents: list) -> dict:
    """Everything finishing an answer needs, gathered while Streamlit calls are still allowed."""
    conversation = chat()
    conversation["error"] = None
    try:
        prompt_tokens = budget(documents, think=think, history=conversation["turns"], question=question).prompt
    except FolioError:
        prompt_tokens = 0
    pending = turns.new_pending(question, think, documents, prompt_tokens)
    conversation["pending"] = pending
    return turns.new_job(conversation, pending, store=store(), settings=settings(), documents=documents)



def wait_for_stopped_answer(timeout: float) -> None:
    """After Stop, Streamlit may start the next run while the stopped one still saves its
    answer: wait for it (briefly) so the page shows the interrupted turn."""
    pending = chat().get("pending")
    if pending is not None:
        pending["done"].wait(timeout)


def error_notice() -> None:
    """The error that ended the last question, if any (kept until the next question)."""
    message = chat().get("error")
    if message:
        st.error(view.message_markdown(message), icon=":material/error:")

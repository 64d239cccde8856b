"""Asking from the Ask page: the token budget, the stream, and the job that saves its turn.

Building and saving the turn is lib/output/turns.py (plain objects, also after a Stop); this
module gathers what it needs while Streamlit calls are still allowed.
"""

from __future__ import annotations

import streamlit as st

from lib.config import Settings
from lib.errors import FolioError
from lib.output import advice, turns
from lib.output import presenting as view
from ui.resources import backend_for, settings, store
from ui.server import real_context, server_status
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
    conversation["unsent"] = None
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


def error_notice() -> str | None:
    """The error that ended the last question (kept until the next question), with that question
    when no word of it was answered: shown, put back in the input, and offered again.

    Returns the question when "Ask again" was pressed.
    """
    conversation = chat()
    unsent = conversation.get("unsent")
    message = conversation.get("error")
    if unsent is None:
        if message:
            st.error(view.message_markdown(advice.for_app(message)), icon=":material/error:")
        return None
    with st.chat_message("user", avatar=":material/person:"):
        st.markdown(view.escape_markdown(unsent["question"]))
    if unsent["why"] == "stopped":
        st.warning(view.message_markdown(unsent["message"]) + " Nothing was saved.", icon=":material/stop_circle:")
    else:
        st.error(view.message_markdown(advice.for_app(message or unsent["message"])), icon=":material/error:")
    if not unsent["prefilled"]:
        unsent["prefilled"] = True
        st.session_state["question"] = unsent["question"]  # back in the input, to edit or send again
    if st.button("Ask again", icon=":material/replay:", key="ask-again", help="Send this question again"):
        st.session_state["question"] = ""  # sent: the input is emptied as after any question
        return unsent["question"]
    return None


def thinking_toggle() -> bool:
    """The Thinking switch; off and disabled, with the reason, when the server says the model
    cannot think."""
    status = server_status()
    s = settings()
    cannot = status.get("reachable") and status.get("model_present") and status.get("thinking") is False
    if cannot:
        st.session_state["think-toggle"] = False
    model = status.get("model") or s.model
    start = {} if "think-toggle" in st.session_state else {"value": s.think}
    return st.toggle(
        "Thinking",
        key="think-toggle",
        **start,
        disabled=bool(cannot),
        help=(f"The server says {model} cannot think (no thinking capability), so Folio asks without it."
              if cannot else
              "The model reasons before answering: slower, often better on hard questions. "
              "Reserves more room for the answer."),
    )

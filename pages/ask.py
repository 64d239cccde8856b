"""Ask: choose documents, see the exact token budget, ask, and read a cited answer; when the
documents do not fit one call, see the plan of the question first, run it, follow it."""

from __future__ import annotations

import queue
import threading
import time

import streamlit as st

import ui.answers
import ui.asking
import ui.budget
import ui.choosing
import ui.documents
import ui.exports
import ui.plan
import ui.plan_run
import ui.resources
import ui.server
import ui.state
from lib.errors import FolioError
from lib.output import presenting as view
from lib.output import turns
from ui.document_list import library_total

POLL_S = 0.25  # how often the elapsed time refreshes while the model reads (and Stop is noticed)
DRAIN_S = 3.0  # how long a stopped answer waits for lib to hand back what arrived, verified
_END = object()


# --- the question -------------------------------------------------------------------


def question_fits(question: str, documents: list, think: bool, without_question) -> bool:
    """A question too long for the room the documents leave is refused here, and kept to copy."""
    try:
        budget = ui.asking.budget(documents, think=think, history=ui.state.chat()["turns"], question=question)
    except FolioError:
        return True  # lib says what is wrong when it is asked
    if budget.fits:
        return True
    st.error(view.escape_markdown(view.question_too_long(budget, without_question)), icon=":material/block:")
    st.caption("Your question, to copy and shorten (the copy button is at its top right):")
    st.code(question, language=None, wrap_lines=True)
    return False


def _question_placeholder(budget) -> str:
    if budget is None or not budget.fits:
        return "These documents do not fit in the context: see above"
    return "Ask a follow-up question" if ui.state.chat()["turns"] else "Ask a question about these documents"


def _without_thinking(documents: list):
    """The budget of the same question with Thinking off (to say whether that would fit)."""
    try:
        return ui.asking.budget(documents, think=False, history=ui.state.chat()["turns"])
    except FolioError:
        return None


# --- asking -------------------------------------------------------------------------


def ask(question: str, documents: list, think: bool, asked_at: float | None = None) -> None:
    """Stream one answer, then save it; a Stop keeps what arrived. Times count from `asked_at`."""
    asked_at = time.monotonic() if asked_at is None else asked_at
    history = list(ui.state.chat()["turns"])
    job = ui.asking.start_job(question, think, documents)
    with st.chat_message("user", avatar=":material/person:"):
        ui.answers.safe_markdown(question)
    with st.chat_message("assistant", avatar=":material/menu_book:"):
        status = st.status("Sending the documents to the model…", expanded=False)
        st.button("Stop", icon=":material/stop_circle:", key="stop-answer", help="Stop the answer and keep what arrived")
        thinking_box = st.expander("Reasoning", icon=":material/psychology:", expanded=False) if think else None
        thinking_slot = thinking_box.empty() if thinking_box else None
        answer_slot = st.empty()
        stream_answer(job, question, think, history, status, thinking_slot, answer_slot, asked_at)
    st.rerun()


def stream_answer(job, question, think, history, status, thinking_slot, answer_slot, asked_at=None) -> None:
    """Run lib.asking.answering in a worker thread; show elapsed time and text as it arrives."""
    events: queue.Queue = queue.Queue()
    cancel = threading.Event()
    started = time.monotonic() if asked_at is None else asked_at
    worker = threading.Thread(
        target=_produce, args=(events, cancel, job, question, think, history, started), daemon=True
    )
    worker.start()
    final = None
    try:
        final = _consume(events, started, job["pending"], status, thinking_slot, answer_slot)
    finally:
        # Also after Stop (which ends or reruns the script at its next Streamlit call): let
        # lib end the call and verify what arrived, then save it. No Streamlit calls here.
        if final is None:
            cancel.set()
            final = _drain(events, job["pending"], time.monotonic() + DRAIN_S)
        turns.finish_job(job, final)


def _produce(events: queue.Queue, cancel: threading.Event, job: dict, question, think, history,
             asked_at=None) -> None:
    """Worker: push lib's events (or the error that stopped them) onto the queue."""
    try:
        for event in ui.asking.ask_stream(job["documents"], question, job["settings"], think=think, history=history,
                                          cancel=cancel, asked_at=asked_at):
            events.put(event)
    except Exception as exc:  # noqa: BLE001 - shown as one line, never a traceback
        events.put(exc)
    finally:
        events.put(_END)


def _consume(events, started, pending, status, thinking_slot, answer_slot):
    """Script thread: render events until the final one; returns it (or an error)."""
    while True:
        try:
            event = events.get(timeout=POLL_S)
        except queue.Empty:
            _show_elapsed(status, started, pending)
            continue
        if event is _END:
            return None
        if isinstance(event, Exception):
            return event
        kind = getattr(event, "kind", "")
        if kind == "final":
            return event
        if kind == "status":
            pending["phase"] = event.text
        elif kind == "thinking":
            pending["thinking"] += event.text
            if thinking_slot is not None:
                thinking_slot.markdown(view.escape_markdown(pending["thinking"]))
        elif kind == "content":
            pending["answer"] += event.text
            answer_slot.markdown(view.escape_markdown(pending["answer"]) + " ▌")
        _show_elapsed(status, started, pending)


def _show_elapsed(status, started: float, pending: dict) -> None:
    elapsed = view.format_seconds(time.monotonic() - started)
    if pending["answer"]:
        label = f"Answering… {elapsed}"
    elif pending["thinking"]:
        label = f"Reasoning… {elapsed}"
    elif pending["phase"].startswith("Sending"):
        label = f"The model is reading {pending['prompt_tokens']:,} tokens… {elapsed}"
    else:
        label = f"{view.escape_markdown(pending['phase'] or 'Starting')}… {elapsed}"
    status.update(label=label)


def _drain(events: queue.Queue, pending: dict, deadline: float):
    """After a stop: the final event lib sends once it notices the cancel, if it comes in time."""
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=0.1)
        except queue.Empty:
            continue
        if event is _END:
            return None
        if isinstance(event, Exception) or getattr(event, "kind", "") == "final":
            return event
        kind = getattr(event, "kind", "")
        if kind in ("thinking", "content"):
            pending["thinking" if kind == "thinking" else "answer"] += event.text
    return None


def conversation() -> None:
    """The turns so far, then the whole conversation as a download."""
    current = ui.state.chat()
    for index, turn in enumerate(current["turns"]):
        ui.answers.render_turn(turn, key=f"turn-{index}")
    if current["id"] is not None and len(current["turns"]) > 1:
        try:
            saved = ui.resources.store().get_conversation(current["id"])
        except FolioError:
            return  # deleted in another tab: the turns above are still shown
        st.caption("The whole conversation:")
        ui.exports.conversation_exports(saved, key="ask-conversation")


# --- page ---------------------------------------------------------------------------


def main() -> None:
    run_started = time.monotonic()  # a submitted question starts this run: its times count from here
    st.title("Ask")
    if not library_total():
        st.info("Add documents on the **Library** page first.", icon=":material/info:")
        st.page_link("pages/library.py", label="Go to the Library", icon=":material/library_books:")
        ui.choosing.deleted_documents_notice()
        conversation()  # its documents were deleted meanwhile: what was asked stays readable
        return
    top = st.columns([4, 1])
    with top[0]:
        selected = ui.choosing.choose_documents()
    with top[1]:
        st.write("")
        if st.button("New conversation", icon=":material/add_comment:", disabled=not ui.state.chat()["turns"]):
            ui.state.new_conversation(keep_selection=True)
            st.rerun()
    think = ui.asking.thinking_toggle()
    if not selected:
        st.info("Choose the documents to read. Folio sends them whole, in one call while they fit.",
                icon=":material/info:")
        conversation()  # a conversation whose documents were deleted meanwhile stays readable
        return
    over = ui.choosing.over_the_context(selected)  # from stored counts: nothing loaded
    documents = budget = None
    if over is None:
        try:
            documents = ui.documents.load_documents(selected)
            budget = ui.asking.budget(documents, think=think, history=ui.state.chat()["turns"])
        except FolioError as exc:  # e.g. a document deleted in another tab a moment ago
            st.error(view.escape_markdown(exc.message), icon=":material/error:")
            return
        ui.budget.budget_panel(budget, _without_thinking(documents) if think and not budget.fits else None,
                               model_context=ui.server.model_context())
    one_call = budget is not None and budget.fits
    plannable = not one_call and ui.plan.plan_possible(think)
    if plannable:
        ui.plan.intro(over, think)
    elif not one_call:
        ui.plan.no_plan(over, think)
    server_up = ui.server.need_server_notice()
    ui.asking.wait_for_stopped_answer(DRAIN_S + 2)
    conversation()
    running = ui.plan_run.follow()  # a question being answered by a plan (a job): its progress
    ui.plan.proposal(think)  # a question planned, not sent yet: the plan, to run or take back
    again = ui.asking.error_notice()  # a question the server did not answer: shown, offered again
    question = st.chat_input(
        ui.plan.placeholder() if plannable else _question_placeholder(budget),
        key="question",
        submit_mode="disable",  # no new question while one runs; the Stop button ends it
        disabled=running or not (one_call or plannable),
    ) or again
    if not (question and question.strip()):
        return
    if not one_call:
        ui.plan.propose(question.strip(), selected, think)  # shown with its plan; nothing is sent yet
    elif question_fits(question.strip(), documents, think, budget):
        if not server_up:
            ui.server.clear_server_status()  # the user may have started it since the last check
        ask(question.strip(), documents, think, run_started)


ui.state.require_router("pages/ask.py")
main()

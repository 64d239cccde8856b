"""The plan of a question on the Ask page: what Folio would send, shown before anything is sent.

When the chosen documents do not fit one call, the question box stays open and says so. The
question typed is planned (lib/asking/plan.py: ranking with the library's index, packing,
splitting at natural boundaries) and shown with exact numbers for both modes: most relevant
first (which documents are read and which are not, with their rank) and read everything
(how many calls, what each reads, tokens per call and in all, the time estimated from the
server's measured speed, or "unknown"). The user runs one of them (a job: ui/plan_run.py)
or takes the question back.

Nothing is loaded before a question is typed: the notice uses the documents' stored counts.
The documents loaded to plan are kept per process for the selection (the next question
over it loads nothing), the plans for the last few questions (a rerun, a change of mode,
plans nothing again), and both are handed to the job: a 2,000-document collection is read
from the library once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import pandas as pd
import streamlit as st

import ui.plan_run
import ui.server
from lib.asking.plan import SPLIT_NOTE
from lib.errors import FolioError, ServerError
from lib.output import advice, plan_view
from lib.output import presenting as view
from ui.resources import backend_for, settings, store
from ui.state import chat

KEPT = 3
"""Planned questions (with their documents) kept per process."""
CALLS_SHOWN = 50
"""Rows of a plan's call table (the rest are counted)."""
UNREAD_SHOWN = 20
"""Documents not read (most relevant first) listed by rank; the rest are counted."""
MODES = ("all", "relevant")
"""The modes offered when one call cannot hold the documents, the default first."""

_PLANS: "OrderedDict[tuple, dict]" = OrderedDict()
_LOCK = threading.Lock()


# --- before a question ---------------------------------------------------------------


def plan_possible(think: bool) -> bool:
    """Whether any part of a document fits a reading call beside the instructions and the reserve."""
    from lib.asking.plan import MIN_ROOM, QUESTION_ALLOWANCE, call_layout
    from lib.reading.tokens import get_counter

    context = ui.server.real_context()
    layout = call_layout("", (), context, get_counter())
    room = context - settings().reserved(False) - layout.prefix_tokens - min(QUESTION_ALLOWANCE, context // 32)
    return room >= MIN_ROOM


def intro(over: tuple[int, int] | None, think: bool) -> None:
    """The chosen documents do not fit one call: say so, and that a question is planned first."""
    context = ui.server.real_context()
    if over is not None:
        count, tokens = over
        st.info(
            f"The {count:,} chosen documents hold {tokens:,} tokens, {tokens / context:.1f} times the whole context "
            f"({context:,} tokens, {settings().reserved(think):,} of them kept for the answer). One call cannot read "
            "them whole, and Folio never cuts a document. **Ask your question**: Folio plans it and shows you the "
            "plan (most relevant first, or every document read in several calls), with its calls, tokens and time, "
            "before anything is sent.",
            icon=":material/account_tree:",
        )
        calls = rough_calls(tokens, context)
        st.caption(f"Reading everything would take about {calls:,} calls, and one more to compose the answer "
                   "(from the stored counts; the exact plan comes with the question).")
        return
    st.info("One call cannot hold these documents (see above). **Ask anyway**: Folio plans the question (most "
            "relevant first, or every document read in several calls) and shows you the plan, with its calls, "
            "tokens and time, before anything is sent.", icon=":material/account_tree:")


def no_plan(over: tuple[int, int] | None, think: bool) -> None:
    """Not even a plan can ask: the context leaves no room for a part of a document."""
    context = ui.server.real_context()
    head = (f"The {over[0]:,} chosen documents hold {over[1]:,} tokens, {over[1] / context:.1f} times the whole "
            f"context ({context:,} tokens). " if over is not None else "")
    st.error(head + f"A context of {context:,} tokens, {settings().reserved(False):,} of them kept for the answer, "
             "leaves no room for a part of a document beside Folio's instructions, so no plan can ask either. "
             "Raise the context or lower the answer reserve on the Settings page.", icon=":material/block:")


RENDERING = 1.09
"""Rendered documents (passage IDs, page markers) hold about this much more than their own tokens."""
INSTRUCTIONS = 400
"""Tokens of a reading call's instructions and markup, about."""


def rough_calls(tokens: int, context: int) -> int:
    """Reading calls a read-everything plan would take, from stored counts (the plan gives the exact number)."""
    from lib.asking.plan import QUESTION_ALLOWANCE

    room = context - settings().reserved(False) - INSTRUCTIONS - min(QUESTION_ALLOWANCE, context // 32)
    return max(1, -(-int(tokens * RENDERING) // max(room, 1)))


def placeholder() -> str:
    return ("These documents do not fit one call: ask, and Folio shows the plan first"
            if not chat()["turns"] else "Ask a follow-up: Folio shows its plan first")


# --- the question planned -------------------------------------------------------------


def propose(question: str, selected: list[str], think: bool) -> None:
    """Plan this question (shown on the next run; nothing is sent)."""
    chat()["plan"] = {"question": question, "think": think, "shas": list(selected), "mode": default_mode()}
    chat()["unsent"] = None
    st.rerun()


def default_mode() -> str:
    """The mode of the conversation's last planned answer (a follow-up is asked the same way), else
    read everything (lib.asking.plan.DEFAULT_PLAN_MODE: nothing left out unless the user chooses)."""
    from lib.asking.plan import DEFAULT_PLAN_MODE

    for turn in reversed(chat()["turns"]):
        if turn.get("mode") in MODES:
            return turn["mode"]
    return DEFAULT_PLAN_MODE


def proposal(think: bool) -> bool:
    """The plan of the question typed, with its modes, numbers and actions; True when one is shown."""
    ui.plan_run.prefill()
    proposed = chat().get("plan")
    if proposed is None:
        return False
    with st.chat_message("user", avatar=":material/person:"):
        st.markdown(view.escape_markdown(proposed["question"]))
    with st.chat_message("assistant", avatar=":material/account_tree:"):
        try:
            planned = planned_question(proposed)
        except FolioError as exc:
            st.error(view.message_markdown(exc.message), icon=":material/error:")
            _take_back_button(proposed)
            return True
        _choose(planned, proposed)
    return True


def planned_question(proposed: dict) -> dict:
    """{'plan': the auto plan (modes in .alternatives), 'documents': loaded once} for this
    question, planned once per process (with a spinner that says what it does)."""
    s = settings()
    history = tuple((t["question"], t.get("answer") or "") for t in chat()["turns"])
    context = ui.server.real_context()
    shas = tuple(proposed["shas"])
    key = (str(s.data_dir), repr(s), hashlib.sha256("\n".join(shas).encode()).hexdigest(), proposed["question"],
           proposed["think"], history, context)
    with _LOCK:
        if key in _PLANS:
            _PLANS.move_to_end(key)
            return _PLANS[key]
    with st.spinner(f"Planning your question over {view.count_noun(len(shas), 'document')}: ranking them, "
                    "packing them into calls, splitting the long ones at their headings…"):
        entry = _plan(list(shas), proposed, history, context)
    with _LOCK:
        _PLANS[key] = entry
        while len(_PLANS) > KEPT:
            _PLANS.popitem(last=False)
    return entry


def _plan(shas: list[str], proposed: dict, history: tuple, context: int) -> dict:
    from lib.asking.plan import ServerSpeed, make_plan
    from lib.asking.several_calls import plan_question
    from lib.output.plan_job import ranker_for

    s = settings()
    library = store()
    documents = selection_documents(shas)
    try:
        speed = ServerSpeed.from_calls(library.recent_calls(s.host, s.model))
    except FolioError:
        speed = ServerSpeed()
    values = dict(mode="auto", think=proposed["think"], ranker=ranker_for(library), speed=speed, history=history)
    try:
        plan, _backend, _info = plan_question(documents, proposed["question"], s, backend=backend_for(s), **values)
        offline = ""
    except ServerError as exc:  # the server is down: plan for the context the page budgets with, and say so
        plan = make_plan(documents, proposed["question"], s, context=context, **values)
        offline = (f"The server could not be asked ({exc.message}); this plan is for a context of {context:,} "
                   "tokens and may change once it answers.")
    return {"plan": plan, "documents": documents, "offline": offline}


_SELECTION: dict = {}
"""The last selection planned over: {key: documents} (a new question over it loads nothing)."""


def selection_documents(shas: list[str]) -> list:
    """The chosen documents, loaded from the library once per selection (kept for the next question)."""
    key = (str(settings().data_dir), hashlib.sha256("\n".join(shas).encode()).hexdigest())
    with _LOCK:
        documents = _SELECTION.get(key)
    if documents is None:
        documents = store().get_documents(shas)
        with _LOCK:
            _SELECTION.clear()  # one selection at a time: 2,000 documents are about 100 MB in memory
            _SELECTION[key] = documents
    return documents


def modes_of(plan) -> dict:
    """mode -> Plan that can run (auto gives both other modes; a plan that fits one call is 'one')."""
    if plan.mode != "auto":
        return {plan.mode: plan}
    return {m: p for m, p in plan.alternatives.items() if p is not None}


# --- showing it ---------------------------------------------------------------------------


def _choose(planned: dict, proposed: dict) -> None:
    plan = planned["plan"]
    modes = modes_of(plan)
    runnable = [m for m in (*MODES, "one") if m in modes and modes[m].fits]
    st.markdown("**Nothing has been sent yet.** " + (
        "These documents do not fit one call: choose how to ask." if plan.mode == "auto" else ""))
    if planned["offline"]:
        st.warning(view.escape_markdown(planned["offline"]), icon=":material/cloud_off:")
    if not runnable:
        st.error(view.escape_markdown(" ".join(m.message for m in modes.values()) or plan.message),
                 icon=":material/block:")
        _take_back_button(proposed)
        return
    if proposed.get("mode") not in runnable:
        proposed["mode"] = runnable[0]
    mode = st.radio("How to ask", runnable, index=runnable.index(proposed["mode"]), key="plan-mode",
                    format_func=lambda m: plan_view.mode_choice(modes[m].to_json()),
                    help="Most relevant first: one call reading the best-ranked documents that fit. Read everything: "
                         "every document, in several calls that each report the evidence they find, then one call "
                         "composing the answer from it.")
    proposed["mode"] = mode
    chosen = modes[mode]
    _follow_up_note(mode)
    _numbers(chosen)
    if mode == "relevant":
        _ranking(chosen)
    _calls(chosen)
    for note in chosen.notes:
        if not note.startswith(SPLIT_NOTE):  # said under the calls already
            st.caption(view.escape_markdown(note))
    row = st.container(horizontal=True)
    calls = len(chosen.calls) + (1 if chosen.mode == "all" else 0)
    if row.button(f"Ask in {view.count_noun(calls, 'call')}", key="plan-run", type="primary",
                  icon=":material/play_arrow:", help="Send this plan; it runs as a job, so you can leave the page"):
        start(chosen, planned["documents"], proposed)
    if row.button("Take the question back", key="plan-back", icon=":material/undo:",
                  help="Send nothing; the question goes back into the box"):
        take_back(proposed)


def _follow_up_note(mode: str) -> None:
    if not chat()["turns"]:
        return
    if mode == "all":
        st.caption("A follow-up reads every document again with this question (each reading call sees the earlier "
                   "questions; the composing call sees the earlier answers). Chosen like the previous answer; "
                   "change it above.")
    else:
        st.caption("A follow-up ranks the documents again for this question, so it may read other documents than "
                   "the previous answer did; the earlier questions and answers go with it.")


def _numbers(plan) -> None:
    calls = len(plan.calls) + (1 if plan.mode == "all" else 0)
    columns = st.columns(3)
    columns[0].metric("Calls", f"{calls:,}", help="With read everything: the reading calls and one composing call")
    columns[1].metric("Tokens to read", f"{plan.prompt_tokens:,}",
                      help="Every prompt token the calls send, counted exactly (the composing call, which depends "
                           "on the evidence found, aside)")
    columns[2].metric("Estimated time", plan.estimate.text if plan.estimate.seconds is not None else "unknown",
                      help="From the server's measured reading and writing speed on earlier answers; unknown until "
                           "one answer from this server and model has been timed")
    at_once = ""
    if plan.mode == "all":
        from lib.servers.concurrency import concurrency_and_reason

        _n, why = concurrency_and_reason(settings(), _server_info(), None)
        at_once = f" {view.count_noun(plan.concurrency, 'call')} at a time ({advice.for_app(why)})."
    st.caption(f"Context {plan.context:,} tokens per call; documents {plan.document_tokens:,} tokens." + at_once
               + (f" Then 1 call composes the answer from the evidence: {plan.compose_fixed:,} tokens plus the "
                  f"evidence (at most {plan.compose_limit:,})." if plan.mode == "all" else ""))


def _server_info():
    return getattr(backend_for(settings()), "checked", None)


def _ranking(plan) -> None:
    """Most relevant first: which documents are read, and which are not, with their rank."""
    read = [d for d in plan.documents if d.read]
    unread = [d for d in plan.documents if not d.read]
    st.markdown(f"Reads the **{len(read):,}** best-ranked of {view.count_noun(len(plan.documents), 'document')} "
                f"(BM25 over their passages); **{len(unread):,} not read**.")
    rows = [{"Rank": d.rank, "Document": d.name, "Tokens": d.tokens, "Read": "read" if d.read else f"not read: {d.reason}"}
            for d in read + unread[:UNREAD_SHOWN]]
    st.dataframe(pd.DataFrame(rows, columns=["Rank", "Document", "Tokens", "Read"]), hide_index=True,
                 column_config={"Tokens": st.column_config.NumberColumn(format="localized")}, height="content")
    if len(unread) > UNREAD_SHOWN:
        st.caption(f"and {len(unread) - UNREAD_SHOWN:,} more not read, down to rank {unread[-1].rank:,}.")


def _calls(plan) -> None:
    """Each call: what it reads, its tokens."""
    rows = []
    for call in plan.calls[:CALLS_SHOWN]:
        reads = plan_view.reads_text([p.to_json() for p in call.pieces]) if call.pieces else plan_view.reads_text(
            [{"document": d.name} for d in call.documents])
        rows.append({"Call": call.index, "Reads": reads, "Documents": len(call.pieces) or len(call.documents),
                     "Tokens": call.prompt_tokens})
    noun = "reading call" if plan.mode == "all" else "call"
    with st.expander(f"What each call reads ({view.count_noun(len(plan.calls), noun)})",
                     expanded=plan.mode == "all" and len(plan.calls) <= 12, icon=":material/list:"):
        st.dataframe(pd.DataFrame(rows, columns=["Call", "Reads", "Documents", "Tokens"]), hide_index=True,
                     column_config={"Tokens": st.column_config.NumberColumn(format="localized")}, height="content")
        if len(plan.calls) > CALLS_SHOWN:
            st.caption(f"and {len(plan.calls) - CALLS_SHOWN:,} more calls (the Markdown export of the answer lists "
                       "them all).")
        if plan.packing:
            st.caption(view.escape_markdown(f"Packing: {plan.packing}."))
        split = [d for d in plan.documents if d.parts > 1]
        if split:
            st.caption("Split into parts at their chapters, sections and paragraphs: " + view.escape_markdown(
                ", ".join(f"{d.name} ({d.parts} parts)" for d in split[:10])) + (" …" if len(split) > 10 else ""))


# --- acting on it --------------------------------------------------------------------------


def start(plan, documents: list, proposed: dict) -> None:
    """Run the accepted plan as a job (the page follows it: ui/plan_run.py)."""
    from lib.output.plan_job import create_plan_job, find_plan_job

    conversation = chat()
    try:
        # The same plan stopped earlier (cancelled, interrupted) resumes: its finished calls are kept.
        existing = find_plan_job(store(), plan)
        if existing is not None and existing.params.get("conversation_id") != conversation["id"]:
            existing = None  # the same question in another conversation: its own run
        job_id = existing.id if existing is not None else create_plan_job(
            store(), plan, settings(), shas=proposed["shas"], conversation_id=conversation["id"],
            history=[(t["question"], t.get("answer") or "") for t in conversation["turns"]])
    except FolioError as exc:
        st.error(view.message_markdown(exc.message), icon=":material/error:")
        return
    conversation["plan"] = None
    conversation["plan_job"] = job_id
    if existing is None or existing.state != "running":  # running already (another tab): follow it
        ui.plan_run.start(job_id, documents)
    st.rerun()


def take_back(proposed: dict) -> None:
    """Nothing is sent: the question goes back into the box."""
    chat()["plan"] = None
    ui.plan_run.back_in_the_box(proposed["question"])
    st.rerun()


def _take_back_button(proposed: dict) -> None:
    if st.button("Take the question back", key="plan-back", icon=":material/undo:"):
        take_back(proposed)

"""Following a question answered by a plan: the job on the Ask page, call by call.

The plan runs as a job of lib (lib/output/plan_job.py, kind "plan") in the app's background
thread, so it survives page changes, browser reloads and, resumed, an app restart. The page
reads its progress from the store and refreshes it with a fragment every POLL_S seconds:
call i of n and what it reads, tokens read, elapsed, time left, the evidence found so far
(each reading call's items are stored the moment it finishes), and the answer as the
composing call writes it. Cancel keeps the evidence; the page then offers to compose an
answer from it, to resume reading, or to discard the run. When the job ends, its answer (a
turn saved by the job) joins the conversation.
"""

from __future__ import annotations

import threading

import streamlit as st

from lib.asking.plan import duration_text
from lib.errors import FolioError
from lib.library.jobs import JobInfo, Jobs
from lib.output import presenting as view
from ui.resources import backend_for, settings, store
from ui.state import chat, new_conversation, set_selection

POLL_S = 1.0
EVIDENCE_SHOWN = 30
"""Evidence items listed while a plan runs (the newest first); all are in the answer."""
RUNNING = ("running", "queued")

_LIVE: dict[int, dict] = {}
"""job id -> {'phase', 'answer', 'thinking'}: what the composing call has written so far (this process)."""
_LIVE_LOCK = threading.Lock()


def _jobs() -> Jobs:
    return Jobs(store())


# --- starting -----------------------------------------------------------------------------


def run_options(job_id: int, documents: list | None = None) -> dict:
    """What a plan job gets when the app runs it: the documents (when loaded), the shared backend
    (its server check remembered) and a callback keeping the composed answer for the page."""
    with _LIVE_LOCK:
        _LIVE[job_id] = {"phase": "", "answer": "", "thinking": ""}

    def on_event(event) -> None:
        with _LIVE_LOCK:
            live = _LIVE.setdefault(job_id, {"phase": "", "answer": "", "thinking": ""})
            if event.kind == "content":
                live["answer"] += event.text
            elif event.kind == "thinking":
                live["thinking"] += event.text
            elif event.kind in ("status", "round") and event.text:
                live["phase"] = event.text

    options = {"backend": backend_for(settings()), "on_event": on_event}
    if documents:
        options["documents"] = documents
    return options


def start(job_id: int, documents: list | None = None, *, compose: bool = False) -> JobInfo | None:
    """Run (or resume) a plan job in the app's background thread; None (and why) when it cannot."""
    options = run_options(job_id, documents)
    if compose:
        options["compose"] = True
    try:
        return _jobs().start(job_id, options=options)
    except FolioError as exc:
        st.session_state["plan-flash"] = exc.message
        return None


def open_job(info: JobInfo) -> None:
    """Follow a plan job on the Ask page (from the jobs panel): its documents, its conversation."""
    params = info.params
    set_selection(params.get("shas") or [])
    turns, cid = [], params.get("conversation_id")
    if cid is not None:
        try:
            turns = store().get_conversation(cid)["turns"]
        except FolioError:
            cid = None
    new_conversation(conversation_id=cid, turns=turns, plan_job=info.id)
    st.switch_page("pages/ask.py")


# --- following ------------------------------------------------------------------------------


def follow() -> bool:
    """The plan job of this conversation, if any: its progress, or what to do now it stopped.
    True while it runs (the page then takes no new question)."""
    job_id = chat().get("plan_job")
    if job_id is None:
        return False
    flash = st.session_state.pop("plan-flash", None)
    if flash:
        st.error(view.message_markdown(flash), icon=":material/error:")
    try:
        info = _jobs().get(job_id)
    except FolioError:
        chat()["plan_job"] = None  # removed meanwhile (the jobs panel, another tab)
        return False
    if info.status == "done" and isinstance(info.result, dict) and info.result.get("turn_id") is not None:
        adopt(info)
        st.rerun()  # the conversation above was drawn without it
    with st.chat_message("user", avatar=":material/person:"):
        st.markdown(view.escape_markdown(info.params.get("question", "")))
    with st.chat_message("assistant", avatar=":material/account_tree:"):
        st.fragment(_live, run_every=POLL_S if info.state in RUNNING else None)(job_id)
    return info.state in RUNNING


def adopt(info: JobInfo) -> None:
    """The job answered: its turn (saved by the job) joins this conversation."""
    cid = info.result["conversation_id"]
    try:
        turns = store().get_conversation(cid)["turns"]
    except FolioError as exc:
        st.error(view.message_markdown(exc.message), icon=":material/error:")
        turns = chat()["turns"]
    conversation = chat()
    conversation.update(id=cid, turns=turns, plan_job=None)
    with _LIVE_LOCK:
        _LIVE.pop(info.id, None)


def _live(job_id: int) -> None:
    try:
        info = _jobs().get(job_id)
    except FolioError:
        st.rerun()
        return
    seen = st.session_state.get(f"plan-seen-{job_id}")
    st.session_state[f"plan-seen-{job_id}"] = info.state
    if seen in RUNNING and info.state not in RUNNING:
        st.rerun()  # it ended: the whole page shows the answer (or what to do next)
    if info.state in RUNNING:
        _running(info)
    else:
        _stopped(info)


def progress_line(info: JobInfo) -> str:
    """'Call 3 of 12: a.pdf, part 2 of 7 · 245,000 of 1,200,000 tokens read · 2 min elapsed · about 6 min left'."""
    params = info.params
    parts = [(info.current[:1].upper() + info.current[1:]) if info.current else "Starting"]
    planned = params.get("prompt_tokens") or info.work_total
    if planned:
        parts.append(f"{int(min(info.work_done, planned)):,} of {int(planned):,} tokens read")
    parts.append(f"{view.format_seconds(info.elapsed)} elapsed")
    if info.eta_seconds is not None:
        parts.append(f"about {duration_text(info.eta_seconds)} left")
    elif params.get("estimate_s") is not None and not info.done:
        parts.append(f"about {duration_text(params['estimate_s'])} in all (estimated from earlier answers)")
    else:
        parts.append("estimating the time left")
    return " · ".join(parts)


def _running(info: JobInfo) -> None:
    calls = len(info.params.get("calls") or [])
    total = info.total or calls + 1
    head = f"Asked by a plan of {view.count_noun(total, 'call')}: {info.done:,} done"
    if info.failed:
        head += f", {info.failed:,} could not be read"
    st.progress(info.fraction, text=view.escape_markdown(head + " · " + progress_line(info)))
    with _LIVE_LOCK:
        live = dict(_LIVE.get(info.id) or {})
    if live.get("phase"):
        st.caption(view.escape_markdown(live["phase"]))
    if live.get("answer"):
        st.markdown(view.escape_markdown(live["answer"]) + " ▌")
    _evidence(info)
    _failures(info)
    stopping = bool(info.stop_requested)
    if st.button("Cancel", key=f"plan-cancel-{info.id}", icon=":material/stop_circle:", disabled=stopping,
                 help="Stop the calls in flight; the evidence found so far is kept, to compose an answer from it"):
        _said(lambda: _jobs().cancel(info.id))
        st.rerun()
    if stopping:
        st.caption("Stopping: the calls in flight are cancelled; the evidence found is kept.")


def _stopped(info: JobInfo) -> None:
    """Cancelled, interrupted (the app stopped), failed or paused: what was done, and what to do."""
    state = info.state
    calls = len(info.params.get("calls") or [])
    said = {
        "cancelled": "Stopped by you",
        "paused": "Paused",
        "interrupted": "Interrupted: Folio stopped while it ran (the app was closed or restarted)",
        "failed": "Stopped by an error",
        "queued": "Waiting to start",
        "done": "Done",
    }.get(state, state)
    if info.params.get("mode") == "all":
        what = f"{said}, after {info.done:,} of {calls:,} reading calls. The evidence found is kept."
    else:
        what = f"{said}, before the answer's first word: nothing was saved."
    st.warning(view.escape_markdown(what), icon=":material/pause_circle:")
    if info.error:
        st.error(view.message_markdown(info.error), icon=":material/error:")
    found = _evidence(info)
    _failures(info)
    row = st.container(horizontal=True)
    all_mode = info.params.get("mode") == "all"
    if all_mode and row.button("Compose an answer from the evidence found", key=f"plan-compose-{info.id}",
                               type="primary", icon=":material/edit_note:", disabled=not info.done,
                               help="One call answers from the evidence of the calls that finished; the parts not "
                                    "read are named in the answer"):
        start(info.id, compose=True)
        st.rerun()
    if info.resumable and row.button("Resume reading" if all_mode else "Ask again", key=f"plan-resume-{info.id}",
                                     icon=":material/play_arrow:",
                                     help="Continue where it stopped: finished calls are not sent again"):
        start(info.id)
        st.rerun()
    if row.button("Discard", key=f"plan-discard-{info.id}", icon=":material/delete:",
                  help="Forget this run and its evidence; the question goes back into the box"):
        question = info.params.get("question", "")
        if _said(lambda: _jobs().delete(info.id)):
            chat()["plan_job"] = None
            back_in_the_box(question)
        st.rerun()
    if all_mode and not found and info.done:
        st.caption("No call found evidence so far: an answer composed now would say the documents do not answer.")


def _evidence(info: JobInfo) -> int:
    """The evidence found so far (verified items of the finished calls), newest first."""
    from lib.output.plan_job import evidence_of

    if info.params.get("mode") != "all":
        return 0
    try:
        items = evidence_of(_jobs().results(info.id))
    except FolioError:
        return 0
    if not items:
        if info.done:
            st.caption("No evidence found so far.")
        return 0
    with st.expander(f"Evidence found so far: {view.count_noun(len(items), 'item')} from "
                     f"{view.count_noun(len({e.get('call') for e in items}), 'call')}",
                     icon=":material/format_quote:", expanded=False):
        for item in list(reversed(items))[:EVIDENCE_SHOWN]:
            where = item.get("where") or item.get("document") or ""
            st.markdown(f"“{view.escape_markdown(item.get('quote') or '')}” {view.inline_code(item.get('id') or '')} "
                        f"· {view.escape_markdown(where)}" + (f"  \n{view.escape_markdown(item['note'])}"
                                                             if item.get("note") else ""))
        if len(items) > EVIDENCE_SHOWN:
            st.caption(f"and {len(items) - EVIDENCE_SHOWN:,} earlier items.")
    return len(items)


def _failures(info: JobInfo) -> None:
    if not info.failed:
        return
    try:
        failed = _jobs().items(info.id, status="failed", limit=20)
    except FolioError:
        return
    for item in failed:
        st.warning(view.message_markdown(f"Not read after a retry: {item.error}"), icon=":material/block:")


PREFILL = "plan-prefill"


def back_in_the_box(question: str) -> None:
    """Put a question back into the question box on the next run (set before the box is drawn)."""
    st.session_state[PREFILL] = question


def prefill() -> None:
    """Called before the question box is drawn: a question taken back goes into it."""
    question = st.session_state.pop(PREFILL, None)
    if question:
        st.session_state["question"] = question


def _said(action):
    try:
        return action()
    except FolioError as exc:
        st.session_state["plan-flash"] = exc.message
        return None

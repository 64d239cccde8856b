"""A question answered by a plan of several calls, run as a job ("plan"): stored call by call,
resumable after a crash, its answer saved to the conversation as a turn.

    plan = make_plan(...) or plan_question(...)            # shown to the user, accepted
    job_id = create_plan_job(store, plan, settings, shas=shas, conversation_id=cid, history=turns)
    Jobs(store).start(job_id, options={"documents": documents, "on_event": show})   # the app
    Jobs(store).run(job_id)                                 # here (python -m lib jobs resume ID)
    Jobs(store).start(job_id, options={"compose": True})   # after a cancel: answer from the evidence found
    Jobs(store).get(job_id).result  # {"conversation_id", "turn_id", "status", "mode", "calls", ...}

Each reading call is one item of the job (key: the call's key; result: its CallResult with the
evidence it reported; work: its prompt tokens, so the job's estimate follows the tokens read),
stored the moment it finishes: a run stopped anywhere (Cancel, a page change, `kill -9`, a
restart) resumes without sending a finished call again. The last item, "answer", is the
composing call (or the one call of the modes one and relevant); its result names the saved
turn. A call that fails after its retry is a failed item (named in the answer's warnings);
running the job again reads those parts again and answers again.

The job plans the question again before it sends anything (the documents from the library,
the server's context and tokenizer) and refuses when that plan is not the one accepted
(its key: documents, question, settings, earlier questions): what runs is what was shown.
Lives in output because its last step is the turn record (lib/output/turns.py).
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..asking.plan import MODE_NAMES, Plan
from ..asking.several_calls import CallResult, RunState, compose_answer, plan_question, run_plan
from ..config import Settings, load_settings
from ..errors import FolioError, InputError, StoreError
from ..library.jobs import JobContext, JobStopped, Jobs, register_kind
from ..library.store import NotInStore
from . import turns

KIND = "plan"
ANSWER_ITEM = "answer"
"""The item of the composing call (or of the one call of modes one and relevant)."""
JOB_SETTINGS = ("backend", "host", "model", "context", "answer_reserve", "thinking_reserve", "keep_alive",
                "read_timeout", "total_timeout", "connect_timeout")
"""Settings a job keeps, so that a resume (in any process) plans and asks exactly as accepted.
The API key is never stored: a resume takes it from FOLIO_API_KEY."""
TITLE_CHARS = 80


# ----------------------------------------------------------------------------- creating


def plan_params(plan: Plan, settings: Settings, *, shas: Sequence[str], conversation_id: int | None = None,
                history: Sequence = (), concurrency: int | None = None) -> dict:
    """What a plan job stores: enough to plan the question again and to show it (never the documents)."""
    from ..asking.prompt import history_turn

    calls = [{"index": c.index, "key": c.key, "kind": c.kind, "label": c.label, "tokens": c.prompt_tokens,
              "documents": len(c.pieces) or len(c.documents)} for c in plan.calls]
    return {
        "question": plan.question, "mode": plan.mode, "think": plan.think, "plan_key": plan.key,
        "shas": list(shas), "settings": {k: getattr(settings, k) for k in JOB_SETTINGS},
        "conversation_id": conversation_id, "history": [list(history_turn(h)) for h in history],
        "concurrency": concurrency, "calls": calls, "context": plan.context,
        "prompt_tokens": plan.prompt_tokens, "document_tokens": plan.document_tokens,
        "documents": len(plan.documents), "read": sum(1 for d in plan.documents if d.read),
        "compose_fixed": plan.compose_fixed, "estimate_s": plan.estimate.seconds,
        "asked_at": turns.now_iso(),
    }


def plan_title(plan: Plan) -> str:
    """'Read everything (13 calls): Who inherits the estate?'"""
    calls = len(plan.calls) + (1 if plan.mode == "all" else 0)
    question = " ".join(plan.question.split())
    if len(question) > TITLE_CHARS:
        question = question[: TITLE_CHARS - 1] + "…"
    return f"{MODE_NAMES.get(plan.mode, plan.mode).capitalize()} ({calls} call{'s' if calls != 1 else ''}): {question}"


def create_plan_job(store, plan: Plan, settings: Settings, *, shas: Sequence[str], conversation_id: int | None = None,
                    history: Sequence = (), concurrency: int | None = None) -> int:
    """A queued job for an accepted plan (mode one, relevant or all); start or run it with Jobs."""
    if plan.mode not in ("one", "relevant", "all") or not plan.fits or not plan.calls:
        raise InputError(plan.message or "Choose a plan that can run (most relevant first, or read everything).")
    params = plan_params(plan, settings, shas=shas, conversation_id=conversation_id, history=history,
                         concurrency=concurrency)
    return Jobs(store).create(KIND, plan_title(plan), params, key=plan.key)


def find_plan_job(store, plan: Plan):
    """The unfinished job of this very plan (same documents, question and settings), or None."""
    return Jobs(store).find(KIND, plan.key, unfinished=True)


# ----------------------------------------------------------------------------- running


def ranker_for(store) -> Callable:
    """The library's own ranking (its index; fast at 10,000 documents)."""
    return lambda question, documents: store.rank_documents(question, [d.sha256 for d in documents])


def job_settings(params: dict) -> Settings:
    """The stored settings over this process's environment (data folder, API key)."""
    return load_settings(**{k: v for k, v in (params.get("settings") or {}).items() if k in JOB_SETTINGS})


def run_plan_job(job: JobContext) -> dict:
    """The work function of "plan" jobs (see the module docstring). The error that ends a run is
    also appended, unchanged, to the runtime option "errors" (a list), so a command can exit by it."""
    try:
        return _run_plan_job(job)
    except FolioError as exc:
        if isinstance(job.options.get("errors"), list):
            job.options["errors"].append(exc)
        raise


def _run_plan_job(job: JobContext) -> dict:
    params = job.params
    settings = job_settings(params)
    documents = job.options.get("documents") or _documents(job.store, params["shas"])
    history = [tuple(h) for h in params.get("history") or []]
    on_event = job.options.get("on_event") or (lambda event: None)
    _note(job, "planning the question again (nothing is sent twice)")
    plan, backend, info = plan_question(
        documents, params["question"], settings, mode=params["mode"], think=params["think"],
        backend=job.options.get("backend"), ranker=ranker_for(job.store), concurrency=params.get("concurrency"),
        history=history)
    if plan.key != params["plan_key"]:
        raise InputError("This plan is no longer the one you accepted: the documents, the server's context or "
                         "the settings changed since. Ask the question again to see the new plan.")
    reading = plan.calls if plan.mode == "all" else []
    job.set_total(len(reading) + 1, work=sum(c.prompt_tokens for c in plan.calls) + plan.compose_fixed)
    state = RunState(plan.key)
    for key, result in job.results().items():
        if key != ANSWER_ITEM and isinstance(result, dict) and result.get("status") == "done":
            state.results[key] = result
    if job.options.get("compose") and plan.mode == "all":
        events = compose_answer(plan, state, settings, backend=backend, server_info=info, cancel=job.stop_event,
                                concurrency=params.get("concurrency"))
    else:
        events = run_plan(plan, settings, backend=backend, server_info=info, cancel=job.stop_event, state=state,
                          concurrency=params.get("concurrency"))
    answer = _follow(job, plan, events, on_event)
    if answer is None or _no_word(answer):
        job.checkpoint()  # raises JobStopped: cancelled (or paused) before any answer, the evidence kept
        raise JobStopped("cancel")
    earlier = job.results().get(ANSWER_ITEM) or {}
    if params.get("conversation_id") is None and earlier.get("conversation_id") is not None:
        params = dict(params, conversation_id=earlier["conversation_id"])  # answered before: the same conversation
    turn_id, conversation_id = save_planned_turn(job.store, params, answer, documents, settings)
    result = outcome(answer, conversation_id, turn_id)
    final = plan.calls[-1] if plan.mode != "all" else None
    job.record(ANSWER_ITEM, result, label="the answer", work=final.prompt_tokens if final else plan.compose_fixed)
    return result


def _follow(job: JobContext, plan: Plan, events, on_event: Callable):
    """Store each reading call as it finishes; return the final answer (None when stopped first)."""
    answer = None
    for event in events:
        on_event(event)
        call = event.call
        if event.kind == "call_start" and call is not None:
            _note(job, f"reading call {call.index} of {len(plan.calls)}: {call.label}" if call.kind == "evidence"
                  else f"condensing the evidence (call {call.index})")
        elif event.kind == "status" and call is not None and call.kind == "compose":
            _note(job, "composing the answer from the evidence")
        elif event.kind == "plan" and plan.mode != "all":
            _note(job, f"one call reading {plan.calls[0].label}")
        elif event.kind in ("call_done", "call_failed") and call is not None and call.kind == "evidence":
            _record(job, call, event.result)
        elif event.kind == "final":
            answer = event.answer
    return answer


def _record(job: JobContext, call, result: CallResult) -> None:
    seconds = float((result.record or {}).get("total_s") or 0.0)
    if result.done:
        job.record(call.key, result.to_json(), label=call.label, work=call.prompt_tokens, seconds=seconds)
    else:
        job.record_failure(call.key, f"Call {call.index} ({call.label}): {result.error}", label=call.label,
                           work=call.prompt_tokens, seconds=seconds)


def _note(job: JobContext, label: str) -> None:
    """The job's current step, as the pages show it (a stop asked meanwhile is seen by the run)."""
    try:
        job.checkpoint(label)
    except JobStopped:
        pass  # job.stop_event is set: run_plan stops its calls and reports what it kept


def _no_word(answer) -> bool:
    """Stopped before the first word of the answer (nothing to keep as a turn)."""
    return answer.status == "stopped" and not (answer.answer or answer.thinking)


def _documents(store, shas: Sequence[str]) -> list:
    try:
        return store.get_documents(list(shas))
    except NotInStore as exc:
        raise InputError(f"A document of this question is no longer in the library ({exc}): choose the documents "
                         "again and ask again.") from exc


# ----------------------------------------------------------------------------- the answer


def save_planned_turn(store, params: dict, answer, documents: Sequence, settings: Settings) -> tuple[int, int]:
    """The answer as a turn of its conversation (a new one when it has none, or it was deleted)."""
    pending = turns.new_pending(params["question"], params["think"], list(documents), params.get("prompt_tokens", 0))
    pending["started"] = params.get("asked_at") or pending["started"]
    conversation = {"id": params.get("conversation_id"), "turns": [], "error": None, "pending": None, "unsent": None}
    if conversation["id"] is not None:
        try:
            conversation["turns"] = store.get_conversation(conversation["id"])["turns"]
        except NotInStore:
            conversation["id"] = None  # deleted meanwhile (another tab): the answer starts a new one
    turn = turns.with_context(turns.turn_from_answer(answer, pending), pending, settings)
    turn["plan_job"] = True
    turns.save_turn({"chat": conversation, "pending": pending, "store": store, "settings": settings,
                     "documents": documents}, turn)
    if conversation["error"] or turn.get("id") is None:
        raise StoreError(conversation["error"] or "The answer could not be saved.")
    return turn["id"], conversation["id"]


def outcome(answer, conversation_id: int, turn_id: int) -> dict:
    """The job's result: where the answer is, and what became of it, in a few numbers."""
    statuses = [c.status for c in answer.citations]
    return {
        "conversation_id": conversation_id, "turn_id": turn_id, "status": answer.status, "mode": answer.mode,
        "calls": len(answer.calls), "unread": len(answer.unread), "rounds": answer.rounds,
        "evidence": sum(1 for e in answer.evidence if e.get("status") == "verified"),
        "citations": len(statuses), "verified": statuses.count("verified"), "no_answer": bool(answer.no_answer),
        "answer": (answer.answer or "")[:300],
    }


def evidence_of(results: dict) -> list[dict]:
    """Verified evidence items of finished reading calls (a job's item results), in call order."""
    items = []
    for key, result in results.items():
        if key == ANSWER_ITEM or not isinstance(result, dict):
            continue
        items += [dict(e, call=result.get("index")) for e in result.get("evidence") or [] if e.get("status") == "verified"]
    items.sort(key=lambda e: (e.get("call") or 0))
    return items


register_kind(KIND, run_plan_job)

__all__ = ["KIND", "ANSWER_ITEM", "plan_params", "plan_title", "create_plan_job", "find_plan_job", "run_plan_job",
           "save_planned_turn", "outcome", "evidence_of", "ranker_for", "job_settings"]

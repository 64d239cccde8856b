"""Turn records: the plain, JSON-safe dict one question and its answer are kept as.

The Ask page gathers a *job* (new_job: the conversation, the pending answer, the store,
the settings) while Streamlit calls are still allowed; finishing it runs in a `finally`,
also after Stop ended the script, so everything here works on plain objects only.
A question that got no word of an answer (an error, or Stop before the first word) is not
saved: the conversation keeps it as `unsent`, for the page to show and offer again.
A turn holds lib's Answer.to_json() (minus the budget) plus what a page shows:
citations with their document's sha and format, page text, the question's context.
"""

from __future__ import annotations

import datetime as _dt
import threading

from ..config import Settings
from ..errors import FolioError
from .exports import page_text

PUBLIC_SETTINGS = ("backend", "host", "model", "context", "answer_reserve", "thinking_reserve", "think", "keep_alive")
STOPPED_REASON = "Stopped by you; the part that arrived is kept."
STOPPED_EARLY_REASON = "Stopped by you before the model's first word."


def now_iso() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def new_pending(question: str, think: bool, documents: list, prompt_tokens: int) -> dict:
    """The answer being streamed: what arrived so far and what finishing it needs."""
    return {
        "question": question,
        "think": think,
        "answer": "",
        "thinking": "",
        "phase": "",
        "started": now_iso(),
        "shas": [d.sha256 for d in documents],
        "names": [d.name for d in documents],
        "formats": {d.sha256: d.format for d in documents},
        "prompt_tokens": prompt_tokens,
        "done": threading.Event(),
    }


def new_job(conversation: dict, pending: dict, *, store, settings: Settings, documents: list) -> dict:
    """Everything finish_job needs, as plain objects (the conversation dict is held by reference)."""
    return {"chat": conversation, "pending": pending, "store": store, "settings": settings,
            "documents": documents}


def finish_job(job: dict, final) -> None:
    """Turn what the stream ended with into a saved turn (or an error to show).

    Runs in a `finally`, also after Stop ended the script: no Streamlit calls and no
    session state here, only the plain objects gathered by start_job.
    """
    try:
        _finish(job, final)
    finally:
        job["chat"]["pending"] = None
        job["pending"]["done"].set()


def _finish(job: dict, final) -> None:
    conversation, pending = job["chat"], job["pending"]
    arrived = bool(pending["answer"] or pending["thinking"])
    if isinstance(final, Exception):
        conversation["error"] = (
            final.message if isinstance(final, FolioError)
            else f"Unexpected problem while answering ({type(final).__name__}: {final})."
        )
        if not arrived:
            conversation["unsent"] = unsent(pending, "error", conversation["error"])
            return
        final = None
    answer = getattr(final, "answer", None)
    if not arrived and _no_word(answer):
        # No word of an answer: nothing to keep in the history; the page offers the question again.
        if answer is None or answer.status == "stopped":
            reason = answer.interrupt_reason if answer is not None and answer.interrupt_reason else STOPPED_EARLY_REASON
            conversation["unsent"] = unsent(pending, "stopped", reason)
        else:
            conversation["error"] = answer.interrupt_reason or "The server ended the answer before its first word."
            conversation["unsent"] = unsent(pending, "error", conversation["error"])
        return
    turn = turn_from_answer(answer, pending) if answer is not None else interrupted_turn(pending, job["documents"])
    save_turn(job, with_context(turn, pending, job["settings"]))


def _no_word(answer) -> bool:
    """Stopped or interrupted before any text (a finished empty answer is still an answer)."""
    if answer is None:
        return True
    return bool(answer.interrupted or answer.status in ("stopped", "interrupted")) and not (answer.answer or answer.thinking)


def unsent(pending: dict, why: str, message: str) -> dict:
    """A question that got no answer (the server failed, or Stop came before any word): shown
    with its message and offered again, never saved as a conversation.

    {'question', 'think', 'shas', 'why': 'error' | 'stopped', 'message', 'prefilled': False}
    """
    return {"question": pending["question"], "think": pending["think"], "shas": list(pending["shas"]),
            "why": why, "message": message, "prefilled": False}


def turn_from_answer(answer, pending: dict) -> dict:
    """A plain, JSON-safe turn from lib's Answer plus what the page knows."""
    record = dict(answer.to_json())
    record["citations"] = [citation_record(c, pending) for c in answer.citations]
    record["interrupted"] = bool(answer.interrupted)
    record["reason"] = answer.interrupt_reason
    record["no_answer"] = bool(answer.no_answer)
    record.pop("budget", None)  # recomputable; keeps saved turns small
    return record


def citation_record(citation, pending: dict) -> dict:
    """A citation (object or dict) with its document's sha and format, passage and page text."""
    data = citation.to_json() if hasattr(citation, "to_json") else dict(citation)
    sha = getattr(citation, "sha256", None) or data.get("sha256")
    data["sha"] = sha
    data["format"] = pending["formats"].get(sha) if sha else None
    data["passage_text"] = data.get("passage") or getattr(citation, "passage", "")
    where = page_text(data)
    if where:
        data["page_text"] = where
    return data


def interrupted_turn(pending: dict, documents: list) -> dict:
    """A turn from the text that arrived before a stop, its citations checked."""
    from ..asking.citations import check_answer

    try:
        report = check_answer(pending["answer"], documents)
        citations = report.citations
        warnings = report.warnings if pending["answer"] else []
    except Exception:  # noqa: BLE001 - keep the text even if checking fails
        citations, warnings = [], []
    return {
        "answer": pending["answer"],
        "thinking": pending["thinking"],
        "citations": [citation_record(c, pending) for c in citations],
        "warnings": [w for w in warnings if "cites no passage" not in w],
        "calls": [],
        "interrupted": True,
        "reason": STOPPED_REASON if (pending["answer"] or pending["thinking"]) else STOPPED_EARLY_REASON,
        "status": "stopped",
        "no_answer": False,
    }


def with_context(record: dict, pending: dict, s: Settings) -> dict:
    """Add the question, documents, time and model to `record` (in place; returned).

    `model` is the model that answered, as the server said (lib's Answer.model); the name
    Folio was configured with is `configured_model`.
    """
    record.update(
        question=pending["question"],
        think=pending["think"],
        documents=pending["names"],
        shas=pending["shas"],
        asked_at=pending["started"],
        model=record.get("model") or s.model,
        configured_model=record.get("configured_model") or s.model,
        backend=s.backend,
    )
    return record


def save_turn(job: dict, turn: dict) -> None:
    """Keep the turn in the conversation and in the store (a new conversation on the first)."""
    conversation, library, s = job["chat"], job["store"], job["settings"]
    turn["follow_up"] = bool(conversation["turns"])
    turn["slowest_s_per_token"] = slowest_read(conversation["turns"])
    conversation["turns"].append(turn)
    try:
        if conversation["id"] is None:
            recorded = public_settings(s) | {"answered_by": turn.get("model") or s.model}
            conversation["id"] = library.create_conversation(turn["shas"], turn["question"][:120], recorded)
        turn["id"] = library.add_turn(conversation["id"], turn["question"], turn, public_settings(s))
    except FolioError as exc:
        conversation["error"] = f"The answer is shown but could not be saved: {exc.message}"


def slowest_read(turns: list[dict]) -> float | None:
    """Seconds per prompt token of the slowest earlier read (a full one) in this conversation."""
    rates = [
        call["prompt_eval_s"] / call["server_prompt_tokens"]
        for turn in turns
        for call in turn.get("calls") or []
        if call.get("prompt_eval_s") and call.get("server_prompt_tokens")
    ]
    return max(rates, default=None)


def public_settings(s: Settings) -> dict:
    """The settings a saved conversation records (no data folder, no limits)."""
    return {k: getattr(s, k) for k in PUBLIC_SETTINGS}

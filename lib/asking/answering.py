"""Ask the whole document set one question in one honest model call.

    for event in ask_stream(documents, "Who pays the rent?", settings):
        if event.kind == "content":
            print(event.text, end="")
        elif event.kind == "final":
            answer = event.answer          # Answer: text, citations, warnings, calls, status

Steps: unique passage IDs; the server checked (once per backend: remembered until an error);
the real context (min of configured and trained); one PromptBuild, from which the budget
(refuse BEFORE sending when the documents do not fit), the request (the same num_ctx every
time, num_keep = the exact system block, num_predict = the reserved room) and the refusal
derive; stream thinking and content apart; compare the server's prompt count with Folio's;
verify the citations.

Every time reported is measured from the moment the user asked (`asked_at`), across every
request the question makes (check, the server's prompt count, the answer), and Stop
(`cancel`) ends any of them within a fraction of a second. `Answer.status` is the one state to
show first: 'answered', 'prompt_cut' (the server read fewer prompt tokens than Folio sent:
do not rely on the answer), 'interrupted' (the server ended it early) or 'stopped' (by you).
"""

from __future__ import annotations

import inspect
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from ..config import Settings
from ..documents import Document
from ..errors import BudgetExceeded, Cancelled, InputError, ServerError, ThinkingUnsupported
from ..reading.passages import assign_unique_ids
from ..reading.tokens import counter_warning, get_counter
from ..servers.base import OPENAI_CONTEXT_ADVICE, context_warning, real_context
from ..servers.exchange import Watch
from ..servers.protocol import CallStats, ChatRequest, ServerInfo
from . import prompt
from .budget import Budget, budget_of
from .citations import Citation, check_answer
from .reuse import cache_reuse

STATUSES = ("answered", "prompt_cut", "interrupted", "stopped")
"""Answer.status, most usual first (see the module docstring)."""


@dataclass
class Answer:
    """One answered (or interrupted) question, with everything needed to check it."""

    question: str
    answer: str = ""
    thinking: str = ""
    citations: list[Citation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    interrupted: bool = False
    interrupt_reason: str = ""
    no_answer: bool = False
    """The model said the documents do not answer the question."""
    uncited: bool = False
    """The answer cites no passage at all."""
    think: bool = False
    model: str = ""
    """The model that answered, as the server says (the configured name when it does not say)."""
    budget: Budget | None = None
    configured_model: str = ""
    """The model name Folio was configured with (--model, FOLIO_MODEL, the Settings page)."""
    status: str = "answered"
    """answered | prompt_cut | interrupted | stopped: the state to show first (see STATUSES)."""
    prompt_check: dict = field(default_factory=dict)
    """{'state': 'read_all' | 'read_fewer' | 'read_more' | 'not_reported' | 'not_checked',
    'sent': tokens Folio (or the server's tokenizer) counted, 'read': tokens the server read,
    'reference': 'Folio' | "the server's tokenizer"}"""
    timings: dict = field(default_factory=dict)
    """Seconds: {'check_s', 'prompt_s', 'count_s'} how long the server check (0 when remembered;
    it runs while the prompt is built), building the prompt and the server's prompt count took;
    {'sent_s', 'first_token_s', 'total_s'} from the moment the user asked."""
    server: dict = field(default_factory=dict)
    """What the server says about itself (ServerInfo.to_json(): kind, display, version, ...)."""
    context: dict = field(default_factory=dict)
    """{'configured', 'server' (what the server says it holds, None when it does not say),
    'used' (the budget's context), 'source': 'server' | 'configured'}"""

    @property
    def turn(self) -> tuple[str, str]:
        """(question, answer): one item of `history` for a follow-up question."""
        return self.question, self.answer

    def to_json(self) -> dict:
        """The `python -m lib ask --json` object (keys are only ever added)."""
        return {
            "answer": self.answer,
            "thinking": self.thinking,
            "citations": [c.to_json() for c in self.citations],
            "warnings": list(self.warnings),
            "calls": [dict(c) for c in self.calls],
            "interrupted": self.interrupted,
            "interrupt_reason": self.interrupt_reason,
            "no_answer": self.no_answer,
            "uncited": self.uncited,
            "question": self.question,
            "think": self.think,
            "model": self.model,
            "budget": self.budget.to_dict() if self.budget else None,
            "status": self.status,
            "prompt_check": dict(self.prompt_check),
            "configured_model": self.configured_model or self.model,
            "timings": dict(self.timings),
            "server": dict(self.server),
            "context": dict(self.context),
        }


@dataclass
class AskEvent:
    """What ask_stream yields: status lines, streamed text, then one final Answer."""

    kind: str
    """status | thinking | content | final"""
    text: str = ""
    answer: Answer | None = None


# --------------------------------------------------------------------------- preparing


def prepare_documents(documents: Sequence[Document]) -> list[Document]:
    """The documents in prompt order with passage IDs unique across this request."""
    if not documents:
        raise InputError("No documents selected: add at least one document to ask about.")
    return assign_unique_ids(prompt.sorted_documents(documents))


def resolve_context(settings: Settings, info: ServerInfo) -> tuple[int, str | None]:
    """The real context (min of configured and trained) and a warning when it is smaller (the
    same words the server's check uses, so the two are one warning)."""
    context = real_context(settings.context, info.trained_context)
    if info.backend == "ollama":
        return context, context_warning(settings.model, settings.context, info.trained_context)
    return context, context_warning(info.model or settings.model, settings.context, info.trained_context,
                                    OPENAI_CONTEXT_ADVICE)


def check_thinking(think: bool, info: ServerInfo, model: str) -> None:
    """Refuse thinking on a model that says it cannot think (unknown capabilities pass)."""
    if think and info.capabilities and not info.supports_thinking:
        raise ThinkingUnsupported(
            f"Model '{model}' cannot think (its capabilities: {', '.join(info.capabilities)}). "
            "Ask without thinking (--no-think, or untick 'Thinking') or use a model that can, such as Qwen3."
        )


def build_request(built: prompt.PromptBuild, settings: Settings, budget: Budget) -> ChatRequest:
    """Every field Folio sends: the same num_ctx each time, pinned system block, reserved room."""
    return ChatRequest(
        model=settings.model,
        messages=[dict(m) for m in built.messages],
        think=built.think,
        num_ctx=budget.context,
        num_keep=built.num_keep,
        num_predict=budget.reserved,
        keep_alive=settings.keep_alive,
        shift=True,
        **prompt.sampling(built.think),
    )


def refuse_if_over(budget: Budget) -> None:
    """Folio never sends a prompt that does not fit."""
    if not budget.fits:
        raise BudgetExceeded(budget.refusal_message(), budget.overrun, budget.documents)


def refuse_if_server_over(server_count: int | None, budget: Budget) -> None:
    """The same refusal when the server's own count (where it has one) says it does not fit."""
    if server_count is None:
        return
    room = budget.context - budget.reserved
    if server_count > room:
        raise BudgetExceeded(
            f"The server counts {server_count:,} prompt tokens but only {room:,} fit next to the "
            f"{budget.reserved:,} reserved for the answer (context {budget.context:,}): over by "
            f"{server_count - room:,}. {budget.advice()}",
            server_count - room,
            budget.documents,
        )


# ------------------------------------------------------------------------------ checking


def prompt_mismatch(own: int, server: int | None, tolerance: tuple[int, int], reference: str) -> str | None:
    """A warning when the server read a different number of prompt tokens than Folio sent.

    `tolerance` is (how many fewer, how many more) tokens the server may read without a warning.
    """
    fewer, more = tolerance
    if server is None or own - fewer <= server <= own + more:
        return None
    if server < own:
        return (
            f"The server did not read what Folio sent: it read {server:,} prompt tokens, "
            f"{reference} counts {own:,} ({own - server:,} fewer). Part of the documents may have "
            "been cut; do not rely on this answer. Check the server with `python -m lib doctor`."
        )
    return (
        f"The server did not read what Folio sent: it read {server:,} prompt tokens, {reference} "
        f"counts {own:,} ({server - own:,} more). The server's model may not tokenize like Qwen3, "
        "so Folio's budget may be too small for it."
    )


def prompt_state(own: int, server: int | None, tolerance: tuple[int, int]) -> str:
    """'read_all', 'read_fewer', 'read_more' or 'not_reported': how much of the prompt the server read."""
    fewer, more = tolerance
    if server is None:
        return "not_reported"
    if server < own - fewer:
        return "read_fewer"
    if server > own + more:
        return "read_more"
    return "read_all"


def call_record(documents: Sequence[Document], request: ChatRequest, own: int, stats: CallStats | None,
                started: float, first_token_s: float | None) -> dict:
    """One entry of Answer.calls. `started` is when the user asked (time.monotonic()): the
    first token and the total are counted from there, across every request of the question."""
    stats = stats or CallStats()
    return {
        "documents": [d.name for d in documents],
        "prompt_tokens": own,
        "server_prompt_tokens": stats.prompt_eval_count,
        "num_ctx": request.num_ctx,
        "num_keep": request.num_keep,
        "num_predict": request.num_predict,
        "think": request.think,
        "first_token_s": stats.first_token_s if stats.first_token_s is not None else first_token_s,
        "total_s": round(time.monotonic() - started, 4),
        "done_reason": stats.done_reason,
        "cached_tokens": stats.cached_tokens,
        "prompt_eval_s": stats.prompt_eval_duration_s,
        "eval_count": stats.eval_count,
        "eval_s": stats.eval_duration_s,
        "load_s": stats.load_duration_s,
        "sent_s": stats.sent_s,
        "model": stats.model or request.model,
        "requested_model": request.model,
        "cache": cache_reuse(stats, own),
    }


# ------------------------------------------------------------------------------- asking


def ask_stream(
    documents: Sequence[Document],
    question: str,
    settings: Settings,
    *,
    think: bool | None = None,
    history: Sequence = (),
    backend=None,
    cancel: threading.Event | Watch | None = None,
    server_info: ServerInfo | None = None,
    asked_at: float | None = None,
) -> Iterator[AskEvent]:
    """Stream the answer to `question`; the last event is kind='final' with the Answer.

    `asked_at` is time.monotonic() when the user asked (default: now); `cancel` is the Stop
    event (or a Watch carrying both). Raises BudgetExceeded (before anything is sent),
    InputError, or a ServerError raised before streaming began; after that, problems end the
    answer as interrupted. Stop at any step ends with a final Answer whose status is 'stopped'.
    """
    if not question.strip():
        raise InputError("The question is empty: type a question about the documents.")
    think = settings.think if think is None else bool(think)
    watch = Watch.of(cancel, settings, started=asked_at)
    documents = prepare_documents(documents)
    if backend is None:
        from ..servers import make_backend

        backend = make_backend(settings)
    answer = Answer(question=question, think=think, model=settings.model, configured_model=settings.model)
    try:
        checking = None
        if server_info is None:
            if getattr(backend, "checked", None) is None:
                yield AskEvent("status", f"Checking the model server at {settings.host}")
            checking = _Background(_call, backend.check, watch)  # the prompt does not need the server
        counter = get_counter()
        building = time.monotonic()
        built = prompt.build_prompt(documents, question, think=think, counter=counter, history=history)
        answer.timings["prompt_s"] = round(time.monotonic() - building, 4)
        if checking is not None:
            server_info = checking.result()
        answer.timings["check_s"] = checking.seconds if checking is not None else 0.0
        budget, request = _prepare(answer, built, settings, server_info, counter)
        documents = list(built.documents)
        counting = _count_status(backend)
        if counting:
            yield AskEvent("status", counting)
        started_count = time.monotonic()
        server_count = _call(backend.count_prompt, request, watch)
        answer.timings["count_s"] = round(time.monotonic() - started_count, 4)
        refuse_if_server_over(server_count, budget)
    except Cancelled as exc:
        _stopped(answer, f"{exc} No part of an answer had arrived.", watch)
        yield AskEvent("final", answer=answer)
        return
    except ServerError:
        _forget(backend)
        raise

    yield AskEvent("status", f"Sending {budget.prompt:,} prompt tokens to {server_info.model or settings.model}")
    progress = yield from _stream(backend, request, answer, watch)
    _finish(answer, documents, request, budget, server_count, progress, watch)
    if answer.interrupted and not watch.stopped:
        _forget(backend)  # the server misbehaved: check it again before the next question
    yield AskEvent("final", answer=answer)


def _prepare(answer: Answer, built: prompt.PromptBuild, settings: Settings, server_info: ServerInfo, counter):
    """The checked server's facts into the answer; the budget and the request of the one
    PromptBuild of this question (refused here when it does not fit)."""
    answer.model = server_info.model or settings.model
    answer.server = server_info.to_json()
    context, warning = resolve_context(settings, server_info)
    for note in [*server_info.warnings, warning]:
        if note and note not in answer.warnings:
            answer.warnings.append(note)
    answer.context = {
        "configured": settings.context,
        "server": server_info.trained_context,
        "used": context,
        "source": "server" if server_info.trained_context else "configured",
    }
    check_thinking(answer.think, server_info, settings.model)
    budget = budget_of(built, settings, context=context)
    answer.budget = budget
    if counter_warning(counter):
        answer.warnings.append(counter_warning(counter))
    refuse_if_over(budget)
    return budget, build_request(built, settings, budget)


class _Background:
    """fn(*args) in a worker thread; result() waits for it and re-raises what it raised."""

    def __init__(self, fn, *args):
        self._result = self._error = None
        self.seconds = 0.0
        """How long fn took."""
        self._thread = threading.Thread(target=self._run, args=(fn, args), name="folio-check", daemon=True)
        self._thread.start()

    def _run(self, fn, args) -> None:
        started = time.monotonic()
        try:
            self._result = fn(*args)
        except BaseException as exc:  # handed to the caller's thread
            self._error = exc
        finally:
            self.seconds = round(time.monotonic() - started, 4)

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


def _count_status(backend) -> str | None:
    """What to show while the server counts the prompt (llama-cpp-python reads it to count)."""
    flavour = getattr(backend, "flavour", None)
    if flavour == "llama-cpp-python":
        return "The model is reading the prompt (the server counts it by reading it; the answer then starts at once)"
    if flavour in ("vllm", "llama.cpp"):
        return "The server is counting the prompt"
    return None


def _call(method, *args):
    """Call a backend method with the question's Watch as its last argument, when it takes one
    (backends written before the Watch existed are still accepted)."""
    *plain, watch = args
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return method(*args)
    return method(*args) if len(parameters) > len(plain) else method(*plain)


def _forget(backend) -> None:
    forget = getattr(backend, "forget", None)
    if callable(forget):
        forget()


def _stopped(answer: Answer, reason: str, watch: Watch) -> None:
    _interrupt(answer, reason)
    answer.status = "stopped"
    answer.timings["total_s"] = watch.elapsed()
    answer.prompt_check = {"state": "not_checked"}


class _Progress:
    """What one streamed call has produced so far."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self.started = watch.started
        self.first_token_s: float | None = None
        self.stats: CallStats | None = None

    def mark(self) -> None:
        if self.first_token_s is None:
            self.first_token_s = self.watch.elapsed()


def _stream(backend, request: ChatRequest, answer: Answer, watch: Watch):
    """Pass thinking and content through; return how the call went (a _Progress)."""
    progress = _Progress(watch)
    try:
        for event in _call(backend.chat, request, watch):
            if event.kind in ("thinking", "content"):
                progress.mark()
                if event.kind == "thinking":
                    answer.thinking += event.text
                else:
                    answer.answer += event.text
                yield AskEvent(event.kind, event.text)
            elif event.kind == "done":
                progress.stats = event.stats
                return progress
            elif event.kind == "interrupted":
                progress.stats = event.stats
                _interrupt(answer, event.reason or "The answer stopped before it was finished.")
                return progress
        _interrupt(answer, "The server's stream ended without saying the answer was finished.")
    except ServerError as exc:
        # Before any text arrived this is a plain server problem; after, keep what arrived.
        if not (answer.answer or answer.thinking):
            _forget(backend)
            raise
        _interrupt(answer, f"{exc} The part that arrived is kept.")
    return progress


def _interrupt(answer: Answer, reason: str) -> None:
    answer.interrupted = True
    answer.interrupt_reason = reason
    answer.warnings.append(f"Interrupted: {reason}")


def _finish(answer: Answer, documents: list[Document], request: ChatRequest, budget: Budget,
            server_count: int | None, progress: _Progress, watch: Watch) -> None:
    """Statistics, the prompt-count check and the citations, once the stream has ended."""
    own = budget.prompt
    stats = progress.stats
    record = call_record(documents, request, own, stats, watch.started, progress.first_token_s)
    record["server_counted_prompt"] = server_count
    answer.calls.append(record)
    if stats is not None and stats.model:
        answer.model = stats.model
    answer.timings.update(sent_s=record["sent_s"], first_token_s=record["first_token_s"], total_s=record["total_s"])
    reference, expected = ("the server's tokenizer", server_count) if server_count is not None else ("Folio", own)
    answer.prompt_check = {"state": "not_checked", "sent": expected, "read": None, "reference": reference}
    if stats is not None and not answer.interrupted:
        tolerance = _tolerance(budget, server_count)
        answer.prompt_check.update(state=prompt_state(expected, stats.prompt_eval_count, tolerance),
                                   read=stats.prompt_eval_count)
        mismatch = prompt_mismatch(expected, stats.prompt_eval_count, tolerance, reference)
        if mismatch:
            answer.warnings.append(mismatch)
        if stats.done_reason == "length":
            answer.warnings.append(
                f"The answer was cut at the {request.num_predict:,} tokens reserved for it. Ask a narrower "
                "question, or raise FOLIO_ANSWER_RESERVE" + (" / FOLIO_THINKING_RESERVE." if request.think else ".")
            )
    answer.status = _status(answer, watch)
    report = check_answer(answer.answer, documents)
    answer.citations = report.citations
    answer.no_answer = report.no_answer
    answer.uncited = report.uncited and not answer.interrupted
    answer.warnings.extend(w for w in report.warnings if not (answer.interrupted and "cites no passage" in w))


def _status(answer: Answer, watch: Watch) -> str:
    if answer.interrupted:
        return "stopped" if watch.stopped else "interrupted"
    if answer.prompt_check.get("state") == "read_fewer":
        return "prompt_cut"
    return "answered"


def _tolerance(budget: Budget, server_count: int | None) -> tuple[int, int]:
    """(fewer, more) tokens the server may read than expected: the chat-template overhead."""
    if server_count is not None:
        return 4, 4  # the server counted the rendered prompt itself; allow a BOS or two
    overhead = max(budget.template, 8)
    if budget.is_estimate:
        # An estimate over-counts by design (up to 2.4x on Chinese technical text), so only a
        # server reading far less, or more than the estimate, is suspicious.
        return int(budget.prompt * 0.65), overhead
    return overhead, overhead


def ask(
    documents: Sequence[Document],
    question: str,
    settings: Settings,
    *,
    think: bool | None = None,
    history: Sequence = (),
    backend=None,
    cancel: threading.Event | Watch | None = None,
    server_info: ServerInfo | None = None,
    asked_at: float | None = None,
) -> Answer:
    """ask_stream, consumed: the final Answer."""
    final = None
    for event in ask_stream(documents, question, settings, think=think, history=history,
                            backend=backend, cancel=cancel, server_info=server_info, asked_at=asked_at):
        if event.kind == "final":
            final = event.answer
    return final

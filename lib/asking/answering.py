"""Ask the whole document set one question in one honest model call.

    for event in ask_stream(documents, "Who pays the rent?", settings):
        if event.kind == "content":
            print(event.text, end="")
        elif event.kind == "final":
            answer = event.answer          # Answer: text, citations, warnings, calls

Steps: unique passage IDs; the real context (min of configured and trained, checked once);
the budget (refuse BEFORE sending when the documents do not fit); one request with the
same num_ctx every time, num_keep = the exact system block, num_predict = the reserved room;
stream thinking and content apart; compare the server's prompt count with Folio's; verify
the citations.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from ..config import Settings
from ..documents import Document
from ..errors import BudgetExceeded, InputError, ServerError, ThinkingUnsupported
from ..reading.passages import assign_unique_ids
from ..reading.tokens import counter_warning, get_counter
from ..servers.base import context_warning, real_context
from ..servers.protocol import CallStats, ChatRequest, ServerInfo
from . import prompt
from .budget import Budget, budget_of
from .citations import Citation, check_answer


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
    budget: Budget | None = None

    @property
    def turn(self) -> tuple[str, str]:
        """(question, answer): one item of `history` for a follow-up question."""
        return self.question, self.answer

    def to_json(self) -> dict:
        """The `python -m lib ask --json` object."""
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
    """The real context (min of configured and trained) and a warning when it is smaller."""
    context = real_context(settings.context, info.trained_context)
    return context, context_warning(settings.model, settings.context, info.trained_context)


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


def call_record(documents: Sequence[Document], request: ChatRequest, own: int, stats: CallStats | None,
                started: float, first_token_s: float | None) -> dict:
    """One entry of Answer.calls."""
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
    cancel: threading.Event | None = None,
    server_info: ServerInfo | None = None,
) -> Iterator[AskEvent]:
    """Stream the answer to `question`; the last event is kind='final' with the Answer.

    Raises BudgetExceeded (before anything is sent), InputError, or a ServerError raised
    before streaming began; after that, problems end the answer as interrupted.
    """
    if not question.strip():
        raise InputError("The question is empty: type a question about the documents.")
    think = settings.think if think is None else bool(think)
    documents = prepare_documents(documents)
    if backend is None:
        from ..servers import make_backend

        backend = make_backend(settings)
    if server_info is None:
        yield AskEvent("status", f"Checking the model server at {settings.host}")
        server_info = backend.check()
    answer = Answer(question=question, think=think, model=settings.model)
    context, warning = resolve_context(settings, server_info)
    if warning:
        answer.warnings.append(warning)
    check_thinking(think, server_info, settings.model)

    counter = get_counter()
    built = prompt.build_prompt(documents, question, think=think, counter=counter, history=history)
    documents = list(built.documents)
    budget = budget_of(built, settings, context=context)
    answer.budget = budget
    if counter_warning(counter):
        answer.warnings.append(counter_warning(counter))
    refuse_if_over(budget)
    request = build_request(built, settings, budget)
    server_count = backend.count_prompt(request)
    refuse_if_server_over(server_count, budget)

    yield AskEvent("status", f"Sending {budget.prompt:,} prompt tokens to {settings.model}")
    progress = yield from _stream(backend, request, answer, cancel)
    _finish(answer, documents, request, budget, server_count, progress)
    yield AskEvent("final", answer=answer)


class _Progress:
    """What one streamed call has produced so far."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.first_token_s: float | None = None
        self.stats: CallStats | None = None

    def mark(self) -> None:
        if self.first_token_s is None:
            self.first_token_s = round(time.monotonic() - self.started, 4)


def _stream(backend, request: ChatRequest, answer: Answer, cancel):
    """Pass thinking and content through; return how the call went (a _Progress)."""
    progress = _Progress()
    try:
        for event in backend.chat(request, cancel):
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
            raise
        _interrupt(answer, f"{exc} The part that arrived is kept.")
    return progress


def _interrupt(answer: Answer, reason: str) -> None:
    answer.interrupted = True
    answer.interrupt_reason = reason
    answer.warnings.append(f"Interrupted: {reason}")


def _finish(answer: Answer, documents: list[Document], request: ChatRequest, budget: Budget,
            server_count: int | None, progress: _Progress) -> None:
    """Statistics, the prompt-count check and the citations, once the stream has ended."""
    own = budget.prompt
    stats = progress.stats
    answer.calls.append(call_record(documents, request, own, stats, progress.started, progress.first_token_s))
    answer.calls[-1]["server_counted_prompt"] = server_count
    reference, expected = ("the server's tokenizer", server_count) if server_count is not None else ("Folio", own)
    if stats is not None and not answer.interrupted:
        mismatch = prompt_mismatch(expected, stats.prompt_eval_count, _tolerance(budget, server_count), reference)
        if mismatch:
            answer.warnings.append(mismatch)
        if stats.done_reason == "length":
            answer.warnings.append(
                f"The answer was cut at the {request.num_predict:,} tokens reserved for it. Ask a narrower "
                "question, or raise FOLIO_ANSWER_RESERVE" + (" / FOLIO_THINKING_RESERVE." if request.think else ".")
            )
    report = check_answer(answer.answer, documents)
    answer.citations = report.citations
    answer.no_answer = report.no_answer
    answer.uncited = report.uncited and not answer.interrupted
    answer.warnings.extend(w for w in report.warnings if not (answer.interrupted and "cites no passage" in w))


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
    cancel: threading.Event | None = None,
    server_info: ServerInfo | None = None,
) -> Answer:
    """ask_stream, consumed: the final Answer."""
    final = None
    for event in ask_stream(documents, question, settings, think=think, history=history,
                            backend=backend, cancel=cancel, server_info=server_info):
        if event.kind == "final":
            final = event.answer
    return final

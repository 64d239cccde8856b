"""Running a plan: the reading calls side by side, evidence as it arrives, then one answer.

    plan = make_plan(documents, question, settings, mode="all", context=context)
    state = RunState(plan.key)                        # or RunState.from_json(stored) to resume
    for event in run_plan(plan, settings, state=state, cancel=cancel):
        event.kind     # plan | call_start | call_retry | call_done | call_failed | call_skipped |
                       # round | status | thinking | content | cancelled | final
        event.progress # calls done / total, tokens read, elapsed, estimated remaining, evidence found
        event.answer   # on 'final': a PlannedAnswer (an Answer with .plan, .evidence, .unread)
    # after 'cancelled': compose_answer(plan, state, settings) answers from the evidence kept

Modes one and relevant are one call: lib/asking/answering.py answers, unchanged. Mode all:
the reading calls run `concurrency` at a time (each with its own cancel-aware stream); every
call keeps the single-call guarantees (the same num_ctx, num_keep = its exact system block,
truncate false, the server's prompt count checked), is counted again before sending (it must
equal the plan), and a call that fails is retried once, then named in the answer's warnings.
The state is plain data (finished calls' results keyed by call), so a job can store it and a
resumed run skips the calls already done. Evidence that does not fit one call is condensed in
rounds (quotes and IDs kept, checked again); the composing call's citations are verified
against the original passages, and one that cites a passage no call reported is invalid.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from ..config import Settings
from ..documents import Document
from ..errors import (BudgetExceeded, FolioError, InputError, ModelNotFound, ServerError, ServerTooOld,
                      ServerUnreachable, ThinkingUnsupported)
from ..reading.tokens import get_counter
from ..servers.protocol import CallStats, ChatRequest, ServerInfo
from . import prompt
from .answering import (Answer, ask_stream, build_request, call_record, check_thinking, prompt_mismatch,
                        refuse_if_over, refuse_if_server_over, resolve_context)
from .budget import Budget, budget_of
from .citations import check_answer
from .evidence import (EVIDENCE_PROMPT, Evidence, Readable, compose_messages, parse_evidence, reduce_messages,
                       render_item, says_nothing)
from .parts import Piece, render_piece
from .plan import Plan, PlannedCall, reading_messages

FATAL = (ServerUnreachable, ModelNotFound, ThinkingUnsupported, ServerTooOld)
"""Errors that end the whole run after the retry: every other call would fail the same way."""
ATTEMPTS = 2
"""A failing call is tried this many times before it is named in the warnings."""
MAX_ROUNDS = 3
"""Rounds of condensing evidence before the excess is left out (and named)."""
POLL_S = 0.05
COMPOSE_MARGIN = 16
"""Tokens kept in hand when evidence items, counted one by one, are fitted into the composing call."""


# ----------------------------------------------------------------------------- plain data


@dataclass
class CallResult:
    """How one call went: its text, the evidence it reported, and its Answer.calls record."""

    key: str
    index: int
    kind: str
    """evidence | reduce | compose | answer"""
    status: str
    """done | failed | cancelled"""
    attempts: int = 0
    text: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    record: dict = field(default_factory=dict)
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    nothing: bool = False
    """The call said its portion holds nothing relevant."""

    @property
    def done(self) -> bool:
        return self.status == "done"

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["evidence"] = [e.to_json() for e in self.evidence]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "CallResult":
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["evidence"] = [Evidence.from_json(e) for e in data.get("evidence") or []]
        return cls(**values)


@dataclass
class RunState:
    """A run's finished calls, keyed by call: serialisable, so a job can store and resume it."""

    plan_key: str
    results: dict[str, dict] = field(default_factory=dict)
    """call key -> CallResult.to_json()"""

    def result(self, key: str) -> CallResult | None:
        data = self.results.get(key)
        return CallResult.from_json(data) if data else None

    def is_done(self, key: str) -> bool:
        return (self.results.get(key) or {}).get("status") == "done"

    def record(self, result: CallResult) -> None:
        self.results[result.key] = result.to_json()

    def evidence(self, plan: Plan) -> list[Evidence]:
        """Every item the plan's finished reading calls reported, in plan order."""
        items = []
        for call in plan.calls:
            result = self.result(call.key)
            if result and result.done:
                items += result.evidence
        return items

    def to_json(self) -> dict:
        return {"plan_key": self.plan_key, "results": dict(self.results)}

    @classmethod
    def from_json(cls, data: dict) -> "RunState":
        return cls(data["plan_key"], dict(data.get("results") or {}))


@dataclass
class Progress:
    """Where a run stands, for a progress bar."""

    calls_done: int
    calls_failed: int
    calls_total: int
    tokens_read: int
    tokens_total: int
    elapsed_s: float
    remaining_s: float | None
    evidence: int
    """Verified evidence items found so far."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class PlannedAnswer(Answer):
    """An Answer that records its plan, the evidence it was composed from and what was not read."""

    mode: str = "one"
    plan: dict | None = None
    evidence: list[dict] = field(default_factory=list)
    unread: list[dict] = field(default_factory=list)
    """[{document, sha256, part, parts, reason}] for every piece a failed or cancelled call left unread."""
    rounds: int = 0
    """Rounds of condensing evidence before the composing call."""

    def to_json(self) -> dict:
        data = super().to_json()
        data.update(mode=self.mode, plan=self.plan, evidence=list(self.evidence), unread=list(self.unread),
                    rounds=self.rounds)
        return data

    @classmethod
    def from_answer(cls, answer: Answer, **extra) -> "PlannedAnswer":
        values = {f.name: getattr(answer, f.name) for f in dataclasses.fields(Answer)}
        return cls(**values, **extra)


@dataclass
class RunEvent:
    """What run_plan yields (see the module docstring for the kinds)."""

    kind: str
    text: str = ""
    call: PlannedCall | None = None
    result: CallResult | None = None
    evidence: list[Evidence] = field(default_factory=list)
    progress: Progress | None = None
    state: RunState | None = None
    answer: PlannedAnswer | None = None


# ----------------------------------------------------------------------------- the server


def connect(settings: Settings, backend=None, server_info: ServerInfo | None = None, think: bool | None = None):
    """(backend, server_info, real context, warning): the server checked once for a plan and its run."""
    if backend is None:
        from ..servers import make_backend

        backend = make_backend(settings)
    if server_info is None:
        server_info = backend.check()
    context, warning = resolve_context(settings, server_info)
    check_thinking(settings.think if think is None else think, server_info, settings.model)
    return backend, server_info, context, warning


RATIO_SAMPLE_CHARS = 2000
"""Characters of the selection's own text a server is asked to count, to compare tokenizers."""
RATIO_MARGIN = 1.01


def server_token_ratio(backend, settings: Settings, documents: Sequence[Document]) -> float:
    """Tokens the server counts per token Folio counts, on the selection's own text (1.0 when the
    server cannot count, or counts no more than Folio: Qwen3 served by vLLM or llama.cpp)."""
    sample = "\n\n".join(d.text[: RATIO_SAMPLE_CHARS // max(1, min(len(documents), 4))] for d in documents[:4])
    messages = [{"role": "system", "content": EVIDENCE_PROMPT}, {"role": "user", "content": sample}]
    request = ChatRequest(model=settings.model, messages=messages, think=False, num_ctx=settings.context,
                          num_keep=0, num_predict=1, keep_alive=settings.keep_alive, **prompt.sampling(False))
    try:
        server = backend.count_prompt(request)
    except ServerError:
        return 1.0
    own = get_counter().count(prompt.render_chat(messages, False))
    if not server or not own or server <= own:
        return 1.0
    return round(server / own * RATIO_MARGIN, 4)


def plan_question(documents: Sequence[Document], question: str, settings: Settings, *, mode: str = "auto",
                  think: bool | None = None, backend=None, server_info: ServerInfo | None = None, ranker=None,
                  speed=None, concurrency: int | None = None, history: Sequence = ()):
    """(plan, backend, server_info): the server checked once, its context and tokenizer taken into account."""
    from .plan import default_concurrency, make_plan

    backend, server_info, context, warning = connect(settings, backend, server_info, think)
    concurrency = default_concurrency(settings, server_info, concurrency)
    values = dict(mode=mode, think=think, context=context, ranker=ranker, speed=speed, concurrency=concurrency,
                  history=history)
    plan = make_plan(documents, question, settings, **values)
    if plan.mode == "all" or "all" in plan.alternatives:
        ratio = server_token_ratio(backend, settings, documents)
        if ratio > 1.0:  # a tokenizer other than Qwen3's: pack below the budget by that much
            plan = make_plan(documents, question, settings, server_ratio=ratio, **values)
    if warning:
        plan.notes.insert(0, warning)
    return plan, backend, server_info


# ----------------------------------------------------------------------------- running a plan


def run_plan(
    plan: Plan,
    settings: Settings,
    *,
    backend=None,
    server_info: ServerInfo | None = None,
    concurrency: int | None = None,
    cancel: threading.Event | None = None,
    state: RunState | None = None,
) -> Iterator[RunEvent]:
    """Send the plan's calls; the last event is 'final' (with the answer) or 'cancelled'.

    Raises InputError when the plan cannot run (it does not fit, or the server holds less
    than it was planned for), a ServerError raised before anything was read, or one that
    makes every call fail (unreachable server, missing model) after the retry.
    """
    if not plan.fits or not plan.calls:
        raise InputError(plan.message or "This plan reads nothing.")
    backend, server_info, context, warning = connect(settings, backend, server_info, plan.think)
    if context < plan.context:
        raise InputError(f"The plan was made for a context of {plan.context:,} tokens but the server holds "
                         f"{context:,}: make the plan again.")
    if plan.mode in ("one", "relevant"):
        yield from _run_answer(plan, settings, backend, server_info, cancel)
        return
    run = _Run(plan, settings, backend, cancel, state or RunState(plan.key), concurrency or plan.concurrency,
               server_info)
    if warning:
        run.warnings.append(warning)
    yield from run.read()
    if run.cancelled or (cancel is not None and cancel.is_set()):
        yield RunEvent("cancelled", text=run.cancel_text(), state=run.state, progress=run.progress())
        return
    yield from run.compose()


def compose_answer(plan: Plan, state: RunState, settings: Settings, *, backend=None,
                   server_info: ServerInfo | None = None, cancel: threading.Event | None = None,
                   concurrency: int | None = None) -> Iterator[RunEvent]:
    """Answer from the evidence the state holds (after a cancel, or from a stored run), naming what was not read."""
    backend, server_info, _context, _warning = connect(settings, backend, server_info, plan.think)
    run = _Run(plan, settings, backend, cancel, state, concurrency or plan.concurrency, server_info)
    yield from run.compose()


def _run_answer(plan: Plan, settings: Settings, backend, server_info, cancel) -> Iterator[RunEvent]:
    """One call (modes one and relevant): lib/asking/answering.py, unchanged."""
    call = plan.calls[0]
    yield RunEvent("plan", call=call)
    for event in ask_stream(list(call.documents), plan.question, settings, think=plan.think, history=plan.history,
                            backend=backend, cancel=cancel, server_info=server_info):
        if event.kind != "final":
            yield RunEvent(event.kind, text=event.text)
            continue
        answer = PlannedAnswer.from_answer(event.answer, mode=plan.mode, plan=plan.to_json())
        for record in answer.calls:
            record.update(index=call.index, key=call.key, kind=call.kind, planned_prompt_tokens=call.prompt_tokens,
                          reads=call.to_json()["reads"], status="cancelled" if answer.interrupted else "done",
                          attempts=1)
        answer.warnings[:0] = plan.notes
        yield RunEvent("final", answer=answer)


class _Named:
    """Anything call_record can name (it reads .name)."""

    def __init__(self, name: str):
        self.name = name


class _Run:
    """One run of a read-everything plan: the reading calls, then condensing and composing."""

    def __init__(self, plan: Plan, settings: Settings, backend, cancel, state: RunState, concurrency: int,
                 server_info: ServerInfo | None = None):
        if state.plan_key != plan.key:
            raise InputError("The stored run belongs to another plan (other documents, question or settings): "
                             "start it again.")
        self.plan, self.settings, self.backend, self.state = plan, settings, backend, state
        self.server_info = server_info
        self.first_word: float | None = None
        """When the composing call's first word arrived (time.monotonic())."""
        self.cancel = cancel
        self.stop = threading.Event()
        self.concurrency = max(1, int(concurrency))
        self.counter = get_counter()
        self.started = time.monotonic()
        self.read_now = 0
        """Tokens read by calls of this run (not earlier runs), for the remaining-time estimate."""
        self.warnings: list[str] = []
        self.cancelled = False
        self.calls_after: list[dict] = []
        """Records of condensing and composing calls."""
        self._index: dict[str, str] | None = None
        self._batches: dict[str, list[Evidence]] = {}
        self._condensed: dict[str, CallResult] = {}

    # --- progress ------------------------------------------------------------------------

    def progress(self) -> Progress:
        results = [self.state.result(c.key) for c in self.plan.calls]
        done = [c for c, r in zip(self.plan.calls, results) if r and r.done]
        failed = sum(1 for r in results if r and r.status == "failed")
        read = sum(c.prompt_tokens for c in done)
        elapsed = time.monotonic() - self.started
        left = self.plan.prompt_tokens - read
        if self.read_now:
            remaining = elapsed / self.read_now * left
        else:
            remaining = self.plan.estimate.seconds
        evidence = sum(1 for e in self.state.evidence(self.plan) if e.verified)
        return Progress(len(done), failed, len(self.plan.calls), read, self.plan.prompt_tokens, round(elapsed, 2),
                        round(remaining, 1) if remaining is not None else None, evidence)

    def cancel_text(self) -> str:
        done = sum(1 for c in self.plan.calls if self.state.is_done(c.key))
        return (f"Stopped after {done} of {len(self.plan.calls)} reading calls; the evidence found is kept. "
                "Compose an answer from it, or run the plan again to read the rest.")

    # --- reading ---------------------------------------------------------------------------

    def read(self) -> Iterator[RunEvent]:
        yield RunEvent("plan", state=self.state, progress=self.progress())
        pending = []
        for call in self.plan.calls:
            if self.state.is_done(call.key):
                yield RunEvent("call_skipped", call=call, result=self.state.result(call.key), state=self.state)
            else:
                pending.append(call)
        fatal = yield from self._run_all(pending, self._read_call)
        if fatal is not None:
            raise fatal

    def _run_all(self, calls: Sequence[PlannedCall], work: Callable) -> Iterator[RunEvent]:
        """Run `work(call, post)` for each call, `concurrency` at a time; yield their events as they
        arrive. Returns the fatal error that stopped the run, if any."""
        events: queue.Queue = queue.Queue()
        fatal = None
        finished = False
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="folio-call")
        try:
            for call in calls:
                pool.submit(self._guarded, work, call, events.put)
            remaining = len(calls)
            while remaining:
                if self.cancel is not None and self.cancel.is_set() and not self.stop.is_set():
                    self.stop.set()
                    self.cancelled = True
                    yield RunEvent("status", text="Stopping: the calls in flight are cancelled; the evidence found is kept.")
                try:
                    kind, call, payload = events.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if kind == "result":
                    remaining -= 1
                    yield from self._finished(call, payload)
                elif kind == "fatal":
                    fatal = fatal or payload
                    self.stop.set()
                else:
                    yield RunEvent(kind, text=payload, call=call, state=self.state, progress=self.progress())
            finished = True
        finally:
            if not finished:
                self.stop.set()  # the consumer went away: stop the calls in flight
            pool.shutdown(wait=False, cancel_futures=True)
        return fatal

    def _guarded(self, work: Callable, call: PlannedCall, post: Callable) -> None:
        try:
            result = work(call, post)
        except _Fatal as exc:
            post(("fatal", call, exc.error))
            result = CallResult(call.key, call.index, call.kind, "failed", ATTEMPTS, error=str(exc.error))
        except Exception as exc:  # a bug in one call must not hang the run
            result = CallResult(call.key, call.index, call.kind, "failed", 1,
                                error=f"Unexpected failure: {type(exc).__name__}: {exc}")
        post(("result", call, result))

    def _finished(self, call: PlannedCall, result: CallResult) -> Iterator[RunEvent]:
        if result.status == "cancelled" and not self.cancelled:
            self.cancelled = self.cancel is not None and self.cancel.is_set()
        if call.kind == "evidence":
            self.state.record(result)
            if result.done:
                self.read_now += call.prompt_tokens
        else:
            self.calls_after.append(result.record)
            self._condensed[call.key] = result
        kind = {"done": "call_done", "failed": "call_failed"}.get(result.status, "call_cancelled")
        yield RunEvent(kind, text=result.error, call=call, result=result, evidence=list(result.evidence),
                       state=self.state, progress=self.progress())

    def _read_call(self, call: PlannedCall, post: Callable) -> CallResult:
        """One reading call: counted again, sent (retried once), its evidence checked."""
        if self.stop.is_set():
            return CallResult(call.key, call.index, call.kind, "cancelled", 0, error="Stopped before it was sent.")
        post(("call_start", call, call.label))
        text = "".join(render_piece(p) for p in call.pieces)
        messages = reading_messages(text, self.plan.question, self.plan.history)
        layout = self.plan.layout
        built = self._built(messages, False, {p.name: p.tokens for p in call.pieces},
                            layout.system_tokens if layout else None, layout.question_tokens if layout else 0)
        result = self._send(call, built, [_Named(p.name) for p in call.pieces], post)
        if result.done:
            result.nothing = says_nothing(result.text)
            result.evidence = [] if result.nothing else parse_evidence(
                result.text, self._readable(call.pieces), call.index, self._elsewhere)
            if not result.evidence and not result.nothing and result.text.strip():
                result.warnings.append(f"Call {call.index} ({call.label}) reported neither evidence nor "
                                       "'nothing relevant'; its reply could not be read as evidence.")
            result.record["evidence"] = sum(1 for e in result.evidence if e.verified)
        return result

    def _built(self, messages: list[dict], think: bool, parts: dict, system: int | None, question: int):
        rendered = prompt.render_chat(messages, think)
        total = self.counter.count(rendered)
        if system is None:
            system = self.counter.count(prompt.system_block(messages[0]["content"]))
        return prompt.PromptBuild(documents=(), messages=tuple(messages), think=think, rendered=rendered, total=total,
                                  system=system, question=question, history=0, per_document=parts,
                                  counter=self.counter.kind)

    def _send(self, call: PlannedCall, built: prompt.PromptBuild, named: list, post: Callable,
              stream: Callable | None = None) -> CallResult:
        """Send one call, retrying once; a CallResult whatever happens (except a fatal error)."""
        budget = budget_of(built, self.settings, context=self.plan.context)
        result = CallResult(call.key, call.index, call.kind, "failed")
        for attempt in range(1, ATTEMPTS + 1):
            if self.stop.is_set():
                result.status, result.error = "cancelled", "Stopped by you."
                break
            result.attempts = attempt
            outcome = self._attempt(call, built, budget, named, stream)
            if outcome.status != "retry":
                result = outcome.merge_into(result)
                break
            result.error = outcome.error
            result.record = outcome.record or result.record
            if attempt < ATTEMPTS:
                post(("call_retry", call, f"Call {call.index} ({call.label}) failed: {outcome.error} Trying once more."))
            elif outcome.fatal is not None:
                raise _Fatal(outcome.fatal)
        if not result.record:
            result.record = self._record(call, named, built, budget, None, None, time.monotonic(), None)
        result.record.update(status=result.status, attempts=result.attempts, error=result.error)
        return result

    def _attempt(self, call: PlannedCall, built, budget: Budget, named: list, stream) -> "_Outcome":
        started = time.monotonic()
        try:
            refuse_if_over(budget)
            request = build_request(built, self.settings, budget)
            server_count = self.backend.count_prompt(request)
            refuse_if_server_over(server_count, budget)
            text, stats, reason = self._stream(request, stream)
        except BudgetExceeded as exc:
            return _Outcome("failed", error=str(exc))
        except FATAL as exc:
            return _Outcome("retry", error=str(exc), fatal=exc)
        except ServerError as exc:
            return _Outcome("retry", error=str(exc))
        record = self._record(call, named, built, budget, request, stats, started, server_count)
        if reason is not None:
            if self.stop.is_set():
                return _Outcome("cancelled", error=reason, text=text, record=record)
            return _Outcome("retry", error=reason, record=record)
        outcome = _Outcome("done", text=text, record=record)
        outcome.warnings += self._checks(call, built, budget, request, stats, server_count)
        return outcome

    def _stream(self, request: ChatRequest, stream) -> tuple[str, CallStats | None, str | None]:
        """(content, stats, None) or (what arrived, stats, why it was interrupted)."""
        text = []
        for event in self.backend.chat(request, self.stop):
            if event.kind == "content":
                text.append(event.text)
            if event.kind in ("thinking", "content") and stream is not None:
                stream(event)
            elif event.kind == "done":
                return "".join(text), event.stats, None
            elif event.kind == "interrupted":
                return "".join(text), event.stats, event.reason or "The answer stopped before it was finished."
        return "".join(text), None, "The server's stream ended without saying the answer was finished."

    def _record(self, call, named, built, budget, request, stats, started, server_count) -> dict:
        request = request or build_request(built, self.settings, budget)
        record = call_record(named, request, built.total, stats, started, stats.first_token_s if stats else None)
        record.update(index=call.index, key=call.key, kind=call.kind, planned_prompt_tokens=call.prompt_tokens,
                      server_counted_prompt=server_count,
                      reads=[p.to_json() for p in call.pieces])
        return record

    def _checks(self, call, built, budget, request, stats, server_count) -> list[str]:
        warnings = []
        if built.total != call.prompt_tokens:
            warnings.append(f"Call {call.index} sent {built.total:,} prompt tokens where the plan counted "
                            f"{call.prompt_tokens:,}: please report this.")
        if stats is not None:
            reference, expected = ("the server's tokenizer", server_count) if server_count is not None else ("Folio", built.total)
            tolerance = (4, 4) if server_count is not None else (max(budget.template, 8), max(budget.template, 8))
            mismatch = prompt_mismatch(expected, stats.prompt_eval_count, tolerance, reference)
            if mismatch:
                warnings.append(f"Call {call.index} ({call.label}): {mismatch}")
            if stats.done_reason == "length":
                what = f"Call {call.index} ({call.label})" if call.kind == "evidence" else (
                    "The answer" if call.kind == "compose" else f"Condensing call {call.index}")
                warnings.append(f"{what} was cut at the {request.num_predict:,} tokens reserved for its reply; what "
                                "arrived is kept. Raise FOLIO_ANSWER_RESERVE" + (
                                    " / FOLIO_THINKING_RESERVE." if request.think else "."))
        return warnings

    # --- evidence ----------------------------------------------------------------------------

    def _readable(self, pieces: Sequence[Piece]) -> Readable:
        readable = Readable()
        for piece in pieces:
            readable.add(piece.document, piece.passages, piece.name)
        return readable

    def _elsewhere(self, passage_id: str) -> str | None:
        """The piece of the selection holding an ID (for the reason an item is invalid)."""
        if self._index is None:
            self._index = {p.id.lower(): piece.name for call in self.plan.calls for piece in call.pieces
                           for p in piece.passages}
        return self._index.get(passage_id.lower())

    def _passage_table(self, items: Sequence[Evidence]) -> Readable:
        """The passages evidence items cite, for checking what a condensing round copied."""
        wanted = {i.id.lower(): i for i in items}
        readable = Readable()
        for call in self.plan.calls:
            for piece in call.pieces:
                readable.add(piece.document, [p for p in piece.passages if p.id.lower() in wanted], piece.name)
        return readable

    # --- composing ---------------------------------------------------------------------------

    def compose(self) -> Iterator[RunEvent]:
        answer = PlannedAnswer(question=self.plan.question, think=self.plan.think, model=self.settings.model,
                               configured_model=self.settings.model, mode="all", plan=self.plan.to_json(),
                               server=self.server_info.to_json() if self.server_info is not None else {})
        answer.warnings += self.warnings
        results = [self.state.result(c.key) for c in self.plan.calls]
        answer.calls = [r.record for r in results if r and r.record]
        for call, result in zip(self.plan.calls, results):
            self._account(answer, call, result)
        items = [e for e in self.state.evidence(self.plan) if e.verified]
        answer.evidence = [e.to_json() for e in self.state.evidence(self.plan)]
        _note_rejected(answer, self.state.evidence(self.plan))
        if not items:
            yield from self._no_evidence(answer)
            return
        items = yield from self._condense(answer, items)
        if self.stop.is_set() and self.cancel is not None and self.cancel.is_set():
            answer.interrupted, answer.interrupt_reason = True, "Stopped by you while condensing the evidence."
            answer.status = "stopped"
            answer.calls += self.calls_after
            answer.timings = self._timings()
            yield RunEvent("final", answer=answer, state=self.state, progress=self.progress())
            return
        yield from self._compose_call(answer, items)

    def _account(self, answer: PlannedAnswer, call: PlannedCall, result: CallResult | None) -> None:
        """Warnings of a reading call, and every piece it left unread, named."""
        if result is not None:
            answer.warnings += result.warnings
        if result is not None and result.done:
            return
        reason = result.error if result is not None and result.error else "it was not run (stopped before it)."
        for piece in call.pieces:
            answer.unread.append({**piece.to_json(), "reason": reason, "call": call.index})
            what = piece.document.name if piece.whole else f"Part {piece.part} of {piece.parts} of {piece.document.name}"
            answer.warnings.append(f"{what} was not read: {reason}")

    def _no_evidence(self, answer: PlannedAnswer) -> Iterator[RunEvent]:
        """No call found anything: the answer says so without a composing call."""
        answer.answer = prompt.NO_ANSWER
        answer.no_answer = True
        read = sum(1 for c in self.plan.calls if self.state.is_done(c.key))
        answer.warnings.append(f"None of the {read} reading call(s) that finished found evidence for this question, "
                               "so no composing call was made.")
        answer.timings = self._timings()
        yield RunEvent("final", answer=answer, state=self.state, progress=self.progress())

    def _compose_limits(self, think: bool) -> tuple[int, int]:
        """(tokens of the composing prompt without evidence, the most it may take; items are
        counted one by one, so a few tokens are kept in hand)."""
        fixed = self.counter.count(prompt.render_chat(compose_messages([], self.plan.question, self.plan.history), think))
        return fixed, self.plan.context - self.settings.reserved(think) - COMPOSE_MARGIN

    def _condense(self, answer: PlannedAnswer, items: list[Evidence]):
        """Rounds that condense evidence too large for the composing call; the excess, if any, named."""
        fixed, limit = self._compose_limits(self.plan.think)
        for round_number in range(1, MAX_ROUNDS + 1):
            sizes = self.counter.count_many([render_item(i) + "\n" for i in items]) if hasattr(
                self.counter, "count_many") else [self.counter.count(render_item(i) + "\n") for i in items]
            if fixed + sum(sizes) <= limit or self.stop.is_set():
                return items
            yield RunEvent("round", text=f"The evidence ({sum(sizes):,} tokens) exceeds one call: condensing it, "
                                         f"round {round_number}.")
            answer.rounds = round_number
            condensed = yield from self._round(round_number, items, sizes)
            if sum(self.counter.count(render_item(i) + "\n") for i in condensed) > 0.9 * sum(sizes):
                items = condensed
                break
            items = condensed
        return self._cut_to_fit(answer, items, fixed, limit)

    def _cut_to_fit(self, answer: PlannedAnswer, items: list[Evidence], fixed: int, limit: int) -> list[Evidence]:
        kept, used = [], fixed
        for item in items:
            size = self.counter.count(render_item(item) + "\n")
            if used + size > limit:
                break
            kept.append(item)
            used += size
        left = items[len(kept):]
        if left:
            answer.warnings.append(
                f"{len(left)} evidence item(s) did not fit the composing call even after condensing and were left "
                "out: " + ", ".join(f"[{i.id}]" for i in left[:40]) + (" ..." if len(left) > 40 else "") + ".")
        return kept

    def _round(self, number: int, items: list[Evidence], sizes: list[int]):
        """One condensing round: evidence in batches that fit a call, each asked to keep what matters."""
        fixed = self.counter.count(prompt.render_chat(reduce_messages([], self.plan.question), False))
        room = self.plan.context - self.settings.reserved(False) - fixed
        batches, batch, used = [], [], 0
        for item, size in zip(items, sizes):
            if batch and used + size > room:
                batches.append(batch)
                batch, used = [], 0
            batch.append(item)
            used += size
        batches.append(batch)
        first = len(self.plan.calls) + len(self.calls_after) + 1
        calls = [PlannedCall(first + k, f"reduce-{number}-{k + 1}", "reduce", 0, self.settings.reserved(False), False)
                 for k in range(len(batches))]
        self._batches.update(zip([c.key for c in calls], batches))
        fatal = yield from self._run_all(calls, self._reduce_call)
        if fatal is not None:
            raise fatal
        kept: list[Evidence] = []
        for call in calls:
            result = self._condensed.get(call.key)
            # A failed round keeps its batch as it was: evidence is never dropped silently.
            carried = result.evidence if result is not None and result.done else self._batches[call.key]
            kept += [e for e in carried if e.verified]
        return kept

    def _reduce_call(self, call: PlannedCall, post: Callable) -> CallResult:
        batch = self._batches[call.key]
        messages = reduce_messages(batch, self.plan.question)
        built = self._built(messages, False, {"evidence": 0}, None, 0)
        call = dataclasses.replace(call, prompt_tokens=built.total)
        named = [_Named(f"evidence ({len(batch)} items)")]
        post(("call_start", call, f"condensing {len(batch)} evidence items"))
        result = self._send(call, built, named, post)
        if result.done:
            readable = self._passage_table(batch)
            by_id = {i.id.lower(): i for i in batch}
            result.evidence = [] if says_nothing(result.text) else [
                self._carried(e, by_id) for e in parse_evidence(result.text, readable, call.index, self._elsewhere)]
        return result

    @staticmethod
    def _carried(item: Evidence, by_id: dict) -> Evidence:
        """A condensed item keeps the call that first found it."""
        original = by_id.get(item.id.lower())
        if original is not None:
            item.call = original.call
        return item

    def _compose_call(self, answer: PlannedAnswer, items: list[Evidence]) -> Iterator[RunEvent]:
        messages = compose_messages(items, self.plan.question, self.plan.history)
        built = self._built(messages, self.plan.think, {"evidence": 0}, None, 0)
        index = len(self.plan.calls) + len(self.calls_after) + 1
        call = PlannedCall(index, "compose", "compose", built.total, self.settings.reserved(self.plan.think),
                           self.plan.think)
        yield RunEvent("status", text=f"Composing the answer from {len(items)} evidence item(s) "
                                      f"({built.total:,} prompt tokens)", call=call)
        streamed: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["result"] = self._send(call, built, [_Named("evidence")], lambda item: None, streamed.put)
            except _Fatal as exc:
                outcome["error"] = exc.error
            except FolioError as exc:
                outcome["error"] = exc
            finally:
                streamed.put(None)

        worker = threading.Thread(target=work, name="folio-compose", daemon=True)
        worker.start()
        yield from self._relay(streamed, answer)
        worker.join()
        if "error" in outcome:
            raise outcome["error"]
        result = outcome["result"]
        answer.answer = result.text if result.done or result.status == "cancelled" else answer.answer
        self._finish(answer, result, items)
        yield RunEvent("final", answer=answer, state=self.state, progress=self.progress())

    def _relay(self, streamed: queue.Queue, answer: PlannedAnswer) -> Iterator[RunEvent]:
        """Pass the composing call's thinking and content on as they arrive; honour cancel."""
        while True:
            if self.cancel is not None and self.cancel.is_set():
                self.stop.set()
            try:
                event = streamed.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if event is None:
                return
            if event.kind == "thinking":
                answer.thinking += event.text
            if self.first_word is None:
                self.first_word = time.monotonic()
            yield RunEvent(event.kind, text=event.text)

    def _finish(self, answer: PlannedAnswer, result: CallResult, items: list[Evidence]) -> None:
        answer.calls += self.calls_after + [result.record]
        answer.warnings += result.warnings
        answer.timings = self._timings()
        answer.model = str(result.record.get("model") or answer.model) if result.record else answer.model
        if result.status != "done":
            answer.interrupted = True
            stopped = self.cancel is not None and self.cancel.is_set()
            answer.status = "stopped" if stopped else "interrupted"
            answer.interrupt_reason = ("Stopped by you; the part that arrived is kept." if stopped
                                       else result.error or "The answer stopped before it was finished.")
            answer.warnings.append(f"Interrupted: {answer.interrupt_reason}")
        report = check_composed(answer.answer, items, self.plan.selection)
        answer.citations = report.citations
        answer.no_answer = report.no_answer
        answer.uncited = report.uncited and not answer.interrupted
        answer.warnings += [w for w in report.warnings if not (answer.interrupted and "cites no passage" in w)]


    def _timings(self) -> dict:
        """Seconds from the start of this run: to the answer's first word, and to its end."""
        first = round(self.first_word - self.started, 3) if self.first_word is not None else None
        return {"first_token_s": first, "total_s": round(time.monotonic() - self.started, 3),
                "counted_from": "run"}


class _Fatal(Exception):
    def __init__(self, error: Exception):
        self.error = error
        super().__init__(str(error))


@dataclass
class _Outcome:
    status: str
    """done | failed | cancelled | retry"""
    text: str = ""
    error: str = ""
    record: dict | None = None
    fatal: Exception | None = None
    warnings: list[str] = field(default_factory=list)

    def merge_into(self, result: CallResult) -> CallResult:
        result.status = self.status
        result.text = self.text
        result.error = self.error
        result.record = self.record or result.record
        result.warnings += self.warnings
        return result


def _note_rejected(answer: PlannedAnswer, items: Sequence[Evidence]) -> None:
    """Say how much reported evidence could not be checked (it does not reach the answer)."""
    unverified = sum(1 for e in items if e.status == "unverified")
    invalid = sum(1 for e in items if e.status == "invalid")
    if unverified or invalid:
        answer.warnings.append(
            f"Of {len(items)} evidence item(s) the reading calls reported, {unverified} quoted words not found in the "
            f"cited passage and {invalid} cited a passage the call did not read; those were left out of the answer.")


# ----------------------------------------------------------------------------- the answer's citations


def check_composed(text: str, items: Sequence[Evidence], selection: Sequence[Document]):
    """check_answer against the original passages; a passage no evidence item carried is invalid."""
    carried = {i.id.lower() for i in items}
    shas = {i.sha256 for i in items}
    documents = [d for d in selection if d.sha256 in shas]
    report = check_answer(text, documents)
    holders = None
    for citation in report.citations:
        if citation.id.lower() in carried:
            continue
        if holders is None:
            holders = {p.id.lower(): d.name for d in selection for p in d.passages}
        holder = holders.get(citation.id.lower())
        citation.status = "invalid"
        citation.span = citation.match = None
        citation.reason = (f"[{citation.id}] ({holder}) was not in the evidence the answer was composed from: "
                           "no reading call reported it." if holder else f"No passage [{citation.id}] in the selected documents.")
    report.warnings = [w for w in report.warnings
                       if not w.startswith("The answer cites") and "could not be verified" not in w]
    _citation_warnings(report)
    return report


def _citation_warnings(report) -> None:
    invalid = sorted({c.id for c in report.citations if c.status == "invalid"})
    if invalid:
        report.warnings.append(
            f"The answer cites {len(invalid)} passage ID(s) that do not exist or were not in the evidence: "
            + ", ".join(f"[{i}]" for i in invalid) + ". Treat those claims as unsupported.")
    unverified = report.count("unverified")
    if unverified:
        report.warnings.append(
            f"{unverified} of {len(report.citations)} citation(s) could not be verified: the quote is missing or "
            "was not found in the cited passage. Check them yourself.")


__all__ = ["CallResult", "RunState", "Progress", "PlannedAnswer", "RunEvent", "run_plan", "compose_answer",
           "connect", "plan_question", "server_token_ratio", "check_composed"]

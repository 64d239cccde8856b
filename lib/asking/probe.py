"""The real-context probe: does the server read the whole context, and does the model find facts?

    plan = plan_probe(settings, trained_context=info.trained_context)   # lengths, depths, cost
    plan.cost_text(speed)                      # "5 calls, 333,446 prompt tokens; about 12 min ..."
    for event in run_probe(plan, settings, server_info=info, cancel=cancel):
        ...                                    # "call" before each call, "row" after it, then "done"
    result = event.result                      # ProbeResult: cells, verdict, read_all, to_json()

For each length (a share of the real context) one document is built from real prose with one
short fact planted at every depth (lib/asking/haystack.py), and asked for all of them through
exactly what the app runs (lib/asking/answering.ask_stream). Each cell (length x depth) says
whether the answer gave the fact, cited the passage that holds it with a verified quote, and
whether the server read the part of the prompt that holds it (its prompt count against
Folio's; servers that cut keep the tail, as Ollama does). The verdict says it in plain words.

`ProbeRun` is the step-by-step form (one call per step, its rows plain data): a job runner
stores `run.to_state()` after each `run.step()` and continues with `ProbeRun.resume(state, ...)`
after a restart; `run_probe` drives it in one go.

As a job ("probe", lib/library/jobs.py): one item per call, its row stored with it, so the
probe survives page changes, reloads and restarts and shows in the jobs panel; a resumed
probe makes only the calls not yet finished, with the same documents (same seed):

    job_id = create_probe_job(store, plan, settings)       # one probe at a time per library
    Jobs(store).start(job_id, options={"settings": settings})
    result = job_result(Jobs(store).get(job_id), Jobs(store).results(job_id))   # so far, or final
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator, Sequence

from ..config import Settings
from ..errors import BudgetExceeded, InputError, ServerCrashed
from ..library.jobs import JobContext, JobInfo, JobStopped, Jobs, register_kind
from ..reading.tokens import get_counter
from ..servers.base import real_context
from ..servers.protocol import ServerInfo
from . import haystack, prompt
from .answering import ask_stream
from .job_settings import server_params, settings_of
from .probe_grid import (  # noqa: F401 (the probe's types, importable from here)
    ANSWER_TOKENS_PER_FACT, EXIT_NOT_READ, EXIT_READ_ALL, STATUS_WORDS, STATUSES, ProbeCell, ProbePlan, ProbeResult, ProbeRow, Speed,
    Verdict, duration_text, judge_row, read_whole, verdict_of,
)

LENGTHS = (0.10, 0.25, 0.50, 0.75, 0.95)
"""The full grid's lengths, as shares of the real context."""
DEPTHS = (0, 25, 50, 75, 100)
QUICK_LENGTHS = (0.10, 0.50, 0.95)
QUICK_DEPTHS = (0, 50, 100)
MAX_DEPTHS = 21
MIN_DOCUMENT_TOKENS = 64
DOCUMENT_OPENING_TOKENS = 8
"""About what '<|im_start|>user <documents> <document ...>' takes before the first passage."""


# ---------------------------------------------------------------------------------- the plan


def parse_fractions(text: str) -> tuple[float, ...]:
    """'0.1,0.5,0.95' (or percentages '10,50,95') as shares of the context."""
    values = _numbers(text, "--lengths")
    shares = tuple(v / 100 if v > 1 else v for v in values)
    for given, share in zip(values, shares):
        if not 0 < share <= 1:
            raise InputError(f"--lengths: {given:g} is not a share of the context; give values between 0 and 1 "
                             "(for example 0.1,0.5,0.95).")
    return shares


def parse_depths(text: str) -> tuple[int, ...]:
    """'0,50,100': percentages of the document before the fact."""
    values = _numbers(text, "--depths")
    for value in values:
        if not 0 <= value <= 100:
            raise InputError(f"--depths: {value:g} is not a depth; give percentages from 0 to 100 (for example 0,50,100).")
    return tuple(int(round(v)) for v in values)


def _numbers(text: str, option: str) -> list[float]:
    try:
        values = [float(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError as exc:
        raise InputError(f"{option} {text!r}: give numbers separated by commas.") from exc
    if not values:
        raise InputError(f"{option}: give at least one value.")
    return values


def plan_probe(settings: Settings, *, fractions: Sequence[float] = LENGTHS, depths: Sequence[int] = DEPTHS,
               think: bool = False, trained_context: int | None = None) -> ProbePlan:
    """The calls a probe makes in the real context (min of configured and trained)."""
    context = real_context(settings.context, trained_context)
    depths = tuple(sorted(set(int(d) for d in depths)))
    if not depths or not all(0 <= d <= 100 for d in depths):
        raise InputError("Depths are percentages from 0 to 100: give at least one.")
    if len(depths) > MAX_DEPTHS:
        raise InputError(f"{len(depths)} depths is too many for one probe: give at most {MAX_DEPTHS}.")
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise InputError("Lengths are shares of the context between 0 and 1 (for example 0.1, 0.5, 0.95).")
    reserved = settings.reserved(think)
    room = context - reserved
    pairs: dict[int, float] = {}
    capped = []
    for fraction in sorted(set(float(f) for f in fractions)):
        if int(context * fraction) > room:
            capped.append(f"{fraction * 100:.0f} %")
        pairs.setdefault(min(int(context * fraction), room), fraction)
    notes = ()
    if capped:
        notes = (f"{' and '.join(capped)} of the context {'is' if len(capped) == 1 else 'are'} capped at the "
                 f"{room:,} tokens left beside the {reserved:,} reserved for the answer.",)
    overhead = _prompt_overhead(len(depths), think)
    smallest = min(pairs)
    if smallest < overhead + MIN_DOCUMENT_TOKENS:
        raise InputError(
            f"A {smallest:,}-token prompt cannot hold a probe document: the instructions and the question "
            f"alone take {overhead:,} tokens (context {context:,}, {reserved:,} reserved for the answer). "
            "Choose longer lengths, fewer depths, or a larger context."
        )
    return ProbePlan(context=context, configured_context=settings.context, trained_context=trained_context,
                     fractions=tuple(pairs[n] for n in sorted(pairs)), lengths=tuple(sorted(pairs)),
                     depths=depths, think=think, reserved=reserved, notes=notes)


def _prompt_overhead(facts: int, think: bool) -> int:
    """Tokens of a probe prompt around its document (instructions, question, template)."""
    sample = haystack.make_facts(list(range(facts)), seed=0)
    counter = get_counter()
    question = haystack.question_for(sample)
    tiny = haystack.build_haystack(MIN_DOCUMENT_TOKENS, sample[:1], counter)
    built = prompt.build_prompt([tiny.document], question, think=think, counter=counter)
    return built.total - sum(built.per_document.values())


# ---------------------------------------------------------------------------------- running


@dataclass
class ProbeEvent:
    """Progress of a run: 'call' before each call, 'row' after it, 'done' with the result."""

    kind: str
    index: int
    total: int
    elapsed_s: float
    eta_s: float | None = None
    text: str = ""
    row: ProbeRow | None = None
    result: ProbeResult | None = None


class ProbeRun:
    """A probe as steps: `step()` makes the next call and returns its row (plain data)."""

    def __init__(self, plan: ProbePlan, settings: Settings, *, backend=None, server_info: ServerInfo | None = None,
                 seed: int | None = None, rows: Sequence[ProbeRow] = ()):
        if backend is None:
            from ..servers import make_backend

            backend = make_backend(settings)
        self.plan = plan
        self.settings = settings
        self.backend = backend
        self.server_info = server_info
        self.seed = seed if seed is not None else int(time.time())
        self.rows: list[ProbeRow] = list(rows)
        self.counter = get_counter()
        self.date = datetime.now(timezone.utc).isoformat(timespec="seconds")

    @property
    def done(self) -> bool:
        return len(self.rows) >= self.plan.calls

    def to_state(self) -> dict:
        """Everything needed to resume this run elsewhere (plain JSON): plan, seed, date, finished rows."""
        return {"plan": self.plan.to_json(), "seed": self.seed, "date": self.date,
                "rows": [row.to_json() for row in self.rows]}

    @classmethod
    def resume(cls, state: dict, settings: Settings, *, backend=None,
               server_info: ServerInfo | None = None) -> "ProbeRun":
        """A run continuing from `to_state()`: the next step makes the first call not yet finished."""
        run = cls(ProbePlan.from_json(state["plan"]), settings, backend=backend, server_info=server_info,
                  seed=int(state["seed"]), rows=[ProbeRow.from_json(r) for r in state.get("rows", [])])
        run.date = state.get("date") or run.date
        return run

    def check(self) -> ServerInfo:
        """The server's own report (once): raises a ServerError when it cannot be used."""
        if self.server_info is None:
            self.server_info = self.backend.check()
        return self.server_info

    def step(self, cancel: threading.Event | None = None) -> ProbeRow | None:
        """Make the next call; None when it was cancelled (nothing is recorded then)."""
        index = len(self.rows)
        facts = haystack.make_facts(self.plan.depths, seed=self.seed * 100 + index)
        row = self._ask(index, facts, self.plan.lengths[index], cancel)
        if row is not None:
            self.rows.append(row)
        return row

    def _ask(self, index: int, facts, length: int, cancel, retried: bool = False) -> ProbeRow | None:
        question = haystack.question_for(facts)
        overhead = self._overhead(facts, question)
        # Never longer than planned: the plan's lengths already leave the answer its room.
        stack = haystack.build_haystack(length - overhead, facts, self.counter, limit=length - overhead)
        settings = self.settings.replace(context=self.plan.context)
        try:
            answer = None
            for event in ask_stream([stack.document], question, settings, think=self.plan.think, backend=self.backend,
                                    cancel=cancel, server_info=self.check()):
                if event.kind == "final":
                    answer = event.answer
        except BudgetExceeded as exc:
            if retried or not exc.overrun:
                raise
            # The server's tokenizer counts more than Qwen3's: make the document that much smaller.
            return self._ask(index, facts, length - exc.overrun - max(int(length * 0.01), 16), cancel, True)
        if answer.interrupted:
            if cancel is not None and cancel.is_set():
                return None
            raise ServerCrashed(f"The server stopped answering the {length:,}-token probe call: {answer.interrupt_reason}")
        return self._row(index, stack, answer)

    def _overhead(self, facts, question: str) -> int:
        tiny = haystack.build_haystack(MIN_DOCUMENT_TOKENS, facts[:1], self.counter)
        built = prompt.build_prompt([tiny.document], question, think=self.plan.think, counter=self.counter)
        return built.total - sum(built.per_document.values())

    def _row(self, index: int, stack, answer) -> ProbeRow:
        call = answer.calls[-1]
        own = call["prompt_tokens"]
        server_count = call.get("server_counted_prompt")
        sent = server_count if server_count is not None else own
        read = call.get("server_prompt_tokens")
        exact = server_count is not None or self.counter.kind == "exact"
        read_all = read_whole(sent, read, exact)
        # Before the document come only the system block and the document's opening tags.
        offset = (answer.budget.system if answer.budget else 0) + DOCUMENT_OPENING_TOKENS
        cells = judge_row(stack, answer.answer, answer.citations, length_tokens=own, sent=sent, read=read,
                          read_all=read_all, offset=offset)
        return ProbeRow(
            fraction=self.plan.fractions[index], length_tokens=own, sent_tokens=sent, server_read_tokens=read,
            read_all=read_all, cells=cells, answer=answer.answer, warnings=list(answer.warnings),
            first_token_s=call.get("first_token_s"), total_s=call.get("total_s"),
            prompt_eval_s=call.get("prompt_eval_s"), eval_count=call.get("eval_count"), eval_s=call.get("eval_s"),
            cached_tokens=call.get("cached_tokens"),
            invalid_citations=sum(c.status == "invalid" for c in answer.citations),
        )

    def result(self, *, cancelled: bool = False) -> ProbeResult:
        verdict = verdict_of(self.plan, self.rows, model=self.settings.model, backend=self.settings.backend,
                             counter=self.counter.kind, cancelled=cancelled)
        return ProbeResult(plan=self.plan, rows=list(self.rows), verdict=verdict, host=self.settings.host,
                           model=self.settings.model, backend=self.settings.backend, date=self.date,
                           counter=self.counter.kind, cancelled=cancelled)


def run_probe(plan: ProbePlan, settings: Settings, *, backend=None, server_info: ServerInfo | None = None,
              cancel: threading.Event | None = None, seed: int | None = None,
              speed: Speed | None = None) -> Iterator[ProbeEvent]:
    """Run every call of `plan`, yielding progress; the last event ('done') carries the result."""
    run = ProbeRun(plan, settings, backend=backend, server_info=server_info, seed=seed)
    run.check()
    started = time.monotonic()
    read_tokens, read_seconds = 0, 0.0
    for index in range(plan.calls):
        if cancel is not None and cancel.is_set():
            break
        elapsed = time.monotonic() - started
        eta = _eta(plan, index, read_tokens, read_seconds, speed)
        yield ProbeEvent("call", index, plan.calls, elapsed, eta,
                         text=f"Call {index + 1} of {plan.calls}: the server reads {plan.lengths[index]:,} tokens")
        call_started = time.monotonic()
        row = run.step(cancel)
        if row is None:
            break
        read_tokens += row.length_tokens
        read_seconds += time.monotonic() - call_started
        elapsed = time.monotonic() - started
        yield ProbeEvent("row", index, plan.calls, elapsed, _eta(plan, index + 1, read_tokens, read_seconds, speed),
                         text=row_summary(row, len(plan.depths)), row=row)
    cancelled = not run.done
    result = run.result(cancelled=cancelled)
    yield ProbeEvent("done", len(run.rows), plan.calls, time.monotonic() - started, 0.0, text=result.verdict.text,
                     result=result)


def _eta(plan: ProbePlan, done: int, tokens: int, seconds: float, speed: Speed | None) -> float | None:
    """Seconds left: from this run's own pace once a call finished, else from the stored speed."""
    left = sum(plan.lengths[done:])
    if tokens and seconds:
        return left * seconds / tokens
    if speed and speed.prompt_tps:
        return left / speed.prompt_tps
    return None


def row_summary(row: ProbeRow, depths: int) -> str:
    """'13,107 tokens: read 13,107 of 13,107, 5 of 5 found, 5 cited with verified quotes (12.3 s)'."""
    found = sum(c.found for c in row.cells)
    verified = sum(c.verified for c in row.cells)
    read = "the server did not say what it read" if row.server_read_tokens is None else (
        f"read {row.server_read_tokens:,} of {row.sent_tokens:,}")
    took = f" ({row.total_s:.1f} s)" if isinstance(row.total_s, (int, float)) else ""
    return f"{row.length_tokens:,} tokens: {read}, {found} of {depths} found, {verified} cited with verified quotes{took}"


def speed_from_rows(rows: Sequence[dict]) -> Speed | None:
    """The prompt and answer speed of earlier calls (stored probe rows or answer calls), if they say."""
    prompt_tokens = prompt_seconds = answer_tokens = answer_seconds = 0.0
    for row in rows:
        read = row.get("server_read_tokens", row.get("server_prompt_tokens"))
        cached = row.get("cached_tokens") or 0
        if isinstance(read, int) and isinstance(row.get("prompt_eval_s"), (int, float)) and row["prompt_eval_s"] > 0:
            prompt_tokens += max(read - cached, 0)
            prompt_seconds += row["prompt_eval_s"]
        if isinstance(row.get("eval_count"), int) and isinstance(row.get("eval_s"), (int, float)) and row["eval_s"] > 0:
            answer_tokens += row["eval_count"]
            answer_seconds += row["eval_s"]
    if not prompt_seconds or not prompt_tokens:
        return None
    return Speed(prompt_tokens / prompt_seconds, answer_tokens / answer_seconds if answer_seconds else None)


# ---------------------------------------------------------------------------------- as a job

KIND = "probe"
JOB_KEY = "probe"
"""One probe at a time per library: the unfinished probe job is found by this key."""


def call_key(index: int) -> str:
    return f"call-{index:03d}"


def create_probe_job(store, plan: ProbePlan, settings: Settings, *, seed: int | None = None) -> int:
    """A queued probe job (resume the unfinished one instead: find_probe_job)."""
    params = {"plan": plan.to_json(), "seed": seed if seed is not None else int(time.time()),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "server": server_params(settings)}
    title = f"Probe of {settings.model}: {plan.calls} call{'s' if plan.calls != 1 else ''}"
    return Jobs(store).create(KIND, title, params, key=JOB_KEY)


def find_probe_job(store) -> JobInfo | None:
    """The newest probe job of this library (any state), or None."""
    found = Jobs(store).list(kind=KIND, limit=1)
    return found[0] if found else None


def _state(params: dict, results: dict) -> dict:
    """ProbeRun.to_state() from a job: its parameters and the rows of its finished calls, in order."""
    rows = []
    while call_key(len(rows)) in results:
        rows.append(results[call_key(len(rows))])
    return {"plan": params["plan"], "seed": params["seed"], "date": params.get("date"), "rows": rows}


def job_result(info: JobInfo, results: dict) -> ProbeResult:
    """The probe's result from its job: the grid of the calls finished so far (cancelled unless done)."""
    state = _state(info.params, results)
    plan = ProbePlan.from_json(state["plan"])
    rows = [ProbeRow.from_json(r) for r in state["rows"]]
    settings = settings_of(info.params)
    cancelled = len(rows) < plan.calls
    counter = get_counter().kind
    verdict = verdict_of(plan, rows, model=settings.model, backend=settings.backend, counter=counter,
                         cancelled=cancelled)
    return ProbeResult(plan=plan, rows=rows, verdict=verdict, host=settings.host, model=settings.model,
                       backend=settings.backend, date=state["date"] or info.created_at, counter=counter,
                       cancelled=cancelled)


def run_probe_job(job: JobContext) -> dict:
    """The work function of "probe" jobs: the calls not yet made, each stored as it finishes."""
    settings = job.options.get("settings") or settings_of(job.params)
    run = ProbeRun.resume(_state(job.params, job.results()), settings, backend=job.options.get("backend"))
    plan = run.plan
    job.set_total(plan.calls, work=sum(plan.lengths))
    try:
        job.checkpoint("Checking the model server")
        run.check()
        while not run.done:
            index = len(run.rows)
            job.checkpoint(f"Call {index + 1} of {plan.calls}: the server reads {plan.lengths[index]:,} tokens")
            row = run.step(job.stop_event)
            if row is None:
                job.checkpoint()  # stopped during the call: JobStopped
                continue
            job.record(call_key(index), row.to_json(), label=row_summary(row, len(plan.depths)),
                       work=plan.lengths[index])
    except JobStopped as stop:
        if stop.how == "cancel" and run.rows:  # what finished is kept with the earlier results
            job.store.add_probe_run(run.result(cancelled=True).to_json())
        raise
    result = run.result()
    return {"probe_run": job.store.add_probe_run(result.to_json()), "verdict": result.verdict.text}


register_kind(KIND, run_probe_job)

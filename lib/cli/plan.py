"""`python -m lib plan (FILE... | --collection NAME) --question TEXT` and the modes of `python -m lib ask`.

    python -m lib plan war-and-peace.txt -q "Who marries Natasha?" --mode all     # the plan only
    python -m lib ask war-and-peace.txt -q "Who marries Natasha?"                 # auto: plan shown, exit 2
    python -m lib ask war-and-peace.txt -q "..." --mode all --concurrency 2 --json
    python -m lib plan --collection "Smith v Jones" -q "Was the limitation defence upheld?"   # from the library

`ask --mode auto` (the default) asks in one call when everything fits (exactly as before);
otherwise it asks nothing, prints the plans of the two other modes with their costs and
exits 2. `--mode relevant` reads the best-ranked documents that fit one call; `--mode all`
reads everything in several calls and composes the answer from the evidence. Ctrl-C during
the reading calls stops them and composes the answer from the evidence found so far (a
second Ctrl-C stops that too).

With `--collection` (documents already in the library) the question runs as a "plan" job, as
in the app (lib/output/plan_job.py): each reading call is stored the moment it finishes, and
after Ctrl-C twice, a crash or `kill -9` the same command (or `jobs resume ID`) goes on without
sending a finished call again; the answer is kept in History. Files named on the command line
are read for this question only and are not stored, so their run is not resumable.

Exit status of `plan`: 0 printed, 2 a problem with the input. Of `ask` in modes relevant and
all: 0 answered, 2 input (or auto when one call cannot hold the documents), 3 a problem with
the server (also when a part could not be read: the answer names it), 130 stopped by you.
"""

from __future__ import annotations

import json
import queue
import sys
import threading

from ..documents import page_range_text
from ..errors import FolioError, InputError, ServerError
from . import ask

EXIT_CANCELLED = 130
STATUS_MARKS = {"verified": "verified  ", "unverified": "UNVERIFIED", "invalid": "INVALID   "}


def add_mode_arguments(parser) -> None:
    """--mode and --concurrency (on ask and plan)."""
    parser.add_argument("--mode", choices=("auto", "one", "relevant", "all"), default="auto",
                        help="auto: one call when everything fits, else show the plans and ask nothing; one: one call; "
                             "relevant: the best-ranked documents that fit one call; all: read everything in several calls")
    parser.add_argument("--concurrency", type=int,
                        help="calls in flight at once in mode all (default FOLIO_CONCURRENCY, else by server: "
                             "Ollama 1, vLLM 4, llama.cpp's llama-server its slots, llama-cpp-python 1)")


def add_parser(subparsers) -> None:
    """Register `plan`, and the modes on `ask` (registered before): --mode, --concurrency, its handler."""
    ask_parser = subparsers.choices["ask"]
    add_mode_arguments(ask_parser)
    ask_parser.set_defaults(handler=run_ask)
    plan = subparsers.add_parser(
        "plan",
        help="show how a question would be asked (calls, what each reads, exact tokens, time); send nothing",
        description="Plan a question without sending it: the calls, the documents or parts each reads, exact "
                    "tokens per call, and an estimate of the time from the server's measured speed.",
    )
    ask.add_document_arguments(plan, "plan a question")
    plan.add_argument("--question", "-q", required=True, help="the question")
    think = plan.add_mutually_exclusive_group()
    think.add_argument("--think", dest="think", action="store_true", default=None, help="plan with thinking on")
    think.add_argument("--no-think", dest="think", action="store_false", help="plan with thinking off")
    ask._server_arguments(plan)
    add_mode_arguments(plan)
    plan.add_argument("--json", action="store_true", help="print one JSON object")
    plan.add_argument("--password", help="password for encrypted PDFs")
    plan.set_defaults(handler=run)


# ----------------------------------------------------------------------------------- plan


def run(args) -> int:
    """`python -m lib plan`: the plan, nothing sent."""
    try:
        settings = ask._settings(args)
        _check_concurrency(args)
        documents = ask._read_documents(args, settings)
        plan = _make_plan(args, settings, documents, contact=True)[0]
    except FolioError as exc:
        return ask._fail(args, exc)
    if args.json:
        print(json.dumps(plan.to_json(), ensure_ascii=False))
    else:
        print("\n".join(_describe(plan)))
    return 0


def _check_concurrency(args) -> None:
    if args.concurrency is not None and args.concurrency < 1:
        raise InputError(f"--concurrency {args.concurrency} is not a positive number of calls.")


def _make_plan(args, settings, documents, *, contact: bool):
    """(plan, backend, server_info): planned for the server's real context and tokenizer (the plan
    command plans for the configured context, with a note, when the server cannot be reached)."""
    from ..asking.plan import make_plan
    from ..asking.several_calls import plan_question

    speed = recent_speed(settings)
    ranker = _ranker(args, settings)
    try:
        return plan_question(documents, args.question, settings, mode=args.mode, think=args.think, speed=speed,
                             concurrency=args.concurrency, ranker=ranker)
    except ServerError as exc:
        if not contact:
            raise
        plan = make_plan(documents, args.question, settings, mode=args.mode, think=args.think, speed=speed,
                         concurrency=args.concurrency, ranker=ranker)
        plan.notes.insert(0, f"The server could not be asked for its context ({exc}); planned for the configured "
                             f"{settings.context:,} tokens.")
        return plan, None, None


def _ranker(args, settings):
    """The library's own index for a collection (ranking at 10,000-document scale); else None
    (documents given as files are ranked in memory)."""
    if not getattr(args, "collection", None):
        return None
    from ..library.store import open_store

    store = open_store(settings.data_dir)
    return lambda question, documents: store.rank_documents(question, [d.sha256 for d in documents])


def recent_speed(settings):
    """The server's reading and writing speed measured on earlier answers from this server and
    model: the app's saved answers, the command line's (remember_timings) and probe runs."""
    from ..asking.plan import ServerSpeed
    from ..library.store import open_store

    try:
        calls = open_store(settings.data_dir).recent_calls(settings.host, settings.model)
    except (FolioError, OSError, KeyError, TypeError, ValueError):
        return ServerSpeed()  # no library (or an unreadable one): the time is 'unknown'
    return ServerSpeed.from_calls(calls)


def _describe(plan) -> list[str]:
    from ..asking.plan import describe_plan

    return describe_plan(plan)


# ------------------------------------------------------------------------------------ ask


def run_ask(args) -> int:
    """`ask` in the chosen mode. Mode one is the one-call command (lib/cli/ask.py), unchanged."""
    if args.mode == "one":
        return ask.run(args)
    try:
        _check_concurrency(args)
        settings = ask._settings(args)
        documents = ask._read_documents(args, settings)
        return ask_in_mode(args, settings, documents)
    except FolioError as exc:
        return ask._fail(args, exc)


def ask_in_mode(args, settings, documents) -> int:
    """Plan; one call when auto finds that everything fits; else the plans, or the chosen mode's run."""
    plan, backend, info = _make_plan(args, settings, documents, contact=False)
    if plan.mode == "one":
        return ask._ask(args, settings, documents)
    if plan.mode == "auto":
        return _refuse(args, plan)
    if not plan.fits:
        raise InputError(plan.message)
    if not args.json:
        for line in _describe(plan):
            print(f"folio: {line}" if line else "", file=sys.stderr)
    if getattr(args, "collection", None):
        return _run_job(args, settings, plan, backend, documents)
    return _run(args, settings, plan, backend, info)


def _refuse(args, plan) -> int:
    """Auto mode and one call cannot hold the documents: show both plans, ask nothing."""
    message = f"Nothing was asked. {plan.message}"
    if args.json:
        print(json.dumps({"error": message, "errors": [], "exit_status": 2, "plan": plan.to_json()},
                         ensure_ascii=False))
    else:
        print("folio: Nothing was asked.", file=sys.stderr)
        print("\n".join(_describe(plan)), file=sys.stderr)
    return 2


COMPOSING_NOTE = "Composing the answer from the evidence found so far (Ctrl-C again to stop)."


def _run(args, settings, plan, backend, info) -> int:
    from ..asking.several_calls import compose_answer, run_plan

    stops = (threading.Event(), threading.Event())
    events: queue.Queue = queue.Queue()

    def work() -> None:
        state = None
        for event in run_plan(plan, settings, backend=backend, server_info=info, cancel=stops[0],
                              concurrency=args.concurrency):
            events.put(("event", event))
            state = event.state or state
            if event.kind == "cancelled":
                events.put(("event", _Status(COMPOSING_NOTE)))
                for later in compose_answer(plan, state, settings, backend=backend, server_info=info,
                                            cancel=stops[1], concurrency=args.concurrency):
                    events.put(("event", later))

    ask.in_thread(work, events, "folio-plan")
    answer = ask.follow(events, _JsonView() if args.json else _TerminalView(len(plan.calls)), stops)
    if answer is not None:
        ask.remember_timings(settings, answer)  # a job keeps its answer, timings included, in History
    return _exit_status(answer, stops)


def _run_job(args, settings, plan, backend, documents) -> int:
    """The plan as a stored "plan" job: resumed when this very plan ran before and did not finish."""
    from ..library.jobs import Jobs
    from ..library.store import open_store
    from ..output.plan_job import create_plan_job, find_plan_job

    store = open_store(settings.data_dir)
    jobs = Jobs(store)
    found = find_plan_job(store, plan)
    if found is not None:
        job_id = found.id
        if not args.json:
            print(f"folio: resuming job {job_id}: {found.done:,} of {found.total or len(plan.calls):,} calls done "
                  "before are not sent again", file=sys.stderr)
    else:
        job_id = create_plan_job(store, plan, settings, shas=[d.sha256 for d in documents],
                                 concurrency=args.concurrency)
    events: queue.Queue = queue.Queue()
    errors: list = []
    stops = (_JobStop(jobs, job_id), _JobStop(jobs, job_id))

    def work() -> None:
        options = {"documents": documents, "backend": backend, "errors": errors,
                   "on_event": lambda event: events.put(("event", event))}
        info = jobs.run(job_id, options=options)
        if info.status == "cancelled" and stops[0].is_set() and not stops[1].is_set():
            events.put(("event", _Status(COMPOSING_NOTE)))
            info = jobs.run(job_id, options=dict(options, compose=True))
        if info.status == "failed":
            raise errors[-1] if errors else FolioError(info.error)

    ask.in_thread(work, events, "folio-plan-job")
    answer = ask.follow(events, _JsonView(job=job_id) if args.json else _TerminalView(len(plan.calls)), stops)
    if answer is None and not args.json:
        print(f"folio: stopped; `python -m lib jobs resume {job_id}` (or the same command) goes on from here.",
              file=sys.stderr)
    return _exit_status(answer, stops)


def _exit_status(answer, stops) -> int:
    """130 stopped by you (no answer, or Ctrl-C while reading or composing); 3 an interrupted or
    incomplete reading; else 0."""
    reading, composing = stops
    if answer is None or reading.is_set() or answer.interrupted and composing.is_set():
        return EXIT_CANCELLED
    return 3 if answer.interrupted or answer.unread else 0


class _JobStop:
    """What Ctrl-C sets for a job: its cancel (the job's own stop, as from the app or `jobs cancel`)."""

    def __init__(self, jobs, job_id: int):
        self.jobs, self.job_id, self.pressed = jobs, job_id, False

    def set(self) -> None:
        self.pressed = True
        try:
            self.jobs.cancel(self.job_id)
        except FolioError:
            pass  # the job ended meanwhile: nothing left to stop

    def is_set(self) -> bool:
        return self.pressed


class _Status:
    kind = "status"

    def __init__(self, text: str):
        self.text = text


class _TerminalView:
    """Progress per call on stderr; the composed answer streamed on stdout."""

    def __init__(self, total: int):
        self.total = total
        self.tty = sys.stderr.isatty()
        self.in_thinking = False
        self.streamed = False

    def _err(self, text: str, end: str = "\n") -> None:
        sys.stderr.write(text + end)
        sys.stderr.flush()

    def waiting(self, elapsed: float) -> None:
        pass

    def clear(self) -> None:
        pass

    def cancelling(self, pressed: int) -> None:
        self._err("\nfolio: stopping the reading calls; the evidence found is kept." if pressed == 1
                  else "\nfolio: stopping; the part of the answer that arrived is kept.")

    def show(self, event) -> None:
        line = _progress_line(event, self.total)
        if line:
            self._err(f"folio: {line}")
            return
        if event.kind == "thinking":
            if not self.in_thinking:
                self._err("--- thinking ---")
                self.in_thinking = True
            self._err(event.text, end="")
        elif event.kind == "content":
            self._end_thinking()
            self.streamed = True
            sys.stdout.write(event.text)
            sys.stdout.flush()

    def _end_thinking(self) -> None:
        if self.in_thinking:
            self._err("\n--- end of thinking ---")
            self.in_thinking = False

    def finish(self, answer) -> None:
        self._end_thinking()
        if not self.streamed:  # no composing call (nothing found): the answer was not streamed
            sys.stdout.write(answer.answer)
        sys.stdout.write("\n")
        if answer.citations:
            sys.stdout.write("\nCitations:\n")
            for citation in answer.citations:
                sys.stdout.write(citation_line(citation) + "\n")
        if ask.says_no_answer_apart(answer):
            sys.stdout.write("\n(The documents do not answer this question.)\n")
        sys.stdout.flush()
        for warning in answer.warnings:
            self._err(f"warning: {warning}")
        for call in answer.calls:
            self._err(call_line(call))


class _JsonView:
    """Collects silently; prints exactly one JSON object at the end (with the job's id, when a job ran it)."""

    def __init__(self, job: int | None = None):
        self.job = job

    def waiting(self, elapsed: float) -> None:
        pass

    def clear(self) -> None:
        pass

    def cancelling(self, pressed: int) -> None:
        print("folio: stopping; what was found is kept.", file=sys.stderr)

    def show(self, event) -> None:
        pass

    def finish(self, answer) -> None:
        data = answer.to_json()
        if self.job is not None:
            data["job"] = self.job
        print(json.dumps(data, ensure_ascii=False))


def _progress_line(event, total: int) -> str | None:
    """One stderr line for a progress event (None for streamed text)."""
    kind = event.kind
    if kind in ("status", "round", "cancelled"):
        return event.text
    call = getattr(event, "call", None)
    if call is None:
        return None if kind in ("thinking", "content") else ""
    where = f"call {call.index} of {total}" if call.kind == "evidence" else f"call {call.index}"
    if kind == "call_start":
        return f"{where}: reading {event.text} ({call.prompt_tokens:,} tokens)" if call.kind == "evidence" else f"{where}: {event.text}"
    if kind == "call_retry":
        return event.text
    if kind == "call_skipped":
        return f"{where}: already read in an earlier run"
    if kind in ("call_done", "call_failed", "call_cancelled"):
        return _finished_line(event, where)
    return None if kind in ("thinking", "content") else ""


def _finished_line(event, where: str) -> str:
    result, progress = event.result, event.progress
    if event.kind == "call_failed":
        return f"{where}: NOT READ: {result.error}"
    if event.kind == "call_cancelled":
        return f"{where}: stopped"
    found = sum(1 for e in result.evidence if e.verified)
    seconds = result.record.get("total_s") or 0
    text = f"{where}: done in {seconds:.1f} s, " + ("nothing relevant" if result.nothing else f"{found} evidence item(s)")
    if progress is not None:
        text += f"; {progress.calls_done}/{progress.calls_total} read, {progress.evidence} item(s) so far"
        if progress.remaining_s is not None and progress.calls_done < progress.calls_total:
            from ..asking.plan import duration_text

            text += f", about {duration_text(progress.remaining_s)} left"
    return text


def citation_line(citation) -> str:
    where = citation.document or "?"
    if citation.page is not None:
        where += " " + page_range_text(citation.page, citation.page_end, citation.page_label)
    quote = f' "{citation.quote}"' if citation.quote else " (no quote)"
    return f"  [{citation.id}] {STATUS_MARKS.get(citation.status, citation.status)} {where}:{quote}"


def call_line(call: dict) -> str:
    server = call.get("server_prompt_tokens")
    read = f", server read {server:,}" if isinstance(server, int) else ""
    first = call.get("first_token_s")
    first_text = f", first token {first:.1f} s" if isinstance(first, (int, float)) else ""
    status = call.get("status", "done")
    return (
        f"folio: call {call.get('index', '?')} ({call.get('kind', 'answer')}, {status}): prompt "
        f"{call['prompt_tokens']:,} tokens{read}; num_ctx {call['num_ctx']:,}, num_keep {call['num_keep']:,}"
        f"{first_text}, total {call['total_s']:.1f} s, done: {call.get('done_reason') or '-'}"
    )

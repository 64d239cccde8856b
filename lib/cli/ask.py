"""`python -m lib ask FILE... --question TEXT` and `python -m lib doctor`.

    python -m lib ask lease.pdf --question "Who repairs the roof?"          # streamed
    python -m lib ask a.pdf b.docx -q "..." --think --json                   # one JSON object
    python -m lib doctor --model qwen3-128k:14b

Exit status (ask): 0 answered; 2 a problem with the input (unreadable file, does not fit);
3 a problem with the server (also an answer the server interrupted, or one that passed the
idle or total time limit); 4 answered, but the server did not read the whole prompt (it read
fewer tokens than Folio sent: do not rely on the answer); 130 stopped by you.
Exit status (doctor): 0 ready; 3 not ready (unreachable, not a model server, too old, model
missing); the report is printed either way.
The answer goes to stdout; thinking, progress and warnings go to stderr.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time

from ..config import load_settings
from ..documents import page_range_text
from ..errors import FolioError, InputError

WAIT_REFRESH_S = 1.0
"""How often the 'waiting for the model' line is refreshed on a terminal."""
EXIT_OK = 0
EXIT_SERVER = 3
EXIT_PROMPT_CUT = 4
"""The server read fewer prompt tokens than Folio sent (the probe of issue 12 uses 4 too)."""
EXIT_CANCELLED = 130
ASK_EXIT_HELP = """exit status:
  0    answered
  2    a problem with the input: a file cannot be read, or the documents do not fit (nothing is sent)
  3    a problem with the server: unreachable, not a model server, refused, or the answer was
       interrupted (also at the idle limit --read-timeout or the total limit --timeout)
  4    answered, but the server did not read the whole prompt (it read fewer tokens than Folio
       sent, so part of the documents may be missing): do not rely on the answer
  130  stopped by you (Ctrl-C); what arrived is printed
"""
DOCTOR_EXIT_HELP = """exit status:
  0    ready: the server answers, is a model server Folio can use, and serves the model
  3    not ready: unreachable, not an Ollama / OpenAI-compatible server, too old, or the model is
       missing (the report says which, and what to do)
"""
STATUS_MARKS = {"verified": "verified  ", "unverified": "UNVERIFIED", "invalid": "INVALID   "}


def add_parser(subparsers) -> None:
    """Register `ask` and `doctor`."""
    ask = subparsers.add_parser(
        "ask",
        help="ask documents a question; the answer cites passages Folio verifies",
        description="Send the whole documents and the question to the model in one call; "
        "stream the answer and check every citation.",
        epilog=ASK_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_document_arguments(ask, "ask")
    ask.add_argument("--question", "-q", required=True, help="the question")
    mode = ask.add_mutually_exclusive_group()
    mode.add_argument("--think", dest="think", action="store_true", default=None,
                      help="let the model reason first (slower, more room reserved)")
    mode.add_argument("--no-think", dest="think", action="store_false", help="answer directly")
    _server_arguments(ask)
    ask.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
    ask.add_argument("--password", help="password for encrypted PDFs")
    ask.set_defaults(handler=run)

    doctor = subparsers.add_parser(
        "doctor",
        help="check the model server: version, model, capabilities, context, KV memory",
        description="Report what the model server offers and what Folio's configured context costs.",
        epilog=DOCTOR_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _server_arguments(doctor)
    doctor.add_argument("--json", action="store_true", help="print one JSON object")
    doctor.set_defaults(handler=run)


def add_document_arguments(parser, verb: str) -> None:
    """FILE... or --collection NAME: the documents a question is about."""
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help=f"documents to {verb} about (PDF, DOCX, EPUB, HTML, text); or --collection")
    parser.add_argument("--collection", metavar="NAME",
                        help="the documents of a library collection (python -m lib collections lists them) "
                             "instead of files")


def _server_arguments(parser) -> None:
    parser.add_argument("--backend", choices=("ollama", "openai"), help="server kind (default: ollama)")
    parser.add_argument("--host", help="server URL (default: FOLIO_HOST, else OLLAMA_HOST or http://127.0.0.1:11434 for Ollama, http://127.0.0.1:8000 for --backend openai)")
    parser.add_argument("--model", help="model name (default: FOLIO_MODEL or qwen3-128k:14b)")
    parser.add_argument("--context", type=int, help="configured context in tokens (default: 131072)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="total limit for the question, every request included "
                        "(default: FOLIO_TOTAL_TIMEOUT or 3600; 0: no limit)")
    parser.add_argument("--read-timeout", type=float, metavar="SECONDS",
                        help="idle limit: seconds the server may send no new text, keep-alives or not "
                        "(default: FOLIO_READ_TIMEOUT or 900)")


def run(args) -> int:
    """Entry point for both commands."""
    if args.command == "doctor":
        return run_doctor(args)
    return run_ask(args)


def _settings(args):
    if args.context is not None and args.context <= 0:
        raise InputError(f"--context {args.context} is not a positive number of tokens.")
    if args.timeout is not None and args.timeout < 0:
        raise InputError(f"--timeout {args.timeout:g} is negative: give seconds, or 0 for no limit.")
    if args.read_timeout is not None and args.read_timeout <= 0:
        raise InputError(f"--read-timeout {args.read_timeout:g} must be more than 0 seconds.")
    return load_settings(backend=args.backend, host=args.host, model=args.model, context=args.context,
                         total_timeout=args.timeout, read_timeout=args.read_timeout)


# ------------------------------------------------------------------------------------ ask


def run_ask(args) -> int:
    try:
        settings = _settings(args)
        documents = _read_documents(args, settings)
        return _ask(args, settings, documents)
    except FolioError as exc:
        return _fail(args, exc)


def _fail(args, exc: FolioError) -> int:
    """Report an error: one line on stderr, and with --json one object on stdout."""
    print(f"folio: {exc}", file=sys.stderr)
    if args.json:
        errors = getattr(exc, "errors", [])
        print(json.dumps({"error": str(exc), "errors": errors, "exit_status": exc.exit_status},
                         ensure_ascii=False))
    return exc.exit_status


def _read_documents(args, settings):
    """The documents of --collection, or every file read; any unreadable one stops the question
    (an answer must see them all)."""
    if getattr(args, "collection", None):
        if args.files:
            raise InputError("Give files or --collection NAME, not both.")
        return collection_documents(settings, args.collection)
    if not args.files:
        raise InputError("Give the documents to ask about: FILE... or --collection NAME.")
    return _read_files(args, settings)


def collection_documents(settings, name: str):
    """Every document of a library collection, from the store (nothing is read again)."""
    from ..library.store import open_store

    store = open_store(settings.data_dir)
    try:
        shas = store.collection_shas(name)
    except FolioError as exc:
        raise InputError(f"--collection {name!r}: {exc}") from exc
    if not shas:
        raise InputError(f"The collection {name!r} holds no documents: add some with "
                         f"python -m lib ingest PATH --collection {name!r}.")
    return store.get_documents(shas)


def says_no_answer_apart(answer) -> bool:
    """The model found no answer but said so in other words (or among others): say it plainly
    once more. When its whole answer is the sentence itself, once is enough."""
    from ..asking.prompt import NO_ANSWER

    return bool(answer.no_answer) and (answer.answer or "").strip() != NO_ANSWER


def remember_timings(settings, answer) -> None:
    """Keep the calls' measured speed in the library, so a later plan can estimate its time
    (Store.recent_calls). Quietly skipped when the data folder cannot be written."""
    from ..library.store import open_store

    try:
        open_store(settings.data_dir).add_call_timings(settings.host, settings.model, answer.calls)
    except (FolioError, OSError):
        pass


def _read_files(args, settings):
    from ..reading.ingest import ingest_paths

    progress = _reading_progress() if sys.stderr.isatty() else None
    report = ingest_paths(args.files, password=args.password, settings=settings, progress=progress)
    if progress:
        sys.stderr.write("\r\x1b[2K")
    if report.errors:
        for name, message in report.errors:
            print(f"folio: {message if name in message else f'{name}: {message}'}", file=sys.stderr)
        names = ", ".join(name for name, _ in report.errors)
        raise _InputErrors(
            f"Could not read {names}; nothing was asked. Fix or remove the file(s) and ask again.",
            [{"name": name, "message": message} for name, message in report.errors],
        )
    if not report.documents:
        raise InputError("No documents to ask: give at least one readable file.")
    return report.documents


def _reading_progress():
    """A one-line progress display on a terminal, refreshed at most a few times a second."""
    last = [0.0]

    def show(name: str, stage: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] < 0.2:
            return
        last[0] = now
        of = f"/{total}" if total else ""
        sys.stderr.write(f"\r\x1b[2K{name}: {stage} {done}{of}")
        sys.stderr.flush()

    return show


class _InputErrors(InputError):
    def __init__(self, message: str, errors: list[dict]):
        self.errors = errors
        super().__init__(message)


def _ask(args, settings, documents) -> int:
    from ..asking.answering import ask_stream

    cancel = threading.Event()
    events: queue.Queue = queue.Queue()

    def work() -> None:
        for event in ask_stream(documents, args.question, settings, think=args.think, cancel=cancel):
            events.put(("event", event))

    in_thread(work, events, "folio-ask")
    answer = follow(events, _JsonView() if args.json else _TerminalView(), (cancel,))
    if answer is None:
        return EXIT_CANCELLED
    remember_timings(settings, answer)
    return exit_status(answer, cancelled=cancel.is_set())


def exit_status(answer, *, cancelled: bool = False) -> int:
    """The command's exit status for a finished Answer (see ASK_EXIT_HELP)."""
    if answer.status == "stopped" or (answer.interrupted and cancelled):
        return EXIT_CANCELLED
    if answer.interrupted:
        return EXIT_SERVER
    if answer.status == "prompt_cut":
        return EXIT_PROMPT_CUT
    return EXIT_OK


def in_thread(work, events: queue.Queue, name: str) -> None:
    """Run `work` (which puts ("event", e) items into `events`) in a thread, so the terminal can
    show elapsed time and take Ctrl-C; its error, then ("end", None), follow."""

    def target() -> None:
        try:
            work()
        except FolioError as exc:
            events.put(("error", exc))
        except Exception as exc:  # a bug must still reach the user as one line, not a hang
            events.put(("error", FolioError(f"Unexpected failure: {type(exc).__name__}: {exc}")))
        finally:
            events.put(("end", None))

    threading.Thread(target=target, daemon=True, name=name).start()


def follow(events: queue.Queue, view, cancels) -> object:
    """Show events as they come, then the answer (returned; None when stopped before one). Each
    Ctrl-C sets the next of `cancels` (one call: its cancel; several: reading, then composing)."""
    started = time.monotonic()
    answer = None
    pressed = 0
    while True:
        try:
            kind, item = events.get(timeout=WAIT_REFRESH_S)
        except queue.Empty:
            view.waiting(time.monotonic() - started)
            continue
        except KeyboardInterrupt:
            cancels[min(pressed, len(cancels) - 1)].set()
            pressed += 1
            view.cancelling(pressed)
            continue
        if kind == "end":
            if answer is not None:
                view.finish(answer)
            return answer
        if kind == "error":
            view.clear()
            raise item
        if item.kind == "final":
            answer = item.answer
        else:
            view.show(item)


class _TerminalView:
    """Streams to a terminal: answer on stdout, thinking (dimmed) and progress on stderr."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.in_thinking = False
        self.got_text = False
        self.wait_line = False

    def _err(self, text: str, end: str = "\n") -> None:
        sys.stderr.write(text + end)
        sys.stderr.flush()

    def clear(self) -> None:
        if self.wait_line:
            self._err("\r\x1b[2K", end="")
            self.wait_line = False

    def waiting(self, elapsed: float) -> None:
        if self.tty and not self.got_text:
            self._err(f"\r\x1b[2Kwaiting for the model ({elapsed:.0f} s; reading long documents takes a while)",
                      end="")
            self.wait_line = True

    def cancelling(self, pressed: int = 1) -> None:
        self.clear()
        self._err("\nfolio: stopping; the part that arrived is kept.")

    def show(self, event) -> None:
        self.clear()
        if event.kind == "status":
            self._err(f"folio: {event.text}")
            return
        self.got_text = True
        if event.kind == "thinking":
            if not self.in_thinking:
                self._err("\x1b[2m" if self.tty else "", end="")
                self._err("--- thinking ---")
                self.in_thinking = True
            self._err(event.text, end="")
            return
        self._end_thinking()
        sys.stdout.write(event.text)
        sys.stdout.flush()

    def _end_thinking(self) -> None:
        if self.in_thinking:
            self._err("\n--- end of thinking ---" + ("\x1b[0m" if self.tty else ""))
            self.in_thinking = False

    def finish(self, answer) -> None:
        self._end_thinking()
        sys.stdout.write("\n")
        if answer.citations:
            sys.stdout.write("\nCitations:\n")
            for citation in answer.citations:
                sys.stdout.write(_citation_line(citation) + "\n")
        if says_no_answer_apart(answer):
            sys.stdout.write("\n(The documents do not answer this question.)\n")
        sys.stdout.flush()
        _prompt_cut_notice(answer)
        for warning in answer.warnings:
            self._err(f"warning: {warning}")
        for call in answer.calls:
            self._err(_call_line(call, answer.timings))


class _JsonView:
    """Collects silently; prints exactly one JSON object at the end."""

    def clear(self) -> None:
        pass

    def waiting(self, elapsed: float) -> None:
        pass

    def cancelling(self, pressed: int = 1) -> None:
        print("folio: stopping; the part that arrived is kept.", file=sys.stderr)

    def show(self, event) -> None:
        pass

    def finish(self, answer) -> None:
        _prompt_cut_notice(answer)
        print(json.dumps(answer.to_json(), ensure_ascii=False))


def _prompt_cut_notice(answer) -> None:
    """The answer's top-level state, said first when the server did not read the whole prompt."""
    if answer.status == "prompt_cut":
        print("folio: THE SERVER DID NOT READ THE WHOLE PROMPT: do not rely on this answer (exit status 4).",
              file=sys.stderr)


def _citation_line(citation) -> str:
    where = citation.document or "?"
    if citation.page is not None:  # the whole range: the quote may sit on the passage's last page
        where += " " + page_range_text(citation.page, citation.page_end, citation.page_label)
    quote = f' "{citation.quote}"' if citation.quote else " (no quote)"
    return f"  [{citation.id}] {STATUS_MARKS.get(citation.status, citation.status)} {where}:{quote}"


def _call_line(call: dict, timings: dict | None = None) -> str:
    """One line of statistics; times count from the question's start (check and count included)."""
    server = call.get("server_prompt_tokens")
    read = f", server read {server:,}" if isinstance(server, int) else ""
    first = call.get("first_token_s")
    first_text = f", first token {first:.1f} s" if isinstance(first, (int, float)) else ""
    counted = (timings or {}).get("count_s")
    before = f" (of which the server's prompt count {counted:.1f} s)" if isinstance(counted, float) and counted >= 0.5 else ""
    model = f", model {call['model']}" if call.get("model") and call.get("model") != call.get("requested_model") else ""
    return (
        f"folio: prompt {call['prompt_tokens']:,} tokens{read}; num_ctx {call['num_ctx']:,}, "
        f"num_keep {call['num_keep']:,}{first_text}{before}, total {call['total_s']:.1f} s, "
        f"done: {call.get('done_reason') or '-'}{model}"
    )


# --------------------------------------------------------------------------------- doctor


def run_doctor(args) -> int:
    from ..servers.doctor import diagnose, format_report

    try:
        settings = _settings(args)
        diagnosis = diagnose(settings)
    except FolioError as exc:
        return _fail(args, exc)
    if args.json:
        print(json.dumps(_diagnosis_json(diagnosis), ensure_ascii=False, default=str))
    else:
        print(format_report(diagnosis))
    return 0 if getattr(diagnosis, "ok", True) else 3


def _diagnosis_json(diagnosis) -> dict:
    to_json = getattr(diagnosis, "to_json", None)
    if callable(to_json):
        return to_json()
    import dataclasses

    return dataclasses.asdict(diagnosis) if dataclasses.is_dataclass(diagnosis) else dict(vars(diagnosis))

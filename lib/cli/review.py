"""`python -m lib review`: the same columns put to every document, one call each (keep it stable).

    python -m lib review a.pdf b.pdf --column "Court: Which court decided?" \\
        --column "Outcome: What was the outcome?" --type "Outcome=options:Allowed,Dismissed" --xlsx out.xlsx
    python -m lib review *.pdf --preset judgments --json            # a ready column set
    python -m lib review --collection "Matter 42" --column ...      # a library collection, whole

The table is stored as it fills (FOLIO_DATA_DIR) by the table's "review" job (the app shows it;
`python -m lib jobs resume ID` finishes it): running the same documents again resumes it,
asking only cells not yet answered; a column added later is the only one asked; a column whose
question changed is asked again. Exit status: 0 every cell answered (a value or "not stated");
2 bad input, or a document too long for one call (the other rows are kept); 3 a server problem
or a reply that could not be read (finished cells are kept); 130 stopped by you.
Progress goes to stderr, the table (or one JSON object) to stdout.
"""

from __future__ import annotations

import hashlib
import json
import queue
import sys
import threading
from dataclasses import replace
from pathlib import Path

from ..config import load_settings
from ..errors import FolioError, InputError

EXIT_CANCELLED = 130
WAIT_S = 0.5


def add_parser(subparsers) -> None:
    """Register `review`."""
    parser = subparsers.add_parser(
        "review",
        help="put the same columns (questions) to every document: one call each, every cell cited",
        description="Read each document whole in one call that answers every column; type, cite and "
        "verify each cell; store the table as it fills and export it.",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="documents (PDF, DOCX, EPUB, HTML, text)")
    parser.add_argument("--collection", help="review the documents of a library collection instead of files")
    parser.add_argument("--column", action="append", default=[], metavar='"TITLE: QUESTION"',
                        help="a column: its title, a colon, the question (repeat for more columns)")
    parser.add_argument("--preset", help="start from a ready column set: judgments, manuals or theses "
                        "(a --column with the title of one of its columns replaces it)")
    parser.add_argument("--type", action="append", default=[], metavar="TITLE=TYPE",
                        help="a column's type: text, yesno, date, number, options:A,B,C or list (default text)")
    parser.add_argument("--title", help="the table's title (default: from the documents)")
    parser.add_argument("--xlsx", metavar="PATH", help="write the table as an Excel workbook")
    parser.add_argument("--csv", metavar="PATH", help="write the table as CSV")
    parser.add_argument("--docx", metavar="PATH", help="write a Word memo with footnoted citations")
    parser.add_argument("--concurrency", type=int, help="documents in flight at once (default: FOLIO_CONCURRENCY, else 1 for "
                        "Ollama, 4 for vLLM, llama-server's slot count, 1 for llama-cpp-python)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.add_argument("--password", help="password for encrypted PDFs")
    parser.add_argument("--backend", choices=("ollama", "openai"), help="server kind (default: ollama)")
    parser.add_argument("--host", help="server URL (default: FOLIO_HOST, else OLLAMA_HOST or http://127.0.0.1:11434 for Ollama, http://127.0.0.1:8000 for --backend openai)")
    parser.add_argument("--model", help="model name (default: FOLIO_MODEL or qwen3-128k:14b)")
    parser.add_argument("--context", type=int, help="configured context in tokens (default: 131072)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    state: dict = {}
    try:
        settings = _settings(args)
        columns = _columns(args)
        from ..library.store import open_store

        store = open_store(settings.data_dir)
        documents = _documents(args, settings, store)
        from ..asking.review.table import table_for

        table, run_columns, resumed = table_for(store, documents, columns, args.title or "")
        state.update(store=store, table_id=table.id, keys=[c.key for c in run_columns], resumed=resumed)
        report = _run(args, settings, store, table.id, state["keys"])
        return _finish(args, state, report)
    except FolioError as exc:
        return _fail(args, exc, state)


def _settings(args):
    if args.context is not None and args.context <= 0:
        raise InputError(f"--context {args.context} is not a positive number of tokens.")
    if args.concurrency is not None and args.concurrency < 1:
        raise InputError(f"--concurrency {args.concurrency} is not a positive number of calls.")
    return load_settings(backend=args.backend, host=args.host, model=args.model, context=args.context)


def _columns(args):
    from ..asking.review.columns import apply_types, check_columns, parse_column, preset

    columns = preset(args.preset) if args.preset else []
    from_preset = len(columns)
    for column in (parse_column(spec) for spec in args.column):
        same = [i for i, c in enumerate(columns[:from_preset]) if c.title.casefold() == column.title.casefold()]
        if same:  # a --column titled like a preset column edits its question (its type stays unless --type)
            columns[same[0]] = replace(columns[same[0]], question=column.question)
        else:
            columns.append(column)
    return apply_types(check_columns(columns), args.type)


# ---------------------------------------------------------------------------- documents


def _documents(args, settings, store):
    if args.collection and args.files:
        raise InputError("Give files or --collection NAME, not both.")
    if args.collection:
        return [store.get_document(sha) for sha in collection_shas(store, args.collection)]
    if not args.files:
        raise InputError("Give the documents to review: FILE... or --collection NAME.")
    return _read_files(args, settings, store)


def collection_shas(store, name: str) -> list[str]:
    """The documents of a library collection: the store's `collection_shas(name)` (issue 10's
    collections, lib/library/catalog.py), or a clear refusal where this Folio has none."""
    from ..errors import StoreError

    finder = getattr(store, "collection_shas", None)
    if finder is None:
        raise InputError(f"Collections are not available in this Folio yet, so --collection {name!r} cannot be "
                         "read: give the files instead.")
    try:
        shas = list(finder(name))
    except StoreError as exc:
        raise InputError(f"--collection {name!r}: {exc}") from exc
    if not shas:
        raise InputError(f"Collection {name!r} has no documents: add documents to it first.")
    return shas


def _read_files(args, settings, store):
    """Each file read once: a file already in the library is taken from it, a new one is read and stored."""
    from ..reading.ingest import ingest_bytes, read_file

    documents, errors = [], []
    for path in args.files:
        label = str(path)
        try:
            data = read_file(path, settings)
            sha = hashlib.sha256(data).hexdigest()
            if store.has_document(sha):
                documents.append(store.get_document(sha))
                continue
            print(f"folio: reading {label}", file=sys.stderr)
            document = ingest_bytes(data, Path(path).name, password=args.password, settings=settings)
            documents.append(store.add_document(document, data)[0])
        except FolioError as exc:
            errors.append({"name": label, "message": str(exc) if label in str(exc) else f"{label}: {exc}"})
    if errors:
        for error in errors:
            print(f"folio: {error['message']}", file=sys.stderr)
        names = ", ".join(e["name"] for e in errors)
        raise _InputErrors(f"Could not read {names}; nothing was asked. Fix or remove the file(s) and run again.",
                           errors)
    return list({d.sha256: d for d in documents}.values())


class _InputErrors(InputError):
    def __init__(self, message: str, errors: list[dict]):
        self.errors = errors
        super().__init__(message)


# -------------------------------------------------------------------------------- run


def _run(args, settings, store, table_id: int, keys: list[str]):
    """The table's "review" job, run in a worker: the terminal shows progress, and Ctrl-C cancels at once.

    The job is the one the app shows: a run stopped here (Ctrl-C, a crash, kill -9) shows there
    as interrupted and can be resumed there, with `python -m lib jobs resume`, or by this command.
    """
    from ..asking.review.job import review_job
    from ..asking.review.runner import RunReport
    from ..asking.review.table import load_table
    from ..library.jobs import Jobs

    if not load_table(store, table_id).work(keys):
        return RunReport(table_id)  # nothing left to ask: no job
    jobs = Jobs(store)
    job_id = review_job(store, table_id, settings, columns=keys, concurrency=args.concurrency)
    events: queue.Queue = queue.Queue()
    reports: list = []
    errors: list = []
    options = {"settings": settings, "progress": lambda p: events.put(("progress", p)), "report": reports.append,
               "errors": errors}

    def work() -> None:
        try:
            events.put(("done", jobs.run(job_id, options=options)))
        except FolioError as exc:  # the job could not start (running elsewhere)
            events.put(("error", exc))
        except Exception as exc:  # a bug still reaches the user as one line
            events.put(("error", FolioError(f"Unexpected failure: {type(exc).__name__}: {exc}")))

    threading.Thread(target=work, daemon=True, name="folio-review-run").start()
    view = _Progress()
    while True:
        try:
            kind, item = events.get(timeout=WAIT_S)
        except queue.Empty:
            continue
        except KeyboardInterrupt:
            jobs.cancel(job_id)
            print("\nfolio: stopping; finished rows are kept.", file=sys.stderr)
            continue
        if kind == "progress":
            view.show(item)
            continue
        view.end()
        if kind == "error":
            raise item
        return _outcome(item, reports, errors, table_id)


def _outcome(info, reports: list, errors: list, table_id: int):
    """The run's report; the error that ended it raised as it was (its exit status is its kind)."""
    from ..asking.review.runner import RunReport

    if errors:
        raise errors[0]
    if info.state == "failed":
        raise FolioError(info.error or "The review job stopped with an error.")
    report = reports[0] if reports else RunReport(table_id)
    report.cancelled = report.cancelled or info.state in ("cancelled", "paused")
    return report


class _Progress:
    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def show(self, progress) -> None:
        from ..output.review_view import progress_line

        line = progress_line(progress)
        if progress.last:
            line += f" · {progress.last}"
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line)
            sys.stderr.flush()
        elif progress.last or progress.done == progress.total:
            print(f"folio: {line}", file=sys.stderr, flush=True)

    def end(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


# ---------------------------------------------------------------------------- results


def _finish(args, state: dict, report) -> int:
    from ..asking.review.table import load_table

    table = load_table(state["store"], state["table_id"])
    _export(args, table)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    status = _exit_status(table, state["keys"])
    if report.cancelled:
        status = EXIT_CANCELLED
    _print(args, table, state, report.calls, None)
    return status


def _exit_status(table, keys: list[str]) -> int:
    statuses = {table.cell(row.sha256, key).status for row in table.rows for key in keys}
    if statuses & {"failed", "unreadable", "pending"}:
        return 3
    if "refused" in statuses:
        return 2
    return 0


def _export(args, table) -> None:
    from ..output import review_exports

    for path, make in ((args.xlsx, review_exports.table_xlsx), (args.csv, review_exports.table_csv),
                       (args.docx, review_exports.table_docx)):
        if not path:
            continue
        try:
            Path(path).write_bytes(make(table))
        except OSError as exc:
            raise InputError(f"Could not write {path}: {exc.strerror or exc}. Check the folder exists and is writable.") from exc
        print(f"folio: wrote {path}", file=sys.stderr)


def _print(args, table, state: dict, calls, error: FolioError | None) -> None:
    from ..output.review_view import table_json

    data = table_json(table, calls, state["keys"])
    data["resumed"] = state.get("resumed", False)
    if error is not None:
        data.update(error=str(error), exit_status=error.exit_status)
    if args.json:
        _write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    else:
        _write(render_text(data))


SHOWN_CHARS = 240
"""A cell's text on a terminal line; a longer one (a small model rambles) is cut there, said so."""
SHOWN_ID_CHARS = 24


def shorten(text: str, limit: int = SHOWN_CHARS, *, say_length: bool = True) -> str:
    """`text` on one line, cut at `limit` characters (with how long it really is)."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rstrip() + "…"
    return f"{cut} ({len(text):,} characters: --json or the exports hold it all)" if say_length else cut


def render_text(data: dict) -> str:
    """The table for a terminal: one block per document, one line per cell with its mark."""
    from ..output.review_view import MARKS

    lines = [f"{data['title']} (table {data['table']})" + (" · resumed" if data.get("resumed") else "")]
    for row in data["rows"]:
        lines.append("")
        lines.append(row["document"])
        for cell in row["cells"]:
            mark = _mark(cell, MARKS)
            shown = shorten(cell["text"] or cell["reason"] or cell["status"])
            ids = " ".join(_citation_mark(c) for c in cell["citations"])
            lines.append(f"  {mark} {cell['column']}: {shown}" + (f"  {ids}" if ids else ""))
    counts = data.get("counts") or {}
    summary = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
    lines += ["", f"cells: {summary or 'none'}; calls this run: {len(data.get('calls') or [])}"]
    return "\n".join(lines) + "\n"


def _citation_mark(citation: dict) -> str:
    """'[kzt-17]' when verified, else '[kzt-17 INVALID]'; an invented ID cut short."""
    status = "" if citation["status"] == "verified" else " " + citation["status"].upper()
    return f"[{shorten(citation['id'], SHOWN_ID_CHARS, say_length=False)}{status}]"


def _mark(cell: dict, marks: dict) -> str:
    if cell["status"] in ("failed", "refused", "unreadable"):
        return marks["problem"]
    if cell["status"] == "pending":
        return marks["pending"]
    if cell["needs_review"]:
        return marks["review"]
    return marks["not_stated"] if cell["status"] == "not_stated" else marks["verified"]


def _fail(args, exc: FolioError, state: dict) -> int:
    """One line on stderr; with --json the table so far (when there is one) and the error."""
    print(f"folio: {exc}", file=sys.stderr)
    if args.json:
        if state.get("table_id"):
            from ..asking.review.table import load_table

            try:
                _print(args, load_table(state["store"], state["table_id"]), state, [], exc)
                return exc.exit_status
            except FolioError:
                pass
        errors = getattr(exc, "errors", [])
        _write(json.dumps({"error": str(exc), "errors": errors, "exit_status": exc.exit_status}, ensure_ascii=False) + "\n")
    return exc.exit_status


def _write(text: str) -> None:
    """UTF-8 on stdout whatever the locale."""
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(text)
    else:
        buffer.write(text.encode("utf-8"))
    sys.stdout.flush()

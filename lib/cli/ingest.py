"""`python -m lib ingest PATH... [--collection NAME] [--password P] [--json] [--passages]` (keep it stable).

    python -m lib ingest judgment.pdf thesis.docx           # a readable table
    python -m lib ingest *.pdf --json --passages            # exactly one JSON object on stdout
    python -m lib ingest matter/ bundle.zip                 # folders recursively, .zip members
    python -m lib ingest matter/ --collection "Smith"       # stored, added to the collection, as a job

A PATH is a file, a folder (read recursively) or a .zip archive (its members). Nothing is
stored; --collection (ingest_job.py adds it) stores the documents, as a job. Exit status 0 when every
document was read, 2 when any could not be (the others are still reported; files in
folders and archives that are not documents are skipped and listed, not errors).
Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import json
import sys
import unicodedata

from ..config import load_settings
from ..documents import Document
from ..reading.ingest import IngestReport, ingest_paths

EXIT_OK = 0
EXIT_UNREADABLE = 2


def add_parser(subparsers) -> None:
    """Register `ingest`."""
    parser = subparsers.add_parser(
        "ingest",
        help="read documents: pages, exact Qwen3 tokens, passages, and whether they fit",
        description="Read each file, cut it into citable passages, count its tokens exactly "
        "as Qwen3 does, and report whether the set fits the context budget.",
    )
    parser.add_argument("files", nargs="+", metavar="PATH",
                        help="documents (PDF, DOCX, EPUB, HTML, text, Markdown), folders (read recursively) or .zip archives")
    parser.add_argument("--password", help="password for encrypted PDFs")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.add_argument("--passages", action="store_true", help="include every passage (id, page, heading, text, tokens)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    """Ingest the files, print the table or the JSON object, return the exit status."""
    settings = load_settings()
    report, skipped = _read(args, settings)
    _end_progress_line()
    budget = _budget(report, settings)
    if args.json:
        data = report_json(report, budget, passages=args.passages)
        data["skipped"] = [{"name": label, "reason": reason} for label, reason in skipped]
        _write_stdout(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        text = render_table(report, budget, passages=args.passages)
        _write_stdout(text + "".join(f"skipped: {label}: {reason}\n" for label, reason in skipped))
    return EXIT_OK if report.ok else EXIT_UNREADABLE


def _read(args, settings) -> tuple[IngestReport, list]:
    """Files as before; folders and .zip archives expanded into their documents."""
    from ..library.ingestion import read_sources
    from ..library.sources import expand_paths

    found = expand_paths(args.files, settings)
    plain_files = len(found.sources) == len(args.files) and all(source.explicit for source in found.sources)
    if plain_files and not found.skipped and not found.errors:
        return ingest_paths(args.files, password=args.password, settings=settings, progress=_progress_printer()), []
    return read_sources(found, password=args.password, settings=settings, progress=_progress_printer())


def _budget(report: IngestReport, settings):
    from ..asking.budget import compute_budget

    return compute_budget(report.documents, settings)


# ---------------------------------------------------------------- JSON


def report_json(report: IngestReport, budget, *, passages: bool = False) -> dict:
    """The command's JSON object (its shape is a stable interface)."""
    return {
        "documents": [document_json(d, passages=passages) for d in report.documents],
        "errors": [{"name": name, "message": message} for name, message in report.errors],
        "budget": budget.to_json(),
    }


def document_json(document: Document, *, passages: bool = False) -> dict:
    data = {
        "name": document.name,
        "sha256": document.sha256,
        "format": document.format,
        "pages": document.pages,
        "chars": document.chars,
        "tokens": document.tokens,
        "counter": document.counter,
        "passages": len(document.passages),
        "warnings": list(document.warnings),
    }
    if passages:
        data["passage_list"] = [
            {"id": p.id, "page": p.page, "heading": p.heading, "text": p.text, "tokens": p.tokens}
            for p in document.passages
        ]
    return data


# ---------------------------------------------------------------- table


COLUMNS = ("document", "format", "pages", "chars", "tokens", "passages")


def render_table(report: IngestReport, budget, *, passages: bool = False) -> str:
    """Documents as an aligned table, then warnings, errors and the budget line."""
    rows = [COLUMNS] + [_row(d) for d in report.documents]
    widths = [max(_width(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(_align(cell, width, i) for i, (cell, width) in enumerate(zip(row, widths))).rstrip() for row in rows]
    if any(d.counter != "exact" for d in report.documents):
        lines.append("~ = estimated token count (the exact tokenizer could not load); estimates err on the high side.")
    for document in report.documents:
        lines += [f"warning: {document.name}: {w}" for w in document.warnings]
        if passages:
            lines += _passage_lines(document)
    lines += [f"error: {message}" for _name, message in report.errors]
    lines.append(budget.summary())
    return "\n".join(lines) + "\n"


def _row(document: Document) -> tuple[str, ...]:
    mark = "" if document.counter == "exact" else "~"
    pages = "-" if document.pages is None else f"{document.pages:,}"
    return (document.name, document.format, pages, f"{document.chars:,}", f"{mark}{document.tokens:,}", f"{len(document.passages):,}")


def _width(cell: str) -> int:
    """Columns a terminal gives the text: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in cell)


def _align(cell: str, width: int, column: int) -> str:
    pad = " " * (width - _width(cell))
    return cell + pad if column < 2 else pad + cell


def _passage_lines(document: Document) -> list[str]:
    lines = [f"\n{document.name}:"]
    for p in document.passages:
        where = ", ".join(part for part in (p.pages_text, p.heading) if part)
        preview = " ".join(p.text.split())
        preview = preview if len(preview) <= 100 else preview[:99] + "…"
        lines.append(f"  [{p.id}] {where} ({p.tokens} tokens): {preview}")
    return lines


# ---------------------------------------------------------------- output


def _write_stdout(text: str) -> None:
    """UTF-8 on stdout whatever the locale (document text is often Chinese)."""
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(text)
    else:
        buffer.write(text.encode("utf-8"))
    sys.stdout.flush()


_progress_state = {"open": False}


def _progress_printer():
    """Per-file lines on stderr; page-by-page updates only when stderr is a terminal."""
    live = sys.stderr.isatty()
    current = {"name": None}

    def report(name: str, stage: str, done: int, total: int | None) -> None:
        if name != current["name"]:
            current["name"] = name
            _end_progress_line()
            print(f"Reading {name} ...", file=sys.stderr, flush=True)
        if live:
            where = f" {done}/{total}" if total else ""
            print(f"\r  {stage}{where}   ", end="", file=sys.stderr, flush=True)
            _progress_state["open"] = True

    return report


def _end_progress_line() -> None:
    if _progress_state["open"]:
        print(file=sys.stderr, flush=True)
        _progress_state["open"] = False

"""`python -m lib eval DATASET.jsonl`: what Folio answers on a question set, scored.

    python -m lib eval bench/evalset/folio-eval.jsonl                     # a table, then the summary
    python -m lib eval set.jsonl --json --html report.html --model qwen3-128k:14b

A line per question on stderr as it goes; the table (or with --json one object:
{"summary": {...}, "questions": [...]}) on stdout; --html writes a self-contained report.
Exit status: 0 every question ran; 2 the dataset is malformed or some question's documents
could not be read (named in the output); 3 a server problem; 130 stopped by you.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from ..errors import FolioError, InputError
from .ask import EXIT_CANCELLED, _fail, _server_arguments, _settings
from .progress import run_cancellable


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score Folio's answers on a JSONL question set (answers, refusals, citations, evidence, time)",
        description="Ask every question of a JSONL dataset exactly as the app does and score the answers "
        "against the gold answers and evidence.",
    )
    parser.add_argument("dataset", metavar="DATASET.jsonl", help="one JSON object per line (see the README)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--think", dest="think", action="store_true", default=None, help="let the model reason first")
    mode.add_argument("--no-think", dest="think", action="store_false", help="answer directly")
    _server_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--html", metavar="REPORT.html", help="also write a self-contained HTML report")
    parser.add_argument("--limit", type=int, help="ask only the first N questions")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..asking.evaluation import load_dataset
    from ..output.eval_report import html_report, text_table

    try:
        settings = _settings(args)
        items = load_dataset(args.dataset)
        if args.limit is not None:
            if args.limit <= 0:
                raise InputError(f"--limit {args.limit}: give a positive number of questions.")
            items = items[: args.limit]
        html_path = Path(args.html) if args.html else None
        if html_path and not html_path.parent.is_dir():
            raise InputError(f"--html {args.html}: the folder {html_path.parent} does not exist.")
        report = _run(items, args, settings)
    except FolioError as exc:
        return _fail(args, exc)
    if html_path:
        try:
            html_path.write_text(html_report(report), encoding="utf-8")
        except OSError as exc:
            print(f"folio: could not write {html_path}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"folio: report written to {html_path}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print(text_table(report))
    if report.cancelled:
        return EXIT_CANCELLED
    return report.exit_status


def _run(items, args, settings):
    """Run in a worker so Ctrl-C stops the question in flight and keeps the scored ones."""
    from ..asking.evaluation import run_eval

    cancel = threading.Event()

    def work():
        report = None
        for event in run_eval(items, settings, dataset=args.dataset, cancel=cancel, think=args.think):
            if event.kind == "question":
                print(f"folio: [{event.index + 1}/{event.total}] {event.text}", file=sys.stderr, flush=True)
            elif event.kind == "scored":
                print(f"folio:   {event.text}", file=sys.stderr, flush=True)
            else:
                report = event.report
        return report

    return run_cancellable(work, cancel, "folio: stopping; the questions already scored are kept.", "folio-eval")

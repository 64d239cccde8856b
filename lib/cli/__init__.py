"""cli: `python -m lib COMMAND ...`, the scripting interface (keep it stable).

Each command lives in its own module with `add_parser(subparsers)` and `run(args) -> int`:
`ingest.py` (ingest; `ingest_job.py` for --collection), `ask.py` (ask in one call, doctor),
`plan.py` (plan, and the modes of ask), `collections.py` (collections), `jobs.py` (jobs),
`probe.py` (probe), `evaluate.py` (eval) and `review.py` (review tables). Exit statuses come from the error tree
(lib/errors.py): 2 for the user's input, 3 for the model server.

May import: every stage of lib (it is the top). Never streamlit or ui/.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import FolioError
from . import ask, collections, evaluate, ingest, ingest_job, jobs, plan, probe, review

COMMANDS = {"ingest": ingest, "ask": plan, "doctor": ask, "plan": plan, "collections": collections,
            "jobs": jobs, "probe": probe, "eval": evaluate, "review": review}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib", description="Folio: ask whole documents, with verified citations.")
    sub = parser.add_subparsers(dest="command", required=True)
    ingest.add_parser(sub)
    ingest_job.extend_parser(sub.choices["ingest"])
    ask.add_parser(sub)
    collections.add_parser(sub)
    jobs.add_parser(sub)
    probe.add_parser(sub)
    evaluate.add_parser(sub)
    plan.add_parser(sub)  # also gives `ask` its --mode and --concurrency
    review.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except FolioError as exc:
        print(f"folio: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("folio: interrupted", file=sys.stderr)
        return 130

"""cli: `python -m lib COMMAND ...`, the scripting interface (keep it stable).

Each command lives in its own module with `add_parser(subparsers)` and `run(args) -> int`:
`ingest.py` (ingest), `ask.py` (ask, doctor) and `review.py` (review tables). Exit statuses come from the error tree
(lib/errors.py): 2 for the user's input, 3 for the model server.

May import: every stage of lib (it is the top). Never streamlit or ui/.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import FolioError
from . import ask, ingest, review

COMMANDS = {"ingest": ingest, "ask": ask, "doctor": ask, "review": review}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib", description="Folio: ask whole documents, with verified citations.")
    sub = parser.add_subparsers(dest="command", required=True)
    ingest.add_parser(sub)
    ask.add_parser(sub)
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

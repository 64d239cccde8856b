"""`python -m lib COMMAND ...`: the scripting interface (keep it stable).

Each command lives in its own module with `add_parser(subparsers)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import sys

from . import cli_ask, cli_ingest
from .errors import FolioError

COMMANDS = {"ingest": cli_ingest, "ask": cli_ask, "doctor": cli_ask}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib", description="Folio: ask whole documents, with verified citations.")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_ingest.add_parser(sub)
    cli_ask.add_parser(sub)
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

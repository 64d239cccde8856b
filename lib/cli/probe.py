"""`python -m lib probe`: does the server read the whole context, and does the model find facts?

    python -m lib probe                                   # 5 lengths x 5 depths of the real context
    python -m lib probe --lengths 0.1,0.5,0.95 --depths 0,50,100 --json
    python -m lib probe --context 40960 --host http://gpu-box:11434 --model qwen3-128k:14b

Prints the cost before it starts (calls, tokens, time from the server's earlier speed), a line
per call on stderr, then the grid (length x depth) and the verdict on stdout; `--json` prints
one object instead: {"verdict", "read_all", "context", "cells": [...], ...}. The result is kept
in the library (shown again on the Settings page).

Exit status: 0 the server read every prompt whole; 4 it did not (or would not say how much it
read), whatever the model found; 2 bad options; 3 a server problem; 130 stopped by you.
"""

from __future__ import annotations

import json
import sys
import threading

from ..asking import probe
from ..errors import FolioError, StoreError
from .ask import EXIT_CANCELLED, _fail, _server_arguments, _settings
from .progress import run_cancellable

CELL_WORDS = {"green": "cited", "amber": "found", "red": "MISSED", "grey": "not read"}
LEGEND = ("cited = found, cited at its passage with a verified quote; found = found, citation not verified; "
          "MISSED = not in the answer; not read = the server did not read that part of the prompt")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="measure the real context: does the server read it all, does the model find facts at every depth",
        description="Plant short facts at several depths of real prose at several lengths up to the real "
        "context, ask for them, and check what the server read and what the model found and cited.",
    )
    parser.add_argument("--lengths", default=",".join(f"{f:g}" for f in probe.LENGTHS),
                        help="prompt lengths as shares of the real context (default: 0.1,0.25,0.5,0.75,0.95)")
    parser.add_argument("--depths", default=",".join(str(d) for d in probe.DEPTHS),
                        help="where the facts sit, in percent of the document (default: 0,25,50,75,100)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--think", dest="think", action="store_true", default=False,
                      help="let the model reason first (much slower; more room reserved)")
    mode.add_argument("--no-think", dest="think", action="store_false", help="answer directly (the default)")
    _server_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object with every cell")
    parser.add_argument("--no-save", action="store_true", help="do not keep the result in the library")
    parser.set_defaults(handler=run)


def run(args) -> int:
    try:
        settings = _settings(args)
        fractions, depths = probe.parse_fractions(args.lengths), probe.parse_depths(args.depths)
        from ..servers import make_backend

        backend = make_backend(settings)
        info = backend.check()
        plan = probe.plan_probe(settings, fractions=fractions, depths=depths, think=args.think,
                                trained_context=info.trained_context)
        speed = _speed(settings)
        _err(f"folio: probing {settings.model} at {settings.host} ({settings.backend}), real context "
             f"{plan.context:,} tokens")
        _err(f"folio: cost: {plan.cost_text(speed)}")
        result = _run(plan, settings, backend, info, speed)
    except FolioError as exc:
        return _fail(args, exc)
    if result is None:
        return EXIT_CANCELLED
    if not args.no_save:
        _save(result, settings)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print(format_grid(result))
        print()
        print(result.verdict.text)
    if result.cancelled:
        return EXIT_CANCELLED
    return result.exit_status


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _speed(settings):
    try:
        from ..library.store import Store

        return probe.speed_from_rows(Store(settings.data_dir).recent_calls(settings.host, settings.model))
    except StoreError:
        return None  # no estimate is no reason to refuse the probe


def _save(result, settings) -> None:
    try:
        from ..library.store import Store

        result.id = Store(settings.data_dir).add_probe_run(result.to_json())
    except StoreError as exc:
        _err(f"folio: warning: the result could not be kept: {exc}")


def _run(plan, settings, backend, info, speed):
    """Run the probe in a worker so Ctrl-C cancels the call in flight and keeps finished rows."""
    cancel = threading.Event()

    def work():
        result = None
        for event in probe.run_probe(plan, settings, backend=backend, server_info=info, cancel=cancel, speed=speed):
            if event.kind == "call":
                eta = f", about {probe.duration_text(event.eta_s)} left" if event.eta_s else ""
                _err(f"folio: [{event.index + 1}/{event.total}] {event.text}{eta}")
            elif event.kind == "row":
                _err(f"folio: [{event.index + 1}/{event.total}] {event.text}")
            else:
                result = event.result
        return result

    return run_cancellable(work, cancel, "folio: stopping; the calls already finished are kept.", "folio-probe")


def format_grid(result) -> str:
    """The grid as a text table: one row per length, one column per depth, then what the server read."""
    depths = list(result.plan.depths)
    width = max(9, *(len(w) for w in CELL_WORDS.values()))
    head = f"{'prompt tokens':>22}  " + "".join(f"{f'{d} %':>{width}}" for d in depths) + "   server read"
    lines = [f"Probe of {result.model} at {result.host} ({result.backend}), real context {result.plan.context:,} "
             f"tokens, {result.date}", "", f"{'':>22}  {'depth':^{width * len(depths)}}", head]
    for row in result.rows:
        label = f"{row.length_tokens:,} ({row.fraction * 100:.0f} %)"
        cells = "".join(f"{CELL_WORDS[c.status]:>{width}}" for c in row.cells)
        read = "not reported" if row.server_read_tokens is None else f"{row.server_read_tokens:,} of {row.sent_tokens:,}"
        lines.append(f"{label:>22}  {cells}   {read}")
    lines += ["", LEGEND]
    return "\n".join(lines)

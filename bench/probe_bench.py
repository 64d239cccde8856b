"""The probe's own overhead: a full 25-cell grid (5 lengths x 5 depths) at 131,072 tokens, outside server time.

    .venv/bin/python bench/probe_bench.py                 # 5 runs, writes bench/results/probe_bench.json
    .venv/bin/python bench/probe_bench.py --runs 9 --context 131072

The server is the fake Ollama (tests/fake_ollama.py, a real HTTP server on 127.0.0.1) answering as
an oracle, so every cell is judged as in a real run. The time spent inside the backend's calls
(check, count, chat: the server's side and the wire) is measured and subtracted from the wall
time of run_probe: what remains is Folio's own work, building the documents (prose, planting,
passages, exact counts), building and counting each prompt, and checking the answers.
The first run of a process also cuts the shipped prose into passages (once): it is reported
apart as the cold figure. Reference: under 2 s (issue 12), cold and warm.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_ollama import FakeOllama  # noqa: E402
from fake_personas import probe_oracle  # noqa: E402

from lib.asking import haystack, probe  # noqa: E402
from lib.config import Settings  # noqa: E402
from lib.reading.tokens import get_counter  # noqa: E402
from lib.servers import make_backend  # noqa: E402

REFERENCE_S = 2.0


class TimedBackend:
    """A backend whose calls are timed: what they take is the server's share, not Folio's."""

    def __init__(self, backend):
        self.backend = backend
        self.seconds = 0.0

    def _timed(self, call, *args):
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.seconds += time.perf_counter() - started

    def check(self):
        return self._timed(self.backend.check)

    def count_prompt(self, request):
        return self._timed(self.backend.count_prompt, request)

    def chat(self, request, cancel=None):
        events = self.backend.chat(request, cancel)
        while True:
            started = time.perf_counter()
            try:
                event = next(events)
            except StopIteration:
                self.seconds += time.perf_counter() - started
                return
            self.seconds += time.perf_counter() - started
            yield event


def one_run(settings: Settings, seed: int) -> dict:
    backend = TimedBackend(make_backend(settings))
    started = time.perf_counter()
    plan = probe.plan_probe(settings, fractions=probe.LENGTHS, depths=probe.DEPTHS, trained_context=settings.context)
    for event in probe.run_probe(plan, settings, backend=backend, seed=seed):
        pass
    wall = time.perf_counter() - started
    result = event.result
    assert {c.status for c in result.cells} == {"green"}, result.verdict.text
    return {"wall_s": round(wall, 3), "server_s": round(backend.seconds, 3), "own_s": round(wall - backend.seconds, 3),
            "cells": len(result.cells), "prompt_tokens": sum(r.length_tokens for r in result.rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--context", type=int, default=131072)
    args = parser.parse_args(argv)
    get_counter().count("warm up")  # the tokenizer loads once per process, before any probe
    haystack.prose_paragraphs()
    with FakeOllama() as fake:
        fake.script(answer=probe_oracle, thinking="")
        settings = Settings(host=fake.url, context=args.context)
        runs = [one_run(settings, seed) for seed in range(args.runs)]
    cold = runs[0]["own_s"]
    own = statistics.median(r["own_s"] for r in runs[1:] or runs)
    load = os.getloadavg()[0]
    print(f"{'run':>4} {'wall s':>8} {'server s':>9} {'own s':>7} {'cells':>6} {'prompt tokens':>14}")
    for i, r in enumerate(runs, 1):
        print(f"{i:>4} {r['wall_s']:>8.3f} {r['server_s']:>9.3f} {r['own_s']:>7.3f} {r['cells']:>6} {r['prompt_tokens']:>14,}")
    verdict = "OK" if max(own, cold) < REFERENCE_S else "OVER"
    print(f"\nProbe overhead, 25 cells at {args.context:,} tokens: warm median {own:.3f} s, cold (first probe of "
          f"the process) {cold:.3f} s; reference: under {REFERENCE_S:.0f} s -> {verdict} (load {load:.1f})")
    record = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {load:.1f}",
        "context": args.context, "reference_s": REFERENCE_S, "median_own_s": round(own, 3),
        "cold_own_s": round(cold, 3), "runs": runs,
    }
    out = ROOT / "bench" / "results" / "probe_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

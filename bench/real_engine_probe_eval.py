"""The probe and the eval command on the REAL engine: what they say about SmolLM2-135M on this CPU.

    .venv/bin/python bench/real_engine_probe_eval.py          # writes bench/results/real_engine_probe_eval.json
    .venv/bin/python bench/real_engine_probe_eval.py --n-ctx 8192 --lengths 0.25,0.5,0.9

Starts the tests' real engine (tests/llama_engine.py: llama.cpp serving SmolLM2-135M on the CPU),
runs `python -m lib probe` on a small context and `python -m lib eval` on the shipped set
(bench/evalset/), and keeps both JSON results with the time each took. A 135M model is far too
small to find facts or cite well: the figures are the honest baseline of the machinery on a
CPU, not a verdict on Folio's promised model.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from llama_engine import start_engine  # noqa: E402

from lib.cli import main as folio  # noqa: E402

EVALSET = ROOT / "bench" / "evalset" / "folio-eval.jsonl"


def run(argv: list[str]) -> tuple[int, dict, float]:
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = folio(argv)
    seconds = time.monotonic() - started
    sys.stderr.write(err.getvalue())
    return code, json.loads(out.getvalue()), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--probe-context", type=int, default=2048)
    parser.add_argument("--lengths", default="0.4,0.8")
    parser.add_argument("--depths", default="0,50,100")
    parser.add_argument("--answer-reserve", default="64")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["FOLIO_DATA_DIR"] = str(Path(scratch) / "data")
        os.environ["FOLIO_ANSWER_RESERVE"] = args.answer_reserve
        with start_engine(Path(scratch) / "server.log", n_ctx=args.n_ctx) as engine:
            server = ["--backend", "openai", "--host", engine.url, "--json"]
            probe_code, probe, probe_s = run(["probe", *server, "--context", str(args.probe_context),
                                              "--lengths", args.lengths, "--depths", args.depths])
            eval_code, report, eval_s = run(["eval", str(EVALSET), *server, "--context", str(args.n_ctx),
                                             "--no-think"])
    load = os.getloadavg()[0]
    record = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "engine": "tests/llama_engine.py: llama.cpp, SmolLM2-135M-Instruct Q4_1, CPU",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {load:.1f}",
        "n_ctx": args.n_ctx, "answer_reserve": int(args.answer_reserve),
        "probe": {"exit_status": probe_code, "seconds": round(probe_s, 1), "result": probe},
        "eval": {"exit_status": eval_code, "seconds": round(eval_s, 1), "report": report},
    }
    out = ROOT / "bench" / "results" / "real_engine_probe_eval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nProbe ({probe_s:.0f} s, exit {probe_code}): {probe['verdict']}")
    for length in sorted({c['length_tokens'] for c in probe["cells"]}):
        cells = [c for c in probe["cells"] if c["length_tokens"] == length]
        print(f"  {length:>6,} tokens: " + "  ".join(f"{c['depth']:>3} % {c['status']:<5}" for c in cells)
              + f"   read {cells[0]['server_read_tokens']} of {cells[0]['sent_tokens']}")
    summary = report["summary"]
    print(f"\nEval of {summary['questions']} questions ({eval_s:.0f} s, exit {eval_code}):")
    for key in ("answer_em", "answer_f1", "answer_key_facts", "refusal_accuracy", "false_refusal_rate",
                "invalid_citation_rate", "quote_verified_rate", "evidence_hit_rate", "first_token_s_median",
                "total_s_median"):
        print(f"  {key:<24} {summary[key]!s:>8}  (n={summary['n'][key]})")
    print(f"  tokens sent / read       {summary['tokens_sent']:,} / {summary['tokens_read']:,}")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

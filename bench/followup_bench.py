"""First question vs follow-up on the same document, with a REAL engine, side by side in one run.

    .venv/bin/python bench/followup_bench.py                 # defaults: ~3,000-token document
    .venv/bin/python bench/followup_bench.py --clauses 120 --n-ctx 8192 --follow-ups 3

It starts llama.cpp's own llama-server with SmolLM2-135M (tests/llama_engine.py; built once by
scripts/llama-server.sh), ingests a generated document with Folio, asks a first question and
then follow-ups through lib.asking.answering.ask_stream, and measures what the user waits for:
seconds from asking to the first streamed word. The server's own counters, which end every
streamed answer (timings: cache_n reused from its cache, prompt_n evaluated, prompt_ms), say
what each question cost it; Folio reports them per call. Results: printed as a table and
written to bench/results/followup_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.asking.answering import ask_stream  # noqa: E402
from lib.config import Settings  # noqa: E402
from lib.reading.ingest import ingest_bytes  # noqa: E402
from lib.servers.openai import OpenAIBackend  # noqa: E402
from tests.llama_engine import default_threads, start_engine  # noqa: E402

QUESTIONS = (
    "How much is due on day 3?",
    "And on day 5?",
    "Who receives the payments?",
    "What happens on day 7?",
)


def document_text(clauses: int, tag: str) -> str:
    """A lease with numbered clauses; the tag makes it new to the server's cache."""
    topics = ("rent", "service charge", "insurance premium", "deposit top-up", "maintenance fee")
    return "\n\n".join(
        f"Clause {i} ({tag}). The lessee shall pay the {topics[i % len(topics)]} of {100 + 7 * i} euros "
        f"on day {1 + i % 28} of each month to the lessor, by bank transfer to the account named in "
        f"schedule {i}. Late payment of this amount carries interest of {1 + i % 4} percent per month."
        for i in range(1, clauses + 1)
    )


def ask_timed(document, question: str, settings: Settings, backend, history) -> dict:
    """Ask one question; the wait for the first word, the total, and the server's own counts."""
    started = time.monotonic()
    first_word = None
    answer = None
    for event in ask_stream([document], question, settings, backend=backend, history=history):
        if event.kind in ("thinking", "content") and first_word is None:
            first_word = time.monotonic() - started
        if event.kind == "final":
            answer = event.answer
    total = time.monotonic() - started
    call = answer.calls[0]
    read, reused = call["server_prompt_tokens"], call["cached_tokens"] or 0
    return {
        "question": question,
        "first_word_s": round(first_word, 3) if first_word is not None else None,
        "total_s": round(total, 3),
        "prompt_tokens_server": read,
        "prompt_tokens_counted": call["server_counted_prompt"],
        "evaluated_tokens": read - reused,
        "reused_tokens": reused,
        "prompt_eval_s": call["prompt_eval_s"],
        "interrupted": answer.interrupted,
        "answer": answer.answer,
    }, answer


def run(clauses: int, n_ctx: int, follow_ups: int, reserve: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        threads = default_threads()
        with start_engine(Path(folder) / "server.log", n_ctx=n_ctx, threads=threads) as engine:
            settings = Settings(backend="openai", host=engine.url, context=n_ctx, answer_reserve=reserve,
                                think=False, data_dir=Path(folder) / "data")
            tag = uuid.uuid4().hex[:8]
            document = ingest_bytes(document_text(clauses, tag).encode(), f"lease-{tag}.txt", settings=settings)
            backend = OpenAIBackend(settings)
            backend_version = backend.check().version
            rows, history = [], []
            for question in QUESTIONS[: follow_ups + 1]:
                row, answer = ask_timed(document, question, settings, backend, list(history))
                rows.append(row)
                history.append(answer.turn)
    first, later = rows[0], rows[1:]
    median_follow_up = statistics.median(r["first_word_s"] for r in later)
    return {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "engine": f"llama.cpp llama-server ({backend_version}), SmolLM2-135M-Instruct Q4_1, CPU",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {threads} thread(s)",
        "n_ctx": n_ctx,
        "document_tokens_qwen": document.tokens,
        "rows": rows,
        "ratio_first_to_follow_up": round(first["first_word_s"] / median_follow_up, 1),
    }


def table(result: dict) -> str:
    lines = [
        "| question | kind | prompt tokens (server) | evaluated | reused from cache | reading (s) | first word (s) | total (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for i, row in enumerate(result["rows"]):
        kind = "first" if i == 0 else f"follow-up {i}"
        lines.append(
            f"| {row['question']} | {kind} | {row['prompt_tokens_server']:,} | {row['evaluated_tokens']:,} | "
            f"{row['reused_tokens']:,} | {row['prompt_eval_s'] or 0:.2f} | {row['first_word_s']:.2f} | {row['total_s']:.2f} |"
        )
    lines.append("")
    lines.append(f"First word, first question / follow-up (median): **{result['ratio_first_to_follow_up']}x**")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clauses", type=int, default=40, help="document size (about 74 Qwen tokens each)")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--follow-ups", type=int, default=2)
    parser.add_argument("--reserve", type=int, default=48, help="answer tokens reserved per question")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "followup_bench.json")
    args = parser.parse_args(argv)
    result = run(args.clauses, args.n_ctx, max(1, min(args.follow_ups, len(QUESTIONS) - 1)), args.reserve)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"{result['engine']}; {result['machine']}; n_ctx {result['n_ctx']}; "
          f"document {result['document_tokens_qwen']:,} Qwen tokens\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A 200-row review table at concurrency 1 and 4 against an OpenAI-compatible fake with realistic delays.

    .venv/bin/python bench/review_concurrency_bench.py                 # 200 rows, concurrency 1 then 4
    .venv/bin/python bench/review_concurrency_bench.py --rows 40 --prefill-us 40 --token-ms 4

The fake (`BatchingServer`, below: tests/fake_openai.py was not on main when this was written)
is a real HTTP server on 127.0.0.1 that speaks vLLM's dialect (/v1/models with max_model_len,
/tokenize, streamed /v1/chat/completions with usage) and behaves like a batching GPU server:
each request spends prefill time per prompt token, then streams its answer token by token; a
request's decoding slows down a little for every other request decoding at the same time
(`--batch-slowdown`, 8 % each). The answer is the schema-shaped JSON a constrained model gives,
quoting the document. Target: concurrency 4 finishes in under 0.35 of the time of concurrency 1.
Results printed and written to bench/results/review_concurrency_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.asking import prompt as folio_prompt  # noqa: E402
from lib.asking.review import Column, create_table, load_table, run_table  # noqa: E402
from lib.config import Settings  # noqa: E402
from lib.library.store import Store  # noqa: E402
from lib.reading.ingest import ingest_bytes  # noqa: E402
from lib.reading.tokens import get_counter  # noqa: E402

TARGET_RATIO = 0.35
COLUMNS = [
    Column("Court", "Which court decided?"),
    Column("Date", "When was judgment given?", "date"),
    Column("Outcome", "What was the outcome?", "options", ("Allowed", "Dismissed")),
    Column("Damages", "What damages were awarded?", "number"),
]
PASSAGE = re.compile(r"^\[([a-z]{3,12}-\d+)\] (.+)$", re.M)


def fill(schema: dict, pid: str, quote: str, name: str = ""):
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    if "anyOf" in schema:
        return fill(schema["anyOf"][0], pid, quote, name)
    kind = schema.get("type")
    if kind == "object":
        return {k: fill(v, pid, quote, k) for k, v in schema["properties"].items()}
    if kind == "array":
        return [fill(schema["items"], pid, quote, name)]
    return pid if name == "id" else quote


class BatchingServer:
    """See the module docstring."""

    def __init__(self, prefill_us: float, token_ms: float, slowdown: float):
        self.prefill_s, self.token_s, self.slowdown = prefill_us / 1e6, token_ms / 1000, slowdown
        self.counter = get_counter()
        self.decoding = 0
        self.lock = threading.Lock()
        self.requests = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def count(self, messages) -> int:
        return self.counter.count(folio_prompt.render_chat(messages, False))

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, data: dict) -> None:
                raw = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                if self.path.startswith("/v1/models"):
                    return self._json({"data": [{"id": "qwen3", "owned_by": "vllm", "max_model_len": 131072}]})
                self._json({"version": "0.9.0"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/tokenize":
                    return self._json({"count": fake.count(body["messages"])})
                fake.chat(self, body)

        return Handler

    def chat(self, handler, body: dict) -> None:
        with self.lock:
            self.requests += 1
        tokens = self.count(body["messages"])
        time.sleep(tokens * self.prefill_s)  # prefill: silent, proportional to the prompt
        text = body["messages"][-1]["content"].split("</documents>")[0]
        pid, line = PASSAGE.findall(text)[1]
        schema = body["response_format"]["json_schema"]["schema"]
        answer = json.dumps(fill(schema, pid, " ".join(line.split()[:8])))
        pieces = re.findall(r"\S+\s*", answer)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        with self.lock:
            self.decoding += 1
        try:
            for piece in pieces:
                with self.lock:
                    others = self.decoding - 1
                time.sleep(self.token_s * (1 + self.slowdown * others))
                self._send(handler, {"choices": [{"delta": {"content": piece}, "finish_reason": None}]})
        finally:
            with self.lock:
                self.decoding -= 1
        self._send(handler, {"choices": [{"delta": {}, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": tokens, "completion_tokens": len(pieces)}})
        raw = b"data: [DONE]\n\n"
        handler.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(raw), raw))
        handler.wfile.flush()

    @staticmethod
    def _send(handler, data: dict) -> None:
        raw = f"data: {json.dumps(data)}\n\n".encode()
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        handler.wfile.flush()


def judgment(number: int) -> str:
    paragraphs = [f"Judgment {number}. The High Court gave judgment on {1 + number % 27} March 2022."]
    paragraphs += [f"Paragraph {i} of judgment {number} reviews the evidence of witness {i} at length and "
                   f"finds it consistent with the documents before the court." for i in range(30)]
    paragraphs.append(f"The appeal is dismissed and damages of {1000 * (number + 1):,} EUR are awarded.")
    return "\n\n".join(paragraphs) + "\n"


def run_once(rows: int, concurrency: int, args) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as folder, BatchingServer(args.prefill_us, args.token_ms, args.batch_slowdown) as server:
        settings = Settings(backend="openai", host=server.url, model="qwen3", data_dir=Path(folder))
        store = Store(folder)
        documents = []
        for number in range(rows):
            data = judgment(number).encode()
            document = ingest_bytes(data, f"judgment-{number}.txt", settings=settings)
            store.add_document(document, data)
            documents.append(document)
        table = create_table(store, "bench", documents, COLUMNS)
        started = time.perf_counter()
        report = run_table(store, table.id, settings, concurrency=concurrency)
        elapsed = time.perf_counter() - started
        answered = sum(1 for c in load_table(store, table.id).cells.values() if c.status == "answered")
        return elapsed, len(report.calls), answered


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--prefill-us", type=float, default=40.0, help="server prefill per prompt token (µs)")
    parser.add_argument("--token-ms", type=float, default=4.0, help="server time per generated chunk (ms)")
    parser.add_argument("--batch-slowdown", type=float, default=0.08)
    args = parser.parse_args(argv)
    serial, calls1, cells1 = run_once(args.rows, 1, args)
    parallel, calls4, cells4 = run_once(args.rows, 4, args)
    ratio = parallel / serial
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        "rows": args.rows, "columns": len(COLUMNS), "prefill_us_per_token": args.prefill_us,
        "ms_per_chunk": args.token_ms, "batch_slowdown": args.batch_slowdown,
        "concurrency_1_s": round(serial, 2), "concurrency_4_s": round(parallel, 2), "ratio": round(ratio, 3),
        "calls": [calls1, calls4], "answered_cells": [cells1, cells4], "target_ratio": TARGET_RATIO,
    }
    print(f"{args.rows} rows x {len(COLUMNS)} columns, one call per row")
    print(f"concurrency 1: {serial:.1f} s   concurrency 4: {parallel:.1f} s   ratio {ratio:.3f}   (target < {TARGET_RATIO})")
    out = ROOT / "bench" / "results" / "review_concurrency_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ratio < TARGET_RATIO and cells1 == cells4 == args.rows * len(COLUMNS) else 1


if __name__ == "__main__":
    sys.exit(main())

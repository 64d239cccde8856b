"""Asking more than fits: how fast Folio plans, how much concurrency saves, and whether any
document is read twice.

    .venv/bin/python bench/plan_bench.py                    # planning, concurrency, read-once on the fakes
    .venv/bin/python bench/plan_bench.py --only planning --documents 2000
    .venv/bin/python bench/plan_bench.py --only real         # read-once on the real engine (slow on a CPU)
    .venv/bin/python bench/plan_bench.py --corpus ../shared/corpus/long_docs/txt/war-and-peace_tolstoy_gutenberg.txt ...

1. Planning: 2,000 generated documents (judgments of 500 to 60,000 tokens and 20 records of
   about 170,000, about 10 million tokens in all, with parts and numbered paragraphs), read everything and most relevant first
   (with a ranking given, since ranking is the library's), first plan (cold) and a second
   question (warm). Target: under 1 s.
2. Concurrency: a read-everything plan of 40 reading calls against the fake OpenAI-compatible
   server with realistic delays (reading and writing time per token), run with concurrency 1
   and 4. Target: concurrency 4 under 0.35 of concurrency 1.
3. No document read twice: prompt tokens the server evaluated (its prefix cache subtracted)
   over the tokens of the documents read, for a read-everything run over long real documents
   (the fake OpenAI-compatible server, 131,072 tokens), and with --only real on the real
   engine (llama.cpp with SmolLM2-135M). Target: at most 1.10.
Results: printed side by side with the targets, and written to bench/results/plan_bench.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from lib.asking.plan import make_plan  # noqa: E402
from lib.asking.prompt import render_document  # noqa: E402
from lib.asking.several_calls import plan_question, run_plan  # noqa: E402
from lib.config import Settings  # noqa: E402
from lib.documents import Block, Document, Extraction  # noqa: E402
from lib.reading.ingest import ingest_paths  # noqa: E402
from lib.reading.passages import cut_document, document_code  # noqa: E402
from lib.reading.tokens import get_counter  # noqa: E402

CORPUS = next((base / "shared" / "corpus" / "long_docs" for base in (ROOT.parent, ROOT.parent.parent)
               if (base / "shared" / "corpus").is_dir()), ROOT.parent / "shared" / "corpus" / "long_docs")
DEFAULT_CORPUS = [CORPUS / "txt" / "war-and-peace_tolstoy_gutenberg.txt",
                  CORPUS / "statutes" / "us_inflation-reduction-act-2022_HR5376_730p.pdf",
                  CORPUS / "legal_us" / "scotus_19-1392_dobbs-v-jackson_2022_slip-opinion.pdf"]
WORDS = ("court plaintiff defendant contract breach damages appeal statute limitation notice tenant landlord "
         "payment clause evidence witness judgment order costs interest liability negligence duty").split()


# ----------------------------------------------------------------------------- documents


def judgment(number: int, tokens: int, rng: random.Random, counter) -> Document:
    """A generated judgment of about `tokens` tokens: headings, numbered paragraphs."""
    blocks, made, section = [], 0, 0
    blocks.append(Block(f"Judgment {number}: Smith v Jones ({2000 + number % 24})", page=1, kind="heading", level=1))
    page = 1
    while made < tokens:
        if made // 2500 >= section:
            section += 1
            blocks.append(Block(f"Part {section}: {rng.choice(WORDS).title()}", page=page, kind="heading", level=2))
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 110)))
        text = f"{len(blocks)}. The {words} was considered in case {number}-{len(blocks)}."
        blocks.append(Block(text, page=page))
        made += len(text) // 5
        page = 1 + made // 600
    extraction = Extraction("pdf", blocks, pages=page)
    sha = hashlib.sha256(f"judgment {number}".encode()).hexdigest()
    cutting = cut_document(extraction, document_code(sha), counter)
    return Document(f"judgment-{number:04d}.pdf", sha, "pdf", page, cutting.text, cutting.passages, cutting.tokens,
                    counter.kind)


def selection(count: int, seed: int = 7) -> list[Document]:
    rng = random.Random(seed)
    counter = get_counter()
    # judgments of 500 to 60,000 tokens, and one in a hundred a long one (a record of 200,000)
    sizes = [200_000 if i % 100 == 99 else min(60_000, max(500, int(rng.lognormvariate(8.3, 0.9))))
             for i in range(count)]
    return [judgment(i, size, rng, counter) for i, size in enumerate(sizes, 1)]


@dataclass
class Ranked:
    sha256: str
    name: str
    score: float
    rank: int


# ----------------------------------------------------------------------------- 1. planning


def bench_planning(count: int, repeats: int) -> dict:
    started = time.perf_counter()
    documents = selection(count)
    built_s = time.perf_counter() - started
    tokens = sum(d.tokens for d in documents)
    settings = Settings()
    ranking = [Ranked(d.sha256, d.name, 1.0 / i, i) for i, d in enumerate(reversed(documents), 1)]

    def ranker(question, docs):
        return ranking

    timings = {}
    for label, mode, question in (("all, cold", "all", "Was the limitation defence upheld?"),
                                  ("all, warm", "all", "Who was ordered to pay costs?"),
                                  ("relevant", "relevant", "Was the limitation defence upheld?"),
                                  ("auto (both plans)", "auto", "What damages were awarded?")):
        runs = []
        for _ in range(1 if label == "all, cold" else repeats):
            start = time.perf_counter()
            plan = make_plan(documents, question, settings, mode=mode, context=131072, ranker=ranker)
            runs.append(time.perf_counter() - start)
        shown = plan.alternatives.get("all") if mode == "auto" else plan
        timings[label] = {"seconds": round(statistics.median(runs), 3), "calls": len(shown.calls),
                          "prompt_tokens": shown.prompt_tokens}
    return {"documents": count, "document_tokens": tokens, "build_s": round(built_s, 1), "plans": timings,
            "split": sum(1 for d in plan.alternatives["all"].documents if d.parts > 1)}


# ----------------------------------------------------------------------------- 2. concurrency


def bench_concurrency(calls: int) -> dict:
    from fake_openai import FakeOpenAI

    counter = get_counter()
    rng = random.Random(11)
    context = 8192
    # documents of about one call each: `calls` reading calls
    documents = [judgment(i, 6000, rng, counter) for i in range(1, calls + 1)]
    results = {}
    # Realistic, scaled 1:20: a 14B model on one GPU reads ~3,000 prompt tokens/s and writes
    # ~40 tokens/s; here 60,000 and 800 (0.0167 s per 1k prompt tokens, 3 words per 4 ms chunk).
    for concurrency in (1, 4):
        with FakeOpenAI(max_model_len=context, prefill_s_per_1k=0.0167, first_token_s=0.02,
                        chunk_delay=0.004, max_parallel=8) as fake:
            settings = Settings(backend="openai", host=fake.url, model=fake.model, context=context,
                                answer_reserve=512, concurrency=concurrency)
            plan, backend, info = plan_question(documents, "Was the limitation defence upheld?", settings, mode="all")
            start = time.perf_counter()
            events = list(run_plan(plan, settings, backend=backend, server_info=info))
            seconds = time.perf_counter() - start
            answer = events[-1].answer
            results[concurrency] = {"seconds": round(seconds, 2), "calls": len(plan.calls),
                                    "requests": len(fake.chat_bodies), "peak_in_flight": fake.peak,
                                    "failed": len(answer.unread)}
    results["ratio"] = round(results[4]["seconds"] / results[1]["seconds"], 3)
    return results


# ----------------------------------------------------------------------------- 3. read once


def bench_read_once(paths: list[Path]) -> dict:
    from fake_openai import FakeOpenAI

    report = ingest_paths([str(p) for p in paths], settings=Settings(ocr=False))
    documents = report.documents
    with FakeOpenAI(max_model_len=131072) as fake:
        settings = Settings(backend="openai", host=fake.url, model=fake.model, concurrency=4)
        plan, backend, info = plan_question(documents, "Who marries Natasha Rostova?", settings, mode="all")
        events = list(run_plan(plan, settings, backend=backend, server_info=info))
        answer = events[-1].answer
        completions = list(fake.completions)
    evaluated = sum(c["prompt_tokens"] - c["cached_tokens"] for c in completions)
    sent = sum(c["prompt_tokens"] for c in completions)
    document_tokens = sum(d.tokens for d in documents)
    counter = get_counter()
    rendered = sum(counter.count(render_document(d)) for d in plan.selection)  # as one call sends them
    reading = [r for r in answer.calls if r["kind"] == "evidence"]
    return {"documents": [d.name for d in documents], "document_tokens": document_tokens,
            "rendered_document_tokens": rendered, "calls": len(answer.calls), "reading_calls": len(reading),
            "prompt_tokens_sent": sent, "evaluated": evaluated,
            "ratio": round(evaluated / document_tokens, 4), "ratio_rendered": round(evaluated / rendered, 4),
            "ratio_sent": round(sent / document_tokens, 4), "rounds": answer.rounds}


def gguf_count(text: str) -> int:
    """Tokens of `text` by the real engine's own tokenizer (SmolLM2's GGUF, vocabulary only)."""
    import llama_cpp
    from llama_engine import smollm_gguf

    vocab = llama_cpp.Llama(model_path=str(smollm_gguf()), vocab_only=True, verbose=False)
    return len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def bench_real(tag: str, n_ctx: int) -> dict:
    """Read-once on the real engine: the server's own count of evaluated prompt tokens."""
    from llama_engine import start_engine

    from lib.reading.ingest import ingest_bytes

    text = "\n\n".join(
        f"Clause {i} of lease {tag}. The lessee shall pay {100 + 7 * i} euros on day {1 + i % 28} of each month to "
        f"the lessor, by bank transfer to the account named in schedule {i}; late payment carries interest."
        for i in range(1, 151))
    with tempfile.TemporaryDirectory() as folder, start_engine(Path(folder) / "server.log", n_ctx=n_ctx) as engine:
        settings = Settings(backend="openai", host=engine.url, context=n_ctx, answer_reserve=64, concurrency=1)
        documents = [ingest_bytes(text.encode(), f"lease-{tag}.txt", settings=settings)]
        plan, backend, info = plan_question(documents, "How much is due on day 5?", settings, mode="all")
        mark = engine.log_mark()
        events = list(run_plan(plan, settings, backend=backend, server_info=info))
        evaluated = sum(engine.evaluated_tokens(engine.log_since(mark)))
        answer = events[-1].answer
    document_tokens = gguf_count(documents[0].text)  # the server's tokenizer: the same GGUF's vocabulary
    return {"n_ctx": n_ctx, "document_tokens_server": document_tokens, "folio_document_tokens": documents[0].tokens,
            "calls": len(answer.calls), "evaluated": evaluated, "ratio": round(evaluated / document_tokens, 4)}


# ----------------------------------------------------------------------------- main


def machine() -> dict:
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": platform.machine(),
            "cpus": os.cpu_count(), "load": round(os.getloadavg()[0], 1), "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("planning", "concurrency", "read-once", "real"))
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpus", nargs="*", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--n-ctx", type=int, default=4096)
    args = parser.parse_args(argv)
    results = {"machine": machine()}
    if args.only in (None, "planning"):
        results["planning"] = planning = bench_planning(args.documents, args.repeats)
        print(f"Planning {planning['documents']:,} documents ({planning['document_tokens']:,} tokens; "
              f"{planning['split']} split into parts):")
        for label, row in planning["plans"].items():
            print(f"  {label:<18} {row['seconds']:>7.3f} s  (target < 1 s)   {row['calls']} call(s), "
                  f"{row['prompt_tokens']:,} prompt tokens")
    if args.only in (None, "concurrency"):
        results["concurrency"] = c = bench_concurrency(args.calls)
        print(f"Concurrency ({c[1]['calls']} reading calls, fake OpenAI-compatible server): "
              f"1 at a time {c[1]['seconds']:.2f} s, 4 at a time {c[4]['seconds']:.2f} s "
              f"(peak {c[4]['peak_in_flight']}): ratio {c['ratio']:.3f} (target < 0.35)")
    if args.only in (None, "read-once") and not all(p.exists() for p in args.corpus):
        print(f"Read once: skipped, the documents are missing ({', '.join(str(p) for p in args.corpus)}); "
              "give others with --corpus.")
    elif args.only in (None, "read-once"):
        results["read_once"] = r = bench_read_once(args.corpus)
        print(f"Read once ({', '.join(r['documents'])}): evaluated {r['evaluated']:,} / document tokens "
              f"{r['document_tokens']:,} = {r['ratio']:.4f} (target <= 1.10); / documents as one call renders them "
              f"(passage IDs, page markers) {r['rendered_document_tokens']:,} = {r['ratio_rendered']:.4f}; "
              f"sent / document tokens {r['ratio_sent']:.4f}; {r['calls']} calls")
    if args.only == "real":
        results["real"] = r = bench_real(uuid.uuid4().hex[:8], args.n_ctx)
        print(f"Read once, real engine (n_ctx {r['n_ctx']}): evaluated {r['evaluated']:,} / document tokens "
              f"{r['document_tokens_server']:,} (server's count) = {r['ratio']:.4f} (target <= 1.10); {r['calls']} calls")
    out = ROOT / "bench" / "results" / "plan_bench.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous.update(results)
    out.write_text(json.dumps(previous, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

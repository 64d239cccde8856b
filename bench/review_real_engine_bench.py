"""Each document read once: prompt tokens the REAL engine evaluated per review run ÷ document tokens.

    .venv/bin/python bench/review_real_engine_bench.py                # 3 documents of ~4,500 tokens, 3 columns
    .venv/bin/python bench/review_real_engine_bench.py --documents 2 --clauses 60
    .venv/bin/python bench/review_real_engine_bench.py --pdf judgment.pdf --n-ctx 20480   # a real judgment

It starts llama.cpp's llama-server with SmolLM2-135M (tests/llama_engine.py) at n_ctx 8,192,
stores generated leases (or, with --pdf, copies of a real document: the 30-page judgment of the
corpus needs --n-ctx 20480, beyond the 8,192 SmolLM2 was trained for; llama-server clamps its
slot to that unless the model's metadata is overridden, which this script then does: the
answers mean nothing there, what is counted is unchanged), runs a 3-column review table
through Folio, and reads from the
server's own log how many prompt tokens it evaluated for the whole run ("prompt eval time =
... / N tokens"). Document tokens are counted by the server's own tokenizer (its
/extras/tokenize/count of each document as rendered in the prompt). The rest of what is
evaluated is the system block (read once: the next documents reuse it from the cache), the
columns and the chat template. Target (issue 11): ≤ 1.05. Results printed and written to
bench/results/review_real_engine_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.asking import prompt  # noqa: E402
from lib.asking.review import Column, create_table, load_table, run_table  # noqa: E402
from lib.config import Settings  # noqa: E402
from lib.library.store import Store  # noqa: E402
from lib.reading.ingest import ingest_bytes  # noqa: E402
from lib.reading.passages import assign_unique_ids  # noqa: E402
from tests.llama_engine import start_engine, stretched  # noqa: E402

TARGET = 1.05
COLUMNS = [
    Column("Tenant", "Who is the tenant?"),
    Column("Rent", "How much is the monthly rent?", "number"),
    Column("Pets allowed?", "Are pets allowed?", "yesno"),
]


def lease(tag: str, number: int, clauses: int) -> str:
    parts = [f"Lease {tag}-{number}", f"The tenant is Ms Example {number}. The monthly rent is {800 + number} EUR."]
    parts += [f"Clause {i} of lease {tag}-{number}: the lessee shall keep room {i} clean, report any damage to "
              f"the lessor within {i} days, and allow an inspection on day {i} of each quarter." for i in range(clauses)]
    parts.append(f"Pets are {'allowed' if number % 2 else 'not allowed'}.")
    return "\n\n".join(parts) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=3)
    parser.add_argument("--clauses", type=int, default=80)
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--pdf", type=Path, help="review copies of this document instead of generated leases")
    args = parser.parse_args(argv)
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as folder:
        extra = stretched(args.n_ctx) if args.n_ctx > 8192 else ()
        with start_engine(Path(folder) / "server.log", n_ctx=args.n_ctx, extra=extra) as engine:
            settings = Settings(backend="openai", host=engine.url, context=args.n_ctx, answer_reserve=128,
                                data_dir=Path(folder) / "data")
            store = Store(settings.data_dir)
            documents = []
            for number in range(args.documents):
                if args.pdf:  # distinct bytes per copy (a comment after %%EOF), so each is its own document
                    data = args.pdf.read_bytes() + f"\n% copy {tag}-{number}\n".encode()
                    name = f"{args.pdf.stem}-{number}.pdf"
                else:
                    data, name = lease(tag, number, args.clauses).encode(), f"lease-{number}.txt"
                document = ingest_bytes(data, name, settings=settings)
                store.add_document(document, data)
                documents.append(document)
            table = create_table(store, "bench", documents, COLUMNS)
            mark = engine.log_mark()
            report = run_table(store, table.id, settings)
            evaluated = sum(engine.evaluated_tokens(engine.log_since(mark)))
            own = [engine.tokenize_count(prompt.render_document(assign_unique_ids([d])[0])) for d in documents]
            cells = load_table(store, table.id).cells.values()
    ratio = evaluated / sum(own) if report.calls else float("nan")
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        "documents": args.documents, "columns": len(COLUMNS), "n_ctx": args.n_ctx,
        "source": args.pdf.name if args.pdf else "generated leases",
        "document_tokens_server": own, "evaluated_prompt_tokens": evaluated, "ratio": round(ratio, 4),
        "calls": len(report.calls), "parts": [c.get("part") for c in report.calls],
        "statuses": sorted(c.status for c in cells), "target": TARGET,
    }
    print(f"{args.documents} documents ({sum(own):,} tokens by the server's tokenizer), {len(COLUMNS)} columns, "
          f"{len(report.calls)} calls")
    print(f"prompt tokens the server evaluated: {evaluated:,}   ratio {ratio:.3f}   (target <= {TARGET})")
    out = ROOT / "bench" / "results" / ("review_real_engine_bench" + ("_pdf" if args.pdf else "") + ".json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ratio <= TARGET and len(report.calls) == args.documents else 1


if __name__ == "__main__":
    sys.exit(main())

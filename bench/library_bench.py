"""The library at 2,000 documents: full-text index before and after, ranking, paging.

    .venv/bin/python bench/library_bench.py [--documents 2000] [--write]     # figures to docs/readme/bench-library.md

One run, side by side, on the same generated judgment-like documents (bench/make_library.py):
  trigram   the schema before issue 9 (FTS5 trigram over every passage; LIKE for terms under 3 characters)
  words     today's schema (FTS5 unicode61 words; bigrams for scripts without spaces)
  no index  today's schema with the index triggers dropped: the floor, to see what indexing costs
Each document is written to the three stores in turn (rotating order), so a busy machine
slows all three alike. Reported: time in Store.add_document (wall and CPU), database size
after a WAL checkpoint and the index's share of it (dbstat), search latency p50/p95 over a
fixed set of English and Chinese searches, ranking a question over the 2,000-document
collection (p50/p95, goal under 200 ms) and over a 300-document matter, ranking in memory
(rank_documents on Documents, index built on the fly), and the paged list calls the
Library and Ask pages make.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.make_library import generate  # noqa: E402
from lib.library import store as store_module  # noqa: E402
from lib.library.store import Store, migrate  # noqa: E402

SEARCHES = [
    "lessee", "limitation", "stare decisis", '"due process"', "viability", "Roe", "1983", "equitable apportionment",
    "trustee", "clean hydrogen", "repair", "negligence", '"breach of contract"', "compact", "Oklahoma", "abortion",
    "Fourteenth Amendment", "tax credit", "pension", "goodwill", "merger", "sovereign", "irrigation", "shall pay",
    "合同", "违约金", "租赁", "承租人", "继承", "第五百条", "人民法院", "损害赔偿", "解除", "债权人",
]
INSIDE_WORDS = ["ssee", "nforceab", "ortgag"]
"""Searches inside words: the word index finds nothing, and the store reads every passage."""
WORD_SEARCHES = SEARCHES
QUESTIONS = [
    "Was the limitation defence upheld?", "Who must pay damages for breach of contract?",
    "Does the viability standard survive stare decisis?", "How are water rights apportioned under the compact?",
    "Which tax credits apply to clean electricity production?", "What fees may a chapter 13 trustee collect?",
    "What did the court hold on negligence and the duty of care?", "How is goodwill impaired after a merger?",
    "承租人应当如何支付租金？", "合同解除后违约金如何计算？", "继承开始后遗产如何分配？", "债权人可以请求人民法院撤销吗？",
]
TRIGGERS = ("passages_ai", "passages_ad", "passages_au")


class TrigramStore(Store):
    """The store as it was before issue 9: schema 1 (trigram index), passages without search_text."""

    def _init_database(self) -> None:
        conn = self._open()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            migrate(conn, target=1)
        finally:
            conn.close()

    def _insert_passages(self, conn, sha256, passages) -> None:
        conn.executemany(
            'INSERT INTO passages (sha256, idx, id, page, page_end, page_label, heading, tokens, start, "end", text) '
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [(sha256, p.index, p.id, p.page, p.page_end, p.page_label, p.heading, p.tokens, p.start, p.end, p.text)
             for p in passages],
        )

    def search_passages(self, query: str, sha=None, limit: int = 50):
        """The search of schema 1, verbatim: trigram MATCH for terms of 3+ characters, LIKE below."""
        terms = [t for t, _q in store_module.search_terms(query)]
        long_terms = [t for t in terms if len(t) >= 3]
        short_terms = [t for t in terms if len(t) < 3]
        where, params = [], []
        if long_terms:
            source = "passages_fts JOIN passages p ON p.pid = passages_fts.rowid"
            where.append("passages_fts MATCH ?")
            params.append(" AND ".join('"' + t.replace('"', '""') + '"' for t in long_terms))
            order = "bm25(passages_fts), p.sha256, p.idx"
        else:
            source, order = "passages p", "d.added_at DESC, p.sha256, p.idx"
        for term in short_terms:
            where.append("p.text LIKE ? ESCAPE '\\'")
            params.append(store_module._like_pattern(term))
        sql = (f"SELECT p.*, d.name AS document FROM {source} JOIN documents d ON d.sha256 = p.sha256 "
               f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?")
        with self._read() as conn:
            return conn.execute(sql, params + [limit]).fetchall()


class UnindexedStore(Store):
    """Today's schema without the index triggers: what writing costs with no full-text index."""

    def _init_database(self) -> None:
        super()._init_database()
        conn = self._open()
        try:
            for trigger in TRIGGERS:
                conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        finally:
            conn.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def timed(call, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        out.append(time.perf_counter() - began)
    return out


def database_figures(data_dir: Path) -> tuple[int, int]:
    """(database bytes after a checkpoint, bytes of the full-text index's tables)."""
    conn = sqlite3.connect(data_dir / "folio.db")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        index = conn.execute("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE 'passages_fts%'").fetchone()[0]
    finally:
        conn.close()
    return (data_dir / "folio.db").stat().st_size, index


def write_stores(root: Path, count: int, seed: int) -> tuple[dict, dict, list, list]:
    stores = {"trigram": TrigramStore(root / "trigram"), "words": Store(root / "words"), "no index": UnindexedStore(root / "noindex")}
    wall = {name: 0.0 for name in stores}
    cpu = {name: 0.0 for name in stores}
    kept, shas = [], []
    totals = {"tokens": 0, "passages": 0}
    names = list(stores)
    for index, (document, original) in enumerate(generate(count, seed=seed)):
        for name in names[index % 3:] + names[:index % 3]:
            began, began_cpu = time.perf_counter(), time.process_time()
            stores[name].add_document(document, original)
            wall[name] += time.perf_counter() - began
            cpu[name] += time.process_time() - began_cpu
        shas.append(document.sha256)
        totals["tokens"] += document.tokens
        totals["passages"] += len(document.passages)
        if index < 300:
            kept.append(document)
        if (index + 1) % 250 == 0:
            print(f"  {index + 1:,}/{count:,} documents written to the three stores", file=sys.stderr, flush=True)
    figures = {name: {"wall": wall[name], "cpu": cpu[name]} for name in stores}
    for name, store in stores.items():
        figures[name]["db"], figures[name]["index"] = database_figures(store.data_dir)
    return figures, totals, kept, shas


def search_latency(store, repeat: int, queries: list[str]) -> list[float]:
    store.search_passages("warm up the cache")
    return [t for query in queries for t in timed(lambda q=query: store.search_passages(q), repeat)]


def ranking_latency(store: Store, shas: list[str], repeat: int) -> list[float]:
    store.rank_documents("warm up", shas)
    return [t for question in QUESTIONS for t in timed(lambda q=question: store.rank_documents(q, shas), repeat)]


def listing_latency(store: Store, repeat: int) -> dict[str, list[float]]:
    matter = store.list_collections()[0].name if store.list_collections() else None
    calls = {
        "list_documents_page() (first page, newest first)": lambda: store.list_documents_page(limit=50),
        "list_documents_page(name='v.', sort='name', offset=1000)": lambda: store.list_documents_page(name="v.", sort="name", offset=1000),
        "list_documents_page(collection=matter, formats=['text'])": lambda: store.list_documents_page(collection=matter, formats=["text"]),
        "list_collections() (counts and tokens)": store.list_collections,
        "collection_shas(matter) (choose it whole)": lambda: store.collection_shas(matter),
        "document_formats()": store.document_formats,
    }
    return {label: timed(call, repeat) for label, call in calls.items()}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def report(count: int, totals: dict, figures: dict, searches: dict, ranking: dict, memory: list, listing: dict,
           load: tuple[float, float]) -> str:
    t, w, n = figures["trigram"], figures["words"], figures["no index"]
    lines = [
        f"Machine: {platform.machine()}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs (shared), {date.today().isoformat()}. {count:,} generated documents "
        f"(bench/make_library.py), {totals['tokens']:,} tokens, {totals['passages']:,} passages. Load average "
        f"{load[0]:.1f} before the measurements, {load[1]:.1f} after (other jobs shared the 2 cores).",
        "",
        "| store | write wall s | write CPU s | index CPU s (over no index) | database MB | index MB | index share |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("trigram", "words", "no index"):
        f = figures[name]
        extra = f["cpu"] - n["cpu"]
        lines.append(
            f"| {name} | {f['wall']:,.1f} | {f['cpu']:,.1f} | {extra:,.1f} | {f['db'] / 1e6:,.0f} | {f['index'] / 1e6:,.0f} | "
            f"{f['index'] / f['db']:.0%} |"
        )
    lines += [
        "",
        f"- Index CPU time: trigram {t['cpu'] - n['cpu']:,.1f} s ({(t['cpu'] - n['cpu']) / t['cpu']:.0%} of its writes), "
        f"words {w['cpu'] - n['cpu']:,.1f} s ({(w['cpu'] - n['cpu']) / w['cpu']:.0%}); database {t['db'] / 1e6:,.0f} MB -> "
        f"**{w['db'] / 1e6:,.0f} MB** ({w['db'] / t['db']:.0%}); index {t['index'] / 1e6:,.0f} MB -> **{w['index'] / 1e6:,.0f} MB**.",
        "",
        "| search (English and Chinese, each repeated) | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|",
    ]
    for name, values in searches.items():
        lines.append(f"| {name} | {ms(percentile(values, 0.5))} | {ms(percentile(values, 0.95))} | {ms(max(values))} |")
    lines += ["", "| ranking (12 English and Chinese questions x repeats) | p50 ms | p95 ms | max ms | goal |", "|---|---:|---:|---:|---|"]
    for label, values in ranking.items():
        goal = "< 200 ms" if "2,000" in label else ""
        lines.append(f"| {label} | {ms(percentile(values, 0.5))} | {ms(percentile(values, 0.95))} | {ms(max(values))} | {goal} |")
    lines.append(f"| rank_documents on 300 in-memory Documents (index built, then 12 questions) | "
                 f"{ms(memory[0])} build | {ms(percentile(memory[1:], 0.5))} p50 | {ms(percentile(memory[1:], 0.95))} p95 | |")
    lines += ["", "| listing call on the words store | p50 ms | p95 ms |", "|---|---:|---:|"]
    for label, values in listing.items():
        lines.append(f"| `{label}` | {ms(percentile(values, 0.5))} | {ms(percentile(values, 0.95))} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", help="keep the three stores in this folder (default: a temporary folder, removed)")
    parser.add_argument("--reuse", help="measure again the stores kept by an earlier run with --keep (no writing)")
    parser.add_argument("--write", action="store_true", help="write the figures into docs/readme/bench-library.md")
    args = parser.parse_args(argv)
    root = Path(args.reuse or args.keep or tempfile.mkdtemp(prefix="folio-library-bench-"))
    load_before = os.getloadavg()[0]
    try:
        if args.reuse:
            saved = json.loads((root / "figures.json").read_text())
            figures, totals, shas = saved["figures"], saved["totals"], saved["shas"]
            args.documents = len(shas)
            kept = [document for document, _original in generate(300, seed=args.seed)]
        else:
            figures, totals, kept, shas = write_stores(root, args.documents, args.seed)
            (root / "figures.json").write_text(json.dumps({"figures": figures, "totals": totals, "shas": shas}))
        words = Store(root / "words")
        matter = shas[:300]
        words.ensure_collection("Matter")
        words.add_to_collection("Matter", matter)
        trigram = TrigramStore(root / "trigram")
        searches = {
            f"trigram (before), {len(WORD_SEARCHES)} searches": search_latency(trigram, args.repeat, WORD_SEARCHES),
            f"words (after), {len(WORD_SEARCHES)} searches": search_latency(words, args.repeat, WORD_SEARCHES),
            f"trigram (before), {len(INSIDE_WORDS)} searches inside words": search_latency(trigram, args.repeat, INSIDE_WORDS),
            f"words (after), {len(INSIDE_WORDS)} searches inside words (no word matches: reads every passage)":
                search_latency(words, args.repeat, INSIDE_WORDS),
        }
        ranking = {
            f"Store.rank_documents over all {len(shas):,} documents": ranking_latency(words, shas, args.repeat),
            "Store.rank_documents over a 300-document matter": ranking_latency(words, matter, args.repeat),
        }
        from lib.library.ranking import rank_documents

        began = time.perf_counter()
        rank_documents("warm up", kept)
        memory = [time.perf_counter() - began]
        memory += [t for q in QUESTIONS for t in timed(lambda q=q: rank_documents(q, kept), args.repeat)]
        listing = listing_latency(words, args.repeat * 4)
    finally:
        if not (args.keep or args.reuse):
            shutil.rmtree(root, ignore_errors=True)
    load = (load_before, os.getloadavg()[0])
    text = report(args.documents, totals, figures, searches, ranking, memory, listing, load)
    print(text)
    if args.write:
        target = ROOT / "docs" / "readme" / "bench-library.md"
        head = target.read_text(encoding="utf-8").split("<!-- figures -->")[0] if target.exists() else "# Library benchmark\n\n"
        target.write_text(head.rstrip() + "\n\n<!-- figures -->\n\n" + text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

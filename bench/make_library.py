"""Build a library of N generated judgment-like documents, fast, for benchmarks (any stage's).

    .venv/bin/python bench/make_library.py --out /tmp/lib2000 --documents 2000
    FOLIO_DATA_DIR=/tmp/lib2000 .venv/bin/python -m lib collections list
    FOLIO_DATA_DIR=/tmp/lib2000 bash scripts/app.sh          # the app on a 2,000-document library

    from bench.make_library import generate, build_library
    for document, original in generate(300, seed=7): ...      # (Document, bytes), nothing stored
    build_library("/tmp/lib", 2000)                           # a Store with documents and collections

Each document is a court caption (court, parties, docket number, date, a facts paragraph
with generated names, amounts and statutes) followed by a window of real text taken at a
random place of a real source in ../shared/corpus: US Supreme Court and district court
opinions, a 730-page statute, an IRS manual, a book on copyright law, a thesis, and (one
document in ten) the PRC Civil Code and Criminal Law as Chinese judgments. Lengths vary
like real judgments (log-normal, median about 4,000 tokens, mean about 5,000: 2,000
documents are about 10 million tokens). Every document goes through Folio's real
ingestion (`ingest_bytes`: passages, exact Qwen3 counts), so what is stored is exactly
what Folio would store for that text; the same seed gives the same library.

The sources are extracted once and cached under ~/.cache/folio-bench/ (a few seconds).
Collections made by build_library: "Matter 1" .. "Matter k" (300 documents each, the
first ones overlapping the next), "Chinese judgments", and "All judgments".
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import pickle
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = Path(os.environ.get("FOLIO_CORPUS") or next(
    (p / "shared" / "corpus" for p in ROOT.parents if (p / "shared" / "corpus").is_dir()), ROOT.parent / "shared" / "corpus"
))
"""The real documents (../shared/corpus from the checkout or one of its parents; FOLIO_CORPUS overrides)."""
CACHE = Path(os.environ.get("FOLIO_BENCH_CACHE", Path.home() / ".cache" / "folio-bench"))

# (path under the corpus, weight, language)
SOURCES = (
    ("long_docs/legal_us/scotus_19-1392_dobbs-v-jackson_2022_slip-opinion.pdf", 30, "en"),
    ("long_docs/legal_us/scotus_11-889_tarrant-v-herrmann_2013_slip-opinion.pdf", 12, "en"),
    ("long_docs/legal_us/azd_bard-ivc-mdl_suggestion-of-remand_pleading-paper.pdf", 1, "en"),
    ("long_docs/docx/us-doj_handbook-chapter13-standing-trustees_2012_872p.docx", 10, "en"),
    ("long_docs/html/sec-10k_galaxy-gaming_fy2021_ixbrl.html", 6, "en"),
    ("qa_datasets/financebench/pdfs/BOEING_2022_10K.pdf", 6, "en"),
    ("qa_datasets/financebench/pdfs/AMCOR_2023_10K.pdf", 6, "en"),
    ("long_docs/statutes/us_inflation-reduction-act-2022_HR5376_730p.pdf", 12, "en"),
    ("long_docs/manuals/us-irs_irm-2.3.59_command-codes-bmfol-bmfor_400p.pdf", 8, "en"),
    ("long_docs/books/free-culture_lessig_2004_352p.pdf", 12, "en"),
    ("long_docs/thesis/ortiz-troncoso_open-university-msc-dissertation_2017_60p.pdf", 4, "en"),
    ("long_docs/html/us_usa-patriot-act_publ056-107_gpo.htm", 4, "en"),
    ("chinese/prc-civil-code_民法典_assembled.md", 6, "zh"),
    ("chinese/prc-criminal-law_刑法.md", 4, "zh"),
)
CHARS_PER_TOKEN = {"en": 4.3, "zh": 1.45}
MEDIAN_TOKENS = 4000
SIGMA = 0.65
MIN_TOKENS, MAX_TOKENS = 600, 40000

FIRST = ("Alder", "Birch", "Cedar", "Dunmore", "Ellery", "Fairbanks", "Garrison", "Hollis", "Ingram", "Jarvis",
         "Keller", "Lindqvist", "Montague", "Norwood", "Okafor", "Pemberton", "Quinlan", "Ramsey", "Sato", "Thornton",
         "Underwood", "Valdez", "Whitaker", "Xu", "Yardley", "Zimmer", "Abernathy", "Blackwood", "Castellano", "Delacroix")
ENTITIES = ("Holdings LLC", "Shipping Co.", "Medical Devices Inc.", "Water District", "Insurance Co.", "Bank N.A.",
            "Construction Ltd.", "Logistics Corp.", "Pharmaceuticals Inc.", "Energy Partners LP")
COURTS = ("Supreme Court of the United States", "United States Court of Appeals for the Fifth Circuit",
          "United States Court of Appeals for the Ninth Circuit", "United States District Court for the District of Arizona",
          "United States District Court for the Southern District of New York", "Supreme Court of Texas",
          "Court of Appeal of California, Second District", "United States Court of Appeals for the Second Circuit")
CLAIMS = ("breach of contract", "negligence", "product liability", "unjust enrichment", "trademark infringement",
          "breach of fiduciary duty", "wrongful termination", "fraudulent misrepresentation", "water rights",
          "limitation of liability", "copyright infringement", "securities fraud")
STATUTES = ("42 U.S.C. § 1983", "15 U.S.C. § 78j(b)", "17 U.S.C. § 107", "28 U.S.C. § 1332", "Cal. Civ. Code § 1668",
            "Tex. Civ. Prac. & Rem. Code § 16.003", "26 U.S.C. § 45Y", "29 U.S.C. § 2601")
CITIES = ("Houston", "Phoenix", "Sacramento", "Tulsa", "Albany", "Boise", "Savannah", "Duluth", "Fresno", "Reno")
ZH_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
ZH_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚"
ZH_COURTS = ("北京市第一中级人民法院", "上海市浦东新区人民法院", "广东省高级人民法院", "浙江省杭州市中级人民法院",
             "四川省成都市武侯区人民法院", "江苏省南京市中级人民法院")
ZH_CAUSES = ("房屋租赁合同纠纷", "买卖合同纠纷", "民间借贷纠纷", "劳动争议", "机动车交通事故责任纠纷", "建设工程施工合同纠纷",
             "侵害商标权纠纷", "继承纠纷")


# ---------------------------------------------------------------- sources


def _source_blocks(relative: str) -> list[tuple[str, int | None, str]]:
    """(text, page, kind) of every block of one corpus source, extracted once and cached."""
    path = CORPUS / relative
    cached = CACHE / (hashlib.sha256(relative.encode()).hexdigest()[:16] + ".pickle")
    if cached.exists():
        return pickle.loads(cached.read_bytes())
    from lib.config import load_settings
    from lib.reading.extract import extract

    extraction = extract(path.read_bytes(), path.name, settings=load_settings(ocr=False, doc_timeout=600.0))
    blocks = [(b.text, b.page, b.kind) for b in extraction.blocks if b.text.strip() and b.kind not in ("header", "footer")]
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(pickle.dumps(blocks))
    return blocks


def load_sources() -> list[tuple[list, int, str]]:
    """Every source as (blocks, weight, language); SystemExit with advice when the corpus is absent."""
    missing = [s for s, _w, _l in SOURCES if not (CORPUS / s).exists()]
    if missing:
        raise SystemExit(f"make_library needs the corpus at {CORPUS} (missing {missing[0]}).")
    return [(_source_blocks(s), weight, lang) for s, weight, lang in SOURCES]


# ---------------------------------------------------------------- one document


def _party(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{rng.choice(FIRST)} {rng.choice(ENTITIES)}"
    return f"{rng.choice(FIRST)}"


def _english_caption(rng: random.Random, number: int) -> tuple[str, str]:
    a, b = _party(rng), _party(rng)
    while b == a:
        b = _party(rng)
    year = rng.randint(1998, 2024)
    docket = f"No. {year % 100:02d}-{rng.randint(100, 99999)}"
    date = f"{rng.choice(('January', 'March', 'May', 'June', 'September', 'November'))} {rng.randint(1, 28)}, {year}"
    claim, statute, city = rng.choice(CLAIMS), rng.choice(STATUTES), rng.choice(CITIES)
    amount = f"${rng.randint(20, 9000) * 1000:,}"
    caption = (
        f"IN THE {rng.choice(COURTS).upper()}\n\n{a.upper()}, Petitioner, v. {b.upper()}, Respondent.\n\n"
        f"{docket}. Argued and submitted; decided {date}.\n\n"
        f"{a}, based in {city}, brought this action against {b} for {claim} under {statute}, seeking damages of "
        f"{amount}. The trial court held for {rng.choice((a, b))}; the question on appeal is whether the "
        f"{claim} claim was timely and whether {statute} applies to the conduct alleged.\n\n"
    )
    return caption, f"{a} v. {b} ({year}) {number}"


def _chinese_caption(rng: random.Random, number: int) -> tuple[str, str]:
    def name() -> str:
        return rng.choice(ZH_SURNAMES) + "".join(rng.choice(ZH_GIVEN) for _ in range(rng.randint(1, 2)))

    plaintiff, defendant = name(), name()
    court, cause, year = rng.choice(ZH_COURTS), rng.choice(ZH_CAUSES), rng.randint(2015, 2024)
    caption = (
        f"# {court}\n\n民事判决书\n\n（{year}）民初{rng.randint(100, 9999)}号\n\n原告：{plaintiff}。被告：{defendant}。\n\n"
        f"原告{plaintiff}与被告{defendant}{cause}一案，本院受理后依法适用普通程序，公开开庭进行了审理。"
        f"原告诉讼请求：判令被告支付款项{rng.randint(2, 900) * 1000}元。本院依照下列法律规定判决如下。\n\n"
    )
    return caption, f"{plaintiff}诉{defendant}{cause}（{year}）{number}"


def _target_tokens(rng: random.Random) -> int:
    return int(min(MAX_TOKENS, max(MIN_TOKENS, rng.lognormvariate(math.log(MEDIAN_TOKENS), SIGMA))))


def _window(blocks: list, chars: int, rng: random.Random) -> list[str]:
    start = rng.randrange(max(1, len(blocks) - 1))
    out, size = [], 0
    index = start
    while size < chars:
        text = blocks[index % len(blocks)][0]
        out.append(text)
        size += len(text)
        index += 1
    return out


def document_text(number: int, seed: int, sources) -> tuple[str, str, str]:
    """(file name, text, language) of generated document `number`: the same every time."""
    rng = random.Random(f"{seed}-{number}")
    blocks, _weight, lang = rng.choices(sources, weights=[w for _b, w, _l in sources])[0]
    caption, title = (_chinese_caption if lang == "zh" else _english_caption)(rng, number)
    body = _window(blocks, int(_target_tokens(rng) * CHARS_PER_TOKEN[lang]), rng)
    suffix = ".md" if lang == "zh" else ".txt"
    return title.replace("/", "-") + suffix, caption + "\n\n".join(body) + "\n", lang


def _make(args: tuple[int, int, list]) -> tuple:
    number, seed, sources = args
    from lib.reading.ingest import ingest_bytes

    name, text, _lang = document_text(number, seed, sources)
    data = text.encode("utf-8")
    return ingest_bytes(data, name), data


_WORKER_SOURCES: list = []


def _init_worker(sources) -> None:
    _WORKER_SOURCES[:] = sources


def _make_in_worker(args: tuple[int, int]) -> tuple:
    return _make((args[0], args[1], _WORKER_SOURCES))


def generate(count: int, *, seed: int = 7, start: int = 0, workers: int | None = None) -> Iterator[tuple]:
    """(Document, original bytes) for documents start .. start + count - 1, in order."""
    sources = load_sources()
    workers = workers or min(2, os.cpu_count() or 1)
    numbers = [(n, seed) for n in range(start, start + count)]
    if workers <= 1:
        for number, _seed in numbers:
            yield _make((number, seed, sources))
        return
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(sources,)) as pool:
        yield from pool.map(_make_in_worker, numbers, chunksize=8)


# ---------------------------------------------------------------- a whole library


def _fast_store_class():
    """A Store that skips fsync (synchronous=OFF, originals not flushed): a generated library
    is rebuilt from its seed after a crash, so durability is not worth 40 ms a document."""
    from lib.library.store import Store

    class FastStore(Store):
        def _open(self):
            conn = super()._open()
            conn.execute("PRAGMA synchronous = OFF")
            return conn

        def _write_file(self, sha256: str, data: bytes) -> None:
            (self.files_dir / sha256).write_bytes(data)

    return FastStore


def build_library(data_dir: str | Path, count: int, *, seed: int = 7, matter_size: int = 300,
                  store_class=None, collections: bool = True, quiet: bool = False) -> dict:
    """Write `count` generated documents into the store at `data_dir`; return figures."""
    store = (store_class or _fast_store_class())(data_dir)
    started = time.perf_counter()
    write_s, tokens, passages, shas, chinese = 0.0, 0, 0, [], []
    for index, (document, original) in enumerate(generate(count, seed=seed)):
        began = time.perf_counter()
        store.add_document(document, original)
        write_s += time.perf_counter() - began
        tokens += document.tokens
        passages += len(document.passages)
        shas.append(document.sha256)
        if document.format == "markdown":
            chinese.append(document.sha256)
        if not quiet and (index + 1) % 100 == 0:
            print(f"  {index + 1:,}/{count:,} documents, {tokens:,} tokens", file=sys.stderr, flush=True)
    if collections and hasattr(store, "create_collection"):
        _make_collections(store, shas, chinese, matter_size)
    return {
        "documents": count,
        "tokens": tokens,
        "passages": passages,
        "seconds": time.perf_counter() - started,
        "write_seconds": write_s,
        "database_bytes": _database_bytes(Path(data_dir)),
    }


def _make_collections(store, shas: list[str], chinese: list[str], matter_size: int) -> None:
    for number, start in enumerate(range(0, len(shas), matter_size), start=1):
        name = f"Matter {number}"
        store.create_collection(name)
        store.add_to_collection(name, shas[max(0, start - matter_size // 10): start + matter_size])
    if chinese:
        store.create_collection("Chinese judgments")
        store.add_to_collection("Chinese judgments", chinese)
    store.create_collection("All judgments")
    store.add_to_collection("All judgments", shas)


def _database_bytes(data_dir: Path) -> int:
    """The database with its WAL checkpointed: the size a user's disk holds."""
    import sqlite3

    db = data_dir / "folio.db"
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return db.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="data folder to write (FOLIO_DATA_DIR of the library)")
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--matter-size", type=int, default=300)
    args = parser.parse_args(argv)
    if (Path(args.out) / "folio.db").exists():
        raise SystemExit(f"{args.out} already holds a library; choose an empty folder.")
    figures = build_library(args.out, args.documents, seed=args.seed, matter_size=args.matter_size)
    print(
        f"{figures['documents']:,} documents, {figures['tokens']:,} tokens, {figures['passages']:,} passages in "
        f"{figures['seconds']:.1f} s (store writes {figures['write_seconds']:.1f} s); database "
        f"{figures['database_bytes'] / 1e6:,.0f} MB at {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

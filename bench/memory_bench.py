"""Resident memory over 2,000 documents ingested in one process (numbers go to docs/readme/bench-memory.md).

    .venv/bin/python bench/memory_bench.py [--documents 2000] [--store] [--write]

Builds the documents first, in a separate process: page windows (3 to 16 pages) of the real
PDFs in /work/shared/corpus (judgments, a bill, a manual, a book, reports, theses, filings),
every 40th with a map from the Tarrant opinion bound in as an image-only page, so the OCR
look runs too; each a distinct file. Then, each in a fresh process, reads them all:

  folio            lib.reading.ingest.ingest_bytes (default settings, OCR on) on every file
                   (--store: and adds each to a library in a temporary data folder, as the app does)
  folio-unfixed    the same with pymupdf's get_text("blocks") leak left alone and MuPDF's store
                   left full (what Folio did before)
  pymupdf          page.get_text() on every page: the flat reference

and reports the resident set size (VmRSS, after gc) at checkpoints. Goal: Folio's memory
after 2,000 documents within 1.2x of that after the first 100.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = next((p / "shared" / "corpus" for p in ROOT.parents if (p / "shared" / "corpus").is_dir()), ROOT.parent / "shared" / "corpus")
SOURCES = [
    "long_docs/legal_us/scotus_19-1392_dobbs-v-jackson_2022_slip-opinion.pdf",
    "long_docs/legal_us/scotus_11-889_tarrant-v-herrmann_2013_slip-opinion.pdf",
    "long_docs/legal_us/azd_bard-ivc-mdl_suggestion-of-remand_pleading-paper.pdf",
    "long_docs/statutes/us_inflation-reduction-act-2022_HR5376_730p.pdf",
    "long_docs/manuals/us-irs_irm-2.3.59_command-codes-bmfol-bmfor_400p.pdf",
    "long_docs/books/free-culture_lessig_2004_352p.pdf",
    "long_docs/thesis/ortiz-troncoso_open-university-msc-dissertation_2017_60p.pdf",
    "long_docs/lecture_notes/thoma_geometrie-und-topologie_117p_de.pdf",
    "qa_datasets/financebench/pdfs/BOEING_2022_10K.pdf",
    "qa_datasets/financebench/pdfs/AMCOR_2023_10K.pdf",
    "robustness/layout_tables/federal-register-2020-17221_3-column.pdf",
    "robustness/layout_tables/ca-warn-report_16p-table.pdf",
]
MAP_EVERY = 40
CHECKPOINTS = (100, 250, 500, 1000, 1500, 2000)
GOAL = 1.2
MODES = ("folio", "folio-unfixed", "pymupdf")


def build(folder: Path, count: int) -> list[Path]:
    """`count` distinct PDFs cut from the corpus (built in this process, read in others)."""
    import pymupdf

    sources = [pymupdf.open(CORPUS / source) for source in SOURCES]
    tarrant = pymupdf.open(CORPUS / SOURCES[1])
    paths = []
    for index in range(count):
        source = sources[index % len(sources)]
        size = 3 + (index * 7) % 14
        start = (index * 37) % max(1, source.page_count - size)
        doc = pymupdf.open()
        doc.insert_pdf(source, from_page=start, to_page=min(start + size, source.page_count) - 1, links=False, annots=False)
        if index % MAP_EVERY == MAP_EVERY - 1:
            doc.insert_pdf(tarrant, from_page=28, to_page=28, links=False, annots=False)
        doc.set_metadata({"title": f"Document {index + 1}"})
        path = folder / f"doc-{index + 1:04d}.pdf"
        doc.save(path, garbage=3, deflate=True)
        doc.close()
        paths.append(path)
    return paths


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(mode: str, folder: Path, store: bool) -> dict:
    """Read every PDF of the folder in this process; VmRSS at the checkpoints."""
    import pymupdf

    paths = sorted(folder.glob("doc-*.pdf"))
    library = None
    if mode.startswith("folio"):
        from lib.config import Settings
        from lib.reading import mupdf_blocks
        from lib.reading.ingest import ingest_bytes
        from lib.reading.tokens import get_counter

        get_counter()
        settings = Settings(data_dir=folder / "data")
        if mode == "folio-unfixed":  # as before the fix: the references kept, MuPDF's store left full
            mupdf_blocks.extra_references.cache_clear()
            mupdf_blocks.extra_references = lambda: (0, 0)
            pymupdf.TOOLS.store_shrink = lambda percent: None
        if store:
            from lib.library.store import Store

            library = Store(settings.data_dir)
    points, start = {}, time.perf_counter()
    for number, path in enumerate(paths, start=1):
        data = path.read_bytes()
        if mode == "pymupdf":
            with pymupdf.open(stream=data, filetype="pdf") as doc:
                for page in doc:
                    page.get_text()
        else:
            document = ingest_bytes(data, path.name, settings=settings)
            if library is not None:
                library.add_document(document, data)
        if number in CHECKPOINTS or number == len(paths):
            gc.collect()
            points[number] = rss_mb()
    return {"rss": points, "seconds": time.perf_counter() - start}


def run_child(mode: str, folder: Path, store: bool) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--folder", str(folder)] + (["--store"] if store else [])
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def report(results: dict, count: int, store: bool) -> str:
    marks = [n for n in CHECKPOINTS if n <= count] or [count]
    first = marks[0]
    lines = [
        f"Run {date.today().isoformat()} on {platform.machine()} with {os.cpu_count()} CPUs (shared with other jobs), "
        f"Python {platform.python_version()}; {count:,} distinct PDFs of 3-16 pages cut from the corpus, "
        f"every {MAP_EVERY}th with a map page{'; Folio also stores each in a library' if store else ''}.",
        "",
        "| reader | " + " | ".join(f"RSS MB after {n:,}" for n in marks) + f" | after {marks[-1]:,} / after {first} | goal |",
        "|---|" + "---:|" * len(marks) + "---:|---|",
    ]
    for mode, result in results.items():
        rss = {int(k): v for k, v in result["rss"].items()}
        ratio = rss[marks[-1]] / rss[first]
        verdict = ("PASS" if ratio <= GOAL else "FAIL") + f" (≤ {GOAL}x)" if mode == "folio" else "reference"
        if mode == "folio-unfixed":
            verdict = "before the fix"
        lines.append(f"| {mode} | " + " | ".join(f"{rss[n]:.0f}" for n in marks) + f" | **{ratio:.2f}x** | {verdict} |")
    lines += ["", "Seconds to read them all: " + ", ".join(f"{mode} {r['seconds']:.0f}" for mode, r in results.items()) + "."]
    return "\n".join(lines) + "\n"


HEADER = """# Memory benchmark

`bench/memory_bench.py` reads 2,000 distinct PDFs in one process and reports its resident
memory at checkpoints, side by side with a plain pymupdf `page.get_text()` loop over the
same files (flat: the reference) and with Folio as it was before the fix: pymupdf 1.28's
`get_text("blocks")` kept every block it returned (pymupdf#5067; see
`lib/reading/mupdf_blocks.py`), and MuPDF's store kept every image decoded for OCR or the
picture look after its document was closed (up to 256 MB). Goal: after 2,000 documents
within 1.2x of after 100.

```
.venv/bin/python bench/memory_bench.py [--documents 2000] [--store] [--write]
```

"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--store", action="store_true", help="Folio also adds each document to a library")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--write", action="store_true", help="also write docs/readme/bench-memory.md")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.folder, args.store)))
        return 0
    with tempfile.TemporaryDirectory(prefix="folio-memory-bench-") as name:
        folder = Path(name)
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); "
                        f"import memory_bench; memory_bench.build(__import__('pathlib').Path({name!r}), {args.documents})"],
                       check=True)
        results = {mode: run_child(mode, folder, args.store) for mode in args.modes.split(",")}
    text = report(results, args.documents, args.store)
    print(text)
    if args.write:
        (ROOT / "docs" / "readme" / "bench-memory.md").write_text(HEADER + text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ingestion speed and memory, side by side in one run (numbers go to docs/readme/bench-ingest.md).

    .venv/bin/pip install -r bench/requirements.txt      # LangChain + pypdf, for the comparison only
    .venv/bin/python bench/ingest_bench.py [PDF] [--chinese TXT] [--repeat 7] [--write]

Pipelines timed on the same PDF, interleaved, medians of --repeat runs:
  pymupdf    pymupdf alone: open + page.get_text() for every page (the floor)
  folio      lib.reading.ingest.ingest_bytes: extraction + passages + exact Qwen3 count
  langchain  PyPDFLoader(...).load() + RecursiveCharacterTextSplitter(1000, 200)
Then 400,000 characters of Chinese counted exactly (and by the fallback estimator), and
peak memory of each pipeline in a fresh process (ru_maxrss, and tracemalloc for Python).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpus"
DEFAULT_PDF = CORPUS / "long_docs" / "legal_us" / "scotus_19-1392_dobbs-v-jackson_2022_slip-opinion.pdf"
DEFAULT_CHINESE = CORPUS / "chinese" / "xiyouji_西游记_wuchengen.txt"
CHINESE_CHARS = 400_000
LIMIT_RATIO = 1.5
HEADER = """# Ingestion benchmark

`bench/ingest_bench.py` times, side by side in one run, on the 213-page Dobbs slip opinion:
pymupdf alone (open + `page.get_text()` per page, the floor), Folio's ingestion (extraction,
passages and exact Qwen3 count: `lib.reading.ingest.ingest_bytes`) and the pipeline a user would
otherwise reach for (LangChain `PyPDFLoader` + `RecursiveCharacterTextSplitter(1000, 200)`).
Goals: Folio at most 1.5x pymupdf, faster than LangChain, 400,000 Chinese characters counted
well under a second.

```
.venv/bin/pip install -r bench/requirements.txt     # LangChain + pypdf: benchmark only
.venv/bin/python bench/ingest_bench.py [PDF] [--repeat 11] [--write]
```

The machine is shared (2 cores), so runs are interleaved and medians reported; the paired
ratio (Folio and pymupdf timed back to back in each run) is the steadiest figure.

"""


# ---------------------------------------------------------------- the pipelines


def run_pymupdf(path: Path) -> int:
    import pymupdf

    with pymupdf.open(path) as doc:
        return len("".join(page.get_text() for page in doc))


def run_folio(path: Path) -> int:
    from lib.reading.ingest import ingest_bytes

    document = ingest_bytes(path.read_bytes(), path.name)
    return len(document.passages)


def run_langchain(path: Path) -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # "langchain-community is being sunset"
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    pages = PyPDFLoader(str(path)).load()
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(pages)
    return len(chunks)


PIPELINES = {"pymupdf": run_pymupdf, "folio": run_folio, "langchain": run_langchain}


def folio_stages(path: Path) -> dict[str, float]:
    """Where Folio's time goes: extraction, then passages with the count."""
    from lib.reading.extract import extract
    from lib.reading.passages import cut_document
    from lib.reading.tokens import get_counter

    data = path.read_bytes()
    start = time.perf_counter()
    extraction = extract(data, path.name)
    middle = time.perf_counter()
    cut_document(extraction, "bch", get_counter())
    end = time.perf_counter()
    return {"extract": middle - start, "passages_and_count": end - middle}


# ---------------------------------------------------------------- measuring


def timed(function, *args) -> float:
    gc.collect()
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def warm_up(path: Path) -> dict[str, float]:
    """Imports and the tokenizer load happen once per process: time them apart."""
    loads = {}
    start = time.perf_counter()
    from lib.reading.tokens import get_counter

    get_counter()
    loads["tokenizer_load"] = time.perf_counter() - start
    for name, function in PIPELINES.items():
        start = time.perf_counter()
        function(path)
        loads[f"first_{name}"] = time.perf_counter() - start
    return loads


def compare(path: Path, repeat: int) -> dict[str, list[float]]:
    """Each repetition runs every pipeline once, in a rotating order (fair to all)."""
    names = list(PIPELINES)
    times: dict[str, list[float]] = {name: [] for name in names}
    times["folio_extract"], times["folio_passages_and_count"] = [], []
    for rep in range(repeat):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            times[name].append(timed(PIPELINES[name], path))
        stages = folio_stages(path)
        times["folio_extract"].append(stages["extract"])
        times["folio_passages_and_count"].append(stages["passages_and_count"])
    return times


def chinese_counting(path: Path, repeat: int) -> dict:
    from lib.reading.tokens import EstimateCounter, get_counter

    text = path.read_text(encoding="utf-8")[:CHINESE_CHARS]
    counter, estimator = get_counter(), EstimateCounter()
    exact = [timed(counter.count, text) for _ in range(repeat)]
    estimate = [timed(estimator.count, text) for _ in range(repeat)]
    return {
        "chars": len(text),
        "tokens": counter.count(text),
        "estimated_tokens": estimator.count(text),
        "exact_s": statistics.median(exact),
        "estimate_s": statistics.median(estimate),
    }


def _vm_hwm_mb() -> float:
    """Peak resident memory of this process image, from /proc (ru_maxrss survives exec on
    Linux, so a child would report its parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_memory(pipeline: str, path: Path) -> dict:
    """Run one pipeline once in this (fresh) process and report its peak memory."""
    if pipeline == "folio":
        from lib.reading.tokens import get_counter

        get_counter()  # loaded once per process: part of the resident set, not of one file
    before = _vm_hwm_mb()
    tracemalloc.start()
    PIPELINES[pipeline](path)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"traced_peak_mb": peak / 1e6, "peak_rss_mb": _vm_hwm_mb(), "rss_before_mb": before}


def memory(path: Path) -> dict[str, dict]:
    results = {}
    for name in PIPELINES:
        out = subprocess.run(
            [sys.executable, __file__, str(path), "--child", name], capture_output=True, text=True, check=True
        ).stdout
        results[name] = json.loads(out)
    return results


# ---------------------------------------------------------------- report


def report(path: Path, repeat: int, loads: dict, times: dict, chinese: dict, mem: dict) -> str:
    med = {name: statistics.median(values) for name, values in times.items()}
    ratio = med["folio"] / med["pymupdf"]
    # Each repetition ran both back to back: the median of the paired ratios resists load
    # from other processes better than a ratio of medians.
    paired = statistics.median(f / p for f, p in zip(times["folio"], times["pymupdf"]))
    best = min(times["folio"]) / min(times["pymupdf"])
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"{_cpus()} CPUs. File: `{path.name}` ({path.stat().st_size:,} bytes). "
        f"Medians of {repeat} interleaved runs (all {len(PIPELINES)} pipelines in each run, rotating order).",
        "",
        "| pipeline | median s | min s | max s | x pymupdf |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in [*PIPELINES, "folio_extract", "folio_passages_and_count"]:
        values = times[name]
        lines.append(
            f"| {name} | {med[name]:.3f} | {min(values):.3f} | {max(values):.3f} | {med[name] / med['pymupdf']:.2f} |"
        )
    lines += [
        "",
        f"- Folio / pymupdf: **{ratio:.2f}x** (limit {LIMIT_RATIO}x): {'PASS' if ratio <= LIMIT_RATIO else 'FAIL'}. "
        f"Median of the per-run ratios {paired:.2f}x; best run over best run {best:.2f}x.",
        f"- Folio / LangChain: **{med['folio'] / med['langchain']:.2f}x**: "
        f"{'PASS (Folio faster)' if med['folio'] < med['langchain'] else 'FAIL'}.",
        f"- Once per process (not in the times above): tokenizer load {loads['tokenizer_load']:.2f} s; "
        f"first runs incl. imports: pymupdf {loads['first_pymupdf']:.2f} s, folio {loads['first_folio']:.2f} s, "
        f"langchain {loads['first_langchain']:.2f} s.",
        f"- Chinese: {chinese['chars']:,} characters = {chinese['tokens']:,} tokens counted exactly in "
        f"**{chinese['exact_s'] * 1000:.0f} ms** (median); the fallback estimator says "
        f"{chinese['estimated_tokens']:,} in {chinese['estimate_s'] * 1000:.0f} ms.",
        "",
        "Peak memory, each pipeline once in a fresh process:",
        "",
        "| pipeline | peak RSS MB (VmHWM) | RSS before the run MB | Python peak (tracemalloc) MB |",
        "|---|---:|---:|---:|",
    ]
    for name, values in mem.items():
        lines.append(f"| {name} | {values['peak_rss_mb']:.0f} | {values['rss_before_mb']:.0f} | {values['traced_peak_mb']:.1f} |")
    return "\n".join(lines) + "\n"


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pdf", nargs="?", type=Path, default=DEFAULT_PDF)
    parser.add_argument("--chinese", type=Path, default=DEFAULT_CHINESE)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="also write docs/readme/bench-ingest.md")
    parser.add_argument("--child", choices=list(PIPELINES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_memory(args.child, args.pdf)))
        return 0
    loads = warm_up(args.pdf)
    times = compare(args.pdf, args.repeat)
    chinese = chinese_counting(args.chinese, args.repeat)
    text = report(args.pdf, args.repeat, loads, times, chinese, memory(args.pdf))
    print(text)
    if args.write:
        (ROOT / "docs" / "readme" / "bench-ingest.md").write_text(HEADER + text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

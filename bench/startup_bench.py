"""Start-up of `python -m lib ingest` on a small file, before and after, against a bare pymupdf
process (numbers go to docs/readme/bench-startup.md).

    .venv/bin/python bench/startup_bench.py [--before /work/main] [--repeat 15] [--write]

Each command runs in a fresh process, all of them interleaved, --repeat times; medians of
the wall time and of the CPU time (user + system, which other jobs on a shared machine
disturb less). Python's bytecode cache is on, in a temporary folder (as on a user's machine
after the first run; this project's sessions set PYTHONDONTWRITEBYTECODE, which makes every
start compile Folio from source), and Folio's data folder is a temporary one whose rank
cache the first, unmeasured, run fills.

  pymupdf          python -c "import pymupdf; pymupdf.open(PDF)[0].get_text()"   (the reference)
  ingest-pdf       python -m lib ingest PDF      (a one-page judgment)
  ingest-txt       python -m lib ingest TXT      (a few lines of text)
  tokenizer        python -c "get_counter()"     (the exact Qwen3 counter alone)

--before runs the three Folio commands in another checkout too (its lib/, the same Python).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = next((p / "shared" / "corpus" for p in ROOT.parents if (p / "shared" / "corpus").is_dir()), ROOT.parent / "shared" / "corpus")
DOBBS = CORPUS / "long_docs" / "legal_us" / "scotus_19-1392_dobbs-v-jackson_2022_slip-opinion.pdf"


def commands(pdf: Path, txt: Path) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "pymupdf": [python, "-c", f"import pymupdf; pymupdf.open({str(pdf)!r})[0].get_text()"],
        "ingest-pdf": [python, "-m", "lib", "ingest", str(pdf)],
        "ingest-txt": [python, "-m", "lib", "ingest", str(txt)],
        "tokenizer": [python, "-c", "from lib.reading.tokens import get_counter; get_counter().count('x')"],
    }


def timed(command: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(checkouts: dict[str, Path], repeat: int, folder: Path) -> dict[str, tuple[list[float], list[float]]]:
    pdf, txt = small_files(folder)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE" and not key.startswith("FOLIO_")}
    runs: list[tuple[str, list[str], Path, dict]] = []
    for label, checkout in checkouts.items():
        checkout_env = {**env, "PYTHONPYCACHEPREFIX": str(folder / f"pyc-{label}"), "FOLIO_DATA_DIR": str(folder / f"data-{label}")}
        for name, command in commands(pdf, txt).items():
            if name == "pymupdf" and label != "after":
                continue
            runs.append((name if name == "pymupdf" else f"{name} ({label})", command, checkout, checkout_env))
    for _name, command, cwd, run_env in runs:  # fill the bytecode and rank caches
        timed(command, cwd, run_env)
    results = {name: ([], []) for name, *_ in runs}
    for rep in range(repeat):
        order = runs[rep % len(runs):] + runs[:rep % len(runs)]
        for name, command, cwd, run_env in order:
            wall, cpu = timed(command, cwd, run_env)
            results[name][0].append(wall)
            results[name][1].append(cpu)
    return results


def small_files(folder: Path) -> tuple[Path, Path]:
    import pymupdf

    doc = pymupdf.open()
    doc.insert_pdf(pymupdf.open(DOBBS), from_page=0, to_page=0)
    pdf = folder / "one-page-judgment.pdf"
    doc.save(pdf)
    txt = folder / "note.txt"
    txt.write_text("Meeting note.\n\nThe committee approved the budget on 3 March.\n", encoding="utf-8")
    return pdf, txt


def report(results: dict, repeat: int, checkouts: dict[str, Path]) -> str:
    wall0 = statistics.median(results["pymupdf"][0])
    cpu0 = statistics.median(results["pymupdf"][1])
    lines = [
        f"Run {date.today().isoformat()} on {platform.machine()} with {os.cpu_count()} CPUs (shared with other jobs), "
        f"Python {platform.python_version()}; medians of {repeat} interleaved runs, each a fresh process; "
        + ", ".join(f"{label} = {path}" for label, path in checkouts.items()) + ".",
        "",
        "| command | wall s | x pymupdf | CPU s | x pymupdf |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (walls, cpus) in results.items():
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        lines.append(f"| {name} | {wall:.3f} | {wall / wall0:.2f} | {cpu:.3f} | {cpu / cpu0:.2f} |")
    return "\n".join(lines) + "\n"


HEADER = """# Start-up benchmark

`bench/startup_bench.py` times `python -m lib ingest` on a small file (a one-page judgment
PDF, a three-line text file) and the exact tokenizer's load, each in a fresh process, against
a bare pymupdf process that opens the same PDF and reads its page, before and after issue 9's
start-up changes (the rank file's pre-parsed cache in the data folder, no importlib.resources).

```
.venv/bin/python bench/startup_bench.py [--before /work/main] [--repeat 15] [--write]
```

"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="another checkout to compare with (e.g. /work/main)")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--write", action="store_true", help="also write docs/readme/bench-startup.md")
    args = parser.parse_args()
    checkouts = {"after": ROOT}
    if args.before:
        checkouts = {"before": args.before.resolve(), "after": ROOT}
    with tempfile.TemporaryDirectory(prefix="folio-startup-bench-") as name:
        results = measure(checkouts, args.repeat, Path(name))
    text = report(results, args.repeat, checkouts)
    print(text)
    if args.write:
        (ROOT / "docs" / "readme" / "bench-startup.md").write_text(HEADER + text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time to render the Review page with a 2,000-row, 6-column table open (target: under 1 s).

    .venv/bin/python bench/review_page_bench.py [--rows 2000] [--runs 5] [--browser]

A library is made in a temporary folder: one real judgment (so a cell can be opened with its
passage) and a review table of --rows rows x 6 columns (text, date, options, yes/no, number,
list), every cell answered with a verified citation, one in 7 needing review, one in 50 failed,
stored as the runner stores them. Then, with streamlit.testing.v1.AppTest (the server side: the
app script, its SQL, the views and Streamlit's serialising of what it shows), in one app
process already warm (imports done), medians of --runs runs after a warm-up:

- review_open_cold  the page opened right after the table changed (it is read and its views built)
- review_open       the page opened again (the views of this version are kept by the process)
- page_20           the grid's 20th page
- filter_value      rows whose Outcome is "Dismissed"
- needs_review      rows needing review
- cell_opened       a cell opened (its passage read from the store, its quote highlighted)

--browser adds a real `streamlit run` and Debian's Chromium (Playwright): from opening the
page's address in a new tab (Streamlit's own start in a tab included), and from a click on
Review in the sidebar of an open app, to its grid and the caption under it on screen. Results printed with the target
beside them and written to bench/results/review_page_bench.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

TARGET_S = 1.0
RESULTS = ROOT / "bench" / "results" / "review_page_bench.json"


def build_library(folder: Path, rows: int) -> tuple[int, str]:
    """The table's id and the real document's SHA-256 (its first row)."""
    from lib.asking.review import Column, create_table
    from lib.library.store import Store
    from lib.reading.ingest import ingest_bytes
    from review_fixtures import judgment_text

    store = Store(folder)
    data = judgment_text(7).encode()
    real, _ = store.add_document(ingest_bytes(data, "case-7.txt"), data)
    columns = [
        Column("Court", "Which court decided the case?"),
        Column("Date of judgment", "On what date was the judgment given?", "date"),
        Column("Outcome", "What was the outcome?", "options", ("Allowed", "Dismissed", "Allowed in part")),
        Column("Limitation upheld?", "Was a limitation defence upheld?", "yesno"),
        Column("Damages", "What damages were awarded?", "number"),
        Column("Statutes", "Which statutes were interpreted?", "list"),
    ]
    documents = [(real.sha256, real.name)] + [
        (hashlib.sha256(f"judgment {n}".encode()).hexdigest(), f"Smith v Jones (No {n}).pdf") for n in range(1, rows)]
    table = create_table(store, "Matter of 2,000 judgments", documents, columns)
    _fill(store, table, real)
    return table.id, real.sha256


def _fill(store, table, real) -> None:
    """Every cell answered as the runner stores it (one transaction here, for speed)."""
    values = {"c1": ("High Court", None), "c2": ("2022-02-11", None), "c3": ("Dismissed", None), "c4": (True, None),
              "c5": (1_250_000, "EUR"), "c6": (["Limitation Act 1980", "Sale of Goods Act 1979"], None)}
    passage = real.passages[1]
    records = []
    for n, row in enumerate(table.rows):
        for column in table.columns:
            value, unit = values[column.key]
            if column.key == "c3" and n % 3 == 0:
                value = "Allowed"
            status = "failed" if (n * 6 + int(column.key[1:])) % 50 == 0 else "answered"
            verified = (n + int(column.key[1:])) % 7 != 0
            cell = {"column": column.key, "status": status, "value": value if status == "answered" else None,
                    "unit": unit, "text": str(value), "answer": f"{column.title}: {value}.", "fingerprint": column.fingerprint,
                    "citations": [{"id": passage.id, "document": row.name, "page": 3, "page_end": 3, "page_label": None,
                                   "quote": passage.text[:40], "status": "verified" if verified else "unverified",
                                   "reason": "", "index": passage.index, "found_in": None, "span": [0, 40]}],
                    "reason": "The server is busy." if status == "failed" else "", "raw": "", "parts": 1, "source": "json",
                    "review": [] if verified and status == "answered" else ["no verified citation"]}
            records.append((table.id, row.sha256, column.key, status, column.fingerprint, json.dumps(cell), None,
                            datetime.now(timezone.utc).isoformat(timespec="microseconds")))
    with store._write() as conn:
        conn.executemany("INSERT INTO review_cells (table_id, sha256, column_key, status, fingerprint, cell, call_id, "
                         "updated_at) VALUES (?,?,?,?,?,?,?,?)", records)
        conn.execute("UPDATE review_tables SET updated_at = ? WHERE id = ?",
                     (datetime.now(timezone.utc).isoformat(timespec="microseconds"), table.id))


# ---------------------------------------------------------------- AppTest


def measure_apptest(table_id: int, real_sha: str, runs: int) -> dict[str, list[float]]:
    import logging

    logging.disable(logging.WARNING)
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.testing.v1 import AppTest

    from lib.library.reviews import ReviewStore
    from lib.library.store import Store

    spent: list[float] = []
    execute = script_runner.exec_func_with_error_handling

    def timed_execute(func, ctx):
        began = time.perf_counter()
        try:
            return execute(func, ctx)
        finally:
            spent.append(time.perf_counter() - began)

    script_runner.exec_func_with_error_handling = timed_execute
    app = str(ROOT / "app.py")
    times: dict[str, list[float]] = {}

    def page() -> AppTest:
        at = AppTest.from_file(app, default_timeout=600)
        at.session_state["review-table"] = table_id
        return at.switch_page("pages/review.py")

    def timed(name: str, action) -> AppTest:
        spent.clear()
        at = action()
        assert not at.exception, [e.value for e in at.exception]
        times.setdefault(name, []).append(sum(spent))
        return at

    store = Store(os.environ["FOLIO_DATA_DIR"])
    page().run()  # warm-up: imports, the store, the tokenizer (a running app has them)
    times.clear()
    for _ in range(runs):
        ReviewStore(store).rename(table_id, "Matter of 2,000 judgments")  # a new version: read afresh
        timed("review_open_cold", lambda: page().run())
        at = timed("review_open", lambda: page().run())
        at.pagination[0].set_value(20)
        timed("page_20", at.run)
        at = page().run()
        at.selectbox(key=f"review-filter-column-{table_id}").set_value("c3").run()
        at.selectbox(key=f"review-filter-value-{table_id}-c3").set_value("Dismissed")
        timed("filter_value", at.run)
        at = page().run()
        at.toggle(key=f"review-filter-review-{table_id}").set_value(True)
        timed("needs_review", at.run)
        at = page().run()
        at.selectbox(key="review-open-row").set_value(real_sha)
        at.selectbox(key="review-open-column").set_value("c1")
        timed("cell_opened", at.run)
    return times


# ---------------------------------------------------------------- a real browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure_browser(data: Path, runs: int, rows: int) -> dict[str, list[float]]:
    """Seconds from opening /review to its grid on screen (the table changed last opens by itself);
    the grid is a canvas, so "on screen" is the grid's element and the caption under it."""
    import httpx
    from playwright.sync_api import expect, sync_playwright

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLIO_") and k != "OLLAMA_HOST"}
    env.update(FOLIO_DATA_DIR=str(data), OLLAMA_HOST=f"127.0.0.1:{_free_port()}")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    times: dict[str, list[float]] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/_stcore/health").text == "ok":
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                 args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            def shown(tab) -> None:
                expect(tab.get_by_test_id("stDataFrame").first).to_be_visible(timeout=600_000)  # the grid (a canvas)
                expect(tab.get_by_text(f"{rows:,} rows; 1-50 shown", exact=False)).to_be_visible(timeout=600_000)
                expect(tab.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=600_000)

            for number in range(runs + 1):  # the first round warms the app process up
                tab = browser.new_page(viewport={"width": 1400, "height": 1000})
                began = time.perf_counter()
                tab.goto(url + "/review")
                shown(tab)
                if number:
                    times.setdefault("browser_new_tab", []).append(time.perf_counter() - began)
                tab.get_by_test_id("stSidebarNav").get_by_role("link", name="Library").click()
                expect(tab.get_by_role("heading", name="Library", exact=True)).to_be_visible(timeout=600_000)
                expect(tab.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=600_000)
                began = time.perf_counter()
                tab.get_by_test_id("stSidebarNav").get_by_role("link", name="Review").click()
                shown(tab)
                if number:
                    times.setdefault("browser_from_sidebar", []).append(time.perf_counter() - began)
                tab.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--browser", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="folio-review-page-")) / "data"
    os.environ["FOLIO_DATA_DIR"] = str(folder)
    os.environ["OLLAMA_HOST"] = f"127.0.0.1:{_free_port()}"  # no server: the page must not need one
    began = time.perf_counter()
    table_id, real = build_library(folder, args.rows)
    print(f"{args.rows:,} rows x 6 columns stored in {time.perf_counter() - began:.1f} s ({folder})", file=sys.stderr)
    times = measure_apptest(table_id, real, args.runs)
    if args.browser:
        times |= measure_browser(folder, args.runs, args.rows)
    summary = {name: {"median_s": round(statistics.median(v), 3), "max_s": round(max(v), 3), "runs": len(v)}
               for name, v in times.items()}
    print(f"{'scenario':<22}{'median':>9}{'slowest':>9}   target")
    for name, row in summary.items():
        print(f"{name:<22}{row['median_s']:>8.3f}s{row['max_s']:>8.3f}s   < {TARGET_S:.1f} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
        "cpus": os.cpu_count(), "load": os.getloadavg(), "rows": args.rows, "columns": 6, "target_s": TARGET_S,
        "results": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

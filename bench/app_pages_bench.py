"""Time to render the Library and Ask pages with a 2,000-document library, before and after.

    .venv/bin/python bench/app_pages_bench.py [--library DIR] [--documents 2000] [--runs 5]
                                             [--baseline REF] [--browser] [--write]

Two measurements, side by side for this checkout ("after") and for the app at git REF
("before", default 9d7b455: the app before the library-scale pages, extracted with `git
archive` into a temporary folder, nothing in the repository touched):

- AppTest (streamlit.testing.v1): the time of one script run of a page, server side (the
  page's Python, SQL and Streamlit's serialising of what it shows), in a fresh browser
  session of an app process that is already running. Each variant runs in its own process.
- --browser: a real `streamlit run` of each app and Debian's Chromium (Playwright): from
  opening the page's address to the moment its document list (Library) or its document
  chooser (Ask) is on screen, a new tab each time.

The library comes from bench/make_library.py (2,000 generated judgments over real text from
../shared/corpus, 11.4 million tokens; built once into --library, or a temporary folder).
Scenarios: the Library page opened; its 20th page; a name filter; the Ask page opened; the
Ask page opened with 10 documents chosen (the exact budget is computed: documents loaded,
rendered and counted; first time and again); with a 300-document collection chosen; with the
whole library chosen, and a question typed over it (planned: both modes shown before anything
is sent; then the same page again). Medians of --runs runs after one warm-up, with the slowest run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "readme" / "bench-app.md"
BASELINE_REF = "9d7b455"
GOAL_S = 1.0
"""A page a person uses all day renders in under a second at 2,000 documents."""


# ---------------------------------------------------------------- the library


def ensure_library(folder: Path | None, documents: int) -> Path:
    """The generated library at `folder` (built there if empty), or in a temporary folder."""
    folder = folder or Path(tempfile.mkdtemp(prefix="folio-app-bench-")) / "library"
    if not (folder / "folio.db").exists():
        sys.path.insert(0, str(ROOT))
        from bench.make_library import build_library

        print(f"building {documents:,} documents into {folder} ...", file=sys.stderr, flush=True)
        build_library(folder, documents, quiet=True)
    return folder


def scenario_documents(folder: Path) -> dict:
    """The documents the scenarios choose: 10 that fit one call, and a 300-document matter."""
    sys.path.insert(0, str(ROOT))
    from lib.library.store import Store

    store = Store(folder)
    matter = store.collection_shas("Matter 1")
    small = [d for d in store.document_summaries(matter) if d.tokens < 8000][:10]
    everything = store.collection_shas("All judgments") if "All judgments" in {
        c.name for c in store.list_collections()} else []
    return {"ten": [d.sha256 for d in small], "ten_tokens": sum(d.tokens for d in small), "matter": matter,
            "matter_tokens": sum(d.tokens for d in store.document_summaries(matter)),
            "total": store.list_documents_page(limit=1).total, "all": everything}


# ---------------------------------------------------------------- AppTest, in a child process


def measure_apptest(app: str, runs: int, chosen: dict, new_ui: bool) -> dict:
    """Script-run times of each scenario (seconds), in this process (FOLIO_DATA_DIR set by the caller).

    What is timed is Streamlit's execution of the app script (app.py: the sidebar, then the page),
    reruns included; AppTest's own work around it (scanning installed packages for components,
    polling for the result) is left out.
    """
    import logging

    logging.disable(logging.WARNING)  # AppTest's "no runtime" warnings
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.testing.v1 import AppTest

    spent: list[float] = []
    execute = script_runner.exec_func_with_error_handling

    def timed_execute(func, ctx):
        began = time.perf_counter()
        try:
            return execute(func, ctx)
        finally:
            spent.append(time.perf_counter() - began)

    script_runner.exec_func_with_error_handling = timed_execute

    def session(page: str = "library", selected: list[str] | None = None):
        at = AppTest.from_file(app, default_timeout=600)
        if selected is not None:
            at.session_state["selected"] = list(selected)
        return at.switch_page(f"pages/{page}.py") if page != "library" else at

    def timed(action) -> float:
        spent.clear()
        at = action()
        assert not at.exception, [e.value for e in at.exception]
        return sum(spent)

    times: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds)

    session().run()  # warm-up: imports, the store opened, the tokenizer loaded (a running app has them)
    add("ask_ten_first", timed(lambda: session("ask", chosen["ten"]).run()))
    for _ in range(runs):
        at = session()
        add("library_open", timed(at.run))
        if new_ui:
            at.pagination[0].set_value(20)
            add("library_page_20", timed(at.run))
            at.text_input(key="lib-name").set_value("Abernathy")
            add("library_filter", timed(at.run))
        add("ask_open", timed(lambda: session("ask").run()))
        add("ask_ten", timed(lambda: session("ask", chosen["ten"]).run()))
        add("ask_matter", timed(lambda: session("ask", chosen["matter"]).run()))
        if new_ui and chosen.get("all"):
            add("ask_all", timed(lambda: session("ask", chosen["all"]).run()))
    if new_ui and chosen.get("all"):
        for number in range(runs + 1):  # a question planned over the whole library (a new question each time)
            at = session("ask", chosen["all"]).run()
            at.chat_input(key="question").set_value(f"Was the limitation defence upheld in case {number}?")
            add("ask_plan_first" if number == 0 else "ask_plan_next", timed(at.run))
            add("ask_plan_again", timed(at.run))
    return times


# ---------------------------------------------------------------- a real browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure_browser(app_dir: Path, data: Path, runs: int, new_ui: bool, total: int) -> dict:
    """Seconds from opening a page to its list or chooser on screen, in Chromium against `streamlit run`."""
    from playwright.sync_api import expect, sync_playwright

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLIO_") and k != "OLLAMA_HOST"}
    env.update(FOLIO_DATA_DIR=str(data), OLLAMA_HOST=f"127.0.0.1:{_free_port()}")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=app_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    ready = {
        "Library": f"{total:,} documents, " if new_ui else f"{total} document(s)",
        "Ask": "Read a whole collection" if new_ui else "Documents to read",
    }
    times: dict[str, list[float]] = {}

    def shown(tab, page: str) -> None:
        expect(tab.get_by_role("heading", name=page, exact=True)).to_be_visible(timeout=600_000)
        expect(tab.get_by_text(ready[page], exact=False).first).to_be_visible(timeout=600_000)
        if page == "Library":
            expect(tab.get_by_test_id("stDataFrame").first).to_be_visible(timeout=600_000)
        expect(tab.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=600_000)  # its run has ended

    try:
        _wait_for(url + "/_stcore/health")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                 args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            for number in range(runs + 1):  # the first round warms the app process up
                tab = browser.new_page(viewport={"width": 1400, "height": 1000})
                steps = (("library_open", lambda: tab.goto(url), "Library"),
                         ("ask_from_sidebar", lambda: _nav(tab, "Ask"), "Ask"),
                         ("library_from_sidebar", lambda: _nav(tab, "Library"), "Library"))
                for name, action, page in steps:
                    began = time.perf_counter()
                    action()
                    shown(tab, page)
                    if number:
                        times.setdefault(name, []).append(time.perf_counter() - began)
                tab.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    return times


def _nav(tab, title: str) -> None:
    tab.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()


def _wait_for(url: str, deadline_s: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url).text == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling a server coming up (a benchmark, not a test)
    raise SystemExit(f"{url} did not answer within {deadline_s:.0f} s")


# ---------------------------------------------------------------- variants and report


def baseline_checkout(ref: str) -> Path:
    """The app at `ref`, extracted with git archive into a temporary folder (the repository is not touched)."""
    folder = Path(tempfile.mkdtemp(prefix="folio-app-baseline-"))
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_child(app_dir: Path, data: Path, runs: int, chosen: dict, new_ui: bool, browser: bool) -> dict:
    """One variant measured in its own process (its own lib/ and ui/ on sys.path)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLIO_") and k != "OLLAMA_HOST"}
    env.update(FOLIO_DATA_DIR=str(data), OLLAMA_HOST=f"127.0.0.1:{_free_port()}", PYTHONPATH=str(app_dir))
    spec = json.dumps({"app_dir": str(app_dir), "data": str(data), "runs": runs, "chosen": chosen,
                       "new_ui": new_ui, "browser": browser})
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:  # 2,000 SHA-256: too long for argv
        handle.write(spec)
    try:
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", handle.name], env=env,
                              cwd=app_dir, capture_output=True, text=True)
    finally:
        os.unlink(handle.name)
    if done.returncode:
        raise SystemExit(f"measuring {app_dir} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    sys.path.insert(0, spec["app_dir"])
    if spec["browser"]:
        result = measure_browser(Path(spec["app_dir"]), Path(spec["data"]), spec["runs"], spec["new_ui"],
                                 spec["chosen"]["total"])
    else:
        result = measure_apptest(str(Path(spec["app_dir"]) / "app.py"), spec["runs"], spec["chosen"], spec["new_ui"])
    print(json.dumps(result))


LABELS = {
    "library_open": "Library page opened (new session)",
    "library_from_sidebar": "Library page from the sidebar",
    "ask_from_sidebar": "Ask page from the sidebar",
    "library_page_20": "Library: the list's 20th page",
    "library_filter": "Library: a name filter",
    "ask_open": "Ask page opened, nothing chosen",
    "ask_ten_first": "Ask, 10 documents chosen: first time (loaded, rendered, counted)",
    "ask_ten": "Ask, 10 documents chosen: again (cached)",
    "ask_matter": "Ask, a 300-document collection chosen",
    "ask_all": "Ask, the whole library chosen (2,000 documents: the plan notice, from stored counts)",
    "ask_plan_first": "Ask, a first question over the whole library (loaded, ranked, packed, split; both modes shown)",
    "ask_plan_next": "Ask, another question over it (the documents kept: ranked and planned again)",
    "ask_plan_again": "Ask, the same plan shown again (a rerun: kept, nothing loaded or planned again)",
}


def _cell(values: list[float] | None) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.2f} (max {max(values):.2f})"


def report(results: dict, chosen: dict, args) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"Machine: {platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} CPUs (shared), "
        f"{date.today().isoformat()}, load average {load:.1f}. Library: {chosen['total']:,} generated documents "
        f"(bench/make_library.py); the 10 chosen hold {chosen['ten_tokens']:,} tokens, the 300-document collection "
        f"{chosen['matter_tokens']:,}. Seconds, median of {args.runs} runs (slowest in brackets); goal under {GOAL_S:.0f} s.",
        "",
    ]
    titles = (("apptest", "AppTest: the app script's run (sidebar and page), server side"),
              ("browser", "Chromium against `streamlit run`: from the click (or the address) to the page on screen"))
    for kind, title in titles:
        if kind not in results["after"]:
            continue
        lines += [f"**{title}**", "", f"| scenario | before ({args.baseline}) s | after s |", "|---|---:|---:|"]
        for key, label in LABELS.items():
            before = results.get("before", {}).get(kind, {}).get(key)
            after = results["after"][kind].get(key)
            if before or after:
                lines.append(f"| {label} | {_cell(before)} | {_cell(after)} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", type=Path, help="a library folder (built there when empty); default: a temporary one")
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", default=BASELINE_REF, help="git ref of the app to compare with ('' for none)")
    parser.add_argument("--browser", action="store_true", help="also time the pages in Chromium against streamlit run")
    parser.add_argument("--write", action="store_true", help=f"write the figures into {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    library = ensure_library(args.library, args.documents)
    chosen = scenario_documents(library)
    variants = {"after": (ROOT, True)}
    if args.baseline:
        variants["before"] = (baseline_checkout(args.baseline), False)
    results: dict = {}
    for name, (app_dir, new_ui) in variants.items():
        results[name] = {"apptest": run_child(app_dir, library, args.runs, chosen, new_ui, False)}
        print(f"{name}: AppTest done", file=sys.stderr, flush=True)
        if args.browser:
            results[name]["browser"] = run_child(app_dir, library, args.runs, chosen, new_ui, True)
            print(f"{name}: browser done", file=sys.stderr, flush=True)
    text = report(results, chosen, args)
    print(text)
    if args.write:
        _write(text, chosen["total"])
    for name, (app_dir, _new) in variants.items():
        if app_dir != ROOT:
            shutil.rmtree(app_dir, ignore_errors=True)
    return 0


def _write(text: str, documents: int) -> None:
    """Put the figures under the doc's heading "### N documents <!-- figures N -->" for this library
    size, replacing the ones there (up to the next such heading)."""
    marker = f"<!-- figures {documents} -->"
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    if marker not in current:
        current = current.rstrip() + f"\n\n### {documents:,} documents {marker}\n"
    head, _, rest = current.partition(marker)
    following = rest.find("<!-- figures ")
    tail = rest[rest.rfind("\n", 0, following) + 1:] if following != -1 else ""
    RESULTS.write_text(head + marker + "\n\n" + text.strip() + "\n\n" + tail, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())

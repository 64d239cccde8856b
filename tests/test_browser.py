"""End to end in a real browser: Debian's chromium driven by Playwright, `streamlit run app.py`
and the fake Ollama started here as subprocesses on 127.0.0.1.

The run saves screenshots of the main pages; to refresh the ones the README shows:
`FOLIO_SCREENSHOT_DIR=docs/screenshots bash scripts/test.sh tests/test_browser.py`.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from lib.reading.ingest import ingest_bytes

import fixtures

ROOT = Path(__file__).resolve().parent.parent
# Not into the checkout by default: a test run must not rewrite tracked files.
SHOTS = Path(os.environ.get("FOLIO_SCREENSHOT_DIR") or Path(tempfile.gettempdir()) / "folio-screenshots").resolve()
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
STARTUP_S = 90.0
ANSWER_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(check, deadline_s: float, what: str, process: subprocess.Popen) -> None:
    """Poll `check` until it is true; fail with the process's output if it dies or time runs out."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            pytest.fail(f"{what} exited with {process.returncode}:\n{out}")
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{what} did not come up within {deadline_s:.0f} s")


def _start(cmd: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def _app(data_dir: Path, ollama_host: str, **env_extra: str):
    """`streamlit run app.py` on a free port against `ollama_host`, with its own data folder; yields
    its URL once healthy, and stops it after (its output printed, shown when a test fails)."""
    app_port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLIO_") and k != "OLLAMA_HOST"}
    env.update(FOLIO_DATA_DIR=str(data_dir), OLLAMA_HOST=ollama_host, PYTHONUNBUFFERED="1", **env_extra)
    app = _start(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(app_port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        env,
    )
    try:
        _wait_until(lambda: httpx.get(f"http://127.0.0.1:{app_port}/_stcore/health").text == "ok",
                    STARTUP_S, "streamlit", app)
        yield f"http://127.0.0.1:{app_port}"
    finally:
        _stop(app)
        print("--- streamlit output ---\n" + (app.stdout.read() if app.stdout else ""))


def _long_answer() -> str:
    """A cited answer long enough (streamed slowly) to watch it arrive and to stop it."""
    document = ingest_bytes(fixtures.english_pdf(), "judgment.pdf")
    passage = next(p for p in document.passages if "committee" in p.text)
    quote = fixtures.ENGLISH_PHRASE.rstrip(".")
    filler = " ".join(f"Point {n} of the summary follows from the minutes." for n in range(1, 16))
    return f'The committee decided on the budget: "{quote}" [{passage.id}]. {filler}'


@pytest.fixture
def servers(tmp_path):
    """The fake Ollama and the app, each a real process on its own free port."""
    fake_port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLIO_") and k != "OLLAMA_HOST"}
    fake = _start(
        [sys.executable, "tests/fake_ollama.py", "--port", str(fake_port), "--chunk-delay", "0.12",
         "--answer", _long_answer(), "--thinking", "The minutes on page 1 record the decision."],
        env,
    )
    try:
        _wait_until(lambda: httpx.get(f"http://127.0.0.1:{fake_port}/api/version").status_code == 200,
                    STARTUP_S, "fake Ollama", fake)
        with _app(tmp_path / "data", f"127.0.0.1:{fake_port}") as url:
            yield url
    finally:
        _stop(fake)


@pytest.fixture
def held(tmp_path):
    """The app against a fake Ollama run in this process, so a test can hold its answers back."""
    from fake_ollama import FakeOllama

    with FakeOllama(chunk_delay=0.05) as fake, _app(tmp_path / "data", fake.url) as url:
        yield url, fake


@pytest.fixture
def blank_tab(servers):
    """A browser tab that has not opened the app yet. Every request the page makes is routed
    here: one to anywhere but the app itself (127.0.0.1 at its port) is refused and fails the
    test (users' files are confidential; the model server is the app's business, not the page's)."""
    yield from _tab(servers)


def _tab(app_url: str):
    """A Chromium tab whose every request is checked by _only_the_app."""
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        context.route("**/*", lambda route: _only_the_app(route, app_url, outside))
        tab = context.new_page()
        tab.set_default_timeout(ANSWER_S * 1000)
        expect.set_options(timeout=ANSWER_S * 1000)  # expect() polls; this is only its deadline
        try:
            yield tab
        finally:
            context.close()
            browser.close()
    assert not outside, f"the page requested something outside the app: {outside}"


def _only_the_app(route, app_url: str, outside: list[str]) -> None:
    """Let requests to the app through; refuse (and note) any other."""
    from urllib.parse import urlsplit

    url, app = urlsplit(route.request.url), urlsplit(app_url)
    if url.scheme in ("http", "https", "ws", "wss") and (url.hostname, url.port) == (app.hostname, app.port):
        route.continue_()
    else:
        outside.append(route.request.url)
        route.abort("blockedbyclient")


@pytest.fixture
def page(blank_tab, servers):
    blank_tab.goto(servers)
    return blank_tab


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def _go(page: Page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()


def test_upload_ask_read_the_cited_page_stop_and_find_it_in_history(page: Page):
    expect(page.get_by_role("heading", name="Library", exact=True)).to_be_visible()
    page.locator("input[type=file]").set_input_files(
        [
            {"name": "judgment.pdf", "mimeType": "application/pdf", "buffer": fixtures.english_pdf()},
            {"name": "scan.pdf", "mimeType": "application/pdf", "buffer": fixtures.not_a_document()},
        ]
    )
    expect(page.get_by_text("judgment.pdf: added", exact=False)).to_be_visible()
    expect(page.get_by_text("scan.pdf: is not a document", exact=False)).to_be_visible()
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    _shot(page, "library")

    page.get_by_role("button", name="Ask about it").click()
    expect(page.get_by_role("heading", name="Ask", exact=True)).to_be_visible()
    expect(page.get_by_text("Fits:", exact=False)).to_be_visible()
    expect(page.get_by_text("1 document chosen", exact=False)).to_be_visible()
    expect(page.get_by_test_id("stDataFrame").last).to_be_visible()  # the budget table
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)  # the script run has finished
    _shot(page, "budget")
    page.get_by_test_id("stChatInputTextArea").fill("What did the committee decide?")
    page.keyboard.press("Enter")
    # While it streams: a running status with the elapsed time, then the words as they arrive.
    expect(page.get_by_text("Answering…", exact=False)).to_be_visible()
    expect(page.get_by_text("Point 15 of the summary", exact=False)).to_be_visible()
    citation = page.get_by_test_id("stExpander").filter(has_text="[1] judgment.pdf")
    expect(citation).to_be_visible()
    expect(page.get_by_text("First token after", exact=False)).to_be_visible()
    citation.get_by_text("[1] judgment.pdf").click()
    expect(citation.get_by_text("verified").first).to_be_visible()
    image = citation.locator("img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.naturalWidth") > 300
    page.set_viewport_size({"width": 1280, "height": 1100})
    page.get_by_test_id("stChatMessage").nth(0).evaluate("e => e.scrollIntoView({block: 'start'})")
    expect(image).to_be_in_viewport()
    _shot(page, "ask")
    page.set_viewport_size({"width": 1280, "height": 900})

    # A follow-up, stopped half-way: what arrived stays, marked as interrupted.
    page.get_by_test_id("stChatInputTextArea").fill("And what else?")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Answering…", exact=False)).to_be_visible()
    streaming = page.get_by_test_id("stChatMessage").last
    expect(streaming).to_contain_text("decided on the budget")  # words of the follow-up are arriving
    page.locator(".st-key-stop-answer button").first.click()
    stopped = page.get_by_test_id("stChatMessage").last
    expect(stopped.get_by_test_id("stAlert").first).to_have_text(re.compile(r"Stopped by you\. The part that arrived is kept\.\s*$"))
    expect(stopped).to_contain_text("The committee decided on the budget")
    expect(stopped).not_to_contain_text("Point 15 of the summary")

    _go(page, "History")
    expect(page.get_by_text("What did the committee decide?").first).to_be_visible()
    page.get_by_role("button", name="Open").first.click()
    expect(page.get_by_role("button", name="Conversation (Word)")).to_be_visible()
    _shot(page, "history")

    _go(page, "Settings")
    expect(page.get_by_text("Ready: Folio can ask this model.")).to_be_visible()
    expect(page.get_by_test_id("stMetricValue").first).to_contain_text("0.13.0")
    _shot(page, "settings")


HOSTILE = (
    "Terms of the lease. See https://evil.example/login and www.evil.example, or write to me@evil.example.\n\n"
    "<script>window.__pwned = 1</script> <img src=x onerror=\"window.__pwned = 2\"> "
    "[click here](javascript:window.__pwned=3) <a href=\"https://evil.example\">a link</a>\n"
)


def test_document_text_renders_as_text_no_html_and_no_live_links(page: Page):
    expect(page.get_by_role("heading", name="Library", exact=True)).to_be_visible()
    page.locator("input[type=file]").set_input_files(
        [{"name": "lease.md", "mimeType": "text/markdown", "buffer": HOSTILE.encode("utf-8")}]
    )
    expect(page.get_by_text("lease.md: added", exact=False)).to_be_visible()
    shown = page.get_by_test_id("stMarkdownContainer").filter(has_text="Terms of the lease")
    expect(shown.first).to_be_visible()
    expect(shown.first).to_contain_text("<script>window.__pwned = 1</script>")  # the characters, shown
    expect(shown.first).to_contain_text("evil.example/login")
    links = page.locator("[data-testid=stMarkdownContainer] a[href]").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    assert all(href.startswith("#") for href in links), links  # heading anchors only: no URL became a link
    assert not page.locator("[data-testid=stMarkdownContainer] img, [data-testid=stMarkdownContainer] script").count()
    assert page.evaluate("() => window.__pwned") is None


def test_a_deep_link_on_a_fresh_server_opens_the_page_inside_the_app(blank_tab: Page, servers):
    # The first request this server sees is a bookmark of /settings (or a tab the browser restores).
    blank_tab.goto(servers + "/settings")
    expect(blank_tab.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    expect(blank_tab.get_by_text("Ready: Folio can ask this model.")).to_be_visible()
    nav = blank_tab.get_by_test_id("stSidebarNav").get_by_role("link")
    # The app's five pages (icon ligature, then title), not Streamlit's list of the pages/ folder.
    expect(nav).to_have_text([re.compile(f"{title}$") for title in ("Library", "Ask", "Review", "History", "Settings")])
    expect(blank_tab.get_by_test_id("stException")).to_have_count(0)
    _go(blank_tab, "Ask")
    expect(blank_tab.get_by_text("Add documents on the Library page first", exact=False)).to_be_visible()
    expect(blank_tab.get_by_test_id("stException")).to_have_count(0)


def test_a_job_run_elsewhere_shows_its_progress_live_stops_from_the_page_and_resumes_here(page: Page, tmp_path):
    """A folder read by another process (the command line) shows in the app as it goes, without a click;
    Cancel in the page stops it; Resume runs the rest in the app, and the list refreshes by itself."""
    from library_fixtures import judgments

    folder = tmp_path / "matter"
    folder.mkdir()
    for name, data in judgments(8, seed=4):
        (folder / name).write_bytes(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLIO_")}
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "blocking_ingest.py"), str(tmp_path / "data"), str(folder), "Matter", "3"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert child.stdout.readline().startswith("job ")
        assert child.stdout.readline().startswith("blocked ")  # inside its 3rd file, two are stored
        page.reload()
        expect(page.get_by_text("2 of 8 files", exact=False)).to_be_visible()
        expect(page.get_by_test_id("stSidebar").get_by_text("Add matter into Matter: 2 of 8")).to_be_visible()
        _shot(page, "jobs")
        page.get_by_role("button", name="Cancel").click()
        expect(page.get_by_text("stopping at the next file", exact=False)).to_be_visible()
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "ended cancelled"
        # No click: the page refreshes itself while the job it showed running ends.
        expect(page.get_by_text("cancelled: what was read is kept", exact=False)).to_be_visible()
        page.get_by_role("button", name="Resume").click()
        expect(page.get_by_text("8 added, 0 already in the library", exact=False)).to_be_visible()
        expect(page.get_by_text("8 documents, ", exact=False)).to_be_visible()  # the list refreshed when it ended
    finally:
        child.kill()
        child.wait(10)


STOP_S = 10.0  # a deadline for expect() while the fake holds its answer for ever: never a sleep


@pytest.fixture
def held_tab(held):
    app_url, _fake = held
    for tab in _tab(app_url):
        tab.goto(app_url)
        yield tab


def test_stop_while_the_model_reads_ends_at_once_saves_nothing_and_offers_the_question_again(held_tab: Page, held):
    page, (_url, fake) = held_tab, held
    expect(page.get_by_role("heading", name="Library", exact=True)).to_be_visible()
    page.locator("input[type=file]").set_input_files(
        [{"name": "judgment.pdf", "mimeType": "application/pdf", "buffer": fixtures.english_pdf()}])
    page.get_by_role("button", name="Ask about it").click()
    expect(page.get_by_text("Fits:", exact=False)).to_be_visible()
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)

    gate = fake.hold_next()  # the server reads the prompt and says nothing, for as long as it likes
    page.get_by_test_id("stChatInputTextArea").fill("Who decided the case?")
    page.keyboard.press("Enter")
    expect(page.get_by_text("The model is reading", exact=False)).to_be_visible()
    assert fake.wait_for(fake.holding.is_set)
    page.locator(".st-key-stop-answer button").first.click()
    stopped = page.get_by_test_id("stAlert").filter(has_text="Nothing was saved")
    expect(stopped).to_be_visible(timeout=STOP_S * 1000)
    assert fake.wait_for(lambda: fake.disconnects >= 1), "the held request was dropped, so the server stops"
    # The page answers again at once: the question is back in the input, and one click asks again.
    field = page.get_by_test_id("stChatInputTextArea")
    expect(field).to_be_enabled(timeout=STOP_S * 1000)
    expect(field).to_have_value("Who decided the case?")
    expect(page.get_by_test_id("stChatMessage").filter(has_text="Who decided the case?")).to_have_count(1)

    _go(page, "History")
    expect(page.get_by_text("Nothing saved yet.")).to_be_visible()  # no conversation without an answer
    _go(page, "Ask")
    page.get_by_role("button", name="Ask again").click()
    expect(page.get_by_text("First token after", exact=False)).to_be_visible()
    expect(page.get_by_test_id("stChatMessage").filter(has_text="The document says")).to_have_count(1)
    gate.set()

    # The server fails a question: the next one checks the server again; Stop during that check.
    fake.fail_next(500, "llama runner process has terminated: exit status 2")
    page.get_by_test_id("stChatInputTextArea").fill("And the costs?")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Ask again")).to_be_visible()
    check = fake.hold_next("/api/show")
    page.get_by_role("button", name="Ask again").click()
    expect(page.get_by_text("Checking the model server", exact=False)).to_be_visible()
    assert fake.wait_for(fake.holding.is_set)
    page.locator(".st-key-stop-answer button").first.click()
    expect(page.get_by_test_id("stAlert").filter(has_text="Nothing was saved")).to_be_visible(timeout=STOP_S * 1000)
    expect(page.get_by_test_id("stChatInputTextArea")).to_have_value("And the costs?")
    check.set()


@pytest.fixture
def planning(tmp_path):
    """The app over 41 generated judgments in a collection, a context of 4,000 tokens, and a fake
    Ollama in this process that reports evidence as a model following Folio's instructions would."""
    from fake_ollama import FakeOllama
    from library_fixtures import documents, topic_of
    from plan_fixtures import reader_of

    from lib.library.store import Store

    data = tmp_path / "data"
    store = Store(data)
    pairs = [(d, o) for d, o in documents(300) if topic_of(d.name) == "limitation"]
    for document, original in pairs:
        store.add_document(document, original)
    store.create_collection("Limitation")
    store.add_to_collection("Limitation", [d.sha256 for d, _ in pairs])
    with FakeOllama(chunk_delay=0.02) as fake:
        fake.script(answer=reader_of("limitation"))
        with _app(data, fake.url, FOLIO_CONTEXT="4000", FOLIO_ANSWER_RESERVE="300") as url:
            yield url, fake


@pytest.fixture
def planning_tab(planning):
    app_url, _fake = planning
    for tab in _tab(app_url):
        tab.goto(app_url)
        yield tab


def test_a_collection_larger_than_one_call_is_asked_by_a_plan_shown_first(planning_tab: Page, planning):
    page, (_url, fake) = planning_tab, planning
    _go(page, "Ask")
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="Limitation").click()
    expect(page.get_by_text("Ask your question", exact=False)).to_be_visible()
    page.get_by_test_id("stChatInputTextArea").fill("Was the limitation defence upheld?")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Nothing has been sent yet.", exact=False)).to_be_visible()
    choice = page.get_by_test_id("stRadio").get_by_text(re.compile(r"^Read everything: \d+ calls"))
    expect(choice).to_be_visible()
    assert not fake.chat_bodies  # the plan is shown, nothing sent
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
    _shot(page, "plan")
    page.get_by_role("button", name=re.compile(r"^Ask in \d+ calls$")).click()
    answer = page.get_by_test_id("stExpander").filter(has_text="How this was asked")
    expect(answer).to_be_visible()
    answer.get_by_text("How this was asked").click()
    expect(answer.get_by_text("composing")).to_be_visible()
    expect(page.get_by_test_id("stExpander").filter(has_text="verified").first).to_be_visible()
    field = page.get_by_test_id("stChatInputTextArea")
    expect(field).to_be_enabled()
    expect(field).to_have_attribute("placeholder", re.compile("Ask a follow-up"))
    assert len(fake.chat_bodies) >= 3


@pytest.fixture
def review_app(tmp_path):
    """The app over a library of three PDF judgments in the collection "Matter", against a fake
    Ollama run in this process that answers review calls from the judgments' facts."""
    from fake_ollama import FakeOllama
    from lib.library.store import Store
    from review_fixtures import ReviewModel, judgment_pdf

    data_dir = tmp_path / "data"
    store = Store(data_dir)
    shas = []
    for number in range(3):
        data = judgment_pdf(number)
        document, _new = store.add_document(ingest_bytes(data, f"case-{number}.pdf"), data)
        shas.append(document.sha256)
    store.create_collection("Matter")
    store.add_to_collection("Matter", shas)
    with FakeOllama(chunk_delay=0.01) as fake:
        fake.script(answer=ReviewModel())
        with _app(data_dir, fake.url) as url:
            for tab in _tab(url):
                tab.goto(url)
                yield tab, fake


def _choose(page: Page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option).click()


def test_review_a_small_table_open_a_cell_and_export_it(review_app, tmp_path):
    import io

    import openpyxl

    from review_fixtures import facts

    page, fake = review_app
    _go(page, "Review")
    expect(page.get_by_role("heading", name="A new table")).to_be_visible()
    _choose(page, "Collection", "Matter")
    _choose(page, "Start from", "Court judgments")
    page.get_by_role("button", name="Create the table and run it").click()
    # The table fills by itself (the page refreshes while its job runs), one call per document.
    expect(page.get_by_text("3 of 3 rows done", exact=False)).to_be_visible()
    assert len(fake.chat_bodies) == 3
    expect(page.get_by_text("3 rows.", exact=False)).to_be_visible()
    _shot(page, "review")

    # A click on a cell of the grid (a canvas) opens it: its quote in its passage, and the PDF page.
    grid = page.get_by_test_id("stDataFrame").first
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 260, box["y"] + 35 + 17)  # the first row's Court, right of the pinned Document
    panel = page.locator(".st-key-review-cell-panel")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("case-0.pdf · Court")
    expect(panel).to_contain_text(f"Quoted: “{facts(0)['Court'][1]}”")
    image = panel.locator("img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.naturalWidth") > 300
    panel.scroll_into_view_if_needed()
    _shot(page, "review-cell")

    # Export: the files are made on request, then each downloads; the workbook reopens typed.
    page.get_by_text("Export: Excel, CSV, Word").click()
    page.get_by_role("button", name="Make the files").click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Excel").click()
    saved = tmp_path / "table.xlsx"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "case-0pdf-and-2-more.xlsx"
    sheet = openpyxl.load_workbook(io.BytesIO(saved.read_bytes()))["Table"]
    header = [c.value for c in sheet[1]]
    first = dict(zip(header, next(sheet.iter_rows(min_row=2, values_only=True))))
    assert first["Court"] == facts(0)["Court"][0]
    assert first["Date of judgment"].date().isoformat() == facts(0)["Date of judgment"][0]

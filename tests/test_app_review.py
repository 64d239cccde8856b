"""The Review page with AppTest against the fake Ollama: define columns, run a table as a job
(cells arrive with their statuses), open a cell (its quote in its passage), edit it beside the
model's answer, check marks, filters, a failed cell retried alone, a column added later, pause and
resume, ask the table, and the exports reopened with the library that wrote them."""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

import openpyxl
import pytest
from streamlit.testing.v1 import AppTest

from lib.asking.review.job import table_jobs
from lib.asking.review.table import load_table
from lib.library.jobs import Jobs
from lib.library.reviews import ReviewStore
from lib.library.store import Store
from lib.reading.ingest import ingest_bytes

from fake_ollama import FakeOllama
from review_fixtures import ReviewModel, facts, judgment_text
from apptest_support import clean_caches, downloads  # noqa: F401 (fixtures)
from apptest_support import page_text as text

APP = str(Path(__file__).resolve().parent.parent / "app.py")
COLUMNS = [
    {"Title": "Court", "Question": "Which court decided the case?", "Type": "text", "Options": None},
    {"Title": "Date of judgment", "Question": "On what date was the judgment given?", "Type": "date", "Options": None},
    {"Title": "Outcome", "Question": "What was the outcome?", "Type": "options", "Options": "Allowed, Dismissed"},
    {"Title": "Limitation upheld?", "Question": "Was a limitation defence upheld?", "Type": "yesno", "Options": None},
    {"Title": "Damages", "Question": "What damages were awarded?", "Type": "number", "Options": None},
    {"Title": "Statutes", "Question": "Which statutes were interpreted?", "Type": "list", "Options": None},
]


@pytest.fixture
def fake(monkeypatch):
    with FakeOllama() as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        yield server


@pytest.fixture
def store():
    return Store(os.environ["FOLIO_DATA_DIR"])


@pytest.fixture
def matter(store):
    """Three judgments in the collection "Matter" (and one more document outside it)."""
    shas = []
    for number in range(4):
        data = judgment_text(number).encode()
        document, _new = store.add_document(ingest_bytes(data, f"case-{number}.txt"), data)
        shas.append(document.sha256)
    store.create_collection("Matter")
    store.add_to_collection("Matter", shas[:3])
    return shas[:3]


def review_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    return at.switch_page("pages/review.py").run()


def no_error(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def define_columns(at: AppTest, rows=COLUMNS) -> AppTest:
    editor = at.data_editor(key="review-columns-own")
    at.session_state[editor.key] = {"edited_rows": {}, "added_rows": list(rows), "deleted_rows": []}
    return at.run()


def create(at: AppTest, store, title: str = "Matter review") -> tuple[AppTest, int]:
    at.text_input(key="review-new-title").set_value(title)
    at.selectbox(key="review-collection").set_value(store.list_collections()[0].id).run()
    define_columns(at)
    no_error(at)
    at.button(key="review-create").click().run()
    no_error(at)
    [table] = ReviewStore(store).list()
    return at, table["id"]


def wait_for_run(store, table_id: int) -> None:
    for info in table_jobs(store, table_id):
        assert Jobs(store).wait(info.id, 60).state != "running"


def grid(at: AppTest):
    return [d.value for d in at.dataframe if "document" in getattr(d.value, "columns", [])][0]


def open_cell(at: AppTest, sha: str, key: str) -> AppTest:
    at.selectbox(key="review-open-row").set_value(sha)
    at.selectbox(key="review-open-column").set_value(key)
    return at.run()


def test_define_columns_run_open_a_cell_edit_it_and_export(fake, store, matter, downloads):
    model = ReviewModel()
    fake.script(answer=model)
    at = review_page()
    no_error(at)
    at, table_id = create(at, store)
    wait_for_run(store, table_id)
    at.run()
    no_error(at)
    assert sorted(model.calls) == ["case-0.txt", "case-1.txt", "case-2.txt"]  # the collection: one call each
    frame = grid(at)
    assert list(frame["document"]) == ["case-0.txt", "case-1.txt", "case-2.txt"]
    assert frame.loc[0, "c1"] == "✓ High Court" and frame.loc[1, "c3"] == "✓ Dismissed"
    assert frame.loc[0, "c2"] == f"✓ {facts(0)['Date of judgment'][0]}" and frame.loc[2, "c4"] == "✓ No"
    assert "3 of 3 rows done" in text(at) and "18 answered" in text(at)

    # A cell opened: its quote, highlighted in its passage.
    at = open_cell(at, matter[1], "c1")
    no_error(at)
    words = facts(1)["Court"][1]
    shown = text(at)
    assert f"Quoted: “{words}”" in shown
    assert f":orange-background[{words}]" in shown

    # An edit is kept beside the model's answer.
    where = f"{table_id}-{matter[1][:16]}-c1"
    at.text_input(key=f"review-edit-value-{where}").set_value("Court of Appeal (Civil Division)")
    at.text_input(key=f"review-edit-answer-{where}").set_value("Heard on appeal.")
    [b for b in at.get("form_submit_button") if b.label == "Save the edit"][0].click().run()
    no_error(at)
    shown = text(at)
    assert "Reviewer's edit" in shown and "Court of Appeal (Civil Division)" in shown
    assert "The model's answer" in shown and facts(1)["Court"][0] in shown
    cell = load_table(store, table_id).cell(matter[1], "c1")
    assert cell.value == facts(1)["Court"][0] and cell.edit["value"] == "Court of Appeal (Civil Division)"
    assert grid(at).loc[1, "c1"] == "✓✎ Court of Appeal (Civil Division)"

    # Export, and reopen the workbook with openpyxl: typed values and the citations sheet.
    at.button(key="review-export-make").click().run()
    no_error(at)
    workbook = openpyxl.load_workbook(io.BytesIO(downloads["Matter-review.xlsx"]))
    sheet = workbook["Table"]
    header = [c.value for c in sheet[1]]
    rows = {r[0]: dict(zip(header, r)) for r in sheet.iter_rows(min_row=2, values_only=True)}
    first = rows["case-0.txt"]
    assert isinstance(first["Date of judgment"], dt.datetime)
    assert first["Date of judgment"].date().isoformat() == facts(0)["Date of judgment"][0]
    assert first["Damages"] == 12_500 and first["Limitation upheld?"] is True
    assert rows["case-1.txt"]["Court"] == "Court of Appeal (Civil Division)"  # the reviewer's value, exported
    citations = list(workbook["Citations"].iter_rows(min_row=2, values_only=True))
    assert len(citations) == 18
    cited = [c for c in citations if c[0] == "case-1.txt" and c[1] == "Damages"][0]
    assert facts(1)["Damages"][1] in cited and "verified" in cited
    assert "Matter-review.csv" in downloads and "Matter-review.docx" in downloads


def test_cells_arrive_as_the_job_runs_and_pause_then_resume_asks_only_what_is_left(fake, store, matter):
    model = ReviewModel(block_at=2)  # the second document's call waits until released
    fake.script(answer=model)
    at = review_page()
    at, table_id = create(at, store)
    assert model.blocked.wait(30)
    at.run()
    no_error(at)
    assert "1 of 3 rows · " in text(at) and "reading case-" in text(at)
    frame = grid(at)
    done = [i for i in range(3) if frame.loc[i, "c1"].startswith("✓")]
    waiting = [i for i in range(3) if frame.loc[i, "c1"] == "… not asked yet"]
    assert len(done) == 1 and len(waiting) == 2
    at.button(key="review-pause").click()
    model.release.set()
    at.run()
    [info] = table_jobs(store, table_id)
    info = Jobs(store).wait(info.id, 60)
    assert info.state == "paused"
    at.run()
    assert "The run is paused" in text(at)
    paused = load_table(store, table_id)
    finished = {r.name for r in paused.rows if paused.row_done(r.sha256)}
    assert len(finished) >= 1
    model2 = ReviewModel()
    fake.script(answer=model2)
    at.button(key="review-resume").click().run()
    wait_for_run(store, table_id)
    at.run()
    no_error(at)
    assert sorted(model2.calls) == sorted({"case-0.txt", "case-1.txt", "case-2.txt"} - finished)
    assert all(v.startswith("✓") for v in grid(at)["c1"]) and "3 of 3 rows done" in text(at)


def test_a_failed_cell_says_why_and_is_retried_alone_and_a_new_column_asks_only_it(fake, store, matter):
    model = ReviewModel()
    fake.script(answer=model)
    fake.fail_next(503, "server busy").fail_next(503, "server busy")  # the first document, and its retry
    at = review_page()
    at, table_id = create(at, store)
    wait_for_run(store, table_id)
    at.run()
    frame = grid(at)
    failed = [i for i in range(3) if frame.loc[i, "c1"].startswith("✗ failed")]
    assert len(failed) == 1 and "busy" in frame.loc[failed[0], "c1"]
    sha = load_table(store, table_id).rows[failed[0]].sha256
    at = open_cell(at, sha, "c3")
    assert "busy" in text(at)
    asked = len(model.calls)
    at.button(key="review-retry-cell").click().run()
    wait_for_run(store, table_id)
    at.run()
    assert model.columns_asked[asked:] == [["Outcome"]]  # that cell alone
    assert load_table(store, table_id).cell(sha, "c3").status == "answered"
    assert load_table(store, table_id).cell(sha, "c1").status == "failed"  # the others wait for their own retry

    # A column added later: only it is asked, of every document.
    asked = len(model.calls)
    form = f"review-add-column-{table_id}"
    at.text_input(key=f"review-new-column-title-{table_id}").set_value("Judge")
    at.text_input(key=f"review-new-column-question-{table_id}").set_value("Who gave the judgment?")
    [b for b in at.get("form_submit_button") if b.form_id == form][0].click().run()
    no_error(at)
    wait_for_run(store, table_id)
    at.run()
    asked_now = model.columns_asked[asked:]
    assert sorted(map(tuple, asked_now)) == sorted([("Judge",), ("Judge",), ("Court", "Date of judgment", "Limitation upheld?",
                                                                              "Damages", "Statutes", "Judge")])
    assert "Judge" in [c.title for c in load_table(store, table_id).columns]


def test_filters_marks_and_needs_review(fake, store, matter):
    def liar(body, prompt):  # case-2's court quote is not in the document: that cell needs review
        reply = ReviewModel()(body, prompt)
        return reply.replace("the County Court sitting in London", "the County Court sitting in Leeds")

    fake.script(answer=liar)
    at = review_page()
    at, table_id = create(at, store)
    wait_for_run(store, table_id)
    at.run()
    assert grid(at).loc[2, "c1"] == "⚠ County Court"
    at.toggle(key=f"review-filter-review-{table_id}").set_value(True).run()
    assert list(grid(at)["document"]) == ["case-2.txt"]
    at.toggle(key=f"review-filter-review-{table_id}").set_value(False).run()
    at.selectbox(key=f"review-filter-column-{table_id}").set_value("c3").run()
    at.selectbox(key=f"review-filter-value-{table_id}-c3").set_value("Dismissed").run()
    assert list(grid(at)["document"]) == ["case-1.txt"]
    at.selectbox(key=f"review-filter-value-{table_id}-c3").set_value(None).run()
    at.selectbox(key=f"review-filter-column-{table_id}").set_value(None).run()

    sha = matter[2]
    at = open_cell(at, sha, "c1")
    assert "Needs review: no verified citation" in text(at)
    at.toggle(key=f"review-checked-{table_id}-{sha[:16]}-c1").set_value(True).run()
    no_error(at)
    assert grid(at).loc[2, "c1"] == "☑ County Court" and load_table(store, table_id).counts()["needs_review"] == 0
    at.toggle(key=f"review-row-checked-{table_id}-{sha[:16]}").set_value(True).run()
    assert list(grid(at)["document"])[2] == "☑ case-2.txt"
    assert load_table(store, table_id).rows[2].checked


def test_ask_the_table_cites_the_original_passages(fake, store, matter):
    fake.script(answer=ReviewModel())
    at = review_page()
    at, table_id = create(at, store)
    wait_for_run(store, table_id)
    words = facts(0)["Limitation upheld?"][1]

    def answer(body, prompt):
        from review_fixtures import passage_holding

        return f'Case 0: "{words}" [{passage_holding(prompt, words)}].'

    fake.script(answer=answer)
    at.run()
    at.text_area(key=f"review-question-{table_id}").set_value("Which judgments upheld the limitation defence?")
    [b for b in at.get("form_submit_button") if b.label == "Ask the table"][0].click().run()
    no_error(at)
    shown = text(at)
    assert "Case 0" in shown and "verified" in shown
    labels = [e.label.replace("\\", "") for e in at.expander]
    assert "[1] case-0.txt · verified" in labels


def test_a_command_line_run_killed_half_way_shows_as_interrupted_and_resumes_on_the_page(fake, store, matter,
                                                                                          tmp_path):
    """`python -m lib review --collection` killed (SIGKILL) on its 2nd document: the Review page shows the
    table with the run interrupted; Resume finishes it in the app without asking a finished row again."""
    import signal
    import subprocess
    import sys

    root = Path(APP).parent
    blocking = ReviewModel(block_at=2)
    fake.script(answer=blocking)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLIO_") and k != "OLLAMA_HOST"}
    env["FOLIO_DATA_DIR"] = os.environ["FOLIO_DATA_DIR"]
    child = subprocess.Popen([sys.executable, "-m", "lib", "review", "--collection", "Matter", "--host", fake.url,
                              "--column", "Court: Which court decided the case?",
                              "--column", "Damages: What damages were awarded?", "--type", "Damages=number"],
                             cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert blocking.blocked.wait(120), "the command line never reached its second document"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        blocking.release.set()
        if child.poll() is None:
            child.kill()
    first = blocking.calls[0]

    model = ReviewModel()
    fake.script(answer=model)
    at = AppTest.from_file(APP, default_timeout=60).run()  # the Library's jobs panel
    card = [m for m in at.markdown if "Review: case-0.txt and 2 more" in str(m.value).replace("\\", "")]
    assert card and "interrupted" in str(card[0].value)
    assert "1 of 3 documents done" in text(at)
    [job] = Jobs(store).list(kind="review")
    at.button(key=f"job-open-{job.id}").click().run()  # "Open the table": the Review page, that table
    no_error(at)
    assert "The run was interrupted (Folio stopped while it ran): 2 of its rows still have cells to ask" in text(at)
    assert "1 of 3 rows done" in text(at)
    at.button(key="review-resume").click().run()
    [table] = ReviewStore(store).list()
    wait_for_run(store, table["id"])
    at.run()
    no_error(at)
    assert len(model.calls) == 2 and first not in model.calls
    assert "3 of 3 rows done" in text(at) and [v[0] for v in grid(at)["c2"]] == ["✓", "✓", "✓"]

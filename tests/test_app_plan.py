"""The Ask page when the chosen documents do not fit one call (AppTest, 300 generated judgments):
the plan of the question shown before anything is sent, both modes with their numbers, the plan
run as a job against the fake Ollama with a small context, its progress and evidence as they
arrive, cancel and compose, the answer with its plan on the page, in History and in an export.

Every test works on its own copy of the session's 300-document library (tests/conftest.py).
The fake holds one chosen reading call with a gate (threading.Events), never with sleeps.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.asking.several_calls import plan_question
from lib.config import load_settings
from lib.library.jobs import Jobs
from lib.library.store import Store
from lib.output.plan_job import ranker_for

from fake_ollama import FakeOllama
from plan_fixtures import reader_of
from apptest_support import clean_caches, downloads  # noqa: F401 (fixtures)
from apptest_support import page_text

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
QUESTION = "Was the limitation defence upheld?"
CONTEXT = 4000
READER = reader_of("limitation")


def text(at: AppTest) -> str:
    """The page's text, metrics included (the plan's numbers are metrics)."""
    return page_text(at, metrics=True)


class Gate:
    """Hold reading call number `at` (in the order the fake receives them) until released."""

    def __init__(self, at: int):
        self.at, self.seen = at, 0
        self.reached, self.release = threading.Event(), threading.Event()
        self.lock = threading.Lock()

    def __call__(self, body: dict, prompt: str) -> str:
        if "read one portion of them" in body["messages"][0]["content"]:
            with self.lock:
                self.seen += 1
                mine = self.seen
            if mine == self.at:
                self.reached.set()
                self.release.wait(60)
        return READER(body, prompt)


@pytest.fixture
def ollama():
    with FakeOllama() as server:
        server.script(answer=READER)
        yield server


@pytest.fixture
def library(library_300, tmp_path, monkeypatch, ollama) -> Store:
    """A copy of the 300-document library as FOLIO_DATA_DIR; the fake Ollama with a small context."""
    copy = tmp_path / "library"
    shutil.copytree(library_300.data_dir, copy)
    monkeypatch.setenv("FOLIO_DATA_DIR", str(copy))
    monkeypatch.setenv("OLLAMA_HOST", ollama.url)
    monkeypatch.setenv("FOLIO_CONTEXT", str(CONTEXT))
    monkeypatch.setenv("FOLIO_ANSWER_RESERVE", "300")
    return Store(copy)


def ask_page() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).switch_page("pages/ask.py").run()


def no_error(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click()
    return at.run()


def choose(at: AppTest, library: Store, collection: str) -> AppTest:
    [box] = [s for s in at.selectbox if s.label == "Read a whole collection"]
    box.set_value(library.get_collection(collection).id)
    return at.run()


def expected_plan(library: Store, collection: str, mode: str = "auto"):
    shas = library.collection_shas(collection)
    plan, _b, _i = plan_question(library.get_documents(shas), QUESTION, load_settings(), mode=mode,
                                 ranker=ranker_for(library))
    return plan


def reading_bodies(fake) -> list[dict]:
    return [b for b in fake.chat_bodies if "read one portion of them" in b["messages"][0]["content"]]


def test_a_collection_too_large_for_one_call_shows_the_plan_of_the_question_before_sending(library, ollama,
                                                                                            monkeypatch):
    loaded = []
    real = Store.get_documents
    monkeypatch.setattr(Store, "get_documents", lambda self, shas: loaded.append(len(shas)) or real(self, shas))
    at = choose(ask_page(), library, "Limitation")
    no_error(at)
    count = library.get_collection("Limitation").documents
    assert f"The {count} chosen documents hold" in text(at) and "Ask your question" in text(at)
    assert not at.chat_input(key="question").proto.disabled
    assert loaded == []  # nothing loaded before a question

    at.chat_input(key="question").set_value(QUESTION)
    at.run()
    no_error(at)
    assert loaded == [count]  # loaded once, to plan
    plan = expected_plan(library, "Limitation")  # (loads them too, in the test)
    planned_loads = len(loaded)
    every = plan.alternatives["all"]
    assert "Nothing has been sent yet." in text(at)
    [radio] = [r for r in at.radio if r.label == "How to ask"]
    assert radio.value == "all" and list(radio.options)[:2] == [  # read everything first, with its numbers
        f"Read everything: {len(every.calls) + 1} calls, {every.prompt_tokens:,} tokens to read, time unknown",
        radio.options[1]]
    assert "Most relevant first: 1 call" in radio.options[1]
    assert f"Calls {len(every.calls) + 1}" in text(at) and f"Tokens to read {every.prompt_tokens:,}" in text(at)
    calls = [d.value for d in at.dataframe if "Reads" in d.value.columns][0]
    assert list(calls["Tokens"]) == [c.prompt_tokens for c in every.calls]  # exact, per call
    assert ollama.chat_bodies == []  # nothing sent

    radio.set_value("relevant")
    at.run()
    no_error(at)
    relevant = plan.alternatives["relevant"]
    ranks = [d.value for d in at.dataframe if "Rank" in d.value.columns][0]
    read = [d for d in relevant.documents if d.read]
    assert list(ranks["Rank"])[: len(read)] == [d.rank for d in read]
    assert f"Reads the {len(read)} best-ranked of {count} documents" in text(at)
    assert "not read" in " ".join(ranks["Read"])
    assert len(loaded) == planned_loads  # a change of mode plans nothing again, loads nothing again

    at = click(at, "plan-back")  # take the question back: nothing sent, the question in the box again
    assert at.chat_input(key="question").proto.value == QUESTION and at.session_state["chat"]["plan"] is None
    assert ollama.chat_bodies == [] and Jobs(library).list() == []


def test_documents_split_into_parts_are_named_once_under_the_calls(tmp_path, ollama, monkeypatch):
    from lib.reading.ingest import ingest_bytes
    from plan_fixtures import paragraph

    store = Store(tmp_path / "data")
    chapters = [f"## Chapter {c}\n\n" + "\n\n".join(paragraph(c, k) for k in range(1, 9)) for c in range(1, 7)]
    data = "\n\n".join(chapters).encode("utf-8")
    book = ingest_bytes(data, "book.md")
    store.add_document(book, data)
    store.create_collection("Book")
    store.add_to_collection("Book", [book.sha256])
    monkeypatch.setenv("FOLIO_DATA_DIR", str(store.data_dir))
    monkeypatch.setenv("OLLAMA_HOST", ollama.url)
    monkeypatch.setenv("FOLIO_CONTEXT", str(CONTEXT))  # the book is longer: it is read in parts
    monkeypatch.setenv("FOLIO_ANSWER_RESERVE", "300")
    at = choose(ask_page(), store, "Book")
    at.chat_input(key="question").set_value(QUESTION)
    at.run()
    no_error(at)
    assert "Nothing has been sent yet." in text(at)
    page = text(at)
    assert page.count("Split into parts") == 1  # said once, under the calls
    assert f"Split into parts at their chapters, sections and paragraphs: {book.name} (2 parts)" in page
    assert ollama.chat_bodies == []


def test_a_plan_runs_as_a_job_with_progress_cancel_and_an_answer_composed_from_the_evidence(library, ollama,
                                                                                            downloads):
    gate = Gate(at=3)
    ollama.script(answer=gate)
    at = choose(ask_page(), library, "Limitation")
    at.chat_input(key="question").set_value(QUESTION)
    at.run()
    plan = expected_plan(library, "Limitation", mode="all")
    try:
        at = click(at, "plan-run")
        no_error(at)
        assert gate.reached.wait(60)
        [info] = Jobs(library).list()
        assert info.kind == "plan" and info.params["plan_key"] == plan.key
        assert ollama.wait_for(lambda: Jobs(library).get(info.id).done == 2, timeout=30)
        at.run()
        no_error(at)
        page = text(at)
        assert f"Asked by a plan of {len(plan.calls) + 1} calls: 2 done" in page
        assert f"Reading call 3 of {len(plan.calls)}: " in page and "tokens read" in page and "elapsed" in page
        assert "Evidence found so far:" in " ".join(e.label for e in at.expander)
        assert at.chat_input(key="question").proto.disabled  # one question at a time
        # the sidebar of any page shows the running plan
        other = AppTest.from_file(APP, default_timeout=60).run()
        assert any("Read everything" in p.proto.text for p in other.sidebar.get("progress"))

        at = click(at, f"plan-cancel-{info.id}")
        stopped = Jobs(library).wait(info.id, timeout=60)
    finally:
        gate.release.set()
    assert stopped.state == "cancelled" and stopped.done == 2
    at.run()
    no_error(at)
    assert f"Stopped by you, after 2 of {len(plan.calls)} reading calls" in text(at)

    at = click(at, f"plan-compose-{info.id}")
    assert Jobs(library).wait(info.id, timeout=60).state == "done"
    at.run()
    no_error(at)
    turns = at.session_state["chat"]["turns"]
    assert len(turns) == 1 and turns[0]["mode"] == "all" and at.session_state["chat"]["plan_job"] is None
    assert turns[0]["citations"] and all(c["status"] == "verified" for c in turns[0]["citations"])
    page = text(at)
    assert "was not read" in page  # the parts not read are named
    assert len(reading_bodies(ollama)) == 3
    labels = " ".join(e.label for e in at.expander)
    assert f"How this was asked: {len(turns[0]['calls'])} calls (read everything)" in labels
    markdown = downloads[[n for n in downloads if n.endswith(".md") and n.startswith("Was-the")][0]].decode("utf-8")
    assert "### How it was asked" in markdown and "| 1 | reading |" in markdown

    history = AppTest.from_file(APP, default_timeout=60).switch_page("pages/history.py").run()
    history.button(key=f"open-{at.session_state['chat']['id']}").click()
    history.run()
    no_error(history)
    assert "How this was asked" in " ".join(e.label for e in history.expander)
    tables = [d.value for d in history.dataframe if "Tokens sent" in d.value.columns]
    assert tables and list(tables[0]["Tokens sent"]) == [c["prompt_tokens"] for c in turns[0]["calls"]]


def test_a_plan_job_whose_process_was_killed_resumes_from_the_app_without_sending_a_finished_call_again(
        library, ollama):
    import os
    import signal
    import subprocess
    import sys

    from lib.output.plan_job import create_plan_job

    gate = Gate(at=3)
    ollama.script(answer=gate)
    plan = expected_plan(library, "Limitation", mode="all")
    shas = library.collection_shas("Limitation")
    job_id = create_plan_job(library, plan, load_settings(), shas=shas)
    child = subprocess.Popen([sys.executable, "-m", "lib", "jobs", "resume", str(job_id)], cwd=ROOT,
                             env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert gate.reached.wait(60), "the child never reached its third call"
        assert ollama.wait_for(lambda: Jobs(library).get(job_id).done == 2, timeout=30)
    finally:
        child.send_signal(signal.SIGKILL)  # the app (or the machine) died half-way
        child.wait(30)
        gate.release.set()
    sent_before = len(reading_bodies(ollama))
    assert sent_before == 3

    library_page = AppTest.from_file(APP, default_timeout=60).run()
    no_error(library_page)
    assert "interrupted: Folio stopped while it ran" in text(library_page)
    assert f"2 of {len(plan.calls)} reading calls done; the evidence found is kept" in text(library_page)
    at = click(library_page, f"job-open-{job_id}")  # opens the Ask page on this job
    no_error(at)
    assert at.session_state["selected"] == shas
    assert f"Interrupted: Folio stopped while it ran (the app was closed or restarted), after 2 of {len(plan.calls)}" \
        in text(at)
    at = click(at, f"plan-resume-{job_id}")
    assert Jobs(library).wait(job_id, timeout=60).state == "done"
    at.run()
    no_error(at)
    [turn] = at.session_state["chat"]["turns"]
    assert turn["citations"] and not turn["unread"]
    later = reading_bodies(ollama)[sent_before:]
    assert len(later) == len(plan.calls) - 2  # the third again (cut off), then the rest: none finished sent twice
    sent = "".join(m["content"] for b in later for m in b["messages"])
    assert all(f"[{c.pieces[0].passages[0].id}]" not in sent for c in plan.calls[:2])


def test_a_follow_up_on_a_planned_answer_is_planned_the_same_way_and_says_so(library, ollama):
    at = choose(ask_page(), library, "Limitation")
    at.chat_input(key="question").set_value(QUESTION)
    at.run()
    [radio] = [r for r in at.radio if r.label == "How to ask"]
    radio.set_value("relevant")
    at.run()
    at = click(at, "plan-run")
    [info] = Jobs(library).list()
    assert Jobs(library).wait(info.id, timeout=60).state == "done"
    at.run()
    no_error(at)
    assert len(at.session_state["chat"]["turns"]) == 1
    assert "Ask a follow-up" in at.chat_input(key="question").proto.placeholder

    at.chat_input(key="question").set_value("Who filed the claim late?")
    at.run()
    no_error(at)
    [radio] = [r for r in at.radio if r.label == "How to ask"]
    assert radio.value == "relevant"  # chosen like the previous answer
    assert "A follow-up ranks the documents again for this question" in text(at)
    at = click(at, "plan-run")
    second = Jobs(library).list()[0]
    assert Jobs(library).wait(second.id, timeout=60).state == "done"
    at.run()
    no_error(at)
    turns = at.session_state["chat"]["turns"]
    assert [t["question"] for t in turns] == [QUESTION, "Who filed the claim late?"]
    assert second.params["history"][0][0] == QUESTION  # the earlier question and answer went with it
    assert len(library.list_conversations()) == 1  # one conversation
    assert any(QUESTION in m["content"] for m in ollama.chat_bodies[-1]["messages"])

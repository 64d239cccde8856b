"""The app at library scale (AppTest): 300 generated judgments, paged and filtered lists, collections,
choosing a whole collection on the Ask page, and folders and uploads read as jobs.

Every test works on its own copy of the session's 300-document library (tests/conftest.py,
library_300), so it may change it. Jobs run in the app's background thread; tests hold a job
at a chosen file with a gate (threading.Events), never with sleeps.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lib.asking.budget import compute_budget
from lib.config import load_settings
from lib.library import ingestion
from lib.library.jobs import Jobs
from lib.library.store import Store

import library_fixtures
from library_fixtures import topic_of
from apptest_support import clean_caches  # noqa: F401 (fixtures)
from apptest_support import page_text as text

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGE_SIZE = 50


@pytest.fixture
def library(library_300, tmp_path, monkeypatch, server_down) -> Store:
    """A copy of the 300-document library, as FOLIO_DATA_DIR."""
    copy = tmp_path / "library"
    shutil.copytree(library_300.data_dir, copy)
    monkeypatch.setenv("FOLIO_DATA_DIR", str(copy))
    return Store(copy)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server_down(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{_free_port()}")


@pytest.fixture
def gate(monkeypatch):
    """Hold the app's ingest job inside the file it reads at `gate.at` (1-based) until released; count reads."""

    class Gate:
        at = 4
        reached = threading.Event()
        release = threading.Event()
        names: list[str] = []

    real = ingestion.ingest_bytes

    def ingest_bytes(data, name, **kwargs):
        Gate.names.append(name)
        if len(Gate.names) == Gate.at:
            Gate.reached.set()
            assert Gate.release.wait(60), "the test never released the job"
        return real(data, name, **kwargs)

    monkeypatch.setattr(ingestion, "ingest_bytes", ingest_bytes)
    yield Gate
    Gate.release.set()


def start_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


def opened_at(page: str) -> AppTest:
    """A new browser session whose first page is `page` (AppTest keeps the sidebar of a first run only)."""
    return AppTest.from_file(APP, default_timeout=60).switch_page(f"pages/{page}.py").run()


def goto(at: AppTest, page: str) -> AppTest:
    return at.switch_page(f"pages/{page}.py").run()


def no_error(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def table(at: AppTest):
    """The document list's data editor (the first one on the page)."""
    return at.data_editor[0]


def tick(at: AppTest, rows: list[int], column: str = "✓", on: bool = True) -> AppTest:
    editor = table(at)
    at.session_state[editor.key] = {"edited_rows": {r: {column: on} for r in rows}, "added_rows": [], "deleted_rows": []}
    return at.run()


def button(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click()
    return at.run()


def submit(at: AppTest, label: str) -> AppTest:
    [b for b in at.get("form_submit_button") if b.label == label][0].click()
    return at.run()


def selectbox(at: AppTest, label: str):
    return [s for s in at.selectbox if s.label == label][0]


def assert_no_widget_lists_the_library(at: AppTest) -> None:
    """No selectbox, multiselect or table offers more than one page of documents."""
    for widget in list(at.selectbox) + list(at.multiselect):
        assert len(widget.options) <= PAGE_SIZE + 1, (widget.label, len(widget.options))
    for frame in at.dataframe:
        assert len(frame.value) <= PAGE_SIZE, len(frame.value)


def names_of(at: AppTest) -> list[str]:
    return list(table(at).value["Document"])


# --- the Library page ---------------------------------------------------------------------


def test_the_library_lists_300_documents_a_page_at_a_time_and_filters_them(library):
    at = start_app()
    no_error(at)
    assert len(table(at).value) == PAGE_SIZE
    assert "300 documents" in text(at) and "1-50 shown" in text(at)
    assert_no_widget_lists_the_library(at)
    assert len(at.selectbox(key="library-open").options) == PAGE_SIZE  # open one of this page, not of 300

    selectbox(at, "Sort").set_value("name")
    at.run()
    first = names_of(at)
    assert first == sorted(first, key=str.casefold) and first[0].startswith("0000 ")
    [pager] = at.pagination
    assert pager.num_pages == 6
    pager.set_value(2)
    at.run()
    second = names_of(at)
    assert second[0].startswith("0050 ") and not set(first) & set(second)
    assert "51-100 shown" in text(at)

    at.text_input(key="lib-name").set_value("limitation")
    at.run()
    limitation = [d for d, _ in library_fixtures.documents(300) if topic_of(d.name) == "limitation"]
    assert sorted(names_of(at)) == sorted(d.name for d in limitation)  # back to page 1 of the filtered list
    assert f"{len(limitation)} of 300 documents match" in text(at)
    assert f"{sum(d.tokens for d in limitation):,} tokens" in text(at)

    at.text_input(key="lib-name").set_value("")
    chinese = library.get_collection("Chinese")
    selectbox(at, "Collection").set_value(chinese.id)
    at.run()
    assert len(names_of(at)) == chinese.documents == 30
    assert set(table(at).value["Format"]) == {"MARKDOWN"}
    selectbox(at, "Collection").set_value(None)
    at.multiselect(key="lib-formats").set_value(["markdown"])
    at.run()
    assert len(names_of(at)) == 30 and "30 of 300 documents match" in text(at)
    no_error(at)


def test_collections_are_created_renamed_filled_emptied_and_deleted_keeping_their_documents(library):
    at = start_app()
    at.text_input(key="collection-new-name").set_value("Smith v Jones")
    submit(at, "Create")
    no_error(at)
    assert "Created the collection Smith v Jones." in text(at)
    smith = library.get_collection("Smith v Jones")
    assert smith.documents == 0
    at.text_input(key="collection-new-name").set_value("  smith V JONES ")
    submit(at, "Create")
    assert "already exists" in text(at)

    # Ticks on two pages, then add them all at once.
    page_one = names_of(at)
    tick(at, [0, 1, 2])
    at.pagination[0].set_value(2)
    at.run()
    page_two = names_of(at)
    tick(at, [5, 6])
    no_error(at)
    assert at.session_state["ticked"] and len(at.session_state["ticked"]) == 5
    assert list(table(at).value["✓"])[5:7] == [True, True]  # the table shows the ticks it holds
    assert at.segmented_control(key="lib-scope").options[0].startswith("5 ticked")
    selectbox(at, "Collection to add them to").set_value("Smith v Jones")
    at.run()
    button(at, "lib-add")
    no_error(at)
    members = {d.name for d in library.list_documents_page(collection="Smith v Jones").documents}
    assert members == set(page_one[:3]) | set(page_two[5:7])
    assert "Added 5 documents to Smith v Jones." in text(at) and at.session_state["ticked"] == []

    # The list of one collection: take one out; it stays in the library.
    selectbox(at, "Collection").set_value(smith.id)
    at.run()
    assert sorted(names_of(at)) == sorted(members)
    gone = names_of(at)[0]
    tick(at, [0])
    button(at, "lib-remove")
    assert "Took 1 document out of Smith v Jones" in text(at)
    assert library.get_collection(smith.id).documents == 4
    assert library.list_documents_page(name=gone).total == 1

    # Every document the filter matches, into a new collection typed in place.
    selectbox(at, "Collection").set_value(None)
    at.text_input(key="lib-name").set_value("negligence")
    at.run()
    at.segmented_control(key="lib-scope").set_value("all")
    selectbox(at, "Collection to add them to").set_value("__new__")
    at.run()
    at.text_input(key="lib-add-target-new").set_value("Negligence cases")
    at.run()
    button(at, "lib-add")
    negligence = [d for d, _ in library_fixtures.documents(300) if topic_of(d.name) == "negligence"]
    assert library.get_collection("Negligence cases").documents == len(negligence) > PAGE_SIZE // 2

    # Rename, then delete: the documents stay.
    selectbox(at, "Manage a collection").set_value(smith.id)
    at.run()
    at.text_input(key=f"collection-rename-name-{smith.id}").set_value("Smith (appeal)")
    submit(at, "Rename")
    assert library.get_collection(smith.id).name == "Smith (appeal)"
    assert "Renamed Smith v Jones to Smith (appeal)." in text(at)
    button(at, f"collection-delete-{smith.id}")
    assert "4 documents stay in the library" in text(at)
    button(at, f"collection-really-{smith.id}")
    no_error(at)
    assert [c.name for c in library.list_collections()] == ["Chinese", "Limitation", "Negligence cases"]
    assert library.list_documents_page().total == 300
    assert_no_widget_lists_the_library(at)


def test_one_document_joins_and_leaves_collections_from_its_panel(library):
    at = start_app()
    sha = at.selectbox(key="library-open").value
    at.multiselect(key=f"doc-collections-{sha}").set_value(["Chinese", "Limitation"])
    at.run()
    no_error(at)
    assert library.collections_of(sha) == ["Chinese", "Limitation"]
    at.multiselect(key=f"doc-collections-{sha}").set_value(["Limitation"])
    at.run()
    assert library.collections_of(sha) == ["Limitation"]
    assert "Limitation" in str(table(at).value["Collections"].iloc[0])


# --- the Ask page -----------------------------------------------------------------------------


def test_the_ask_page_chooses_a_whole_collection_in_one_step_and_budgets_its_documents(library):
    at = goto(start_app(), "ask")
    no_error(at)
    assert_no_widget_lists_the_library(at)
    limitation = library.get_collection("Limitation")
    selectbox(at, "Read a whole collection").set_value(limitation.id)
    at.run()
    no_error(at)
    shas = library.collection_shas("Limitation")
    assert at.session_state["selected"] == shas
    assert f"{limitation.documents} documents chosen" in text(at) and "the collection Limitation" in text(at)
    budget_table = [d.value for d in at.dataframe if "Part" in d.value.columns][0]
    expected = compute_budget(library.get_documents(shas), load_settings(), think=False, context=131072)
    numbers = dict(zip(budget_table["Part"], budget_table["Tokens"]))
    assert numbers["Left"] == expected.left
    assert sum(expected.documents.values()) > sum(library.get_documents(shas)[i].tokens for i in range(len(shas)))
    assert f"{expected.left:,} left" in text(at)
    assert_no_widget_lists_the_library(at)

    # Review the chosen ones, and leave one out: a different choice.
    at.toggle(key="ask-only-chosen").set_value(True)
    at.run()
    assert sorted(names_of(at)) == sorted(d.name for d in library.get_documents(shas))
    left_out = names_of(at)[0]
    tick(at, [0], column="Read", on=False)
    no_error(at)
    assert len(at.session_state["selected"]) == len(shas) - 1
    assert left_out not in {d.name for d in library.document_summaries(at.session_state["selected"])}
    assert "the collection Limitation" not in text(at)


def test_changing_the_documents_starts_a_new_conversation(library_300, tmp_path, monkeypatch):
    from fake_ollama import FakeOllama

    copy = tmp_path / "library"
    shutil.copytree(library_300.data_dir, copy)
    monkeypatch.setenv("FOLIO_DATA_DIR", str(copy))
    store = Store(copy)
    with FakeOllama() as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        at = goto(start_app(), "ask")
        selectbox(at, "Read a whole collection").set_value(store.get_collection("Chinese").id)
        at.run()
        at.chat_input(key="question").set_value("合同解除后违约金如何计算？")
        at.run()
        no_error(at)
        assert len(at.session_state["chat"]["turns"]) == 1
        assert len(server.last_chat["messages"][1]["content"]) > 1000  # the 30 documents were sent
        at.text_input(key="ask-name").set_value("0042")
        at.run()
        tick(at, [0], column="Read")
        no_error(at)
        assert at.session_state["chat"]["turns"] == []  # a new conversation
        assert len(at.session_state["selected"]) == 31


def test_a_choice_larger_than_the_context_is_said_at_once_without_loading_it(library, monkeypatch):
    monkeypatch.setenv("FOLIO_CONTEXT", "8000")
    loaded = []
    real = Store.get_documents
    monkeypatch.setattr(Store, "get_documents", lambda self, shas: loaded.append(len(shas)) or real(self, shas))
    at = goto(start_app(), "ask")
    at.text_input(key="ask-name").set_value("lease")
    at.run()
    button(at, "ask-all")
    no_error(at)
    lease = [d for d, _ in library_fixtures.documents(300) if topic_of(d.name) == "lease"]
    assert len(at.session_state["selected"]) == len(lease)
    notice = " ".join(e.value for e in at.info).replace("\\", "")
    assert f"The {len(lease)} chosen documents hold {sum(d.tokens for d in lease):,} tokens" in notice
    assert "times the whole context (8,000 tokens" in notice
    assert not [d for d in at.dataframe if "Part" in d.value.columns]  # no budget table of 50 rows
    assert loaded == []  # nothing was loaded to find out
    # a question is planned first (tests/test_app_plan.py): the box is open, and says so
    assert "do not fit one call" in at.chat_input(key="question").proto.placeholder


# --- jobs --------------------------------------------------------------------------------------


def _folder(tmp_path: Path, count: int, name: str = "matter") -> Path:
    folder = tmp_path / name
    (folder / "sub").mkdir(parents=True)
    for number, (file_name, data) in enumerate(library_fixtures.judgments(count, seed=5)):
        (folder / ("sub" if number % 2 else "") / file_name).write_bytes(data)
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)  # skipped: not a document
    return folder


def _job(store: Store):
    [info] = Jobs(store).list()
    return info


def test_a_folder_is_read_as_a_job_with_progress_cancel_and_resume(library, tmp_path, gate):
    folder = _folder(tmp_path, 10)
    at = start_app()
    selectbox(at, "Add to collection").set_value("__new__")
    at.run()
    at.text_input(key="upload-collection-new").set_value("Folder matter")
    at.text_input(key="folder-path").set_value(str(folder))
    submit(at, "Read it")
    no_error(at)
    assert gate.reached.wait(60)  # the job is inside its 4th file; the page did not wait for it

    at.run()
    info = _job(library)
    assert info.state == "running" and info.done == 3 and info.total == 11  # 10 files and a picture
    shown = text(at)
    assert "3 of 11 files" in shown
    assert info.current.startswith(str(folder)) and "matter/" + info.current[len(str(folder)) + 1:] in shown
    assert str(tmp_path) not in shown  # the file being read, under its folder's name, not the whole path
    assert "left" in shown  # an estimate (or "estimating the time left")
    elsewhere = opened_at("history")  # another page, another browser session (a reload): still there
    assert any("3 of 11" in p.proto.text for p in elsewhere.sidebar.get("progress")), "every page's sidebar shows it"

    button(at, f"job-cancel-{info.id}")
    assert "stopping at the next file" in text(at)
    gate.release.set()
    assert Jobs(library).wait(info.id, timeout=60).state == "cancelled"
    at.run()
    assert "cancelled: what was read is kept" in text(at)
    assert len(gate.names) == 4

    button(at, f"job-resume-{info.id}")
    assert Jobs(library).wait(info.id, timeout=60).state == "done"
    at.run()
    no_error(at)
    assert "10 added, 0 already in the library, 1 skipped (not documents), in the collection Folder matter" in text(at)
    assert len(gate.names) == 10  # every file read once, none twice
    assert library.get_collection("Folder matter").documents == 10
    assert library.list_documents_page().total == 310
    assert "310 documents" in text(at)  # the page refreshed when the job ended


def test_a_path_that_cannot_be_read_is_refused_with_the_reason(library, tmp_path):
    at = start_app()
    for typed, said in (("", "Type the path of a folder"), ("matters/smith", "give the whole path"),
                        (str(tmp_path / "nowhere"), "there is no such folder or file on this computer")):
        at.text_input(key="folder-path").set_value(typed)
        submit(at, "Read it")
        no_error(at)
        assert said in text(at), (typed, text(at))
    assert Jobs(library).list() == []


def test_a_job_whose_process_was_killed_shows_as_interrupted_and_resumes_from_the_app(library, tmp_path, gate):
    folder = _folder(tmp_path, 8)
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "blocking_ingest.py"), str(library.data_dir), str(folder), "Killed", "3"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    try:
        assert child.stdout.readline().startswith("job ")
        assert child.stdout.readline().startswith("blocked ")  # inside its 3rd file
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    stored_before = library.list_documents_page().total - 300
    assert stored_before == 2

    at = start_app()
    no_error(at)
    info = _job(library)
    assert info.state == "interrupted"
    assert "interrupted: Folio stopped while it ran" in text(at)
    assert "1 job stopped before the end" in " ".join(w.value for w in opened_at("ask").sidebar.warning)
    gate.at = 0  # never hold this one
    button(at, f"job-resume-{info.id}")
    assert Jobs(library).wait(info.id, timeout=60).state == "done"
    at.run()
    no_error(at)
    assert len(gate.names) == 8 - stored_before  # the two stored before the kill were not read again
    assert library.get_collection("Killed").documents == 8
    assert "8 added" in text(at)


def test_many_dropped_files_are_staged_and_read_by_a_job_that_a_restart_resumes(library, gate):
    files = library_fixtures.judgments(7, seed=9)
    at = start_app()
    selectbox(at, "Add to collection").set_value("Limitation")
    at.run()
    at.file_uploader[0].set_value([(name, data, "text/plain") for name, data in files])
    at.run()
    no_error(at)
    assert "7 files: read by a job" in text(at)
    assert gate.reached.wait(60)
    info = _job(library)
    staged = Path(info.params["staging"])
    assert staged.parent == library.data_dir / "staging" and len(list(staged.iterdir())) == 7
    button(at, f"job-cancel-{info.id}")
    gate.release.set()
    assert Jobs(library).wait(info.id, timeout=60).state == "cancelled"

    st.cache_resource.clear()  # the app restarts: the staged files are still there to resume from
    again = start_app()
    assert staged.is_dir()
    button(again, f"job-resume-{info.id}")
    assert Jobs(library).wait(info.id, timeout=60).state == "done"
    again.run()
    no_error(again)
    assert "7 added" in text(again) and "in the collection Limitation" in text(again)
    assert len(gate.names) == 7
    assert not staged.exists()  # cleaned up once done
    limitation = {d.name for d in library.list_documents_page(collection="Limitation", limit=1000).documents}
    assert {name for name, _ in files} <= limitation

"""`python -m lib review` as a user or a script runs it, against the fake Ollama."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from lib.library.reviews import ReviewStore
from lib.library.store import Store

from fake_ollama import FakeOllama
from review_fixtures import ReviewModel, facts, judgment_text

ROOT = Path(__file__).resolve().parent.parent
COLUMN_ARGS = [
    "--column", "Court: Which court decided the case?",
    "--column", "Date of judgment: On what date was the judgment given?",
    "--column", "Damages: What damages were awarded?",
    "--type", "Date of judgment=date", "--type", "Damages=number",
]


@pytest.fixture
def fake():
    with FakeOllama() as server:
        yield server


def judgments(tmp_path, count: int, paragraphs: int = 4) -> list[str]:
    paths = []
    for number in range(count):
        path = tmp_path / f"case-{number}.txt"
        path.write_text(judgment_text(number, paragraphs), encoding="utf-8")
        paths.append(str(path))
    return paths


def cli_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLIO_") and k != "OLLAMA_HOST"}
    env["FOLIO_DATA_DIR"] = os.environ["FOLIO_DATA_DIR"]
    return env


def run_cli(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lib", "review", *args], cwd=ROOT, env=cli_env() | env,
                          capture_output=True, text=True, timeout=timeout)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_json_table_typed_cited_and_exported(fake, tmp_path):
    fake.script(answer=ReviewModel())
    files = judgments(tmp_path, 3)
    xlsx = tmp_path / "table.xlsx"
    done = run_cli(*files, *COLUMN_ARGS, "--host", fake.url, "--json", "--xlsx", str(xlsx), "--csv",
                   str(tmp_path / "table.csv"))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [c["title"] for c in data["columns"]] == ["Court", "Date of judgment", "Damages"]
    assert [c["type"] for c in data["columns"]] == ["text", "date", "number"]
    assert len(data["rows"]) == 3 and len(data["calls"]) == 3 and len(fake.chat_bodies) == 3
    row = next(r for r in data["rows"] if r["document"] == "case-2.txt")
    court, date, damages = row["cells"]
    assert {"column", "value", "answer", "status", "citations"} <= set(court)
    assert court["status"] == "answered" and court["value"] == facts(2)["Court"][0]
    assert date["value"] == facts(2)["Date of judgment"][0]
    assert damages["value"] == 37_500 and damages["unit"] == "EUR"
    [citation] = damages["citations"]
    assert set(citation) >= {"id", "page", "quote", "status"} and citation["status"] == "verified"
    call = data["calls"][0]
    assert call["prompt_tokens"] == call["server_prompt_tokens"] and call["constrained"] is True
    book = openpyxl.load_workbook(io.BytesIO(xlsx.read_bytes()))
    assert book["Table"].max_row == 4 and book["Citations"].max_row == 10
    assert (tmp_path / "table.csv").exists()


def test_rerun_resumes_the_stored_table_and_asks_only_a_new_column(fake, tmp_path):
    model = ReviewModel()
    fake.script(answer=model)
    files = judgments(tmp_path, 2)
    first = run_cli(*files, *COLUMN_ARGS, "--host", fake.url, "--json")
    assert first.returncode == 0, first.stderr
    again = run_cli(*files, *COLUMN_ARGS, "--host", fake.url, "--json")
    data = json.loads(again.stdout)
    assert data["resumed"] is True and data["calls"] == [] and len(model.calls) == 2
    more = run_cli(*files, *COLUMN_ARGS, "--column", "Outcome: What was the outcome?", "--host", fake.url, "--json")
    data = json.loads(more.stdout)
    assert more.returncode == 0 and len(data["calls"]) == 2 and data["table"] == json.loads(first.stdout)["table"]
    assert model.columns_asked[2:] == [["Outcome"], ["Outcome"]]
    assert [c["column"] for c in data["rows"][0]["cells"]] == ["Court", "Date of judgment", "Damages", "Outcome"]


def test_killed_run_resumes_without_asking_a_finished_cell_again(fake, tmp_path):
    """30 documents; the process is killed (SIGKILL) while the 16th is being asked; a second run
    finishes the table and asks only the 15 documents not yet stored."""
    files = judgments(tmp_path, 30)
    blocking = ReviewModel(block_at=16)
    fake.script(answer=blocking)
    child = subprocess.Popen([sys.executable, "-m", "lib", "review", *files, *COLUMN_ARGS, "--host", fake.url,
                              "--json"], cwd=ROOT, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert blocking.blocked.wait(120), "the run never reached the 16th document"
        store = Store(os.environ["FOLIO_DATA_DIR"])
        [table] = ReviewStore(store).list()
        stored = {sha for sha, _ in ReviewStore(store).cells(table["id"])}
        assert len(stored) == 15
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        blocking.release.set()
        if child.poll() is None:
            child.kill()
    finished_names = set(blocking.calls[:15])

    model = ReviewModel()
    fake.script(answer=model)
    done = run_cli(*files, *COLUMN_ARGS, "--host", fake.url, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert len(model.calls) == 15 and not set(model.calls) & finished_names
    assert data["resumed"] is True and len(data["calls"]) == 15
    assert all(c["status"] == "answered" for r in data["rows"] for c in r["cells"])
    assert len({r["document"] for r in data["rows"]}) == 30


def test_a_killed_run_is_an_interrupted_job_that_jobs_resume_finishes(fake, tmp_path):
    """The command line runs the table as a "review" job: killed half-way, the job shows as
    interrupted (as in the app), and `python -m lib jobs resume` finishes it against the server it
    was started with, without asking a finished cell again."""
    files = judgments(tmp_path, 30)
    blocking = ReviewModel(block_at=16)
    fake.script(answer=blocking)
    child = subprocess.Popen([sys.executable, "-m", "lib", "review", *files, *COLUMN_ARGS, "--host", fake.url],
                             cwd=ROOT, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert blocking.blocked.wait(120), "the run never reached the 16th document"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        blocking.release.set()
        if child.poll() is None:
            child.kill()
    finished_names = set(blocking.calls[:15])

    listed = subprocess.run([sys.executable, "-m", "lib", "jobs", "--json"], cwd=ROOT, env=cli_env(),
                            capture_output=True, text=True, timeout=60)
    [job] = json.loads(listed.stdout)["jobs"]
    assert (job["kind"], job["state"], job["done"], job["total"]) == ("review", "interrupted", 15, 30)
    assert job["title"].startswith("Review: case-0.txt and 29 more")

    model = ReviewModel()
    fake.script(answer=model)
    resumed = subprocess.run([sys.executable, "-m", "lib", "jobs", "resume", str(job["id"]), "--json"], cwd=ROOT,
                             env=cli_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    info = json.loads(resumed.stdout)["job"]
    assert (info["state"], info["done"], info["failed"], info["total"]) == ("done", 30, 0, 30)
    assert len(model.calls) == 15 and not set(model.calls) & finished_names
    store = Store(os.environ["FOLIO_DATA_DIR"])
    [table] = ReviewStore(store).list()
    cells = ReviewStore(store).cells(table["id"])
    assert len(cells) == 90 and {c.status for c in cells.values()} == {"answered"}


@pytest.mark.parametrize("args, message", [
    ([], "Give at least one column"),
    (["--column", "no colon here"], "has no colon"),
    (["--column", "A: q", "--type", "A=colour"], "unknown type"),
    (["--column", "A: q", "--type", "B=date"], "names no column"),
    (["--column", "A: q", "--column", "a: other"], "Two columns are titled"),
    (["--column", "A: q", "--type", "A=options:only"], "fewer than two"),
    (["--preset", "recipes"], "No ready column set"),
])
def test_bad_columns_exit_2_with_a_clear_message(tmp_path, args, message):
    files = judgments(tmp_path, 1)
    done = run_cli(*files, *args, "--host", f"http://127.0.0.1:{closed_port()}")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_unreadable_file_exits_2_and_asks_nothing(fake, tmp_path):
    files = judgments(tmp_path, 1) + [str(tmp_path / "missing.pdf")]
    done = run_cli(*files, *COLUMN_ARGS, "--host", fake.url, "--json")
    assert done.returncode == 2 and "missing.pdf" in done.stderr
    assert json.loads(done.stdout)["errors"][0]["name"].endswith("missing.pdf")
    assert fake.chat_bodies == []


def test_server_down_exits_3(tmp_path):
    files = judgments(tmp_path, 2)
    done = run_cli(*files, *COLUMN_ARGS, "--host", f"http://127.0.0.1:{closed_port()}", "--json")
    assert done.returncode == 3
    data = json.loads(done.stdout)
    assert data["exit_status"] == 3 and "error" in data
    assert all(c["status"] == "pending" for r in data["rows"] for c in r["cells"])  # nothing lost, nothing invented


def test_a_failed_cell_exits_3_and_a_too_long_document_exits_2(fake, tmp_path):
    fake.script(answer=ReviewModel())
    fake.fail_next(503, "server busy").fail_next(503, "server busy")
    files = judgments(tmp_path, 1)
    done = run_cli(*files, *COLUMN_ARGS, "--host", fake.url, "--json")
    assert done.returncode == 3
    assert json.loads(done.stdout)["rows"][0]["cells"][0]["status"] == "failed"

    (tmp_path / "long").mkdir()
    long_file = judgments(tmp_path / "long", 1, paragraphs=400)
    done = run_cli(*long_file, *COLUMN_ARGS, "--host", fake.url, "--json", "--context", "4096",
                   FOLIO_ANSWER_RESERVE="512")
    assert done.returncode == 0, done.stderr  # read in parts
    data = json.loads(done.stdout)
    assert len(data["calls"]) >= 2 and {c["parts"] for c in data["rows"][0]["cells"]} == {len(data["calls"])}
    done = run_cli(*long_file, *COLUMN_ARGS, "--host", fake.url, "--json", "--context", "4096",
                   FOLIO_ANSWER_RESERVE="3800", FOLIO_DATA_DIR=str(tmp_path / "another-library"))
    assert done.returncode == 2
    cell = json.loads(done.stdout)["rows"][0]["cells"][0]
    assert cell["status"] == "refused" and "could not be read, not even in parts" in cell["reason"]


def test_terminal_output_and_preset(fake, tmp_path):
    fake.script(answer=ReviewModel())
    files = judgments(tmp_path, 1)
    done = run_cli(*files, "--preset", "judgments", "--host", fake.url)
    assert done.returncode == 0, done.stderr
    assert "case-0.txt" in done.stdout and "✓ Court:" in done.stdout
    assert "Damages awarded" in done.stdout  # the preset's column, not stated by this fake's facts
    assert "1 of 1 rows" in done.stderr
    [body] = fake.chat_bodies
    assert len(body["format"]["required"]) == 8


def test_a_rambling_cell_is_cut_on_the_terminal_and_kept_whole_in_the_json():
    """A small model's 5,000-character value and invented 300-character ID take one short line
    each on the terminal, saying how long they are; the JSON (and the exports) keep them whole."""
    from lib.cli.review import SHOWN_CHARS, render_text

    value, invented = "(A) (B) (C) " * 420, "x" * 300
    cell = {"column": "Court", "text": value, "reason": "", "status": "answered", "needs_review": True,
            "citations": [{"id": invented, "status": "invalid"}]}
    data = {"title": "t", "table": 1, "rows": [{"document": "d.pdf", "cells": [cell]}], "counts": {}, "calls": []}
    [line] = [ln for ln in render_text(data).splitlines() if "Court:" in ln]
    assert len(line) < SHOWN_CHARS + 150
    assert f"({len(value.strip()):,} characters: --json or the exports hold it all)" in line
    assert "x" * 25 not in line and "INVALID" in line


def test_a_preset_column_is_edited_by_a_column_of_the_same_title(fake, tmp_path):
    fake.script(answer=ReviewModel())
    files = judgments(tmp_path, 1)
    done = run_cli(*files, "--preset", "theses", "--column", "Sample size: How many people took part?",
                   "--type", "Method=text", "--host", fake.url, "--json")
    assert done.returncode == 0, done.stderr
    columns = {c["title"]: c for c in json.loads(done.stdout)["columns"]}
    assert len(columns) == 6
    assert columns["Sample size"]["question"] == "How many people took part?" and columns["Sample size"]["type"] == "number"
    assert columns["Method"]["type"] == "text" and columns["Method"]["options"] == []


def test_a_collection_is_reviewed_whole_and_a_missing_or_empty_one_exits_2(fake, tmp_path):
    files = judgments(tmp_path, 4)
    ingest = subprocess.run([sys.executable, "-m", "lib", "ingest", *files[:3], "--collection", "Matter 42", "--json"],
                            cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert ingest.returncode == 0, ingest.stderr
    model = ReviewModel()
    fake.script(answer=model)
    done = run_cli("--collection", "matter 42", *COLUMN_ARGS, "--host", fake.url, "--json")  # names: any case
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert sorted(r["document"] for r in data["rows"]) == ["case-0.txt", "case-1.txt", "case-2.txt"]
    assert sorted(model.calls) == ["case-0.txt", "case-1.txt", "case-2.txt"] and len(data["calls"]) == 3
    assert all(c["status"] == "answered" for r in data["rows"] for c in r["cells"])
    assert data["rows"][0]["cells"][0]["value"] == facts(int(data["rows"][0]["document"][5]))["Court"][0]
    again = run_cli("--collection", "Matter 42", *COLUMN_ARGS, "--host", fake.url, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["resumed"] is True and len(model.calls) == 3

    missing = run_cli("--collection", "Nowhere", "--column", "A: q", "--host", fake.url, "--json")
    assert missing.returncode == 2 and "Nowhere" in missing.stderr and "Traceback" not in missing.stderr
    assert json.loads(missing.stdout)["exit_status"] == 2
    store = Store(os.environ["FOLIO_DATA_DIR"])
    store.create_collection("Empty")
    empty = run_cli("--collection", "Empty", "--column", "A: q", "--host", fake.url)
    assert empty.returncode == 2 and "has no documents" in empty.stderr
    both = run_cli(files[3], "--collection", "Matter 42", "--column", "A: q", "--host", fake.url)
    assert both.returncode == 2 and "not both" in both.stderr

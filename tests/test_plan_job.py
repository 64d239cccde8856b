"""A plan run as a job ("plan", lib/output/plan_job.py): every reading call stored as it finishes,
cancel keeping the evidence and composing from it, a run killed with SIGKILL resumed by
`python -m lib jobs resume` without sending a finished call again, the answer saved as a turn.

Against the fake Ollama (a real HTTP server in this process) with a small context, over 24
generated judgments in a temporary library. The fake answers as a model following Folio's
instructions would (tests/fake_openai.py: folio_answer); a gate holds one chosen reading call.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lib.asking.several_calls import plan_question
from lib.config import load_settings
from lib.library.jobs import Jobs
from lib.library.store import Store
from lib.output.plan_job import ANSWER_ITEM, KIND, create_plan_job, evidence_of, ranker_for

from fake_ollama import FakeOllama
from library_fixtures import documents
from plan_fixtures import reader_of

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Was the limitation defence upheld?"
CONTEXT = 3000
READER = reader_of("limitation")


class Gate:
    """Hold the reading call number `at` (1-based, in the order the fake receives them) until released."""

    def __init__(self, at: int):
        self.at = at
        self.seen = 0
        self.reached = threading.Event()
        self.release = threading.Event()
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
def store() -> Store:
    library = Store(os.environ["FOLIO_DATA_DIR"])
    for document, original in documents(24):
        library.add_document(document, original)
    return library


@pytest.fixture
def ollama():
    with FakeOllama() as server:
        server.script(answer=READER)
        yield server


def settings_for(fake):
    return load_settings(host=fake.url, context=CONTEXT, answer_reserve=300)


def shas_of(store: Store) -> list[str]:
    return [d.sha256 for d, _ in documents(24)]


def accept(store: Store, fake, mode: str = "all"):
    """The plan the user saw and accepted, and its queued job."""
    settings = settings_for(fake)
    shas = shas_of(store)
    plan, _backend, _info = plan_question(store.get_documents(shas), QUESTION, settings, mode=mode,
                                          ranker=ranker_for(store))
    assert plan.fits and len(plan.calls) >= (4 if mode == "all" else 1)
    return plan, create_plan_job(store, plan, settings, shas=shas)


def reading_bodies(fake) -> list[dict]:
    return [b for b in fake.chat_bodies if "read one portion of them" in b["messages"][0]["content"]]


def first_passage(call) -> str:
    return f"[{call.pieces[0].passages[0].id}]"


def test_a_plan_job_stores_each_call_and_saves_the_answer_as_a_turn(store, ollama):
    plan, job_id = accept(store, ollama)
    jobs = Jobs(store)
    info = jobs.run(job_id)
    assert info.state == "done" and info.kind == KIND
    assert info.total == len(plan.calls) + 1 and info.done == info.total and info.failed == 0
    results = jobs.results(job_id)
    assert set(results) == {c.key for c in plan.calls} | {ANSWER_ITEM}
    assert evidence_of(results)  # the evidence as it arrived, call by call
    assert len(reading_bodies(ollama)) == len(plan.calls) and len(ollama.chat_bodies) == len(plan.calls) + 1
    result = info.result
    conversation = store.get_conversation(result["conversation_id"])
    [turn] = conversation["turns"]
    assert turn["id"] == result["turn_id"] and turn["question"] == QUESTION and turn["mode"] == "all"
    assert turn["plan"]["key"] == plan.key and len(turn["calls"]) == len(plan.calls) + 1
    assert turn["citations"] and all(c["status"] == "verified" for c in turn["citations"])
    assert all(c["sha"] for c in turn["citations"])  # the page can open each citation's document
    assert turn["settings"]["host"] == ollama.url  # its speed counts for later estimates
    assert store.recent_calls(ollama.url, "qwen3-128k:14b")
    assert result["status"] == "answered" and result["verified"] == len(turn["citations"])


def test_cancel_keeps_the_evidence_and_composes_an_answer_from_it(store, ollama):
    gate = Gate(at=3)
    ollama.script(answer=gate)
    plan, job_id = accept(store, ollama)
    jobs = Jobs(store)
    try:
        jobs.start(job_id)
        assert gate.reached.wait(60)
        jobs.cancel(job_id)
        info = jobs.wait(job_id, timeout=60)
    finally:
        gate.release.set()
    assert info.state == "cancelled" and info.done == 2 and info.result is None
    found = evidence_of(jobs.results(job_id))
    assert found and {e["call"] for e in found} <= {1, 2}

    jobs.start(job_id, options={"compose": True})
    info = jobs.wait(job_id, timeout=60)
    assert info.state == "done", info.error
    turn = store.get_conversation(info.result["conversation_id"])["turns"][0]
    assert turn["citations"] and {c["id"] for c in turn["citations"]} <= {e["id"] for e in found}
    unread = [u["call"] for u in turn["unread"]]
    assert set(unread) == set(range(3, len(plan.calls) + 1))
    assert any("was not read" in w for w in turn["warnings"])
    assert len(reading_bodies(ollama)) == 3  # nothing read again to compose


def test_a_job_killed_half_way_resumes_without_sending_a_finished_call_again(store, ollama):
    gate = Gate(at=3)
    ollama.script(answer=gate)
    plan, job_id = accept(store, ollama)
    env = dict(os.environ)
    child = subprocess.Popen([sys.executable, "-m", "lib", "jobs", "resume", str(job_id)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert gate.reached.wait(60), "the child never reached its third call"
        # the two finished calls are stored (the job's thread records each as its result arrives)
        assert ollama.wait_for(lambda: Jobs(store).get(job_id).done == 2, timeout=30)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        gate.release.set()
    assert Jobs(store).get(job_id).state == "interrupted"
    before = len(reading_bodies(ollama))
    assert before == 3

    done = subprocess.run([sys.executable, "-m", "lib", "jobs", "resume", str(job_id), "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    info = Jobs(store).get(job_id)
    assert info.state == "done" and info.done == len(plan.calls) + 1
    later = reading_bodies(ollama)[before:]
    assert len(later) == len(plan.calls) - 2  # the third again (cut off by the kill), then the rest
    sent_later = "".join(m["content"] for b in later for m in b["messages"])
    for finished in plan.calls[:2]:
        assert first_passage(finished) not in sent_later  # a finished call is never sent again
    assert first_passage(plan.calls[2]) in sent_later
    turn = store.get_conversation(info.result["conversation_id"])["turns"][0]
    assert turn["citations"] and not turn["unread"]


def test_a_call_that_fails_twice_is_named_and_reading_it_again_answers_again(store, ollama):
    ollama.fail_next(500, "the runner crashed").fail_next(500, "the runner crashed")
    plan, job_id = accept(store, ollama)
    jobs = Jobs(store)
    info = jobs.run(job_id)
    assert info.state == "done" and info.failed == 1 and info.resumable
    [failure] = jobs.items(job_id, status="failed")
    assert "the runner crashed" in failure.error and failure.key == plan.calls[0].key
    first = store.get_conversation(info.result["conversation_id"])["turns"][0]
    assert any("was not read" in w and "the runner crashed" in w for w in first["warnings"])

    sent = len(reading_bodies(ollama))
    info = jobs.run(job_id)  # read the failed part again, answer again
    assert info.state == "done" and info.failed == 0
    assert len(reading_bodies(ollama)) == sent + 1
    again = store.get_conversation(info.result["conversation_id"])["turns"]
    assert [t["question"] for t in again] == [QUESTION, QUESTION]  # the new answer joins the first one's conversation
    assert not any("was not read" in w for w in again[1]["warnings"])


def test_a_plan_that_changed_since_it_was_accepted_is_not_run(store, ollama):
    _plan, job_id = accept(store, ollama)
    ollama.models["qwen3-128k:14b"].context_length = CONTEXT - 500  # the server now holds less
    info = Jobs(store).run(job_id)
    assert info.state == "failed" and "no longer the one you accepted" in info.error
    assert ollama.chat_bodies == []


def test_most_relevant_first_runs_as_a_job_of_one_call(store, ollama):
    plan, job_id = accept(store, ollama, mode="relevant")
    info = Jobs(store).run(job_id)
    assert info.state == "done" and info.total == 1 and info.done == 1
    assert len(ollama.chat_bodies) == 1
    turn = store.get_conversation(info.result["conversation_id"])["turns"][0]
    assert turn["mode"] == "relevant" and turn["plan"]["documents"][0]["rank"] == 1
    read = {d["name"] for d in turn["plan"]["documents"] if d["read"]}
    assert set(turn["documents"]) >= read and len(read) < 24


def test_the_answer_records_its_plan_in_every_export(store, ollama):
    import csv
    import io

    import docx

    from lib.output.exports import answer_docx, answer_markdown, conversation_docx, history_csv

    plan, job_id = accept(store, ollama)
    info = Jobs(store).run(job_id)
    conversation = store.get_conversation(info.result["conversation_id"])
    turn = conversation["turns"][0]
    records = turn["calls"]

    markdown = answer_markdown(turn)
    assert "### How it was asked" in markdown
    assert f"Asked in {len(plan.calls) + 1} calls (read everything): {len(plan.calls)} reading calls over 24 " in markdown
    for record in records:  # one row per call: what it read, tokens sent and read by the server, its time
        row = next(line for line in markdown.splitlines() if line.startswith(f"| {record['index']} |"))
        assert f"{record['prompt_tokens']:,}" in row and f"{record['server_prompt_tokens']:,}" in row
        assert f"{record['total_s']:.1f}" in row
    first_read = plan.calls[0].pieces[0].document.name
    assert first_read in markdown

    document = docx.Document(io.BytesIO(answer_docx(turn)))
    [table] = document.tables
    assert [c.text for c in table.rows[0].cells][:5] == ["Call", "Kind", "Reads", "Tokens sent", "Read by the server"]
    assert len(table.rows) == len(records) + 1
    assert table.rows[-1].cells[1].text == "composing"
    assert table.rows[1].cells[3].text == f"{records[0]['prompt_tokens']:,}"
    assert any(p.text == "How it was asked" for p in document.paragraphs)
    assert len(docx.Document(io.BytesIO(conversation_docx(conversation))).tables) == 1

    [row] = list(csv.DictReader(io.StringIO(history_csv([conversation]).decode("utf-8-sig"))))
    assert row["mode"] == "all" and int(row["calls"]) == len(records)
    assert row["plan"].startswith("1 reading: ") and f"{records[0]['prompt_tokens']:,} sent" in row["plan"]
    assert " composing: the evidence of the reading calls" in row["plan"]
    assert int(row["prompt_tokens"]) == sum(r["prompt_tokens"] for r in records)

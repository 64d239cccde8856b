"""`python -m lib plan` and `python -m lib ask --mode ...` as a user or a script runs them,
against the fake OpenAI-compatible server (a real HTTP server in this test process)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from plan_fixtures import paragraph

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = 3000


@pytest.fixture
def fake():
    with FakeOpenAI(max_model_len=CONTEXT) as server:
        yield server


@pytest.fixture
def books(tmp_path) -> list[str]:
    """Two plain-text books with chapters and a short memo: far more than one small call holds."""
    paths = []
    for name, first in (("alpha.txt", 1), ("beta.txt", 20)):
        chapters = []
        for chapter in range(first, first + 5):
            chapters.append(f"CHAPTER {chapter}")
            chapters += [paragraph(chapter, k) for k in range(1, 7)]
        path = tmp_path / name
        path.write_text("\n\n".join(chapters) + "\n", encoding="utf-8")
        paths.append(str(path))
    memo = tmp_path / "memo.txt"
    memo.write_text("The memo says the estate was sold in 1998.\n", encoding="utf-8")
    return paths + [str(memo)]


def run_cli(fake, *args: str, host: str | None = None, **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLIO_") and k != "OLLAMA_HOST"}
    env.update(FOLIO_DATA_DIR=os.environ.get("FOLIO_DATA_DIR", ""), FOLIO_BACKEND="openai",
               FOLIO_HOST=host or fake.url, FOLIO_MODEL=getattr(fake, "model", ""), FOLIO_CONTEXT=str(CONTEXT),
               FOLIO_ANSWER_RESERVE="300")
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "lib", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)


def test_plan_prints_the_calls_and_sends_nothing(fake, books):
    done = run_cli(fake, "plan", *books, "-q", "Where is clause3x4?", "--mode", "all", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["mode"] == "all" and plan["fits"] and len(plan["calls"]) >= 3
    assert plan["call_count"] == len(plan["calls"]) + 1 and plan["final"]["kind"] == "compose"
    assert plan["estimate"]["seconds"] is None and plan["estimate"]["text"].startswith("unknown")
    assert plan["prompt_tokens"] == sum(c["prompt_tokens"] for c in plan["calls"])
    assert all(c["prompt_tokens"] + c["num_predict"] <= CONTEXT for c in plan["calls"])
    reads = [r for c in plan["calls"] for r in c["reads"]]
    assert {r["document"] for r in reads} == {"alpha.txt", "beta.txt", "memo.txt"}
    assert any(r["parts"] > 1 and r["section"].startswith("CHAPTER") for r in reads if r["part"] > 1)
    assert plan["concurrency"] == 4 and "first-fit decreasing" in plan["packing"]
    assert fake.chat_bodies == []


def test_plan_in_words(fake, books):
    done = run_cli(fake, "plan", *books, "-q", "Where is clause3x4?", "--mode", "all")
    assert done.returncode == 0, done.stderr
    assert "Plan: read everything" in done.stdout and "call 1 of" in done.stdout
    assert "alpha.txt, part 1 of" in done.stdout and "Estimated time: unknown" in done.stdout


def test_plan_without_a_server_uses_the_configured_context_and_says_so(fake, books):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    done = run_cli(fake, "plan", *books, "-q", "Where is clause3x4?", "--mode", "all", "--json", host=closed)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["context"] == CONTEXT and any("could not be asked" in n for n in plan["notes"])


def test_auto_asks_nothing_when_one_call_cannot_hold_the_documents(fake, books):
    done = run_cli(fake, "ask", *books, "-q", "Where is clause3x4?", "--json")
    assert done.returncode == 2
    data = json.loads(done.stdout)
    assert data["exit_status"] == 2 and data["error"].startswith("Nothing was asked.")
    assert data["plan"]["mode"] == "auto"
    assert data["plan"]["alternatives"]["all"]["fits"]
    assert fake.chat_bodies == []
    words = run_cli(fake, "ask", *books, "-q", "Where is clause3x4?")
    assert words.returncode == 2 and "--mode all (read everything):" in words.stderr


def test_ask_reading_everything_prints_one_json_object_with_its_plan(fake, books):
    done = run_cli(fake, "ask", *books, "-q", "Where is clause3x4?", "--mode", "all", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    # the keys of a one-call answer are all there, and the plan's
    assert {"answer", "thinking", "citations", "warnings", "calls", "interrupted", "no_answer", "model"} <= set(data)
    assert {"plan", "evidence", "unread", "mode"} <= set(data)
    planned = data["plan"]["calls"]
    assert len(data["calls"]) == len(planned) + 1
    for call, record in zip(planned, data["calls"]):
        assert record["prompt_tokens"] == call["prompt_tokens"]
        assert record["server_prompt_tokens"] == record["server_counted_prompt"]
        assert record["reads"] == call["reads"]
        assert {"documents", "num_ctx", "num_keep", "first_token_s", "total_s", "done_reason"} <= set(record)
    assert data["citations"] and all(c["status"] == "verified" for c in data["citations"])
    assert "clause3x4" in data["answer"] and not data["unread"]


def test_ask_reading_everything_shows_progress_then_the_answer(fake, books):
    done = run_cli(fake, "ask", *books, "-q", "Where is clause3x4?", "--mode", "all", "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    assert "folio: call 1 of" in done.stderr and "reading alpha.txt" in done.stderr
    assert "evidence item(s)" in done.stderr and "Composing the answer" in done.stderr
    assert "clause3x4" in done.stdout and "Citations:" in done.stdout
    assert fake.peak <= 2


def test_a_part_that_cannot_be_read_is_named_and_the_exit_status_says_so(fake, books):
    fake.fail_next(500, "The engine crashed (EngineDeadError).").fail_next(500, "The engine crashed (EngineDeadError).")
    done = run_cli(fake, "ask", *books, "-q", "Where is clause3x4?", "--mode", "all", "--concurrency", "1", "--json")
    assert done.returncode == 3, done.stderr
    data = json.loads(done.stdout)
    [unread] = data["unread"]
    assert unread["document"] == "alpha.txt" and unread["part"] == 1
    assert any(w.startswith("Part 1 of") and "alpha.txt was not read" in w and "EngineDeadError" in w
               for w in data["warnings"])


def test_a_bad_concurrency_is_refused(fake, books):
    done = run_cli(fake, "ask", *books, "-q", "Where is clause3x4?", "--mode", "all", "--concurrency", "0")
    assert done.returncode == 2 and "--concurrency 0" in done.stderr


def test_mode_one_is_the_single_call_refusal_as_before(fake, books):
    done = run_cli(fake, "ask", *books, "-q", "Where is clause3x4?", "--mode", "one")
    assert done.returncode == 2 and "over by" in done.stderr and fake.chat_bodies == []


def test_when_no_part_holds_anything_relevant_the_answer_says_so(fake, books):
    done = run_cli(fake, "ask", *books, "-q", "Who won the World Cup?", "--mode", "all")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("The documents do not answer this question.") == 1  # said once, not repeated
    assert "no composing call" in done.stderr


def test_the_estimate_comes_from_the_speed_of_earlier_answers_in_the_history(fake, books):
    from lib.library.store import open_store

    with open_store(os.environ["FOLIO_DATA_DIR"]) as store:
        conversation = store.create_conversation([], "earlier")
        store.add_turn(conversation, "Who pays?", {
            "answer": "...", "model": fake.model,
            "calls": [{"server_prompt_tokens": 50_000, "cached_tokens": 0, "prompt_eval_s": 25.0,
                       "eval_count": 400, "eval_s": 10.0}]}, {"host": fake.url, "model": fake.model})
    done = run_cli(fake, "plan", *books, "-q", "Where is clause3x4?", "--mode", "all", "--json")
    assert done.returncode == 0, done.stderr
    estimate = json.loads(done.stdout)["estimate"]
    assert estimate["read_tokens_per_s"] == 2000.0 and estimate["write_tokens_per_s"] == 40.0
    assert estimate["seconds"] > 0 and estimate["text"].startswith("about ")


def test_a_first_answer_on_the_command_line_gives_the_next_plan_its_speed(tmp_path):
    """Ollama reports its reading and writing time: one answer from `ask` is enough for `plan`."""
    from fake_ollama import FakeOllama

    memo = tmp_path / "memo.txt"
    memo.write_text("The memo says the estate was sold in 1998.\n", encoding="utf-8")
    with FakeOllama() as ollama:
        env = {"FOLIO_BACKEND": "ollama", "FOLIO_HOST": ollama.url, "FOLIO_MODEL": "qwen3-128k:14b",
               "FOLIO_CONTEXT": "3000", "FOLIO_ANSWER_RESERVE": "300"}
        before = run_cli(ollama, "plan", str(memo), "-q", "When was the estate sold?", "--json", **env)
        assert json.loads(before.stdout)["estimate"]["seconds"] is None
        asked = run_cli(ollama, "ask", str(memo), "-q", "When was the estate sold?", **env)
        assert asked.returncode == 0, asked.stderr
        after = run_cli(ollama, "plan", str(memo), "-q", "When was the estate sold?", "--json", **env)
    estimate = json.loads(after.stdout)["estimate"]
    assert estimate["read_tokens_per_s"] and estimate["write_tokens_per_s"]  # the fake's own per-token costs
    assert estimate["seconds"] > 0 and estimate["text"].startswith("about ")
    assert len(ollama.chat_bodies) == 1  # plan sent nothing


@pytest.fixture
def collection(tmp_path):
    """40 generated judgments in the library, in the collection "Matter" (the first 20 also in "Half")."""
    from library_fixtures import documents
    from lib.library.store import open_store

    store = open_store(os.environ["FOLIO_DATA_DIR"])
    pairs = documents(40)
    for document, original in pairs:
        store.add_document(document, original)
    store.create_collection("Matter")
    store.add_to_collection("Matter", [d.sha256 for d, _ in pairs])
    store.create_collection("Empty")
    return store


def test_plan_and_ask_take_a_collection_from_the_library(fake, collection):
    from library_fixtures import topic_of

    done = run_cli(fake, "plan", "--collection", "Matter", "-q", "Was the limitation defence upheld?",
                   "--mode", "relevant", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    ranked = plan["documents"]
    assert len(ranked) == 40 and [d["rank"] for d in ranked] == list(range(1, 41))
    expected = collection.rank_documents("Was the limitation defence upheld?", collection.collection_shas("Matter"))
    assert [d["sha256"] for d in ranked] == [r.sha256 for r in expected]  # the library's own ranking
    assert topic_of(ranked[0]["name"]) == "limitation" and ranked[0]["read"]
    assert any(not d["read"] for d in ranked)

    asked = run_cli(fake, "ask", "--collection", "Matter", "-q", "Was the limitation defence upheld?",
                    "--mode", "all", "--json")
    assert asked.returncode == 0, asked.stderr
    data = json.loads(asked.stdout)
    read = {r["document"] for c in data["plan"]["calls"] for r in c["reads"]}
    assert len(read) == 40 and len(data["calls"]) == len(data["plan"]["calls"]) + 1
    assert data["citations"] and all(c["status"] == "verified" for c in data["citations"])


def test_a_collection_that_cannot_be_asked_is_refused(fake, collection, books):
    for args, said in ((["--collection", "Nowhere"], "Nowhere"), (["--collection", "Empty"], "holds no documents"),
                       (["--collection", "Matter", books[0]], "not both"), ([], "FILE... or --collection")):
        done = run_cli(fake, "ask", *args, "-q", "Who?", "--mode", "all")
        assert done.returncode == 2 and said in done.stderr, (args, done.stderr)
    assert fake.chat_bodies == []


class BlockingReader:
    """The fake's usual reader, except that the n-th chat call (1-based) waits for `release`."""

    def __init__(self, at: int):
        import threading

        self.at, self.prompts = at, []
        self.lock, self.blocked, self.release = threading.Lock(), threading.Event(), threading.Event()

    def __call__(self, body: dict, prompt: str) -> str:
        from fake_openai import folio_answer

        with self.lock:
            self.prompts.append(prompt)
            count = len(self.prompts)
        if count == self.at:
            self.blocked.set()
            self.release.wait(60)
        return folio_answer(body, prompt)


def recorded(store, calls: int, within_s: float) -> bool:
    """True once the only plan job has `calls` items stored (polled: another process writes them)."""
    import time

    from lib.library.jobs import Jobs

    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        jobs = Jobs(store).list(kind="plan")
        if jobs and jobs[0].done >= calls:
            return True
        time.sleep(0.05)
    return False


def test_a_collection_question_runs_as_a_plan_job_and_is_kept_in_history(fake, collection):
    from lib.library.jobs import Jobs

    asked = run_cli(fake, "ask", "--collection", "Matter", "-q", "Was the limitation defence upheld?",
                    "--mode", "all", "--json")
    assert asked.returncode == 0, asked.stderr
    data = json.loads(asked.stdout)
    [job] = Jobs(collection).list(kind="plan")
    assert data["job"] == job.id and job.status == "done" and job.failed == 0
    assert job.done == job.total == len(data["plan"]["calls"]) + 1  # every reading call, then the answer
    [conversation] = collection.list_conversations()
    [turn] = collection.get_conversation(conversation["id"])["turns"]
    assert turn["question"] == "Was the limitation defence upheld?"
    assert turn["answer"] == data["answer"]


def test_ctrl_c_on_a_collection_question_composes_from_the_evidence_found_and_ends_its_job(fake, collection):
    """Ctrl-C while the 3rd reading call is out: the job is cancelled (the two finished calls kept),
    the answer composed from their evidence is printed and kept, the exit status says it was stopped."""
    import signal

    from lib.library.jobs import Jobs

    blocking = BlockingReader(at=3)
    fake.script(answer=blocking)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLIO_") and k != "OLLAMA_HOST"}
    env.update(FOLIO_DATA_DIR=os.environ["FOLIO_DATA_DIR"], FOLIO_BACKEND="openai", FOLIO_HOST=fake.url,
               FOLIO_MODEL=fake.model, FOLIO_CONTEXT=str(CONTEXT), FOLIO_ANSWER_RESERVE="300",
               FOLIO_CONCURRENCY="1")
    child = subprocess.Popen([sys.executable, "-m", "lib", "ask", "--collection", "Matter", "-q",
                              "Which court gave the judgment?", "--mode", "all", "--json"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert blocking.blocked.wait(120), "the run never reached its third call"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        blocking.release.set()
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    data = json.loads(out)
    assert data["job"] and data["answer"]
    assert data["evidence"] and data["citations"]  # the two finished calls' evidence, cited
    assert len(blocking.prompts) == 4  # two calls read, the third abandoned, then the composing call
    [job] = Jobs(collection).list(kind="plan")
    assert job.id == data["job"] and job.status == "done" and job.done == 3  # two calls and the answer
    assert len(collection.list_conversations()) == 1


def test_a_killed_collection_question_resumes_without_sending_a_finished_call_again(fake, collection):
    """The process is killed (SIGKILL) while the 3rd reading call is out; the same command goes on
    from there: the two finished calls are not sent again, and the job shows it was resumed."""
    import signal

    question = ["ask", "--collection", "Matter", "-q", "Was the limitation defence upheld?", "--mode", "all"]
    blocking = BlockingReader(at=3)
    fake.script(answer=blocking)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLIO_") and k != "OLLAMA_HOST"}
    env.update(FOLIO_DATA_DIR=os.environ["FOLIO_DATA_DIR"], FOLIO_BACKEND="openai", FOLIO_HOST=fake.url,
               FOLIO_MODEL=fake.model, FOLIO_CONTEXT=str(CONTEXT), FOLIO_ANSWER_RESERVE="300",
               FOLIO_CONCURRENCY="1")
    child = subprocess.Popen([sys.executable, "-m", "lib", *question], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert blocking.blocked.wait(120), "the run never reached its third call"
        # The two finished calls are stored by the job's own thread, which may still be at it.
        assert recorded(collection, 2, within_s=60), "the two finished calls were never stored"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        blocking.release.set()
        if child.poll() is None:
            child.kill()
    sent_before = blocking.prompts[:2]

    listed = subprocess.run([sys.executable, "-m", "lib", "jobs", "--json"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    [job] = json.loads(listed.stdout)["jobs"]
    assert (job["kind"], job["state"], job["done"]) == ("plan", "interrupted", 2)

    fake.script()  # the usual reader again
    before = len(fake.chat_bodies)
    resumed = run_cli(fake, *question, "--json", FOLIO_CONCURRENCY="1")
    assert resumed.returncode == 0, resumed.stderr
    data = json.loads(resumed.stdout)
    assert data["job"] == job["id"]
    sent_now = [m["content"] for body in fake.chat_bodies[before:] for m in body["messages"] if m["role"] == "user"]
    assert len(fake.chat_bodies) - before == len(data["plan"]["calls"]) - 2 + 1  # the rest, then the answer
    assert not any(old in sent for old in sent_before for sent in sent_now)
    assert data["citations"] and all(c["status"] == "verified" for c in data["citations"])

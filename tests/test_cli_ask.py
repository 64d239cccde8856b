"""`python -m lib ask` and `doctor` as a user or a script runs them, against the fake Ollama."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fake_ollama import PASSAGE_LINE, FakeOllama

ROOT = Path(__file__).resolve().parent.parent
LEASE = (
    "Lease Agreement\n\n"
    "The lessee shall pay the rent on the first day of each month.\n\n"
    "The lessor shall repair the roof and keep the building insured.\n"
)


@pytest.fixture
def fake():
    with FakeOllama() as server:
        yield server


@pytest.fixture
def lease_file(tmp_path) -> Path:
    path = tmp_path / "lease.txt"
    path.write_text(LEASE, encoding="utf-8")
    return path


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLIO_") and k != "OLLAMA_HOST"}
    env["FOLIO_DATA_DIR"] = os.environ.get("FOLIO_DATA_DIR", "")
    return subprocess.run(
        [sys.executable, "-m", "lib", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_json_answer_has_the_documented_shape(fake, lease_file):
    done = run_cli("ask", str(lease_file), "--question", "Who pays the rent?", "--host", fake.url, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # exactly one JSON object on stdout
    assert {"answer", "thinking", "citations", "warnings", "calls"} <= set(data)
    [citation] = data["citations"]
    assert set(citation) >= {"id", "document", "page", "quote", "status"}
    assert citation["document"] == "lease.txt" and citation["status"] == "verified"
    [call] = data["calls"]
    assert set(call) >= {"documents", "prompt_tokens", "server_prompt_tokens", "num_ctx", "num_keep",
                         "first_token_s", "total_s", "done_reason"}
    assert call["documents"] == ["lease.txt"]
    assert call["prompt_tokens"] == call["server_prompt_tokens"] == fake.last_prompt_tokens
    assert call["num_ctx"] == fake.last_chat["options"]["num_ctx"] == 131072
    assert data["thinking"] == "" and fake.last_chat["think"] is False


def test_think_flag_and_model_and_context_reach_the_request(fake, lease_file):
    done = run_cli("ask", str(lease_file), "-q", "Who pays?", "--host", fake.url, "--json", "--think",
                   "--model", "qwen3:14b", "--context", "32768")
    assert done.returncode == 0, done.stderr
    body = fake.last_chat
    assert body["think"] is True and body["model"] == "qwen3:14b"
    assert body["options"]["num_ctx"] == 32768
    assert json.loads(done.stdout)["thinking"] == fake.reply.thinking


def _cite_rent_clause(body, prompt):
    passage_id = PASSAGE_LINE.search(prompt).group(1)
    return f'Rent is due monthly "the first day of each month" [{passage_id}] and "a roof of gold" [{passage_id}].'


def test_streamed_answer_goes_to_stdout_thinking_to_stderr(fake, lease_file):
    fake.script(answer=_cite_rent_clause, thinking="Looking for the rent clause.")
    done = run_cli("ask", str(lease_file), "-q", "When is rent due?", "--host", fake.url, "--think")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Rent is due monthly")
    assert "Looking for the rent clause." in done.stderr and "Looking for" not in done.stdout
    lines = done.stdout.splitlines()
    assert any("verified" in line and '"the first day of each month"' in line and "lease.txt" in line for line in lines)
    assert any("UNVERIFIED" in line and '"a roof of gold"' in line for line in lines)
    assert "1 of 2 citation(s) could not be verified" in done.stderr


def test_uncited_answer_is_flagged_on_the_terminal(fake, lease_file):
    fake.script(answer="Rent is due monthly.")
    done = run_cli("ask", str(lease_file), "-q", "When is rent due?", "--host", fake.url)
    assert done.returncode == 0
    assert "warning: The answer cites no passage" in done.stderr


@pytest.mark.parametrize("reply, times", [
    ("The documents do not answer this question.", 1),  # the sentence itself: said once
    ("I looked everywhere. The documents do not answer this question.", 2),  # among other words: said plainly too
])
def test_no_answer_is_said_plainly_once(fake, lease_file, reply, times):
    fake.script(answer=reply)
    done = run_cli("ask", str(lease_file), "-q", "Who won the World Cup?", "--host", fake.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("The documents do not answer this question.") == times


def test_unreadable_file_exits_2_and_asks_nothing(fake, lease_file, tmp_path):
    missing = tmp_path / "missing.pdf"
    done = run_cli("ask", str(lease_file), str(missing), "-q", "Who pays?", "--host", fake.url, "--json")
    assert done.returncode == 2
    data = json.loads(done.stdout)
    assert data["errors"][0]["name"] == str(missing) and "does not exist" in data["errors"][0]["message"]
    assert "missing.pdf" in done.stderr and "Traceback" not in done.stderr
    assert fake.chat_bodies == []


def test_documents_that_do_not_fit_exit_2_before_sending(fake, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("\n\n".join(f"Clause {i}: the parties agree to term {i}." for i in range(400)), encoding="utf-8")
    done = run_cli("ask", str(big), "-q", "What is clause 3?", "--host", fake.url, "--context", "6000")
    assert done.returncode == 2
    assert "over by" in done.stderr and "big.txt" in done.stderr and "Traceback" not in done.stderr
    assert fake.chat_bodies == []


def test_server_down_exits_3(lease_file):
    done = run_cli("ask", str(lease_file), "-q", "Who pays?", "--host", f"http://127.0.0.1:{closed_port()}", "--json")
    assert done.returncode == 3
    assert "Cannot reach" in json.loads(done.stdout)["error"]
    assert "Traceback" not in done.stderr


def test_server_crash_exits_3(fake, lease_file):
    fake.fail_next(500, "llama runner process has terminated: exit status 2")
    done = run_cli("ask", str(lease_file), "-q", "Who pays?", "--host", fake.url)
    assert done.returncode == 3
    assert "runner" in done.stderr and "Traceback" not in done.stderr


def test_interrupted_answer_exits_3_and_keeps_the_text(fake, lease_file):
    fake.script(answer="The lessee pays the rent on the first day of each month.", words_per_chunk=1)
    fake.interrupt_next("error", after=4, error="an error was encountered while running the model")
    done = run_cli("ask", str(lease_file), "-q", "Who pays?", "--host", fake.url, "--json")
    assert done.returncode == 3
    data = json.loads(done.stdout)
    assert data["interrupted"] is True and data["answer"].startswith("The lessee")
    assert "encountered" in data["interrupt_reason"]


def test_think_and_no_think_exclude_each_other(lease_file):
    done = run_cli("ask", str(lease_file), "-q", "x", "--think", "--no-think")
    assert done.returncode == 2 and "not allowed with" in done.stderr


def test_doctor_reports_the_server(fake):
    done = run_cli("doctor", "--host", fake.url, "--model", "qwen3:14b")
    assert done.returncode == 0, done.stderr
    assert "0.13.0" in done.stdout and "40,960" in done.stdout
    assert "Traceback" not in done.stderr


def test_doctor_json_and_a_missing_model_exits_3(fake):
    done = run_cli("doctor", "--host", fake.url, "--model", "nothere:1b", "--json")
    assert done.returncode == 3
    data = json.loads(done.stdout)
    assert data["ok"] is False and data["model_present"] is False and data["version"] == "0.13.0"


def test_doctor_with_the_server_down_exits_3():
    done = run_cli("doctor", "--host", f"http://127.0.0.1:{closed_port()}")
    assert done.returncode == 3
    assert "Traceback" not in done.stderr


def test_citation_line_names_every_page_of_a_passage_that_runs_over_a_page_break():
    from lib.asking.citations import Citation
    from lib.cli.ask import _citation_line

    spanning = Citation(id="kzt-7", status="verified", quote="pays for every repair", document="lease.pdf", page=4, page_end=5)
    assert "lease.pdf pp. 4-5:" in _citation_line(spanning)
    labelled = Citation(id="kzt-2", status="verified", quote="scope", document="thesis.pdf", page=3, page_end=3, page_label="iii")
    assert "thesis.pdf p. iii:" in _citation_line(labelled)

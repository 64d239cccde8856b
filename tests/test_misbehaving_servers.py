"""Servers that misbehave: another web app on the port, streams that never end, endless lines,
time limits. Through the command line, the lib API and both backends (the OpenAI-compatible
ones scripted with httpx.MockTransport, as in test_openai_client.py)."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from lib.asking.answering import ask
from lib.config import Settings, load_settings
from lib.errors import InputError, NotAModelServer, TimeLimitExceeded
from lib.servers.doctor import diagnose, format_report
from lib.servers.exchange import MAX_LINE_BYTES, bounded_lines, LineTooLong
from lib.servers.ollama import OllamaBackend
from lib.servers.openai import OpenAIBackend

from answer_fixtures import lease
from fake_ollama import GARBLES, FakeOllama
from test_cli_ask import lease_file, run_cli  # noqa: F401 (fixture)
from test_openai_client import Server, delta, make_request, sse


@pytest.fixture
def fake():
    with FakeOllama() as server:
        yield server


# --- another web application on the port: every endpoint Folio reads -------------------------

CHECK_PATHS = ["/api/version", "/api/show", "/api/tags", "/api/ps"]


@pytest.mark.parametrize("path", CHECK_PATHS)
@pytest.mark.parametrize("kind", sorted(GARBLES))
def test_a_check_endpoint_answering_non_json_is_not_a_model_server(fake, path, kind):
    fake.garble_next(path, kind)
    with pytest.raises(NotAModelServer) as caught:
        ask([lease()], "Who pays?", Settings(host=fake.url))
    message = str(caught.value)
    assert path in message and "does not look like an Ollama server" in message
    assert "--host / OLLAMA_HOST" in message and caught.value.exit_status == 3
    assert fake.chat_bodies == []


@pytest.mark.parametrize("path", CHECK_PATHS)
def test_the_doctor_reports_a_non_json_answer_instead_of_failing(fake, path):
    fake.garble_next(path, "list")
    d = diagnose(Settings(host=fake.url))
    assert not d.ok and d.error_kind == "NotAModelServer"
    assert "a JSON list" in d.error and path in d.error
    assert "does not look like an Ollama server" in format_report(d)


@pytest.mark.parametrize("kind", ["html", "text", "list"])
def test_a_chat_answered_with_non_ndjson_is_not_a_model_server(fake, kind):
    backend = OllamaBackend(Settings(host=fake.url))
    backend.check()  # the check went well; then the chat answers like another web app
    fake.garble_next("/api/chat", kind)
    with pytest.raises(NotAModelServer) as caught:
        ask([lease()], "Who pays?", Settings(host=fake.url), backend=backend)
    assert "/api/chat" in str(caught.value)
    assert backend.checked is None  # after an error the next question checks the server again


def test_a_pull_answered_with_non_json_is_not_a_model_server(fake):
    fake.garble_next("/api/pull", "text")
    with pytest.raises(NotAModelServer):
        OllamaBackend(Settings(host=fake.url)).pull("qwen3:14b")


def test_doctor_and_ask_against_another_web_app_exit_3_with_what_to_do(fake, lease_file):
    fake.garble_all("html")
    doctor = run_cli("doctor", "--host", fake.url)
    assert doctor.returncode == 3, doctor.stderr
    assert "Traceback" not in doctor.stderr + doctor.stdout
    assert "does not look like an Ollama server" in doctor.stdout and "an HTML page" in doctor.stdout
    asked = run_cli("ask", str(lease_file), "-q", "Who pays?", "--host", fake.url, "--json")
    assert asked.returncode == 3, asked.stderr
    assert "does not look like an Ollama server" in json.loads(asked.stdout)["error"]
    assert "Unexpected failure" not in asked.stderr


def test_the_openai_backend_against_a_server_without_v1_models_says_so(fake, lease_file):
    asked = run_cli("ask", str(lease_file), "-q", "Who pays?", "--backend", "openai", "--host", fake.url)
    assert asked.returncode == 3
    assert "does not look like vLLM, llama.cpp or another OpenAI-compatible server" in asked.stderr
    assert "(without /v1)" in asked.stderr and "Traceback" not in asked.stderr


class Garbled(Server):
    """A scripted OpenAI-compatible server whose `path` answers 200 with `body`."""

    def __init__(self, flavour: str, path: str, body: bytes, content_type: str = "text/html", **kwargs):
        super().__init__(flavour, **kwargs)
        self.path, self.body, self.content_type = path, body, content_type

    def __call__(self, request):
        if request.url.path == self.path:
            self.requests.append(request)
            return httpx.Response(200, content=self.body, headers={"Content-Type": self.content_type})
        return super().__call__(request)


def openai(server, **settings) -> OpenAIBackend:
    return OpenAIBackend(Settings(backend="openai", host="http://gpu.test:8000", model="Qwen/Qwen3-14B", **settings),
                         transport=httpx.MockTransport(server))


HTML = b"<!DOCTYPE html><html><body>Welcome to nginx!</body></html>"


@pytest.mark.parametrize("body, content_type, words", [
    (HTML, "text/html", "an HTML page"),
    (b'[{"id": "x"}]', "application/json", "a JSON list"),
    (b'{"status": "ok"}', "application/json", "without a 'data' list"),
])
def test_openai_v1_models_answering_something_else_is_not_a_model_server(body, content_type, words):
    with pytest.raises(NotAModelServer) as caught:
        openai(Garbled("vllm", "/v1/models", body, content_type)).check()
    assert words in str(caught.value) and "/v1/models" in str(caught.value)


@pytest.mark.parametrize("flavour, path", [("vllm", "/version"), ("llama.cpp", "/props")])
def test_optional_openai_endpoints_answering_garbage_are_ignored(flavour, path):
    info = openai(Garbled(flavour, path, HTML)).check()
    assert info.model_present and info.version is None


@pytest.mark.parametrize("flavour, path", [("vllm", "/tokenize"), ("llama.cpp", "/apply-template"),
                                           ("llama.cpp", "/tokenize"),
                                           ("llama-cpp-python", "/v1/chat/completions")])
def test_a_garbled_prompt_count_is_no_count(flavour, path):
    backend = openai(Garbled(flavour, path, HTML))
    backend.check()
    assert backend.count_prompt(make_request()) is None


@pytest.mark.parametrize("body, content_type", [(HTML, "text/html"), (b"Hello\nWorld\n", "text/plain"),
                                                (b"", "text/event-stream")])
def test_an_openai_chat_answered_with_non_sse_is_not_a_model_server(body, content_type):
    backend = openai(Garbled("vllm", "/v1/chat/completions", body, content_type))
    with pytest.raises(NotAModelServer) as caught:
        list(backend.chat(make_request()))
    assert "/v1/chat/completions" in str(caught.value)


# --- streams that never end, and the time limits --------------------------------------------

def test_a_stream_of_blank_lines_ends_at_the_idle_limit_and_says_nothing_arrived(fake, lease_file):
    fake.keepalive_next(every=0.2)
    done = run_cli("ask", str(lease_file), "-q", "Who pays?", "--host", fake.url, "--json", "--read-timeout", "1")
    assert done.returncode == 3, done.stderr
    data = json.loads(done.stdout)
    assert data["interrupted"] and data["answer"] == "" and data["status"] == "interrupted"
    reason = data["interrupt_reason"]
    assert "sent only empty keep-alive lines for 1 s" in reason and "no part of an answer arrived" in reason
    assert "the part that arrived is kept" not in reason
    assert fake.wait_for(lambda: fake.disconnects >= 1)  # Folio hung up, so the server can stop


def test_the_idle_limit_comes_from_the_environment_too(fake):
    fake.script(answer="The lessee pays the rent every month.", thinking="", words_per_chunk=2)
    fake.keepalive_next(every=0.1, after=2)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FOLIO_READ_TIMEOUT", "1")
        settings = load_settings(host=fake.url)
    answer = ask([lease()], "Who pays?", settings)
    assert answer.interrupted and answer.answer == "The lessee pays the "
    assert "in the middle of the answer; the part that arrived is kept (20 characters)" in answer.interrupt_reason


def test_a_silent_server_ends_at_the_total_limit(fake, lease_file):
    gate = fake.hold_next()
    try:
        done = run_cli("ask", str(lease_file), "-q", "Who pays?", "--host", fake.url, "--timeout", "1")
    finally:
        gate.set()
    assert done.returncode == 3
    assert "took longer than the 1 s allowed" in done.stderr and "no part of an answer had arrived" in done.stderr
    assert "--timeout" in done.stderr


def test_the_total_limit_also_covers_the_server_check():
    started = threading.Event()
    release = threading.Event()

    def slow_version(request):
        if request.url.path == "/api/version":
            started.set()
            release.wait(30)
        return httpx.Response(404)

    backend = OllamaBackend(Settings(host="http://ollama.test:11434"), transport=httpx.MockTransport(slow_version))
    began = time.monotonic()
    try:
        with pytest.raises(TimeLimitExceeded) as caught:
            ask([lease()], "Who pays?", Settings(host="http://ollama.test:11434", total_timeout=0.5), backend=backend)
    finally:
        release.set()
    assert time.monotonic() - began < 5
    assert "checking the model server" in str(caught.value)


@pytest.mark.parametrize("overrides, words", [
    ({"read_timeout": 0}, "idle limit"),
    ({"total_timeout": -1}, "total limit"),
])
def test_limits_must_make_sense(overrides, words):
    with pytest.raises(InputError) as caught:
        load_settings(**overrides)
    assert words in str(caught.value)


def test_timeout_options_are_checked_and_documented():
    done = run_cli("ask", "x.txt", "-q", "q", "--timeout", "-3")
    assert done.returncode == 2 and "--timeout -3 is negative" in done.stderr
    helped = run_cli("ask", "--help")
    assert "--timeout SECONDS" in helped.stdout and "--read-timeout SECONDS" in helped.stdout


# --- lines and answers without end ----------------------------------------------------------

def test_an_endless_line_is_not_read_into_memory(fake):
    fake.huge_line_next(20_000_000)
    answer = ask([lease()], "Who pays?", Settings(host=fake.url))
    assert answer.interrupted and answer.answer == "" and answer.status == "interrupted"
    assert "a single line of more than 1 MB" in answer.interrupt_reason
    assert "no part of an answer had arrived" in answer.interrupt_reason
    assert fake.wait_for(lambda: fake.disconnects >= 1)  # Folio hung up long before 20 MB


def test_an_answer_far_longer_than_num_predict_is_cut_visibly():
    piece = "word " * 40_000  # 200,000 characters a line, each line under the line limit

    def endless(request):
        if request.url.path == "/api/chat":
            lines = [json.dumps({"message": {"role": "assistant", "content": piece}, "done": False}) for _ in range(8)]
            lines.append(json.dumps({"message": {"role": "assistant", "content": ""}, "done": True,
                                     "done_reason": "stop", "prompt_eval_count": 10, "eval_count": 9}))
            return httpx.Response(200, content="\n".join(lines).encode(), headers={"Content-Type": "application/x-ndjson"})
        return httpx.Response(404)

    backend = OllamaBackend(Settings(host="http://ollama.test:11434"), transport=httpx.MockTransport(endless))
    request = make_request(num_predict=100)
    events = list(backend.chat(request))
    text = "".join(e.text for e in events if e.kind == "content")
    assert events[-1].kind == "interrupted" and len(text) == 1 << 20
    assert "more than 1,048,576 characters" in events[-1].reason and "100 tokens reserved" in events[-1].reason


def test_bounded_lines_stop_before_building_a_long_line():
    chunks = iter([b"ok\n", b"x" * 600_000, b"x" * 600_000, b"never read\n"])
    lines = bounded_lines(chunks, MAX_LINE_BYTES)
    assert next(lines) == "ok"
    with pytest.raises(LineTooLong):
        next(lines)
    assert next(chunks) == b"never read\n"  # the rest of the stream was not consumed
    assert list(bounded_lines([b"a\r\nb\rc", b"\n", b"d"])) == ["a", "b", "c", "d"]


def test_openai_stream_with_an_endless_line_is_interrupted():
    stream = sse(delta("Half"), done=False) + b"data: " + b"x" * (MAX_LINE_BYTES + 10)
    events = list(openai(Server(stream=stream)).chat(make_request()))
    assert "".join(e.text for e in events if e.kind == "content") == "Half"
    assert events[-1].kind == "interrupted" and "single line of more than 1 MB" in events[-1].reason
    assert "the part that arrived is kept" in events[-1].reason


# --- the doctor's exit status, as documented ------------------------------------------------

def test_doctor_exit_status_is_documented_where_scripts_look():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "never fails on an unreachable server" not in readme
    bullet = readme[readme.index("- `doctor`"):].split("\n\n")[0]
    assert "exits 0 when ready, 3 when not" in " ".join(bullet.split())
    helped = run_cli("doctor", "--help")
    assert "3    not ready: unreachable" in helped.stdout


def test_doctor_exits_3_on_an_unreachable_server_and_reports_it():
    from test_cli_ask import closed_port

    done = run_cli("doctor", "--host", f"http://127.0.0.1:{closed_port()}", "--json")
    assert done.returncode == 3
    data = json.loads(done.stdout)
    assert data["ok"] is False and "Cannot reach Ollama" in data["error"]


def test_the_settings_page_sets_both_limits(monkeypatch):
    from test_app import assert_no_exception, goto, start_app, submit
    from test_cli_ask import closed_port

    import streamlit as st

    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")
    st.cache_data.clear()
    st.cache_resource.clear()
    at = goto(start_app(), "settings")
    [n for n in at.number_input if n.label == "Seconds without new text"][0].set_value(45)
    [n for n in at.number_input if n.label == "Longest a question may take (seconds)"][0].set_value(0)
    submit(at, "Apply")
    assert_no_exception(at)
    assert at.session_state["overrides"] == {"read_timeout": 45.0, "total_timeout": 0.0}
    st.cache_data.clear()
    st.cache_resource.clear()

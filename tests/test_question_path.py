"""The path of one question: its top-level state, its times, cache reuse as the server reports
it, the model that really answered, what `ask --json` carries, one prompt built once, and one
server check per session. Against the fake Ollama, scripted OpenAI-compatible servers
(httpx.MockTransport) and a small real llama.cpp-like server for the app."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from lib.asking import prompt
from lib.asking.answering import ask
from lib.asking.prompt import build_prompt, forget_rendered, render_chat
from lib.config import Settings
from lib.output import exports, presenting, turns
from lib.reading.tokens import get_counter
from lib.servers.doctor import diagnose, format_report
from lib.servers.ollama import OllamaBackend
from lib.servers.openai import OpenAIBackend

from answer_fixtures import contract_zh, injection, lease, long_document, make_document
from fake_ollama import PASSAGE_LINE, FakeOllama, render_qwen3
from test_cli_ask import lease_file, run_cli  # noqa: F401 (fixture)
from test_openai_client import Server, delta, sse


@pytest.fixture
def fake():
    with FakeOllama() as server:
        yield server


def openai(server, **settings) -> OpenAIBackend:
    fields = dict(backend="openai", host="http://gpu.test:8000", model="Qwen/Qwen3-14B")
    fields.update(settings)
    return OpenAIBackend(Settings(**fields), transport=httpx.MockTransport(server))


def openai_settings(**changes) -> Settings:
    fields = dict(backend="openai", host="http://gpu.test:8000", model="Qwen/Qwen3-14B")
    fields.update(changes)
    return Settings(**fields)


# --- the server did not read the whole prompt: a distinct exit status, a top-level state ------

def test_a_prompt_cut_by_the_server_exits_4_with_the_state_first(fake, lease_file):
    fake.cut_prompt_next(keep=50)
    done = run_cli("ask", str(lease_file), "-q", "Who pays the rent?", "--host", fake.url, "--json")
    assert done.returncode == 4, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "prompt_cut" and data["interrupted"] is False
    check = data["prompt_check"]
    assert check["state"] == "read_fewer" and check["read"] == 50 and check["sent"] > 50
    assert check["reference"] == "Folio"
    assert "did not read what Folio sent" in " ".join(data["warnings"])
    assert "THE SERVER DID NOT READ THE WHOLE PROMPT" in done.stderr


def test_exit_4_is_documented_in_ask_help():
    helped = run_cli("ask", "--help")
    assert "4    answered, but the server did not read the whole prompt" in helped.stdout


def test_a_whole_prompt_read_is_answered(fake):
    answer = ask([lease()], "Who pays?", Settings(host=fake.url))
    assert answer.status == "answered"
    assert answer.prompt_check == {"state": "read_all", "sent": fake.last_prompt_tokens,
                                   "read": fake.last_prompt_tokens, "reference": "Folio"}


# --- times from the moment the user asked; Stop ends any request --------------------------------

def test_times_count_from_the_moment_the_user_asked(fake):
    asked_at = time.monotonic() - 30  # the user asked 30 s ago (a slow check, a long count...)
    answer = ask([lease()], "Who pays?", Settings(host=fake.url), asked_at=asked_at)
    [call] = answer.calls
    assert call["first_token_s"] >= call["sent_s"] >= 30
    assert call["total_s"] >= call["first_token_s"]
    assert answer.timings["first_token_s"] == call["first_token_s"] and answer.timings["sent_s"] >= 30
    assert 0 <= answer.timings["check_s"] < 30 and answer.timings["prompt_s"] >= 0
    assert answer.to_json()["timings"]["total_s"] == call["total_s"]


class Gate(Server):
    """A scripted server whose request to `path` waits until `release` is set."""

    def __init__(self, flavour: str, path: str, stream: bytes | None = None):
        super().__init__(flavour, stream=stream)
        self.path, self.started, self.release = path, threading.Event(), threading.Event()

    def __call__(self, request):
        body = json.loads(request.content) if request.content else {}
        if request.url.path == self.path and body.get("stream") is not True:
            self.started.set()
            self.release.wait(60)
        return super().__call__(request)


def _ask_in_thread(*args, **kwargs):
    result = {}

    def run():
        result["answer"] = ask(*args, **kwargs)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker, result


class SlowProbe(Server):
    """llama-cpp-python reading the prompt for `seconds` before it answers the count."""

    def __init__(self, seconds: float, **kwargs):
        super().__init__("llama-cpp-python", **kwargs)
        self.seconds = seconds

    def __call__(self, request):
        if request.url.path == "/v1/chat/completions" and json.loads(request.content)["stream"] is False:
            time.sleep(self.seconds)  # the server's work, not the test waiting for something
        return super().__call__(request)


def test_the_prompt_count_is_part_of_the_time_to_the_first_word():
    server = SlowProbe(0.3, stream=sse(delta("None."), delta(finish="stop")))
    answer = ask([lease()], "Who pays?", openai_settings(), backend=openai(server))
    assert answer.timings["count_s"] >= 0.3
    assert answer.calls[0]["first_token_s"] >= answer.timings["count_s"]
    assert answer.calls[0]["sent_s"] >= answer.timings["count_s"]


@pytest.mark.parametrize("flavour, path, words", [
    ("llama-cpp-python", "/v1/chat/completions", "while the server was reading the prompt to count it"),
    ("vllm", "/tokenize", "while the server was counting the prompt"),
    ("vllm", "/v1/models", "while checking the model server"),
])
def test_stop_ends_the_check_and_the_prompt_count_within_a_second(flavour, path, words):
    server = Gate(flavour, path, stream=sse(delta("x", finish="stop")))
    cancel = threading.Event()
    worker, result = _ask_in_thread([lease()], "Who pays?", openai_settings(), backend=openai(server), cancel=cancel)
    try:
        assert server.started.wait(10)
        stopped = time.monotonic()
        cancel.set()
        worker.join(5)
        # Within a second (the exchange looks at Stop every 50 ms); 2 s leaves room for a busy machine.
        assert not worker.is_alive() and time.monotonic() - stopped < 2.0
    finally:
        server.release.set()
    answer = result["answer"]
    assert answer.status == "stopped" and answer.interrupted and answer.answer == ""
    assert words in answer.interrupt_reason and "No part of an answer had arrived" in answer.interrupt_reason


def test_stop_while_the_model_reads_is_stopped_not_interrupted(fake):
    gate = fake.hold_next()
    cancel = threading.Event()
    worker, result = _ask_in_thread([lease()], "Who pays?", Settings(host=fake.url), cancel=cancel)
    try:
        assert fake.wait_for(fake.holding.is_set)
        cancel.set()
        worker.join(5)
    finally:
        gate.set()
    assert result["answer"].status == "stopped"


# --- cache reuse, as the server reports it ------------------------------------------------------

def test_vllm_cached_tokens_are_the_reuse():
    usage = {"prompt_tokens": 5300, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 5236}}
    stream = sse(delta("None."), delta(finish="stop"), {"choices": [], "usage": usage})
    answer = ask([lease()], "q", openai_settings(), backend=openai(Server("vllm", stream=stream)))
    cache = answer.calls[0]["cache"]
    assert (cache["state"], cache["tokens"], cache["source"]) == ("reused", 5236, "server")
    line = presenting.cache_line(answer.calls[0]["cached_tokens"], 5300, None, None)
    assert line == "Cache: 5,236 of 5,300 prompt tokens reused from the server's cache."


def test_a_server_that_reports_nothing_is_unknown_not_a_first_question():
    stream = sse(delta("None."), delta(finish="stop"))
    answer = ask([lease()], "q", openai_settings(), backend=openai(Server("llama-cpp-python", stream=stream)))
    call = answer.calls[0]
    assert call["cache"]["state"] == "unknown"
    for follow_up in (False, True):
        line = presenting.cache_line(call["cached_tokens"], call["server_prompt_tokens"], call["prompt_eval_s"], None,
                                     follow_up=follow_up)
        assert line.startswith("Cache: unknown") and "first question" not in line


def test_ollama_reuse_is_judged_from_its_reading_speed(fake):
    settings = Settings(host=fake.url)
    documents = [long_document("big.pdf", 60)]
    first = ask(documents, "Who pays?", settings)
    follow = ask(documents, "And then?", settings, history=[first.turn])
    assert first.calls[0]["cache"]["state"] == "unknown"  # 2,500 tokens/s: a GPU could read that fast
    assert follow.calls[0]["cache"] == {"state": "reused", "tokens": None, "source": "timing",
                                        "read_s": follow.calls[0]["prompt_eval_s"]}


# --- the model that answered -----------------------------------------------------------------

def test_the_model_the_server_says_answered_is_recorded_everywhere(fake):
    fake.answer_as("qwen3:8b-behind-a-proxy")
    answer = ask([lease()], "Who pays?", Settings(host=fake.url))
    assert answer.model == "qwen3:8b-behind-a-proxy" and answer.configured_model == "qwen3-128k:14b"
    assert answer.calls[0]["model"] == "qwen3:8b-behind-a-proxy"
    assert answer.calls[0]["requested_model"] == "qwen3-128k:14b"
    record = turns.with_context(turns.turn_from_answer(answer, turns.new_pending("Who pays?", False, [lease()], 0)),
                                turns.new_pending("Who pays?", False, [lease()], 0), Settings(host=fake.url))
    assert record["model"] == "qwen3:8b-behind-a-proxy" and record["configured_model"] == "qwen3-128k:14b"
    saved = dict(record, settings={"model": "qwen3-128k:14b"})  # what the store keeps with a turn
    assert exports.turn_model(saved) == "qwen3:8b-behind-a-proxy"
    assert "qwen3:8b-behind-a-proxy" in exports.stats_line(saved)


def test_server_kind_and_version_are_readable(fake):
    info = OllamaBackend(Settings(host=fake.url)).check()
    assert info.display == "Ollama 0.13.0" and info.to_json()["display"] == "Ollama 0.13.0"
    vllm = openai(Server("vllm")).check()
    assert vllm.display == "vLLM 0.11.0" and vllm.kind == "vllm"
    assert openai(Server("llama-cpp-python")).check().display == "llama-cpp-python server"


class OtherGguf(Server):
    def models(self):
        return {"object": "list", "data": [{"id": "/models/smollm2-135m.gguf", "owned_by": "llamacpp",
                                            "meta": {"n_ctx_train": 8192}}]}


def test_the_doctor_says_what_a_single_model_server_really_serves():
    settings = openai_settings(model="qwen3-128k:14b")
    d = diagnose(settings, backend=OpenAIBackend(settings, transport=httpx.MockTransport(OtherGguf("llama.cpp"))))
    report = format_report(d)
    assert "qwen3-128k:14b is NOT served here" in report and "/models/smollm2-135m.gguf" in report
    assert "Status:      ready, but answers come from /models/smollm2-135m.gguf" in report
    assert "Status:      ready\n" not in report
    data = d.to_json()
    assert data["model_matches"] is False and data["model_served"] == "/models/smollm2-135m.gguf"
    assert data["server"] == "llama.cpp server"


# --- `ask --json` carries what the app shows -----------------------------------------------------

def test_a_server_that_does_not_say_its_context_is_said_in_the_answer():
    stream = sse(delta("None."), delta(finish="stop"))
    answer = ask([lease()], "q", openai_settings(), backend=openai(Server("llama-cpp-python", stream=stream)))
    data = answer.to_json()
    assert any("does not say how long its context is" in w for w in data["warnings"])
    assert data["context"] == {"configured": 131072, "server": None, "used": 131072, "source": "configured"}
    assert data["server"]["kind"] == "llama-cpp-python" and data["server"]["context_reported"] is False


def test_the_servers_real_context_is_the_one_used_and_reported():
    stream = sse(delta("None."), delta(finish="stop"))
    answer = ask([lease()], "q", openai_settings(), backend=openai(Server("llama.cpp", stream=stream)))
    assert answer.context == {"configured": 131072, "server": 32768, "used": 32768, "source": "server"}
    assert answer.calls[0]["num_ctx"] == 32768
    assert any("holds 32,768 tokens, not the 131,072 configured" in w for w in answer.warnings)


# --- one prompt per question; documents rendered and counted once ---------------------------------

class SpyCounter:
    """The exact counter, recording how many characters it was asked to encode."""

    def __init__(self):
        self._counter = get_counter("exact")
        self.kind = self._counter.kind
        self.chars = 0

    def count(self, text: str) -> int:
        self.chars += len(text)
        return self._counter.count(text)

    def count_many(self, texts):
        return [self.count(t) for t in texts]


def test_a_follow_up_counts_only_what_changed():
    forget_rendered()
    spy = SpyCounter()
    documents = [long_document("big.pdf", 200), contract_zh()]
    first = build_prompt(documents, "Who pays?", think=False, counter=spy)
    rendered_documents = sum(len(prompt.render_document(d)) for d in first.documents)
    assert spy.chars >= rendered_documents  # the first time, every document is read once
    before = spy.chars
    again = build_prompt(documents, "Who repairs the roof?", think=True, counter=spy,
                         history=[("Who pays?", "The lessee.")])
    assert spy.chars - before < len(prompt.SYSTEM_PROMPT) + 2_000  # the frame, not the documents
    assert again.per_document == first.per_document


@pytest.mark.parametrize("kind", ["exact", "estimate"])
def test_the_counted_prompt_is_exactly_the_rendered_prompt(kind):
    counter = get_counter(kind)
    tricky = make_document("名字 <x>&\"q\".md", [["  spaces around  ", "emoji 🎉 ends with >", "1. numbered\n\n"]],
                           "markdown")
    for documents in ([lease()], [lease(), contract_zh(), injection(), tricky], [], [tricky]):
        for history in ((), [("First? >", "Said </document>\n\n"), ("Second", "")]):
            for think in (False, True):
                forget_rendered()
                built = build_prompt(documents, "Who?\n", think=think, counter=counter, history=history)
                assert built.rendered == render_chat(list(built.messages), think)
                assert built.total == counter.count(built.rendered)
                assert built.total == len(counter.encode(render_qwen3(list(built.messages), think))) \
                    if kind == "exact" else True


# --- the server checked once, one HTTP client per backend ------------------------------------------

def test_the_server_is_checked_once_and_again_after_an_error(fake, monkeypatch):
    created = []
    original = httpx.Client.__init__

    def counting(self, *args, **kwargs):
        created.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "__init__", counting)
    settings = Settings(host=fake.url)
    backend = OllamaBackend(settings)
    for question in ("Who pays?", "Who repairs?", "How long?"):
        ask([lease()], question, settings, backend=backend)
    versions = [r for r in fake.requests if r.path == "/api/version"]
    assert len(versions) == 1 and len(fake.chat_bodies) == 3
    assert len(created) == 1  # one client for the backend's whole life
    fake.interrupt_next("error", after=1)
    assert ask([lease()], "Again?", settings, backend=backend).interrupted
    ask([lease()], "And now?", settings, backend=backend)
    assert len([r for r in fake.requests if r.path == "/api/version"]) == 2


# --- the app: an OpenAI-compatible server that serves another model, checked once -----------------

class LlamaServerStub:
    """A small real llama.cpp-like server: /v1/models, /props, /apply-template, /tokenize and
    streamed /v1/chat/completions with usage and timings (cache_n: the prefix it reused)."""

    def __init__(self, model: str = "/models/smollm2-135m.gguf", n_ctx: int = 32768):
        self.model, self.n_ctx = model, n_ctx
        self.paths: list[str] = []
        self._previous: list[int] = []
        self._encode = get_counter("exact").encode
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def answer(self, body: dict) -> list[bytes]:
        prompt_text = render_qwen3(body["messages"], body.get("chat_template_kwargs", {}).get("enable_thinking"))
        tokens = self._encode(prompt_text)
        cached = 0
        for a, b in zip(self._previous, tokens):
            if a != b:
                break
            cached += 1
        self._previous = tokens
        match = PASSAGE_LINE.search(prompt_text)
        text = f'It says "{" ".join(match.group(2).split()[:6]).rstrip(".,;:")}" [{match.group(1)}].'
        final = {"model": self.model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": len(tokens), "completion_tokens": 12},
                 "timings": {"cache_n": cached, "prompt_n": len(tokens) - cached, "prompt_ms": 40.0,
                             "predicted_n": 12, "predicted_ms": 300.0}}
        chunks = [{"model": self.model, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
                  final]
        return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, data: dict):
                raw = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                stub.paths.append(self.path)
                if self.path == "/v1/models":
                    return self._json({"object": "list", "data": [
                        {"id": stub.model, "owned_by": "llamacpp", "meta": {"n_ctx_train": 131072}}]})
                if self.path == "/props":
                    return self._json({"default_generation_settings": {"n_ctx": stub.n_ctx}})
                self.send_error(404)

            def do_POST(self):
                stub.paths.append(self.path)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/apply-template":
                    think = body.get("chat_template_kwargs", {}).get("enable_thinking")
                    return self._json({"prompt": render_qwen3(body["messages"], think)})
                if self.path == "/tokenize":
                    return self._json({"tokens": stub._encode(body["content"])})
                if self.path != "/v1/chat/completions":
                    return self.send_error(404)
                events = stub.answer(body)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(sum(len(e) for e in events)))
                self.end_headers()
                for event in events:
                    self.wfile.write(event)

        return Handler


def test_the_app_shows_the_server_readably_records_its_model_and_checks_once(monkeypatch):
    from test_app import add_and_open_ask, assert_no_exception, ask as app_ask, goto, start_app, unescape, values

    import fixtures
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    with LlamaServerStub() as server:
        monkeypatch.setenv("FOLIO_BACKEND", "openai")
        monkeypatch.setenv("FOLIO_HOST", server.url)
        at = start_app()
        success = unescape(" ".join(values(at, "success")))
        assert "llama.cpp server · `smollm2-135m.gguf`" in success, success  # the file's name, readable
        assert "Openai" not in success
        add_and_open_ask(at, "judgment.pdf", fixtures.english_pdf())
        app_ask(at, "What does the judgment say first?")
        app_ask(at, "And then?")
        assert_no_exception(at)
        captions = unescape(" ".join(values(at, "caption")))
        import re

        assert re.search(r"Cache: \d{3} of \d{3} prompt tokens reused \(the server says so\)", captions), captions
        assert "first question on these documents" not in captions
        saved = at.session_state["chat"]["turns"]
        assert [t["model"] for t in saved] == ["/models/smollm2-135m.gguf"] * 2
        assert saved[0]["configured_model"] == "qwen3-128k:14b"
        assert server.paths.count("/v1/models") == 1  # one check for the session, not one per question
        settings_page = goto(at, "settings")
        text = unescape(" ".join(values(settings_page, "success") + values(settings_page, "warning")))
        assert "Ready: Folio can ask this model" not in text
        assert "answers every question with `/models/smollm2-135m.gguf`" in text
    st.cache_data.clear()
    st.cache_resource.clear()

"""OpenAIBackend against scripted vLLM, llama-server and llama-cpp-python servers (httpx.MockTransport).

The shapes below are those the servers' own sources produce (see lib/servers/openai.py); the
real llama-server runs in tests/test_real_engine.py, llama-cpp-python's server is replayed from a
recording in tests/test_openai_recorded.py.
"""

from __future__ import annotations

import json
import socket
import threading

import httpx
import pytest

from lib.config import Settings
from lib.errors import (
    InputError,
    ModelNotFound,
    PromptTooLong,
    ServerBusy,
    ServerCrashed,
    ServerError,
    ServerUnreachable,
)
from lib.servers import make_backend
from lib.servers.ollama import OllamaBackend
from lib.servers.openai import OpenAIBackend, build_chat_body
from lib.servers.protocol import ChatRequest

MESSAGES = [
    {"role": "system", "content": "You are Folio."},
    {"role": "user", "content": "<documents>\n[kzt-1] The lessee shall pay.\n</documents>\n\nQuestion: who pays?"},
]
HOST = "http://gpu.test:8000"


def make_request(**changes) -> ChatRequest:
    fields = dict(model="Qwen/Qwen3-14B", messages=MESSAGES, think=True, num_ctx=131072, num_keep=9,
                  num_predict=2048, keep_alive="2h", temperature=0.6, top_p=0.95, top_k=20, min_p=0.0)
    fields.update(changes)
    return ChatRequest(**fields)


def sse(*chunks, done: bool = True) -> bytes:
    lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def delta(content=None, reasoning=None, finish=None, key="reasoning_content") -> dict:
    d = {}
    if content is not None:
        d["content"] = content
    if reasoning is not None:
        d[key] = reasoning
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


class Server:
    """A scripted OpenAI-compatible server: records requests, answers per flavour."""

    def __init__(self, flavour: str = "vllm", stream: bytes | None = None, status: int = 200, error: dict | None = None):
        self.flavour = flavour
        self.stream = stream
        self.status = status
        self.error = error
        self.requests: list[httpx.Request] = []

    def bodies(self, path: str) -> list[dict]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path and r.content]

    def models(self) -> dict:
        entry = {"id": "Qwen/Qwen3-14B", "object": "model"}
        if self.flavour == "vllm":
            entry.update(owned_by="vllm", max_model_len=131072)
        elif self.flavour == "llama.cpp":
            entry.update(owned_by="llamacpp", meta={"n_ctx_train": 40960, "n_vocab": 151936})
        else:
            entry.update(id="/models/smollm.gguf", owned_by="me", permissions=[])
        return {"object": "list", "data": [entry]}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/v1/models":
            return httpx.Response(200, json=self.models())
        if path == "/version" and self.flavour == "vllm":
            return httpx.Response(200, json={"version": "0.11.0"})
        if path == "/props" and self.flavour == "llama.cpp":
            return httpx.Response(200, json={"default_generation_settings": {"n_ctx": 32768}, "total_slots": 1})
        if path == "/tokenize" and self.flavour == "vllm":
            return httpx.Response(200, json={"count": 57, "max_model_len": 131072, "tokens": list(range(57))})
        if path == "/apply-template" and self.flavour == "llama.cpp":
            return httpx.Response(200, json={"prompt": "<|im_start|>system\nYou are Folio.<|im_end|>\n"})
        if path == "/tokenize" and self.flavour == "llama.cpp":
            return httpx.Response(200, json={"tokens": list(range(44))})
        if path == "/v1/chat/completions":
            body = json.loads(request.content)
            if self.status != 200:
                return httpx.Response(self.status, json=self.error)
            if not body["stream"]:
                return httpx.Response(200, json={"choices": [{"message": {"content": "x"}, "finish_reason": "length"}],
                                                  "usage": {"prompt_tokens": 31, "completion_tokens": 1}})
            return httpx.Response(200, content=self.stream, headers={"Content-Type": "text/event-stream"})
        return httpx.Response(404, json={"detail": "Not Found"})


def backend(server: Server, **settings) -> OpenAIBackend:
    return OpenAIBackend(Settings(backend="openai", host=HOST, model="Qwen/Qwen3-14B", **settings),
                         transport=httpx.MockTransport(server))


def collect(events):
    events = list(events)
    return ("".join(e.text for e in events if e.kind == "thinking"),
            "".join(e.text for e in events if e.kind == "content"), events)


# --- what Folio sends ---------------------------------------------------------------------

def test_every_field_is_sent():
    server = Server(stream=sse(delta("Hi", finish="stop")))
    list(backend(server, api_key="sekret").chat(make_request(seed=3)))
    request = [r for r in server.requests if r.url.path == "/v1/chat/completions"][-1]
    assert request.headers["Authorization"] == "Bearer sekret"
    assert json.loads(request.content) == {
        "model": "Qwen/Qwen3-14B",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 2048,
        "temperature": 0.6,
        "top_p": 0.95,
        "top_k": 20,
        "min_p": 0.0,
        "chat_template_kwargs": {"enable_thinking": True},
        "seed": 3,
    }


def test_no_authorization_header_without_a_key():
    server = Server(stream=sse(delta("Hi", finish="stop")))
    list(backend(server).chat(make_request()))
    assert all("Authorization" not in r.headers for r in server.requests)


def test_thinking_off_is_explicit():
    assert build_chat_body(make_request(think=False))["chat_template_kwargs"] == {"enable_thinking": False}


# --- streaming ----------------------------------------------------------------------------

def test_vllm_stream_reasoning_content_usage_and_cached_tokens():
    usage = {"prompt_tokens": 812, "completion_tokens": 40, "total_tokens": 852,
             "prompt_tokens_details": {"cached_tokens": 768}}
    stream = sse(delta(reasoning="Check kzt-1."), delta(reasoning=" Yes."), delta("The lessee"),
                 delta(" pays [kzt-1]."), delta(finish="stop"),
                 {"object": "chat.completion.chunk", "choices": [], "usage": usage})
    thinking, content, events = collect(backend(Server(stream=stream)).chat(make_request()))
    assert thinking == "Check kzt-1. Yes."
    assert content == "The lessee pays [kzt-1]."
    stats = events[-1].stats
    assert events[-1].kind == "done"
    assert (stats.prompt_eval_count, stats.eval_count, stats.cached_tokens, stats.done_reason) == (812, 40, 768, "stop")
    assert stats.first_token_s is not None and stats.wall_s >= stats.first_token_s


def test_newer_vllm_reasoning_field_is_thinking_too():
    stream = sse(delta(reasoning="Hmm.", key="reasoning"), delta("Answer.", finish="stop"))
    thinking, content, _ = collect(backend(Server(stream=stream)).chat(make_request()))
    assert (thinking, content) == ("Hmm.", "Answer.")


def test_llama_server_timings_give_cache_and_durations():
    final = delta(finish="length")
    final.update(usage={"prompt_tokens": 500, "completion_tokens": 20},
                 timings={"cache_n": 480, "prompt_n": 20, "prompt_ms": 150.0, "predicted_n": 20, "predicted_ms": 400.0})
    stream = b": ping\n\n" + sse(delta("Part"), final)
    _, content, events = collect(backend(Server("llama.cpp", stream=stream)).chat(make_request()))
    stats = events[-1].stats
    assert content == "Part"
    assert (stats.prompt_eval_count, stats.cached_tokens, stats.done_reason) == (500, 480, "length")
    assert (stats.prompt_eval_duration_s, stats.eval_duration_s) == (0.15, 0.4)


def test_llama_cpp_python_prompt_count_comes_from_a_one_token_probe():
    server = Server("llama-cpp-python", stream=sse(delta("Hi"), delta(finish="stop")))
    _, _, events = collect(backend(server).chat(make_request()))
    probe, streamed = server.bodies("/v1/chat/completions")
    assert (probe["stream"], probe["max_tokens"], probe["messages"]) == (False, 1, MESSAGES)
    assert streamed["stream"] is True and streamed["model"] == "/models/smollm.gguf"
    assert events[-1].stats.prompt_eval_count == 31  # the probe's usage.prompt_tokens


def test_llama_cpp_python_probe_is_not_repeated_after_count_prompt():
    server = Server("llama-cpp-python", stream=sse(delta("Hi"), delta(finish="stop")))
    b = backend(server)
    assert b.count_prompt(make_request()) == 31
    _, _, events = collect(b.chat(make_request()))
    assert [body["stream"] for body in server.bodies("/v1/chat/completions")] == [False, True]
    assert events[-1].stats.prompt_eval_count == 31
    collect(b.chat(make_request(messages=MESSAGES + [{"role": "user", "content": "And?"}])))
    assert [body["stream"] for body in server.bodies("/v1/chat/completions")] == [False, True, False, True]


@pytest.mark.parametrize("stream, words", [
    (sse(delta("Half"), {"error": {"message": "CUDA error: out of memory", "code": 500}}, done=False),
     "reported an error mid-answer: CUDA error: out of memory"),
    (sse(delta("Half"), done=False), "without saying the answer was finished"),
    (sse(delta("Half"), done=True), "without a finish reason"),
    (b"data: " + json.dumps(delta("Half")).encode() + b"\n\nerror: {\"message\": \"slot crashed\"}\n\n", "slot crashed"),
])
def test_interrupted_streams_keep_what_arrived(stream, words):
    _, content, events = collect(backend(Server(stream=stream)).chat(make_request()))
    assert content == "Half"
    assert events[-1].kind == "interrupted" and words in events[-1].reason
    assert not any(e.kind == "done" for e in events)


def test_dropped_connection_is_an_interruption():
    def body():
        yield b"data: " + json.dumps(delta("Half")).encode() + b"\n\n"
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    class Dropping(Server):
        def __call__(self, request):
            if request.url.path == "/v1/chat/completions":
                return httpx.Response(200, content=body(), headers={"Content-Type": "text/event-stream"})
            return super().__call__(request)

    _, content, events = collect(backend(Dropping()).chat(make_request()))
    assert content == "Half" and "dropped mid-answer" in events[-1].reason


def test_cancel_between_chunks():
    stream = sse(delta("one "), delta("two "), delta("three", finish="stop"))
    cancel = threading.Event()
    events = []
    for event in backend(Server(stream=stream)).chat(make_request(), cancel=cancel):
        events.append(event)
        cancel.set()
    assert [e.kind for e in events] == ["content", "interrupted"]
    assert "Stopped by you" in events[-1].reason


# --- errors before streaming --------------------------------------------------------------

@pytest.mark.parametrize("status, error, kind, words", [
    (404, {"object": "error", "message": "The model `qwen3` does not exist.", "code": 404}, ModelNotFound, "/v1/models"),
    (400, {"object": "error", "message": "This model's maximum context length is 131072 tokens. However, you "
           "requested 140000 tokens", "code": 400}, PromptTooLong, "maximum context length"),
    (400, {"error": {"message": "the request exceeds the available context size, try increasing it",
                     "type": "exceed_context_size_error"}}, PromptTooLong, "exceeds the available context"),
    (503, {"error": {"message": "Loading model"}}, ServerBusy, "busy"),
    (500, {"error": {"message": "CUDA out of memory. Tried to allocate 2.00 GiB"}}, ServerCrashed, "--kv-cache-dtype fp8"),
    (401, {"detail": "Invalid API key"}, ServerError, "FOLIO_API_KEY"),
])
def test_http_errors_become_specific_messages(status, error, kind, words):
    with pytest.raises(kind) as info:
        list(backend(Server(status=status, error=error)).chat(make_request()))
    assert words in str(info.value)


def test_unreachable_server():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServerUnreachable) as info:
        OpenAIBackend(Settings(backend="openai", host=f"http://127.0.0.1:{port}")).check()
    assert "vllm serve" in str(info.value) and "FOLIO_HOST" in str(info.value)


# --- check() and count_prompt() -----------------------------------------------------------

def test_vllm_context_limit_version_and_tokenize_count():
    server = Server("vllm")
    b = backend(server)
    info = b.check()
    assert (b.flavour, info.version, info.trained_context) == ("vllm", "0.11.0", 131072)
    assert info.supports_thinking and info.warnings == []
    assert b.count_prompt(make_request(think=False)) == 57
    assert server.bodies("/tokenize")[-1] == {
        "model": "Qwen/Qwen3-14B", "messages": MESSAGES, "add_generation_prompt": True,
        "chat_template_kwargs": {"enable_thinking": False}}


def test_llama_server_limit_is_the_smaller_of_trained_and_slot_context():
    server = Server("llama.cpp")
    b = backend(server, context=131072)
    info = b.check()
    assert (info.trained_context, info.loaded_context) == (32768, 32768)
    assert any("holds 32,768 tokens, not the 131,072 configured" in w for w in info.warnings)
    assert b.count_prompt(make_request()) == 44
    assert server.bodies("/tokenize")[-1]["content"].startswith("<|im_start|>system")


def test_llama_cpp_python_says_nothing_about_context():
    b = backend(Server("llama-cpp-python"))
    info = b.check()
    assert info.trained_context is None and info.model == "/models/smollm.gguf"
    assert any("does not say how long its context is" in w for w in info.warnings)
    assert b.count_prompt(make_request()) == 31


def test_unknown_model_on_a_multi_model_server():
    class Many(Server):
        def models(self):
            return {"data": [{"id": "a", "owned_by": "vllm"}, {"id": "b", "owned_by": "vllm"}]}

    with pytest.raises(ModelNotFound) as info:
        backend(Many()).check()
    assert "it serves: a, b" in str(info.value)


def test_make_backend_picks_by_setting():
    assert isinstance(make_backend(Settings(backend="ollama")), OllamaBackend)
    assert isinstance(make_backend(Settings(backend="openai")), OpenAIBackend)
    with pytest.raises(InputError) as info:
        make_backend(Settings(backend="tgi"))
    assert "'ollama'" in str(info.value) and "FOLIO_BACKEND" in str(info.value)


def test_an_injected_transport_survives_many_calls():
    closed = []

    class Owned(httpx.MockTransport):
        def close(self):
            closed.append(True)

    server = Server(stream=sse(delta("Hi", finish="stop")))
    b = OpenAIBackend(Settings(backend="openai", host=HOST, model="Qwen/Qwen3-14B"), transport=Owned(server))
    for _ in range(3):
        assert collect(b.chat(make_request()))[2][-1].kind == "done"
    b.close()
    assert closed == []  # the caller owns the transport

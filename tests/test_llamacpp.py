"""llama-server's specifics in the OpenAI backend (lib/servers/llamacpp.py), on scripted answers
shaped like the llama.cpp that llama-cpp-python 0.3.36 vendors; the live server is exercised in
tests/test_real_engine.py."""

from __future__ import annotations

import json

import httpx

from lib.config import Settings
from lib.servers import llamacpp
from lib.servers.openai import OpenAIBackend
from lib.servers.protocol import ChatRequest

HOST = "http://llama.test:8080"
MESSAGES = [{"role": "system", "content": "You are Folio."}, {"role": "user", "content": "Who pays?"}]
PROPS = {"default_generation_settings": {"n_ctx": 2048, "params": {"n_predict": -1}}, "total_slots": 1,
         "build_info": "b6900-0c1e570", "chat_template": "{{ messages }}", "model_path": "/m/smollm.gguf"}


def make_request(**changes) -> ChatRequest:
    fields = dict(model="smollm2", messages=MESSAGES, think=False, num_ctx=2048, num_keep=0, num_predict=64,
                  keep_alive="30m", temperature=0.7, top_p=0.8, top_k=20)
    fields.update(changes)
    return ChatRequest(**fields)


def sse(*chunks) -> bytes:
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode() + b"data: [DONE]\n\n"


class Proxied:
    """llama-server behind a proxy that rewrites /v1/models to plain OpenAI entries."""

    def __init__(self, stream: bytes = b""):
        self.stream = stream
        self.calls: list[tuple[str, dict | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.url.path, body))
        path = request.url.path
        if path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "smollm2", "object": "model"}]})
        if path == "/props":
            return httpx.Response(200, json=PROPS)
        if path == "/apply-template":
            return httpx.Response(200, json={"prompt": "<|im_start|>user\nWho pays?<|im_end|>\n"})
        if path == "/tokenize":
            return httpx.Response(200, json={"tokens": list(range(11))})
        if path == "/v1/chat/completions":
            return httpx.Response(200, content=self.stream, headers={"Content-Type": "text/event-stream"})
        return httpx.Response(404, json={"error": {"message": "File Not Found", "code": 404}})


def backend(server, **settings) -> OpenAIBackend:
    return OpenAIBackend(Settings(backend="openai", host=HOST, model="smollm2", **settings),
                         transport=httpx.MockTransport(server))


def test_llama_server_is_recognised_by_its_props_when_models_say_nothing():
    server = Proxied()
    b = backend(server, context=4096)
    info = b.check()
    assert b.flavour == "llama.cpp" and b.server == "llama.cpp server"
    assert info.version == "b6900-0c1e570"
    assert (info.trained_context, info.loaded_context) == (2048, 2048)
    assert any("holds 2,048 tokens, not the 4,096 configured" in w for w in info.warnings)
    assert [path for path, _ in server.calls].count("/props") == 1  # read once


def test_count_prompt_renders_and_tokenizes_on_the_server():
    server = Proxied()
    b = backend(server)
    assert b.count_prompt(make_request(think=True)) == 11
    bodies = dict(server.calls)
    assert bodies["/apply-template"] == {"messages": MESSAGES, "chat_template_kwargs": {"enable_thinking": True}}
    assert bodies["/tokenize"] == {"content": "<|im_start|>user\nWho pays?<|im_end|>\n", "add_special": True,
                                   "parse_special": True}


def test_timings_alone_give_the_prompt_count_cache_and_speeds():
    """Servers that send no usage in the stream (older llama-server) still report everything."""
    final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
             "timings": {"cache_n": 900, "prompt_n": 35, "prompt_ms": 420.5, "prompt_per_token_ms": 12.0,
                         "predicted_n": 12, "predicted_ms": 300.0}}
    events = list(backend(Proxied(sse({"choices": [{"index": 0, "delta": {"content": "The lessee."}}]}, final)))
                  .chat(make_request()))
    stats = events[-1].stats
    assert events[-1].kind == "done"
    assert (stats.prompt_eval_count, stats.cached_tokens, stats.eval_count) == (935, 900, 12)
    assert (stats.prompt_eval_duration_s, stats.eval_duration_s) == (0.4205, 0.3)
    assert stats.tokens_per_second == 40.0


def test_timings_win_over_usage_and_bad_values_are_ignored():
    assert llamacpp.timing_stats({"cache_n": 5, "prompt_n": 0, "predicted_n": 3}) == {
        "prompt_eval_count": 5, "cached_tokens": 5, "eval_count": 3}
    assert llamacpp.timing_stats({"cache_n": "5", "prompt_n": None, "prompt_ms": True, "predicted_ms": -1}) == {}
    assert llamacpp.timing_stats(None) == {}
    assert llamacpp.slot_context({"default_generation_settings": {"n_ctx": 0}}) is None
    assert not llamacpp.looks_like_props({"detail": "Not Found"})

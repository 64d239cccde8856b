"""Folio's OpenAI backend against llama-cpp-python's own server, replayed from a recording.

tests/recorded/llama_cpp_python.json holds real exchanges with `python -m llama_cpp.server`
(llama-cpp-python 0.3.36, SmolLM2-135M, n_ctx 512), made by
tests/recorded/record_llama_cpp_python.py. That server is no longer built for every test run
(it would add about five minutes of compiling to a fresh setup; the live engine is llama.cpp's
own llama-server, tests/test_real_engine.py), so this flavour is checked against what it
really answered: no context in /v1/models, no /props, no usage in its stream, the prompt
count from a one-token completion, and its refusal of a prompt longer than the context.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from lib.config import Settings
from lib.errors import PromptTooLong
from lib.servers.openai import OpenAIBackend
from lib.servers.protocol import ChatRequest

RECORDING = Path(__file__).resolve().parent / "recorded" / "llama_cpp_python.json"
HOST = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def recording() -> dict:
    return json.loads(RECORDING.read_text(encoding="utf-8"))


class Replay:
    """Answers each request with the recorded response to the same request (method, path and,
    for chat completions, the same messages and stream flag)."""

    def __init__(self, recording: dict):
        self.exchanges = recording["exchanges"]
        self.seen: list[tuple[str, str, dict | None]] = []

    def find(self, method: str, path: str, body: dict | None) -> dict:
        for item in self.exchanges:
            sent = item["request"]
            if (sent["method"], sent["path"]) != (method, path):
                continue
            if path == "/v1/chat/completions" and (
                sent["body"]["messages"] != body["messages"] or sent["body"]["stream"] != body["stream"]
                or sent["body"]["max_tokens"] != body["max_tokens"]
            ):
                continue
            return item["response"]
        raise AssertionError(f"Folio sent a request that was not recorded: {method} {path} {json.dumps(body)[:300]}")

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.seen.append((request.method, request.url.path, body))
        recorded = self.find(request.method, request.url.path, body)
        return httpx.Response(recorded["status"], content=recorded["body"].encode("utf-8"),
                              headers={"Content-Type": recorded["content_type"]})


def recorded_request(recording: dict, index: int) -> ChatRequest:
    """The ChatRequest whose streamed body is the recorded exchange `index`."""
    body = recording["exchanges"][index]["request"]["body"]
    return ChatRequest(model="smollm2", messages=body["messages"], think=False, num_ctx=recording["n_ctx"],
                       num_keep=0, num_predict=body["max_tokens"], keep_alive="30m",
                       temperature=body["temperature"], top_p=body["top_p"], top_k=body["top_k"],
                       seed=body.get("seed"))


def streamed(recording: dict) -> list[int]:
    return [i for i, item in enumerate(recording["exchanges"])
            if (item["request"]["body"] or {}).get("stream") is True]


def recorded_text(response: dict) -> str:
    text = []
    for line in response["body"].splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            for choice in json.loads(line[5:]).get("choices") or []:
                text.append((choice.get("delta") or {}).get("content") or "")
    return "".join(text)


def backend(replay: Replay, recording: dict) -> OpenAIBackend:
    settings = Settings(backend="openai", host=HOST, model="smollm2", context=recording["n_ctx"])
    return OpenAIBackend(settings, transport=httpx.MockTransport(replay))


def test_the_server_is_recognised_and_says_nothing_about_its_context(recording):
    replay = Replay(recording)
    b = backend(replay, recording)
    info = b.check()
    assert b.flavour == "llama-cpp-python" and b.server == "llama-cpp-python server"
    assert info.model.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")  # Folio's name mapped to the only model
    assert info.trained_context is None and info.loaded_context is None
    assert any("does not say how long its context is" in w for w in info.warnings)


def test_question_and_follow_up_counted_by_a_one_token_completion(recording):
    first, follow_up = streamed(recording)[:2]
    for index in (first, follow_up):
        replay = Replay(recording)
        b = backend(replay, recording)
        request = recorded_request(recording, index)
        counted = b.count_prompt(request)
        probe = json.loads(recording["exchanges"][index - 1]["response"]["body"])
        assert counted == probe["usage"]["prompt_tokens"] > 0

        events = list(b.chat(request))
        done = events[-1]
        assert done.kind == "done", done.reason
        assert "".join(e.text for e in events if e.kind == "content") == recorded_text(recording["exchanges"][index]["response"])
        # Its stream carries no usage: the count comes from the probe, asked once for both calls.
        assert done.stats.prompt_eval_count == counted
        assert done.stats.cached_tokens is None and done.stats.done_reason in ("stop", "length")
        probes = [body for method, path, body in replay.seen if path == "/v1/chat/completions" and not body["stream"]]
        assert len(probes) == 1 and probes[0]["max_tokens"] == 1


def test_the_follow_up_is_longer_than_the_first_question(recording):
    first, follow_up = streamed(recording)[:2]
    counts = [backend(Replay(recording), recording).count_prompt(recorded_request(recording, i)) for i in (first, follow_up)]
    assert counts[1] > counts[0]


def test_a_prompt_longer_than_the_context_is_refused_before_streaming(recording):
    too_long = streamed(recording)[2]
    b = backend(Replay(recording), recording)
    with pytest.raises(PromptTooLong) as info:
        list(b.chat(recorded_request(recording, too_long)))
    assert "maximum context length is 512 tokens" in str(info.value)
    # Unprobed, the server would have answered the stream with an empty 200 (recorded too):
    assert recording["exchanges"][too_long]["response"] == {
        "status": 200, "content_type": "text/event-stream; charset=utf-8", "body": ""}


def test_the_recording_says_how_it_was_made(recording):
    assert recording["server"].startswith("llama-cpp-python 0.3.36")
    assert recording["how"] == "tests/recorded/record_llama_cpp_python.py"
    assert (RECORDING.parent / "record_llama_cpp_python.py").exists()

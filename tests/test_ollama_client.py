"""OllamaBackend against the fake Ollama (a real HTTP server) and, for exact wire details, MockTransport."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from lib.config import Settings
from lib.errors import (
    ModelNotFound,
    PromptTooLong,
    ServerBusy,
    ServerCrashed,
    ServerTooOld,
    ServerUnreachable,
    ThinkingUnsupported,
)
from lib.reading.tokens import get_counter
from lib.servers.ollama import OllamaBackend, build_chat_body
from lib.servers.protocol import ChatRequest

from fake_ollama import FakeOllama, fake_ollama, render_qwen3  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = "You are Folio. Answer only from the documents."
DOCUMENT = "<documents>\n[kzt-1] The lessee shall pay the rent on the first day of each month.\n</documents>"


def make_request(question: str = "Who pays the rent?", **changes) -> ChatRequest:
    fields = dict(
        model="qwen3-128k:14b",
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{DOCUMENT}\n\nQuestion: {question}"},
        ],
        think=False,
        num_ctx=131072,
        num_keep=get_counter().count(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"),
        num_predict=4096,
        keep_alive="2h",
        temperature=0.7,
        top_p=0.8,
        top_k=20,
        min_p=0.0,
    )
    fields.update(changes)
    return ChatRequest(**fields)


def backend_for(fake: FakeOllama, **changes) -> OllamaBackend:
    return OllamaBackend(Settings(host=fake.url, **changes))


def collect(events) -> tuple[str, str, list]:
    events = list(events)
    thinking = "".join(e.text for e in events if e.kind == "thinking")
    content = "".join(e.text for e in events if e.kind == "content")
    return thinking, content, events


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- what Folio sends ---------------------------------------------------------------------

def test_every_field_is_sent_exactly(fake_ollama):
    request = make_request(think=True, temperature=0.6, top_p=0.95, seed=7)
    list(backend_for(fake_ollama).chat(request))
    body = fake_ollama.last_chat
    assert body == {
        "model": "qwen3-128k:14b",
        "messages": request.messages,
        "stream": True,
        "think": True,
        "keep_alive": "2h",
        "truncate": False,
        "shift": True,
        "options": {
            "num_ctx": 131072,
            "num_keep": request.num_keep,
            "num_predict": 4096,
            "temperature": 0.6,
            "top_p": 0.95,
            "top_k": 20,
            "min_p": 0.0,
            "seed": 7,
        },
    }
    assert fake_ollama.requests[-1].path == "/api/chat"  # never /v1/chat/completions


def test_think_false_is_sent_explicitly_and_seed_only_when_set():
    body = build_chat_body(make_request(think=False))
    assert body["think"] is False
    assert "seed" not in body["options"]


def test_num_keep_covers_exactly_the_rendered_system_block(fake_ollama):
    request = make_request()
    list(backend_for(fake_ollama).chat(request))
    prompt_ids = get_counter().encode(fake_ollama.last_prompt)
    block_ids = get_counter().encode(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n")
    assert prompt_ids[: request.num_keep] == block_ids
    assert get_counter().encode("<|im_end|>")[0] == prompt_ids[request.num_keep - 2]


def test_numeric_keep_alive_is_sent_as_a_number():
    assert build_chat_body(make_request(keep_alive="-1"))["keep_alive"] == -1
    assert build_chat_body(make_request(keep_alive="30m"))["keep_alive"] == "30m"


def test_same_num_ctx_and_shift_never_reload_the_model(fake_ollama):
    backend = backend_for(fake_ollama)
    for question in ("Who pays?", "When is it due?", "Where?"):
        list(backend.chat(make_request(question)))
    assert fake_ollama.loads == [("qwen3-128k:14b", 131072)]
    list(backend.chat(make_request(num_ctx=65536)))  # what Folio must never do
    assert len(fake_ollama.loads) == 2


def test_timeouts_come_from_settings(fake_ollama):
    backend = backend_for(fake_ollama, read_timeout=1234.0, connect_timeout=3.0)
    assert backend._client.timeout.read == 1234.0
    assert backend._client.timeout.connect == 3.0


# --- streaming ----------------------------------------------------------------------------

def test_thinking_and_content_stream_apart_then_done_with_stats(fake_ollama):
    fake_ollama.script(answer='It is "the lessee shall pay" [kzt-1].', thinking="Look at kzt-1 first.")
    thinking, content, events = collect(backend_for(fake_ollama).chat(make_request(think=True)))
    assert thinking == "Look at kzt-1 first."
    assert content == 'It is "the lessee shall pay" [kzt-1].'
    assert [e.kind for e in events].count("done") == 1 and events[-1].kind == "done"
    assert events.index(next(e for e in events if e.kind == "content")) > events.index(
        next(e for e in events if e.kind == "thinking"))
    stats = events[-1].stats
    assert stats.prompt_eval_count == fake_ollama.last_prompt_tokens
    assert stats.prompt_eval_count == get_counter().count(render_qwen3(make_request().messages, True))
    assert stats.done_reason == "stop"
    assert stats.eval_count >= len(events) - 1  # at least one token per streamed piece
    assert 0 <= stats.first_token_s <= stats.wall_s


def test_durations_are_converted_from_nanoseconds():
    lines = [
        {"message": {"role": "assistant", "content": "", "thinking": "hm"}, "done": False},
        {"message": {"role": "assistant", "content": "Yes."}, "done": False},
        {"message": {"role": "assistant", "content": " Done"}, "done": True, "done_reason": "length",
         "total_duration": 3_500_000_000, "load_duration": 250_000_000, "prompt_eval_count": 812,
         "prompt_eval_duration": 1_200_000_000, "eval_count": 40, "eval_duration": 2_000_000_000},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/chat"
        payload = "".join(json.dumps(line) + "\n" for line in lines)
        return httpx.Response(200, content=payload.encode(), headers={"Content-Type": "application/x-ndjson"})

    backend = OllamaBackend(Settings(host="http://ollama.test:11434"), transport=httpx.MockTransport(handler))
    thinking, content, events = collect(backend.chat(make_request()))
    assert (thinking, content) == ("hm", "Yes. Done")  # the final line may still carry content
    stats = events[-1].stats
    assert (stats.prompt_eval_count, stats.eval_count, stats.done_reason) == (812, 40, "length")
    assert stats.prompt_eval_duration_s == 1.2 and stats.eval_duration_s == 2.0
    assert stats.total_duration_s == 3.5 and stats.load_duration_s == 0.25
    assert stats.tokens_per_second == 20.0


@pytest.mark.parametrize("mode, words", [
    ("error", "reported an error mid-answer: CUDA error: out of memory"),
    ("no_done", "without saying the answer was finished"),
    ("drop", "dropped mid-answer"),
])
def test_interrupted_streams_keep_what_arrived(fake_ollama, mode, words):
    fake_ollama.script(answer="one two three four five six seven eight", thinking="")
    fake_ollama.interrupt_next(mode, after=2, error="CUDA error: out of memory")
    thinking, content, events = collect(backend_for(fake_ollama).chat(make_request()))
    assert content == "one two three four "
    assert [e.kind for e in events][-1] == "interrupted"
    assert not any(e.kind == "done" for e in events)
    assert words in events[-1].reason
    if mode == "error":
        assert "OLLAMA_KV_CACHE_TYPE=q8_0" in events[-1].reason


def test_cancel_between_lines_keeps_what_arrived(fake_ollama):
    fake_ollama.script(answer="alpha beta gamma delta epsilon zeta", thinking="")
    cancel = threading.Event()
    events = []
    for event in backend_for(fake_ollama).chat(make_request(), cancel=cancel):
        events.append(event)
        cancel.set()
    assert [e.kind for e in events] == ["content", "interrupted"]
    assert events[0].text == "alpha beta "
    assert "Stopped by you" in events[-1].reason


def test_silence_before_the_first_token_then_the_answer(fake_ollama):
    fake_ollama.script(answer="Late but complete.", thinking="")
    gate = fake_ollama.hold_next()
    events: list = []
    worker = threading.Thread(target=lambda: events.extend(backend_for(fake_ollama).chat(make_request())))
    worker.start()
    assert fake_ollama.wait_for(fake_ollama.holding.is_set)
    assert events == []  # nothing yet, and no timeout: silence is normal
    gate.set()
    worker.join(timeout=10)
    assert "".join(e.text for e in events if e.kind == "content") == "Late but complete."
    assert events[-1].kind == "done"


def test_cancel_during_the_silence_ends_at_once_and_hangs_up(fake_ollama):
    gate = fake_ollama.hold_next()
    cancel = threading.Event()
    events: list = []
    worker = threading.Thread(
        target=lambda: events.extend(backend_for(fake_ollama).chat(make_request(), cancel=cancel)))
    worker.start()
    assert fake_ollama.wait_for(fake_ollama.holding.is_set)
    cancel.set()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert [e.kind for e in events] == ["interrupted"]
    assert "before the model's first word" in events[0].reason
    # The server sees the client hang up, so it can stop reading the prompt.
    assert fake_ollama.wait_for(lambda: fake_ollama.disconnects == 1)
    gate.set()


# --- errors before streaming --------------------------------------------------------------

def test_unreachable_server_says_how_to_start_it():
    backend = OllamaBackend(Settings(host=f"http://127.0.0.1:{free_port()}", connect_timeout=2.0))
    with pytest.raises(ServerUnreachable) as info:
        list(backend.chat(make_request()))
    assert "Cannot reach Ollama at http://127.0.0.1:" in str(info.value)
    assert "ollama serve" in str(info.value) and "OLLAMA_HOST" in str(info.value)
    with pytest.raises(ServerUnreachable):
        backend.check()


def test_missing_model_says_how_to_build_it(fake_ollama):
    with pytest.raises(ModelNotFound) as info:
        list(backend_for(fake_ollama).chat(make_request(model="qwen3-128k:14b-missing")))
    assert "ollama create qwen3-128k:14b-missing -f Modelfile" in str(info.value)


def test_thinking_refused_by_a_model_without_the_capability(fake_ollama):
    with pytest.raises(ThinkingUnsupported) as info:
        list(backend_for(fake_ollama).chat(make_request(model="qwen2.5:7b", think=True)))
    assert "does not support thinking" in str(info.value)
    assert fake_ollama.last_chat["think"] is True
    _, content, events = collect(backend_for(fake_ollama).chat(make_request(model="qwen2.5:7b", think=False)))
    assert events[-1].kind == "done" and content


def test_prompt_too_long_is_refused_not_cut(fake_ollama):
    long_document = "<documents>\n" + "\n".join(f"[kzt-{i}] Clause {i} binds the lessee." for i in range(1, 400))
    request = make_request(messages=[{"role": "system", "content": SYSTEM},
                                     {"role": "user", "content": long_document + "\n</documents>\n\nQuestion: x"}],
                           num_ctx=512)
    with pytest.raises(PromptTooLong) as info:
        list(backend_for(fake_ollama).chat(request))
    assert "longer than the context length" in str(info.value)
    assert "python -m lib doctor" in str(info.value)


@pytest.mark.parametrize("status, error, kind, words", [
    (500, "llama runner process has terminated: exit status 2", ServerCrashed, "log"),
    (500, "llama runner process has terminated: CUDA error: out of memory", ServerCrashed, "OLLAMA_KV_CACHE_TYPE=q8_0"),
    (500, "unable to allocate CUDA0 buffer", ServerCrashed, "OLLAMA_NUM_PARALLEL=1"),
    (503, "server busy, please try again.  maximum pending requests exceeded", ServerBusy, "busy"),
    (404, "model 'qwen3-128k:14b' not found", ModelNotFound, "ollama create qwen3-128k:14b -f Modelfile"),
])
def test_http_errors_become_specific_messages(fake_ollama, status, error, kind, words):
    fake_ollama.fail_next(status=status, error=error)
    with pytest.raises(kind) as info:
        list(backend_for(fake_ollama).chat(make_request()))
    assert words in str(info.value)
    assert error in str(info.value)  # the server's own words are kept


def test_memory_advice_names_every_server_setting(fake_ollama):
    fake_ollama.fail_next(status=500, error="cudaMalloc failed: out of memory")
    with pytest.raises(ServerCrashed) as info:
        list(backend_for(fake_ollama).chat(make_request()))
    for setting in ("smaller context", "OLLAMA_KV_CACHE_TYPE=q8_0", "OLLAMA_FLASH_ATTENTION=1", "OLLAMA_NUM_PARALLEL=1"):
        assert setting in str(info.value)


# --- check() ------------------------------------------------------------------------------

def test_check_reads_version_capabilities_context_and_kv_geometry(fake_ollama):
    info = backend_for(fake_ollama).check()
    assert info.version == fake_ollama.version
    assert info.model_present and info.supports_thinking
    assert (info.trained_context, info.architecture) == (131072, "qwen3")
    assert (info.block_count, info.head_count_kv, info.key_length, info.value_length) == (40, 8, 128, 128)
    assert info.kv_bytes(131072, 2.0) == 20 * 2**30  # 20 GiB at f16
    assert sorted(info.installed_models) == sorted(fake_ollama.installed)
    assert info.loaded_context is None and info.warnings == []
    assert [r.path for r in fake_ollama.requests] == ["/api/version", "/api/show", "/api/tags", "/api/ps"]


def test_stock_qwen3_holds_40960_and_check_says_so(fake_ollama):
    backend = backend_for(fake_ollama, model="qwen3:14b", context=131072)
    info = backend.check()
    assert info.trained_context == 40960
    assert any("holds 40,960 tokens, not the 131,072 configured" in w for w in info.warnings)
    list(backend.chat(make_request(model="qwen3:14b", num_ctx=131072)))
    assert backend.inspect().loaded_context == 40960  # the server capped it


def test_too_old_server_is_refused_with_a_clear_message():
    with FakeOllama(version="0.11.4") as fake:
        with pytest.raises(ServerTooOld) as info:
            backend_for(fake).check()
    assert "0.11.4" in str(info.value) and "0.12.5 or newer" in str(info.value)


def test_a_build_from_source_reporting_0_0_0_is_accepted():
    with FakeOllama(version="0.0.0") as fake:
        assert backend_for(fake).check().version == "0.0.0"


def test_missing_model_check_raises_but_inspect_reports(fake_ollama):
    backend = backend_for(fake_ollama, model="qwen3-128k:14b-q8")
    with pytest.raises(ModelNotFound) as info:
        backend.check()
    assert "ollama create qwen3-128k:14b-q8 -f Modelfile" in str(info.value)
    report = backend.inspect()
    assert not report.model_present and report.installed_models


def test_count_prompt_is_none_because_ollama_cannot_tokenize(fake_ollama):
    assert backend_for(fake_ollama).count_prompt(make_request()) is None


def test_pull_reports_progress_and_installs(fake_ollama):
    fake_ollama.installed.discard("qwen3:14b")
    seen: list = []
    status = backend_for(fake_ollama).pull("qwen3:14b", lambda s, done, total: seen.append((s, done, total)))
    assert status == "success"
    assert seen[0][0] == "pulling manifest" and seen[-1][0] == "success"
    assert any(total and done == total for _, done, total in seen)
    assert "qwen3:14b" in fake_ollama.installed
    with pytest.raises(ModelNotFound):
        backend_for(fake_ollama).pull("nonexistent:1b")


# --- the fake itself behaves like Ollama --------------------------------------------------

def test_fake_truncates_like_ollama_when_truncate_is_not_false(fake_ollama):
    lines = "\n".join(f"[kzt-{i}] Clause {i} binds the lessee." for i in range(1, 400))
    body = {"model": "qwen3:14b", "stream": False, "options": {"num_ctx": 512, "num_keep": 20},
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": lines}]}
    with httpx.Client(base_url=fake_ollama.url) as client:
        final = client.post("/api/chat", json=body).json()  # stream:false: one object
    full = get_counter().count(render_qwen3(body["messages"], None))
    assert full > 512
    assert final["done"] and final["prompt_eval_count"] == 256  # about half of num_ctx, 200 OK
    assert final["message"]["content"]
    assert fake_ollama.last_truncated


def test_fake_prefix_cache_makes_follow_ups_cheap(fake_ollama):
    backend = backend_for(fake_ollama)
    first = list(backend.chat(make_request("Who pays?")))[-1].stats
    second = list(backend.chat(make_request("When?")))[-1].stats
    assert fake_ollama.last_cached > 0
    assert fake_ollama.last_cached == len(get_counter().encode(
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{DOCUMENT}\n\nQuestion:"))
    assert second.prompt_eval_duration_s < first.prompt_eval_duration_s


def test_fake_runs_standalone_on_a_given_port():
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_ollama.py"), "--port", str(port)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == f"Fake Ollama listening on http://127.0.0.1:{port}"
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "Ollama is running"
        assert httpx.get(f"http://127.0.0.1:{port}/api/version").json() == {"version": "0.13.0"}
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- the Modelfile --------------------------------------------------------------------------

def test_modelfile_builds_the_128k_model_folio_expects():
    text = (ROOT / "Modelfile").read_text()
    directives = [line.split(None, 2) for line in text.splitlines() if line and not line.startswith("#")]
    from_line = [d for d in directives if d[0] == "FROM"]
    assert len(from_line) == 1 and "128K" in from_line[0][1] and "Qwen3-14B" in from_line[0][1]
    parameters = {d[1]: d[2] for d in directives if d[0] == "PARAMETER" and d[1] != "stop"}
    assert parameters["num_ctx"] == "131072"
    assert (parameters["temperature"], parameters["top_p"], parameters["top_k"], parameters["min_p"]) == (
        "0.6", "0.95", "20", "0")
    assert "num_keep" not in parameters  # Folio sets it per request
    assert not any("rope" in name for name in parameters)  # removed from Modelfiles long ago
    assert "num_keep" in text and "40,960" in text  # the comments explain both
    # The template renders what Folio counts: /no_think on the last user turn, empty think block.
    assert '{{ else }} /no_think{{ end }}' in text and "<think>\n\n</think>\n\n" in text
    assert "<think>{{ .Thinking }}</think>" in text  # how Ollama infers the thinking capability

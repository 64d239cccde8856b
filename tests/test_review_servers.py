"""Constrained output as each server takes it, and a review over an OpenAI-compatible server
(vLLM's shape, through an httpx transport): response_format sent, a refusal of it answered by
asking again in free text, several documents in flight at once."""

from __future__ import annotations

import json
import threading

import httpx

from lib.asking.review import Column, create_table, load_table, run_table
from lib.config import Settings
from lib.library.store import Store
from lib.reading.ingest import ingest_bytes
from lib.servers.ollama import build_chat_body as ollama_body
from lib.servers.openai import OpenAIBackend, build_chat_body as openai_body
from lib.servers.protocol import ChatRequest

from review_fixtures import ReviewModel, judgment_text

SCHEMA = {"type": "object", "properties": {"A": {"type": "string"}}, "required": ["A"]}


def request(format=None) -> ChatRequest:
    return ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}], think=False, num_ctx=4096,
                       num_keep=10, num_predict=64, keep_alive="5m", temperature=0.7, top_p=0.8, top_k=20, format=format)


def test_ollama_sends_the_schema_as_format_only_when_given():
    assert ollama_body(request(SCHEMA))["format"] == SCHEMA
    assert "format" not in ollama_body(request())


def test_openai_compatible_servers_get_response_format_in_their_dialect():
    vllm = openai_body(request(SCHEMA), "m", "vllm")["response_format"]
    assert vllm == {"type": "json_schema", "json_schema": {"name": "folio_answer", "schema": SCHEMA, "strict": True}}
    assert openai_body(request(SCHEMA), "m", "llama-cpp-python")["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert "response_format" not in openai_body(request(), "m", "vllm")


class VllmLike:
    """A vLLM-shaped server as an httpx transport: /v1/models, /tokenize, streamed chat (SSE)."""

    def __init__(self, model: ReviewModel, *, refuse_format: bool = False, gate: threading.Barrier | None = None):
        self.model = model
        self.refuse_format = refuse_format
        self.gate = gate
        self.bodies: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, req: httpx.Request) -> httpx.Response:
        if req.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m", "owned_by": "vllm", "max_model_len": 32768}]})
        if req.url.path == "/version":
            return httpx.Response(200, json={"version": "0.9.0"})
        body = json.loads(req.content)
        if req.url.path == "/tokenize":
            return httpx.Response(200, json={"count": 100})
        with self.lock:
            self.bodies.append(body)
        if self.refuse_format and "response_format" in body:
            return httpx.Response(400, json={"error": {"message": "response_format json_schema is not supported"}})
        if self.gate is not None:
            self.gate.wait(10)  # every document of the batch must be in flight at once to pass
        prompt = "\n".join(m["content"] for m in body["messages"])
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
        text = self.model({"format": schema} if schema else {}, prompt)
        chunks = [{"choices": [{"delta": {"content": text}, "finish_reason": None}]},
                  {"choices": [{"delta": {}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 100, "completion_tokens": 20}}]
        sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, content=sse.encode(), headers={"content-type": "text/event-stream"})


def table_over(tmp_path, count: int):
    store = Store(tmp_path / "data")
    documents = []
    for number in range(count):
        data = judgment_text(number).encode()
        document = ingest_bytes(data, f"case-{number}.txt")
        store.add_document(document, data)
        documents.append(document)
    columns = [Column("Court", "Which court?"), Column("Damages", "What damages?", "number")]
    return store, create_table(store, "Matter", documents, columns)


def settings() -> Settings:
    return Settings(backend="openai", host="http://vllm.test", model="m", context=32768)


def test_review_over_vllm_sends_response_format_and_runs_documents_in_parallel(tmp_path):
    store, table = table_over(tmp_path, 4)
    server = VllmLike(ReviewModel(), gate=threading.Barrier(4))
    backend = OpenAIBackend(settings(), transport=httpx.MockTransport(server))
    report = run_table(store, table.id, settings(), backend=backend, concurrency=4)
    assert len(server.bodies) == 4 and len(report.calls) == 4  # the barrier let all four through together
    assert all(b["response_format"]["type"] == "json_schema" for b in server.bodies)
    assert all(b["response_format"]["json_schema"]["schema"]["required"] == ["Court", "Damages"] for b in server.bodies)
    cells = load_table(store, table.id).cells.values()
    assert len(cells) == 8 and all(c.status == "answered" and c.verified for c in cells)


def test_a_server_refusing_constrained_output_is_asked_in_free_text(tmp_path):
    store, table = table_over(tmp_path, 2)
    server = VllmLike(ReviewModel(), refuse_format=True)
    backend = OpenAIBackend(settings(), transport=httpx.MockTransport(server))
    report = run_table(store, table.id, settings(), backend=backend, concurrency=1)
    with_format = [b for b in server.bodies if "response_format" in b]
    assert len(with_format) == 1  # refused once; the rest of the run asks without it
    assert len(server.bodies) == 3
    assert [c["constrained"] for c in report.calls] == [False, False]
    assert any("refused constrained output" in w for w in report.warnings)
    assert all(c.status == "answered" for c in load_table(store, table.id).cells.values())


def test_concurrency_defaults_by_server_kind_and_setting(monkeypatch):
    from lib.asking.review import concurrency_for
    from lib.config import load_settings

    assert concurrency_for(Settings()) == 1  # Ollama: one at a time unless raised
    assert concurrency_for(Settings(backend="openai"), None, "vllm") == 4
    assert concurrency_for(Settings(backend="openai"), None, "llama-cpp-python") == 1
    from lib.servers.protocol import ServerInfo

    slots = ServerInfo(backend="openai", host="http://127.0.0.1:8080", kind="llama.cpp", parallel_slots=2)
    assert concurrency_for(Settings(backend="openai"), None, slots) == 2  # llama-server: its slots
    monkeypatch.setenv("FOLIO_CONCURRENCY", "3")
    assert concurrency_for(load_settings()) == 3
    assert concurrency_for(load_settings(), 2) == 2

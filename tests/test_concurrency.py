"""One rule for how many calls go to a server at once (plans and review tables): by server kind."""

from __future__ import annotations

import httpx
import pytest

from lib.asking.plan import default_concurrency as plan_concurrency
from lib.config import Settings, load_settings
from lib.errors import InputError
from lib.servers import make_backend
from lib.servers.concurrency import concurrency_and_reason, default_concurrency
from lib.servers.protocol import ServerInfo


def info(kind: str, backend: str = "openai", slots: int | None = None) -> ServerInfo:
    return ServerInfo(backend=backend, host="http://h", kind=kind, parallel_slots=slots)


@pytest.mark.parametrize("kind, backend, slots, expected", [
    ("ollama", "ollama", None, 1),
    ("vllm", "openai", None, 4),
    ("openai", "openai", None, 4),
    ("llama.cpp", "openai", 3, 3),
    ("llama.cpp", "openai", None, 1),
    ("llama-cpp-python", "openai", None, 1),
])
def test_calls_at_once_follow_the_server_kind(kind, backend, slots, expected):
    settings = Settings(backend=backend)
    assert default_concurrency(settings, info(kind, backend, slots)) == expected
    assert plan_concurrency(settings, info(kind, backend, slots)) == expected  # the plan uses the same rule
    n, why = concurrency_and_reason(settings, info(kind, backend, slots))
    assert n == expected and why


def test_without_asking_the_server_the_backend_decides():
    assert default_concurrency(Settings(backend="ollama")) == 1
    assert default_concurrency(Settings(backend="openai")) == 4


def test_folio_concurrency_and_an_explicit_value_win(monkeypatch):
    monkeypatch.setenv("FOLIO_CONCURRENCY", "3")
    settings = load_settings(backend="openai")
    assert concurrency_and_reason(settings, info("llama-cpp-python")) == (3, "FOLIO_CONCURRENCY")
    assert default_concurrency(settings, info("vllm"), wanted=2) == 2
    with pytest.raises(InputError, match="not a positive number"):
        default_concurrency(settings, wanted=0)


def test_llama_server_slots_come_from_its_props():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "smollm2.gguf", "object": "model",
                                                                          "owned_by": "llamacpp"}]})
        if request.url.path == "/props":
            return httpx.Response(200, json={"default_generation_settings": {"n_ctx": 8192}, "total_slots": 3,
                                             "build_info": "b1-abc"})
        return httpx.Response(404, json={"error": "no"})

    settings = Settings(backend="openai", host="http://127.0.0.1:9", model="smollm2.gguf")
    backend = make_backend(settings, transport=httpx.MockTransport(handler))
    found = backend.inspect()
    assert found.kind == "llama.cpp" and found.parallel_slots == 3
    assert found.to_json()["parallel_slots"] == 3
    assert default_concurrency(settings, found) == 3

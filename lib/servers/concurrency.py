"""How many calls to send a server at once, by what the server is.

    n = default_concurrency(settings, info)              # FOLIO_CONCURRENCY, else by server kind
    n, why = concurrency_and_reason(settings, info)      # with the reason, for a plan or a table

The one rule for every kind of long work that sends calls side by side (a plan's reading
calls, a review table's documents):

- Ollama: 1. It serves OLLAMA_NUM_PARALLEL requests per model (1 unless set where Ollama
  runs); more requests only wait in its queue. Raise FOLIO_CONCURRENCY with it.
- vLLM and other OpenAI-compatible servers: 4. They batch requests on the GPU.
- llama.cpp's own server (llama-server): its slot count (`total_slots` of GET /props, the
  --parallel it was started with); 1 when it does not say.
- llama-cpp-python's server: 1. A second request interrupts the answer in progress.

FOLIO_CONCURRENCY (or an explicit value: --concurrency) wins over all of these.
"""

from __future__ import annotations

from ..config import Settings
from ..errors import InputError
from .protocol import ServerInfo

BY_KIND = {"ollama": 1, "vllm": 4, "openai": 4, "llama.cpp": 1, "llama-cpp-python": 1}
"""Calls at once when nothing else says (llama.cpp: when /props gives no slot count)."""
WHY = {
    "ollama": "Ollama answers one request at a time per model unless OLLAMA_NUM_PARALLEL is raised",
    "vllm": "vLLM serves many requests side by side",
    "openai": "an OpenAI-compatible server usually serves several requests side by side",
    "llama.cpp": "llama.cpp's server has {n} slot(s)",
    "llama-cpp-python": "llama-cpp-python's server interrupts an answer when another request arrives",
}


def default_concurrency(settings: Settings, info: ServerInfo | None = None, wanted: int | None = None) -> int:
    """Calls in flight at once: `wanted`, else FOLIO_CONCURRENCY, else by server kind (see above)."""
    return concurrency_and_reason(settings, info, wanted)[0]


def concurrency_and_reason(settings: Settings, info: ServerInfo | None = None,
                           wanted: int | None = None) -> tuple[int, str]:
    """(calls at once, why: a few words a person reads next to the number)."""
    if wanted is not None:
        if int(wanted) < 1:
            raise InputError(f"Concurrency {wanted} is not a positive number of calls.")
        return int(wanted), "as asked"
    configured = int(getattr(settings, "concurrency", 0) or 0)
    if configured > 0:
        return configured, "FOLIO_CONCURRENCY"
    kind = server_kind(settings, info)
    if kind == "llama.cpp" and info is not None and info.parallel_slots:
        return int(info.parallel_slots), WHY[kind].format(n=info.parallel_slots)
    n = BY_KIND.get(kind, 1)
    return n, WHY.get(kind, WHY["openai"]).format(n=n)


def server_kind(settings: Settings, info: ServerInfo | None = None) -> str:
    """'ollama', 'vllm', 'llama.cpp', 'llama-cpp-python' or 'openai' (unknown OpenAI-compatible)."""
    if info is not None and info.kind:
        return info.kind
    return "ollama" if settings.backend == "ollama" else "openai"


__all__ = ["BY_KIND", "default_concurrency", "concurrency_and_reason", "server_kind"]

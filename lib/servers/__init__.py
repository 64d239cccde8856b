"""servers: talking to the model server over HTTP, exactly as it speaks.

Owns the backend protocol and its types (`protocol.py`: ChatRequest, StreamEvent,
CallStats, ServerInfo), the plumbing both clients share (`base.py`: HTTP clients, error
classification, the streaming reader, the real context), the clients themselves
(`ollama.py`: native /api/chat; `openai.py`: vLLM, llama.cpp and other OpenAI-compatible
servers), and the doctor (`doctor.py`: what the server and model can really do).

    backend = make_backend(settings)        # 'ollama' -> OllamaBackend, 'openai' -> OpenAIBackend
    info = backend.check(cancel)            # raises ServerUnreachable / NotAModelServer / ServerTooOld /
                                            # ModelNotFound; remembered until backend.forget()
    for event in backend.chat(request, cancel):   # thinking | content ... then done | interrupted
        ...

One backend keeps one HTTP client for its whole life; `cancel` is a threading.Event or a
lib.servers.exchange.Watch (Stop, the moment asked, the idle and total limits).

May import: the shared ground (lib.config, lib.errors, lib.documents). Never the
reading, library, asking, output or cli stages: a server knows requests, not documents.
The factory lives here, above the clients, so no client needs to import it.
"""

from __future__ import annotations

import httpx

from ..config import Settings
from ..errors import InputError
from .base import context_warning, real_context
from .ollama import OllamaBackend
from .openai import OpenAIBackend

BACKENDS = ("ollama", "openai")


def make_backend(settings: Settings, *, transport: httpx.BaseTransport | None = None):
    """The backend named by settings.backend ('ollama' or 'openai')."""
    if settings.backend == "ollama":
        return OllamaBackend(settings, transport=transport)
    if settings.backend == "openai":
        return OpenAIBackend(settings, transport=transport)
    raise InputError(
        f"Unknown backend {settings.backend!r}. Use 'ollama' (a local Ollama) or 'openai' "
        "(vLLM, llama.cpp's server): --backend or FOLIO_BACKEND."
    )


__all__ = ["BACKENDS", "make_backend", "real_context", "context_warning", "OllamaBackend", "OpenAIBackend"]

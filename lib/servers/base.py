"""The HTTP plumbing both model backends share (lib/servers/ollama.py, lib/servers/openai.py).

Clients, error classification, the real context, and the streaming reader. The factory
that picks a backend (`make_backend`) lives in the package's __init__, above the clients.

The streaming reader (`StreamPump`) runs the HTTP exchange in a worker thread, so a user's
cancel is honoured at once, even while the server is silently reading a long prompt, and the
connection is shut down so the server stops working on an answer nobody will read.
"""

from __future__ import annotations

import ipaddress
import json
import queue
import socket
import threading
import time
from typing import Callable
from urllib.parse import urlsplit

import httpx

from ..config import Settings
from ..errors import (
    ModelNotFound,
    PromptTooLong,
    ServerBusy,
    ServerCrashed,
    ServerError,
    ServerUnreachable,
    ThinkingUnsupported,
)
from .protocol import CallStats, ServerInfo, StreamEvent

# Text of server errors that mean the GPU/CPU ran out of memory (Ollama, llama.cpp, CUDA, Metal).
MEMORY_MARKERS = (
    "out of memory",
    "cuda error",
    "unable to allocate",
    "failed to allocate",
    "insufficient memory",
    "requires more system memory",
    "cudamalloc failed",
)
TOO_LONG_MARKERS = (
    "longer than the context",
    "exceeds the available context",
    "exceeds the context",
    "exceeds maximum context",
    "maximum context length",
    "input length exceeds",
    "context length exceeded",
    "context_length_exceeded",
    "too many tokens",
    "exceed context window",
)

POLL_S = 0.05
"""How often a waiting stream looks at the cancel flag."""


# --- context and memory -------------------------------------------------------------------

def real_context(configured: int, trained: int | None) -> int:
    """The budget a call can really use: min(configured, trained), configured if trained is unknown."""
    return min(configured, trained) if trained else configured


OLLAMA_CONTEXT_ADVICE = "build the 128k model from the Modelfile (README)"


def context_warning(model: str, configured: int, trained: int | None,
                    advice: str = OLLAMA_CONTEXT_ADVICE) -> str | None:
    """Plain words when the model cannot hold the configured context; None when it can."""
    if not trained or trained >= configured:
        return None
    return (
        f"The model {model} holds {trained:,} tokens, not the {configured:,} configured: "
        f"Folio will use {trained:,}. To get {configured:,}, {advice}."
    )


# --- HTTP clients -------------------------------------------------------------------------

def is_loopback(url: str) -> bool:
    """True for 127.0.0.1, ::1 and localhost: such hosts never go through a proxy."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Borrowed(httpx.BaseTransport):
    """An injected transport (tests, custom TLS) used by several clients: the caller owns it,
    so closing one per-request client must not close it for the others."""

    def __init__(self, transport: httpx.BaseTransport):
        self._transport = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._transport.handle_request(request)

    def close(self) -> None:
        pass


def make_http_client(
    settings: Settings,
    transport: httpx.BaseTransport | None = None,
    headers: dict | None = None,
) -> httpx.Client:
    """An httpx client with Folio's timeouts: a short connect, a long read (prefill is silent)."""
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=max(60.0, settings.connect_timeout),
        pool=settings.connect_timeout,
    )
    # A proxy configured for the internet must not swallow requests to a local server.
    return httpx.Client(
        base_url=settings.host.rstrip("/"),
        timeout=timeout,
        transport=_Borrowed(transport) if transport is not None else None,
        headers=headers or {},
        trust_env=not is_loopback(settings.host),
    )


def error_text(response: httpx.Response) -> str:
    """The server's own error message: the JSON 'error' (string or {'message'}) or the body."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500]
    return error_from_json(data) or response.text.strip()[:500]


def error_from_json(data) -> str:
    """'error' of an Ollama or OpenAI-style error object, '' when there is none."""
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)
    if error:
        return str(error)
    if data.get("object") == "error" and data.get("message"):
        return str(data["message"])  # vLLM's error shape
    return ""


def memory_advice(text: str, server: str = "Ollama") -> str | None:
    """What to do when an error text says the model ran out of memory; None otherwise."""
    low = text.lower()
    if not any(marker in low for marker in MEMORY_MARKERS):
        return None
    if server == "Ollama":
        return (
            "The model ran out of memory. Use a smaller context (--context or FOLIO_CONTEXT), "
            "or start Ollama with OLLAMA_KV_CACHE_TYPE=q8_0 (half the KV memory), "
            "OLLAMA_FLASH_ATTENTION=1 and OLLAMA_NUM_PARALLEL=1, then ask again."
        )
    return (
        "The model ran out of memory. Use a smaller context (--context or FOLIO_CONTEXT) or give "
        "the server more memory (vLLM: --gpu-memory-utilization, --kv-cache-dtype fp8; "
        "llama.cpp: --cache-type-k q8_0 --cache-type-v q8_0 --flash-attn), then ask again."
    )


def is_too_long(text: str) -> bool:
    low = text.lower()
    return any(marker in low for marker in TOO_LONG_MARKERS)


def classify_http_error(
    status: int,
    text: str,
    *,
    server: str,
    host: str,
    model: str,
    model_hint: str,
) -> ServerError:
    """The specific ServerError for an HTTP error answered before any streaming."""
    low = text.lower()
    said = f" (the server said: {text})" if text else ""
    if "does not support thinking" in low:
        return ThinkingUnsupported(
            f"Model '{model}' cannot think{said}. Ask without thinking (--no-think, or untick "
            "'Thinking') or use a model that can, such as Qwen3."
        )
    if status == 404 or ("model" in low and ("not found" in low or "does not exist" in low)):
        return ModelNotFound(f"{model_hint} ({server} at {host} said: {text or status})")
    if is_too_long(text):
        return PromptTooLong(
            f"{server} refused the prompt as longer than the model's context{said}. Folio counts "
            "before sending, so the server's context is smaller than Folio thinks: run "
            "`python -m lib doctor`, then select fewer documents or set a smaller --context."
        )
    if status in (401, 403):
        return ServerError(
            f"{server} at {host} refused Folio's credentials (HTTP {status}){said}. "
            "Set the server's API key in FOLIO_API_KEY."
        )
    if status in (429, 503):
        return ServerBusy(
            f"{server} at {host} is busy (HTTP {status}){said}. Wait for the other requests to "
            "finish and ask again" + (" (or raise OLLAMA_MAX_QUEUE)." if server == "Ollama" else ".")
        )
    advice = memory_advice(text, server)
    if advice:
        return ServerCrashed(f"{server} could not run model '{model}'{said}. {advice}")
    if status >= 500:
        return ServerCrashed(
            f"{server} failed while running model '{model}' (HTTP {status}){said}. The model "
            "runner may have crashed: look at the server's log, then ask again."
        )
    return ServerError(f"{server} at {host} answered HTTP {status}{said}.")


def unreachable(server: str, host: str, exc: Exception, how_to_start: str) -> ServerUnreachable:
    return ServerUnreachable(f"Cannot reach {server} at {host} ({exc.__class__.__name__}). {how_to_start}")


# --- streaming ----------------------------------------------------------------------------

class StreamPump:
    """One streaming HTTP request read line by line in a worker thread.

    The consumer calls `events(cancel)` and gets ('open', status, error_text),
    ('line', text) ..., then ('end', None) or ('exc', exception) or ('cancel', None).
    `abort()` shuts the socket down, which ends a blocked read at once.
    """

    def __init__(self, client: httpx.Client, method: str, path: str, body: dict):
        self._client = client
        self._method = method
        self._path = path
        self._body = body
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._run, name="folio-stream", daemon=True)

    def _trace(self, name: str, info: dict) -> None:
        # Keep the raw socket: shutting it down is the only way to end a blocked read.
        if name.endswith("connect_tcp.complete"):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                self._sockets.append(sock)

    def _run(self) -> None:
        try:
            with self._client.stream(
                self._method, self._path, json=self._body, extensions={"trace": self._trace}
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    self._queue.put(("open", response.status_code, error_text(response)))
                    return
                self._queue.put(("open", response.status_code, ""))
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    self._queue.put(("line", line))
            self._queue.put(("end", None))
        except Exception as exc:  # handed to the consumer, which translates it
            self._queue.put(("exc", exc))
        finally:
            self._client.close()

    def start(self) -> "StreamPump":
        self._thread.start()
        return self

    def next(self, cancel: threading.Event | None) -> tuple:
        """The next item, or ('cancel', None) as soon as `cancel` is set."""
        while True:
            if cancel is not None and cancel.is_set():
                return ("cancel", None)
            try:
                return self._queue.get(timeout=POLL_S)
            except queue.Empty:
                continue

    def abort(self) -> None:
        """Stop reading and drop the connection (the server then stops generating)."""
        self._stop.set()
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class StreamTimer:
    """First-token and wall-clock times of one call, measured by Folio."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.first_token_s: float | None = None

    def mark_token(self) -> None:
        if self.first_token_s is None:
            self.first_token_s = round(time.monotonic() - self.started, 4)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 4)

    def partial_stats(self) -> CallStats:
        return CallStats(first_token_s=self.first_token_s, wall_s=self.elapsed())


def interrupted(timer: StreamTimer, reason: str, stats: CallStats | None = None) -> StreamEvent:
    stats = stats or timer.partial_stats()
    stats.first_token_s = timer.first_token_s
    stats.wall_s = timer.elapsed()
    return StreamEvent(kind="interrupted", reason=reason, stats=stats)


def cancel_reason(timer: StreamTimer) -> str:
    if timer.first_token_s is None:
        return f"Stopped by you after {timer.elapsed():.1f} s, before the model's first word."
    return "Stopped by you; the part that arrived is kept."


def drop_reason(server: str, exc: Exception) -> str:
    if isinstance(exc, httpx.ReadTimeout):
        return (
            f"{server} went silent mid-answer for longer than the read timeout; the part that "
            "arrived is kept. Raise FOLIO_READ_TIMEOUT if the server is slow, then ask again."
        )
    return (
        f"The connection to {server} dropped mid-answer ({exc.__class__.__name__}: {exc}); the part "
        "that arrived is kept. Check that the server is still running, then ask again."
    )


def no_done_reason(server: str) -> str:
    return (
        f"{server} ended the stream without saying the answer was finished; the part that "
        "arrived is kept. Ask again (the server may have been restarted or unloaded the model)."
    )


def mid_stream_error_reason(server: str, text: str) -> str:
    advice = memory_advice(text, server)
    reason = f"{server} reported an error mid-answer: {text}. The part that arrived is kept."
    return f"{reason} {advice}" if advice else f"{reason} Ask again."


def silence_error(server: str, settings: Settings) -> ServerBusy:
    return ServerBusy(
        f"{server} at {settings.host} sent nothing for {settings.read_timeout:.0f} s. It may still be "
        "reading a very long prompt on a slow machine, or be stuck: raise FOLIO_READ_TIMEOUT, or "
        "check the server, then ask again."
    )


def parse_json_line(line: str) -> dict | None:
    """One NDJSON line as a dict, None when it is not a JSON object."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def ns_to_s(value) -> float | None:
    return round(value / 1e9, 6) if isinstance(value, (int, float)) and value else None


def empty_info(settings: Settings) -> ServerInfo:
    return ServerInfo(backend=settings.backend, host=settings.host, model=settings.model)


ProgressFn = Callable[[str, int, int | None], None]
__all__ = [
    "real_context",
    "context_warning",
    "make_http_client",
    "classify_http_error",
    "StreamPump",
    "StreamTimer",
    "ProgressFn",
]

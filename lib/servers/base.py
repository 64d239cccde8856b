"""The HTTP plumbing both model backends share (lib/servers/ollama.py, lib/servers/openai.py).

Clients, error classification, the real context, and the streaming reader. The factory
that picks a backend (`make_backend`) lives in the package's __init__, above the clients.

Every exchange runs in a worker thread (lib/servers/exchange.py: `StreamPump`, `fetch`), so
Stop is honoured at once, even while the server is silently reading a long prompt, and the
connection is shut down so the server stops working on an answer nobody will read. Each
backend keeps one HTTP client for its whole life (its TLS context is built once).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import ssl
import time
from typing import Callable
from urllib.parse import urlsplit

import httpx

from ..config import Settings
from ..errors import (
    ModelNotFound,
    NotAModelServer,
    PromptTooLong,
    ServerBusy,
    ServerCrashed,
    ServerError,
    ServerUnreachable,
    ThinkingUnsupported,
)
from .exchange import POLL_S, StreamPump, Watch, error_from_json, error_text_of  # noqa: F401 (re-exported)
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

# --- context and memory -------------------------------------------------------------------

def real_context(configured: int, trained: int | None) -> int:
    """The budget a call can really use: min(configured, trained), configured if trained is unknown."""
    return min(configured, trained) if trained else configured


OLLAMA_CONTEXT_ADVICE = "build the 128k model from the Modelfile (README)"
OPENAI_CONTEXT_ADVICE = "start the server with a longer context (README)"


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
    """An injected transport (tests, custom TLS): the caller owns it, so closing a backend's
    client must not close it for the others."""

    def __init__(self, transport: httpx.BaseTransport):
        self._transport = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._transport.handle_request(request)

    def close(self) -> None:
        pass


@functools.cache
def _tls_context(trust_env: bool) -> ssl.SSLContext:
    """The certificate store, loaded once per process (it costs some 20 ms of CPU each time)."""
    return httpx.create_ssl_context(trust_env=trust_env)


@functools.cache
def _no_tls_context() -> ssl.SSLContext:
    """For a plain-http server on this machine, which never speaks TLS: a context with no
    certificates at all, so any TLS would fail verification rather than pass unchecked."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def make_http_client(
    settings: Settings,
    transport: httpx.BaseTransport | None = None,
    headers: dict | None = None,
) -> httpx.Client:
    """An httpx client with Folio's timeouts: a short connect, a long read (prefill is silent).

    It keeps no idle connections: every request connects anew (a fraction of a millisecond to a
    local server), so each exchange owns its socket and Stop can shut exactly that one down.
    """
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=max(60.0, settings.connect_timeout),
        pool=settings.connect_timeout,
    )
    loopback = is_loopback(settings.host)
    plain_local = loopback and settings.host.lower().startswith("http://")
    # A proxy configured for the internet must not swallow requests to a local server.
    return httpx.Client(
        base_url=settings.host.rstrip("/"),
        timeout=timeout,
        transport=_Borrowed(transport) if transport is not None else None,
        headers=headers or {},
        trust_env=not loopback,
        verify=_no_tls_context() if plain_local else _tls_context(not loopback),
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def error_text(response: httpx.Response) -> str:
    """The server's own error message: the JSON 'error' (string or {'message'}) or the body."""
    return error_text_of(response.content)


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

class StreamTimer:
    """Times of one call, measured from the moment the user asked (the watch's start), and
    what has arrived so far (for the idle limit and the answer-size limit)."""

    def __init__(self, watch: Watch | None = None) -> None:
        self.watch = watch if watch is not None else Watch()
        self.started = self.watch.started
        self.sent = time.monotonic()
        """When this request left (the question may have spent time before: check, count)."""
        self.first_token_s: float | None = None
        self.last_text = self.sent
        self.chars = 0
        self.empty_lines = 0
        """Lines without text since the last text (keep-alives)."""

    def mark_token(self, size: int = 0) -> None:
        now = time.monotonic()
        if self.first_token_s is None:
            self.first_token_s = round(now - self.started, 4)
        self.last_text = now
        self.chars += size
        self.empty_lines = 0

    def mark_empty(self) -> None:
        self.empty_lines += 1

    @property
    def got_text(self) -> bool:
        return self.first_token_s is not None

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 4)

    @property
    def sent_s(self) -> float:
        return round(self.sent - self.started, 4)

    def partial_stats(self) -> CallStats:
        return CallStats(first_token_s=self.first_token_s, wall_s=self.elapsed(), sent_s=self.sent_s)


def interrupted(timer: StreamTimer, reason: str, stats: CallStats | None = None) -> StreamEvent:
    stats = stats or timer.partial_stats()
    stats.first_token_s = timer.first_token_s
    stats.wall_s = timer.elapsed()
    stats.sent_s = timer.sent_s
    return StreamEvent(kind="interrupted", reason=reason, stats=stats)


def kept(timer: StreamTimer) -> str:
    """What became of the answer, said truthfully: kept, or nothing had arrived."""
    if timer.got_text:
        return "the part that arrived is kept"
    return "no part of an answer had arrived"


def cancel_reason(timer: StreamTimer) -> str:
    if not timer.got_text:
        return f"Stopped by you after {timer.elapsed():.1f} s, before the model's first word."
    return "Stopped by you; the part that arrived is kept."


def drop_reason(server: str, exc: Exception, timer: StreamTimer | None = None) -> str:
    what = kept(timer) if timer is not None else "the part that arrived is kept"
    if isinstance(exc, httpx.ReadTimeout):
        return (
            f"{server} sent nothing at all for longer than the idle limit; {what}. Raise it "
            "(--read-timeout, FOLIO_READ_TIMEOUT) if the server is slow, then ask again."
        )
    return (
        f"The connection to {server} dropped mid-answer ({exc.__class__.__name__}: {exc}); {what}. "
        "Check that the server is still running, then ask again."
    )


def no_done_reason(server: str, timer: StreamTimer | None = None) -> str:
    what = kept(timer) if timer is not None else "the part that arrived is kept"
    return (
        f"{server} ended the stream without saying the answer was finished; {what}. "
        "Ask again (the server may have been restarted or unloaded the model)."
    )


def mid_stream_error_reason(server: str, text: str, timer: StreamTimer | None = None) -> str:
    advice = memory_advice(text, server)
    what = kept(timer) if timer is not None else "the part that arrived is kept"
    reason = f"{server} reported an error mid-answer: {text}. {what[0].upper()}{what[1:]}."
    return f"{reason} {advice}" if advice else f"{reason} Ask again."


IDLE_ADVICE = ("raise the idle limit (--read-timeout, FOLIO_READ_TIMEOUT, or 'Seconds without new text' "
               "on the Settings page)")


def idle_reason(server: str, timer: StreamTimer) -> str:
    """Why an answer ended at the idle limit, saying what the server really did."""
    limit = timer.watch.idle_s or 0
    sent = ("sent only empty keep-alive lines" if timer.empty_lines else "sent nothing")
    if not timer.got_text:
        return (
            f"{server} {sent} for {limit:.0f} s and no part of an answer arrived; Folio stopped "
            f"waiting after {timer.elapsed():.0f} s. It may still be reading a very long prompt on a slow "
            f"machine, or be stuck: check the server, or {IDLE_ADVICE}, then ask again."
        )
    return (
        f"{server} {sent} for {limit:.0f} s in the middle of the answer; the part that arrived is kept "
        f"({timer.chars:,} characters). Check the server, or {IDLE_ADVICE}, then ask again."
    )


def total_reason(timer: StreamTimer) -> str:
    watch = timer.watch
    return (
        f"The question took longer than the {watch.total_s:.0f} s allowed; Folio stopped it and "
        f"{kept(timer)}. Raise the total limit (--timeout, FOLIO_TOTAL_TIMEOUT, or 'Longest a question "
        "may take' on the Settings page; 0 means no limit) if the server is slow, then ask again."
    )


def too_long_line_reason(server: str, limit: int, timer: StreamTimer) -> str:
    return (
        f"{server} sent a single line of more than {limit / 2**20:.0f} MB (an answer streams a few words "
        f"per line): it is not answering normally, so Folio stopped reading; {kept(timer)}. Check the "
        "server, then ask again."
    )


def answer_limit(num_predict: int) -> int:
    """Most characters of thinking and answer Folio reads for one call: far above what
    `num_predict` tokens can hold (a token is about 4 characters, rarely more than 16)."""
    return max(ANSWER_MIN_CHARS, 64 * max(int(num_predict or 0), 0))


ANSWER_MIN_CHARS = 1 << 20


def oversize_reason(server: str, limit: int, num_predict: int) -> str:
    return (
        f"{server} sent more than {limit:,} characters, far more than the {num_predict:,} tokens reserved "
        f"for the answer can hold: it is not answering normally, so Folio stopped reading. The first "
        f"{limit:,} characters are kept. Check the server, then ask again."
    )


def text_within(timer: StreamTimer, text: str, limit: int) -> tuple[str, bool]:
    """The part of `text` that fits under the answer limit, and whether the limit was reached."""
    room = limit - timer.chars
    if len(text) <= room:
        return text, False
    return text[: max(room, 0)], True


def stream_limit_reason(server: str, item: tuple, timer: StreamTimer) -> str:
    """Why the reading of a stream ended for an exchange item 'timeout' or 'too_long'."""
    if item[0] == "too_long":
        return too_long_line_reason(server, item[1], timer)
    if item[1] == "total":
        return total_reason(timer)
    return idle_reason(server, timer)


def idle_since(timer: StreamTimer) -> float:
    return timer.last_text


def silence_error(server: str, settings: Settings) -> ServerBusy:
    return ServerBusy(
        f"{server} at {settings.host} sent nothing for too long. It may still be reading a very long "
        "prompt on a slow machine, or be stuck: raise the idle limit (--read-timeout, "
        "FOLIO_READ_TIMEOUT), or check the server, then ask again."
    )


# --- answers that are not a model server's ------------------------------------------------

def describe_body(body: bytes, content_type: str = "") -> str:
    """What came back instead of the expected JSON, in a few words."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return "an empty answer"
    if "html" in content_type.lower() or text[:1] == "<":
        return "an HTML page"
    try:
        data = json.loads(text)
    except ValueError:
        snippet = " ".join(text.split())[:60]
        return f"plain text ({snippet!r})"
    if isinstance(data, list):
        return "a JSON list"
    if isinstance(data, dict):
        return "JSON without the fields it should have"
    return f"a bare JSON {type(data).__name__}"


def not_a_server(kind: str, host: str, path: str, got: str) -> NotAModelServer:
    """The error for an address whose answer is not the model server's JSON."""
    if kind == "ollama":
        return NotAModelServer(
            f"{host} answered {path} with {got} instead of Ollama's JSON: this address does not look "
            "like an Ollama server (another web application may be listening on that port). Point "
            "--host / OLLAMA_HOST (or the Address on the Settings page) at Ollama, by default "
            "http://127.0.0.1:11434; for vLLM or llama.cpp use --backend openai."
        )
    return NotAModelServer(
        f"{host} answered {path} with {got} instead of an OpenAI-compatible server's JSON: this address "
        "does not look like vLLM, llama.cpp or another OpenAI-compatible server. Point --host / "
        "FOLIO_HOST (or the Address on the Settings page) at the server's base URL, such as "
        "http://127.0.0.1:8000 (without /v1); for Ollama use --backend ollama."
    )


def json_object(body: bytes, content_type: str, *, kind: str, host: str, path: str,
                require: dict | None = None) -> dict:
    """The JSON object of an answer, or NotAModelServer when it is anything else.

    `require` maps keys that must be present to the type they must have (list, str, dict).
    """
    got = None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        got = describe_body(body, content_type)
    else:
        for key, kind_of in (require or {}).items():
            if not isinstance(data.get(key), kind_of):
                got = f"JSON without a {key!r} {_type_name(kind_of)}"
                break
    if got is not None:
        raise not_a_server(kind, host, path, got)
    return data


def _type_name(kind) -> str:
    return {list: "list", str: "text", dict: "object", int: "number"}.get(kind, kind.__name__)


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
    return ServerInfo(backend=settings.backend, host=settings.host, model=settings.model,
                      requested_model=settings.model)


class BackendCore:
    """What both backends (lib/servers/ollama.py, openai.py) hold alike: the settings, one HTTP
    client for their whole life, the last inspection and the remembered check. Each writes its
    own `_inspect` (what the server says) and `check` (what makes it ready)."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None,
                 headers: dict | None = None):
        self.settings = settings
        self._transport = transport
        self._client = make_http_client(settings, transport, headers)
        self._ready: ServerInfo | None = None
        """The last check that found the server ready; reused until forget() or an error."""
        self.inspected: ServerInfo | None = None
        """The last inspect(), ready or not."""

    def close(self) -> None:
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def inspect(self, cancel=None) -> ServerInfo:
        """Everything the server says about itself and the model, asked afresh (kept in
        `inspected`); raises only when it is unusable or the user stops."""
        info = self._inspect(cancel)
        self.inspected = info
        return info

    def _inspect(self, cancel=None) -> ServerInfo:
        raise NotImplementedError

    @property
    def checked(self) -> ServerInfo | None:
        """The remembered check, None when the next question checks again."""
        return self._ready


ProgressFn = Callable[[str, int, int | None], None]
__all__ = [
    "real_context",
    "context_warning",
    "make_http_client",
    "BackendCore",
    "classify_http_error",
    "StreamPump",
    "StreamTimer",
    "ProgressFn",
]


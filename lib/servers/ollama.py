"""Ollama over its native API (/api/chat streaming NDJSON), never the OpenAI-compatible path.

    backend = OllamaBackend(load_settings())
    info = backend.check()                 # version >= 0.12.5, model present, trained context
    for event in backend.chat(request):    # thinking/content events, then done or interrupted
        print(event.kind, event.text)

Why the native API: Ollama's /v1 path ignores num_ctx, and only /api/chat takes `think`,
`truncate` (false: an over-long prompt is refused instead of silently cut) and `shift`.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Iterator

import httpx

from ..config import DEFAULT_MODEL, Settings
from ..errors import ModelNotFound, ServerCrashed, ServerError, ServerTooOld
from .base import (
    ProgressFn,
    StreamTimer,
    answer_limit,
    cancel_reason,
    classify_http_error,
    context_warning,
    describe_body,
    drop_reason,
    empty_info,
    error_from_json,
    interrupted,
    json_object,
    kept,
    BackendCore,
    mid_stream_error_reason,
    no_done_reason,
    not_a_server,
    ns_to_s,
    oversize_reason,
    parse_json_line,
    silence_error,
    stream_limit_reason,
    text_within,
    unreachable,
)
from .exchange import CHECK_LIMIT_S, BodyTooLarge, Reply, StreamPump, Watch, fetch
from .protocol import CallStats, ChatRequest, ServerInfo, StreamEvent

SERVER = "Ollama"
MIN_VERSION = (0, 12, 5)
"""First Ollama with `think`, `truncate`, `shift` and the 'does not support thinking' error."""
HOW_TO_START = "Start it with `ollama serve` (or set OLLAMA_HOST to where it runs), then try again."


def build_chat_body(request: ChatRequest) -> dict:
    """The exact /api/chat body for one request: every field, every time."""
    options = {
        "num_ctx": request.num_ctx,
        "num_keep": request.num_keep,
        "num_predict": request.num_predict,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k,
        "min_p": request.min_p,
    }
    if request.seed is not None:
        options["seed"] = request.seed
    body = {
        "model": request.model,
        "messages": [dict(message) for message in request.messages],
        "stream": True,
        "think": bool(request.think),
        "keep_alive": keep_alive_value(request.keep_alive),
        "truncate": False,
        "shift": bool(request.shift),
        "options": options,
    }
    if request.format is not None:
        body["format"] = request.format  # a JSON schema: Ollama constrains the answer to it
    return body


def keep_alive_value(value: str | int) -> str | int:
    """'30m' stays a string; '-1' or '3600' become numbers (Ollama rejects unit-less strings)."""
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return value


def version_tuple(text: str | None) -> tuple[int, int, int] | None:
    """'0.12.5-rc1' -> (0, 12, 5); None when unreadable."""
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", (text or "").strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def is_too_old(version: str | None) -> bool:
    """Older than 0.12.5. Builds from source report 0.0.0: those are given the benefit of the doubt."""
    parsed = version_tuple(version)
    return parsed is not None and parsed != (0, 0, 0) and parsed < MIN_VERSION


def full_name(model: str) -> str:
    """Ollama's name for a model: 'qwen3' means 'qwen3:latest'."""
    last = model.rsplit("/", 1)[-1]
    return model if ":" in last else f"{model}:latest"


def model_hint(model: str) -> str:
    """How to get a missing model."""
    build = f"Build it: `ollama create {model} -f Modelfile` (see README)"
    if model == DEFAULT_MODEL:
        return f"Model '{model}' is not installed. {build}."
    return f"Model '{model}' is not installed. {build} or pull it: `ollama pull {model}`."


def _first_int(value) -> int | None:
    """An integer metadata value; per-layer arrays count by their largest entry."""
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, int)]
        return max(numbers) if numbers else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def apply_model_info(info: ServerInfo, show: dict) -> None:
    """Fill capabilities, trained context and KV geometry from an /api/show answer."""
    info.model_present = True
    capabilities = show.get("capabilities")
    info.capabilities = [str(c) for c in capabilities] if isinstance(capabilities, list) else []
    model_info = _dict(show.get("model_info"))
    arch = model_info.get("general.architecture") or _dict(show.get("details")).get("family")
    info.architecture = arch if isinstance(arch, str) else None
    if not info.architecture:
        return
    arch = info.architecture
    info.trained_context = _first_int(model_info.get(f"{arch}.context_length"))
    info.context_reported = info.trained_context is not None
    info.block_count = _first_int(model_info.get(f"{arch}.block_count"))
    info.head_count_kv = _first_int(model_info.get(f"{arch}.attention.head_count_kv"))
    info.key_length = _first_int(model_info.get(f"{arch}.attention.key_length"))
    info.value_length = _first_int(model_info.get(f"{arch}.attention.value_length"))
    if info.key_length is None:
        # Older GGUFs leave key_length out: it is then embedding_length / head_count.
        width = _first_int(model_info.get(f"{arch}.embedding_length"))
        heads = _first_int(model_info.get(f"{arch}.attention.head_count"))
        if width and heads:
            info.key_length = width // heads


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def stats_from_done(data: dict, timer: StreamTimer, model: str | None = None) -> CallStats:
    """CallStats from Ollama's final line (durations in ns; zero values are omitted)."""
    return CallStats(
        prompt_eval_count=_count(data.get("prompt_eval_count")),
        prompt_eval_duration_s=ns_to_s(data.get("prompt_eval_duration")),
        eval_count=_count(data.get("eval_count")),
        eval_duration_s=ns_to_s(data.get("eval_duration")),
        total_duration_s=ns_to_s(data.get("total_duration")),
        load_duration_s=ns_to_s(data.get("load_duration")),
        done_reason=data.get("done_reason") if isinstance(data.get("done_reason"), str) else None,
        first_token_s=timer.first_token_s,
        wall_s=timer.elapsed(),
        sent_s=timer.sent_s,
        model=_text(data.get("model")) or model,
    )


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


class OllamaBackend(BackendCore):
    """The backend protocol of lib/servers/protocol.py over Ollama's native API."""

    name = "ollama"

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None):
        super().__init__(settings, transport)

    # --- plain requests -------------------------------------------------------------------

    def _fetch(self, method: str, path: str, body: dict | None = None, *, cancel=None,
               limit_s: float | None = CHECK_LIMIT_S, doing: str = "checking the model server") -> Reply:
        try:
            return fetch(self._client, method, path, body, watch=cancel, limit_s=limit_s, doing=doing)
        except BodyTooLarge as exc:
            raise not_a_server("ollama", self.settings.host, path, f"more than {exc.size:,} bytes") from exc
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    def _transport_error(self, exc: Exception) -> ServerError:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return unreachable(SERVER, self.settings.host, exc, HOW_TO_START)
        if isinstance(exc, httpx.ReadTimeout):
            return silence_error(SERVER, self.settings)
        return ServerCrashed(
            f"Ollama at {self.settings.host} closed the connection without answering "
            f"({exc.__class__.__name__}). Check the server's log, then try again."
        )

    def _http_error(self, status: int, text: str, model: str) -> ServerError:
        return classify_http_error(
            status,
            text,
            server=SERVER,
            host=self.settings.host,
            model=model,
            model_hint=model_hint(model),
        )

    def _json(self, path: str, reply: Reply, require: dict | None = None, model: str | None = None) -> dict:
        """The JSON object of an answer; HTTP errors and non-Ollama answers raise ServerErrors."""
        if reply.status >= 400:
            raise self._http_error(reply.status, reply.error, model or self.settings.model)
        return json_object(reply.body, reply.content_type, kind="ollama", host=self.settings.host,
                           path=path, require=require)

    def version(self, cancel=None) -> str | None:
        """The server's version (GET /api/version); raises ServerUnreachable, NotAModelServer."""
        reply = self._fetch("GET", "/api/version", cancel=cancel)
        if reply.status == 404:
            raise ServerError(
                f"{self.settings.host} answers HTTP but is not Ollama (no /api/version). "
                "Point OLLAMA_HOST / --host at Ollama, or use --backend openai for vLLM or llama.cpp."
            )
        data = self._json("/api/version", reply, {"version": str})
        return data["version"] or None

    def show(self, model: str, cancel=None) -> dict | None:
        """POST /api/show for a model; None when it is not installed."""
        reply = self._fetch("POST", "/api/show", {"model": model}, cancel=cancel)
        if reply.status == 404:
            return None
        return self._json("/api/show", reply, model=model)

    def installed_models(self, cancel=None) -> list[dict]:
        """GET /api/tags: the installed models."""
        data = self._json("/api/tags", self._fetch("GET", "/api/tags", cancel=cancel), {"models": list})
        return [m for m in data["models"] if isinstance(m, dict)]

    def loaded_models(self, cancel=None) -> list[dict]:
        """GET /api/ps: the models loaded now, with their context_length."""
        data = self._json("/api/ps", self._fetch("GET", "/api/ps", cancel=cancel), {"models": list})
        return [m for m in data["models"] if isinstance(m, dict)]

    # --- the protocol ---------------------------------------------------------------------

    def _inspect(self, cancel=None) -> ServerInfo:
        """Everything the server says about itself and the model; raises only when it is unusable
        (unreachable, not Ollama) or the user stops."""
        settings = self.settings
        info = empty_info(settings)
        info.kind = "ollama"
        info.version = self.version(cancel)
        if is_too_old(info.version):
            info.warnings.append(too_old_message(settings.host, info.version))
        show = self.show(settings.model, cancel)
        if show is not None:
            apply_model_info(info, show)
        tags = self.installed_models(cancel)
        info.installed_models = [str(m.get("name") or m.get("model") or "") for m in tags]
        if info.trained_context is None:
            info.trained_context = _tags_context(tags, settings.model)
            info.context_reported = info.trained_context is not None
        info.loaded_context = _loaded_context(self.loaded_models(cancel), settings.model)
        if show is None:
            info.warnings.append(model_hint(settings.model))
        warning = context_warning(settings.model, settings.context, info.trained_context)
        if warning:
            info.warnings.append(warning)
        return info

    def check(self, cancel=None, *, refresh: bool = False) -> ServerInfo:
        """The server ready for questions: remembered after the first success (one check per
        session), asked again after forget() or with `refresh`. Raises ServerTooOld, ModelNotFound."""
        ready = self._ready
        if ready is not None and not refresh:
            return ready
        info = self.inspect(cancel)
        if is_too_old(info.version):
            raise ServerTooOld(too_old_message(self.settings.host, info.version))
        if not info.model_present:
            raise ModelNotFound(model_hint(self.settings.model))
        self._ready = info
        return info

    def forget(self) -> None:
        """Check the server again before the next question (after an error, a pull, ...)."""
        self._ready = None

    def count_prompt(self, request: ChatRequest, cancel=None) -> int | None:
        """Ollama has no tokenize endpoint: Folio's own count is the only one."""
        return None

    def chat(self, request: ChatRequest, cancel=None) -> Iterator[StreamEvent]:
        """Stream one answer: thinking/content events, then one done or interrupted event."""
        watch = Watch.of(cancel, self.settings)
        timer = StreamTimer(watch)
        pump = StreamPump(self._client, "POST", "/api/chat", build_chat_body(request)).start()
        try:
            yield from self._read_chat(pump, timer, request, watch)
        finally:
            pump.abort()

    def _read_chat(self, pump: StreamPump, timer: StreamTimer, request: ChatRequest, watch) -> Iterator[StreamEvent]:
        model = request.model
        first = pump.next(watch, idle_since=timer.sent)
        if first[0] == "cancel":
            yield interrupted(timer, cancel_reason(timer))
            return
        if first[0] in ("timeout", "too_long"):
            yield interrupted(timer, stream_limit_reason(SERVER, first, timer))
            return
        if first[0] == "exc":
            raise self._transport_error(first[1]) from first[1]
        _, status, text = first
        if status >= 400:
            raise self._http_error(status, text, model)
        if "html" in pump.content_type.lower():
            raise not_a_server("ollama", self.settings.host, "/api/chat", "an HTML page")
        limit = answer_limit(request.num_predict)
        over = oversize_reason(SERVER, limit, request.num_predict)
        said_model: str | None = None
        while True:
            item = pump.next(watch, idle_since=timer.last_text)
            kind = item[0]
            if kind == "cancel":
                yield interrupted(timer, cancel_reason(timer))
                return
            if kind in ("timeout", "too_long"):
                yield interrupted(timer, stream_limit_reason(SERVER, item, timer))
                return
            if kind == "exc":
                yield interrupted(timer, drop_reason(SERVER, item[1], timer))
                return
            if kind == "end":
                yield interrupted(timer, no_done_reason(SERVER, timer))
                return
            line = item[1]
            if not line.strip():
                timer.mark_empty()
                continue
            data = parse_json_line(line)
            if data is None:
                if said_model is None and not timer.got_text:
                    raise not_a_server("ollama", self.settings.host, "/api/chat", describe_body(line.encode()))
                yield interrupted(timer, f"Ollama sent a line Folio cannot read: {line[:200]!r}; {kept(timer)}. "
                                         "Ask again.")
                return
            said_model = _text(data.get("model")) or said_model or ""
            error = error_from_json(data)
            if error:
                yield interrupted(timer, mid_stream_error_reason(SERVER, error, timer))
                return
            for event in _message_events(data, timer, limit, over):
                yield event
                if event.kind == "interrupted":
                    return
            if data.get("done"):
                yield StreamEvent(kind="done", stats=stats_from_done(data, timer, said_model or None))
                return

    def pull(self, model: str, progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> str:
        """POST /api/pull, reporting progress(status, completed, total); returns the last status."""
        self.forget()  # a new model: the next question checks the server again
        pump = StreamPump(self._client, "POST", "/api/pull", {"model": model, "stream": True}).start()
        try:
            return self._read_pull(pump, model, progress, Watch(cancel, idle_s=self.settings.read_timeout))
        finally:
            pump.abort()

    def _read_pull(self, pump: StreamPump, model: str, progress, watch: Watch) -> str:
        status = ""
        last = time.monotonic()
        while True:
            item = pump.next(watch, idle_since=last)
            if item[0] == "cancel":
                return "cancelled"
            if item[0] in ("timeout", "too_long"):
                raise ServerError(f"Pulling {model} stalled (Ollama sent nothing usable for "
                                  f"{self.settings.read_timeout:.0f} s). Try again.")
            if item[0] == "exc":
                raise self._transport_error(item[1]) from item[1]
            if item[0] == "open":
                if item[1] >= 400:
                    raise _pull_error(model, item[2], self.settings.host)
                continue
            if item[0] == "end":
                if status != "success":
                    raise ServerError(f"Pulling {model} stopped before it finished (last: {status!r}). Try again.")
                return status
            last = time.monotonic()
            if not item[1].strip():
                continue
            data = parse_json_line(item[1])
            if data is None:
                raise not_a_server("ollama", self.settings.host, "/api/pull", describe_body(item[1].encode()))
            error = error_from_json(data)
            if error:
                raise _pull_error(model, error, self.settings.host)
            status = str(data.get("status") or status)
            if progress is not None and data.get("status"):
                progress(status, _count(data.get("completed")) or 0, _count(data.get("total")))


def _message_events(data: dict, timer: StreamTimer, limit: int, over_reason: str) -> Iterator[StreamEvent]:
    """Thinking and content of one line; an 'interrupted' event once the answer passes `limit`."""
    message = _dict(data.get("message"))
    for kind in ("thinking", "content"):
        text = message.get(kind)
        if text and isinstance(text, str):
            piece, over = text_within(timer, text, limit)
            if piece:
                timer.mark_token(len(piece))
                yield StreamEvent(kind=kind, text=piece)
            if over:
                yield interrupted(timer, over_reason)
                return


def _matches(entry: dict, model: str) -> bool:
    wanted = full_name(model)
    return any(full_name(str(entry.get(key) or "")) == wanted for key in ("name", "model"))


def _tags_context(tags: list[dict], model: str) -> int | None:
    """details.context_length from /api/tags (newer servers only)."""
    for entry in tags:
        if _matches(entry, model):
            return _first_int(_dict(entry.get("details")).get("context_length"))
    return None


def _loaded_context(loaded: list[dict], model: str) -> int | None:
    for entry in loaded:
        if _matches(entry, model):
            return _first_int(entry.get("context_length"))
    return None


def too_old_message(host: str, version: str | None) -> str:
    return (
        f"Ollama at {host} is version {version}; Folio needs 0.12.5 or newer (for `think`, "
        "`truncate: false` and `shift`, which keep answers honest). Update Ollama "
        "(https://ollama.com/download), restart it, and try again."
    )


def _pull_error(model: str, text: str, host: str) -> ServerError:
    low = text.lower()
    if "does not exist" in low or "not found" in low:
        return ModelNotFound(
            f"Ollama cannot pull '{model}': {text}. Check the name, or build it from the Modelfile: "
            f"`ollama create {model} -f Modelfile` (see README)."
        )
    return ServerError(f"Ollama at {host} could not pull '{model}': {text}.")

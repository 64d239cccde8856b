"""OpenAI-compatible servers: vLLM, llama.cpp's llama-server, llama-cpp-python's server.

    backend = OpenAIBackend(load_settings(backend="openai", host="http://gpu-box:8000"))
    info = backend.check()            # the served models and the server's context limit
    backend.count_prompt(request)     # the server's own exact count of the rendered prompt
    for event in backend.chat(request): ...

POST /v1/chat/completions streamed as server-sent events ("data: {...}" lines, then
"data: [DONE]"). Reasoning arrives in delta.reasoning_content (delta.reasoning on newer vLLM)
and becomes 'thinking' events. num_ctx, num_keep and shift have no meaning here: the
context is fixed when the server starts, so Folio reads it from the server instead.

What each server tells (found in their sources):
- vLLM: /v1/models gives max_model_len; POST /tokenize renders messages with the chat
  template and counts them; streamed usage (stream_options.include_usage) gives
  prompt_tokens and, with --enable-prompt-tokens-details, cached_tokens.
- llama-server (recognised by /v1/models, or by its GET /props when a proxy hides that):
  /v1/models gives meta.n_ctx_train, /props the slot's n_ctx and the build; /apply-template +
  /tokenize count a prompt exactly; the last chunk carries timings (cache_n = prompt tokens
  reused from the cache, prompt_n = evaluated) and usage. Its specifics: llamacpp.py.
- llama-cpp-python: /v1/models gives only ids ("owned_by": "me"), no context; its stream
  has no usage at all; /extras/tokenize counts raw text only (no template endpoint), so
  the exact count of a chat prompt comes from a one-token, non-streamed completion of the
  same messages (its usage.prompt_tokens). That call also fills the server's prefix cache,
  so the real answer that follows re-reads almost nothing.
"""

from __future__ import annotations

import json
import re
import time
from typing import Iterator

import httpx

from ..config import DEFAULT_MODEL, Settings
from ..errors import Cancelled, ModelNotFound, ServerCrashed, ServerError, TimeLimitExceeded
from . import llamacpp
from .base import (
    OPENAI_CONTEXT_ADVICE,
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
    oversize_reason,
    parse_json_line,
    silence_error,
    stream_limit_reason,
    text_within,
    total_reason,
    unreachable,
)
from .exchange import CHECK_LIMIT_S, BodyTooLarge, Reply, StreamPump, Watch, fetch
from .protocol import CallStats, ChatRequest, ServerInfo, StreamEvent

HOW_TO_START = (
    "Start the server (vLLM: `vllm serve MODEL`; llama.cpp: `llama-server -m MODEL.gguf`) or "
    "point FOLIO_HOST / --host at it, then try again."
)
SERVER_NAMES = {
    "vllm": "vLLM",
    "llama.cpp": "llama.cpp server",
    "llama-cpp-python": "llama-cpp-python server",
    "openai": "The model server",
}
# Model names of reasoning models: OpenAI-style servers do not say whether a model can think.
THINKING_MODELS = re.compile(r"qwen3|qwq|deepseek-r1|r1-distill|gpt-oss|magistral|phi-4-reasoning", re.I)


def build_chat_body(request: ChatRequest, model: str | None = None, flavour: str | None = None) -> dict:
    """The exact /v1/chat/completions body for one request."""
    body = {
        "model": model or request.model,
        "messages": [dict(message) for message in request.messages],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": request.num_predict,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k,
        "min_p": request.min_p,
        # Qwen3's template reads enable_thinking (vLLM, llama-server --jinja); others ignore it.
        "chat_template_kwargs": {"enable_thinking": bool(request.think)},
    }
    if request.seed is not None:
        body["seed"] = request.seed
    if request.format is not None:
        body["response_format"] = response_format(request.format, flavour)
    return body


def response_format(schema: dict, flavour: str | None) -> dict:
    """Constrained output as each server takes it: llama-cpp-python knows only
    {"type": "json_object", "schema"}; vLLM, llama-server and OpenAI take "json_schema"."""
    if flavour == "llama-cpp-python":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "folio_answer", "schema": schema, "strict": True}}


def flavour_of(models: list[dict]) -> str:
    """Which server this is, from its /v1/models entries."""
    for entry in models:
        if "max_model_len" in entry or entry.get("owned_by") == "vllm":
            return "vllm"
        if isinstance(entry.get("meta"), dict) or entry.get("owned_by") == "llamacpp":
            return "llama.cpp"
        if entry.get("owned_by") == "me":
            return "llama-cpp-python"
    return "openai"


def context_limit(models: list[dict], model: str) -> int | None:
    """The served model's context limit from /v1/models (vLLM max_model_len, llama.cpp n_ctx_train)."""
    for entry in models:
        if entry.get("id") == model or len(models) == 1:
            limit = entry.get("max_model_len") or _dict(entry.get("meta")).get("n_ctx_train")
            return int(limit) if isinstance(limit, (int, float)) and limit > 0 else None
    return None


def stats_from_final(usage: dict | None, timings: dict | None, finish: str | None, timer: StreamTimer,
                     model: str | None = None) -> CallStats:
    """CallStats from a stream's usage (OpenAI) and, where the server sends them, timings
    (llama-server: its own per-slot counters win, see llamacpp.timing_stats)."""
    usage = usage if isinstance(usage, dict) else {}
    timings = timings if isinstance(timings, dict) else {}
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    stats = CallStats(
        prompt_eval_count=_int(usage, "prompt_tokens"),
        eval_count=_int(usage, "completion_tokens"),
        cached_tokens=_int(details, "cached_tokens"),
        done_reason=finish,
        first_token_s=timer.first_token_s,
        wall_s=timer.elapsed(),
        sent_s=timer.sent_s,
        model=model,
    )
    for name, value in llamacpp.timing_stats(timings).items():
        setattr(stats, name, value)
    return stats


def sse_data(line: str) -> str | None:
    """The payload of an SSE 'data:' (or llama-server 'error:') line; None for other lines."""
    for prefix in ("data:", "error:"):
        if line.startswith(prefix):
            payload = line[len(prefix):].strip()
            return payload if prefix == "data:" else '{"error": %s}' % (payload or '""')
    return None


SSE_FIELDS = ("data:", "error:", ":", "event:", "id:", "retry:")
"""How every line of a server-sent event stream begins (llama-server adds 'error:')."""


def is_sse_line(line: str) -> bool:
    return not line.strip() or line.startswith(SSE_FIELDS)


_CANCELLED = object()


class _StreamState:
    """What one streamed answer has said so far."""

    def __init__(self) -> None:
        self.finish: str | None = None
        self.usage: dict | None = None
        self.timings: dict | None = None
        self.model: str | None = None
        self.data_lines = 0


class OpenAIBackend(BackendCore):
    """The backend protocol over an OpenAI-compatible /v1/chat/completions server."""

    name = "openai"

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None):
        self._headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        super().__init__(settings, transport, self._headers)
        self._models: list[dict] | None = None
        self.flavour: str | None = None
        self._probed: dict[str, int | None] = {}
        """Prompt counts already learned by a probe, so chat() after count_prompt() asks once."""
        self._props: dict | None = None
        """llama-server's GET /props, once read per inspection."""

    @property
    def server(self) -> str:
        return SERVER_NAMES.get(self.flavour or "openai", "The model server")

    # --- plain requests -------------------------------------------------------------------

    def _fetch(self, method: str, path: str, body: dict | None = None, *, cancel=None,
               limit_s: float | None = CHECK_LIMIT_S, doing: str = "checking the model server") -> Reply:
        try:
            return fetch(self._client, method, path, body, watch=cancel, limit_s=limit_s, doing=doing)
        except BodyTooLarge as exc:
            raise not_a_server("openai", self.settings.host, path, f"more than {exc.size:,} bytes") from exc
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    def _transport_error(self, exc: Exception) -> ServerError:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return unreachable("the model server", self.settings.host, exc, HOW_TO_START)
        if isinstance(exc, httpx.ReadTimeout):
            return silence_error(self.server, self.settings)
        return ServerCrashed(
            f"{self.server} at {self.settings.host} closed the connection without answering "
            f"({exc.__class__.__name__}). Check the server's log, then try again."
        )

    def _error(self, status: int, text: str, model: str) -> ServerError:
        hint = (
            f"Model '{model}' is not served there. Set --model / FOLIO_MODEL to a model the server "
            f"serves (GET {self.settings.host}/v1/models lists them)."
        )
        return classify_http_error(status, text, server=self.server, host=self.settings.host, model=model,
                                   model_hint=hint)

    def models(self, cancel=None) -> list[dict]:
        """GET /v1/models (remembered): the served models; also tells which server this is."""
        if self._models is None:
            reply = self._fetch("GET", "/v1/models", cancel=cancel)
            if reply.status == 404:
                raise not_a_server("openai", self.settings.host, "/v1/models", "HTTP 404 (no such page)")
            if reply.status >= 400:
                raise self._error(reply.status, reply.error, self.settings.model)
            data = json_object(reply.body, reply.content_type, kind="openai", host=self.settings.host,
                               path="/v1/models", require={"data": list})
            self._models = [m for m in data["data"] if isinstance(m, dict)]
            self.flavour = flavour_of(self._models)
            if self.flavour == "openai" and llamacpp.looks_like_props(self._llama_props(cancel)):
                self.flavour = llamacpp.FLAVOUR
        return self._models

    def _optional_json(self, method: str, path: str, body: dict | None = None, *, cancel=None,
                       limit_s: float | None = CHECK_LIMIT_S, doing: str = "checking the model server") -> dict | None:
        """The JSON object of an endpoint Folio can do without: None when it is missing or garbled."""
        reply = self._fetch(method, path, body, cancel=cancel, limit_s=limit_s, doing=doing)
        if reply.status != 200:
            return None
        try:
            data = json.loads(reply.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def served_model(self, wanted: str) -> str | None:
        """The served model to ask for `wanted`: itself, or the only model when Folio's default
        name was left in place; None when the server does not serve it."""
        ids = [str(m.get("id")) for m in self.models()]
        if wanted in ids:
            return wanted
        if len(ids) == 1 and (wanted == DEFAULT_MODEL or self.flavour in ("llama-cpp-python", "llama.cpp")):
            return ids[0]  # single-model servers answer whatever name is sent
        return None

    # --- the protocol ---------------------------------------------------------------------

    def _inspect(self, cancel=None) -> ServerInfo:
        """What the server says about itself and the model; raises only when it is unusable
        (unreachable, not an OpenAI-compatible server) or the user stops."""
        settings = self.settings
        info = empty_info(settings)
        self._props = None  # a restarted llama-server may have another context: read it again
        models = self.models(cancel)
        info.kind = self.flavour or "openai"
        info.installed_models = [str(m.get("id")) for m in models]
        info.version = self._version(cancel)
        served = self.served_model(settings.model)
        info.model_present = served is not None
        if served is None:
            info.warnings.append(self._missing_message(settings.model))
            return info
        info.model = served
        if not info.model_matches:
            info.warnings.append(
                f"{self.server} serves one model, {served}, and answers every question with it whatever "
                f"the name: '{settings.model}' is not served there. Answers are recorded as written by "
                f"{served}; set --model / FOLIO_MODEL (or Model on the Settings page) to {served} to say so."
            )
        info.capabilities = ["completion"] + (["thinking"] if THINKING_MODELS.search(served) else [])
        info.trained_context = context_limit(models, served)
        info.loaded_context = self._slot_context(cancel)
        if self.flavour == llamacpp.FLAVOUR:
            info.parallel_slots = llamacpp.total_slots(self._llama_props(cancel))
        limits = [n for n in (info.trained_context, info.loaded_context) if n]
        info.trained_context = min(limits) if limits else None
        info.context_reported = info.trained_context is not None
        if info.trained_context is None:
            info.warnings.append(
                f"{self.server} does not say how long its context is: Folio assumes the configured "
                f"{settings.context:,} tokens. Set --context / FOLIO_CONTEXT to the server's context (n_ctx)."
            )
        warning = context_warning(served, settings.context, info.trained_context, OPENAI_CONTEXT_ADVICE)
        if warning:
            info.warnings.append(warning)
        return info

    def check(self, cancel=None, *, refresh: bool = False) -> ServerInfo:
        """The server ready for questions, remembered after the first success (one check per
        session); raises ModelNotFound when the server does not serve the model."""
        ready = self._ready
        if ready is not None and not refresh:
            return ready
        if refresh:
            self._models = None
        info = self.inspect(cancel)
        if not info.model_present:
            raise ModelNotFound(self._missing_message(self.settings.model))
        self._ready = info
        return info

    def forget(self) -> None:
        """Check the server again before the next question (after an error)."""
        self._ready = None
        self._models = None

    def _missing_message(self, model: str) -> str:
        served = ", ".join(str(m.get("id")) for m in self.models()) or "none"
        return (
            f"Model '{model}' is not served at {self.settings.host} (it serves: {served}). "
            "Set --model / FOLIO_MODEL to one of those."
        )

    def _version(self, cancel=None) -> str | None:
        if self.flavour == llamacpp.FLAVOUR:
            return llamacpp.build_info(self._llama_props(cancel))
        if self.flavour != "vllm":
            return None
        version = (self._optional_json("GET", "/version", cancel=cancel) or {}).get("version")
        return version if isinstance(version, str) and version else None

    # --- llama-server (its request bodies and answers: llamacpp.py) ------------------------

    def _llama_props(self, cancel=None) -> dict | None:
        """GET /props, read once per inspection; None when the server has no such endpoint."""
        if self._props is None:
            self._props = self._optional_json("GET", "/props", cancel=cancel) or {}
        return self._props or None

    def _slot_context(self, cancel=None) -> int | None:
        """llama-server's per-slot context (GET /props), which can be below n_ctx_train."""
        if self.flavour != llamacpp.FLAVOUR:
            return None
        return llamacpp.slot_context(self._llama_props(cancel))

    def count_prompt(self, request: ChatRequest, cancel=None) -> int | None:
        """The server's exact token count of the rendered prompt; None when it cannot say."""
        model = self.served_model(request.model) or request.model
        counter = {
            "vllm": self._count_vllm,
            "llama.cpp": self._count_llama_server,
            "llama-cpp-python": self._count_by_completion,
        }.get(self.flavour or "")
        return counter(request, model, cancel) if counter else None

    def _post_json(self, path: str, body: dict, cancel=None) -> dict | None:
        return self._optional_json("POST", path, body, cancel=cancel, limit_s=None,
                                   doing="the server was counting the prompt")

    def _count_vllm(self, request: ChatRequest, model: str, cancel=None) -> int | None:
        data = self._post_json("/tokenize", {
            "model": model, "messages": request.messages, "add_generation_prompt": True,
            "chat_template_kwargs": {"enable_thinking": bool(request.think)},
        }, cancel)
        return _int(data, "count")

    def _count_llama_server(self, request: ChatRequest, model: str, cancel=None) -> int | None:
        """The prompt as llama-server renders (/apply-template) and tokenizes (/tokenize) it."""
        prompt = llamacpp.rendered_prompt(
            self._post_json("/apply-template", llamacpp.apply_template_body(request.messages, request.think), cancel))
        if prompt is None:
            return None
        return llamacpp.token_count(self._post_json("/tokenize", llamacpp.tokenize_body(prompt), cancel))

    def _count_by_completion(self, request: ChatRequest, model: str, cancel=None) -> int | None:
        return self._probe_prompt_tokens(request, model, cancel)

    def chat(self, request: ChatRequest, cancel=None) -> Iterator[StreamEvent]:
        """Stream one answer: thinking/content events, then one done or interrupted event."""
        watch = Watch.of(cancel, self.settings)
        timer = StreamTimer(watch)
        model = self.served_model(request.model) or request.model
        prompt_tokens = None
        if self.flavour == "llama-cpp-python":
            # Its stream reports no usage: learn the prompt count first (this also fills the cache).
            try:
                prompt_tokens = self._probe_prompt_tokens(request, model, watch)
            except Cancelled:
                yield interrupted(timer, cancel_reason(timer))
                return
            except TimeLimitExceeded:
                yield interrupted(timer, total_reason(timer))
                return
            timer.sent = time.monotonic()
        pump = StreamPump(self._client, "POST", "/v1/chat/completions", build_chat_body(request, model, self.flavour)).start()
        try:
            for event in self._read_chat(pump, timer, request, model, watch):
                if event.kind == "done" and event.stats.prompt_eval_count is None:
                    event.stats.prompt_eval_count = prompt_tokens
                yield event
        finally:
            pump.abort()

    def _probe_prompt_tokens(self, request: ChatRequest, model: str, cancel=None) -> int | None:
        """usage.prompt_tokens of a one-token, non-streamed completion of the same messages."""
        body = build_chat_body(request, model, self.flavour)
        body.update(stream=False, max_tokens=1)
        body.pop("stream_options")
        key = json.dumps([body["model"], body["messages"], body["chat_template_kwargs"]], sort_keys=True)
        if key in self._probed:
            return self._probed[key]
        reply = self._fetch("POST", "/v1/chat/completions", body, cancel=cancel, limit_s=None,
                            doing="the server was reading the prompt to count it")
        if reply.status >= 400:
            raise self._error(reply.status, reply.error, model)
        count = _int(_dict(_json_or_none(reply.body)).get("usage"), "prompt_tokens")
        self._probed = {key: count}  # only the latest prompt is worth remembering
        return count

    def _read_chat(self, pump: StreamPump, timer: StreamTimer, request: ChatRequest, model: str,
                   watch) -> Iterator[StreamEvent]:
        first = pump.next(watch, idle_since=timer.sent)
        if first[0] == "cancel":
            yield interrupted(timer, cancel_reason(timer))
            return
        if first[0] in ("timeout", "too_long"):
            yield interrupted(timer, stream_limit_reason(self.server, first, timer))
            return
        if first[0] == "exc":
            raise self._transport_error(first[1]) from first[1]
        if first[1] >= 400:
            raise self._error(first[1], first[2], model)
        if "html" in pump.content_type.lower():
            raise not_a_server("openai", self.settings.host, "/v1/chat/completions", "an HTML page")
        state = _StreamState()
        limit = answer_limit(request.num_predict)
        over = oversize_reason(self.server, limit, request.num_predict)
        while True:
            item = pump.next(watch, idle_since=timer.last_text)
            if item[0] == "cancel":
                yield interrupted(timer, cancel_reason(timer))
                return
            if item[0] in ("timeout", "too_long"):
                yield interrupted(timer, stream_limit_reason(self.server, item, timer))
                return
            if item[0] == "exc":
                yield interrupted(timer, drop_reason(self.server, item[1], timer))
                return
            if item[0] == "end":
                if not state.data_lines:
                    raise not_a_server("openai", self.settings.host, "/v1/chat/completions",
                                       "no server-sent events")
                yield self._end_of_stream(state, timer, saw_done=False)
                return
            line = item[1]
            if not state.data_lines and not is_sse_line(line):
                raise not_a_server("openai", self.settings.host, "/v1/chat/completions",
                                   describe_body(line.encode()))
            payload = sse_data(line)
            if payload is None or not payload:
                timer.mark_empty()
                continue  # comments (": ping"), event names, blank separators
            state.data_lines += 1
            if payload == "[DONE]":
                yield self._end_of_stream(state, timer, saw_done=True)
                return
            data = parse_json_line(payload)
            if data is None:
                yield interrupted(timer, f"{self.server} sent data Folio cannot read: {payload[:200]!r}; "
                                         f"{kept(timer)}. Ask again.")
                return
            error = error_from_json(data)
            if error:
                yield interrupted(timer, mid_stream_error_reason(self.server, error, timer))
                return
            for event in _chunk_events(data, state, timer, limit, over):
                yield event
                if event.kind == "interrupted":
                    return

    def _end_of_stream(self, state: _StreamState, timer: StreamTimer, *, saw_done: bool) -> StreamEvent:
        if state.finish is not None:
            return StreamEvent(kind="done", stats=stats_from_final(state.usage, state.timings, state.finish, timer,
                                                                   state.model))
        if saw_done:
            return interrupted(timer, (
                f"{self.server} ended the answer early without a finish reason (it may have stopped it "
                f"to serve another request); {kept(timer)}. Ask again."))
        return interrupted(timer, no_done_reason(self.server, timer))


def _chunk_events(data: dict, state: _StreamState, timer: StreamTimer, limit: int,
                  over_reason: str) -> Iterator[StreamEvent]:
    """Events of one streamed chunk; records finish_reason, usage, timings and the model."""
    if isinstance(data.get("usage"), dict):
        state.usage = data["usage"]
    if isinstance(data.get("timings"), dict):
        state.timings = data["timings"]
    if isinstance(data.get("model"), str) and data["model"]:
        state.model = data["model"]
    choices = data.get("choices")
    for choice in choices if isinstance(choices, list) else []:
        if not isinstance(choice, dict):
            continue
        delta = _dict(choice.get("delta"))
        for kind, text in (("thinking", delta.get("reasoning_content") or delta.get("reasoning")),
                           ("content", delta.get("content"))):
            if not text or not isinstance(text, str):
                continue
            piece, full = text_within(timer, text, limit)
            if piece:
                timer.mark_token(len(piece))
                yield StreamEvent(kind=kind, text=piece)
            if full:
                yield interrupted(timer, over_reason)
                return
        if choice.get("finish_reason"):
            state.finish = str(choice["finish_reason"])


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _json_or_none(raw: bytes):
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _int(data: dict | None, key: str) -> int | None:
    value = (data if isinstance(data, dict) else {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(data: dict, key: str) -> float | None:
    value = data.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

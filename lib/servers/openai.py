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
- llama-server: /v1/models gives meta.n_ctx_train, /props the slot's n_ctx;
  /apply-template + /tokenize count a prompt; the last chunk carries usage and timings
  (cache_n = prompt tokens reused from the cache).
- llama-cpp-python: /v1/models gives only ids ("owned_by": "me"), no context; its stream
  has no usage at all; /extras/tokenize counts raw text only (no template endpoint), so
  the exact count of a chat prompt comes from a one-token, non-streamed completion of the
  same messages (its usage.prompt_tokens). That call also fills the server's prefix cache,
  so the real answer that follows re-reads almost nothing.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Iterator

import httpx

from ..config import DEFAULT_MODEL, Settings
from ..errors import ModelNotFound, ServerCrashed, ServerError
from .base import (
    StreamPump,
    StreamTimer,
    cancel_reason,
    classify_http_error,
    context_warning,
    drop_reason,
    empty_info,
    error_from_json,
    error_text,
    interrupted,
    make_http_client,
    mid_stream_error_reason,
    no_done_reason,
    parse_json_line,
    silence_error,
    unreachable,
)
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
            limit = entry.get("max_model_len") or (entry.get("meta") or {}).get("n_ctx_train")
            return int(limit) if isinstance(limit, (int, float)) and limit > 0 else None
    return None


def stats_from_final(usage: dict | None, timings: dict | None, finish: str | None, timer: StreamTimer) -> CallStats:
    """CallStats from a stream's usage (OpenAI) and timings (llama-server) objects."""
    usage = usage or {}
    timings = timings or {}
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens")
    if cached is None:
        cached = timings.get("cache_n")
    prompt_ms, predicted_ms = timings.get("prompt_ms"), timings.get("predicted_ms")
    return CallStats(
        prompt_eval_count=usage.get("prompt_tokens"),
        prompt_eval_duration_s=round(prompt_ms / 1000, 6) if prompt_ms else None,
        eval_count=usage.get("completion_tokens", timings.get("predicted_n")),
        eval_duration_s=round(predicted_ms / 1000, 6) if predicted_ms else None,
        cached_tokens=cached,
        done_reason=finish,
        first_token_s=timer.first_token_s,
        wall_s=timer.elapsed(),
    )


def sse_data(line: str) -> str | None:
    """The payload of an SSE 'data:' (or llama-server 'error:') line; None for other lines."""
    for prefix in ("data:", "error:"):
        if line.startswith(prefix):
            payload = line[len(prefix):].strip()
            return payload if prefix == "data:" else '{"error": %s}' % (payload or '""')
    return None


_CANCELLED = object()


class _StreamState:
    """What one streamed answer has said so far."""

    def __init__(self) -> None:
        self.finish: str | None = None
        self.usage: dict | None = None
        self.timings: dict | None = None


class OpenAIBackend:
    """The backend protocol over an OpenAI-compatible /v1/chat/completions server."""

    name = "openai"

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None):
        self.settings = settings
        self._transport = transport
        self._headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        self._client = make_http_client(settings, transport, self._headers)
        self._models: list[dict] | None = None
        self.flavour: str | None = None
        self._probed: dict[str, int | None] = {}
        """Prompt counts already learned by a probe, so chat() after count_prompt() asks once."""

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "OpenAIBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def server(self) -> str:
        return SERVER_NAMES.get(self.flavour or "openai", "The model server")

    # --- plain requests -------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        try:
            return self._client.request(method, path, json=body)
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

    def models(self) -> list[dict]:
        """GET /v1/models (cached): the served models; also tells which server this is."""
        if self._models is None:
            response = self._request("GET", "/v1/models")
            if response.status_code != 200:
                raise self._error(response.status_code, error_text(response), self.settings.model)
            try:
                self._models = list(response.json().get("data") or [])
            except (ValueError, AttributeError) as exc:
                raise ServerError(
                    f"{self.settings.host}/v1/models did not answer like an OpenAI-compatible server. "
                    "Check FOLIO_HOST, or use --backend ollama for Ollama."
                ) from exc
            self.flavour = flavour_of(self._models)
        return self._models

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

    def inspect(self) -> ServerInfo:
        """What the server says about itself and the model; raises only when unreachable."""
        settings = self.settings
        info = empty_info(settings)
        models = self.models()
        info.installed_models = [str(m.get("id")) for m in models]
        info.version = self._version()
        served = self.served_model(settings.model)
        info.model_present = served is not None
        if served is None:
            info.warnings.append(self._missing_message(settings.model))
            return info
        info.model = served
        info.capabilities = ["completion"] + (["thinking"] if THINKING_MODELS.search(served) else [])
        info.trained_context = context_limit(models, served)
        info.loaded_context = self._slot_context()
        limits = [n for n in (info.trained_context, info.loaded_context) if n]
        info.trained_context = min(limits) if limits else None
        if info.trained_context is None:
            info.warnings.append(
                f"{self.server} does not say how long its context is: Folio assumes the configured "
                f"{settings.context:,} tokens. Set --context / FOLIO_CONTEXT to the server's context (n_ctx)."
            )
        warning = context_warning(served, settings.context, info.trained_context,
                                  "start the server with a longer context (README)")
        if warning:
            info.warnings.append(warning)
        return info

    def check(self) -> ServerInfo:
        """inspect(), raising ModelNotFound when the server does not serve the model."""
        info = self.inspect()
        if not info.model_present:
            raise ModelNotFound(self._missing_message(self.settings.model))
        return info

    def _missing_message(self, model: str) -> str:
        served = ", ".join(str(m.get("id")) for m in self.models()) or "none"
        return (
            f"Model '{model}' is not served at {self.settings.host} (it serves: {served}). "
            "Set --model / FOLIO_MODEL to one of those."
        )

    def _version(self) -> str | None:
        if self.flavour != "vllm":
            return None
        response = self._request("GET", "/version")
        return (response.json() or {}).get("version") if response.status_code == 200 else None

    def _slot_context(self) -> int | None:
        """llama-server's per-slot context (GET /props), which can be below n_ctx_train."""
        if self.flavour != "llama.cpp":
            return None
        response = self._request("GET", "/props")
        if response.status_code != 200:
            return None
        n_ctx = ((response.json() or {}).get("default_generation_settings") or {}).get("n_ctx")
        return int(n_ctx) if isinstance(n_ctx, int) and n_ctx > 0 else None

    def count_prompt(self, request: ChatRequest) -> int | None:
        """The server's exact token count of the rendered prompt; None when it cannot say."""
        model = self.served_model(request.model) or request.model
        counter = {
            "vllm": self._count_vllm,
            "llama.cpp": self._count_llama_server,
            "llama-cpp-python": self._count_by_completion,
        }.get(self.flavour or "")
        return counter(request, model) if counter else None

    def _post_json(self, path: str, body: dict) -> dict | None:
        response = self._request("POST", path, body)
        if response.status_code != 200:
            return None
        try:
            data = response.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _count_vllm(self, request: ChatRequest, model: str) -> int | None:
        data = self._post_json("/tokenize", {
            "model": model, "messages": request.messages, "add_generation_prompt": True,
            "chat_template_kwargs": {"enable_thinking": bool(request.think)},
        })
        return _int(data, "count")

    def _count_llama_server(self, request: ChatRequest, model: str) -> int | None:
        rendered = self._post_json("/apply-template", {
            "messages": request.messages, "chat_template_kwargs": {"enable_thinking": bool(request.think)},
        })
        if not rendered or not isinstance(rendered.get("prompt"), str):
            return None
        data = self._post_json("/tokenize", {"content": rendered["prompt"], "add_special": True,
                                             "parse_special": True})
        tokens = (data or {}).get("tokens")
        return len(tokens) if isinstance(tokens, list) else None

    def _count_by_completion(self, request: ChatRequest, model: str) -> int | None:
        return self._probe_prompt_tokens(request, model, None)

    def chat(self, request: ChatRequest, cancel: threading.Event | None = None) -> Iterator[StreamEvent]:
        """Stream one answer: thinking/content events, then one done or interrupted event."""
        timer = StreamTimer()
        model = self.served_model(request.model) or request.model
        prompt_tokens = None
        if self.flavour == "llama-cpp-python":
            # Its stream reports no usage: learn the prompt count first (this also fills the cache).
            prompt_tokens = self._probe_prompt_tokens(request, model, cancel)
            if prompt_tokens is _CANCELLED:
                yield interrupted(timer, cancel_reason(timer))
                return
        client = make_http_client(self.settings, self._transport, self._headers)
        pump = StreamPump(client, "POST", "/v1/chat/completions", build_chat_body(request, model, self.flavour)).start()
        try:
            for event in self._read_chat(pump, timer, model, cancel):
                if event.kind == "done" and event.stats.prompt_eval_count is None:
                    event.stats.prompt_eval_count = prompt_tokens
                yield event
        finally:
            pump.abort()

    def _probe_prompt_tokens(self, request: ChatRequest, model: str, cancel):
        """usage.prompt_tokens of a one-token, non-streamed completion of the same messages."""
        body = build_chat_body(request, model, self.flavour)
        body.update(stream=False, max_tokens=1)
        body.pop("stream_options")
        key = json.dumps([body["model"], body["messages"], body["chat_template_kwargs"]], sort_keys=True)
        if key in self._probed:
            return self._probed[key]
        count = self._run_probe(body, model, cancel)
        if count is not _CANCELLED:
            self._probed = {key: count}  # only the latest prompt is worth remembering
        return count

    def _run_probe(self, body: dict, model: str, cancel):
        client = make_http_client(self.settings, self._transport, self._headers)
        pump = StreamPump(client, "POST", "/v1/chat/completions", body).start()
        try:
            lines = []
            while True:
                item = pump.next(cancel)
                if item[0] == "cancel":
                    return _CANCELLED
                if item[0] == "exc":
                    raise self._transport_error(item[1]) from item[1]
                if item[0] == "open" and item[1] >= 400:
                    raise self._error(item[1], item[2], model)
                if item[0] == "line":
                    lines.append(item[1])
                if item[0] == "end":
                    data = parse_json_line("".join(lines)) or {}
                    return _int(data.get("usage"), "prompt_tokens")
        finally:
            pump.abort()

    def _read_chat(self, pump: StreamPump, timer: StreamTimer, model: str, cancel) -> Iterator[StreamEvent]:
        first = pump.next(cancel)
        if first[0] == "cancel":
            yield interrupted(timer, cancel_reason(timer))
            return
        if first[0] == "exc":
            raise self._transport_error(first[1]) from first[1]
        if first[1] >= 400:
            raise self._error(first[1], first[2], model)
        state = _StreamState()
        while True:
            item = pump.next(cancel)
            if item[0] == "cancel":
                yield interrupted(timer, cancel_reason(timer))
                return
            if item[0] == "exc":
                yield interrupted(timer, drop_reason(self.server, item[1]))
                return
            if item[0] == "end":
                yield self._end_of_stream(state, timer, saw_done=False)
                return
            payload = sse_data(item[1])
            if payload is None or not payload:
                continue  # comments (": ping"), event names, blank separators
            if payload == "[DONE]":
                yield self._end_of_stream(state, timer, saw_done=True)
                return
            data = parse_json_line(payload)
            if data is None:
                yield interrupted(timer, f"{self.server} sent data Folio cannot read: {payload[:200]!r}. Ask again.")
                return
            error = error_from_json(data)
            if error:
                yield interrupted(timer, mid_stream_error_reason(self.server, error))
                return
            yield from _chunk_events(data, state, timer)

    def _end_of_stream(self, state: _StreamState, timer: StreamTimer, *, saw_done: bool) -> StreamEvent:
        if state.finish is not None:
            return StreamEvent(kind="done", stats=stats_from_final(state.usage, state.timings, state.finish, timer))
        if saw_done:
            return interrupted(timer, (
                f"{self.server} ended the answer early without a finish reason (it may have stopped it "
                "to serve another request); the part that arrived is kept. Ask again."))
        return interrupted(timer, no_done_reason(self.server))


def _chunk_events(data: dict, state: _StreamState, timer: StreamTimer) -> Iterator[StreamEvent]:
    """Events of one streamed chunk; records finish_reason, usage and timings."""
    if isinstance(data.get("usage"), dict):
        state.usage = data["usage"]
    if isinstance(data.get("timings"), dict):
        state.timings = data["timings"]
    for choice in data.get("choices") or []:
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning:
            timer.mark_token()
            yield StreamEvent(kind="thinking", text=reasoning)
        if delta.get("content"):
            timer.mark_token()
            yield StreamEvent(kind="content", text=delta["content"])
        if choice.get("finish_reason"):
            state.finish = choice["finish_reason"]


def _int(data: dict | None, key: str) -> int | None:
    value = (data or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None

"""What every model backend takes and gives back (no I/O here).

A backend (lib/servers/ollama.py, lib/servers/openai.py) implements:

    check(cancel=None, *, refresh=False) -> ServerInfo   # remembered while the server answers well
    forget() -> None                                     # check again next time (after an error)
    inspect(cancel=None) -> ServerInfo                   # ask afresh; raises only when unusable
    chat(request: ChatRequest, cancel=None) -> Iterator[StreamEvent]
    count_prompt(request: ChatRequest, cancel=None) -> int | None   # the server's own count, if any

`cancel` is a threading.Event (Stop) or a lib.servers.exchange.Watch, which also carries the
moment the user asked and the question's idle and total limits; every request honours it.
chat() yields 'thinking' and 'content' events as text arrives and ends with exactly one
'done' event (stats set) or one 'interrupted' event (reason set, stats possibly partial).
Errors before the stream starts raise a lib.errors.ServerError subclass (Stop before the
stream: lib.errors.Cancelled).
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _same_model(a: str, b: str) -> bool:
    """Ollama names 'qwen3' and 'qwen3:latest' the same model."""
    def full(name: str) -> str:
        last = name.rsplit("/", 1)[-1]
        return name if ":" in last else f"{name}:latest"

    return a == b or full(a) == full(b)


@dataclass(frozen=True)
class ChatRequest:
    """One model call; every field is sent on every request."""

    model: str
    messages: list[dict]
    """[{'role': 'system'|'user'|'assistant', 'content': str}, ...]"""
    think: bool
    num_ctx: int
    num_keep: int
    """Exact token count of the rendered system block."""
    num_predict: int
    keep_alive: str
    temperature: float
    top_p: float
    top_k: int
    min_p: float = 0.0
    shift: bool = True
    """Always the same value, so the model is never reloaded between questions."""
    seed: int | None = None
    format: dict | None = None
    """A JSON schema the answer must follow (constrained output), or None for free text.
    Ollama takes it as `format`; OpenAI-compatible servers as `response_format`."""


@dataclass
class CallStats:
    """What the server reported about one call, plus Folio's own timings."""

    prompt_eval_count: int | None = None
    """Prompt tokens the server read (cached + newly evaluated)."""
    prompt_eval_duration_s: float | None = None
    eval_count: int | None = None
    eval_duration_s: float | None = None
    total_duration_s: float | None = None
    load_duration_s: float | None = None
    cached_tokens: int | None = None
    """Prompt tokens served from the server's prefix cache, where the server says so."""
    done_reason: str | None = None
    first_token_s: float | None = None
    """Seconds from the moment the user asked to the first streamed text (thinking or answer)."""
    wall_s: float | None = None
    """Seconds from the moment the user asked to the end of this call."""
    sent_s: float | None = None
    """Seconds from the moment the user asked to the sending of this call (check and count before)."""
    model: str | None = None
    """The model the server says answered (the `model` field of its answer), None if it does not say."""

    @property
    def tokens_per_second(self) -> float | None:
        if self.eval_count and self.eval_duration_s:
            return self.eval_count / self.eval_duration_s
        return None


@dataclass
class StreamEvent:
    kind: str
    """thinking | content | done | interrupted"""
    text: str = ""
    stats: CallStats | None = None
    reason: str = ""
    """Why an answer was interrupted (server error line, dropped connection, cancel, no done)."""


SERVER_KINDS = {
    "ollama": "Ollama",
    "vllm": "vLLM",
    "llama.cpp": "llama.cpp server",
    "llama-cpp-python": "llama-cpp-python server",
    "openai": "OpenAI-compatible server",
}
"""Display names of the servers Folio tells apart."""


@dataclass
class ServerInfo:
    """What a server says about itself and the model (the 'doctor' report)."""

    backend: str
    host: str
    version: str | None = None
    model: str = ""
    """The model the server serves under the configured name, and answers with."""
    model_present: bool = False
    capabilities: list[str] = field(default_factory=list)
    trained_context: int | None = None
    loaded_context: int | None = None
    """Context of the model as loaded now (/api/ps), None when not loaded."""
    architecture: str | None = None
    block_count: int | None = None
    head_count_kv: int | None = None
    key_length: int | None = None
    value_length: int | None = None
    installed_models: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    kind: str = ""
    """Which server: 'ollama', 'vllm', 'llama.cpp', 'llama-cpp-python' or 'openai' (another)."""
    requested_model: str = ""
    """The configured model name (`model` is what the server really serves for it)."""
    context_reported: bool = False
    """True when the server said how long its context is (trained_context comes from it)."""
    parallel_slots: int | None = None
    """Requests the server serves at once, where it says (llama-server's `total_slots`)."""

    @property
    def supports_thinking(self) -> bool:
        return "thinking" in self.capabilities

    @property
    def server(self) -> str:
        """'Ollama', 'vLLM', 'llama.cpp server', ...: the kind of server in words."""
        return SERVER_KINDS.get(self.kind or self.backend, SERVER_KINDS["openai"])

    @property
    def display(self) -> str:
        """The server and its version as a person reads them: 'Ollama 0.13.0', 'llama.cpp server'."""
        return f"{self.server} {self.version}" if self.version else self.server

    @property
    def model_matches(self) -> bool:
        """The server serves the configured name itself (not another model in its place)."""
        if not self.requested_model or not self.model:
            return True
        return _same_model(self.model, self.requested_model)

    def to_json(self) -> dict:
        """What the server says, for `ask --json` and the app (keys are only ever added)."""
        return {
            "backend": self.backend,
            "kind": self.kind or self.backend,
            "server": self.server,
            "display": self.display,
            "host": self.host,
            "version": self.version,
            "model": self.model,
            "requested_model": self.requested_model or self.model,
            "model_present": self.model_present,
            "model_matches": self.model_matches,
            "capabilities": list(self.capabilities),
            "trained_context": self.trained_context,
            "loaded_context": self.loaded_context,
            "context_reported": self.context_reported,
            "parallel_slots": self.parallel_slots,
            "installed_models": list(self.installed_models),
            "warnings": list(self.warnings),
        }

    def kv_bytes(self, context: int, bytes_per_value: float) -> int | None:
        """KV-cache size for `context` tokens (2.0 f16, 1.0625 q8_0, 0.5625 q4_0)."""
        if not (self.block_count and self.head_count_kv and self.key_length):
            return None
        per_token = self.block_count * self.head_count_kv * (self.key_length + (self.value_length or self.key_length))
        return int(per_token * context * bytes_per_value)

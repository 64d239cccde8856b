"""What every model backend takes and gives back (no I/O here).

A backend (lib/servers/ollama.py, lib/servers/openai.py) implements:

    check() -> ServerInfo
    chat(request: ChatRequest, cancel: threading.Event | None = None) -> Iterator[StreamEvent]
    count_prompt(request: ChatRequest) -> int | None     # server-side exact count, if the server has one

chat() yields 'thinking' and 'content' events as text arrives and ends with exactly one
'done' event (stats set) or one 'interrupted' event (reason set, stats possibly partial).
Errors before the stream starts raise a lib.errors.ServerError subclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    """Seconds from sending to the first streamed byte of thinking or content."""
    wall_s: float | None = None

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


@dataclass
class ServerInfo:
    """What a server says about itself and the model (the 'doctor' report)."""

    backend: str
    host: str
    version: str | None = None
    model: str = ""
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

    @property
    def supports_thinking(self) -> bool:
        return "thinking" in self.capabilities

    def kv_bytes(self, context: int, bytes_per_value: float) -> int | None:
        """KV-cache size for `context` tokens (2.0 f16, 1.0625 q8_0, 0.5625 q4_0)."""
        if not (self.block_count and self.head_count_kv and self.key_length):
            return None
        per_token = self.block_count * self.head_count_kv * (self.key_length + (self.value_length or self.key_length))
        return int(per_token * context * bytes_per_value)

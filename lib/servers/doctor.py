"""`python -m lib doctor`: what the server and the model can really do, in plain words.

    diagnosis = diagnose(load_settings())     # never raises for a server problem: it reports it
    print(format_report(diagnosis))
    diagnosis.ok                              # reachable, a model server, new enough, model present

`python -m lib doctor` exits 0 when `ok`, 3 otherwise (unreachable, not a model server, too
old, model missing): the report is printed either way, never a traceback.

The real context is min(configured, trained): stock qwen3:14b holds 40,960 tokens whatever
num_ctx says, and Ollama caps it silently. The KV memory is computed from the model's own
geometry (/api/show), for the real and the configured context, at f16, q8_0 and q4_0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import Settings
from ..errors import ServerError
from . import make_backend
from .base import real_context
from .protocol import ServerInfo

KV_TYPES = {"f16": 2.0, "q8_0": 1.0625, "q4_0": 0.5625}
"""Bytes per cached value for each KV-cache type (q8_0/q4_0 carry a scale per 32 values)."""
GIB = 2**30
LARGE_KV_BYTES = 12 * GIB
"""A KV cache above this at f16 will not fit beside ~9 GB of weights on a 24 GB card."""


@dataclass
class Diagnosis:
    """The doctor's findings; `error` is set (and `info` None) when the server could not be asked."""

    settings: Settings
    info: ServerInfo | None = None
    error: str = ""
    error_kind: str = ""
    configured_context: int = 0
    real_context: int = 0
    kv: dict[str, dict[int, int | None]] = field(default_factory=dict)
    """{'f16': {context: bytes}, ...} for the real and the configured context."""
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error and self.info is not None and self.info.model_present and not self.too_old

    @property
    def too_old(self) -> bool:
        from .ollama import is_too_old

        return self.info is not None and self.info.backend == "ollama" and is_too_old(self.info.version)

    def to_json(self) -> dict:
        info = self.info
        return {
            "ok": self.ok,
            "backend": self.settings.backend,
            "host": self.settings.host,
            "model": self.settings.model,
            "error": self.error or None,
            "version": info.version if info else None,
            "server": info.display if info else None,
            "kind": (info.kind or info.backend) if info else None,
            "model_served": info.model if info and info.model_present else None,
            "model_matches": info.model_matches if info else None,
            "context_reported": info.context_reported if info else None,
            "model_present": info.model_present if info else None,
            "capabilities": info.capabilities if info else [],
            "trained_context": info.trained_context if info else None,
            "loaded_context": info.loaded_context if info else None,
            "configured_context": self.configured_context,
            "real_context": self.real_context,
            "kv_bytes": {kind: {str(ctx): size for ctx, size in sizes.items()} for kind, sizes in self.kv.items()},
            "installed_models": info.installed_models if info else [],
            "warnings": list(self.warnings),
        }


def diagnose(settings: Settings, backend=None, cancel=None) -> Diagnosis:
    """Ask the server everything the doctor reports; server problems become `error`, not exceptions."""
    backend = backend or make_backend(settings)
    diagnosis = Diagnosis(settings=settings, configured_context=settings.context, real_context=settings.context)
    try:
        info = backend.inspect(cancel) if hasattr(backend, "inspect") else backend.check()
    except ServerError as exc:
        diagnosis.error, diagnosis.error_kind = str(exc), type(exc).__name__
        return diagnosis
    diagnosis.info = info
    diagnosis.real_context = real_context(settings.context, info.trained_context)
    diagnosis.kv = kv_table(info, sorted({diagnosis.real_context, settings.context}))
    diagnosis.warnings = list(info.warnings) + extra_warnings(settings, info, diagnosis)
    return diagnosis


def kv_table(info: ServerInfo, contexts: list[int]) -> dict[str, dict[int, int | None]]:
    """KV-cache bytes for each context at each cache type."""
    return {kind: {ctx: info.kv_bytes(ctx, size) for ctx in contexts} for kind, size in KV_TYPES.items()}


def extra_warnings(settings: Settings, info: ServerInfo, diagnosis: Diagnosis) -> list[str]:
    """What the server's own answers imply for Folio: reloads, thinking, memory."""
    warnings = []
    model = info.model or settings.model
    if info.model_present and info.loaded_context and info.loaded_context != diagnosis.real_context:
        warnings.append(
            f"{model} is loaded now with {info.loaded_context:,} tokens; Folio's first question will "
            f"reload it with {diagnosis.real_context:,} (this takes a while, once)."
        )
    if info.model_present and settings.think and not info.supports_thinking:
        warnings.append(
            f"Thinking is on, but {model} does not say it can think: ask without thinking "
            "(--no-think) or use a Qwen3 model."
        )
    f16 = diagnosis.kv.get("f16", {}).get(diagnosis.real_context)
    if settings.backend == "ollama" and f16 and f16 > LARGE_KV_BYTES:
        q8 = diagnosis.kv["q8_0"][diagnosis.real_context]
        warnings.append(
            f"The KV cache for {diagnosis.real_context:,} tokens takes {gib(f16)} at f16 on top of the "
            f"weights: on a 24 GB card start Ollama with OLLAMA_KV_CACHE_TYPE=q8_0 ({gib(q8)}), "
            "OLLAMA_FLASH_ATTENTION=1 and OLLAMA_NUM_PARALLEL=1 (the cache is multiplied by parallel slots)."
        )
    return warnings


def gib(size: int | None) -> str:
    return "unknown" if size is None else f"{size / GIB:.1f} GiB"


def _server_line(d: Diagnosis) -> str:
    info = d.info
    if info is not None:
        return f"Server:      {info.display} at {d.settings.host}"
    name = "Ollama" if d.settings.backend == "ollama" else "OpenAI-compatible server"
    return f"Server:      {name} at {d.settings.host}"


def _model_line(info: ServerInfo, settings: Settings) -> str:
    if not info.model_present:
        return f"Model:       {settings.model}: NOT AVAILABLE"
    caps = ", ".join(info.capabilities) or "unknown"
    if not info.model_matches:
        return (f"Model:       {settings.model} is NOT served here; the server answers every question with "
                f"{info.model}, its only model (capabilities: {caps})")
    return f"Model:       {info.model} (present; capabilities: {caps})"


def _status_line(d: Diagnosis) -> str:
    if not d.ok:
        return "Status:      NOT READY (see above)"
    if not d.info.model_matches:
        return f"Status:      ready, but answers come from {d.info.model}, not {d.settings.model}"
    return "Status:      ready"


def _context_lines(d: Diagnosis) -> list[str]:
    info = d.info
    trained = f"{info.trained_context:,}" if info.trained_context else "unknown"
    lines = [f"Context:     configured {d.configured_context:,} | model holds {trained} | Folio uses {d.real_context:,}"]
    if info.backend == "ollama":  # other servers keep their one model loaded
        loaded = (f"yes, with {info.loaded_context:,} tokens" if info.loaded_context
                  else "no (the first question loads it)")
        lines.append(f"Loaded now:  {loaded}")
    return lines


def _kv_lines(d: Diagnosis) -> list[str]:
    if not d.kv or all(size is None for sizes in d.kv.values() for size in sizes.values()):
        return ["KV cache:    unknown (the server does not give the model's layout)"]
    lines = ["KV cache (memory the context needs on top of the weights):",
             f"  {'tokens':>9}  " + "".join(f"{kind:>11}" for kind in KV_TYPES)]
    for ctx in sorted(next(iter(d.kv.values()))):
        label = "Folio uses" if ctx == d.real_context else "configured"
        cells = "".join(f"{gib(d.kv[kind][ctx]):>11}" for kind in KV_TYPES)
        lines.append(f"  {ctx:>9,}  {cells}   ({label})")
    return lines


def format_report(diagnosis: Diagnosis) -> str:
    """The doctor's report as plain text for the terminal."""
    d = diagnosis
    lines = ["Folio doctor", _server_line(d)]
    if d.error:
        lines += [f"Problem:     {d.error}"]
        return "\n".join(lines) + "\n"
    info = d.info
    lines.append(_model_line(info, d.settings))
    if info.model_present:
        lines += _context_lines(d) + _kv_lines(d)
    if info.installed_models:
        lines.append("Installed:   " + ", ".join(info.installed_models))
    if d.warnings:
        lines.append("Warnings:")
        lines += [f"  - {w}" for w in d.warnings]
    lines.append(_status_line(d))
    return "\n".join(lines) + "\n"

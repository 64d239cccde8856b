"""Streaming one review call to its end: the text, the statistics, and why it stopped early.

Shared by the row's call, the composing call of a document read in parts, and asking the table.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ...errors import ModelNotFound, ServerError, ServerTooOld, ServerUnreachable, ThinkingUnsupported
from ...servers.protocol import CallStats, ChatRequest

FATAL = (ServerUnreachable, ModelNotFound, ServerTooOld, ThinkingUnsupported)
"""Server problems that would fail every row alike: they stop the run instead of failing cells."""


@dataclass
class Streamed:
    text: str = ""
    thinking: str = ""
    stats: CallStats | None = None
    interrupted: str = ""
    first_token_s: float | None = None
    started: float = field(default_factory=time.monotonic)


def stream_reply(backend, request: ChatRequest, cancel: threading.Event | None) -> Streamed:
    """The whole streamed answer; `interrupted` says why it stopped early (empty when it finished)."""
    out = Streamed()
    try:
        for event in backend.chat(request, cancel):
            if event.kind in ("thinking", "content"):
                if out.first_token_s is None:
                    out.first_token_s = round(time.monotonic() - out.started, 4)
                if event.kind == "content":
                    out.text += event.text
                else:
                    out.thinking += event.text
            elif event.kind == "done":
                out.stats = event.stats
                return out
            elif event.kind == "interrupted":
                out.stats = event.stats
                out.interrupted = event.reason or "The answer stopped before it was finished."
                return out
        out.interrupted = "The server's stream ended without saying the answer was finished."
    except ServerError as exc:
        if not (out.text or out.thinking) or isinstance(exc, FATAL):
            raise
        out.interrupted = f"{exc}"
    return out

"""One document, one call, every column: the per-document work of a review table.

    row = review_row(document, columns, settings, backend=backend, server_info=info)
    row.cells["c1"].value, row.cells["c1"].citations, row.call

`review_row` is a function of (the columns still to answer, the document) that returns the
row; it reads and writes nothing but the model server, so a runner or a job can call it from
any thread and store what it returns. Within one call: the real context, the exact budget
(a document longer than one call is refused with a clear reason, see `parts.py`), the request
with num_keep = the system block and constrained output where the server takes it, the
server's prompt count checked, every quote verified against the document.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

from ...config import Settings
from ...documents import Document
from ...errors import (
    BudgetExceeded,
    ModelNotFound,
    ServerBusy,
    ServerCrashed,
    ServerError,
    ServerTooOld,
    ServerUnreachable,
    ThinkingUnsupported,
)
from ...reading.passages import assign_unique_ids
from ...reading.tokens import get_counter
from ...servers.protocol import CallStats, ChatRequest
from ..answering import build_request, call_record, prompt_mismatch, refuse_if_server_over
from ..budget import budget_of
from . import parts
from .cells import Cell, answered_cell, not_stated_cell, problem_cell
from .columns import Column
from .reply import read_reply
from .request import build_review_prompt, reply_schema

FATAL = (ServerUnreachable, ModelNotFound, ServerTooOld, ThinkingUnsupported)
"""Server problems that would fail every row alike: they stop the run instead of failing cells."""
_FORMAT_WORDS = ("format", "schema", "grammar", "json")


@dataclass
class Row:
    """What one call gave for one document: a cell per column asked, and the call's record."""

    sha256: str
    document: str
    cells: dict[str, Cell] = field(default_factory=dict)
    call: dict | None = None
    warnings: list[str] = field(default_factory=list)
    constrained: bool = True
    """Whether the answer was constrained to the schema (False after a server refused it)."""
    retryable: bool = False
    """The row failed for a passing reason (busy, crashed, interrupted): worth one more try."""


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


def review_row(
    document: Document,
    columns: Sequence[Column],
    settings: Settings,
    *,
    backend,
    context: int,
    think: bool = False,
    constrained: bool = True,
    cancel: threading.Event | None = None,
    counter=None,
) -> Row:
    """Answer `columns` for `document` in one call (see the module docstring).

    Raises a FATAL server error (the run should stop); every other problem becomes cells that
    say why (failed / refused / unreadable).
    """
    document = assign_unique_ids([document])[0]
    row = Row(sha256=document.sha256, document=document.name, constrained=constrained)
    counter = counter or get_counter()
    built = build_review_prompt(document, columns, think=think, counter=counter)
    budget = budget_of(built, settings, context=context)
    if not budget.fits:
        return parts.over_long_row(row, document, columns, budget)
    request = build_request(built, settings, budget)
    if constrained:
        request = dataclasses.replace(request, format=reply_schema(columns))
    try:
        server_count = backend.count_prompt(request)
        refuse_if_server_over(server_count, budget)
        streamed = _ask(backend, request, cancel, row)
    except BudgetExceeded as exc:
        return parts.over_long_row(row, document, columns, budget, str(exc))
    except FATAL:
        raise
    except ServerError as exc:
        row.retryable = isinstance(exc, (ServerBusy, ServerCrashed))
        return _failed(row, columns, str(exc))
    if cancel is not None and cancel.is_set():
        row.cells = {}  # a cancelled row is not stored: the next run asks it again
        return row
    request = dataclasses.replace(request, format=reply_schema(columns) if row.constrained else None)
    row.call = _record(document, request, budget, server_count, streamed, row)
    if streamed.interrupted:
        row.retryable = True
        return _failed(row, columns, f"The answer was interrupted: {streamed.interrupted}")
    _fill(row, document, columns, streamed, request)
    return row


def _ask(backend, request: ChatRequest, cancel, row: Row) -> Streamed:
    """Stream the answer; a server that refuses constrained output is asked again without it."""
    try:
        return stream_reply(backend, request, cancel)
    except FATAL:
        raise
    except ServerError as exc:
        if request.format is None or not any(word in str(exc).lower() for word in _FORMAT_WORDS):
            raise
        row.constrained = False
        row.warnings.append(f"The server refused constrained output ({exc}); the answer was read as free text.")
        return stream_reply(backend, dataclasses.replace(request, format=None), cancel)


def _record(document: Document, request: ChatRequest, budget, server_count, streamed: Streamed, row: Row) -> dict:
    record = call_record([document], request, budget.prompt, streamed.stats, streamed.started, streamed.first_token_s)
    record.update(server_counted_prompt=server_count, constrained=request.format is not None,
                  document=document.name, sha256=document.sha256, document_tokens=budget.total_documents)
    stats = streamed.stats
    if stats is not None and not streamed.interrupted:
        expected, reference = (server_count, "the server's tokenizer") if server_count is not None else (budget.prompt, "Folio")
        tolerance = (4, 4) if server_count is not None else (max(budget.template, 8), max(budget.template, 8))
        if budget.is_estimate:
            tolerance = (int(budget.prompt * 0.65), tolerance[1])
        mismatch = prompt_mismatch(expected, stats.prompt_eval_count, tolerance, reference)
        if mismatch:
            row.warnings.append(mismatch)
    record["warnings"] = list(row.warnings)
    return record


def _failed(row: Row, columns: Sequence[Column], reason: str) -> Row:
    row.cells = {c.key: problem_cell(c, "failed", reason) for c in columns}
    return row


def _fill(row: Row, document: Document, columns: Sequence[Column], streamed: Streamed, request: ChatRequest) -> None:
    """Cells from the reply: typed, verified; a column the reply does not hold is unreadable."""
    raw = read_reply(streamed.text, columns)
    cut = streamed.stats is not None and streamed.stats.done_reason == "length"
    for column in columns:
        found = raw.get(column.key)
        if found is None:
            reason = (f"The answer was cut at the {request.num_predict:,} tokens reserved for it before this "
                      "column; raise FOLIO_ANSWER_RESERVE or split the columns.") if cut else (
                      "The model's reply has no readable answer for this column.")
            row.cells[column.key] = problem_cell(column, "unreadable", reason, raw=streamed.text)
        elif found.not_stated:
            row.cells[column.key] = not_stated_cell(column, found.answer, found.source)
        else:
            row.cells[column.key] = answered_cell(column, found.value, found.answer, found.citations, document,
                                                  found.source)

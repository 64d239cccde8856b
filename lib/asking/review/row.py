"""One document, one call, every column: the per-document work of a review table.

    row = review_row(document, columns, settings, backend=backend, context=context)
    row.cells["c1"].value, row.cells["c1"].citations, row.calls

`review_row` is a function of (the columns still to answer, the document) that returns the
row; it reads and writes nothing but the model server, so a runner or a job can call it from
any thread and store what it returns. Within one call: the real context, the exact budget,
the request with num_keep = the system block and constrained output where the server takes
it, the server's prompt count checked, every quote verified against the document.

A document longer than one call is read in parts at its natural boundaries (`parts.py`, the
plan engine's splitting, passage IDs kept): one call per part answering every column, then
the cells composed from the parts' answers; text columns answered by several parts get one
short composing call over the parts' answers and verified quotes (`compose.py`).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any, Sequence

from ...config import Settings
from ...documents import Document
from ...errors import BudgetExceeded, InputError, ServerBusy, ServerCrashed, ServerError
from ...reading.passages import assign_unique_ids
from ...reading.tokens import get_counter
from ...servers.protocol import ChatRequest
from ..answering import build_request, call_record, prompt_mismatch, refuse_if_server_over
from ..budget import budget_of
from ..several_calls import server_token_ratio
from . import compose, parts
from .cells import Cell, answered_cell, not_stated_cell, problem_cell
from .columns import Column
from .reply import read_reply
from .request import build_review_prompt, reply_schema
from .stream import FATAL, Streamed, stream_reply

__all__ = ["FATAL", "Row", "Streamed", "review_row", "stream_reply"]

_FORMAT_WORDS = ("format", "schema", "grammar", "json")


@dataclass
class Row:
    """What one document's call(s) gave: a cell per column asked, and the calls' records."""

    sha256: str
    document: str
    cells: dict[str, Cell] = field(default_factory=dict)
    calls: list[dict] = field(default_factory=list)
    """One record per call: one for a document read whole; a document read in parts has one per
    part (with "part" and "parts") and, where text columns were composed, the composing call."""
    warnings: list[str] = field(default_factory=list)
    constrained: bool = True
    """Whether the answer was constrained to the schema (False after a server refused it)."""
    retryable: bool = False
    """The row failed for a passing reason (busy, crashed, interrupted): worth one more try."""

    @property
    def call(self) -> dict | None:
        """The first call's record (the only one for a document read whole)."""
        return self.calls[0] if self.calls else None


@dataclass(frozen=True)
class Asking:
    """What every call of one row needs: the server, the real context, and the Stop flag."""

    settings: Settings
    backend: Any
    context: int
    think: bool = False
    cancel: threading.Event | None = None
    counter: Any = None

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


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
    """Answer `columns` for `document`: one call, or one per part (see the module docstring).

    Raises a FATAL server error (the run should stop); every other problem becomes cells that
    say why (failed / refused / unreadable). A cancelled row comes back without cells.
    """
    document = assign_unique_ids([document])[0]
    row = Row(sha256=document.sha256, document=document.name, constrained=constrained)
    asking = Asking(settings, backend, context, think, cancel, counter or get_counter())
    built = build_review_prompt(document, columns, think=think, counter=asking.counter)
    budget = budget_of(built, settings, context=context)
    if budget.fits:
        return _call(asking, row, document, document, columns, built, budget)
    return _in_parts(asking, row, document, columns, budget)


def _call(asking: Asking, row: Row, sent: Document, document: Document, columns: Sequence[Column], built,
          budget) -> Row:
    """One call: `sent` is what the prompt holds (the document or one part), `document` the whole
    document the quotes are verified against."""
    request = build_request(built, asking.settings, budget)
    if row.constrained:
        request = dataclasses.replace(request, format=reply_schema(columns))
    try:
        server_count = asking.backend.count_prompt(request)
        refuse_if_server_over(server_count, budget)
        streamed = _ask(asking.backend, request, asking.cancel, row)
    except BudgetExceeded as exc:
        return parts.over_long_row(row, document, columns, budget, str(exc))
    except FATAL:
        raise
    except ServerError as exc:
        row.retryable = isinstance(exc, (ServerBusy, ServerCrashed))
        return _failed(row, columns, str(exc))
    if asking.cancelled:
        row.cells = {}  # a cancelled row is not stored: the next run asks it again
        return row
    request = dataclasses.replace(request, format=reply_schema(columns) if row.constrained else None)
    row.calls.append(_record(sent, request, budget, server_count, streamed, row))
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


def _failed(row: Row, columns: Sequence[Column], reason: str, status: str = "failed") -> Row:
    row.cells = {c.key: problem_cell(c, status, reason) for c in columns}
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


# ------------------------------------------------------------------------ in parts


def _in_parts(asking: Asking, row: Row, document: Document, columns: Sequence[Column], budget) -> Row:
    """One call per part (every column each time), then the cells composed from the parts."""

    def measure(part: Document):
        built = build_review_prompt(part, columns, think=asking.think, counter=asking.counter)
        return built, budget_of(built, asking.settings, context=asking.context)

    try:
        ratio = server_token_ratio(asking.backend, asking.settings, [document])
        pieces = parts.split_to_fit(document, budget, measure, asking.counter, ratio)
    except InputError as exc:
        return parts.over_long_row(row, document, columns, budget, str(exc))
    answers = []
    for part in pieces:
        part_row = Row(row.sha256, row.document, constrained=row.constrained)
        _call(asking, part_row, part.document, document, columns, part.built, part.budget)
        if asking.cancelled:
            row.cells = {}
            return row
        for record in part_row.calls:
            record.update(part.describe())
        row.calls += part_row.calls
        row.warnings += [f"{part.label}: {w}" for w in part_row.warnings if w not in row.warnings]
        row.constrained = row.constrained and part_row.constrained
        broken = next((c for c in part_row.cells.values() if c.status in ("failed", "refused")), None)
        if broken is not None:
            row.retryable = part_row.retryable
            return _failed(row, columns, f"{part.label.capitalize()} ({part.where}): {broken.reason}", broken.status)
        answers.append(part_row.cells)
    row.cells = parts.compose_cells(
        columns, answers, compose_text=lambda cols, cells: _compose_text(asking, row, document, cols, cells, len(pieces)))
    if asking.cancelled:
        row.cells = {}
    return row


def _compose_text(asking: Asking, row: Row, document: Document, columns: list[Column],
                  cells: dict[str, list[tuple[int, Cell]]], count: int) -> dict[str, Cell]:
    """The composing call for the text columns that several parts answered; {} when it cannot be made
    (the caller then joins the parts' answers and flags the cell)."""
    built = compose.build_compose_prompt(document, columns, cells, count, think=asking.think, counter=asking.counter)
    budget = budget_of(built, asking.settings, context=asking.context)
    if not budget.fits:
        row.warnings.append("The parts' answers were too long for one composing call: they are joined instead.")
        return {}
    request = build_request(built, asking.settings, budget)
    if row.constrained:
        request = dataclasses.replace(request, format=reply_schema(columns))
    try:
        streamed = _ask(asking.backend, request, asking.cancel, row)
    except FATAL:
        raise
    except ServerError as exc:
        row.warnings.append(f"The composing call failed ({exc}): the parts' answers are joined instead.")
        return {}
    if asking.cancelled:
        return {}
    record = _record(document, request, budget, None, streamed, row)
    record.update(kind="compose", columns=[c.title for c in columns], parts=count)
    row.calls.append(record)
    if streamed.interrupted:
        row.warnings.append(f"The composing call was interrupted ({streamed.interrupted}): the parts' answers are "
                            "joined instead.")
        return {}
    return compose.composed_cells(document, columns, streamed.text)

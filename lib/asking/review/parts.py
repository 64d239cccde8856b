"""Documents longer than one call: the seam where the plan engine's parts plug in.

Today a row whose document does not fit one call is refused, every cell saying so with the
numbers. When the plan engine's splitting lands (a function that cuts a Document into
consecutive parts that each fit a token budget, keeping passage IDs), `over_long_row` becomes:

    parts = split_document(document, budget.available)         # the plan engine
    part_rows = [review_row(part, columns, ...) for part in parts]
    cells = compose_cells(columns, part_rows, compose_text=...) # the rules below

and each composed cell carries `parts = len(parts)`. The composition rules (issue 11):
- yes/no, options, date, number: from the verified evidence of every part: the values that
  have a verified citation; one distinct value -> that value; several -> the cell lists them
  and needs review; none verified -> the best unverified value, needing review;
- list: the union of the items with verified citations, in order of first appearance;
- text: a short composing call over the parts' answers and verified quotes (`compose_text`).
`compose_cells` implements the pure rules now, so only the splitting and the composing call
remain to wire.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ...documents import Document
from .cells import Cell, problem_cell
from .columns import Column

TOO_LONG = "longer than one call; parts come with the plan engine"


def over_long_row(row, document: Document, columns: Sequence[Column], budget, detail: str = ""):
    """The row of a document that does not fit one call: every cell refused, saying why."""
    reason = (
        f"{document.name} is {TOO_LONG} (it needs {budget.total_documents:,} tokens; one call has room for "
        f"{max(budget.available, 0):,})."
    )
    if detail:
        reason += f" {detail}"
    row.cells = {c.key: problem_cell(c, "refused", reason) for c in columns}
    return row


def compose_cells(columns: Sequence[Column], part_cells: Sequence[dict[str, Cell]],
                  compose_text: Callable[[Column, list[Cell]], Cell] | None = None) -> dict[str, Cell]:
    """One cell per column from the cells of every part (rules in the module docstring)."""
    out = {}
    for column in columns:
        cells = [cells[column.key] for cells in part_cells if column.key in cells]
        if column.type == "text" and compose_text is not None:
            cell = compose_text(column, cells)
        else:
            cell = _compose(column, cells)
        cell.parts = len(part_cells)
        out[column.key] = cell
    return out


def _compose(column: Column, cells: list[Cell]) -> Cell:
    answered = [c for c in cells if c.status == "answered"]
    if not answered:
        problems = [c for c in cells if c.status in ("failed", "refused", "unreadable")]
        if problems:
            return problem_cell(column, problems[0].status, problems[0].reason, problems[0].raw)
        return cells[0] if cells else problem_cell(column, "unreadable", "No part answered this column.")
    verified = [c for c in answered if c.verified] or answered
    if column.type == "list":
        return _union(column, verified, bool([c for c in answered if c.verified]))
    distinct: dict[str, Cell] = {}
    for cell in verified:
        distinct.setdefault(repr(cell.value if cell.value is not None else cell.text), cell)
    first = next(iter(distinct.values()))
    composed = Cell.from_json(first.to_json())
    composed.citations = [c for cell in verified for c in cell.citations]
    composed.review = list(first.review) if len(distinct) == 1 else [
        "the parts disagree: " + "; ".join(cell.answer for cell in distinct.values())]
    return composed


def _union(column: Column, cells: list[Cell], any_verified: bool) -> Cell:
    composed = Cell.from_json(cells[0].to_json())
    items = list(dict.fromkeys(item for cell in cells for item in (cell.value or [])))
    composed.value = items or None
    composed.text = "; ".join(items)
    composed.citations = [c for cell in cells for c in cell.citations]
    composed.review = [] if any_verified else list(cells[0].review)
    return composed

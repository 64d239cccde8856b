"""Documents longer than one call: read in parts, and the cells composed from the parts' answers.

    pieces = split_to_fit(document, budget, measure, counter)   # [Part]: each one call that fits
    cells = compose_cells(columns, [part_cells, ...], compose_text=call)

The parts are the plan engine's (lib/asking/parts.py): consecutive runs of passages cut at the
strongest boundary near the end of what one call holds (a chapter or section heading, else a
paragraph end), passage IDs kept, so every quote is verified against the whole document. Each
part is asked every column, in one call, like a whole document.

The composition rules (issue 11), from the cells of every part:
- yes/no, options, date, number: from the verified evidence of every part: the values that
  have a verified citation; one distinct value -> that value; several -> the cell lists them
  and needs review; none verified -> the first answered value, needing review;
- list: the union of the items (of the parts with verified citations, when there are any), in
  order of first appearance;
- text: one part's answer when only one part answered; when several did, a short composing
  call over the parts' answers and verified quotes (`compose_text`, one call for every such
  column of the document); without it, the parts' answers joined and flagged for review;
- a column no part answered is "not stated" when the parts said so, else it keeps the
  first problem (unreadable);
- a part whose reply could not be read for a column is named among the cell's review notes.
Every composed cell carries `parts` = how many parts were read. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ...documents import Document
from ...errors import InputError
from ..parts import MarkupCounter, Piece, layout_of, split_document
from .cells import Cell, problem_cell
from .columns import Column

MAX_SPLITS = 4
"""Tries at cutting parts that fit: each try narrows the parts by what the widest one overran."""
MIN_PART_ROOM = 256
"""Fewer tokens than this for a part's passages next to the instructions cannot make a useful call."""
REVIEW_PARTS_DISAGREE = "the parts disagree: "


@dataclass(frozen=True)
class Part:
    """One call's share of a long document: the part as a Document (same passage IDs), its prompt and budget."""

    piece: Piece
    document: Document
    built: object
    budget: object

    @property
    def label(self) -> str:
        return f"part {self.piece.part} of {self.piece.parts}"

    @property
    def where(self) -> str:
        """'pages 1-12, passages kzt-1 to kzt-140' (where the part lies in the document)."""
        pages = self.piece.pages
        span = f"passages {self.piece.first_id} to {self.piece.last_id}"
        if pages:
            span = (f"page {pages[0]}" if pages[0] == pages[1] else f"pages {pages[0]}-{pages[1]}") + ", " + span
        return span

    def describe(self) -> dict:
        """What a part's call record adds: which part, of how many, and what it held."""
        return {"part": self.piece.part, "parts": self.piece.parts, "passages": [self.piece.first_id, self.piece.last_id],
                "pages": list(self.piece.pages) if self.piece.pages else None, "section": self.piece.section}


def part_document(piece: Piece) -> Document:
    """The piece as a Document of its own: the same passages (IDs, pages), named for the part."""
    document = piece.document
    passages = list(piece.passages)
    return Document(
        name=f"{document.name} (part {piece.part} of {piece.parts})", sha256=document.sha256, format=document.format,
        pages=document.pages, text="".join(p.text for p in passages), passages=passages,
        tokens=sum(p.tokens for p in passages), counter=document.counter, page_labels=document.page_labels,
    )


def split_to_fit(document: Document, budget, measure: Callable, counter, ratio: float = 1.0) -> list[Part]:
    """The document cut into parts whose review calls each fit (`measure(part) -> (built, budget)`).

    The plan engine counts a part as it renders parts; a review call renders it as a whole
    document is rendered, a few tokens apart: a part that still does not fit narrows the next try.
    `ratio`: tokens the server counts per token Folio counts (a server with another tokenizer
    than Qwen3's): the parts are cut that much smaller, so the server's own count fits too.
    """
    markup = MarkupCounter(counter)
    layout = layout_of(document, markup)
    room = int(budget.available / max(ratio, 1.0))
    room -= room // 50
    for _ in range(MAX_SPLITS):
        if room < MIN_PART_ROOM:
            break
        pieces = split_document(document, layout, room, markup)
        measured = []
        for piece in pieces:
            sub = part_document(piece)
            built, part_budget = measure(sub)
            measured.append(Part(piece, sub, built, part_budget))
        over = max(-p.budget.left for p in measured)
        if over <= 0 and ratio > 1.0:
            over = max(p.budget.prompt * ratio - (p.budget.context - p.budget.reserved) for p in measured)
        if over <= 0:
            return measured
        room -= over + max(room // 100, 8)
    raise InputError(
        f"one call has room for only {max(budget.available, 0):,} tokens of it next to the instructions and the "
        f"{budget.reserved:,} tokens kept for the answer: raise the context (FOLIO_CONTEXT) or lower "
        "FOLIO_ANSWER_RESERVE, or use fewer columns."
    )


def over_long_row(row, document: Document, columns: Sequence[Column], budget, detail: str = ""):
    """The row of a document that cannot be read even in parts: every cell refused, saying why."""
    reason = (f"{document.name} could not be read, not even in parts (it needs {budget.total_documents:,} tokens; "
              f"one call has room for {max(budget.available, 0):,}).")
    if detail:
        reason += f" {detail[0].upper() + detail[1:]}"
    row.cells = {c.key: problem_cell(c, "refused", reason) for c in columns}
    return row


# ------------------------------------------------------------------------- composing

ComposeText = Callable[[list[Column], dict[str, list[tuple[int, Cell]]]], dict[str, Cell]]
"""(text columns, {column key: [(part number, cell), ...]}) -> composed cells by key ({} if it failed)."""


def compose_cells(columns: Sequence[Column], part_cells: Sequence[dict[str, Cell]],
                  compose_text: ComposeText | None = None) -> dict[str, Cell]:
    """One cell per column from the cells of every part (rules in the module docstring)."""
    out: dict[str, Cell] = {}
    to_compose: dict[str, list[tuple[int, Cell]]] = {}
    for column in columns:
        numbered = [(n, cells[column.key]) for n, cells in enumerate(part_cells, 1) if column.key in cells]
        evidence = _evidence(numbered)
        if column.type == "text" and compose_text is not None and len(evidence) > 1:
            to_compose[column.key] = evidence
        else:
            out[column.key] = _compose(column, numbered)
    if to_compose:
        wanted = [c for c in columns if c.key in to_compose]
        composed = compose_text(wanted, to_compose) or {}
        for column in wanted:
            cell = composed.get(column.key)
            out[column.key] = cell if cell is not None else _joined(column, to_compose[column.key])
    for column in columns:
        cell = out[column.key]
        cell.parts = len(part_cells)
        unread = [n for n, c in ((n, cells.get(column.key)) for n, cells in enumerate(part_cells, 1))
                  if c is not None and c.status == "unreadable"]
        if unread and cell.status == "answered":
            cell.review.append("not read in " + ", ".join(f"part {n}" for n in unread) + " (the reply could not be read)")
    return {c.key: out[c.key] for c in columns}


def _evidence(numbered: list[tuple[int, Cell]]) -> list[tuple[int, Cell]]:
    """The answered parts with a verified citation, or every answered part when none has one."""
    answered = [(n, c) for n, c in numbered if c.status == "answered"]
    return [(n, c) for n, c in answered if c.verified] or answered


def _compose(column: Column, numbered: list[tuple[int, Cell]]) -> Cell:
    cells = [c for _n, c in numbered]
    evidence = [c for _n, c in _evidence(numbered)]
    if not evidence:
        if cells and all(c.status == "not_stated" for c in cells):
            return Cell.from_json(cells[0].to_json())
        problems = [c for c in cells if c.status in ("failed", "refused", "unreadable")]
        if problems:
            return problem_cell(column, problems[0].status, problems[0].reason, problems[0].raw)
        return Cell.from_json(cells[0].to_json()) if cells else problem_cell(
            column, "unreadable", "No part answered this column.")
    any_verified = any(c.verified for c in evidence)
    if column.type == "list":
        return _union(evidence, any_verified)
    distinct: dict[str, Cell] = {}
    for cell in evidence:
        distinct.setdefault(repr(cell.value if cell.value is not None else cell.text), cell)
    first = next(iter(distinct.values()))
    composed = Cell.from_json(first.to_json())
    composed.citations = [c for cell in evidence for c in cell.citations]
    if len(distinct) > 1:
        composed.review = [REVIEW_PARTS_DISAGREE + "; ".join(cell.answer for cell in distinct.values())]
    return composed


def _union(cells: list[Cell], any_verified: bool) -> Cell:
    composed = Cell.from_json(cells[0].to_json())
    items = list(dict.fromkeys(item for cell in cells for item in (cell.value or [])))
    composed.value = items or None
    composed.text = "; ".join(items)
    composed.answer = "; ".join(dict.fromkeys(c.answer for c in cells if c.answer))
    composed.citations = [c for cell in cells for c in cell.citations]
    composed.review = [] if any_verified else list(cells[0].review)
    return composed


def _joined(column: Column, numbered: list[tuple[int, Cell]]) -> Cell:
    """Text answered by several parts, without a composing answer: each part's answer, flagged."""
    composed = Cell.from_json(numbered[0][1].to_json())
    composed.answer = " ".join(f"Part {n}: {c.answer}" for n, c in numbered)
    composed.value = composed.text = "; ".join(dict.fromkeys(str(c.value or c.text) for _n, c in numbered))
    composed.citations = [cit for _n, c in numbered for cit in c.citations]
    composed.source = "joined"
    composed.review = [f"composed from {len(numbered)} parts' answers without a composing answer: check it"]
    return composed

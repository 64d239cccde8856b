"""A review cell: the value in its type, a one-line answer, verified citations, and its state.

Status (what the model run gave):
    pending      not asked yet (or asked again: the column's question changed)
    answered     a value, read in the column's type where possible
    not_stated   the document does not state it ("Not stated in this document.")
    unreadable   the model's reply for this cell could not be read; `raw` keeps it
    failed       the call failed (server problem); `reason` says why; retried by the next run
    refused      the document could not be asked in one call; `reason` says why

A cell needs review (`review` lists why) when its value has no verified citation, when the
value could not be read in its type, or when it is unreadable, failed or refused. A reviewer's
edit (`edit`) is kept beside the model's answer, never over it; `checked` is the reviewer's mark.
No I/O here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from ...documents import Document
from ..citations import verify_quotes
from .columns import Column
from .values import display, read_value

STATUSES = ("pending", "answered", "not_stated", "unreadable", "failed", "refused")
FINISHED = ("answered", "not_stated", "unreadable")
"""A run skips these; failed, refused and pending cells are asked (again)."""
NOT_STATED = "Not stated in this document."

REVIEW_NO_CITATION = "no citation"
REVIEW_UNVERIFIED = "no verified citation"
REVIEW_UNTYPED = "value not read as {type}"


@dataclass
class Cell:
    """One document's answer to one column."""

    column: str
    """The column's key."""
    status: str = "pending"
    value: Any = None
    """The typed value (JSON-ready: str, bool, 'YYYY-MM-DD', int/float, [str]); None when not stated
    or when it could not be read in its type (then `text` holds what the model wrote)."""
    unit: str | None = None
    text: str = ""
    """The value as the model wrote it."""
    answer: str = ""
    """One line answering the column's question."""
    citations: list[dict] = field(default_factory=list)
    """Citation.to_json() of each quote, plus 'index' (the passage's position in its document)."""
    reason: str = ""
    """Why the cell failed, was refused or is unreadable, in plain words."""
    raw: str = ""
    """The model's raw reply where the cell could not be read."""
    review: list[str] = field(default_factory=list)
    """Why the cell needs a reviewer's eye (empty: it does not)."""
    fingerprint: str = ""
    """The column fingerprint this cell answered (a changed question makes the cell stale)."""
    parts: int = 1
    """In how many parts the document was read for this cell."""
    source: str = ""
    """How the reply was read: 'json', 'salvaged' (from a cut or damaged reply) or 'text'."""
    edit: dict | None = None
    """The reviewer's edit: {'value', 'unit', 'answer', 'at'}; the model's answer stays above."""
    checked: bool = False
    updated_at: str = ""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def needs_review(self) -> bool:
        """Flagged for review and not yet checked by the reviewer."""
        return bool(self.review) and not self.checked

    @property
    def verified(self) -> int:
        return sum(1 for c in self.citations if c.get("status") == "verified")

    def shown(self) -> tuple[Any, str | None]:
        """(typed value, unit) as the table shows it: the reviewer's edit wins over the model's value.
        None when the model's value could not be read in its type (its words are in `text`)."""
        if self.edit is not None:
            return self.edit.get("value"), self.edit.get("unit")
        return self.value, self.unit

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Cell":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def pending_cell(column: Column) -> Cell:
    return Cell(column=column.key, fingerprint=column.fingerprint)


def problem_cell(column: Column, status: str, reason: str, raw: str = "") -> Cell:
    """A cell that failed, was refused or could not be read, saying why."""
    return Cell(column=column.key, status=status, reason=reason, raw=raw, fingerprint=column.fingerprint,
                review=[reason])


def citation_json(citation, document: Document) -> dict:
    """Citation.to_json() without the passage text (the store has it: sha256 + index find it)."""
    data = citation.to_json()
    data.pop("passage", None)
    passage = document.passage(citation.id) if citation.status != "invalid" else None
    data["index"] = passage.index if passage is not None else None
    return data


def verified_citations(pairs: Sequence[tuple[str, str | None]], document: Document) -> list[dict]:
    """Each (passage ID, quote) checked against the document (verified / unverified / invalid)."""
    return [citation_json(c, document) for c in verify_quotes(list(pairs), [document])]


def answered_cell(column: Column, value: Any, answer: str, pairs: Sequence[tuple[str, str | None]],
                  document: Document, source: str) -> Cell:
    """A cell from the model's value, answer and citations: typed, verified, flagged where needed."""
    cell = Cell(column=column.key, status="answered", answer=one_line(answer), source=source,
                fingerprint=column.fingerprint)
    cell.citations = verified_citations(pairs, document)
    raw_value = value if value not in (None, "", []) else (answer if column.type == "text" else None)
    try:
        typed = read_value(column.type, raw_value, column.options)
        cell.value, cell.unit, cell.text = typed.value, typed.unit, typed.text
    except ValueError as exc:
        cell.text = _text_of(raw_value)
        cell.review.append(REVIEW_UNTYPED.format(type=_type_words(column)) + f": {exc}")
    if not cell.citations:
        cell.review.insert(0, REVIEW_NO_CITATION)
    elif not cell.verified:
        cell.review.insert(0, REVIEW_UNVERIFIED)
    if not cell.answer:
        cell.answer = display(column.type, cell.value, cell.unit) or cell.text
    return cell


def not_stated_cell(column: Column, answer: str, source: str) -> Cell:
    text = one_line(answer)
    return Cell(column=column.key, status="not_stated", answer=text if text else NOT_STATED, source=source,
                fingerprint=column.fingerprint)


def one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


def _text_of(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return one_line(value)


def _type_words(column: Column) -> str:
    return {"yesno": "yes or no", "date": "a date", "number": "a number", "options": "one of the options",
            "list": "a list"}.get(column.type, "text")

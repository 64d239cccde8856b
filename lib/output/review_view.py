"""What a review table shows, as plain data: the Review page, the command line and the exports
all read this (no streamlit, no I/O).

    rows = table_rows(table)                                  # [RowView] with CellView per column
    filter_rows(rows, column="c3", value="Dismissed")         # by a column's shown value
    filter_rows(rows, needs_review=True)                      # cells a reviewer must look at
    column_choices(rows, "c3")                                # the values to offer in a filter
    page = page_of(rows, 3, 50)                               # one page of the (filtered) rows
    grid_records(page.rows, table.columns)                    # what the page's grid shows, one dict a row
    cell_evidence(document, row.cell("c3"))                   # a cell opened: passages, quote spans, pages
    progress_line(progress)                                   # '12 of 30 rows · 1 min 20 s · about 2 min left'
    table_json(table, calls)                                  # `python -m lib review --json`

A 2,000-row table is shown a page at a time: the views are built once per version of the
table (the app keeps them), filtering is a pass over plain objects, and only one page becomes
the grid, so the page renders in well under a second (bench/review_page_bench.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..asking.review.cells import Cell
from ..asking.review.columns import Column
from ..asking.review.table import ReviewTable
from ..asking.review.values import display

STATUS_LABELS = {
    "pending": "not asked yet",
    "answered": "answered",
    "not_stated": "not stated",
    "unreadable": "unreadable",
    "failed": "failed",
    "refused": "too long for one call",
}
MARKS = {"verified": "✓", "review": "⚠", "problem": "✗", "pending": "…", "not_stated": "–", "checked": "☑"}
EDITED = "✎"
LEGEND = ("✓ verified citation · ⚠ needs review (no verified citation, or a value not read in its type) · "
          "✗ failed or unreadable · – not stated in the document · … not asked yet · ☑ checked by a reviewer · "
          "✎ edited by a reviewer")


@dataclass
class CellView:
    """One cell as shown: the reviewer's edit wins, the model's answer stays available."""

    key: str
    title: str
    type: str
    status: str
    text: str
    """The shown value as text ('2022-02-11', '1,250,000 EUR', 'Yes', or the not-stated sentence)."""
    value: Any
    unit: str | None
    answer: str
    citations: list[dict]
    needs_review: bool
    review: list[str]
    reason: str
    checked: bool
    edited: bool
    model_text: str
    """The model's value as text (differs from `text` when edited)."""
    parts: int = 1

    @property
    def mark(self) -> str:
        """One symbol for the cell's state: ✓ verified, ⚠ needs review, ✗ failed, – not stated, … pending."""
        if self.checked:
            return MARKS["checked"]
        if self.status in ("failed", "refused", "unreadable"):
            return MARKS["problem"]
        if self.status == "pending":
            return MARKS["pending"]
        if self.needs_review:
            return MARKS["review"]
        return MARKS["not_stated"] if self.status == "not_stated" else MARKS["verified"]

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass
class RowView:
    sha256: str
    document: str
    checked: bool
    cells: list[CellView] = field(default_factory=list)

    @property
    def needs_review(self) -> bool:
        return any(c.needs_review for c in self.cells)

    def cell(self, key: str) -> CellView:
        return next(c for c in self.cells if c.key == key)


def cell_view(column: Column, cell: Cell, row_checked: bool = False) -> CellView:
    """A cell as shown; a row a reviewer checked counts every one of its cells as checked."""
    value, unit = cell.shown()
    model_text = _text(column, cell.value, cell.unit, cell)
    if cell.edit is not None:
        text = display(column.type, value, unit) if value is not None else str(cell.edit.get("answer") or "")
    else:
        text = model_text
    return CellView(
        key=column.key, title=column.title, type=column.type, status=cell.status, text=text, value=value,
        unit=unit, answer=(cell.edit or {}).get("answer") or cell.answer, citations=list(cell.citations),
        needs_review=cell.needs_review and not row_checked, review=list(cell.review), reason=cell.reason,
        checked=cell.checked or row_checked, edited=cell.edit is not None, model_text=model_text, parts=cell.parts,
    )


def _text(column: Column, value: Any, unit: str | None, cell: Cell) -> str:
    if cell.status == "not_stated":
        return cell.answer or "Not stated in this document."
    if cell.status in ("failed", "refused", "unreadable", "pending"):
        return ""
    return display(column.type, value, unit) if value is not None else cell.text


def table_rows(table: ReviewTable) -> list[RowView]:
    return [RowView(row.sha256, row.name, row.checked,
                    [cell_view(c, table.cell(row.sha256, c.key), row.checked) for c in table.columns])
            for row in table.rows]


def filter_rows(rows: Sequence[RowView], *, column: str | None = None, value: str | None = None,
                needs_review: bool = False, status: str | None = None, search: str = "") -> list[RowView]:
    """Rows matching every filter given: a column's shown value (case aside), a cell needing review,
    a cell status (in `column`, or in any column), or words in the document name."""
    wanted = (value or "").casefold().strip()
    words = search.casefold().split()
    out = []
    for row in rows:
        cells = [row.cell(column)] if column else row.cells
        if column and value is not None and not any(_matches(c, wanted) for c in cells):
            continue
        if needs_review and not any(c.needs_review for c in cells):
            continue
        if status and not any(c.status == status for c in cells):
            continue
        if words and not all(w in row.document.casefold() for w in words):
            continue
        out.append(row)
    return out


def _matches(cell: CellView, wanted: str) -> bool:
    if isinstance(cell.value, list):
        return any(str(item).casefold() == wanted for item in cell.value) or cell.text.casefold() == wanted
    return cell.text.casefold() == wanted


def column_choices(rows: Sequence[RowView], key: str) -> list[str]:
    """The distinct shown values of a column (list items one by one), most frequent first."""
    counts: dict[str, int] = {}
    for row in rows:
        cell = row.cell(key)
        items = cell.value if isinstance(cell.value, list) else [cell.text] if cell.text else []
        for item in items:
            counts[str(item)] = counts.get(str(item), 0) + 1
    return sorted(counts, key=lambda v: (-counts[v], v))


@dataclass
class Page:
    rows: list[RowView]
    number: int
    """1-based; the last page when the one asked for is past the end."""
    pages: int
    total: int
    offset: int


def page_of(rows: Sequence[RowView], number: int, size: int = 50) -> Page:
    """One page of rows (page 1 when `number` is out of range)."""
    pages = max(1, -(-len(rows) // size))
    number = number if 1 <= number <= pages else 1
    offset = (number - 1) * size
    return Page(list(rows[offset:offset + size]), number, pages, len(rows), offset)


def cell_text(view: CellView) -> str:
    """A cell in the grid: its mark, then the value, the not-stated sentence, or why it has none."""
    if view.status == "pending":
        body = STATUS_LABELS["pending"]
    elif view.status in ("failed", "refused", "unreadable") and not view.edited:
        body = f"{STATUS_LABELS[view.status]}: {view.reason}" if view.reason else STATUS_LABELS[view.status]
    else:
        body = view.text or view.answer
    mark = view.mark + (EDITED if view.edited else "")
    return f"{mark} {body}"


def grid_records(rows: Sequence[RowView], columns: Sequence[Column]) -> list[dict]:
    """One dict per row for the grid: "document", then each column's key -> cell_text."""
    return [{"document": ("☑ " if row.checked else "") + row.document,
             **{c.key: cell_text(cell) for c, cell in zip(columns, row.cells)}} for row in rows]


def grid_flags(rows: Sequence[RowView], columns: Sequence[Column]) -> list[dict]:
    """Per row, per column key: 'review', 'problem' or '' (the grid colours those cells)."""
    out = []
    for row in rows:
        flags = {"document": ""}
        for column, cell in zip(columns, row.cells):
            problem = cell.status in ("failed", "refused", "unreadable") and not cell.edited and not cell.checked
            flags[column.key] = "problem" if problem else "review" if cell.needs_review else ""
        out.append(flags)
    return out


def rows_done(rows: Sequence[RowView]) -> int:
    """Rows whose every cell has an answer (a value, not stated, or unreadable: nothing left to ask)."""
    return sum(1 for row in rows if all(c.status in ("answered", "not_stated", "unreadable") for c in row.cells))


def counts_line(counts: dict[str, int]) -> str:
    """'174 answered · 4 not stated · 2 failed · 6 need review' (statuses that occur, in a fixed order)."""
    order = ("answered", "not_stated", "unreadable", "failed", "refused", "pending")
    bits = [f"{counts[k]:,} {STATUS_LABELS[k]}" for k in order if counts.get(k)]
    if counts.get("needs_review"):
        bits.append(f"{counts['needs_review']:,} need review")
    return " · ".join(bits) or "no cells yet"


def run_line(done: int, total: int, elapsed_s: float | None, eta_s: float | None, current: str = "") -> str:
    """'12 of 30 rows · 1 min 20 s elapsed · about 2 min left · reading case-13.pdf' (a job's run)."""
    left = "estimate after the first row" if eta_s is None else f"about {duration_text(eta_s)} left"
    line = f"{done:,} of {total:,} rows · {duration_text(elapsed_s or 0)} elapsed · {left}"
    return line + (f" · reading {current}" if current else "")


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def progress_line(progress) -> str:
    """'12 of 30 rows · 1 min 20 s elapsed · about 2 min left' (a runner Progress)."""
    left = "estimate after the first row" if progress.remaining_s is None else f"about {duration_text(progress.remaining_s)} left"
    return f"{progress.done} of {progress.total} rows · {duration_text(progress.elapsed_s)} elapsed · {left}"


def cell_evidence(document, view: CellView) -> list[dict]:
    """What opening a cell shows: per citation its passage (text, page, heading) and where the
    quote sits in it (`span`, for highlighting; the page for a PDF's page image). `document` is
    the row's Document (the caller loads it from the store)."""
    out = []
    for citation in view.citations:
        index = citation.get("index")
        passage = document.passages[index] if isinstance(index, int) and 0 <= index < len(document.passages) else None
        out.append({
            "citation": citation,
            "passage": passage.text if passage else "",
            "span": tuple(citation["span"]) if citation.get("span") else None,
            "page": passage.page if passage else None,
            "pages": passage.pages_text if passage else "",
            "heading": passage.heading if passage else "",
        })
    return out


# --------------------------------------------------------------------------- JSON


def citation_json(citation: dict) -> dict:
    keys = ("id", "document", "page", "page_end", "page_label", "quote", "status", "reason", "index", "found_in")
    return {k: citation.get(k) for k in keys}


def cell_json(view: CellView, cell: Cell) -> dict:
    """One cell of `python -m lib review --json` (the issue's keys first, then the rest)."""
    data = {
        "column": view.title,
        "value": view.value,
        "answer": view.answer,
        "status": view.status,
        "citations": [citation_json(c) for c in view.citations],
        "key": view.key,
        "unit": view.unit,
        "text": view.text,
        "needs_review": view.needs_review,
        "review": view.review,
        "reason": view.reason,
        "checked": view.checked,
        "parts": view.parts,
        "edited": view.edited,
    }
    if view.edited:
        data["model"] = {"value": cell.value, "unit": cell.unit, "answer": cell.answer, "text": view.model_text}
    if cell.raw:
        data["raw"] = cell.raw
    return data


def table_json(table: ReviewTable, calls: Sequence[dict] = (), columns: Sequence[str] | None = None) -> dict:
    """{"table", "title", "columns": [...], "rows": [{"document", "sha256", "cells": [...]}], "calls": [...], "counts"}."""
    shown = [c for c in table.columns if columns is None or c.key in set(columns)]
    order = {key: i for i, key in enumerate(columns)} if columns is not None else {}
    shown.sort(key=lambda c: order.get(c.key, 0))
    rows = []
    for row in table.rows:
        cells = [cell_json(cell_view(c, table.cell(row.sha256, c.key), row.checked), table.cell(row.sha256, c.key))
                 for c in shown]
        rows.append({"document": row.name, "sha256": row.sha256, "checked": row.checked, "cells": cells})
    counts: dict[str, int] = {}
    for row in rows:
        for cell in row["cells"]:  # a checked row's cells count as checked (not needing review)
            counts[cell["status"]] = counts.get(cell["status"], 0) + 1
            counts["needs_review"] = counts.get("needs_review", 0) + int(cell["needs_review"])
    return {
        "table": table.id,
        "title": table.title,
        "columns": [dict(c.to_json(), fingerprint=c.fingerprint) for c in shown],
        "rows": rows,
        "calls": [dict(c) for c in calls],
        "counts": counts,
    }

"""A review table as stored: its columns, its rows (documents), its cells, and the work left.

    table = create_table(store, "Matter 42", documents, columns)      # stored at once
    table = load_table(store, table.id)                               # exactly what is stored
    table.work()            # [WorkItem(sha256, name, columns still to ask)]: pending, failed,
                            # refused, or answered under a column question that has changed since
    add_columns(store, table.id, [Column(...)])                       # a run then asks only those
    retry_cells(store, table.id, [(sha256, "c2")])                    # a failed cell, alone
    edit_cell(store, table.id, sha256, "c2", "Dismissed", "The appeal was dismissed.")   # beside the model's
    mark_cell(store, table.id, sha256, "c2", True); mark_row(store, table.id, sha256, True)

The table's state is what the store holds (lib/library/reviews.py): a runner or a job can
stop anywhere and `load_table` tells what is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Iterable, Sequence

from ...documents import Document
from ...errors import InputError
from ...library.reviews import ReviewStore, StoredCell
from .cells import Cell, one_line, pending_cell
from .columns import Column, check_columns, with_keys
from .values import display, read_value


@dataclass(frozen=True)
class TableRow:
    sha256: str
    name: str
    checked: bool = False


@dataclass(frozen=True)
class WorkItem:
    """One document and the columns it still has to answer: one call."""

    sha256: str
    name: str
    columns: tuple[Column, ...]


@dataclass
class ReviewTable:
    id: int
    title: str
    columns: list[Column]
    rows: list[TableRow]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    updated_at: str = ""

    def column(self, key: str) -> Column:
        for column in self.columns:
            if column.key == key:
                return column
        raise InputError(f"Review table {self.id} has no column {key!r}.")

    def cell(self, sha256: str, key: str) -> Cell:
        """The cell as the table shows it: pending when never asked or asked under another question."""
        return self.cells.get((sha256, key)) or pending_cell(self.column(key))

    def row_cells(self, sha256: str) -> list[Cell]:
        return [self.cell(sha256, c.key) for c in self.columns]

    def work(self, only: Iterable[str] | None = None, rows: Iterable[str] | None = None) -> list[WorkItem]:
        """Per document (of `rows`, if given), the columns (of `only`, if given) whose cell is not finished."""
        wanted = [c for c in self.columns if only is None or c.key in set(only)]
        among = set(rows) if rows is not None else None
        items = []
        for row in self.rows:
            if among is not None and row.sha256 not in among:
                continue
            todo = tuple(c for c in wanted if not self.cell(row.sha256, c.key).finished)
            if todo:
                items.append(WorkItem(row.sha256, row.name, todo))
        return items

    def row_done(self, sha256: str, only: Iterable[str] | None = None) -> bool:
        keys = set(only) if only is not None else None
        return all(self.cell(sha256, c.key).finished for c in self.columns if keys is None or c.key in keys)

    def counts(self) -> dict[str, int]:
        """How many cells are in each status, plus 'needs_review'."""
        counts: dict[str, int] = {}
        for row in self.rows:
            for cell in self.row_cells(row.sha256):
                counts[cell.status] = counts.get(cell.status, 0) + 1
                counts["needs_review"] = counts.get("needs_review", 0) + int(cell.needs_review and not row.checked)
        return counts


def _merge(stored: StoredCell, column: Column, fingerprint: str | None = None) -> Cell:
    """The stored model cell with the reviewer's edit and mark; stale when the question changed."""
    if stored.fingerprint != (fingerprint or column.fingerprint) or stored.status == "pending":
        cell = pending_cell(column)
    else:
        cell = Cell.from_json(stored.cell)
        cell.status = stored.status
    cell.edit, cell.checked, cell.updated_at = stored.edit, stored.checked, stored.updated_at
    return cell


def load_table(store, table_id: int) -> ReviewTable:
    """The table exactly as stored."""
    reviews = ReviewStore(store)
    data = reviews.get(table_id)
    columns = [Column.from_json(c) for c in data["columns"]]
    by_key = {c.key: c for c in columns}
    prints = {c.key: c.fingerprint for c in columns}  # hashed once per column, not once per cell
    cells = {key: _merge(stored, by_key[key[1]], prints[key[1]]) for key, stored in reviews.cells(table_id).items()
             if key[1] in by_key}
    rows = [TableRow(r["sha256"], r["name"], r["checked"]) for r in data["rows"]]
    return ReviewTable(id=data["id"], title=data["title"], columns=columns, rows=rows, cells=cells,
                       settings=data["settings"], updated_at=data["updated_at"])


def load_row(store, table_id: int, sha256: str) -> ReviewTable:
    """The table reduced to one document's row (its columns and its cells): what one call needs."""
    reviews = ReviewStore(store)
    column_dicts, row = reviews.row(table_id, sha256)
    columns = [Column.from_json(c) for c in column_dicts]
    by_key = {c.key: c for c in columns}
    cells = {key: _merge(stored, by_key[key[1]]) for key, stored in reviews.cells(table_id, sha256).items()
             if key[1] in by_key}
    rows = [TableRow(row["sha256"], row["name"], row["checked"])] if row else []
    return ReviewTable(id=table_id, title="", columns=columns, rows=rows, cells=cells)


def _column_record(column: Column) -> dict:
    return dict(column.to_json(), fingerprint=column.fingerprint)


def _pairs(documents: Sequence[Document | tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = [(d.sha256, d.name) if isinstance(d, Document) else (d[0], d[1]) for d in documents]
    if not pairs:
        raise InputError("A review table needs at least one document.")
    return list(dict.fromkeys(pairs))


def create_table(store, title: str, documents: Sequence[Document | tuple[str, str]], columns: Sequence[Column],
                 settings: dict | None = None) -> ReviewTable:
    """A new stored table (documents must be in the store to be run)."""
    columns = with_keys(check_columns(list(columns)))
    table_id = ReviewStore(store).create(title, _pairs(documents), [_column_record(c) for c in columns], settings)
    return load_table(store, table_id)


def add_columns(store, table_id: int, columns: Sequence[Column]) -> list[Column]:
    """Append columns to a table; returns them with their keys (a run then asks only these)."""
    table = load_table(store, table_id)
    check_columns(table.columns + list(columns))
    added = with_keys([replace(c, key="") for c in check_columns(list(columns))], [c.key for c in table.columns])
    ReviewStore(store).add_columns(table_id, [_column_record(c) for c in added])
    return added


def edit_column(store, table_id: int, column: Column) -> None:
    """Change a column (by key); a changed question, type or options makes its cells stale."""
    table = load_table(store, table_id)
    others = [c for c in table.columns if c.key != column.key]
    [checked] = check_columns(others + [column])[-1:]
    ReviewStore(store).update_column(table_id, _column_record(replace(checked, key=column.key)))


def retry_cells(store, table_id: int, which: Sequence[tuple[str, str]]) -> int:
    """Make these (sha256, column key) cells pending, so the next run asks them alone."""
    return ReviewStore(store).reset(table_id, which)


def match_columns(table: ReviewTable, wanted: Sequence[Column]) -> tuple[list[Column], list[Column]]:
    """(the table's columns that ask the same as `wanted`, the wanted ones it lacks), in `wanted` order."""
    have = {(c.title.casefold(), c.fingerprint): c for c in table.columns}
    found, missing = [], []
    for column in wanted:
        match = have.get((column.title.casefold(), column.fingerprint))
        (found if match else missing).append(match or column)
    return found, missing


def table_for(store, documents: Sequence[Document], columns: Sequence[Column], title: str = "") -> tuple[ReviewTable, list[Column], bool]:
    """The stored table over exactly these documents (columns it lacks are added), or a new one.

    Returns (table, the run's columns with their keys, whether a stored table was resumed).
    """
    columns = check_columns(list(columns))
    reviews = ReviewStore(store)
    table_id = reviews.find(d.sha256 for d in documents)
    if table_id is None:
        name = title or _default_title(documents)
        table = create_table(store, name, documents, columns)
        return table, list(table.columns), False
    table = load_table(store, table_id)
    found, missing = match_columns(table, columns)
    taken = {c.title.casefold() for c in table.columns}
    clash = [c.title for c in missing if c.title.casefold() in taken]
    if clash:
        # Same title, new question: the stored column changes (its cells become stale), never duplicates.
        for column in missing:
            if column.title.casefold() in taken:
                old = next(c for c in table.columns if c.title.casefold() == column.title.casefold())
                edit_column(store, table_id, replace(column, key=old.key))
        missing = [c for c in missing if c.title.casefold() not in taken]
    if missing:
        add_columns(store, table_id, missing)
    table = load_table(store, table_id)
    by_title = {c.title.casefold(): c for c in table.columns}
    return table, [by_title[c.title.casefold()] for c in columns], True


def _default_title(documents: Sequence[Document]) -> str:
    names = [d.name for d in documents]
    return names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"


# ------------------------------------------------------------------------- the reviewer


def reviewer_edit(column: Column, value_text: str, answer: str = "") -> dict:
    """The reviewer's value read in the column's type: {"value", "unit", "text", "answer", "at"}.

    An empty value with an answer keeps the answer alone (value None); a value that cannot be
    read in the column's type is refused with the reason (InputError), so a date stays a date.
    """
    text = (value_text or "").strip()
    value, unit = None, None
    if text:
        try:
            typed = read_value(column.type, text, column.options)
        except ValueError as exc:
            kind = {"yesno": "yes or no", "date": "a date", "number": "a number", "list": "a list",
                    "options": "one of " + ", ".join(column.options)}.get(column.type, "text")
            raise InputError(f"{text!r} cannot be read as {kind} for the column {column.title!r}: {exc}.") from exc
        value, unit = typed.value, typed.unit
    elif not answer.strip():
        raise InputError("Write the value (or an answer) to keep as the reviewer's edit, or remove the edit.")
    shown = display(column.type, value, unit) if value is not None else ""
    return {"value": value, "unit": unit, "text": shown, "answer": one_line(answer) or shown,
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def edit_cell(store, table_id: int, sha256: str, key: str, value_text: str, answer: str = "") -> dict:
    """Keep the reviewer's edit of a cell beside the model's answer (a re-run never touches it)."""
    column = load_row(store, table_id, sha256).column(key)
    edit = reviewer_edit(column, value_text, answer)
    ReviewStore(store).set_edit(table_id, sha256, key, edit)
    return edit


def clear_edit(store, table_id: int, sha256: str, key: str) -> None:
    """Back to the model's answer."""
    ReviewStore(store).set_edit(table_id, sha256, key, None)


def mark_cell(store, table_id: int, sha256: str, key: str, checked: bool) -> None:
    """The reviewer's check mark on a cell (takes it out of "needs review")."""
    ReviewStore(store).set_checked(table_id, sha256, key, checked)


def mark_row(store, table_id: int, sha256: str, checked: bool) -> None:
    """The reviewer's check mark on a whole row (every cell of it counts as checked)."""
    ReviewStore(store).set_row_checked(table_id, sha256, checked)

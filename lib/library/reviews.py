"""Review tables in the store: definitions, columns, rows, cells as they arrive, and calls.

    reviews = ReviewStore(store)
    table_id = reviews.create("Matter 42", [(sha, "smith-v-jones.pdf"), ...], [column_dict, ...])
    reviews.save_row(table_id, sha, [cell_dict, ...], call_record)   # one transaction per row
    reviews.cells(table_id)                      # {(sha256, column_key): StoredCell}
    reviews.set_edit(table_id, sha, "c2", {"value": "Dismissed", "answer": "..."})

Plain data only (dicts and small records): what a column or a cell means belongs to
lib/asking/review. A column dict has key, title, question, type, options, fingerprint; a cell
dict is lib.asking.review.cells.Cell.to_json() without its edit and checked mark, which the
reviewer owns and which a re-run never touches. Every write is one transaction, so what is
stored is always a whole row or nothing of it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from datetime import datetime, timezone

from .store import NotInStore, Store, _json, _now


def _stamp() -> str:
    """A change's time to the microsecond: a table's `updated_at` is its version (the app keys its
    view of the table by it), so two changes within one second must differ."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class StoredCell:
    sha256: str
    column: str
    status: str
    fingerprint: str
    cell: dict
    edit: dict | None
    checked: bool
    call_id: int | None
    updated_at: str


def documents_key(shas: Iterable[str]) -> str:
    """One key for a set of documents (order and repeats aside): finds a table over the same set."""
    joined = "\n".join(sorted(set(shas)))
    return hashlib.sha256(joined.encode("ascii")).hexdigest()


class ReviewStore:
    """Review tables inside one Store (same database, same transactions)."""

    def __init__(self, store: Store):
        self.store = store

    # --- tables -------------------------------------------------------------------------

    def create(self, title: str, documents: Sequence[tuple[str, str]], columns: Sequence[dict],
               settings: dict | None = None) -> int:
        """A new table over `documents` ((sha256, name) pairs) with `columns`; returns its id."""
        now = _stamp()
        with self.store._errors("save the review table"), self.store._write() as conn:
            cursor = conn.execute(
                "INSERT INTO review_tables (title, created_at, updated_at, documents_key, settings) VALUES (?,?,?,?,?)",
                (title.strip() or "Review", now, now, documents_key(s for s, _ in documents), _json(settings or {})),
            )
            table_id = int(cursor.lastrowid)
            self._insert_rows(conn, table_id, documents, 0)
            self._insert_columns(conn, table_id, columns, 0, now)
            return table_id

    def find(self, shas: Iterable[str]) -> int | None:
        """The most recent table over exactly these documents, if any."""
        with self.store._errors("look up review tables"), self.store._read() as conn:
            row = conn.execute(
                "SELECT id FROM review_tables WHERE documents_key = ? ORDER BY updated_at DESC, id DESC LIMIT 1",
                (documents_key(shas),),
            ).fetchone()
        return int(row["id"]) if row else None

    def get(self, table_id: int) -> dict:
        """{"id", "title", "created_at", "updated_at", "settings", "columns": [...], "rows": [...]}."""
        with self.store._errors("read the review table"), self.store._read() as conn:
            conn.execute("BEGIN")
            try:
                table = self._require(conn, table_id)
                columns = conn.execute(
                    "SELECT * FROM review_columns WHERE table_id = ? ORDER BY position", (table_id,)).fetchall()
                rows = conn.execute(
                    "SELECT * FROM review_rows WHERE table_id = ? ORDER BY position", (table_id,)).fetchall()
            finally:
                conn.execute("COMMIT")
        return {
            "id": table["id"],
            "title": table["title"],
            "created_at": table["created_at"],
            "updated_at": table["updated_at"],
            "settings": json.loads(table["settings"]),
            "columns": [_column_dict(c) for c in columns],
            "rows": [{"sha256": r["sha256"], "name": r["name"], "position": r["position"], "checked": bool(r["checked"])}
                     for r in rows],
        }

    def list(self) -> list[dict]:
        """Every table, most recently changed first, with its size and progress."""
        sql = (
            "SELECT t.*, (SELECT COUNT(*) FROM review_rows r WHERE r.table_id = t.id) AS row_count, "
            "(SELECT COUNT(*) FROM review_columns c WHERE c.table_id = t.id) AS column_count, "
            "(SELECT COUNT(*) FROM review_cells x WHERE x.table_id = t.id AND x.status IN "
            "('answered', 'not_stated', 'unreadable')) AS finished FROM review_tables t "
            "ORDER BY t.updated_at DESC, t.id DESC"
        )
        with self.store._errors("list review tables"), self.store._read() as conn:
            rows = conn.execute(sql).fetchall()
        return [{"id": r["id"], "title": r["title"], "updated_at": r["updated_at"], "rows": r["row_count"],
                 "columns": r["column_count"], "finished_cells": r["finished"]} for r in rows]

    def version(self, table_id: int) -> str:
        """Changes whenever anything of the table changes (a row, a column, an edit, a mark)."""
        with self.store._errors("read the review table"), self.store._read() as conn:
            return str(self._require(conn, table_id)["updated_at"])

    def rename(self, table_id: int, title: str) -> None:
        with self.store._errors("rename the review table"), self.store._write() as conn:
            self._require(conn, table_id)
            conn.execute("UPDATE review_tables SET title = ?, updated_at = ? WHERE id = ?",
                         (title.strip() or "Review", _stamp(), table_id))

    def delete(self, table_id: int) -> bool:
        """Remove a table with its columns, rows, cells and calls (documents stay in the library)."""
        with self.store._errors("delete the review table"), self.store._write() as conn:
            conn.execute("DELETE FROM review_cells WHERE table_id = ?", (table_id,))
            return conn.execute("DELETE FROM review_tables WHERE id = ?", (table_id,)).rowcount > 0

    # --- columns and rows ---------------------------------------------------------------

    def add_columns(self, table_id: int, columns: Sequence[dict]) -> None:
        """Append columns (their cells start pending: a run asks only them)."""
        with self.store._errors("add columns"), self.store._write() as conn:
            self._require(conn, table_id)
            start = conn.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM review_columns WHERE table_id = ?",
                                 (table_id,)).fetchone()[0]
            self._insert_columns(conn, table_id, columns, start, _now())
            self._touch(conn, table_id)

    def update_column(self, table_id: int, column: dict) -> None:
        """Change a column's title, question, type or options (a new fingerprint makes its cells stale)."""
        with self.store._errors("change the column"), self.store._write() as conn:
            changed = conn.execute(
                "UPDATE review_columns SET title = ?, question = ?, type = ?, options = ?, fingerprint = ? "
                "WHERE table_id = ? AND key = ?",
                (column["title"], column["question"], column["type"], _json(list(column.get("options") or [])),
                 column["fingerprint"], table_id, column["key"]),
            ).rowcount
            if not changed:
                raise NotInStore(f"Column {column['key']} is not in review table {table_id}: reload the table.")
            self._touch(conn, table_id)

    def remove_column(self, table_id: int, key: str) -> None:
        with self.store._errors("remove the column"), self.store._write() as conn:
            conn.execute("DELETE FROM review_cells WHERE table_id = ? AND column_key = ?", (table_id, key))
            conn.execute("DELETE FROM review_columns WHERE table_id = ? AND key = ?", (table_id, key))
            self._touch(conn, table_id)

    def add_rows(self, table_id: int, documents: Sequence[tuple[str, str]]) -> None:
        """Add documents ((sha256, name) pairs) not already in the table."""
        with self.store._errors("add documents to the review table"), self.store._write() as conn:
            self._require(conn, table_id)
            known = {r[0] for r in conn.execute("SELECT sha256 FROM review_rows WHERE table_id = ?", (table_id,))}
            start = conn.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM review_rows WHERE table_id = ?",
                                 (table_id,)).fetchone()[0]
            self._insert_rows(conn, table_id, [d for d in documents if d[0] not in known], start)
            self._rekey(conn, table_id)

    def remove_row(self, table_id: int, sha256: str) -> None:
        with self.store._errors("remove the document from the review table"), self.store._write() as conn:
            conn.execute("DELETE FROM review_cells WHERE table_id = ? AND sha256 = ?", (table_id, sha256))
            conn.execute("DELETE FROM review_rows WHERE table_id = ? AND sha256 = ?", (table_id, sha256))
            self._rekey(conn, table_id)

    # --- cells --------------------------------------------------------------------------

    def save_row(self, table_id: int, sha256: str, cells: Sequence[dict],
                 call: dict | Sequence[dict] | None = None) -> int | None:
        """Store one document's cells and its call (or calls: a document read in parts has several)
        in one transaction; edits and marks stay. Returns the first call's id."""
        now = _stamp()
        calls = [] if call is None else [call] if isinstance(call, dict) else list(call)
        with self.store._errors("save the review row"), self.store._write() as conn:
            self._require(conn, table_id)
            call_id = None
            for record in calls:
                inserted = int(conn.execute(
                    "INSERT INTO review_calls (table_id, sha256, created_at, record) VALUES (?,?,?,?)",
                    (table_id, sha256, now, _json(record))).lastrowid)
                call_id = call_id or inserted
            conn.executemany(
                "INSERT INTO review_cells (table_id, sha256, column_key, status, fingerprint, cell, call_id, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (table_id, sha256, column_key) DO UPDATE SET "
                "status = excluded.status, fingerprint = excluded.fingerprint, cell = excluded.cell, "
                "call_id = excluded.call_id, updated_at = excluded.updated_at",
                [(table_id, sha256, c["column"], c["status"], c.get("fingerprint", ""), _json(_model_part(c)), call_id,
                  now) for c in cells],
            )
            self._touch(conn, table_id, now)
            return call_id

    def cells(self, table_id: int, sha256: str | None = None) -> dict[tuple[str, str], StoredCell]:
        """Every stored cell of a table (or of one document's row) by (sha256, column key)."""
        sql, params = "SELECT * FROM review_cells WHERE table_id = ?", [table_id]
        if sha256 is not None:
            sql, params = sql + " AND sha256 = ?", params + [sha256]
        with self.store._errors("read the review cells"), self.store._read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return {(r["sha256"], r["column_key"]): _stored(r) for r in rows}

    def row(self, table_id: int, sha256: str) -> tuple[list[dict], dict | None]:
        """(the table's columns, one row {"sha256", "name", "checked"} or None): one document's
        share of the table, read without the other rows."""
        with self.store._errors("read the review table"), self.store._read() as conn:
            self._require(conn, table_id)
            columns = conn.execute(
                "SELECT * FROM review_columns WHERE table_id = ? ORDER BY position", (table_id,)).fetchall()
            row = conn.execute("SELECT * FROM review_rows WHERE table_id = ? AND sha256 = ?", (table_id, sha256)).fetchone()
        found = {"sha256": row["sha256"], "name": row["name"], "checked": bool(row["checked"])} if row else None
        return [_column_dict(c) for c in columns], found

    def reset(self, table_id: int, which: Sequence[tuple[str, str]]) -> int:
        """Make cells pending again (to retry them alone); edits and marks stay. Returns how many."""
        with self.store._errors("reset review cells"), self.store._write() as conn:
            count = 0
            for sha256, key in which:
                count += conn.execute(
                    "UPDATE review_cells SET status = 'pending', updated_at = ? "
                    "WHERE table_id = ? AND sha256 = ? AND column_key = ?", (_now(), table_id, sha256, key)).rowcount
            self._touch(conn, table_id)
            return count

    def set_edit(self, table_id: int, sha256: str, key: str, edit: dict | None) -> None:
        """The reviewer's edit of a cell (None removes it); the model's answer is kept beside it."""
        self._set(table_id, sha256, key, "edit", _json(edit) if edit is not None else None)

    def set_checked(self, table_id: int, sha256: str, key: str, checked: bool) -> None:
        self._set(table_id, sha256, key, "checked", int(bool(checked)))

    def set_row_checked(self, table_id: int, sha256: str, checked: bool) -> None:
        with self.store._errors("mark the row"), self.store._write() as conn:
            conn.execute("UPDATE review_rows SET checked = ? WHERE table_id = ? AND sha256 = ?",
                         (int(bool(checked)), table_id, sha256))
            self._touch(conn, table_id)

    def _set(self, table_id: int, sha256: str, key: str, field: str, value: Any) -> None:
        """Set a reviewer field, creating a pending cell to hold it when the model has not answered yet."""
        with self.store._errors("save the reviewer's change"), self.store._write() as conn:
            column = conn.execute("SELECT fingerprint FROM review_columns WHERE table_id = ? AND key = ?",
                                  (table_id, key)).fetchone()
            if column is None:
                raise NotInStore(f"Column {key} is not in review table {table_id}: reload the table.")
            conn.execute(
                "INSERT OR IGNORE INTO review_cells (table_id, sha256, column_key, status, fingerprint, cell, updated_at) "
                "VALUES (?,?,?,?,?,?,?)",
                (table_id, sha256, key, "pending", column["fingerprint"],
                 _json({"column": key, "status": "pending"}), _now()))
            conn.execute(f"UPDATE review_cells SET {field} = ? WHERE table_id = ? AND sha256 = ? AND column_key = ?",
                         (value, table_id, sha256, key))
            self._touch(conn, table_id)

    def calls(self, table_id: int) -> list[dict]:
        """Every call made for the table, oldest first (record plus id, sha256, created_at)."""
        with self.store._errors("read the review calls"), self.store._read() as conn:
            rows = conn.execute("SELECT * FROM review_calls WHERE table_id = ? ORDER BY id", (table_id,)).fetchall()
        return [dict(json.loads(r["record"]), id=r["id"], sha256=r["sha256"], created_at=r["created_at"]) for r in rows]

    # --- plumbing -----------------------------------------------------------------------

    @staticmethod
    def _require(conn: sqlite3.Connection, table_id: int) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM review_tables WHERE id = ?", (table_id,)).fetchone()
        if row is None:
            raise NotInStore(f"Review table {table_id} is not in the library (it may have been deleted). "
                             "Start a new table.")
        return row

    @staticmethod
    def _touch(conn: sqlite3.Connection, table_id: int, now: str | None = None) -> None:
        conn.execute("UPDATE review_tables SET updated_at = ? WHERE id = ?", (now or _stamp(), table_id))

    @staticmethod
    def _rekey(conn: sqlite3.Connection, table_id: int) -> None:
        shas = [r[0] for r in conn.execute("SELECT sha256 FROM review_rows WHERE table_id = ?", (table_id,))]
        conn.execute("UPDATE review_tables SET documents_key = ?, updated_at = ? WHERE id = ?",
                     (documents_key(shas), _stamp(), table_id))

    @staticmethod
    def _insert_rows(conn, table_id: int, documents: Sequence[tuple[str, str]], start: int) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO review_rows (table_id, sha256, name, position) VALUES (?,?,?,?)",
            [(table_id, sha, name, start + i) for i, (sha, name) in enumerate(documents)])

    @staticmethod
    def _insert_columns(conn, table_id: int, columns: Sequence[dict], start: int, now: str) -> None:
        conn.executemany(
            "INSERT INTO review_columns (table_id, key, position, title, question, type, options, fingerprint, added_at) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            [(table_id, c["key"], start + i, c["title"], c["question"], c["type"], _json(list(c.get("options") or [])),
              c["fingerprint"], now) for i, c in enumerate(columns)])


def _model_part(cell: dict) -> dict:
    return {k: v for k, v in cell.items() if k not in ("edit", "checked")}


def _column_dict(row: sqlite3.Row) -> dict:
    return {"key": row["key"], "title": row["title"], "question": row["question"], "type": row["type"],
            "options": json.loads(row["options"]), "fingerprint": row["fingerprint"], "position": row["position"]}


def _stored(row: sqlite3.Row) -> StoredCell:
    return StoredCell(
        sha256=row["sha256"], column=row["column_key"], status=row["status"], fingerprint=row["fingerprint"],
        cell=json.loads(row["cell"]), edit=json.loads(row["edit"]) if row["edit"] else None,
        checked=bool(row["checked"]), call_id=row["call_id"], updated_at=row["updated_at"],
    )

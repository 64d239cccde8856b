"""Collections and the document list a page at a time (methods of Store; see store.py).

    store.create_collection("Smith v Jones")                 # -> Collection (id, name, documents, tokens, ...)
    store.add_to_collection("Smith v Jones", [sha1, sha2])    # -> 2 (documents newly added)
    store.list_collections()                                  # every collection with counts and token totals
    store.collection_shas("Smith v Jones")                    # the whole collection in one step (for Ask)
    page = store.list_documents_page(name="lease", collection="Smith v Jones", formats=["pdf"],
                                     sort="added", offset=0, limit=50)
    page.documents, page.total, page.tokens                  # one page, and the count and tokens of all matches

A collection is named by its id (int) or its name (str, case-insensitive). A document can
be in several collections; deleting a collection keeps its documents; deleting a document
takes it out of every collection. Never "all 10,000 at once": lists come a page at a time,
with the totals computed in SQL.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Sequence

from ..errors import StoreError
from .fulltext import QueryError, check_query

MAX_NAME = 200
MAX_PAGE = 1000
"""The largest page a caller can ask for (a page is what a person reads, not the library)."""
SORTS = {
    # sort -> (ORDER BY when descending, ORDER BY when ascending, natural direction descending?)
    "added": ("d.added_at DESC, d.name COLLATE NOCASE, d.sha256", "d.added_at, d.name COLLATE NOCASE, d.sha256", True),
    "name": ("d.name COLLATE NOCASE DESC, d.sha256", "d.name COLLATE NOCASE, d.sha256", False),
    "tokens": ("d.tokens DESC, d.name COLLATE NOCASE, d.sha256", "d.tokens, d.name COLLATE NOCASE, d.sha256", True),
    "pages": ("d.pages DESC, d.name COLLATE NOCASE, d.sha256", "d.pages, d.name COLLATE NOCASE, d.sha256", True),
}
CollectionRef = int | str
_SUMMARY_COLUMNS = "sha256, name, format, pages, chars, tokens, counter, passages, warnings, size, added_at"


class CollectionError(StoreError):
    """A collection that does not exist, or a name that cannot be used: the user's input."""

    exit_status = 2


@dataclass(frozen=True)
class DocumentSummary:
    """One row of the library list (no text, no passages: cheap to load)."""

    sha256: str
    name: str
    format: str
    pages: int | None
    chars: int
    tokens: int
    counter: str
    passages: int
    warnings: list[str]
    size: int
    """Bytes of the original file."""
    added_at: str
    """ISO 8601, UTC."""


@dataclass(frozen=True)
class Collection:
    id: int
    name: str
    documents: int
    tokens: int
    """Sum of the exact tokens of its documents (each read whole, without prompt overhead)."""
    size: int
    """Bytes of the original files."""
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class DocumentPage:
    """One page of the filtered document list, and the totals of the whole filtered list."""

    documents: list
    """DocumentSummary rows of this page."""
    total: int
    """Documents matching the filter (all pages)."""
    tokens: int
    """Their total tokens."""
    offset: int
    limit: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit)) if self.limit else 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def clean_name(name: str) -> str:
    """A collection name as stored: trimmed, one line, not empty, not too long."""
    if not isinstance(name, str):
        raise CollectionError(f"A collection name must be text, not {type(name).__name__}.")
    try:
        check_query(name, "collection name")
    except QueryError as exc:
        raise CollectionError(str(exc)) from exc
    text = " ".join(name.split())
    if not text:
        raise CollectionError("A collection needs a name: type one (for example the matter or product it is for).")
    if len(text) > MAX_NAME:
        raise CollectionError(f"The collection name is {len(text)} characters long; keep it under {MAX_NAME}.")
    return text


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class CatalogMixin:
    """Collections and paged listing; mixed into Store (uses its _read, _write and _errors)."""

    # --- collections ------------------------------------------------------------------

    def create_collection(self, name: str) -> Collection:
        """A new, empty collection; CollectionError if the name is taken (case-insensitive)."""
        name = clean_name(name)
        now = _now()
        with self._errors("create the collection"), self._write() as conn:
            existing = conn.execute("SELECT name FROM collections WHERE name = ?", (name,)).fetchone()
            if existing:
                raise CollectionError(f"A collection named {existing[0]!r} already exists. Choose another name, or add to that one.")
            cursor = conn.execute("INSERT INTO collections (name, created_at, updated_at) VALUES (?,?,?)", (name, now, now))
            return self._collection(conn, int(cursor.lastrowid))

    def ensure_collection(self, name: str) -> Collection:
        """The collection of that name, created if it does not exist yet."""
        name = clean_name(name)
        with self._errors("create the collection"), self._write() as conn:
            row = conn.execute("SELECT id FROM collections WHERE name = ?", (name,)).fetchone()
            if row is None:
                now = _now()
                row = conn.execute(
                    "INSERT INTO collections (name, created_at, updated_at) VALUES (?,?,?) RETURNING id", (name, now, now)
                ).fetchone()
            return self._collection(conn, int(row[0]))

    def rename_collection(self, collection: CollectionRef, new_name: str) -> Collection:
        new_name = clean_name(new_name)
        with self._errors("rename the collection"), self._write() as conn:
            cid = self._collection_id(conn, collection)
            clash = conn.execute("SELECT id, name FROM collections WHERE name = ? AND id != ?", (new_name, cid)).fetchone()
            if clash:
                raise CollectionError(f"A collection named {clash[1]!r} already exists. Choose another name.")
            conn.execute("UPDATE collections SET name = ?, updated_at = ? WHERE id = ?", (new_name, _now(), cid))
            return self._collection(conn, cid)

    def delete_collection(self, collection: CollectionRef) -> bool:
        """Remove the collection (its documents stay in the library); False if there was none."""
        with self._errors("delete the collection"), self._write() as conn:
            try:
                cid = self._collection_id(conn, collection)
            except CollectionError:
                return False
            conn.execute("DELETE FROM collection_documents WHERE collection_id = ?", (cid,))
            return conn.execute("DELETE FROM collections WHERE id = ?", (cid,)).rowcount > 0

    def add_to_collection(self, collection: CollectionRef, shas: Iterable[str]) -> int:
        """Add stored documents (all or none); returns how many were not in it yet."""
        shas = list(dict.fromkeys(shas))
        now = _now()
        with self._errors("add documents to the collection"), self._write() as conn:
            cid = self._collection_id(conn, collection)
            self._require_documents(conn, shas)
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO collection_documents (collection_id, sha256, added_at) VALUES (?,?,?)",
                [(cid, sha, now) for sha in shas],
            )
            added = conn.total_changes - before
            if added:
                conn.execute("UPDATE collections SET updated_at = ? WHERE id = ?", (now, cid))
            return added

    def remove_from_collection(self, collection: CollectionRef, shas: Iterable[str]) -> int:
        """Take documents out of the collection (they stay in the library); returns how many were in it."""
        shas = list(dict.fromkeys(shas))
        with self._errors("remove documents from the collection"), self._write() as conn:
            cid = self._collection_id(conn, collection)
            before = conn.total_changes
            conn.executemany(
                "DELETE FROM collection_documents WHERE collection_id = ? AND sha256 = ?", [(cid, sha) for sha in shas]
            )
            removed = conn.total_changes - before
            if removed:
                conn.execute("UPDATE collections SET updated_at = ? WHERE id = ?", (_now(), cid))
            return removed

    def list_collections(self) -> list[Collection]:
        """Every collection, by name, with its document count, token total and size."""
        with self._errors("list the collections"), self._read() as conn:
            rows = conn.execute(self._COLLECTION_SQL + " GROUP BY c.id ORDER BY c.name COLLATE NOCASE").fetchall()
        return [_collection_from_row(row) for row in rows]

    def get_collection(self, collection: CollectionRef) -> Collection:
        """One collection with its counts; CollectionError if there is none."""
        with self._errors("read the collection"), self._read() as conn:
            return self._collection(conn, self._collection_id(conn, collection))

    def collection_shas(self, collection: CollectionRef) -> list[str]:
        """The SHA-256 of every document in the collection, by name (to choose it whole in one step)."""
        with self._errors("read the collection"), self._read() as conn:
            cid = self._collection_id(conn, collection)
            rows = conn.execute(
                "SELECT d.sha256 FROM collection_documents cd JOIN documents d ON d.sha256 = cd.sha256 "
                "WHERE cd.collection_id = ? ORDER BY d.name COLLATE NOCASE, d.sha256",
                (cid,),
            ).fetchall()
        return [row[0] for row in rows]

    def collections_of(self, sha: str) -> list[str]:
        """Names of the collections a document is in."""
        with self._errors("read the collections"), self._read() as conn:
            rows = conn.execute(
                "SELECT c.name FROM collection_documents cd JOIN collections c ON c.id = cd.collection_id "
                "WHERE cd.sha256 = ? ORDER BY c.name COLLATE NOCASE",
                (sha,),
            ).fetchall()
        return [row[0] for row in rows]

    def document_collections(self, shas: Sequence[str]) -> dict[str, list[str]]:
        """sha -> names of its collections, for a page of documents in one query."""
        out: dict[str, list[str]] = {sha: [] for sha in shas}
        with self._errors("read the collections"), self._read() as conn:
            for start in range(0, len(shas), 500):
                chunk = list(shas[start:start + 500])
                rows = conn.execute(
                    "SELECT cd.sha256, c.name FROM collection_documents cd JOIN collections c ON c.id = cd.collection_id "
                    f"WHERE cd.sha256 IN ({', '.join('?' * len(chunk))}) ORDER BY c.name COLLATE NOCASE",
                    chunk,
                ).fetchall()
                for sha, name in rows:
                    out[sha].append(name)
        return out

    _COLLECTION_SQL = (
        "SELECT c.id, c.name, c.created_at, c.updated_at, COUNT(d.sha256) AS documents, "
        "COALESCE(SUM(d.tokens), 0) AS tokens, COALESCE(SUM(d.size), 0) AS size FROM collections c "
        "LEFT JOIN collection_documents cd ON cd.collection_id = c.id LEFT JOIN documents d ON d.sha256 = cd.sha256"
    )

    def _collection(self, conn: sqlite3.Connection, cid: int) -> Collection:
        row = conn.execute(self._COLLECTION_SQL + " WHERE c.id = ? GROUP BY c.id", (cid,)).fetchone()
        return _collection_from_row(row)

    @staticmethod
    def _collection_id(conn: sqlite3.Connection, collection: CollectionRef) -> int:
        if isinstance(collection, bool) or not isinstance(collection, (int, str)):
            raise CollectionError(f"{collection!r} does not name a collection (give its name or its id).")
        if isinstance(collection, int):
            row = conn.execute("SELECT id FROM collections WHERE id = ?", (collection,)).fetchone()
        else:
            row = conn.execute("SELECT id FROM collections WHERE name = ?", (clean_name(collection),)).fetchone()
        if row is None:
            names = [r[0] for r in conn.execute("SELECT name FROM collections ORDER BY name COLLATE NOCASE LIMIT 6")]
            known = f" Collections: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''}." if names else " There are no collections yet."
            raise CollectionError(f"There is no collection {collection!r}.{known} Check the name, or create it first.")
        return int(row[0])

    @staticmethod
    def _require_documents(conn: sqlite3.Connection, shas: Sequence[str]) -> None:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (sha256 TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM wanted")
        conn.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(s,) for s in shas])
        missing = [r[0] for r in conn.execute(
            "SELECT w.sha256 FROM wanted w LEFT JOIN documents d ON d.sha256 = w.sha256 WHERE d.sha256 IS NULL LIMIT 3"
        )]
        conn.execute("DELETE FROM wanted")
        if missing:
            raise CollectionError(
                f"Document {missing[0][:12]} is not in the library (it may have been deleted), so it cannot be "
                "added to a collection. Reload the library and choose again; nothing was added."
            )

    # --- the document list, a page at a time ------------------------------------------

    def list_documents_page(
        self,
        *,
        name: str = "",
        collection: CollectionRef | None = None,
        formats: Sequence[str] = (),
        sort: str = "added",
        descending: bool | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> DocumentPage:
        """Documents whose name contains `name` (case-insensitive), in `collection`, of one
        of `formats`; sorted by added (newest first), name, tokens or pages."""
        if sort not in SORTS:
            raise CollectionError(f"Cannot sort documents by {sort!r}; choose one of: {', '.join(SORTS)}.")
        limit = max(1, min(int(limit), MAX_PAGE))
        offset = max(0, int(offset))
        with self._errors("list the library"), self._read() as conn:
            conn.execute("BEGIN")  # the page and its totals from one snapshot
            try:
                where, params = self._filter(conn, name, collection, formats)
                total, tokens = conn.execute(
                    f"SELECT COUNT(*), COALESCE(SUM(d.tokens), 0) FROM documents d {where}", params
                ).fetchone()
                desc, asc, natural = SORTS[sort]
                order = desc if (natural if descending is None else descending) else asc
                columns = ", ".join(f"d.{c.strip()}" for c in _SUMMARY_COLUMNS.split(","))
                rows = conn.execute(
                    f"SELECT {columns} FROM documents d {where} ORDER BY {order} LIMIT ? OFFSET ?",
                    params + [limit, offset],
                ).fetchall()
            finally:
                conn.execute("COMMIT")
        return DocumentPage([_summary_from_row(r) for r in rows], int(total), int(tokens), offset, limit)

    def _filter(self, conn, name: str, collection, formats) -> tuple[str, list]:
        clauses, params = [], []
        name = " ".join(check_query(name or "", "name filter").split())
        if name:
            clauses.append("d.name LIKE ? ESCAPE '\\'")
            params.append(_like(name))
        if collection is not None:
            clauses.append("d.sha256 IN (SELECT sha256 FROM collection_documents WHERE collection_id = ?)")
            params.append(self._collection_id(conn, collection))
        formats = [f for f in formats if f]
        if formats:
            clauses.append(f"d.format IN ({', '.join('?' * len(formats))})")
            params += list(formats)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def document_formats(self, collection: CollectionRef | None = None) -> dict[str, int]:
        """Format -> number of documents (for a format filter), in the library or one collection."""
        with self._errors("list the library"), self._read() as conn:
            where, params = self._filter(conn, "", collection, ())
            rows = conn.execute(f"SELECT d.format, COUNT(*) FROM documents d {where} GROUP BY d.format ORDER BY 2 DESC", params)
            return {row[0]: row[1] for row in rows}

    def resolve_documents(self, refs: Sequence[str]) -> list[str]:
        """SHA-256 of documents named by SHA-256, a unique prefix of 8+ hex digits, or their name.

        CollectionError (exit 2) for a reference that matches no document or several.
        """
        shas = []
        with self._errors("look up documents"), self._read() as conn:
            for ref in refs:
                text = check_query(ref.strip(), "document name")
                rows = []
                if len(text) >= 8 and all(c in "0123456789abcdefABCDEF" for c in text):
                    rows = conn.execute("SELECT sha256, name FROM documents WHERE sha256 >= ? AND sha256 < ? LIMIT 3",
                                        (text.lower(), text.lower() + "g")).fetchall()
                if not rows:
                    rows = conn.execute("SELECT sha256, name FROM documents WHERE name = ? LIMIT 3", (text,)).fetchall()
                if not rows:
                    rows = conn.execute("SELECT sha256, name FROM documents WHERE name = ? COLLATE NOCASE LIMIT 3", (text,)).fetchall()
                if not rows:
                    raise CollectionError(f"No document in the library is called or starts with {ref!r}. "
                                          "Give its SHA-256 (python -m lib ingest --json shows it) or its exact name.")
                if len(rows) > 1:
                    raise CollectionError(f"{ref!r} matches several documents ({rows[0][1]}, {rows[1][1]}, ...). "
                                          "Give more of the SHA-256 to say which.")
                shas.append(rows[0][0])
        return shas

    def document_summaries(self, shas: Sequence[str]) -> list:
        """Summaries of these documents in the order given (missing ones left out)."""
        found = {}
        with self._errors("read the library"), self._read() as conn:
            for start in range(0, len(shas), 500):
                chunk = list(shas[start:start + 500])
                rows = conn.execute(
                    f"SELECT {_SUMMARY_COLUMNS} FROM documents WHERE sha256 IN ({', '.join('?' * len(chunk))})", chunk
                ).fetchall()
                found.update({row["sha256"]: _summary_from_row(row) for row in rows})
        return [found[sha] for sha in shas if sha in found]


def _summary_from_row(row: sqlite3.Row) -> DocumentSummary:
    return DocumentSummary(
        sha256=row["sha256"],
        name=row["name"],
        format=row["format"],
        pages=row["pages"],
        chars=row["chars"],
        tokens=row["tokens"],
        counter=row["counter"],
        passages=row["passages"],
        warnings=json.loads(row["warnings"]),
        size=row["size"],
        added_at=row["added_at"],
    )




def _collection_from_row(row: sqlite3.Row) -> Collection:
    return Collection(
        id=row["id"],
        name=row["name"],
        documents=row["documents"],
        tokens=row["tokens"],
        size=row["size"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )

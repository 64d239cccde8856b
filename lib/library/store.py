"""Folio's library on disk: documents, passages (searchable), conversations and turns.

    store = Store()                                   # FOLIO_DATA_DIR, else the per-user default
    document, is_new = store.add_document(document, original_bytes)
    store.search_passages("lessee shall pay")         # FTS5 words; Chinese as bigrams: "合同" too
    cid = store.create_conversation([document.sha256], "Rent", {"think": False})
    store.add_turn(cid, "Who pays?", answer.to_json())

Layout of the data folder:

    <data_dir>/folio.db          SQLite, WAL mode, schema version in PRAGMA user_version
    <data_dir>/files/<sha256>    the original bytes of every stored document

Originals live as files, not BLOBs: the database stays small (fast WAL checkpoints, cheap
backups and VACUUM), reading a 200 MB PDF does not go through SQLite's page cache, and if
the database file is ever damaged the originals are still plain files a user can re-add.
File writes happen while the SQLite write lock is held, so the database and files/ change
together; a crash between the two is repaired the next time a Store opens the folder.

Concurrency: one short-lived connection per operation (safe from any thread or process),
every write inside BEGIN IMMEDIATE ... COMMIT, a busy timeout for waiting writers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..config import load_settings
from ..documents import Document, Passage
from ..errors import StoreError
from .catalog import _SUMMARY_COLUMNS, CatalogMixin, DocumentSummary, _summary_from_row
from .fulltext import TOKENIZER, check_query, index_text, search_expression, search_terms

DB_NAME = "folio.db"
FILES_DIR = "files"
SUBSTRING_MIN = 3
"""Search terms this long are also looked for inside words when the word index finds nothing."""
BUSY_TIMEOUT_S = 30.0
"""How long an operation waits for another writer (another tab or process) before giving up."""
_TRASH_PREFIX = ".trash-"
_TMP_PREFIX = ".tmp-"
_STALE_TMP_S = 3600
_SECRET_SETTINGS = ("api_key",)
TIMING_FIELDS = ("prompt_tokens", "server_prompt_tokens", "cached_tokens", "prompt_eval_s", "eval_count", "eval_s",
                 "total_s", "kind")
"""What add_call_timings keeps of a call record: enough for a time estimate, nothing of the documents."""
TIMINGS_KEPT = 50
"""Answers whose timings are kept per server and model (the newest)."""


class NotInStore(StoreError):
    """The document or conversation asked for is not (or no longer) in the store."""


@dataclass(frozen=True)
class SearchHit:
    """One passage matching a search, with a short plain-text snippet around the match."""

    sha256: str
    document: str
    passage_id: str
    index: int
    page: int | None
    page_end: int | None
    page_label: str | None
    heading: str
    snippet: str
    spans: list[tuple[int, int]]
    """Character ranges of the matched terms inside `snippet` (for the UI to emphasise)."""


# --- schema ---------------------------------------------------------------------------

_SCHEMA_V1 = [
    """CREATE TABLE documents (
        sha256 TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        format TEXT NOT NULL,
        pages INTEGER,
        chars INTEGER NOT NULL,
        tokens INTEGER NOT NULL,
        counter TEXT NOT NULL,
        passages INTEGER NOT NULL,
        warnings TEXT NOT NULL DEFAULT '[]',
        page_labels TEXT,
        size INTEGER NOT NULL,
        added_at TEXT NOT NULL,
        text TEXT NOT NULL
    )""",
    # pid is an explicit INTEGER PRIMARY KEY so VACUUM never renumbers the rows the FTS
    # index points at.
    """CREATE TABLE passages (
        pid INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL REFERENCES documents(sha256) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        id TEXT NOT NULL,
        page INTEGER,
        page_end INTEGER,
        page_label TEXT,
        heading TEXT NOT NULL,
        tokens INTEGER NOT NULL,
        start INTEGER NOT NULL,
        "end" INTEGER NOT NULL,
        text TEXT NOT NULL,
        UNIQUE (sha256, idx)
    )""",
    "CREATE INDEX passages_page ON passages (sha256, page, page_end)",
    """CREATE VIRTUAL TABLE passages_fts USING fts5(
        text, content='passages', content_rowid='pid', tokenize='trigram'
    )""",
    """CREATE TRIGGER passages_ai AFTER INSERT ON passages BEGIN
        INSERT INTO passages_fts (rowid, text) VALUES (new.pid, new.text);
    END""",
    """CREATE TRIGGER passages_ad AFTER DELETE ON passages BEGIN
        INSERT INTO passages_fts (passages_fts, rowid, text) VALUES ('delete', old.pid, old.text);
    END""",
    """CREATE TRIGGER passages_au AFTER UPDATE ON passages BEGIN
        INSERT INTO passages_fts (passages_fts, rowid, text) VALUES ('delete', old.pid, old.text);
        INSERT INTO passages_fts (rowid, text) VALUES (new.pid, new.text);
    END""",
    """CREATE TABLE conversations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        documents TEXT NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}'
    )""",
    """CREATE TABLE turns (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        question TEXT NOT NULL,
        answer_text TEXT NOT NULL,
        answer TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (conversation_id, position)
    )""",
]


def _fill_search_text(conn: sqlite3.Connection) -> None:
    """Store the index text of every passage whose text the index cannot read as is."""
    updates = []
    for pid, text in conn.execute("SELECT pid, text FROM passages"):
        search_text = index_text(text)
        if search_text is not None:
            updates.append((search_text, pid))
    conn.executemany("UPDATE passages SET search_text = ? WHERE pid = ?", updates)


_FTS_V2 = [
    # The trigram index (issue 9: 80 % of the write time, 48 % of the database) gives way to
    # a word index; scripts without spaces are indexed as bigrams (see fulltext.py).
    "DROP TRIGGER passages_ai",
    "DROP TRIGGER passages_ad",
    "DROP TRIGGER passages_au",
    "DROP TABLE passages_fts",
    "ALTER TABLE passages ADD COLUMN search_text TEXT",
    _fill_search_text,
    # The index reads this view: the passage text, or its index text where one is stored.
    "CREATE VIEW passages_search AS SELECT pid, COALESCE(search_text, text) AS body FROM passages",
    f"""CREATE VIRTUAL TABLE passages_fts USING fts5(
        body, content='passages_search', content_rowid='pid', tokenize="{TOKENIZER}"
    )""",
    "CREATE VIRTUAL TABLE passages_vocab USING fts5vocab(passages_fts, 'row')",
    """CREATE TRIGGER passages_ai AFTER INSERT ON passages BEGIN
        INSERT INTO passages_fts (rowid, body) VALUES (new.pid, COALESCE(new.search_text, new.text));
    END""",
    """CREATE TRIGGER passages_ad AFTER DELETE ON passages BEGIN
        INSERT INTO passages_fts (passages_fts, rowid, body)
        VALUES ('delete', old.pid, COALESCE(old.search_text, old.text));
    END""",
    """CREATE TRIGGER passages_au AFTER UPDATE ON passages BEGIN
        INSERT INTO passages_fts (passages_fts, rowid, body)
        VALUES ('delete', old.pid, COALESCE(old.search_text, old.text));
        INSERT INTO passages_fts (rowid, body) VALUES (new.pid, COALESCE(new.search_text, new.text));
    END""",
    "INSERT INTO passages_fts (passages_fts) VALUES ('rebuild')",
]

_SCHEMA_V2 = [
    # Listing 10,000 documents a page at a time, newest first or by name.
    "CREATE INDEX documents_added ON documents (added_at, name)",
    "CREATE INDEX documents_name ON documents (name COLLATE NOCASE)",
    """CREATE TABLE collections (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE collection_documents (
        collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        sha256 TEXT NOT NULL REFERENCES documents(sha256) ON DELETE CASCADE,
        added_at TEXT NOT NULL,
        PRIMARY KEY (collection_id, sha256)
    ) WITHOUT ROWID""",
    "CREATE INDEX collection_documents_sha ON collection_documents (sha256)",
    """CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{}',
        key TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        total INTEGER,
        done INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        work_total REAL,
        work_done REAL NOT NULL DEFAULT 0,
        current TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '',
        result TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        run_started REAL,
        run_work_start REAL NOT NULL DEFAULT 0,
        elapsed REAL NOT NULL DEFAULT 0,
        owner TEXT,
        owner_pid INTEGER,
        heartbeat REAL,
        stop TEXT
    )""",
    "CREATE INDEX jobs_kind_key ON jobs (kind, key)",
    """CREATE TABLE job_items (
        job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        status TEXT NOT NULL,
        label TEXT NOT NULL DEFAULT '',
        result TEXT,
        error TEXT NOT NULL DEFAULT '',
        seconds REAL NOT NULL DEFAULT 0,
        work REAL NOT NULL DEFAULT 0,
        finished_at TEXT NOT NULL,
        UNIQUE (job_id, key)
    )""",
    *_FTS_V2,
]

# Results of the real-context probe (lib/asking/probe.py): one row per run, shown again on
# the Settings page with their date, server and model. `result` is ProbeResult.to_json().
_SCHEMA_PROBE_RUNS = [
    """CREATE TABLE probe_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at TEXT NOT NULL,
        backend TEXT NOT NULL,
        host TEXT NOT NULL,
        model TEXT NOT NULL,
        context INTEGER NOT NULL,
        read_all INTEGER,
        verdict TEXT NOT NULL,
        result TEXT NOT NULL
    )""",
    "CREATE INDEX probe_runs_server ON probe_runs (host, model, created_at)",
]

# Review tables (issue 11): a table's definition, its columns, its documents (rows), the cells as
# they arrive and every call made. A separate step so that other migrations can be numbered
# around it; lib/library/reviews.py reads and writes these tables.
_SCHEMA_REVIEW_TABLES = [
    """CREATE TABLE review_tables (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        documents_key TEXT NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX review_tables_documents ON review_tables (documents_key)",
    """CREATE TABLE review_columns (
        table_id INTEGER NOT NULL REFERENCES review_tables(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        position INTEGER NOT NULL,
        title TEXT NOT NULL,
        question TEXT NOT NULL,
        type TEXT NOT NULL,
        options TEXT NOT NULL DEFAULT '[]',
        fingerprint TEXT NOT NULL,
        added_at TEXT NOT NULL,
        PRIMARY KEY (table_id, key)
    )""",
    # No reference to documents(sha256): a row keeps its name and cells when the document is deleted.
    """CREATE TABLE review_rows (
        table_id INTEGER NOT NULL REFERENCES review_tables(id) ON DELETE CASCADE,
        sha256 TEXT NOT NULL,
        name TEXT NOT NULL,
        position INTEGER NOT NULL,
        checked INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (table_id, sha256)
    )""",
    """CREATE TABLE review_calls (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        table_id INTEGER NOT NULL REFERENCES review_tables(id) ON DELETE CASCADE,
        sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL,
        record TEXT NOT NULL
    )""",
    "CREATE INDEX review_calls_table ON review_calls (table_id, sha256)",
    # The model's cell (JSON) and the reviewer's edit and mark live apart: a re-run replaces the
    # first, never the other two.
    """CREATE TABLE review_cells (
        table_id INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        column_key TEXT NOT NULL,
        status TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        cell TEXT NOT NULL,
        edit TEXT,
        checked INTEGER NOT NULL DEFAULT 0,
        call_id INTEGER,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (table_id, sha256, column_key),
        FOREIGN KEY (table_id, sha256) REFERENCES review_rows (table_id, sha256) ON DELETE CASCADE,
        FOREIGN KEY (table_id, column_key) REFERENCES review_columns (table_id, key) ON DELETE CASCADE
    )""",
]

# The measured speed of answers given outside the app (the command line's ask and plan runs):
# their calls' timing figures only, so a later plan can estimate its time (recent_calls).
_SCHEMA_CALL_TIMINGS = [
    """CREATE TABLE call_timings (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at TEXT NOT NULL,
        source TEXT NOT NULL,
        host TEXT NOT NULL,
        model TEXT NOT NULL,
        calls TEXT NOT NULL
    )""",
    "CREATE INDEX call_timings_server ON call_timings (host, model, id)",
]

MIGRATIONS: list[Sequence[str | Callable[[sqlite3.Connection], None]]] = [
    _SCHEMA_V1, _SCHEMA_V2, _SCHEMA_PROBE_RUNS, _SCHEMA_REVIEW_TABLES, _SCHEMA_CALL_TIMINGS,
]
"""MIGRATIONS[n] takes the schema from user_version n to n + 1: SQL statements, or a
function of the connection for a step SQL cannot do. Append, never edit."""
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema to `target` (default: the newest) in one write transaction; return the version found."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read the version under the write lock: two processes starting at once migrate once.
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"The library database was written by a newer Folio (schema {found}, this Folio "
                f"knows {SCHEMA_VERSION}). Update Folio, or set FOLIO_DATA_DIR to another folder."
            )
        for version in range(found, target):
            for step in MIGRATIONS[version]:
                if callable(step):
                    step(conn)
                else:
                    conn.execute(step)
        if target > found:
            conn.execute(f"PRAGMA user_version = {target}")
        conn.execute("COMMIT")
        return found
    except BaseException:
        conn.execute("ROLLBACK")
        raise


# --- helpers --------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _settings_dict(settings: Any) -> dict:
    """Settings (a dict or lib.config.Settings) as a JSON-safe dict without secrets."""
    if settings is None:
        return {}
    data = asdict(settings) if is_dataclass(settings) else dict(settings)
    return {key: value for key, value in data.items() if key not in _SECRET_SETTINGS}


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _snippet(text: str, terms: Sequence[str], width: int = 220) -> tuple[str, list[tuple[int, int]]]:
    """A window of `text` around the first match, and where the terms occur in it."""
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
    first = pattern.search(text)
    start = max(0, (first.start() if first else 0) - width // 4)
    end = min(len(text), start + width)
    if start > 0:
        space = text.find(" ", start, start + 20)
        start = space + 1 if space != -1 else start
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    window = " ".join(text[start:end].split())
    spans = [(m.start() + len(prefix), m.end() + len(prefix)) for m in pattern.finditer(window)]
    return prefix + window + suffix, spans


def _is_stale(path: Path) -> bool:
    """An old temp file (a young one may belong to another process writing right now)."""
    try:
        return time.time() - path.stat().st_mtime > _STALE_TMP_S
    except FileNotFoundError:
        return False


def _passage_from_row(row: sqlite3.Row) -> Passage:
    return Passage(
        id=row["id"],
        index=row["idx"],
        page=row["page"],
        page_end=row["page_end"],
        heading=row["heading"],
        text=row["text"],
        tokens=row["tokens"],
        start=row["start"],
        end=row["end"],
        page_label=row["page_label"],
    )


# --- the store ------------------------------------------------------------------------


class Store(CatalogMixin):
    """The library in one data folder. Safe to share between threads and processes."""

    def __init__(self, data_dir: Path | str | None = None, *, busy_timeout: float = BUSY_TIMEOUT_S):
        self.data_dir = Path(data_dir) if data_dir is not None else load_settings().data_dir
        self.data_dir = self.data_dir.expanduser()
        self.db_path = self.data_dir / DB_NAME
        self.files_dir = self.data_dir / FILES_DIR
        self.busy_timeout = busy_timeout
        self._prepare_folder()
        with self._errors("open the library"):
            self._init_database()
            self._repair_files()

    def close(self) -> None:
        """Nothing to release: every operation opens and closes its own connection."""

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- setup ----------------------------------------------------------------------

    def _prepare_folder(self) -> None:
        """Create the data folder and prove it is writable, or say what to do."""
        try:
            self.files_dir.mkdir(parents=True, exist_ok=True)
            probe = self.files_dir / f"{_TMP_PREFIX}probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StoreError(
                f"Folio cannot write to its data folder {self.data_dir} ({exc.strerror or exc}). "
                "Make that folder writable for your user, or set FOLIO_DATA_DIR to a folder you can write to."
            ) from exc

    def _init_database(self) -> None:
        conn = self._open()
        try:
            # WAL lets readers (another tab listing documents) run while one writer writes.
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"The library database {self.db_path} cannot use write-ahead logging (mode {mode}). "
                    "Put FOLIO_DATA_DIR on a local disk (not a network share)."
                )
            migrate(conn)
        finally:
            conn.close()

    def _open(self) -> sqlite3.Connection:
        """A new connection with Folio's settings (the caller closes it)."""
        conn = sqlite3.connect(self.db_path, timeout=self.busy_timeout, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        # FULL: a committed document or answer survives a power cut, not just a crash.
        conn.execute("PRAGMA synchronous = FULL")
        # Deleted confidential text is overwritten, not left in free pages of the file.
        conn.execute("PRAGMA secure_delete = ON")
        return conn

    # --- connection and error plumbing ------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (each statement sees a consistent snapshot)."""
        conn = self._open()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: all of it is stored, or none of it."""
        conn = self._open()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn sqlite3 and OS errors into StoreError messages that say what to do."""
        try:
            yield
        except StoreError:
            raise
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._explain(action, exc)) from exc
        except OSError as exc:
            raise StoreError(
                f"Could not {action}: {exc.strerror or exc} ({exc.filename or self.data_dir}). "
                f"Check that {self.data_dir} is on a writable disk with free space."
            ) from exc

    def _explain(self, action: str, exc: sqlite3.DatabaseError) -> str:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return (
                f"Could not {action}: the library database {self.db_path} stayed locked for more than "
                f"{self.busy_timeout:.0f} s because another Folio tab or process is writing. "
                "Wait a moment and try again; if it persists, close other Folio processes."
            )
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return (
                f"Could not {action}: the library database {self.db_path} is damaged ({exc}). "
                f"Your original files are safe under {self.files_dir}. Move {self.db_path.name} "
                "aside (for example rename it to folio.db.broken), restart Folio and add the files again."
            )
        if "readonly" in text or "unable to open" in text or "permission" in text:
            return (
                f"Could not {action}: Folio cannot write the library database {self.db_path} ({exc}). "
                "Make the data folder writable, or set FOLIO_DATA_DIR to a folder you can write to."
            )
        if "full" in text:
            return f"Could not {action}: the disk holding {self.data_dir} is full. Free some space and try again."
        return f"Could not {action}: the library database {self.db_path} reported: {exc}. Nothing was changed."

    # --- original files ---------------------------------------------------------------

    def _file_path(self, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
            raise NotInStore(f"{sha256!r} is not a document id (a sha256 in hex). Pick a document from the library.")
        return self.files_dir / sha256

    def _write_file(self, sha256: str, data: bytes) -> None:
        """Write an original atomically (temp file, fsync, rename)."""
        tmp = self.files_dir / f"{_TMP_PREFIX}{sha256}-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._file_path(sha256))
        finally:
            tmp.unlink(missing_ok=True)

    def _repair_files(self) -> None:
        """Finish what a crash interrupted: restore or drop trashed files, drop orphans."""
        with self._write() as conn:
            known = {row[0] for row in conn.execute("SELECT sha256 FROM documents")}
            for path in self.files_dir.iterdir():
                name = path.name
                if name.startswith(_TRASH_PREFIX):
                    sha = name[len(_TRASH_PREFIX) :].split("-")[0]
                    target = self.files_dir / sha
                    if sha in known and not target.exists():
                        os.replace(path, target)
                    else:
                        path.unlink(missing_ok=True)
                elif name.startswith(_TMP_PREFIX):
                    if _is_stale(path):
                        path.unlink(missing_ok=True)
                elif re.fullmatch(r"[0-9a-f]{64}", name) and name not in known:
                    path.unlink(missing_ok=True)

    # --- documents --------------------------------------------------------------------

    def add_document(self, document: Document, original: bytes) -> tuple[Document, bool]:
        """Store a document and its original bytes; (stored document, False) if already there."""
        digest = hashlib.sha256(original).hexdigest()
        if digest != document.sha256:
            raise StoreError(
                f"{document.name}: the original bytes do not match the document's sha256; "
                "read the file again and add the result."
            )
        with self._errors(f"add {document.name} to the library"):
            with self._write() as conn:
                if conn.execute("SELECT 1 FROM documents WHERE sha256 = ?", (digest,)).fetchone():
                    return self._load_document(conn, digest), False
                self._write_file(digest, original)
                try:
                    self._insert_document(conn, document, len(original))
                except BaseException:
                    self._file_path(digest).unlink(missing_ok=True)
                    raise
        return document, True

    def _insert_document(self, conn: sqlite3.Connection, document: Document, size: int) -> None:
        conn.execute(
            "INSERT INTO documents (sha256, name, format, pages, chars, tokens, counter, passages, "
            "warnings, page_labels, size, added_at, text) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                document.sha256,
                document.name,
                document.format,
                document.pages,
                document.chars,
                document.tokens,
                document.counter,
                len(document.passages),
                _json(list(document.warnings)),
                _json(document.page_labels) if document.page_labels is not None else None,
                size,
                _now(),
                document.text,
            ),
        )
        self._insert_passages(conn, document.sha256, document.passages)

    def _insert_passages(self, conn: sqlite3.Connection, sha256: str, passages: Sequence[Passage]) -> None:
        conn.executemany(
            'INSERT INTO passages (sha256, idx, id, page, page_end, page_label, heading, tokens, start, "end", text, '
            "search_text) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (sha256, p.index, p.id, p.page, p.page_end, p.page_label, p.heading, p.tokens, p.start, p.end, p.text,
                 index_text(p.text))
                for p in passages
            ],
        )

    def list_documents(self) -> list[DocumentSummary]:
        """Every stored document, newest first, without text or passages."""
        with self._errors("list the library"), self._read() as conn:
            rows = conn.execute(f"SELECT {_SUMMARY_COLUMNS} FROM documents ORDER BY added_at DESC, name").fetchall()
        return [_summary_from_row(row) for row in rows]

    def has_document(self, sha: str) -> bool:
        with self._errors("look up a document"), self._read() as conn:
            return conn.execute("SELECT 1 FROM documents WHERE sha256 = ?", (sha,)).fetchone() is not None

    def get_document(self, sha: str) -> Document:
        """The whole document with its passages; NotInStore if it is not stored."""
        with self._errors("read a document"), self._read() as conn:
            # One read transaction so the document and its passages belong together.
            conn.execute("BEGIN")
            try:
                return self._load_document(conn, sha)
            finally:
                conn.execute("COMMIT")

    def get_documents(self, shas: Sequence[str]) -> list[Document]:
        """Several documents, in the order asked, from one snapshot (one connection for all)."""
        with self._errors("read the documents"), self._read() as conn:
            conn.execute("BEGIN")
            try:
                return [self._load_document(conn, sha) for sha in shas]
            finally:
                conn.execute("COMMIT")

    def _load_document(self, conn: sqlite3.Connection, sha256: str) -> Document:
        row = conn.execute("SELECT * FROM documents WHERE sha256 = ?", (sha256,)).fetchone()
        if row is None:
            raise self._missing_document(sha256)
        passages = conn.execute("SELECT * FROM passages WHERE sha256 = ? ORDER BY idx", (sha256,)).fetchall()
        return Document(
            name=row["name"],
            sha256=row["sha256"],
            format=row["format"],
            pages=row["pages"],
            text=row["text"],
            passages=[_passage_from_row(p) for p in passages],
            tokens=row["tokens"],
            counter=row["counter"],
            warnings=json.loads(row["warnings"]),
            page_labels=json.loads(row["page_labels"]) if row["page_labels"] is not None else None,
        )

    @staticmethod
    def _missing_document(sha256: str) -> NotInStore:
        return NotInStore(
            f"Document {sha256[:12]} is not in the library (it may have been deleted in another tab). "
            "Reload the library and choose it again, or add the file again."
        )

    def get_original(self, sha: str) -> bytes:
        """The original file's bytes."""
        path = self._file_path(sha)
        if not self.has_document(sha):
            raise self._missing_document(sha)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            if not self.has_document(sha):
                raise self._missing_document(sha) from exc
            raise StoreError(
                f"The original file of document {sha[:12]} is missing from {self.files_dir}. "
                "Delete the document from the library and add the file again."
            ) from exc
        except OSError as exc:
            raise StoreError(f"Could not read {path}: {exc.strerror or exc}. Check the data folder's permissions.") from exc

    def delete_document(self, sha: str) -> bool:
        """Remove a document, its passages, its search index rows and its original file.

        Conversations that used it keep their saved questions, answers and quotes.
        Returns False when there was nothing to delete.
        """
        path = self._file_path(sha)
        with self._errors("delete the document"):
            if not self._delete_rows_and_file(sha, path):
                return False
            self._purge_deleted_text()
        return True

    def _delete_rows_and_file(self, sha256: str, path: Path) -> bool:
        """One transaction; the file is moved aside under the lock and restored on failure."""
        trash = self.files_dir / f"{_TRASH_PREFIX}{sha256}-{uuid.uuid4().hex}"
        moved = False
        conn = self._open()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("SELECT 1 FROM documents WHERE sha256 = ?", (sha256,)).fetchone() is None:
                    conn.execute("ROLLBACK")
                    return False
                # Passages first and explicitly, so the FTS delete trigger runs for each one.
                conn.execute("DELETE FROM passages WHERE sha256 = ?", (sha256,))
                conn.execute("DELETE FROM documents WHERE sha256 = ?", (sha256,))
                if path.exists():
                    os.replace(path, trash)
                    moved = True
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if moved:
                    os.replace(trash, path)
                raise
        finally:
            conn.close()
        trash.unlink(missing_ok=True)
        return True

    def _purge_deleted_text(self) -> None:
        """Merge the search index and checkpoint the WAL so deleted text does not linger."""
        try:
            with self._write() as conn:
                conn.execute("INSERT INTO passages_fts (passages_fts) VALUES ('optimize')")
            with self._read() as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass  # best effort: another tab is busy; the next delete or checkpoint catches up

    # --- passages and search ----------------------------------------------------------

    def passages_on_page(self, sha: str, page: int) -> list[Passage]:
        """Passages that start, end or lie on this 1-based page, in reading order."""
        with self._errors("read a page"), self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM passages WHERE sha256 = ? AND page <= ? AND COALESCE(page_end, page) >= ? ORDER BY idx",
                (sha, page, page),
            ).fetchall()
        return [_passage_from_row(row) for row in rows]

    def list_passages(self, sha: str, offset: int = 0, limit: int | None = None) -> list[Passage]:
        """Passages in order, a slice at a time (for documents without pages)."""
        with self._errors("read passages"), self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM passages WHERE sha256 = ? ORDER BY idx LIMIT ? OFFSET ?",
                (sha, -1 if limit is None else limit, offset),
            ).fetchall()
        return [_passage_from_row(row) for row in rows]

    def search_passages(self, query: str, sha: str | None = None, limit: int = 50) -> list[SearchHit]:
        """Passages containing every term of `query`, best first (BM25), case- and accent-blind.

        Words match whole or as the start of a longer word ("repair" finds "repairs");
        "quoted phrases" match as phrases; Chinese and Japanese match any run of characters.
        When that finds nothing, unquoted terms of SUBSTRING_MIN+ characters are looked for
        anywhere, inside words too ("ssee" finds "lessee"), which reads every passage.
        QueryError (an InputError) for text no document can contain (a NUL, a broken
        surrogate): the message is about the query.
        """
        expression = search_expression(query)
        if expression is None:
            return []
        terms = [term for term, _quoted in search_terms(query)]
        sql = (
            "SELECT p.*, d.name AS document FROM passages_fts JOIN passages p ON p.pid = passages_fts.rowid "
            "JOIN documents d ON d.sha256 = p.sha256 WHERE passages_fts MATCH ?"
        )
        params: list = [expression]
        with self._errors("search the library"), self._read() as conn:
            if sha is not None:
                # One document's passages are one run of row ids: the index reads only that run.
                first, last = conn.execute("SELECT MIN(pid), MAX(pid) FROM passages WHERE sha256 = ?", (sha,)).fetchone()
                if first is None:
                    return []
                sql += " AND passages_fts.rowid BETWEEN ? AND ? AND p.sha256 = ?"
                params += [first, last, sha]
            sql += " ORDER BY bm25(passages_fts), p.sha256, p.idx LIMIT ?"
            rows = conn.execute(sql, params + [max(0, int(limit))]).fetchall()
            exact = any(quoted for _term, quoted in search_terms(query))
            if not rows and not exact and all(len(term) >= SUBSTRING_MIN for term in terms):
                rows = self._substring_rows(conn, terms, sha, limit)
        return [self._hit(row, terms) for row in rows]

    @staticmethod
    def _substring_rows(conn: sqlite3.Connection, terms: Sequence[str], sha: str | None, limit: int) -> list:
        """Passages holding every term anywhere, even inside a word ("ssee" in "lessee"): read
        only when the index finds nothing, since it reads every passage."""
        where = " AND ".join("p.text LIKE ? ESCAPE '\\'" for _ in terms)
        params = [_like_pattern(term) for term in terms]
        if sha is not None:
            where += " AND p.sha256 = ?"
            params.append(sha)
        return conn.execute(
            f"SELECT p.*, d.name AS document FROM passages p JOIN documents d ON d.sha256 = p.sha256 WHERE {where} "
            "ORDER BY d.added_at DESC, p.sha256, p.idx LIMIT ?",
            params + [max(0, int(limit))],
        ).fetchall()

    def rank_documents(self, question: str, shas: Sequence[str]) -> list:
        """Stored documents ranked by relevance to `question` (list[ranking.RankedDocument], best first)."""
        from .ranking import rank_stored

        return rank_stored(self, question, shas)

    @staticmethod
    def _hit(row: sqlite3.Row, terms: Sequence[str]) -> SearchHit:
        snippet, spans = _snippet(row["text"], terms)
        return SearchHit(
            sha256=row["sha256"],
            document=row["document"],
            passage_id=row["id"],
            index=row["idx"],
            page=row["page"],
            page_end=row["page_end"],
            page_label=row["page_label"],
            heading=row["heading"],
            snippet=snippet,
            spans=spans,
        )

    # --- conversations ----------------------------------------------------------------

    def create_conversation(self, document_shas: Sequence[str], title: str, settings: Any = None) -> int:
        """Start a conversation over these documents; returns its id."""
        now = _now()
        with self._errors("save the conversation"), self._write() as conn:
            documents = [{"sha256": sha, "name": self._document_name(conn, sha)} for sha in document_shas]
            cursor = conn.execute(
                "INSERT INTO conversations (title, created_at, updated_at, documents, settings) VALUES (?,?,?,?,?)",
                (title.strip() or "Untitled", now, now, _json(documents), _json(_settings_dict(settings))),
            )
            return int(cursor.lastrowid)

    @staticmethod
    def _document_name(conn: sqlite3.Connection, sha256: str) -> str:
        row = conn.execute("SELECT name FROM documents WHERE sha256 = ?", (sha256,)).fetchone()
        return row["name"] if row else sha256[:12]

    def add_turn(self, conversation_id: int, question: str, answer: dict, settings: Any = None) -> int:
        """Append a question and its answer (Answer.to_json() shape) to a conversation."""
        record = dict(answer)
        record["settings"] = _settings_dict(settings) if settings is not None else record.get("settings", {})
        now = _now()
        with self._errors("save the answer"), self._write() as conn:
            self._require_conversation(conn, conversation_id)
            position = conn.execute(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM turns WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()[0]
            cursor = conn.execute(
                "INSERT INTO turns (conversation_id, position, question, answer_text, answer, created_at) "
                "VALUES (?,?,?,?,?,?)",
                (conversation_id, position, question, str(record.get("answer") or ""), _json(record), now),
            )
            conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
            return int(cursor.lastrowid)

    def _require_conversation(self, conn: sqlite3.Connection, conversation_id: int) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            raise NotInStore(
                f"Conversation {conversation_id} is not in the history (it may have been deleted in "
                "another tab). Start a new conversation."
            )
        return row

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        with self._errors("rename the conversation"), self._write() as conn:
            self._require_conversation(conn, conversation_id)
            conn.execute("UPDATE conversations SET title = ? WHERE id = ?", (title.strip() or "Untitled", conversation_id))

    def list_conversations(self, search: str = "") -> list[dict]:
        """Conversations, most recently active first; `search` matches titles, questions and answers."""
        sql = (
            "SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) AS turn_count, "
            "(SELECT question FROM turns t WHERE t.conversation_id = c.id ORDER BY position DESC LIMIT 1) "
            "AS last_question FROM conversations c"
        )
        params: list = []
        for term, _quoted in search_terms(check_query(search)):
            pattern = _like_pattern(term)
            sql += " WHERE" if not params else " AND"
            sql += (
                " (c.title LIKE ?1 ESCAPE '\\' OR EXISTS (SELECT 1 FROM turns t WHERE t.conversation_id = c.id "
                "AND (t.question LIKE ?1 ESCAPE '\\' OR t.answer_text LIKE ?1 ESCAPE '\\')))"
            ).replace("?1", f"?{len(params) + 1}")
            params.append(pattern)
        sql += " ORDER BY c.updated_at DESC, c.id DESC"
        with self._errors("list the history"), self._read() as conn:
            known = {row[0] for row in conn.execute("SELECT sha256 FROM documents")}
            rows = conn.execute(sql, params).fetchall()
        return [self._conversation_summary(row, known) for row in rows]

    @staticmethod
    def _conversation_documents(raw: str, known: set[str]) -> list[dict]:
        return [dict(d, available=d["sha256"] in known) for d in json.loads(raw)]

    def _conversation_summary(self, row: sqlite3.Row, known: set[str]) -> dict:
        return {
            "id": row["id"],
            "title": row["title"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "documents": self._conversation_documents(row["documents"], known),
            "settings": json.loads(row["settings"]),
            "turns": row["turn_count"],
            "last_question": row["last_question"] or "",
        }

    def get_conversation(self, conversation_id: int) -> dict:
        """A conversation with all its turns in order (see turn_dict for a turn's keys)."""
        with self._errors("read the conversation"), self._read() as conn:
            conn.execute("BEGIN")
            try:
                row = self._require_conversation(conn, conversation_id)
                turns = conn.execute(
                    "SELECT * FROM turns WHERE conversation_id = ? ORDER BY position", (conversation_id,)
                ).fetchall()
                known = {r[0] for r in conn.execute("SELECT sha256 FROM documents")}
            finally:
                conn.execute("COMMIT")
        return {
            "id": row["id"],
            "title": row["title"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "documents": self._conversation_documents(row["documents"], known),
            "settings": json.loads(row["settings"]),
            "turns": [turn_dict(t) for t in turns],
        }

    def delete_conversation(self, conversation_id: int) -> bool:
        """Remove a conversation and its turns; False if there was none."""
        with self._errors("delete the conversation"), self._write() as conn:
            conn.execute("DELETE FROM turns WHERE conversation_id = ?", (conversation_id,))
            return conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount > 0

    # --- probe runs -------------------------------------------------------------------

    def add_call_timings(self, host: str, model: str, calls: Sequence[dict], *, source: str = "cli") -> int | None:
        """Keep the timing figures of an answer's calls (TIMING_FIELDS), for later estimates; the
        oldest beyond TIMINGS_KEPT per server and model go. None when no call has a figure."""
        kept = [{k: c[k] for k in TIMING_FIELDS if c.get(k) is not None} for c in calls if isinstance(c, dict)]
        kept = [c for c in kept if c]
        if not kept:
            return None
        with self._errors("save the answer's timings"), self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO call_timings (created_at, source, host, model, calls) VALUES (?,?,?,?,?)",
                (_now(), source, host, model, _json(kept)),
            )
            conn.execute(
                "DELETE FROM call_timings WHERE host = ? AND model = ? AND id NOT IN "
                "(SELECT id FROM call_timings WHERE host = ? AND model = ? ORDER BY id DESC LIMIT ?)",
                (host, model, host, model, TIMINGS_KEPT),
            )
            return int(cursor.lastrowid)

    def add_probe_run(self, result: dict) -> int:
        """Keep one probe result (ProbeResult.to_json()); returns its id."""
        read_all = result.get("read_all")
        with self._errors("save the probe result"), self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO probe_runs (created_at, backend, host, model, context, read_all, verdict, result) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (result.get("date") or _now(), str(result.get("backend") or ""), str(result.get("host") or ""),
                 str(result.get("model") or ""), int(result.get("context") or 0),
                 None if read_all is None else int(bool(read_all)), str(result.get("verdict") or ""),
                 _json(result)),
            )
            return int(cursor.lastrowid)

    def list_probe_runs(self, limit: int = 50) -> list[dict]:
        """Stored probe runs, newest first: id, created_at, backend, host, model, context, read_all, verdict."""
        with self._errors("list the probe results"), self._read() as conn:
            rows = conn.execute(
                "SELECT id, created_at, backend, host, model, context, read_all, verdict FROM probe_runs "
                "ORDER BY created_at DESC, id DESC LIMIT ?", (int(limit),)
            ).fetchall()
        return [dict(row, read_all=None if row["read_all"] is None else bool(row["read_all"])) for row in rows]

    def get_probe_run(self, run_id: int) -> dict:
        """One stored probe result (ProbeResult.to_json() with its id)."""
        with self._errors("read the probe result"), self._read() as conn:
            row = conn.execute("SELECT id, result FROM probe_runs WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise NotInStore(f"Probe result {run_id} is not stored (it may have been deleted). Run the probe again.")
        return dict(json.loads(row["result"]), id=row["id"])

    def delete_probe_run(self, run_id: int) -> bool:
        with self._errors("delete the probe result"), self._write() as conn:
            return conn.execute("DELETE FROM probe_runs WHERE id = ?", (int(run_id),)).rowcount > 0

    def recent_calls(self, host: str, model: str, limit: int = 20) -> list[dict]:
        """Statistics of recent calls to this server and model (probe rows, answers of the command
        line and of the app), newest first.

        Each has server_prompt_tokens or server_read_tokens, cached_tokens, prompt_eval_s,
        eval_count, eval_s where the server reported them: what a time estimate needs."""
        calls: list[dict] = []
        with self._errors("read earlier timings"), self._read() as conn:
            for row in conn.execute(
                "SELECT result FROM probe_runs WHERE host = ? AND model = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                (host, model, int(limit)),
            ):
                calls += json.loads(row["result"]).get("rows", [])
            for row in conn.execute(
                "SELECT calls FROM call_timings WHERE host = ? AND model = ? ORDER BY id DESC LIMIT ?",
                (host, model, int(limit)),
            ):
                calls += json.loads(row["calls"])
            for row in conn.execute(
                "SELECT answer FROM turns WHERE json_extract(answer, '$.settings.host') = ? "
                "AND json_extract(answer, '$.settings.model') = ? ORDER BY id DESC LIMIT ?",
                (host, model, int(limit)),
            ):
                calls += json.loads(row["answer"]).get("calls", [])
        return calls[: max(int(limit), 0) * 5]

    # --- maintenance ------------------------------------------------------------------

    def check_integrity(self) -> list[str]:
        """Problems found by SQLite's and FTS5's integrity checks ([] when healthy)."""
        with self._errors("check the library"), self._read() as conn:
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
            try:
                conn.execute("INSERT INTO passages_fts (passages_fts) VALUES ('integrity-check')")
            except sqlite3.DatabaseError as exc:
                problems.append(f"search index: {exc}")
            problems += [f"foreign key: {tuple(r)}" for r in conn.execute("PRAGMA foreign_key_check")]
        return problems


def turn_dict(row: sqlite3.Row) -> dict:
    """A stored turn as a plain dict: the saved answer dict plus id, position, question, time."""
    record = json.loads(row["answer"])
    record.setdefault("answer", row["answer_text"])
    for key, default in (("thinking", ""), ("citations", []), ("warnings", []), ("calls", []), ("settings", {})):
        record.setdefault(key, default)
    record.update(
        id=row["id"],
        conversation_id=row["conversation_id"],
        position=row["position"],
        question=row["question"],
        created_at=row["created_at"],
    )
    return record


def open_store(data_dir: Path | str | None = None, **kwargs: Any) -> Store:
    """The Store for a data folder (argument > FOLIO_DATA_DIR > per-user default)."""
    return Store(data_dir, **kwargs)

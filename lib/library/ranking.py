"""Documents ranked by relevance to a question: BM25 over their passages (SQLite FTS5).

    from lib.library.ranking import rank_documents
    ranked = rank_documents("Was the limitation defence upheld?", documents)   # in-memory Documents
    ranked = store.rank_documents("Was the limitation defence upheld?", shas)   # stored, at 10,000-document scale
    ranked[0].sha256, ranked[0].name, ranked[0].score, ranked[0].rank, ranked[0].best

Every passage is scored with FTS5's BM25 against the question's terms (its words without
stopwords; for Chinese, Japanese and other scripts without spaces, its character bigrams:
see fulltext.py), and a document scores the sum of its three best passages, weighted
1, 1/2 and 1/4: one passage squarely on the question counts most, and a document that
comes back to it scores higher than one that mentions it once. Best first; documents with
no matching passage come last with score 0, in the order they were given (stable).

`rank_documents` builds a temporary in-memory index (documents given on the command line
are not in the store; the last few indexes are kept, so a follow-up question over the same
documents does not index them again). `Store.rank_documents` uses the library's own index.
"""

from __future__ import annotations

import bisect
import heapq
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..documents import Document
from .fulltext import TOKENIZER, index_text, question_terms, term_expression

if TYPE_CHECKING:
    from .store import Store

WEIGHTS = (1.0, 0.5, 0.25)
"""How much a document's best, second and third passage count towards its score."""
COMMON_SHARE = 0.25
"""A term found in more than this share of the passages (of an index of at least
COMMON_MIN passages) says nothing about relevance and is dropped, unless every term is."""
COMMON_MIN = 400
CACHED_INDEXES = 4


@dataclass(frozen=True)
class RankedDocument:
    sha256: str
    name: str
    score: float
    """Relevance (higher is better); 0.0 when no passage matched any term of the question."""
    rank: int
    """1 for the most relevant."""
    matches: int = 0
    """Passages that matched at least one term."""
    best: tuple[str, ...] = ()
    """IDs of the best passages (up to three), best first: why the document ranks where it does."""

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "name": self.name, "score": round(self.score, 4), "rank": self.rank,
                "matches": self.matches, "best": list(self.best)}


# ---------------------------------------------------------------- scoring


class _Tally:
    """Per document: the best passage scores seen, and how many passages matched."""

    __slots__ = ("top", "matches")

    def __init__(self) -> None:
        self.top: list[tuple[float, int]] = []
        self.matches = 0

    def add(self, score: float, position: int) -> None:
        self.matches += 1
        if len(self.top) < len(WEIGHTS):
            heapq.heappush(self.top, (score, -position))
        elif score > self.top[0][0]:
            heapq.heapreplace(self.top, (score, -position))

    def score(self) -> float:
        return sum(w * s for w, (s, _p) in zip(WEIGHTS, sorted(self.top, reverse=True)))

    def best(self) -> list[int]:
        return [-p for _s, p in sorted(self.top, reverse=True)]


def _terms_to_query(conn: sqlite3.Connection, terms: list[str], vocab: str | None, passages: int) -> str | None:
    """The OR query of the question's informative terms (None when it has none)."""
    if not terms:
        return None
    kept = terms
    if vocab and passages >= COMMON_MIN:
        limit = passages * COMMON_SHARE
        kept = [t for t in terms if _document_frequency(conn, vocab, t) <= limit] or terms
    return " OR ".join(term_expression(t) for t in kept)


def _document_frequency(conn: sqlite3.Connection, vocab: str, term: str) -> int:
    from .fulltext import NO_SPACE_RUN

    if NO_SPACE_RUN.fullmatch(term) and len(term) == 1:
        return 0  # a prefix term: cheap to keep
    row = conn.execute(f"SELECT doc FROM {vocab} WHERE term = ?", (term,)).fetchone()
    return row[0] if row else 0


def _order(tallies: dict[int, _Tally], count: int) -> list[tuple[int, float]]:
    """(document position, score), best first; ties and unmatched documents in the given order."""
    scored = [(position, tallies[position].score()) for position in tallies]
    scored.sort(key=lambda item: (-item[1], item[0]))
    unmatched = [(position, 0.0) for position in range(count) if position not in tallies]
    return scored + unmatched


# ---------------------------------------------------------------- in-memory documents


class _MemoryIndex:
    """A temporary FTS5 index of some documents' passages (rowid = running passage number)."""

    def __init__(self, documents: Sequence[Document]):
        self.conn = sqlite3.connect(":memory:", check_same_thread=False)
        self.lock = threading.Lock()
        self.conn.execute(f"CREATE VIRTUAL TABLE fts USING fts5(body, content='', tokenize=\"{TOKENIZER}\")")
        self.conn.execute("CREATE VIRTUAL TABLE vocab USING fts5vocab(fts, 'row')")
        self.owner: list[tuple[int, str]] = []  # rowid -> (document position, passage id)
        rows = []
        for position, document in enumerate(documents):
            for passage in document.passages:
                rows.append((len(self.owner), index_text(passage.text) or passage.text))
                self.owner.append((position, passage.id))
        with self.conn:
            self.conn.executemany("INSERT INTO fts (rowid, body) VALUES (?, ?)", rows)

    def tallies(self, terms: list[str]) -> dict[int, _Tally]:
        with self.lock:
            query = _terms_to_query(self.conn, terms, "vocab", len(self.owner))
            if query is None:
                return {}
            rows = self.conn.execute("SELECT rowid, bm25(fts) FROM fts WHERE fts MATCH ?", (query,)).fetchall()
        tallies: dict[int, _Tally] = {}
        for rowid, bm25 in rows:
            position = self.owner[rowid][0]
            tallies.setdefault(position, _Tally()).add(-bm25, rowid)
        return tallies


_indexes: OrderedDict[tuple, _MemoryIndex] = OrderedDict()
_indexes_lock = threading.Lock()


def _index_for(documents: Sequence[Document]) -> _MemoryIndex:
    key = tuple((d.sha256, len(d.passages), d.passages[0].id if d.passages else "") for d in documents)
    with _indexes_lock:
        index = _indexes.get(key)
        if index is not None:
            _indexes.move_to_end(key)
            return index
    index = _MemoryIndex(documents)
    with _indexes_lock:
        _indexes[key] = index
        while len(_indexes) > CACHED_INDEXES:
            _indexes.popitem(last=False)
    return index


def rank_documents(question: str, documents: Sequence[Document], *, store: "Store | None" = None) -> list[RankedDocument]:
    """`documents` ranked by relevance to `question`, best first (see the module docstring).

    With `store`, documents that are all stored are ranked with the library's index
    instead of a temporary one (faster for large selections; the same scores' order).
    """
    documents = list(documents)
    if store is not None and documents and all(store.has_document(d.sha256) for d in documents):
        return store.rank_documents(question, [d.sha256 for d in documents])
    terms = question_terms(question)
    if not documents or not terms:
        return _ranked([(i, 0.0) for i in range(len(documents))], documents, {}, lambda position, rowid: "")
    index = _index_for(documents)
    tallies = index.tallies(terms)
    return _ranked(_order(tallies, len(documents)), documents, tallies, lambda position, rowid: index.owner[rowid][1])


def _ranked(order, documents, tallies, passage_id) -> list[RankedDocument]:
    out = []
    for rank, (position, score) in enumerate(order, start=1):
        tally = tallies.get(position)
        best = tuple(passage_id(position, rowid) for rowid in tally.best()) if tally else ()
        document = documents[position]
        out.append(RankedDocument(document.sha256, document.name, score, rank, tally.matches if tally else 0, best))
    return out


# ---------------------------------------------------------------- stored documents


def rank_stored(store: "Store", question: str, shas: Sequence[str]) -> list[RankedDocument]:
    """Store.rank_documents: the same ranking over stored documents, with the library's index."""
    shas = list(dict.fromkeys(shas))
    terms = question_terms(question)
    with store._errors("rank the documents"), store._read() as conn:
        conn.execute("BEGIN")
        try:
            pid_map = _pid_map(conn, str(store.db_path))
            positions = {sha: i for i, sha in enumerate(shas)}
            tallies, ids = _stored_tallies(conn, terms, positions, pid_map) if terms else ({}, {})
        finally:
            conn.execute("COMMIT")
    documents = [_Named(sha, pid_map.names.get(sha, sha[:12])) for sha in shas]
    return _ranked(_order(tallies, len(shas)), documents, tallies, lambda position, rowid: ids.get(rowid, ""))


@dataclass(frozen=True)
class _Named:
    sha256: str
    name: str


class _PidMap:
    """Which document each passage row belongs to: a document's passages are one run of
    row ids (inserted together in one transaction), so a sorted list of runs answers it
    without joining 100,000 passage rows."""

    def __init__(self, rows: list[tuple[int, int, int, str]], names: dict[str, str]):
        self.names = names
        rows.sort()
        self.starts = [r[0] for r in rows]
        self.ends = [r[1] for r in rows]
        self.shas = [r[3] for r in rows]
        self.contiguous = all(last - first + 1 == count for first, last, count, _sha in rows) and all(
            a < b for a, b in zip(self.ends, self.starts[1:])
        )

    def sha_of(self, pid: int) -> str | None:
        at = bisect.bisect_right(self.starts, pid) - 1
        return self.shas[at] if at >= 0 and pid <= self.ends[at] else None


_pid_maps: dict[str, tuple[tuple, _PidMap]] = {}
_pid_maps_lock = threading.Lock()


def _pid_map(conn: sqlite3.Connection, key: str) -> _PidMap:
    """The map for this database, rebuilt only when documents were added or deleted."""
    generation = tuple(conn.execute(
        "SELECT (SELECT MAX(pid) FROM passages), (SELECT COUNT(*) FROM documents), (SELECT MIN(pid) FROM passages)"
    ).fetchone())
    with _pid_maps_lock:
        cached = _pid_maps.get(key)
    if cached and cached[0] == generation:
        return cached[1]
    rows = conn.execute("SELECT MIN(pid), MAX(pid), COUNT(*), sha256 FROM passages GROUP BY sha256").fetchall()
    names = dict(conn.execute("SELECT sha256, name FROM documents").fetchall())
    built = _PidMap([tuple(r) for r in rows], names)
    with _pid_maps_lock:
        _pid_maps[key] = (generation, built)
    return built


def _stored_tallies(conn: sqlite3.Connection, terms: list[str], positions: dict[str, int], pid_map: _PidMap) -> tuple[dict, dict]:
    passages = conn.execute("SELECT MAX(pid) - MIN(pid) + 1 FROM passages").fetchone()[0] or 0
    query = _terms_to_query(conn, terms, "passages_vocab", passages)
    if query is None:
        return {}, {}
    if pid_map.contiguous:
        rows = conn.execute("SELECT rowid, bm25(passages_fts) FROM passages_fts WHERE passages_fts MATCH ?", (query,))
        scored = ((pid, pid_map.sha_of(pid), bm25) for pid, bm25 in rows)
    else:  # a database written some other way: ask the passages table
        scored = conn.execute(
            "SELECT p.pid, p.sha256, bm25(passages_fts) FROM passages_fts JOIN passages p ON p.pid = passages_fts.rowid "
            "WHERE passages_fts MATCH ?", (query,),
        )
    tallies: dict[int, _Tally] = {}
    for pid, sha, bm25 in scored:
        position = positions.get(sha)
        if position is not None:
            tally = tallies.get(position)
            if tally is None:
                tally = tallies[position] = _Tally()
            tally.add(-bm25, pid)
    return tallies, _passage_ids(conn, [pid for tally in tallies.values() for pid in tally.best()])


def _passage_ids(conn: sqlite3.Connection, pids: list[int]) -> dict[int, str]:
    ids: dict[int, str] = {}
    for start in range(0, len(pids), 900):
        chunk = pids[start:start + 900]
        ids.update(conn.execute(f"SELECT pid, id FROM passages WHERE pid IN ({', '.join('?' * len(chunk))})", chunk).fetchall())
    return ids

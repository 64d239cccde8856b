"""Documents ranked by relevance to a question: BM25 over their passages (SQLite FTS5).

    from lib.library.ranking import rank_documents
    ranked = rank_documents("Was the limitation defence upheld?", documents)   # in-memory Documents
    ranked = store.rank_documents("Was the limitation defence upheld?", shas)   # stored, at 10,000-document scale
    ranked[0].sha256, ranked[0].name, ranked[0].score, ranked[0].rank, ranked[0].best

Every passage is scored with FTS5's BM25 against the question's terms (its words without
stopwords; for Chinese, Japanese and other scripts without spaces, its character bigrams:
see fulltext.py). Terms found in more than COMMON_SHARE of the passages are dropped (they
say nothing about relevance, in any language, and cost the most). A document scores the
sum of its three best passages, weighted 1, 1/2 and 1/4: one passage squarely on the
question counts most, and a document that comes back to it scores higher than one that
mentions it once. Best first; documents with no matching passage come last with score 0,
in the order they were given (stable); ties keep the given order too.

`rank_documents` builds a temporary in-memory index (documents given on the command line
are not in the store; the last few indexes are kept, so a follow-up question over the same
documents does not index them again); with `store=` and documents that are all stored it
uses the library's index instead. `Store.rank_documents` uses the library's own index; its
term statistics are those of the whole library, so scores can differ slightly from a
ranking of the same documents in memory.
"""

from __future__ import annotations

import bisect
import heapq
import operator
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..documents import Document
from .fulltext import NO_SPACE_RUN, TOKENIZER, index_text, question_terms, term_expression

Store = Any  # lib.library.store.Store (which imports this module late, for Store.rank_documents)

WEIGHTS = (1.0, 0.5, 0.25)  # three: _tally_runs keeps that many passages
"""How much a document's best, second and third passage count towards its score."""
COMMON_SHARE = 0.1
"""A term in more than this share of the passages (of an index of at least COMMON_MIN
passages) is dropped from the question, unless every term is that common."""
COMMON_MIN = 400
CACHED_INDEXES = 4


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class _Tally:
    score: float
    matches: int
    best: list[int]
    """Row ids of the best passages, best first."""


@dataclass
class _Runs:
    """Each document's passages are one run of consecutive row ids: starts[k]..ends[k] is
    document k's run, position[k] its place in the selection (None: not selected)."""

    starts: list[int]
    ends: list[int]
    position: list[int | None]


def _tally_runs(rows: list[tuple[int, float]], runs: _Runs) -> dict[int, _Tally]:
    """Per selected document, from (rowid, bm25) rows in rowid order: one step per document."""
    if not rows:
        return {}
    rowids, scores = zip(*rows)
    starts, ends, positions = runs.starts, runs.ends, runs.position
    weights, right, smallest, score_of = WEIGHTS, bisect.bisect_right, heapq.nsmallest, scores.__getitem__
    tallies: dict[int, _Tally] = {}
    i, n, at = 0, len(rowids), 0
    while i < n:
        at = right(starts, rowids[i], at) - 1
        if at < 0 or rowids[i] > ends[at]:
            i, at = i + 1, max(at, 0)  # a row of no known document (written meanwhile): ignore it
            continue
        j = right(rowids, ends[at], i)
        position = positions[at]
        if position is not None:
            top = smallest(3, range(i, j), key=score_of) if j - i > 1 else [i]  # bm25: lower is better
            score = -sum(map(operator.mul, weights, map(score_of, top)))
            tallies[position] = _Tally(score, j - i, [rowids[k] for k in top])
        i = j
    return tallies


def _query(conn: sqlite3.Connection, terms: list[str], vocab: str, passages: int) -> str | None:
    """The OR query of the question's informative terms (None when it has none)."""
    if not terms:
        return None
    kept = terms
    if passages >= COMMON_MIN:
        limit = passages * COMMON_SHARE
        kept = [t for t in terms if _document_frequency(conn, vocab, t) <= limit] or terms
    return " OR ".join(term_expression(t) for t in kept)


def _document_frequency(conn: sqlite3.Connection, vocab: str, term: str) -> int:
    if NO_SPACE_RUN.fullmatch(term) and len(term) == 1:
        return 0  # a lone character is a prefix query: kept
    row = conn.execute(f"SELECT doc FROM {vocab} WHERE term = ?", (term,)).fetchone()
    return row[0] if row else 0


def _ranked(count: int, tallies: dict[int, _Tally], identity: Callable[[int], tuple[str, str]],
            passage_id: Callable[[int, int], str]) -> list[RankedDocument]:
    order = sorted(tallies, key=lambda position: (-tallies[position].score, position))
    order += [position for position in range(count) if position not in tallies]
    out = []
    for rank, position in enumerate(order, start=1):
        sha, name = identity(position)
        tally = tallies.get(position)
        if tally is None:
            out.append(RankedDocument(sha, name, 0.0, rank))
        else:
            best = tuple(passage_id(position, rowid) for rowid in tally.best)
            out.append(RankedDocument(sha, name, tally.score, rank, tally.matches, best))
    return out


# ---------------------------------------------------------------- in-memory documents


class _MemoryIndex:
    """A temporary FTS5 index of some documents' passages (row ids numbered document by document)."""

    def __init__(self, documents: Sequence[Document]):
        self.conn = sqlite3.connect(":memory:", check_same_thread=False)
        self.lock = threading.Lock()
        self.conn.execute(f"CREATE VIRTUAL TABLE fts USING fts5(body, content='', tokenize=\"{TOKENIZER}\")")
        self.conn.execute("CREATE VIRTUAL TABLE vocab USING fts5vocab(fts, 'row')")
        self.ids: list[str] = []  # row id -> passage id
        self.runs = _Runs([], [], [])
        rows = []
        for position, document in enumerate(documents):
            if not document.passages:
                continue
            self.runs.starts.append(len(self.ids))
            for passage in document.passages:
                rows.append((len(self.ids), index_text(passage.text) or passage.text))
                self.ids.append(passage.id)
            self.runs.ends.append(len(self.ids) - 1)
            self.runs.position.append(position)
        with self.conn:
            self.conn.executemany("INSERT INTO fts (rowid, body) VALUES (?, ?)", rows)

    def tallies(self, terms: list[str]) -> dict[int, _Tally]:
        with self.lock:
            query = _query(self.conn, terms, "vocab", len(self.ids))
            if query is None:
                return {}
            rows = self.conn.execute("SELECT rowid, bm25(fts) FROM fts WHERE fts MATCH ? ORDER BY rowid", (query,)).fetchall()
        return _tally_runs(rows, self.runs)


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


def rank_documents(question: str, documents: Sequence[Document], *, store: Store | None = None) -> list[RankedDocument]:
    """`documents` ranked by relevance to `question`, best first (see the module docstring)."""
    documents = list(documents)
    shas = [d.sha256 for d in documents]
    if store is not None and documents and len(store.document_summaries(list(dict.fromkeys(shas)))) == len(set(shas)):
        return store.rank_documents(question, shas)
    terms = question_terms(question)
    tallies: dict[int, _Tally] = {}
    index = None
    if documents and terms:
        index = _index_for(documents)
        tallies = index.tallies(terms)
    return _ranked(len(documents), tallies, lambda p: (documents[p].sha256, documents[p].name),
                   lambda position, rowid: index.ids[rowid])


# ---------------------------------------------------------------- stored documents


class _Library:
    """What ranking needs to know of a whole store, kept until documents are added or deleted:
    each document's run of passage row ids, its name, and the prefix of its passage IDs."""

    def __init__(self, conn: sqlite3.Connection):
        rows = sorted(tuple(r) for r in conn.execute("SELECT MIN(pid), MAX(pid), COUNT(*), sha256 FROM passages GROUP BY sha256"))
        self.starts = [r[0] for r in rows]
        self.ends = [r[1] for r in rows]
        self.shas = [r[3] for r in rows]
        self.passages = sum(r[2] for r in rows)
        self.names = {r[0]: r[1] for r in conn.execute("SELECT sha256, name FROM documents")}
        # Folio numbers a document's passage IDs code-1 .. code-N in row order; where the first
        # and last say so, an ID is computed from the row id instead of looked up.
        self.contiguous = all(last - first + 1 == count for first, last, count, _s in rows) and all(
            a < b for a, b in zip(self.ends, self.starts[1:])
        )
        edges = dict(_lookup_ids(conn, self.starts + self.ends))
        self.codes: list[str | None] = []
        for first, last, count, _sha in rows:
            head, tail = edges.get(first, ""), edges.get(last, "")
            code = head[:-2] if head.endswith("-1") else None
            self.codes.append(code if code and tail == f"{code}-{count}" else None)

    def runs(self, positions: dict[str, int]) -> _Runs:
        return _Runs(self.starts, self.ends, [positions.get(sha) for sha in self.shas])

    def passage_ids(self, conn: sqlite3.Connection, rowids: list[int]) -> dict[int, str]:
        if not self.contiguous:
            return dict(_lookup_ids(conn, rowids))
        ids, unknown = {}, []
        for rowid in rowids:
            at = bisect.bisect_right(self.starts, rowid) - 1
            code = self.codes[at] if at >= 0 else None
            if code is not None:
                ids[rowid] = f"{code}-{rowid - self.starts[at] + 1}"
            else:
                unknown.append(rowid)
        ids.update(_lookup_ids(conn, unknown))
        return ids


def _lookup_ids(conn: sqlite3.Connection, rowids: list[int]) -> list[tuple[int, str]]:
    found = []
    for start in range(0, len(rowids), 900):
        chunk = rowids[start:start + 900]
        found += [tuple(r) for r in conn.execute(f"SELECT pid, id FROM passages WHERE pid IN ({', '.join('?' * len(chunk))})", chunk)]
    return found


_libraries: dict[str, tuple[tuple, _Library]] = {}
_libraries_lock = threading.Lock()


def _library(conn: sqlite3.Connection, key: str) -> _Library:
    """The store's _Library, rebuilt only when documents were added or deleted."""
    generation = tuple(conn.execute(
        "SELECT (SELECT MAX(pid) FROM passages), (SELECT MIN(pid) FROM passages), (SELECT COUNT(*) FROM documents)"
    ).fetchone())
    with _libraries_lock:
        cached = _libraries.get(key)
    if cached and cached[0] == generation:
        return cached[1]
    built = _Library(conn)
    with _libraries_lock:
        _libraries[key] = (generation, built)
    return built


def rank_stored(store: Store, question: str, shas: Sequence[str]) -> list[RankedDocument]:
    """Store.rank_documents: the same ranking over stored documents, with the library's index."""
    shas = list(dict.fromkeys(shas))
    terms = question_terms(question)
    with store._errors("rank the documents"), store._read() as conn:
        conn.execute("BEGIN")  # one snapshot: the index, the passages and the names agree
        try:
            library = _library(conn, str(store.db_path))
            tallies, ids = _stored_tallies(conn, library, terms, {sha: i for i, sha in enumerate(shas)})
        finally:
            conn.execute("COMMIT")
    return _ranked(len(shas), tallies, lambda p: (shas[p], library.names.get(shas[p], shas[p][:12])),
                   lambda position, rowid: ids.get(rowid, ""))


def _stored_tallies(conn, library: _Library, terms: list[str], positions: dict[str, int]) -> tuple[dict, dict]:
    query = _query(conn, terms, "passages_vocab", library.passages) if terms and positions else None
    if query is None:
        return {}, {}
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples: 10,000s of rows
    rows = cursor.execute(
        "SELECT rowid, bm25(passages_fts) FROM passages_fts WHERE passages_fts MATCH ? ORDER BY rowid", (query,)
    ).fetchall()
    if library.contiguous:
        tallies = _tally_runs(rows, library.runs(positions))
    else:  # a database written some other way: each passage's document from the passages table
        owners = {r[0]: r[1] for r in conn.execute("SELECT pid, sha256 FROM passages")}
        grouped: dict[int, list[tuple[float, int]]] = {}
        for rowid, bm25 in rows:
            position = positions.get(owners.get(rowid))
            if position is not None:
                grouped.setdefault(position, []).append((bm25, rowid))
        tallies = {position: _tally_of(items) for position, items in grouped.items()}
    return tallies, library.passage_ids(conn, [rowid for tally in tallies.values() for rowid in tally.best])


def _tally_of(items: list[tuple[float, int]]) -> _Tally:
    top = sorted(items)[:len(WEIGHTS)]
    return _Tally(sum(w * -bm25 for w, (bm25, _r) in zip(WEIGHTS, top)), len(items), [rowid for _b, rowid in top])

"""Citations a reader can check: find `"quote" [ID]` in an answer and verify each one.

    verify_citations('Rent is due monthly "the lessee shall pay" [kzt-12].', documents)
    -> [Citation(id='kzt-12', document='lease.pdf', page=3, quote='the lessee shall pay',
                 status='verified', match='exact', span=(120, 140), ...)]

Status: verified (the quote is in the cited passage: exactly, or after Unicode NFKC,
whitespace, case, quotation-mark, dash and hyphenation normalisation), unverified (the
passage exists but the quote is not in it, or no quote was given), invalid (no passage
has that ID). `check_answer` adds the answer-level flags: no citation at all, or the
fixed "documents do not answer" sentence. No I/O here.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Sequence

from ..documents import Document, Passage
from .prompt import NO_ANSWER

# A passage ID as lib/reading/passages.py makes them: a code of three consonants (longer only when
# two documents' codes collide), a hyphen, the passage number. Models sometimes shout it.
ID_PATTERN = r"(?i:[bcdfghjklmnpqrstvwxz]{3,12}-\d{1,7})"
_OPEN = re.escape("[【［〔")
_CLOSE = re.escape("]】］〕")
_GROUP = re.compile(
    rf"[{_OPEN}]\s*{ID_PATTERN}(?:\s*[,;，；、]\s*{ID_PATTERN})*\s*[{_CLOSE}]"
)
_ID = re.compile(ID_PATTERN)
# Adjacent groups ("[a][b]", "[a] [b]") cite together and share the quote before them.
_GROUP_RUN = re.compile(rf"{_GROUP.pattern}(?:[ \t]*{_GROUP.pattern})*")

# Closing quotation mark -> the opening marks that may pair with it.
_OPENERS = {
    '"': '"“„',
    "”": '“"„',
    "“": "„",
    "’": "‘‚",
    "‘": "‚",
    "»": "«",
    "«": "»",
    "」": "「",
    "』": "『",
    "〞": "〝",
    "＂": "＂",
}
_MAX_QUOTE = 2000
_END_PUNCTUATION = ".,;:!?。，；：！？"
MIN_LOCATE_CHARS = 12
"""A quote must be at least this long (normalised) to be looked for outside its passage."""

# Characters made equal before comparing quotes (after NFKC).
_QUOTE_CHARS = {c: '"' for c in "“”„‟«»「」『』〝〞＂″"} | {c: "'" for c in "‘’‚‛′`´"}
_DASHES = {c: "-" for c in "‐‑‒–—―−﹣－⁃"}
_INVISIBLE = {"\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}
_ELLIPSIS = re.compile(r"\s*(?:\.\s*\.\s*\.|…|\[\s*(?:\.\.\.|…)\s*\])\s*")


@dataclass(frozen=True)
class RawCitation:
    """One cited ID as written in the answer, with the quote just before it (if any)."""

    id: str
    quote: str | None
    start: int
    """Where the citation group starts in the answer."""
    end: int
    quote_start: int | None = None


@dataclass
class Citation:
    """A cited passage and what checking its quote found."""

    id: str
    status: str
    """verified | unverified | invalid"""
    quote: str | None
    document: str | None = None
    page: int | None = None
    page_end: int | None = None
    page_label: str | None = None
    heading: str = ""
    passage: str = ""
    """The cited passage's exact text (for showing it)."""
    span: tuple[int, int] | None = None
    """Where the quote was found in `passage` (character offsets), for highlighting."""
    match: str | None = None
    """How the quote matched: exact | normalised | loose (whitespace ignored)."""
    reason: str = ""
    """Why a citation is not verified, in plain words."""
    answer_span: tuple[int, int] | None = None
    """Where the citation group sits in the answer."""
    sha256: str | None = None
    found_in: str | None = None
    """For a quote not in its cited passage: the passage that does hold it, if any."""

    @property
    def passage_id(self) -> str:
        return self.id

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    def to_json(self) -> dict:
        """The CLI shape {id, document, page, quote, status} plus what a UI needs."""
        return {
            "id": self.id,
            "document": self.document,
            "page": self.page,
            "quote": self.quote,
            "status": self.status,
            "page_end": self.page_end,
            "page_label": self.page_label,
            "heading": self.heading,
            "passage": self.passage,
            "span": list(self.span) if self.span else None,
            "match": self.match,
            "reason": self.reason,
            "sha256": self.sha256,
            "found_in": self.found_in,
        }


@dataclass
class CitationReport:
    """All citations of one answer and the answer-level verdict."""

    citations: list[Citation]
    no_answer: bool
    """The model said the documents do not answer the question."""
    uncited: bool
    """The answer makes claims but cites no passage."""
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for c in self.citations if c.status == status)


# ------------------------------------------------------------------------------ parsing


_TRAILING = set(" \t\r\n.,;:!?)）。，；：、*_")  # "*_": Markdown emphasis around a quote


def _quote_before(answer: str, position: int, floor: int) -> tuple[str | None, int | None]:
    """The quotation that ends just before `position` (not reaching back past `floor`)."""
    low = max(floor, position - _MAX_QUOTE)
    close_at = position - 1
    while close_at >= low and answer[close_at] in _TRAILING and position - close_at <= 6:
        close_at -= 1
    if close_at < low or answer[close_at] not in _OPENERS:
        return None, None
    openers = _OPENERS[answer[close_at]]
    # The usual opener first, so a quote holding other quotation marks stays whole.
    open_at = answer.rfind(openers[0], low, close_at)
    if open_at < 0:
        open_at = max(answer.rfind(o, low, close_at) for o in openers)
    if open_at < 0:
        return None, None
    quote = answer[open_at + 1 : close_at]
    if not quote.strip() or "\n\n" in quote:
        return None, None
    return quote, open_at + 1


def parse_citations(answer: str) -> list[RawCitation]:
    """Every cited ID in order of appearance, each with the quote that precedes its group."""
    found: list[RawCitation] = []
    floor = 0
    for run in _GROUP_RUN.finditer(answer):
        quote, quote_start = _quote_before(answer, run.start(), floor)
        for group in _GROUP.finditer(run.group(0)):
            for passage_id in _ID.findall(group.group(0)):
                found.append(RawCitation(passage_id, quote, run.start() + group.start(),
                                         run.start() + group.end(), quote_start))
        floor = run.end()
    return found


# ------------------------------------------------------------------------- normalising


@functools.lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    """One character as compared: NFKC, quotes and dashes unified, case folded."""
    if char in _INVISIBLE:
        return ""
    char = _QUOTE_CHARS.get(char, char)
    char = _DASHES.get(char, char)
    folded = unicodedata.normalize("NFKD", char)
    folded = "".join(_QUOTE_CHARS.get(c, _DASHES.get(c, c)) for c in folded)
    return folded.casefold()


def fold(text: str, *, keep_spaces: bool = True) -> tuple[str, list[int]]:
    """Text normalised for comparison, with the original index of every output character.

    Whitespace runs become one space (or vanish with keep_spaces=False), and a word broken
    by a hyphen at a line end ("obli-\\ngation") is joined.
    """
    out: list[str] = []
    where: list[int] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in "-\u00ad\u2010" and out and out[-1].isalnum():
            j = i + 1
            while j < n and text[j] in " \t":
                j += 1
            if j < n and text[j] in "\r\n":
                while j < n and text[j].isspace():
                    j += 1
                i = j  # hyphenation at a line break: drop hyphen and break
                continue
        if char.isspace():
            while i < n and text[i].isspace():
                i += 1
            if keep_spaces and out and out[-1] != " ":
                out.append(" ")
                where.append(i - 1)
            continue
        for folded in _fold_char(char):
            out.append(folded)
            where.append(i)
        i += 1
    while out and out[-1] == " ":
        out.pop()
        where.pop()
    return "".join(out), where


@functools.lru_cache(maxsize=64)
def _folded(text: str, keep_spaces: bool) -> tuple[str, list[int]]:
    """fold(), remembered: a whole document is folded once however many quotes are sought."""
    return fold(text, keep_spaces=keep_spaces)


def _find_folded(passage: str, quote: str, keep_spaces: bool) -> tuple[int, int] | None:
    """Span of `quote` in `passage` after folding; '...' in a quote skips text in order."""
    haystack, where = _folded(passage, keep_spaces)
    pieces = [fold(p, keep_spaces=keep_spaces)[0].strip() for p in _ELLIPSIS.split(quote)]
    pieces = [p for p in pieces if p]
    if not pieces:
        return None
    start = position = haystack.find(pieces[0])
    if start < 0:
        return None
    for piece in pieces:
        position = haystack.find(piece, position)
        if position < 0:
            return None
        position += len(piece)
    return where[start], where[position - 1] + 1


def find_quote(passage: str, quote: str) -> tuple[tuple[int, int] | None, str | None]:
    """(span in passage, how it matched) or (None, None) when the quote is not there."""
    quote = quote.strip()
    if not quote:
        return None, None
    at = passage.find(quote)
    if at >= 0:
        return (at, at + len(quote)), "exact"
    # American style puts the sentence's full stop inside the quotation marks.
    for candidate in dict.fromkeys([quote, quote.rstrip(_END_PUNCTUATION).strip()]):
        span = _find_folded(passage, candidate, keep_spaces=True)
        if span:
            return span, "normalised"
    # PDF text often breaks CJK sentences with spaces or newlines a quote leaves out.
    for candidate in dict.fromkeys([quote, quote.rstrip(_END_PUNCTUATION).strip()]):
        span = _find_folded(passage, candidate, keep_spaces=False)
        if span:
            return span, "loose"
    return None, None


# ----------------------------------------------------------------------------- checking


def _index(documents: Sequence[Document]) -> dict[str, tuple[Document, Passage]]:
    table: dict[str, tuple[Document, Passage]] = {}
    for document in documents:
        for passage in document.passages:
            table.setdefault(passage.id.lower(), (document, passage))
    return table


def _check(raw: RawCitation, table: dict[str, tuple[Document, Passage]]) -> Citation:
    hit = table.get(raw.id.lower())
    if hit is None:
        return Citation(raw.id, "invalid", raw.quote, reason=f"No passage [{raw.id}] in the selected documents.",
                        answer_span=(raw.start, raw.end))
    document, passage = hit
    citation = Citation(
        passage.id, "unverified", raw.quote, document=document.name, page=passage.page,
        page_end=passage.page_end, page_label=passage.page_label, heading=passage.heading,
        passage=passage.text, answer_span=(raw.start, raw.end), sha256=document.sha256,
    )
    if raw.quote is None:
        citation.reason = "No quote was given for this passage."
        return citation
    span, how = find_quote(passage.text, raw.quote)
    if span is None:
        citation.reason = "The quoted words were not found in this passage."
        return citation
    citation.status, citation.span, citation.match = "verified", span, how
    return citation


def _passage_at(document: Document, offset: int) -> Passage | None:
    """The passage holding character `offset` of the document text."""
    starts = [p.start for p in document.passages]
    index = bisect.bisect_right(starts, offset) - 1
    return document.passages[index] if index >= 0 else None


def locate_quote(quote: str, documents: Sequence[Document]) -> tuple[Document, Passage] | None:
    """Where else a quote occurs: the document and passage holding it, if any (whole quotes only)."""
    quote = quote.strip()
    if _ELLIPSIS.search(quote) or len(fold(quote)[0]) < MIN_LOCATE_CHARS:
        return None  # fragments or a few words could match anywhere
    for document in documents:
        span, _ = find_quote(document.text, quote)
        if span is not None:
            passage = _passage_at(document, span[0])
            if passage is not None:
                return document, passage
    return None


def _point_elsewhere(citation: Citation, documents: Sequence[Document]) -> None:
    """For a quote missing from its passage, say which passage does hold it (an off-by-one ID)."""
    found = locate_quote(citation.quote or "", documents)
    if found is None:
        return
    document, passage = found
    citation.found_in = passage.id
    where = f"{document.name}, {passage.pages_text}" if passage.pages_text else document.name
    citation.reason = f"The quoted words are not in [{citation.id}] but in [{passage.id}] ({where})."


def verify_citations(answer: str, documents: Sequence[Document]) -> list[Citation]:
    """Each citation in the answer, resolved to its passage and checked."""
    table = _index(documents)
    citations = [_check(raw, table) for raw in parse_citations(answer)]
    for citation in citations:
        if citation.status != "verified" and citation.quote:
            _point_elsewhere(citation, documents)
    return citations


def says_no_answer(answer: str) -> bool:
    """Whether the answer contains the fixed 'documents do not answer' sentence."""
    wanted = fold(NO_ANSWER.rstrip("."))[0]
    return wanted in fold(answer)[0]


def check_answer(answer: str, documents: Sequence[Document]) -> CitationReport:
    """Citations plus the answer-level flags and the warnings to show."""
    citations = verify_citations(answer, documents)
    no_answer = says_no_answer(answer)
    uncited = not citations and not no_answer and bool(answer.strip())
    report = CitationReport(citations, no_answer, uncited)
    if uncited:
        report.warnings.append("The answer cites no passage: nothing in it could be checked against the documents.")
    invalid = sorted({c.id for c in citations if c.status == "invalid"})
    if invalid:
        report.warnings.append(
            f"The answer cites {len(invalid)} passage ID(s) that do not exist: "
            + ", ".join(f"[{i}]" for i in invalid) + ". Treat those claims as unsupported."
        )
    unverified = report.count("unverified")
    if unverified:
        report.warnings.append(
            f"{unverified} of {len(citations)} citation(s) could not be verified: the quote is missing or "
            "was not found in the cited passage. Check them yourself."
        )
    return report


def verify_quotes(pairs: Sequence[tuple[str, str | None]], documents: Sequence[Document]) -> list[Citation]:
    """(passage ID, quote) pairs given apart from any text (a review cell's evidence), checked
    exactly as citations in an answer are: verified / unverified / invalid."""
    table = _index(documents)
    citations = []
    for passage_id, quote in pairs:
        quote = quote if quote and quote.strip() else None
        citation = _check(RawCitation(str(passage_id).strip().strip("[]【】"), quote, 0, 0), table)
        citation.answer_span = None
        if citation.status != "verified" and citation.quote:
            _point_elsewhere(citation, documents)
        citations.append(citation)
    return citations

"""Test documents for the real-context probe: real prose with short facts planted at set depths.

    facts = make_facts([0, 50, 100], seed=7)             # "The vault code of the Amber Room is 7361-QX."
    stack = build_haystack(60_000, facts, counter)       # about 60,000 tokens as rendered in a prompt
    stack.document                                       # a Document, cut into passages like any other
    stack.passage_of[50], stack.position_of[50]          # the passage holding the 50 % fact, where it sits

The prose is Tolstoy's War and Peace, shipped in lib/asking/data/ (source and licence in its
README.md), cut into passages once as Folio cuts any document. Each fact is a passage of its
own, placed so that `depth` percent of the document's tokens come before it (0: the very first
passage, 100: the very last). The only I/O is reading the prose once per process.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import random
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..documents import Block, Document, Extraction, Passage
from ..reading.passages import SEPARATOR, build_passages, document_code
from . import prompt

PROSE_PATH = Path(__file__).resolve().parent / "data" / "war-and-peace.txt"
PROSE_SOURCE = "Leo Tolstoy, War and Peace (tr. Louise and Aylmer Maude), public domain"

_ADJECTIVES = ("Amber", "Copper", "Linden", "Granite", "Saffron", "Cobalt", "Willow", "Marble",
               "Ivory", "Juniper", "Obsidian", "Heather", "Cinnabar", "Hazel", "Pewter", "Quartz")
_PLACES = ("Room", "Gate", "Archive", "Tower", "Cellar", "Chapel", "Gallery", "Library",
           "Pavilion", "Observatory", "Armoury", "Boathouse", "Orangery", "Granary", "Mill", "Lodge")
# Letters that no reader confuses with digits, and that never form a passage ID (those start
# with three consonants, while a code starts with digits).
_CODE_LETTERS = "ACEFHJKLMNPRTUVWXY"
MAX_FACTS = len(_ADJECTIVES) * len(_PLACES)
ID_OVERHEAD = 0.07
"""First guess at what passage IDs and delimiters add to the prose's own tokens (measured about 7 %);
each build refines it (`_overhead`), so later documents are the right size at the first try."""
_SIZE_TOLERANCE = 0.02
"""A document may come out this much shorter than asked (never longer than its limit)."""
_MIN_TOLERANCE = 24
_overhead = {"exact": ID_OVERHEAD, "estimate": ID_OVERHEAD}
_ALNUM = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True)
class Fact:
    """One planted fact: a place, its code, and the depth (percent) where it sits."""

    place: str
    code: str
    depth: int

    @property
    def sentence(self) -> str:
        return f"The vault code of the {self.place} is {self.code}."

    def found_in(self, text: str) -> bool:
        """Whether `text` gives this fact's code (case, spaces and dashes ignored)."""
        return compact(self.code) in compact(text)


def compact(text: str) -> str:
    """Lower-case letters and digits only: '7361-QX', '7361 qx', '7361QX' and '７３６１－ＱＸ' compare equal."""
    return _ALNUM.sub("", unicodedata.normalize("NFKC", text).lower())


def make_facts(depths: Sequence[int], seed: int) -> list[Fact]:
    """One fact per depth, with distinct places and random codes (the same for the same seed)."""
    if len(depths) > MAX_FACTS:
        raise ValueError(f"at most {MAX_FACTS} facts per document")
    rng = random.Random(seed)
    places = rng.sample([f"{a} {p}" for a in _ADJECTIVES for p in _PLACES], len(depths))
    facts = []
    for depth, place in zip(depths, places):
        code = f"{rng.randrange(1000, 10000)}-{rng.choice(_CODE_LETTERS)}{rng.choice(_CODE_LETTERS)}"
        facts.append(Fact(place, code, int(depth)))
    return facts


def question_for(facts: Sequence[Fact]) -> str:
    """The question that asks for every planted fact."""
    places = [f"the {f.place}" for f in facts]
    if len(places) == 1:
        return f"What is the vault code of {places[0]}? Quote the sentence that gives it."
    listed = ", ".join(places[:-1]) + f" and {places[-1]}"
    return (f"The document gives the vault codes of several places. What are the vault codes of {listed}? "
            "Give each code and quote the sentence that gives it.")


# ------------------------------------------------------------------------------ the prose


@functools.cache
def prose_paragraphs() -> tuple[str, ...]:
    """The shipped prose as paragraphs, each on one line (hard line breaks joined)."""
    text = PROSE_PATH.read_text(encoding="utf-8")
    return tuple(" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip())


@functools.lru_cache(maxsize=2)
def _prose_passages(counter) -> tuple[tuple[str, int], ...]:
    """The whole prose cut into passages once per process, as Folio cuts any document:
    (text, tokens) of each. Probe documents are built from a run of them, facts in between."""
    extraction = Extraction("text", [Block(p) for p in prose_paragraphs()])
    _, passages = build_passages(extraction, "bcd", counter)
    return tuple((p.text.rstrip("\n"), p.tokens) for p in passages)


def _take(tokens: int, counter) -> tuple[list[str], list[int]]:
    """Passages from the start of the prose (repeating it if need be) adding up to about
    `tokens`, never more: the last one is cut at a word when only part of it fits."""
    passages = _prose_passages(counter)
    taken, sizes, total, i = [], [], 0, 0
    while total < tokens:
        text, size = passages[i % len(passages)]
        if total + size > tokens:
            text = _shorten(text, size, tokens - total)
            if not text:
                break
            size = counter.count(text)
        taken.append(text)
        sizes.append(size)
        total += size
        i += 1
    return taken, sizes


def _shorten(text: str, tokens: int, wanted: int) -> str:
    """The start of a passage of `tokens` tokens, cut at a word to about `wanted` tokens."""
    cut = text.rfind(" ", 0, int(len(text) * wanted / tokens))
    return text[:cut].rstrip(",;:") + "." if cut > 0 else ""


# ---------------------------------------------------------------------------- the document


@dataclass
class Haystack:
    """A probe document: the prose with facts planted, and where each fact landed."""

    document: Document
    facts: list[Fact]
    rendered_tokens: int
    """Tokens of the document as rendered in a prompt (IDs and delimiters included)."""
    passage_of: dict[int, str] = field(default_factory=dict)
    """depth -> ID of the passage that holds the fact."""
    position_of: dict[int, float] = field(default_factory=dict)
    """depth -> where the fact sits in the document, 0.0 (start) to 1.0 (end)."""


def _plant(pieces: list[str], sizes: list[int], facts: Sequence[Fact], counter) -> tuple[list[str], list[int]]:
    """The passages with each fact inserted as its own passage where `depth` % of the tokens
    come before it (at the passage boundary nearest to that point)."""
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    total = starts[-1]
    inserts: dict[int, list[Fact]] = {}
    for fact in sorted(facts, key=lambda f: f.depth):
        wanted = total * fact.depth / 100
        index = bisect.bisect_left(starts, wanted)
        if 0 < index < len(starts) and wanted - starts[index - 1] < starts[index] - wanted:
            index -= 1
        inserts.setdefault(min(index, len(pieces)), []).append(fact)
    texts: list[str] = []
    counts: list[int] = []
    for i in range(len(pieces) + 1):
        for fact in inserts.get(i, ()):
            texts.append(fact.sentence)
            counts.append(counter.count(fact.sentence))
        if i < len(pieces):
            texts.append(pieces[i])
            counts.append(sizes[i])
    return texts, counts


def _document(texts: list[str], counts: list[int], name: str, counter) -> Document:
    """A Document whose passages are `texts` in order, separated as Folio separates blocks."""
    text = SEPARATOR.join(texts)
    sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    code = document_code(sha256)
    passages, at = [], 0
    for index, (piece, tokens) in enumerate(zip(texts, counts)):
        body = piece + (SEPARATOR if index < len(texts) - 1 else "")
        passages.append(Passage(id=f"{code}-{index + 1}", index=index, page=None, page_end=None, heading="",
                                text=body, tokens=tokens, start=at, end=at + len(body)))
        at += len(body)
    return Document(name=name, sha256=sha256, format="text", pages=None, text=text, passages=passages,
                    tokens=sum(counts), counter=counter.kind)


def _build(prose_tokens: int, facts: Sequence[Fact], name: str, counter) -> tuple[Document, int]:
    pieces, sizes = _take(prose_tokens, counter)
    document = _document(*_plant(pieces, sizes, facts, counter), name, counter)
    return document, counter.count(prompt.render_document(document))


def build_haystack(target: int, facts: Sequence[Fact], counter, *, limit: int | None = None,
                   name: str | None = None) -> Haystack:
    """A document of about `target` rendered tokens (never more than `limit`) holding `facts`."""
    limit = limit if limit is not None else target
    fact_tokens = sum(counter.count(f.sentence) for f in facts)
    goal = min(target, limit)
    tolerance = max(target * _SIZE_TOLERANCE, _MIN_TOLERANCE)
    aim = goal - tolerance / 2 if target >= limit else target
    prose = max(int((aim - fact_tokens) / (1 + _overhead[counter.kind])), 1)
    name = name or f"probe-{target}.txt"
    best, low, high = None, 0, None  # the largest build within the limit; prose sizes under and over it
    for _ in range(12):  # the first guess is within a few per cent: one or two corrections in practice
        document, rendered = _build(prose, facts, name, counter)
        if prose > 1000:  # small documents say little about the share of IDs
            _overhead[counter.kind] = max((rendered - fact_tokens) / prose - 1, 0.0)
        if rendered <= limit:
            if best is None or rendered > best[1]:
                best = (document, rendered)
            low = max(low, prose)
            if goal - rendered <= tolerance:
                break
        else:
            high = prose if high is None else min(high, prose)
        if high is not None and high - low <= 1:
            break
        # Passages regroup as the prose grows, so the size moves in steps: interpolate, then bisect.
        guess = int(prose * (aim - fact_tokens) / max(rendered - fact_tokens, 1))
        if high is not None and not low < guess < high:
            guess = (low + high) // 2
        prose = max(guess, low + 1, 1)
    if best is None:
        raise ValueError(f"the facts alone take more than the {limit:,} tokens allowed")
    document, rendered = best
    return _locate(document, list(facts), rendered)


def _locate(document: Document, facts: list[Fact], rendered: int) -> Haystack:
    """Find the passage and relative position of every planted fact."""
    stack = Haystack(document, facts, rendered)
    starts = [p.start for p in document.passages]
    size = max(len(document.text), 1)
    for fact in facts:
        at = document.text.find(fact.sentence)
        passage = document.passages[bisect.bisect_right(starts, at) - 1]
        stack.passage_of[fact.depth] = passage.id
        stack.position_of[fact.depth] = at / size
    return stack

"""What one call of a plan reads: whole documents, or consecutive parts of a document too
long for one call, each rendered with its title and heading path and counted exactly.

    layout = layout_of(document, counter)           # per-passage costs, boundaries, sections
    pieces = split_document(document, layout, room, counter)   # [Piece(part 1 of 7), ...]
    render_piece(piece)                             # the block a call sends
    counter.count(render_piece(piece)) == piece.tokens   # always

How one piece is laid out (a part keeps the passage IDs the whole document has):

    <document name="War and Peace.txt" format="text" part="3 of 7" passages="wtw-2001 to wtw-3000" section="BOOK TWO > CHAPTER IV">
     --- page 41 ---                  (paged formats, where a page begins)
     [wtw-2001]
    the passage text exactly as stored, its paragraph breaks included
     [wtw-2002]
    ...
     </document>

Every line Folio inserts begins with a space and ends with a newline, and the passage text
follows a newline. No Qwen2 pre-token crosses such a seam, whatever the text on either
side (a space never joins the token before it; a newline ends the punctuation run before
it), so a piece's exact count is the sum of its markup's counts and the passages' stored
exact counts: a 10-million-token selection is planned without a tokenizer pass over its
text. `render_piece` builds the same bytes, and the runner counts them again before sending.

Where a long document is cut (never inside a passage): at the strongest boundary near the
end of what one call holds. Chapter and section headings (the document's own, or lines
such as "CHAPTER IV", "SEC. 13101.", "第三章" in documents without heading styles) are
strongest, then paragraph ends, then any passage end (a sentence end inside a paragraph).
Each step down is worth CUT_STEP of a call: a chapter end 90 % into the window wins over a
paragraph end at 100 %. No I/O here.
"""

from __future__ import annotations

import bisect
import itertools
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

from ..documents import Document, Passage
from ..errors import InputError
from .prompt import neutralise

PARAGRAPH_RANK = 7
"""Boundary rank of a paragraph end (headings rank 1-6, by depth)."""
SENTENCE_RANK = 8
"""Boundary rank of any other passage end (a sentence end inside a paragraph)."""
CUT_STEP = 0.05
"""How much of a call one step of boundary strength is worth when choosing where to cut."""
MIN_FILL = 0.5
"""A part is never cut shorter than this share of a call (unless the document ends)."""
SECTION_CHARS = 160
"""A heading path longer than this is shortened in a part's header."""
LAYOUT_CACHE = 4096
"""Documents whose layout (per-passage costs) is remembered between plans."""

# Heading-like first lines in documents without heading styles (plain text, PDFs without an
# outline): (pattern, depth). Quoted lines ("‘‘SEC. 56A." amending another law) do not match.
_HEADING_LINES = (
    (re.compile(r"(?:BOOK|VOLUME|TITLE|EPILOGUE|PROLOGUE)\b|(?:Book|Volume)\s+[IVXLC\d]|第[^\s。，]{1,8}[编卷部]"), 1),
    (re.compile(r"(?:PART|Part)\s+[IVXLC\d]|(?:FIRST|SECOND|THIRD|FOURTH|FIFTH|SIXTH|SEVENTH|EIGHTH|NINTH|TENTH)\s+PART\b"), 2),
    (re.compile(r"(?:CHAPTER|Chapter|SUBTITLE|Subtitle)\s+[\wIVXLC]|第[^\s。，]{1,8}[章回]"), 3),
    (re.compile(r"(?:SEC\.|SECTION|Section|ARTICLE|Article|§)\s*[\dIVX]|第[^\s。，]{1,8}节"), 4),
)
_HEADING_LINE_CHARS = 100


@dataclass(frozen=True)
class Piece:
    """What one call reads of one document: all of it, or one part (passages start..end)."""

    document: Document
    start: int
    """Index of the first passage."""
    end: int
    """Index after the last passage."""
    part: int
    """1-based; 1 for a whole document."""
    parts: int
    """How many parts the document was split into; 1 = read whole."""
    section: str
    """Heading path where the piece begins ('' when the document has none)."""
    tokens: int
    """Exact tokens of render_piece(self)."""

    @property
    def whole(self) -> bool:
        return self.parts == 1

    @property
    def passages(self) -> list[Passage]:
        return self.document.passages[self.start:self.end]

    @property
    def name(self) -> str:
        """How the piece is named to a person: 'War and Peace.txt, part 3 of 7'."""
        return self.document.name if self.whole else f"{self.document.name}, part {self.part} of {self.parts}"

    @property
    def first_id(self) -> str:
        return self.document.passages[self.start].id if self.end > self.start else ""

    @property
    def last_id(self) -> str:
        return self.document.passages[self.end - 1].id if self.end > self.start else ""

    @property
    def pages(self) -> tuple[int, int] | None:
        numbers = [n for p in self.passages for n in (p.page, p.page_end) if n is not None]
        return (min(numbers), max(numbers)) if numbers else None

    def to_json(self) -> dict:
        pages = self.pages
        return {
            "document": self.document.name,
            "sha256": self.document.sha256,
            "part": self.part,
            "parts": self.parts,
            "passages": [self.first_id, self.last_id],
            "passage_count": self.end - self.start,
            "pages": list(pages) if pages else None,
            "section": self.section,
            "tokens": self.tokens,
        }


@dataclass(frozen=True)
class Layout:
    """One document as pieces are cut from it: per-passage costs, boundaries and sections."""

    costs: tuple[int, ...]
    """Tokens of passage i in a whole-document rendering: its marker, text and page marker."""
    starts: tuple[int, ...]
    """Extra tokens when a piece begins at passage i (the page marker a whole rendering omits)."""
    ranks: tuple[int, ...]
    """Strength of the boundary before passage i: 1 (top heading) .. 8 (sentence); lower is stronger."""
    sections: tuple[str, ...]
    """Heading path in effect at passage i."""
    prefix: tuple[int, ...]
    """prefix[i] = sum(costs[:i])."""

    def cost(self, start: int, end: int) -> int:
        """Tokens of passages start..end as one piece renders them (markup lines excluded)."""
        return self.prefix[end] - self.prefix[start] + (self.starts[start] if end > start else 0)


# ----------------------------------------------------------------------------- markup


def attribute(value) -> str:
    """A value safe inside a header attribute (no special tokens, quotes or line breaks)."""
    text = neutralise(str(value)).replace("&", "&amp;").replace('"', "&quot;")
    return " ".join(text.split())


def marker(passage_id: str) -> str:
    return f" [{passage_id}]\n"


def page_marker(passage: Passage) -> str:
    label = passage.page_label
    if label and label != str(passage.page):
        return f' --- page {passage.page} (printed "{attribute(label)}") ---\n'
    return f" --- page {passage.page} ---\n"


FOOTER = " </document>\n"


def header(piece: Piece) -> str:
    """The opening tag: name, format, which part, the pages and passages it holds, where it begins."""
    document = piece.document
    part = "" if piece.whole else f"{piece.part} of {piece.parts}"
    pages = ""
    if document.pages is not None:
        span = piece.pages
        if piece.whole:
            pages = str(document.pages)
        elif span:
            pages = (str(span[0]) if span[0] == span[1] else f"{span[0]}-{span[1]}") + f" of {document.pages}"
    ids = f"{piece.first_id} to {piece.last_id}" if piece.end > piece.start else ""
    return header_text(document, part, pages, ids, piece.section)


def header_text(document: Document, part: str, pages: str, ids: str, section: str) -> str:
    text = f'<document name="{attribute(document.name)}" format="{document.format}"'
    if part:
        text += f' part="{part}"'
    if pages:
        text += f' pages="{pages}"'
    if ids:
        text += f' passages="{ids}"'
    if section:
        text += f' section="{attribute(_shorten(section))}"'
    return text + ">\n"


def _shorten(section: str) -> str:
    return section if len(section) <= SECTION_CHARS else "…" + section[-(SECTION_CHARS - 1):]


def render_piece(piece: Piece) -> str:
    """The exact block a call sends for this piece."""
    out = [header(piece)]
    page = None
    for passage in piece.passages:
        if passage.page is not None and passage.page != page:
            page = passage.page
            out.append(page_marker(passage))
        out.append(marker(passage.id))
        out.append(neutralise(passage.text))
    out.append(FOOTER)
    return "".join(out)


# ----------------------------------------------------------------------------- counting


class MarkupCounter:
    """Exact counts of Folio's markup lines, remembered (a selection has many thousands)."""

    def __init__(self, counter):
        self.counter = counter
        self._codes: dict[str, int | None] = {}
        self._texts: dict[str, int] = {}
        self._pages: dict[tuple, int] = {}
        self._close = counter.count("]\n")

    def count(self, text: str) -> int:
        found = self._texts.get(text)
        if found is None:
            found = self._texts[text] = self.counter.count(text)
        return found

    def page(self, passage: Passage) -> int:
        """count(page_marker(passage)), remembered by page and label."""
        key = (passage.page, passage.page_label)
        found = self._pages.get(key)
        if found is None:
            found = self._pages[key] = self.counter.count(page_marker(passage))
        return found

    def marker(self, passage_id: str) -> int:
        """count(' [kzt-17]\\n'): ' [', the code, '-' and ']\\n' are pre-tokens, each digit one token."""
        code, _, number = passage_id.rpartition("-")
        base = self._codes.get(code, 0)
        if base == 0:
            base = self._codes[code] = self._base(code)
        if base is None or not number.isdigit():
            return self.counter.count(marker(passage_id))
        return base + len(number) + self._close

    def _base(self, code: str) -> int | None:
        """Tokens of ' [code-', or None when the counter does not add up that way (then count each)."""
        base = self.counter.count(f" [{code}-")
        probe = f"{code}-10"
        return base if self.counter.count(marker(probe)) == base + 2 + self._close else None


_layouts: OrderedDict = OrderedDict()
_layouts_lock = threading.Lock()  # the app plans in several threads


def layout_of(document: Document, markup: MarkupCounter) -> Layout:
    """The document's layout, remembered by content and IDs (its text never changes)."""
    passages = document.passages
    key = (document.sha256, passages[0].id if passages else "", len(passages), markup.counter.kind,
           document.counter)
    with _layouts_lock:
        found = _layouts.get(key)
        if found is not None:
            _layouts.move_to_end(key)
            return found
    layout = _build_layout(document, markup)
    with _layouts_lock:
        _layouts[key] = layout
        while len(_layouts) > LAYOUT_CACHE:
            _layouts.popitem(last=False)
    return layout


def _build_layout(document: Document, markup: MarkupCounter) -> Layout:
    """Per-passage costs: the marker, the text (its stored exact count) and any page marker."""
    passages = document.passages
    costs = [m + t for m, t in zip(_marker_costs(passages, markup), _text_costs(document, markup))]
    starts = [0] * len(passages)
    page = None
    for i, passage in enumerate(passages):
        if passage.page is None:
            continue
        page_cost = markup.page(passage)
        if passage.page != page:
            costs[i] += page_cost
            page = passage.page
        else:
            starts[i] = page_cost
    ranks, sections = _structure(document)
    return Layout(tuple(costs), tuple(starts), tuple(ranks), tuple(sections),
                  tuple(itertools.accumulate(costs, initial=0)))


def _marker_costs(passages: Sequence[Passage], markup: MarkupCounter) -> list[int]:
    """Tokens of each passage's marker: one code per document, so its cost plus the digits."""
    if not passages:
        return []
    code = passages[0].id.rpartition("-")[0]
    prefix = len(code) + 1
    base = markup.marker(f"{code}-1") - 1
    # IDs are code-number (lib/reading/passages.py); a sample checks it (the runner recounts every prompt)
    sample = passages[:: max(1, len(passages) // 16)] + passages[-1:]
    if not all(p.id.startswith(code + "-") and p.id[prefix:].isdigit() for p in sample):
        return [markup.marker(p.id) for p in passages]
    return [base + len(p.id) - prefix for p in passages]


def _text_costs(document: Document, markup: MarkupCounter) -> list[int]:
    """Tokens of each passage's text as sent: its stored exact count unless neutralising changed
    it or another counter made it."""
    passages = document.passages
    if document.counter == markup.counter.kind and not _needs_neutralising(document):
        return [p.tokens for p in passages]
    stored = document.counter == markup.counter.kind
    costs = []
    for passage in passages:
        text = neutralise(passage.text)
        costs.append(passage.tokens if stored and text == passage.text else markup.counter.count(text))
    return costs


def _needs_neutralising(document: Document) -> bool:
    return neutralise(document.text) != document.text


# ----------------------------------------------------------------------------- structure


def heading_depth(line: str) -> int | None:
    """The depth of a heading-like line ('CHAPTER IV' -> 3), None for ordinary text."""
    line = line.strip()
    if not line or len(line) > _HEADING_LINE_CHARS:
        return None
    for pattern, depth in _HEADING_LINES:
        if pattern.match(line):
            return depth
    return None


def _first_line(text: str) -> str:
    stripped = text.lstrip()
    end = stripped.find("\n")
    return stripped[: end if end >= 0 else _HEADING_LINE_CHARS + 1]


def _structure(document: Document) -> tuple[list[int], list[str]]:
    """Boundary rank before each passage and the heading path in effect at it."""
    passages = document.passages
    if any(p.heading for p in passages):
        return _styled_structure(passages)
    return _guessed_structure(passages)


def _styled_structure(passages: Sequence[Passage]) -> tuple[list[int], list[str]]:
    """From the headings the reader found (DOCX styles, PDF outline, Markdown, HTML)."""
    ranks = _plain_ranks(passages)
    previous = passages[0].heading if passages else ""
    for i in range(1, len(passages)):
        heading = passages[i].heading
        if heading != previous:
            path, before = heading.split(" > ") if heading else [], previous.split(" > ") if previous else []
            common = sum(1 for _ in itertools.takewhile(lambda pair: pair[0] == pair[1], zip(path, before)))
            ranks[i] = min(common + 1, 6)
            previous = heading
    return ranks, [p.heading for p in passages]


def _guessed_structure(passages: Sequence[Passage]) -> tuple[list[int], list[str]]:
    """From heading-like lines ("CHAPTER IV") opening a paragraph, for unstyled documents."""
    ranks = _plain_ranks(passages)
    sections = []
    stack: list[tuple[int, str]] = []
    path = ""
    for i, passage in enumerate(passages):
        depth = heading_depth(_first_line(passage.text)) if ranks[i] == PARAGRAPH_RANK else None
        if depth is not None:
            stack = [entry for entry in stack if entry[0] < depth] + [(depth, " ".join(_first_line(passage.text).split()))]
            path = " > ".join(title for _depth, title in stack)
            ranks[i] = depth
        sections.append(path)
    return ranks, sections


def _plain_ranks(passages: Sequence[Passage]) -> list[int]:
    """Paragraph ends (the passage before ends a block) rank above sentence ends."""
    ranks = [PARAGRAPH_RANK]
    ranks += [PARAGRAPH_RANK if p.text.endswith("\n") else SENTENCE_RANK for p in passages[:-1]]
    return ranks[: len(passages)]


# ----------------------------------------------------------------------------- splitting


def whole_piece(document: Document, layout: Layout, markup: MarkupCounter) -> Piece:
    """The whole document as one piece, counted exactly."""
    return _counted(Piece(document, 0, len(document.passages), 1, 1, "", 0), layout, markup)


def _counted(piece: Piece, layout: Layout, markup: MarkupCounter) -> Piece:
    tokens = markup.count(header(piece)) + layout.cost(piece.start, piece.end) + markup.count(FOOTER)
    return Piece(piece.document, piece.start, piece.end, piece.part, piece.parts, piece.section, tokens)


def split_document(document: Document, layout: Layout, room: int, markup: MarkupCounter) -> list[Piece]:
    """Consecutive parts of `document`, each at most `room` tokens as rendered, cut at the best boundaries."""
    passages = document.passages
    for i, cost in enumerate(layout.costs):
        if cost + layout.starts[i] + markup.count(FOOTER) + 64 > room:
            raise InputError(
                f"{document.name}: passage [{passages[i].id}] alone takes {cost:,} tokens, more than one call "
                f"can hold next to the instructions ({room:,}). Raise the context (--context / FOLIO_CONTEXT)."
            )
    allowance = markup.count(FOOTER) + _header_allowance(document, layout, markup)
    while True:
        bounds = _cuts(layout, room - allowance)
        pieces = [
            _counted(Piece(document, a, b, k, len(bounds), layout.sections[a], 0), layout, markup)
            for k, (a, b) in enumerate(bounds, 1)
        ]
        over = max(p.tokens for p in pieces) - room
        if over <= 0:
            return pieces
        allowance += over  # a header came out longer than allowed for: cut again with more room for it


def _header_allowance(document: Document, layout: Layout, markup: MarkupCounter) -> int:
    """Tokens a part's header may take: its longest section, part and passage numbers."""
    section = max(layout.sections, key=len, default="")
    widest = max((p.id for p in document.passages), key=len, default="")
    pages = f"{document.pages}-{document.pages} of {document.pages}" if document.pages is not None else ""
    return markup.count(header_text(document, "999 of 999", pages, f"{widest} to {widest}", section)) + 4


def _cuts(layout: Layout, room: int) -> list[tuple[int, int]]:
    """(start, end) of each part: greedy, each cut at the best boundary in the back of the window."""
    n = len(layout.costs)
    bounds = []
    start = 0
    while start < n:
        end = _furthest(layout, start, room)
        if end < n:
            end = _best_cut(layout, start, end, room)
        bounds.append((start, end))
        start = end
    return bounds


def _furthest(layout: Layout, start: int, room: int) -> int:
    """The largest end such that passages start..end fit in `room` (at least one passage)."""
    limit = layout.prefix[start] + room - layout.starts[start]
    end = bisect.bisect_right(layout.prefix, limit) - 1
    return max(end, start + 1)


def _best_cut(layout: Layout, start: int, end: int, room: int) -> int:
    """Where to end a part that could run to `end`: the best boundary, weighing strength against fill."""
    best, best_score = end, -1.0
    floor = layout.prefix[start] + MIN_FILL * room
    for cut in range(end, start, -1):
        if layout.prefix[cut] < floor:
            break
        fill = (layout.prefix[cut] - layout.prefix[start]) / room
        score = fill - CUT_STEP * layout.ranks[cut]
        if score > best_score:
            best, best_score = cut, score
        if layout.ranks[cut] == 1:
            break  # nothing earlier can beat a top-level heading nearer the end
    return best


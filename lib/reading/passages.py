"""Cut a document into citable passages (pure logic: no I/O).

    text, passages = build_passages(extraction, document_code(sha256), get_counter())
    "".join(p.text for p in passages) == text     # always: nothing dropped or duplicated
    passages[16].id                               # 'kzt-17'

The document text is the extracted blocks, stripped, joined by a blank line. Passages
break at headings (a heading opens the passage it belongs to), blocks (paragraphs, list
items, table rows) and page breaks; small neighbouring blocks under the same heading on
the same page are merged up to TARGET_TOKENS. A paragraph a page break cut mid-sentence
is joined to its continuation (the passage gets a page range). A block longer than
MAX_TOKENS is cut at
paragraph breaks, then sentence ends (Latin and CJK, closing quotes included, never
after "U.S.", "v.", "No.", "e.g.", decimals or list numbers), then clause marks, then
line breaks or spaces, and only as a last resort between two graphemes.
Why these sizes: docs/readme/passages.md.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import hashlib
import math
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable

import regex

from ..documents import Document, Extraction, Passage
from .tokens import SPECIAL_TOKENS

TARGET_TOKENS = 120
"""Small blocks are merged, and long ones cut, to about this size."""
MAX_TOKENS = 300
"""A block up to this size stays one passage; longer ones are cut."""
SEPARATOR = "\n\n"
HEADING_PART_CHARS = 80
"""A heading longer than this is shortened in heading paths (the passage keeps it whole)."""

CONSONANTS = "bcdfghjklmnpqrstvwxz"
CODE_LENGTH = 3
# Three-consonant strings that do occur in documents (acronyms, file types); a document
# code never takes one of them, so `pdf-3` can never be mistaken for a citation.
BLOCKED_CODES = frozenset(
    """bbc cbs cds cfr cjk cms cnn cpr crs css dcs djs dns dtd dvd fbi fcc fda fps ftc ftp
    gdp gmt gps hdd hdl hpv htm jpg kfc kgs khz lcd llc llp ltd mbs mgr mph mrs nbc nhs nlp
    npr nrc pbs pcb pct pdf php pkg png ppm prc psd pst rfc rpm sdk sgm sms sql ssd ssh std
    svg tbd tcp tls tss txt vpn www xls xml scc""".split()
)

# Words after which a full stop does not end a sentence (compared lower-case, without
# the final dot). Dotted forms like "U.S", "e.g", "F.3d" are caught by _DOTTED_WORD.
ABBREVIATIONS = frozenset(
    """mr mrs ms messrs dr prof st jr sr gen gov sen rep hon esq rev fr capt col lt sgt
    v vs no nos cf al inc ltd co corp bros dept univ assn admin
    art arts sec secs ch chs cl pt pts para paras subch subd div tit app apps supp cir ct
    ann stat const amdt amend cong sess reg regs ord fed civ crim proc evid p pp n nn fn
    fig figs vol vols ed eds eq eqs op cit ex rel seq approx est
    jan feb mar apr jun jul aug sep sept oct nov dec org ass'n comm'n dep't gov't int'l
    nat'l soc'y hist pol res sci med educ serv servs sys mgmt dist super sup rptr""".split()
)
# Abbreviations that are also ordinary words ("me", "ill") count only when capitalised,
# as they are in citations: "Cal. Penal Code", "Mass. Gen. Laws", "6 Pet. 515".
CAPITALISED_ABBREVIATIONS = frozenset(
    """Ala Ariz Ark Cal Colo Conn Del Fla Ga Ill Ind Kan Ky La Me Md Mass Mich Minn Miss Mo
    Mont Neb Nev Okla Ore Pa Tenn Tex Vt Va Wash Wis Wyo Pet Wall How Dall Wheat Cranch
    Penn Am Rev Ann Cas Crim Eng Tech Inst Stud""".split()
)

_DOTTED_WORD = regex.compile(r"\p{L}[\p{L}\p{N}]*(?:\.[\p{L}\p{N}]+)+")
_LIST_MARKER = regex.compile(r"(?:\p{N}{1,3}|[ivxlcdmIVXLCDM]{1,5}|\p{L})")
_OPENERS = "([\"'“‘«"


_PARAGRAPH_BREAK = regex.compile(r"\n[ \t\u3000]*\n\s*")
_LINE_BREAK = regex.compile(r"\n\s*")
# A Latin sentence end: terminal marks, closing quotes/brackets, whitespace, and a capital
# (or CJK, or an opening quote) starting the next sentence. The word before is checked apart
# (a pattern that captured it ran 16 times slower).
_LATIN_END = regex.compile(r"([.!?]+)[\"'”’»)\]]*\s+(?=[\p{Lu}\p{Lt}\p{Lo}\"'“‘(\[«¿¡§])")
_WORD_REACH = 40
"""How far back the word before a full stop is looked for; longer 'words' are no abbreviations."""
# A CJK sentence end needs no space after it; a comma after the closing quote means the
# sentence goes on (「好！」，他说).
# The full-width full stop "．" ends sentences in many Chinese e-texts (not between digits: "３．５").
_CJK_END = regex.compile(r"(?:[。！？｡]|(?<![0-9０-９])．(?![0-9０-９]))++[」』”’）》】〕〉\"')\]]*+(?![，、,；;：:])\s*")
_CLAUSE_END = regex.compile(r"(?:[；，]|[;,](?=\s))\s*")
_TERMINALS = frozenset(".!?。！？．｡:：;；…")
_CLOSERS = frozenset("\"'”’»)]」』）》】")
_GRAPHEME = regex.compile(r"\X", regex.DOTALL)
_GRAPHEME_RUN = regex.compile(r"\X{1,32}", regex.DOTALL)
_SPECIAL = regex.compile("|".join(map(regex.escape, SPECIAL_TOKENS)))
_PUNCT = regex.compile(r"[^\s\p{L}\p{N}]")
_DIGIT = regex.compile(r"\p{N}")
_LETTER = regex.compile(r"\p{L}")
_SPACE_RUN = regex.compile(r"\s*")

Check = Callable[[str], None]
"""A deadline's check(where): raises once the document's time is up."""


def _no_check(where: str) -> None:
    return None


@dataclass
class _Unit:
    """A span of the document text that is packed into passages as a whole."""

    start: int
    end: int
    tokens: int
    page: int | None
    page_end: int | None
    heading: str
    is_heading: bool = False
    block_start: bool = True
    """The unit starts a block, so counts add up across it (see _count_spans)."""
    whole_block: bool = True


@dataclass
class _Stretch:
    """One block, or a paragraph that runs on over several blocks (a page break cut it)."""

    spans: list[tuple[int, int, int, int]]
    """(block index, start, end of its text, end with separator) of each block."""
    tokens: int
    pages: list[int | None]
    kind: str
    heading: str
    ids: list[array] | None = None
    """Token ids of each block, when the counter gives ids (the exact one does)."""


@dataclass
class _Group:
    units: list[_Unit]
    tokens: int

    @property
    def headings_only(self) -> bool:
        return all(u.is_heading for u in self.units)


@dataclass(frozen=True)
class Cutting:
    """The result of build: text, passages and the exact token count of the whole text."""

    text: str
    passages: list[Passage]
    tokens: int


# ---------------------------------------------------------------- document text


def layout_blocks(extraction: Extraction) -> tuple[str, list[tuple[int, int, int, int]]]:
    """The document text and, per non-empty block, (index, start, end of its text, end with separator)."""
    parts: list[str] = []
    spans: list[tuple[int, int, int, int]] = []
    offset = 0
    for i, block in enumerate(extraction.blocks):
        body = block.text.strip()
        if not body:
            continue
        if parts:
            parts.append(SEPARATOR)
            offset += len(SEPARATOR)
        parts.append(body)
        spans.append((i, offset, offset + len(body), offset + len(body) + len(SEPARATOR)))
        offset += len(body)
    if spans:
        i, start, body_end, _end = spans[-1]
        spans[-1] = (i, start, body_end, body_end)
    return "".join(parts), spans


def _heading_paths(extraction: Extraction, spans) -> dict[int, str]:
    """Heading path in effect at each block (a heading's path ends with itself)."""
    stack: list[tuple[int, str]] = []
    paths: dict[int, str] = {}
    for i, *_offsets in spans:
        block = extraction.blocks[i]
        if block.kind == "heading":
            level = block.level if block.level > 0 else 1
            stack = [entry for entry in stack if entry[0] < level]
            stack.append((level, _short_heading(block.text)))
        paths[i] = " > ".join(title for _level, title in stack)
    return paths


def _short_heading(text: str) -> str:
    title = " ".join(text.split())
    return title if len(title) <= HEADING_PART_CHARS else title[: HEADING_PART_CHARS - 1].rstrip() + "…"


# ---------------------------------------------------------------- boundaries


def sentence_ends(text: str, start: int, end: int) -> list[int]:
    """Positions in text[start:end] where a sentence ends (see _place for the spaces after it)."""
    cuts = [_place(text, m) for m in _LATIN_END.finditer(text, start, end) if _is_latin_end(text, m, start, end)]
    cuts += [_place(text, m) for m in _CJK_END.finditer(text, start, end)]
    return sorted({c for c in cuts if start < c < end})


def _place(text: str, match) -> int:
    """Where to cut after a boundary `match` that ends with whitespace.

    After the last line break when the whitespace has one, else before the spaces: both
    are points no Qwen pre-token crosses (see is_additive), so the two sides' token counts
    add up. The next passage may therefore begin with a space.
    """
    end = match.end()
    space = end
    while space > match.start() and text[space - 1].isspace():
        space -= 1
    newline = text.rfind("\n", space, end)
    return newline + 1 if newline != -1 else space


def is_additive(text: str, cut: int) -> bool:
    """Whether no Qwen2 pre-token crosses `cut`, so count(left) + count(right) == count(text).

    True after a newline (unless more newlines follow in the same whitespace), and after
    punctuation followed by spaces, a digit, or (after two or more marks) a letter. A single
    mark joins the word after it ("。他" is one pre-token), and "'s" is a contraction.
    Checked against the real tokenizer on over 100,000 random cuts; tests/test_passages.py
    repeats a sample of them.
    """
    if cut <= 0 or cut >= len(text):
        return True
    if any(m.start() < cut < m.end() for m in _SPECIAL.finditer(text, max(0, cut - 20), cut + 20)):
        return False
    before, after = text[cut - 1], text[cut]
    if before == "\n":
        following = _SPACE_RUN.match(text, cut).group()
        return "\n" not in following and "\r" not in following
    if not _PUNCT.match(before):
        return False
    if after.isspace():
        return after not in "\r\n"
    if _DIGIT.match(after):
        return True
    if not _LETTER.match(after) or before == "'" or cut < 2 or not _PUNCT.match(text[cut - 2]):
        return False
    return not any(m.end() == cut - 1 for m in _SPECIAL.finditer(text, max(0, cut - 20), cut))


def _is_latin_end(text: str, match, start: int, end: int) -> bool:
    if match.group(1) != ".":
        return True
    word, at_line_start = _word_before(text, start, match.start())
    return not _is_abbreviation(word, at_line_start=at_line_start)


def _word_before(text: str, start: int, at: int) -> tuple[str, bool]:
    """The word ending at `at` (without opening quotes/brackets) and whether it starts a line."""
    window = text[max(start, at - _WORD_REACH) : at]
    if not window or window[-1].isspace():
        return "", False
    word = window.split()[-1]
    word_start = at - len(word)
    at_line_start = word_start == start or text[word_start - 1] == "\n"
    return word.lstrip(_OPENERS), at_line_start


@functools.lru_cache(maxsize=4096)
def _is_abbreviation(word: str, *, at_line_start: bool) -> bool:
    """True when a full stop after `word` is part of an abbreviation or a list number."""
    if not word:
        return False
    if at_line_start and _LIST_MARKER.fullmatch(word):
        return True  # "1. Introduction", "IV. Remedies", "a. Scope"
    if len(word) == 1 and word.isalpha():
        return True  # initials: "J. Roberts", "Roe v. Wade"
    if word in CAPITALISED_ABBREVIATIONS or word.lower() in ABBREVIATIONS:
        return True
    return bool(_DOTTED_WORD.fullmatch(word))  # "U.S", "e.g", "F.3d", "L.Ed.2d"


def _regex_cuts(pattern) -> Callable[[str, int, int], list[int]]:
    def cuts(text: str, start: int, end: int) -> list[int]:
        return [c for c in (_place(text, m) for m in pattern.finditer(text, start, end)) if start < c < end]

    return cuts


# Boundary finders from the most to the least natural; a span is cut at the first level
# that splits it, and only pieces still too long go down to the next level.
_LEVELS: tuple[Callable[[str, int, int], list[int]], ...] = (
    _regex_cuts(_PARAGRAPH_BREAK),
    sentence_ends,
    _regex_cuts(_CLAUSE_END),
    _regex_cuts(_LINE_BREAK),
)
# A table's rows are its natural units: cut between rows before anything else.
_TABLE_LEVELS = (_regex_cuts(_LINE_BREAK), *_LEVELS[1:3])


# ---------------------------------------------------------------- cutting long blocks


def _cut(text: str, start: int, end: int, density: float, levels, check: Check = _no_check) -> list[tuple[int, int, float]]:
    """(start, end, estimated tokens) runs of text[start:end] near TARGET_TOKENS.

    Sizes are estimated from the block's own tokens per character (counting every
    sentence would cost a pass over the text); _cut_block counts the runs exactly.
    """
    tokens = (end - start) * density
    if tokens <= MAX_TOKENS:
        return [(start, end, tokens)]
    while levels:
        bounds = levels[0](text, start, end)
        levels = levels[1:]
        if bounds:
            edges = [start, *bounds, end]
            pieces: list[tuple[int, int, float]] = []
            for a, b in zip(edges, edges[1:]):
                pieces += _cut(text, a, b, density, levels, check)
            return _pack(pieces)
    return _hard_cut(text, start, end, density, check)


def _pack(pieces: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """Join neighbouring pieces into runs of about equal size near TARGET_TOKENS."""
    total = sum(n for _a, _b, n in pieces)
    goal = total / max(1, math.ceil(total / TARGET_TOKENS))
    runs: list[list] = []
    for a, b, n in pieces:
        if runs and runs[-1][2] + n <= MAX_TOKENS and runs[-1][2] + n / 2 <= goal:
            runs[-1][1], runs[-1][2] = b, runs[-1][2] + n
        else:
            runs.append([a, b, n])
    return [tuple(run) for run in runs]


def _hard_cut(text: str, start: int, end: int, density: float, check: Check = _no_check) -> list[tuple[int, int, float]]:
    """Cut a span with no natural boundary: at spaces where possible, else between graphemes.

    Grapheme boundaries are found window by window (each window scanned once, from the
    previous cut), so a 12 MB run of letters costs one pass and no list of 12 M offsets."""
    window = max(1, int(TARGET_TOKENS / density))
    cuts: list[int] = []
    position = start
    while end - position > window:
        if len(cuts) % 1000 == 999:
            check("cutting passages")
        cut = _cut_point(text, position, position + window, end)
        if cut <= position:
            break
        cuts.append(cut)
        position = cut
    edges = [start, *cuts, end]
    return [(a, b, (b - a) * density) for a, b in zip(edges, edges[1:])]


def _cut_point(text: str, lo: int, hi: int, end: int) -> int:
    """The last space-ended point in (lo+half, hi] that is a grapheme boundary, else the last
    grapheme boundary in (lo, hi]; lo when there is none (one grapheme runs past hi)."""
    space = text.rfind(" ", lo + (hi - lo) // 2, hi)
    if space != -1 and _GRAPHEME.match(text, space, end).end() == space + 1:
        return space + 1  # no combining mark follows the space: a boundary
    return _last_boundary(text, lo, hi, end)


def _last_boundary(text: str, lo: int, hi: int, end: int) -> int:
    """The last grapheme boundary in (lo, hi], scanning from the boundary lo: in runs of up
    to 32 graphemes (the regex engine's pace), then one grapheme at a time near hi."""
    position = lo
    for run in _GRAPHEME_RUN.finditer(text, lo, end):
        if run.end() > hi:
            break
        position = run.end()
    for match in _GRAPHEME.finditer(text, position, end):
        if match.end() > hi:
            break
        position = match.end()
    return position


# ---------------------------------------------------------------- units and packing


_RUNNING = ("paragraph", "list_item")


def _stretches(extraction, text, spans, counts, paths, ids) -> list[_Stretch]:
    """Blocks, with a paragraph that stops mid-sentence joined to the paragraph carrying it on.

    PDFs break paragraphs at page and column ends; joining them keeps a sentence whole.
    """
    stretches: list[_Stretch] = []
    previous_open = False
    for k, (span, n) in enumerate(zip(spans, counts)):
        block = extraction.blocks[span[0]]
        running = block.kind in _RUNNING
        block_ids = ids[k] if ids is not None else None
        if previous_open and running:
            last = stretches[-1]
            last.spans.append(span)
            last.tokens += n
            last.pages.append(block.page)
            if last.ids is not None:
                last.ids.append(block_ids)
        else:
            stretches.append(_Stretch([span], n, [block.page], block.kind, paths[span[0]], None if ids is None else [block_ids]))
        previous_open = running and not ends_sentence(text, span[1], span[2])
    return stretches


def ends_sentence(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] ends a sentence ("... U. S." and "... v." do not)."""
    i = end - 1
    while i >= start and text[i].isspace():
        i -= 1
    while i >= start and text[i] in _CLOSERS:
        i -= 1
    if i < start or text[i] not in _TERMINALS:
        return False
    if text[i] != ".":
        return True
    word, _at_line_start = _word_before(text, start, i)
    return not _is_abbreviation(word, at_line_start=False)


def _units(stretch: _Stretch, text: str, counter, check: Check = _no_check) -> list[_Unit]:
    """One unit for a stretch up to MAX_TOKENS, else one per run it is cut into."""
    _i, start, _body_end, end = stretch.spans[0]
    body_end, end = stretch.spans[-1][2], stretch.spans[-1][3]
    is_heading = stretch.kind == "heading"
    if stretch.tokens <= MAX_TOKENS:
        pages = [p for p in stretch.pages if p is not None]
        first, last = (min(pages), max(pages)) if pages else (None, None)
        return [_Unit(start, end, stretch.tokens, first, last, stretch.heading, is_heading)]
    levels = _levels(stretch, text)
    token_ids = None
    if stretch.ids is not None:
        token_ids = array("I")
        for block_ids in stretch.ids:
            token_ids.extend(block_ids)
    runs = _cut_runs(text, (start, body_end, end), stretch.tokens, levels, counter, token_ids, check=check)
    pages_of = _PageFinder(stretch)
    return [
        _Unit(a, b, n, *pages_of.between(a, b), stretch.heading, is_heading, j == 0, False)
        for j, (a, b, n) in enumerate(runs)
    ]


def _levels(stretch: _Stretch, text: str):
    """Boundary finders for cutting this stretch, most natural first."""
    if stretch.kind == "table":
        return _TABLE_LEVELS
    if len(stretch.spans) == 1:
        return _LEVELS
    starts = [span[1] for span in stretch.spans[1:]]

    def block_starts(_text: str, lo: int, hi: int) -> list[int]:
        return starts[bisect.bisect_right(starts, lo) : bisect.bisect_left(starts, hi)]

    # A joined paragraph: its sentences first, then the block breaks inside it.
    return (sentence_ends, block_starts, *_LEVELS[2:])


class _PageFinder:
    """First and last page of the blocks of a stretch that a run text[a:b] touches.

    Runs come in order and touch only their own blocks, found by bisection: cutting a
    stretch of n blocks into m runs costs n + m log n, not n * m."""

    def __init__(self, stretch: _Stretch):
        self.pages = stretch.pages
        self.starts = [span[1] for span in stretch.spans]
        self.ends = [span[3] for span in stretch.spans]

    def between(self, a: int, b: int) -> tuple[int | None, int | None]:
        first = bisect.bisect_right(self.ends, a)  # blocks ending at or before a are not touched
        last = bisect.bisect_left(self.starts, b)  # nor are those starting at or after b
        pages = [page for page in self.pages[first:last] if page is not None]
        return (min(pages), max(pages)) if pages else (None, None)


def _cut_runs(text: str, span: tuple[int, int, int], tokens: int, levels, counter, token_ids=None, depth: int = 0,
              check: Check = _no_check) -> list[tuple[int, int, int]]:
    """Runs of a long stretch (the last keeps the separator), each counted exactly."""
    start, body_end, end = span
    runs = _cut(text, start, body_end, tokens / max(1, body_end - start), levels, check)
    edges = [run[0] for run in runs] + [end]
    pairs = list(zip(edges, edges[1:]))
    counts = _run_counts(text, edges, counter, token_ids, check)
    result: list[tuple[int, int, int]] = []
    for (x, y), n in zip(pairs, counts):
        if n > MAX_TOKENS and len(runs) > 1 and depth < 3:
            # The estimate was low for this stretch (say English inside Chinese): cut it again.
            result += _cut_runs(text, (x, min(y, body_end), y), n, levels, counter, None, depth + 1, check)
        else:
            result.append((x, y, n))
    return result


def _run_counts(text: str, edges: list[int], counter, token_ids, check: Check = _no_check) -> list[int]:
    """Exact count of each run text[edges[k]:edges[k+1]].

    Where both ends are additive cuts, the count is read off the stretch's own token ids
    (no pre-token crosses the cut, so the tokens between are exactly the run's); the other
    runs (cut inside a CJK sentence, at a clause, ...) are counted again.
    """
    pairs = list(zip(edges, edges[1:]))
    if token_ids is None:
        return _count_many(counter, [text[x:y] for x, y in pairs], check)
    ends = counter.byte_ends(token_ids)
    additive = [k in (0, len(edges) - 1) or is_additive(text, c) for k, c in enumerate(edges)]
    offsets = [0]
    for x, y in pairs:
        offsets.append(offsets[-1] + len(text[x:y].encode("utf-8")))
    positions = [bisect.bisect_right(ends, b) for b in offsets]
    counts = [positions[k + 1] - positions[k] for k in range(len(pairs))]
    again = [k for k in range(len(pairs)) if not (additive[k] and additive[k + 1])]
    for k, n in zip(again, _count_many(counter, [text[pairs[k][0] : pairs[k][1]] for k in again], check)):
        counts[k] = n
    return counts


def _joins(group: _Group, unit: _Unit) -> bool:
    """Whether `unit` goes into the passage being built rather than opening a new one."""
    if not unit.block_start:
        return False  # the runs of a long block are passages of their own
    last = group.units[-1]
    total = group.tokens + unit.tokens
    if unit.is_heading:
        return group.headings_only and total <= MAX_TOKENS
    if group.headings_only:
        return total <= MAX_TOKENS
    same_place = unit.page == last.page_end and unit.heading == last.heading
    return unit.whole_block and last.whole_block and same_place and total <= TARGET_TOKENS


def _group_units(units: list[_Unit]) -> list[_Group]:
    groups: list[_Group] = []
    for unit in units:
        if groups and _joins(groups[-1], unit):
            groups[-1].units.append(unit)
            groups[-1].tokens += unit.tokens
        else:
            groups.append(_Group([unit], unit.tokens))
    return groups


# ---------------------------------------------------------------- passages


def _count_spans(text: str, spans, counter, check: Check = _no_check) -> tuple[list[int], list[array] | None]:
    """Token count (and ids, when the counter gives them) of each block with its separator.

    Every block starts right after a newline with a visible character. No Qwen2
    pre-token can cross such a point, so these counts add up exactly: their sum is the
    count of the whole text, and a passage made of whole blocks (or starting a block)
    has exactly the sum of its units' counts. One pass over the text counts everything.
    """
    texts = [text[a:b] for _i, a, _body_end, b in spans]
    if hasattr(counter, "encode_many") and hasattr(counter, "byte_ends"):
        ids: list[array] = []  # 4 bytes a token instead of 36 for a list of ints: the largest cost of a long book
        for batch in _batches(texts, check, "counting tokens"):
            ids += [array("I", block_ids) for block_ids in counter.encode_many(batch)]
        return [len(i) for i in ids], ids
    return _count_many(counter, texts, check), None


def cut_document(extraction: Extraction, code: str, counter, deadline=None) -> Cutting:
    """Text, passages and the token count of the whole text, in one counting pass.

    `deadline` (lib.reading.guards.Deadline) is checked as counting and cutting go on, so a
    document's time limit covers these stages too."""
    check = deadline.check if deadline is not None else _no_check
    text, spans = layout_blocks(extraction)
    if not spans:
        return Cutting(text, [], 0)
    counts, ids = _count_spans(text, spans, counter, check)
    paths = _heading_paths(extraction, spans)
    stretches = _stretches(extraction, text, spans, counts, paths, ids)
    units: list[_Unit] = []
    for k, stretch in enumerate(stretches):
        if k % 1000 == 0:
            check("cutting passages")
        units += _units(stretch, text, counter, check)
    groups = _group_units(units)
    labels = extraction.page_labels or []
    passages = [_passage(text, code, index, group, labels) for index, group in enumerate(groups)]
    return Cutting(text, passages, sum(counts))


def build_passages(extraction: Extraction, code: str, counter) -> tuple[str, list[Passage]]:
    """The document text and its passages, in order, covering the text exactly."""
    cutting = cut_document(extraction, code, counter)
    return cutting.text, cutting.passages


def _passage(text: str, code: str, index: int, group: _Group, labels: list[str]) -> Passage:
    start, end = group.units[0].start, group.units[-1].end
    firsts = [u.page for u in group.units if u.page is not None]
    lasts = [u.page_end for u in group.units if u.page_end is not None]
    first = min(firsts) if firsts else None
    heading = _group_heading(group)
    return Passage(
        id=f"{code}-{index + 1}",
        index=index,
        page=first,
        page_end=max(lasts) if lasts else None,
        heading=heading,
        text=text[start:end],
        tokens=group.tokens,
        start=start,
        end=end,
        page_label=_label(labels, first),
    )


def _group_heading(group: _Group) -> str:
    """The heading path of a passage: that of its last leading heading, if it opens with some."""
    heading = group.units[0].heading
    for unit in group.units:
        if not unit.is_heading:
            break
        heading = unit.heading
    return heading


def _label(labels: list[str], page: int | None) -> str | None:
    if page is None or not 0 < page <= len(labels):
        return None
    return labels[page - 1] or None


def _count_many(counter, texts: list[str], check: Check = _no_check) -> list[int]:
    many = getattr(counter, "count_many", None) or (lambda batch: [counter.count(t) for t in batch])
    counts: list[int] = []
    for batch in _batches(texts, check, "counting tokens"):
        counts += many(batch)
    return counts


BATCH_CHARS = 1 << 20
"""Texts are counted about this much at a time, the deadline checked in between."""


def _batches(texts: list[str], check: Check, where: str) -> Iterable[list[str]]:
    """`texts` in consecutive batches of about BATCH_CHARS characters, checking the deadline before each."""
    batch: list[str] = []
    size = 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= BATCH_CHARS:
            check(where)
            yield batch
            batch, size = [], 0
    if batch:
        check(where)
        yield batch


# ---------------------------------------------------------------- IDs


def _letters(key: str) -> Iterable[str]:
    """An endless-enough stream of consonants drawn from a hex digest."""
    number = int(key, 16)
    while number:
        number, rest = divmod(number, len(CONSONANTS))
        yield CONSONANTS[rest]


def document_code(sha256: str, length: int = CODE_LENGTH) -> str:
    """Consonants from the document's sha256, e.g. 'kzt' (never a common acronym).

    A longer code extends the shorter one ('kzt' -> 'kztm'), used only on collisions.
    """
    letters, offset = _code_letters(sha256)
    return letters[offset : offset + length]


def _code_letters(key: str) -> tuple[str, int]:
    """The consonants of a key and where its code starts (past any blocked code)."""
    letters = "".join(_letters(key))
    offset = 0
    while letters[offset : offset + CODE_LENGTH] in BLOCKED_CODES:
        offset += 1
    return letters, offset


def _id_keys(documents: list[Document]) -> list[str]:
    """A distinct key per document: its sha256, or for copies of one file, sha256+name."""
    shas = Counter(d.sha256 for d in documents)
    seen: Counter = Counter()
    keys = []
    for d in documents:
        if shas[d.sha256] == 1:
            keys.append(d.sha256)
            continue
        seen[(d.sha256, d.name)] += 1  # same bytes, same name: interchangeable copies
        salt = f"{d.sha256}\0{d.name}\0{seen[(d.sha256, d.name)]}"
        keys.append(hashlib.sha256(salt.encode("utf-8")).hexdigest())
    return keys


def unique_codes(keys: list[str]) -> list[str]:
    """One code per key, 3 consonants unless that collides: then longer, for those only.

    Each round lengthens every code that collides; a new collision can only involve a code
    lengthened in the round before, so only those are looked at again (2,000 documents: one
    pass over all of them, then a few dozen).
    """
    spelled = [_code_letters(k) for k in keys]
    lengths = [CODE_LENGTH] * len(keys)
    codes = [letters[offset : offset + CODE_LENGTH] for letters, offset in spelled]
    holders: dict[str, list[int]] = defaultdict(list)
    for i, code in enumerate(codes):
        holders[code].append(i)
    changed = set(holders)
    while True:
        clashes = [holders[c] for c in changed if len(holders[c]) > 1]
        if not clashes:
            return codes
        changed = set()
        for ids in clashes:
            for i in list(ids):
                holders[codes[i]].remove(i)
                lengths[i] += 1
                letters, offset = spelled[i]
                codes[i] = letters[offset : offset + lengths[i]]
                holders[codes[i]].append(i)
                changed.add(codes[i])


def assign_unique_ids(documents: list[Document]) -> list[Document]:
    """New Documents whose passage IDs are unique across this request and stable across runs."""
    codes = unique_codes(_id_keys(documents))
    return [_with_code(d, code) for d, code in zip(documents, codes)]


def _with_code(document: Document, code: str) -> Document:
    # Every passage of a document carries the same code: when the first has it, all do.
    if not document.passages or passage_code(document.passages[0].id) == code:
        return document
    passages = [_renamed(p, f"{code}-{p.index + 1}") for p in document.passages]
    return dataclasses.replace(document, passages=passages)


def _renamed(passage: Passage, passage_id: str) -> Passage:
    """The passage under another ID (a plain copy: dataclasses.replace re-runs __init__, 3x slower)."""
    copy = object.__new__(Passage)
    copy.__dict__.update(passage.__dict__)
    object.__setattr__(copy, "id", passage_id)
    return copy


def passage_code(passage_id: str) -> str:
    """'kzt-17' -> 'kzt'."""
    return passage_id.rsplit("-", 1)[0]

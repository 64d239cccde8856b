"""The shapes a document takes on its way through Folio (no I/O here).

file bytes --extract--> Extraction (Blocks) --passages--> Document (Passages)
"""

from __future__ import annotations

from dataclasses import dataclass, field

FORMATS = ("pdf", "docx", "epub", "html", "text", "markdown")


@dataclass(frozen=True)
class Block:
    """One natural unit an extractor found, in reading order."""

    text: str
    page: int | None = None
    """1-based page number; None for formats without pages."""
    kind: str = "paragraph"
    """heading | paragraph | list_item | table | header | footer | footnote | textbox | caption"""
    level: int = 0
    """Heading level 1..6 for headings, else 0."""


@dataclass
class Extraction:
    """What an extractor read from one file, before passages are cut."""

    format: str
    blocks: list[Block]
    pages: int | None = None
    page_labels: list[str] | None = None
    """Printed page label per page (index 0 = page 1) where the file defines labels."""
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Passage:
    """A citable span of a document: document text[start:end] == text."""

    id: str
    index: int
    """0-based position in its document."""
    page: int | None
    """First page (1-based) or None."""
    page_end: int | None
    """Last page; equal to page unless the passage crosses a page break."""
    heading: str
    """Heading path, outermost first, joined with ' > '."""
    text: str
    tokens: int
    start: int
    end: int
    page_label: str | None = None
    """Printed label of the first page, where the PDF defines labels."""

    @property
    def pages_text(self) -> str:
        """'p. 4', 'pp. 4-5', or '' for formats without pages (labels win when present)."""
        if self.page is None:
            return ""
        return page_range_text(self.page, self.page_end, self.page_label)


def page_range_text(page: int | None, page_end: int | None, label: str | None = None) -> str:
    """'p. 4', 'pp. 4-5', 'pp. iii-iv' (a printed label carries on to the last page), or ''."""
    if page is None:
        return ""
    first = label or str(page)
    if not page_end or page_end == page:
        return f"p. {first}"
    if not label:
        return f"pp. {first}-{page_end}"
    last = _label_after(label, page_end - page)
    return f"pp. {first}-{last}" if last else f"pp. {first} ff."


_ROMAN_VALUES = (("m", 1000), ("cm", 900), ("d", 500), ("cd", 400), ("c", 100), ("xc", 90),
                 ("l", 50), ("xl", 40), ("x", 10), ("ix", 9), ("v", 5), ("iv", 4), ("i", 1))


def _label_after(label: str, steps: int) -> str:
    """The printed label `steps` pages after `label` ('3' -> '4', 'iii' -> 'iv', 'A-2' -> 'A-3'), or ''."""
    head = label.rstrip("0123456789")
    if head != label:
        return head + str(int(label[len(head):]) + steps)
    roman = _roman_value(label.lower())
    if roman:
        text = _roman_text(roman + steps)
        return text.upper() if label.isupper() else text
    return ""  # a label Folio cannot count on from ('Cover'): no guess


def _roman_value(text: str) -> int:
    value, rest = 0, text
    for numeral, amount in _ROMAN_VALUES:
        while rest.startswith(numeral):
            value, rest = value + amount, rest[len(numeral):]
    return value if text and not rest and _roman_text(value) == text else 0


def _roman_text(value: int) -> str:
    out = []
    for numeral, amount in _ROMAN_VALUES:
        count, value = divmod(value, amount)
        out.append(numeral * count)
    return "".join(out)


@dataclass
class Document:
    """A whole ingested document with its passages and exact (or estimated) token count."""

    name: str
    sha256: str
    format: str
    pages: int | None
    text: str
    passages: list[Passage]
    tokens: int
    counter: str
    """'exact' or 'estimate'."""
    warnings: list[str] = field(default_factory=list)
    page_labels: list[str] | None = None

    @property
    def chars(self) -> int:
        return len(self.text)

    def passage(self, passage_id: str) -> Passage | None:
        for p in self.passages:
            if p.id == passage_id:
                return p
        return None

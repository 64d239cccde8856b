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
        first = self.page_label or str(self.page)
        if self.page_end and self.page_end != self.page:
            return f"pp. {first}-{self.page_end}"
        return f"p. {first}"


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

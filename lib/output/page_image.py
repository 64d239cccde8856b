"""A PDF page as a PNG with a cited quote highlighted, so a reader sees it in the original layout.

    png = render_page_png(pdf_bytes, 4, quote="the lessee shall pay")
    found = find_quote_rects(pdf_bytes, 4, "the lessee shall pay")   # {4: [Rect, ...], 5: [...]}

Finding the quote, most exact first:
1. MuPDF's own search for the whole quote on the page;
2. the quote's letters and digits (case, width, whitespace, punctuation and line-end
   hyphens ignored) as one run over this page and the next, so a quote broken by a line
   or page break is still found;
3. the longest pieces of the quote that occur on the page(s) in order, when the quote
   differs a little from the page (ligatures, OCR slips, a changed word).
Rectangles are in PDF points in the page's unrotated space (as MuPDF reports text).
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from dataclasses import dataclass, field

from ..errors import CorruptDocument, InputError, PasswordRequired, WrongPassword
from ..reading.mupdf_lock import MUPDF_LOCK

MAX_PIXELS = 8_000_000
"""Largest image rendered (about 2300 x 3400); bigger pages are drawn at a smaller zoom."""
HIGHLIGHT_RGB = (1.0, 0.85, 0.0)
_MIN_PIECE = 3
"""Shortest matching piece kept by the fuzzy step (shorter ones match by chance)."""
_FUZZY_MAX = 800
"""Longest (normalised) quote the fuzzy step compares; keeps a worst case near 0.3 s."""
_MIN_COVERAGE = 0.6
"""Share of the quote's characters the fuzzy step must find before it highlights anything."""
_QUOTE_MARKS = "\"'“”‘’„«»「」『』《》〈〉 \t\r\n"


@dataclass
class PageImage:
    """A rendered page and what was highlighted on it."""

    png: bytes
    width: int
    height: int
    zoom: float
    """The zoom actually used (smaller than asked when the page is huge)."""
    rects: list = field(default_factory=list)
    """Highlighted rectangles on this page, PDF points (unrotated)."""
    quote_pages: list[int] = field(default_factory=list)
    """1-based pages where the quote was found (this one and/or the next)."""

    @property
    def found(self) -> bool:
        return bool(self.rects)


def render_page_png(
    pdf_bytes: bytes,
    page: int,
    *,
    quote: str | None = None,
    password: str | None = None,
    zoom: float = 1.5,
    name: str = "PDF",
) -> bytes:
    """PNG bytes of a 1-based page, the quote (if any) highlighted."""
    return render_page(pdf_bytes, page, quote=quote, password=password, zoom=zoom, name=name).png


def render_page(
    pdf_bytes: bytes,
    page: int,
    *,
    quote: str | None = None,
    password: str | None = None,
    zoom: float = 1.5,
    name: str = "PDF",
    max_pixels: int = MAX_PIXELS,
) -> PageImage:
    """The page as a PageImage (PNG plus what was highlighted)."""
    with MUPDF_LOCK:
        return _render(pdf_bytes, page, quote, password, zoom, name, max_pixels)


def _render(pdf_bytes, page, quote, password, zoom, name, max_pixels) -> PageImage:
    doc = open_pdf(pdf_bytes, password, name)
    try:
        target = _page(doc, page, name)
        found = _locate(doc, page - 1, quote) if quote else {}
        rects = found.get(page, [])
        if rects:
            _highlight(target, rects)
        scale = fit_zoom(target.rect, zoom, max_pixels)
        pixmap = target.get_pixmap(matrix=_matrix(scale), alpha=False, annots=True)
        return PageImage(
            png=pixmap.tobytes("png"),
            width=pixmap.width,
            height=pixmap.height,
            zoom=scale,
            rects=rects,
            quote_pages=sorted(p for p, r in found.items() if r),
        )
    finally:
        doc.close()


def find_quote_rects(pdf_bytes: bytes, page: int, quote: str, *, password: str | None = None) -> dict[int, list]:
    """Where the quote is on a 1-based page and the next: {page: [pymupdf.Rect, ...]}."""
    with MUPDF_LOCK:
        doc = open_pdf(pdf_bytes, password)
        try:
            _page(doc, page, "PDF")
            return _locate(doc, page - 1, quote)
        finally:
            doc.close()


def fit_zoom(rect, zoom: float, max_pixels: int = MAX_PIXELS) -> float:
    """The zoom to use: as asked, but never more than max_pixels in the image."""
    if not zoom or zoom <= 0 or not math.isfinite(zoom):
        zoom = 1.0
    area = max(rect.width, 1.0) * max(rect.height, 1.0)
    return min(zoom, math.sqrt(max_pixels / area))


# --- opening ----------------------------------------------------------------------------


def open_pdf(pdf_bytes: bytes, password: str | None = None, name: str = "PDF"):
    """An open pymupdf Document (authenticated), or a DocumentError saying what to do."""
    import pymupdf

    try:
        doc = pymupdf.open(stream=pdf_bytes, filetype="pdf")
    except Exception as exc:  # pymupdf raises several types for damaged input
        raise CorruptDocument(name, f"cannot be opened as a PDF ({exc}).", "Check the file, or add it again.") from exc
    if doc.needs_pass:
        if not password:
            doc.close()
            raise PasswordRequired(name, "is password-protected.", "Enter its password to see the page.")
        if not doc.authenticate(password):
            doc.close()
            raise WrongPassword(name, "did not accept that password.", "Check the password and try again.")
    return doc


def _page(doc, page: int, name: str):
    if not isinstance(page, int) or not 1 <= page <= doc.page_count:
        raise InputError(f"{name}: there is no page {page}; the PDF has {doc.page_count} pages.")
    return doc[page - 1]


def _matrix(scale: float):
    import pymupdf

    return pymupdf.Matrix(scale, scale)


# --- highlighting ----------------------------------------------------------------------


def _highlight(page, rects: list) -> None:
    """Draw highlighter-style marks (multiply blend: the text stays black) on the in-memory page."""
    try:
        annot = page.add_highlight_annot(rects)
        annot.set_colors(stroke=HIGHLIGHT_RGB)
        annot.update()
    except Exception:
        # Some protected PDFs refuse annotations; a translucent fill still shows the place.
        for rect in rects:
            page.draw_rect(rect, color=None, fill=HIGHLIGHT_RGB, fill_opacity=0.4, overlay=True)


# --- finding the quote ---------------------------------------------------------------


@dataclass(frozen=True)
class _Char:
    """One normalised character of the page text and where it is drawn."""

    page: int
    line: tuple[int, int]
    bbox: tuple[float, float, float, float]


def _locate(doc, index: int, quote: str | None) -> dict[int, list]:
    """{1-based page: rects} for the quote starting on page index (0-based) or running into the next."""
    text = (quote or "").strip(_QUOTE_MARKS)
    if not _normalise(text):
        return {}
    page = doc[index]
    exact = page.search_for(text)
    if exact:
        return {index + 1: exact}
    chars, letters = _page_chars(page, index + 1)
    if index + 1 < doc.page_count:
        more, more_letters = _page_chars(doc[index + 1], index + 2)
        chars, letters = chars + more, letters + more_letters
    spans = _exact_spans(letters, _normalise(text)) or _fuzzy_spans(letters, _normalise(text))
    return _rects(chars, spans)


def _normalise(text: str) -> str:
    """Letters and digits only, NFKC (ligatures, full-width), case-folded."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def _page_chars(page, number: int) -> tuple[list[_Char], str]:
    """Every letter/digit on the page in reading order, with its box, and the same as a string."""
    chars: list[_Char] = []
    letters: list[str] = []
    raw = page.get_text("rawdict")
    for block_no, block in enumerate(raw.get("blocks", [])):
        for line_no, line in enumerate(block.get("lines", [])):
            for span in line.get("spans", []):
                for ch in span.get("chars", []):
                    for letter in _normalise(ch["c"]):
                        chars.append(_Char(number, (block_no, line_no), tuple(ch["bbox"])))
                        letters.append(letter)
    return chars, "".join(letters)


def _exact_spans(haystack: str, needle: str) -> list[tuple[int, int]]:
    """Every occurrence of needle in haystack, as (start, end)."""
    spans, start = [], haystack.find(needle)
    while start != -1:
        spans.append((start, start + len(needle)))
        start = haystack.find(needle, start + 1)
    return spans


def _fuzzy_spans(haystack: str, needle: str) -> list[tuple[int, int]]:
    """The quote's longest pieces found in order, if they cover enough of it close together."""
    if not haystack or len(needle) < _MIN_PIECE:
        return []
    needle = needle[:_FUZZY_MAX]
    matcher = difflib.SequenceMatcher(None, needle, haystack, autojunk=False)
    blocks = [(b, b + size) for _, b, size in matcher.get_matching_blocks() if size >= _MIN_PIECE]
    if not blocks or sum(e - s for s, e in blocks) < _MIN_COVERAGE * len(needle):
        return []
    if blocks[-1][1] - blocks[0][0] > 1.5 * len(needle) + 20:
        return []  # pieces scattered over the page: not this quote
    return blocks


def _rects(chars: list[_Char], spans: list[tuple[int, int]]) -> dict[int, list]:
    """Merge the characters of each span into one rectangle per line, grouped by page."""
    import pymupdf

    found: dict[int, list] = {}
    for start, end in spans:
        current, key = None, None
        for char in chars[start:end]:
            if (char.page, char.line) != key:
                if current is not None:
                    found.setdefault(key[0], []).append(current)
                current, key = pymupdf.Rect(char.bbox), (char.page, char.line)
            else:
                current |= pymupdf.Rect(char.bbox)
        if current is not None:
            found.setdefault(key[0], []).append(current)
    return found

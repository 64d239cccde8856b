"""PDF pages to Blocks with pymupdf: one block per text paragraph, pages numbered from 1.

Headings come from the PDF's outline (bookmarks) only: font analysis would cost more than
the whole reading does. Pages without a text layer are OCR'd when Tesseract is installed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Callable

import pymupdf
import pymupdf.utils

from ..config import Settings
from ..documents import Block, Extraction
from ..errors import CorruptDocument, ExtractionTimeout, NoTextFound, PasswordRequired, WrongPassword
from . import ocr
from .guards import Deadline
from .mupdf_blocks import page_blocks
from .ocr_pages import ocr_pages

# MuPDF prints repair notes to stderr; Folio reports damage as warnings instead.
pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)

TEXT_FLAGS = pymupdf.TEXTFLAGS_TEXT & ~pymupdf.TEXT_PRESERVE_IMAGES
"""Text only: image blocks would make MuPDF touch (and maybe decode) every image."""
MAX_IMAGE_PIXELS = 100_000_000
"""An embedded image larger than this (10,000 x 10,000) is not rendered for OCR."""
SPARSE_TEXT = 200
"""A page with fewer characters than this, mostly covered by an image, is treated as scanned."""
SCANNED_COVERAGE = 0.5

Progress = Callable[[str, int, "int | None"], None]
Placed = tuple[Block, float]
"""A block and the top edge of its box on the page (points from the top)."""


def extract_pdf(data: bytes, name: str, *, password: str | None, settings: Settings,
                deadline: Deadline, progress: Progress) -> Extraction:
    """Read every page of a PDF; damaged pages become warnings, not failures."""
    doc = open_pdf(data, name, password)
    try:
        return _read_document(doc, name, settings, deadline, progress)
    finally:
        doc.close()


def open_pdf(data: bytes, name: str, password: str | None) -> pymupdf.Document:
    """Open and, when needed, unlock a PDF; library errors become DocumentErrors."""
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:
        raise CorruptDocument(
            name, "is damaged beyond repair and cannot be opened as a PDF.",
            "Open it in a PDF viewer and save or print it to a new PDF, then add that.",
        ) from exc
    if doc.needs_pass:
        _unlock(doc, name, password)
    return doc


def _unlock(doc: pymupdf.Document, name: str, password: str | None) -> None:
    if password is None:
        doc.close()
        raise PasswordRequired(name, "is password-protected.", "Give its password (the password box in the app, --password on the command line) and try again.")
    if not doc.authenticate(password):
        doc.close()
        raise WrongPassword(name, "did not open with the password given: it is wrong.", "Check the password (it is case-sensitive) and try again.")


def _read_document(doc, name, settings, deadline, progress) -> Extraction:
    recovered = recover_pages(doc, deadline) if _page_count(doc) == 0 else 0
    total = _page_count(doc)
    if total == 0:
        raise CorruptDocument(name, "has no pages that can be read (its page tree is damaged or the file is cut short).",
                              "Open it in a PDF viewer and save or print it to a new PDF, then add that.")
    headings = outline_by_page(doc)
    reader = _PageReader(doc, settings, deadline, progress)
    pages: list[tuple[list[Placed], float]] = []
    for index in range(total):
        deadline.check(f"page {index + 1} of {total}")
        progress("Reading page", index + 1, total)
        pages.append((reader.read(index), reader.page_height))
    reader.ocr(pages)
    has_text = any(placed for placed, _height in pages)  # outline titles alone do not make a document readable
    pages, running = drop_running_lines(pages)
    blocks: list[Block] = []
    for index, (placed, height) in enumerate(pages):
        placed = place_headings(placed, headings.get(index + 1, []), index + 1, height)
        blocks.extend(block for block, _top in placed)
    warnings = reader.warnings(doc, repaired_note=not recovered)
    if running:
        warnings.append(running)
    if recovered:
        found = "1 page was" if recovered == 1 else f"{recovered} pages were"
        warnings.insert(0, f"The PDF is incomplete or its page list is damaged: {found} recovered in file order, "
                           "so page numbers may differ from the printed ones and some pages may be missing.")
    if not has_text:
        raise NoTextFound(name, *reader.no_text_reason())
    return Extraction(format="pdf", blocks=blocks, pages=total, page_labels=page_labels(doc), warnings=warnings)


def _page_count(doc) -> int:
    """Number of pages; 0 when the page tree is too broken to count."""
    try:
        return doc.page_count
    except Exception:
        return 0


class _PageReader:
    """Reads pages one at a time and remembers what went wrong for the warnings."""

    def __init__(self, doc, settings: Settings, deadline: Deadline, progress: Progress):
        self.doc = doc
        self.deadline = deadline
        self.progress = progress
        self.settings = settings
        self.language = ocr.ocr_languages(settings.ocr_language) if settings.ocr else ""
        self.ocr_enabled = settings.ocr
        self.candidates: list[int] = []
        self.ocr_languages_used: list[str] = []
        self.pictures: list[int] = []
        self.unreadable: list[int] = []
        self.ocr_done: list[int] = []
        self.ocr_empty: list[int] = []
        self.no_text: list[int] = []
        self.blank: list[int] = []
        self.line_numbered: list[int] = []
        self.ocr_failed: list[int] = []
        self.too_big: list[tuple[int, str]] = []
        self.page_height = 0.0

    def read(self, index: int) -> list[Placed]:
        """The page's text blocks with their top edge; a page that looks scanned is noted for OCR."""
        number = index + 1
        try:
            page = self.doc.load_page(index)
            self.page_height = page.rect.height
            raw = page_blocks(page, TEXT_FLAGS)
        except Exception:
            self.unreadable.append(number)
            return []
        raw, stripped = strip_line_numbers(raw)
        if stripped:
            self.line_numbered.append(number)
        placed = _text_blocks(raw, number)
        if self._looks_scanned(page, placed):
            self._note_for_ocr(page, number)
        return placed

    def _looks_scanned(self, page, placed: list[Placed]) -> bool:
        """No text (or only a stamp of it) while images cover the page."""
        chars = sum(len(b.text) for b, _top in placed)
        if chars >= SPARSE_TEXT:
            return False
        try:
            images = page.get_images(full=True)
        except Exception:
            images = []
        if not images:
            if chars == 0:
                self.blank.append(page.number + 1)
            return False
        if chars == 0:
            return True
        if _oversized_image(page):  # keep the little text there is rather than touch a giant image
            return False
        return _image_coverage(page) >= SCANNED_COVERAGE

    def _note_for_ocr(self, page, number: int) -> None:
        """OCR comes after all pages are read: then Folio knows whether the document is a
        scan, which languages it is in, and can read several pages at once."""
        if not self.language:
            self.no_text.append(number)
            return
        oversized = _oversized_image(page)
        if oversized or not ocr.ocr_dpi(page.rect.width, page.rect.height):
            self.too_big.append((number, oversized or "the page itself"))
            return
        self.candidates.append(number)

    def ocr(self, pages: list[tuple[list[Placed], float]]) -> None:
        """OCR the pages noted for it; what it reads replaces their (stamp-sized) text layer."""
        if not self.candidates:
            return
        text_layer = self._text_layer_sample(pages)
        try:
            outcome = ocr_pages(self.doc, self.candidates, language=self.language, text_layer=text_layer,
                                total_pages=len(pages), settings=self.settings, deadline=self.deadline,
                                progress=self.progress)
        finally:
            # MuPDF's store keeps every image it decoded (for the look or for OCR) after its
            # document is closed, until 256 MB: a long-running Folio grew by 1.3 MB per map.
            pymupdf.TOOLS.store_shrink(100)
        for number, raw in outcome.blocks.items():
            blocks = _text_blocks(raw, number)
            if blocks:
                pages[number - 1] = (blocks, pages[number - 1][1])
        self.ocr_done, self.ocr_empty, self.ocr_failed = outcome.read, outcome.empty, outcome.failed
        self.pictures, self.ocr_languages_used = outcome.pictures, outcome.languages

    def _text_layer_sample(self, pages: list[tuple[list[Placed], float]]) -> str:
        """The start of the text layer of the pages not noted for OCR (evidence of the document's languages)."""
        noted, parts, size = set(self.candidates), [], 0
        for number, (placed, _height) in enumerate(pages, start=1):
            if number in noted:
                continue
            for block, _top in placed:
                parts.append(block.text)
                size += len(block.text)
            if size >= ocr.SAMPLE_CHARS:
                break
        return "\n".join(parts)

    def warnings(self, doc, repaired_note: bool = True) -> list[str]:
        out = []
        if self.unreadable:
            out.append(f"Could not read {_pages(self.unreadable)} (the file is damaged or incomplete); the other pages were kept.")
        elif repaired_note and getattr(doc, "is_repaired", False):
            out.append("The PDF was damaged and had to be repaired while opening; some text may be missing.")
        if self.ocr_done:
            used = " and ".join(self.ocr_languages_used) or self.language
            out.append(f"Read {_pages(self.ocr_done)} with OCR (Tesseract, {used}): there is no text layer. "
                       "OCR can misread characters, so check quotes from them against the page image.")
        if self.pictures:
            what = "it looks like a picture" if len(self.pictures) == 1 else "they look like pictures"
            out.append(f"Did not OCR {_pages(self.pictures)}: {what} (maps, photos, drawings) rather than text. "
                       "Set FOLIO_OCR_PICTURES=1 to OCR them anyway.")
        if self.ocr_empty:
            out.append(f"OCR found no readable text on {_pages(self.ocr_empty)} (pictures, maps or charts without running text, "
                       "or too faint); left out.")
        if self.ocr_failed:
            out.append(f"OCR failed on {_pages(self.ocr_failed)}; they were skipped.")
        if self.line_numbered:
            out.append(f"Left out the margin line numbers on {_pages(self.line_numbered)}.")
        for number, what in self.too_big:
            out.append(f"Did not OCR page {number}: {what} is too large to render safely.")
        scanned_skipped = [n for n in self.no_text if n not in self.ocr_empty]
        if scanned_skipped and not self.language:
            out.append(f"No text layer on {_pages(scanned_skipped)} (scanned?); skipped because {self._why_no_ocr()}")
        return out

    def _why_no_ocr(self) -> str:
        if not self.ocr_enabled:
            return "OCR is turned off (FOLIO_OCR=0)."
        return "Tesseract is not installed (Debian: apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim)."

    def no_text_reason(self) -> tuple[str, str]:
        if self.unreadable and len(self.unreadable) == self.doc.page_count:
            return ("has no page that could be read (the file is damaged).",
                    "Open it in a PDF viewer and save or print it to a new PDF, then add that.")
        if self.no_text and not self.language:
            return ("has no text layer (it looks scanned) and cannot be OCR'd: " + self._why_no_ocr(),
                    "Turn OCR on or install Tesseract, or add a PDF with a text layer.")
        if self.too_big:
            return ("has no text layer and its page images are too large to OCR safely.", "Add a PDF with a text layer instead.")
        if self.pictures and not self.ocr_done:
            return ("has no text layer, and its page images look like pictures (maps, photos, drawings) rather than scanned text.",
                    "Set FOLIO_OCR_PICTURES=1 to OCR them anyway, or add a version with a text layer.")
        if self.ocr_empty or self.ocr_failed:
            return ("has no text layer, and OCR found no readable text on its page images.",
                    "Check it is the right file, or add a clearer scan or a version with a text layer.")
        return ("has no text on any page (blank pages, or text drawn as shapes).",
                "Check it is the right file, or add the original document it was made from.")


MAX_RECOVERY_OBJECTS = 5_000_000


def recover_pages(doc, deadline: Deadline) -> int:
    """Rebuild a lost page tree from the page objects still in the file (a truncated PDF
    keeps its first pages but loses the tree at its end); returns how many pages were found."""
    try:
        catalog = doc.pdf_catalog()
        count = doc.xref_length()
        if catalog <= 0 or count > MAX_RECOVERY_OBJECTS:
            return 0
        pages = []
        for xref in range(1, count):
            if xref % 10_000 == 0:
                deadline.check("recovering pages")
            if doc.xref_get_key(xref, "Type") == ("name", "/Page"):
                pages.append(xref)
        if not pages:
            return 0
        tree = doc.get_new_xref()
        kids = " ".join(f"{xref} 0 R" for xref in pages)
        doc.update_object(tree, f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>")
        doc.xref_set_key(catalog, "Pages", f"{tree} 0 R")
        for xref in pages:
            doc.xref_set_key(xref, "Parent", f"{tree} 0 R")
        return _page_count(doc)
    except ExtractionTimeout:
        raise
    except Exception:  # recovery is a bonus; the caller refuses the file when it fails
        return 0


def _text_blocks(raw: list[tuple], number: int) -> list[Placed]:
    """pymupdf block tuples (x0, y0, x1, y1, text, no, type) to paragraph Blocks with their top edge."""
    out = []
    for x0, y0, x1, y1, text in merge_wrapped_lines([item for item in raw if item[6] == 0]):
        text = join_lines(text)
        if text:
            out.append((Block(text=text, page=number), y0))
    return out


def merge_wrapped_lines(items: list[tuple]) -> list[tuple]:
    """Join one-line blocks that continue a paragraph (double-spaced bills and pleadings put
    every line in its own block): the line before runs to the right margin, the next line
    starts no further right and follows within one and a half line heights."""
    right = _right_margin(items)
    out: list[list] = []
    for item in items:
        x0, y0, x1, y1, text = item[:5]
        if out and right and _continues(out[-1], (x0, y0, x1, y1, text), right):
            last = out[-1]
            last[2], last[3], last[4] = max(last[2], x1), y1, last[4].rstrip("\n") + "\n" + text
            last[5], last[6] = x0, x1
            continue
        # + left and right edge of the last line, and whether this is a chain of one-line blocks
        out.append([x0, y0, x1, y1, text, x0, x1, _one_line(text)])
    return [tuple(item[:5]) for item in out]


def _right_margin(items: list[tuple]) -> float:
    """The most common right edge of one-line blocks (justified text ends there), or 0."""
    edges = Counter(round(item[2] / 4) for item in items if _one_line(item[4]))
    if not edges:
        return 0.0
    edge, count = edges.most_common(1)[0]
    return edge * 4.0 if count >= 3 else 0.0


def _one_line(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and "\n" not in stripped


def _continues(last: list, item: tuple, right: float) -> bool:
    x0, y0, x1, y1, text = item
    if not last[7] or not _one_line(text):
        return False
    height = y1 - y0
    gap = y0 - last[3]
    full = last[6] >= right - 12
    return full and x0 <= last[5] + 3 and 0 <= gap <= 1.5 * max(height, 1.0)


HEADER_BAND = 0.2
"""Running headers start in the top fifth of the page ..."""
FOOTER_BAND = 0.88
"""... and footers in its bottom eighth."""
MARGIN_BLOCKS = 2
"""How many blocks at each edge of a page can be running lines."""
RUNNING_LINE_CHARS = 120
RUNNING_SHARE = 0.05
"""A line is running when it recurs at a page edge on this share of the pages (and on 3 or more)."""
MIN_RUNNING_PAGES = 3
PAGE_LIKE_SHARE = 0.8
_PAGE_NUMBER = re.compile(r"^(\d{1,6}|[ivxl]{1,6}|[IVXL]{1,6})(?:\s+|$)|\s+(\d{1,6}|[ivxl]{1,6}|[IVXL]{1,6})$")
_ROMAN = re.compile(r"x{0,3}(?:ix|iv|v?i{0,3})|xl")
MAX_ROMAN = 40
"""Front matter is numbered i, ii, ... up to about this; a longer 'numeral' is a word."""
BANNER_SHARE = 0.5
"""A banner (a court's filing stamp) is at a page edge on at least half the pages (and on 2 or more) ..."""
MIN_BANNER_NUMBERS = 3
"""... carries at least three numbers (case, document, page, date: "Article 7" atop pages is a
heading) and one of them counts the pages (a ledger's first rows on each page do not)."""
_NUMBER_RUN = re.compile(r"\d+")


def drop_running_lines(pages: list[tuple[list[Placed], float]]) -> tuple[list[tuple[list[Placed], float]], str]:
    """Leave out running headers and footers ("2 DOBBS v. JACKSON ...", "Opinion of the Court",
    lone page numbers): short blocks at a page edge that recur, up to their page number, on
    many pages; and per-page banners such as a court's filing stamp ("Case: 21-50498
    Document: 00516242060 Page: 1 Date Filed: 03/17/2022"): a line at a page edge on most
    pages that differs from page to page only in its numbers, one of which counts the pages.
    Left in, they sit in the middle of every sentence that runs on over a page break (a stamp
    added to the finished file is even read after the page's last paragraph), so a quote of
    that sentence could never be found. Returns the pages and a warning."""
    marks = [_edge_lines(placed, height) for placed, height in pages]
    needed = max(MIN_RUNNING_PAGES, math.ceil(RUNNING_SHARE * len(pages)))
    running = _recurring(marks, needed)
    banners = _banners([_banner_marks(placed, height) for placed, height in pages])
    if not running and not banners:
        return pages, ""
    out, dropped, examples, stamped = [], set(), Counter(), []
    for number, ((placed, height), page_marks) in enumerate(zip(pages, marks), start=1):
        drop = {index for index, key, _value in page_marks if key in running}
        banner = banners.get(number, set()) - drop  # a running header with a page number is said as one
        if banner:
            stamped.append((number, " ".join(placed[min(banner)][0].text.split())))
        if drop:
            dropped.add(number)
            examples.update(split_page_number(placed[i][0].text)[0] for i in drop)
        out.append(([item for i, item in enumerate(placed) if i not in drop | banner], height))
    if not any(placed for placed, _height in out):
        return pages, ""  # never leave a document with nothing but what was dropped
    said = []
    if dropped:
        example = next((text for text, _n in examples.most_common() if text), "")
        shown = f" such as “{example}”" if example else " (page numbers)"
        said.append(f"Left out the running headers and footers{shown} on {_pages(sorted(dropped))}.")
    if stamped:
        said.append(f"Left out the per-page banner (a filing stamp such as “{stamped[0][1]}”: the same line on most pages "
                    f"but for its numbers) on {_pages([n for n, _text in stamped])}.")
    return out, " ".join(said)


def _recurring(marks: list[list[tuple]], needed: int) -> set[str]:
    """Keys of edge lines found on at least `needed` pages whose numbers move like page numbers."""
    seen: dict[str, list[tuple[int, int | None]]] = {}
    for number, page_marks in enumerate(marks, start=1):
        for _index, key, value in page_marks:
            seen.setdefault(key, []).append((number, value))
    return {key for key, hits in seen.items() if len({n for n, _v in hits}) >= needed and _counts_up(hits)}


def _banner_marks(placed: list[Placed], height: float) -> list[tuple[int, str, tuple[int, ...]]]:
    """(index, shape, numbers) of the edge lines with MIN_BANNER_NUMBERS numbers or more; the
    shape is the casefolded line with every number written '#'."""
    out = []
    for i in _edge_indices(placed, height):
        text = " ".join(placed[i][0].text.split()).casefold()
        numbers = tuple(int(n) for n in _NUMBER_RUN.findall(text))
        if len(numbers) >= MIN_BANNER_NUMBERS:
            out.append((i, _NUMBER_RUN.sub("#", text), numbers))
    return out


def _banners(marks: list[list[tuple]]) -> dict[int, set[int]]:
    """Page number -> indices of its banner lines: shapes found once on each of at least half
    the pages, with a number that grows by one from page to page."""
    seen: dict[str, list[tuple[int, int, tuple[int, ...]]]] = {}
    for number, page_marks in enumerate(marks, start=1):
        for index, shape, numbers in page_marks:
            seen.setdefault(shape, []).append((number, index, numbers))
    needed = max(2, math.ceil(BANNER_SHARE * len(marks)))
    out: dict[int, set[int]] = {}
    for hits in seen.values():
        pages = [number for number, _index, _numbers in hits]
        if len(hits) >= needed and len(set(pages)) == len(pages) and _counts_pages(hits):
            for number, index, _numbers in hits:
                out.setdefault(number, set()).add(index)
    return out


def _counts_pages(hits: list[tuple[int, int, tuple[int, ...]]]) -> bool:
    """Whether one of the numbers grows with the pages between most neighbouring hits (a
    document filed in parts may start again at 1)."""
    pairs = list(zip(hits, hits[1:]))
    for k in range(len(hits[0][2])):
        steps = sum(b[2][k] - a[2][k] == b[0] - a[0] for a, b in pairs)
        if steps >= PAGE_LIKE_SHARE * len(pairs):
            return True
    return False


def _edge_lines(placed: list[Placed], height: float) -> list[tuple[int, str, int | None]]:
    """(index, key, page number) of the short blocks at the top and bottom edges of a page.

    The key is the casefolded text without a leading or trailing page number."""
    out = []
    for i in _edge_indices(placed, height):
        text = placed[i][0].text
        rest, value = split_page_number(text)
        key = " ".join(rest.split()).casefold()
        out.append((i, "#" + key if value is not None else key, value))
    return out


def _edge_indices(placed: list[Placed], height: float) -> list[int]:
    """Indices of the short blocks at the top and bottom edges of a page."""
    order = sorted(range(len(placed)), key=lambda i: placed[i][1])
    tops = [i for i in order[:MARGIN_BLOCKS] if placed[i][1] <= HEADER_BAND * height]
    bottoms = [i for i in order[-MARGIN_BLOCKS:] if placed[i][1] >= FOOTER_BAND * height and i not in tops]
    # Counted from the edge inwards, a long block is the body: nothing beyond it is a header.
    return _until_long(placed, tops) + _until_long(placed, bottoms[::-1])


def _until_long(placed: list[Placed], indices: list[int]) -> list[int]:
    for k, i in enumerate(indices):
        if len(placed[i][0].text) > RUNNING_LINE_CHARS:
            return indices[:k]
    return indices


def split_page_number(text: str) -> tuple[str, int | None]:
    """A line without the page number it starts or ends with ('2 DOBBS v. JACKSON',
    'INTRODUCTION 5', 'iv'), and that number; (text, None) when it has none."""
    match = _PAGE_NUMBER.search(text)
    if not match:
        return text.strip(), None
    token = match.group(1) or match.group(2)
    value = int(token) if token.isdigit() else _roman(token.lower())
    if value is None:
        return text.strip(), None
    return (text[: match.start()] + " " + text[match.end():]).strip(), value


def _roman(token: str) -> int | None:
    if not token or not _ROMAN.fullmatch(token):
        return None
    values = {"i": 1, "v": 5, "x": 10, "l": 50}
    total = sum(-values[a] if values[a] < values[b] else values[a] for a, b in zip(token, token[1:])) + values[token[-1]]
    return total if 0 < total <= MAX_ROMAN else None


def _counts_up(hits: list[tuple[int, int | None]]) -> bool:
    """Whether the numbers the line carries behave like page numbers (from one hit to the
    next they grow by as many pages as lie between, or start again lower: a new opinion or
    part) or never change (a year in a report's header). Headings such as "Article 7",
    "Article 9" atop several pages are kept: their numbers do neither."""
    if len({n for n, _v in hits}) != len(hits):
        return False  # twice on one page: content, not a running line
    numbered = [(n, v) for n, v in hits if v is not None]
    pairs = list(zip(numbered, numbered[1:]))
    like_pages = sum(v2 - v1 in (0, n2 - n1) or v2 < v1 for (n1, v1), (n2, v2) in pairs)
    return like_pages >= PAGE_LIKE_SHARE * len(pairs)  # a book may leave out its blank pages


MIN_NUMBERED_LINES = 10
_BARE_NUMBER = re.compile(r"^[ \t]*\d{1,2}[ \t]*$", re.M)


def strip_line_numbers(raw: list[tuple]) -> tuple[list[tuple], bool]:
    """Remove margin line numbers (pleading paper, bills: 1, 2, 3 ... down the page).

    They would split sentences ("single employer 1 with such") so quotes could not be
    found. Only a run of at least MIN_NUMBERED_LINES bare numbers counting up from 1, in
    page order, is taken for line numbering; returns the blocks and whether any went."""
    page_text = "\n".join(item[4] for item in raw if item[6] == 0)
    if len(_BARE_NUMBER.findall(page_text)) < MIN_NUMBERED_LINES:  # most pages: one cheap scan
        return raw, False
    found = _numbered_lines(raw)
    values = [value for _b, _l, value in found]
    expected = 1
    for value in values:
        if value == expected:
            expected += 1
    run = expected - 1
    if run < MIN_NUMBERED_LINES or run < 0.8 * len(values):
        return raw, False
    drop: dict[int, set[int]] = {}
    for block, line, _value in found:
        drop.setdefault(block, set()).add(line)
    out = []
    for i, item in enumerate(raw):
        if i in drop:
            lines = [l for j, l in enumerate(_lines(item[4])) if j not in drop[i]]
            item = (*item[:4], "\n".join(lines), *item[5:])
        out.append(item)
    return out, True


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def _numbered_lines(raw: list[tuple]) -> list[tuple[int, int, int]]:
    """(block, line, value) of bare numbers 1-99 that form a whole block or open or close one."""
    found = []
    for b, item in enumerate(raw):
        if item[6] != 0:
            continue
        lines = _lines(item[4])
        bare = [j for j, line in enumerate(lines) if line.strip().isdigit() and 0 < int(line.strip()) < 100]
        if bare and len(bare) == len(lines):
            picks = bare
        else:
            picks = [j for j in bare if j in (0, len(lines) - 1)]
        found.extend((b, j, int(lines[j].strip())) for j in picks)
    return found


_HYPHEN_WRAP = re.compile(r"(?<=[a-zß-öø-ÿ])[-\u00ad][ \t\u00a0]*\n[ \t\u00a0\n]*(?=[a-zß-öø-ÿ])")
_SOFT_HYPHEN = re.compile(r"\u00ad[ \t\u00a0\n]*")


def join_lines(text: str) -> str:
    """One paragraph from a block's lines: wrapped lines joined by a space, words hyphenated
    at a line end joined again ('in-\\ncome' -> 'income'; in typeset text a line-end hyphen
    is far more often a syllable break than a compound's own hyphen)."""
    if "-" in text or "\u00ad" in text:  # the common case skips two scans
        text = _SOFT_HYPHEN.sub("", _HYPHEN_WRAP.sub("", text))
    # str.split() also folds layout spaces (U+2002, U+3000 ...) into one; 4x faster than a regex
    return " ".join(text.split())


def _image_coverage(page) -> float:
    """Share of the page area covered by images (bounding boxes, overlaps counted twice)."""
    try:
        infos = page.get_image_info()
    except Exception:
        return 0.0
    area = abs(page.rect) or 1.0
    covered = sum(abs(pymupdf.Rect(info["bbox"]) & page.rect) for info in infos)
    return covered / area


def _oversized_image(page) -> str:
    """Describe the first image too large to decode safely, else ''."""
    try:
        images = page.get_images(full=True)
    except Exception:
        return ""
    for image in images:
        width, height = image[2], image[3]
        if width * height > MAX_IMAGE_PIXELS:
            return f"an image of {width:,} x {height:,} pixels"
    return ""


def page_labels(doc) -> list[str] | None:
    """Printed page label per page where the PDF defines labels, else None."""
    try:
        rules = doc._get_page_labels()
    except Exception:
        return None
    if not rules:
        return None
    rules = sorted(rules)
    labels = []
    for index in range(doc.page_count):
        try:
            label = pymupdf.utils.get_label_pno(index, rules) if rules[0][0] <= index else ""
        except Exception:
            label = ""
        labels.append(label or str(index + 1))
    return labels


def outline_by_page(doc) -> dict[int, list[tuple[int, str, float | None]]]:
    """Outline entries grouped by their 1-based page: (level, title, y or None)."""
    try:
        toc = doc.get_toc(simple=False)
    except Exception:
        return {}
    out: dict[int, list] = {}
    for entry in toc:
        level, title, page = entry[0], " ".join(str(entry[1]).split()), entry[2]
        if page < 1 or not title:
            continue
        dest = entry[3] if len(entry) > 3 and isinstance(entry[3], dict) else {}
        point = dest.get("to")
        # (0, 0) is what MuPDF reports for destinations without a position.
        known = point is not None and dest.get("kind") == pymupdf.LINK_GOTO and (point.x or point.y)
        y = float(point.y) if known else None
        out.setdefault(page, []).append((min(max(level, 1), 6), title, y))
    return out


def place_headings(placed: list[Placed], entries: list, number: int, height: float) -> list[Placed]:
    """Mark the blocks that carry an outline title as headings; titles not printed are inserted
    where the outline entry points."""
    if not entries:
        return placed
    out = list(placed)
    for level, title, y in entries:
        found = _find_title(out, title)
        if found is None:
            top = height - y if y is not None and 0 < y <= height else None  # outline targets are bottom-up
            out.insert(_insert_at(out, top), (Block(text=title, page=number, kind="heading", level=level), top or 0.0))
            continue
        position, length = found
        block, top = out[position]
        out[position:position + 1] = [(b, top) for b in _split_heading(block, length, level)]
    return out


_NUMBERING = re.compile(r"(?:chapter|section|part|article|appendix|annex|§|art\.)?\s*[\divxlcdm.\-–:)(]*\s*")


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _find_title(placed: list[Placed], title: str) -> tuple[int, int] | None:
    """(index, normalised length of the heading) of the block that opens with the title,
    possibly after its number ('1.1 Background', 'Chapter 2 Methods')."""
    wanted = _norm(title)
    for i, (block, _top) in enumerate(placed):
        if block.kind == "heading":
            continue
        text = _norm(block.text[: len(title) + 80])
        at = text.find(wanted)
        if at < 0 or at > 24 or not _NUMBERING.fullmatch(text[:at]):
            continue
        end = at + len(wanted)
        if end == len(text) or not text[end].isalnum():
            return i, end
    return None


def _insert_at(placed: list[Placed], top: float | None) -> int:
    """Before the first block at or below `top`; without a position, after the page's leading headings."""
    if top is not None:
        for i, (block, block_top) in enumerate(placed):
            if block_top >= top - 1 and not (block.kind == "heading" and abs(block_top - top) < 1):
                return i
        return len(placed)
    i = 0
    while i < len(placed) and placed[i][0].kind == "heading":
        i += 1
    return i


def _split_heading(block: Block, norm_len: int, level: int) -> list[Block]:
    """The block's leading title becomes a heading block; the rest stays a paragraph."""
    cut = _prefix_length(block.text, norm_len)
    head, rest = block.text[:cut].rstrip(), block.text[cut:].lstrip()
    out = [Block(text=head, page=block.page, kind="heading", level=level)]
    if rest:
        out.append(Block(text=rest, page=block.page, kind=block.kind, level=block.level))
    return out


def _prefix_length(text: str, norm_len: int) -> int:
    """Length of the shortest prefix of text whose normalised form has norm_len characters."""
    for cut in range(norm_len, len(text) + 1):
        if len(_norm(text[:cut])) >= norm_len:
            return cut
    return len(text)


MAX_RANGES = 8
"""A page list longer than this many ranges is summarised ('709 pages from 2 to 727')."""


def _pages(numbers: list[int]) -> str:
    """'page 3', 'pages 1-2, 5'."""
    ranges = []
    for n in sorted(set(numbers)):
        if ranges and ranges[-1][1] == n - 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges]
    word = "page" if len(set(numbers)) == 1 else "pages"
    if len(parts) > MAX_RANGES:  # a warning stays one readable line
        return f"{len(set(numbers))} pages from {ranges[0][0]} to {ranges[-1][1]}"
    return f"{word} {', '.join(parts)}"

"""OCR of a PDF's pages without a text layer: which pages pay, in which languages, in parallel.

    outcome = ocr_pages(doc, [29, 30], language="eng+chi_sim", text_layer=text, total_pages=30,
                        settings=settings, deadline=deadline, progress=progress)
    outcome.blocks[29], outcome.read, outcome.empty, outcome.failed, outcome.pictures

Which pages: in a document that mostly has a text layer, an image-only page is more often a
map, a photo or a signature than a scan; each one gets a cheap look first (ocr_look.py) and
pictures are left out, named in a warning (FOLIO_OCR_PICTURES=1 reads them anyway). A
mostly scanned document has every such page read.

Which languages: of the configured ones (FOLIO_OCR_LANGUAGE), those whose script the
document is written in, judged from the text layer of its other pages, else from the PDF's
/Lang, else from the first page OCR'd with all of them. A page read in fewer languages
that comes back with poor confidence is read again with all of them, and the better
reading kept: a Chinese exhibit in an English filing is still read as Chinese.

In parallel: ocr_engine.py runs one Tesseract process per core; the document's deadline is
checked while waiting, and any way out of here (deadline, a cancel raised by the progress
callback, an error) kills the processes still running.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import regex

from ..config import Settings
from . import ocr, ocr_engine, ocr_look
from .guards import Deadline

MOSTLY_SCANNED = 0.5
"""From this share of image-only pages on, a document is a scan: every such page is read."""
MIN_EVIDENCE_LETTERS = 40
"""Letters the text layer needs before its scripts decide the OCR languages (a wrong guess
costs one more reading of a page, not its text)."""
MIN_PROBE_LETTERS = 50
POOR_CONFIDENCE = 60
"""Tesseract's mean word confidence below which a reading in fewer languages is redone with all."""
WAIT_STEP = 1.0
_LETTER = regex.compile(r"\p{L}")


@dataclass
class OcrOutcome:
    blocks: dict[int, list[tuple]] = field(default_factory=dict)
    """Page number -> pymupdf-style text blocks read from its image (pages in `read` only)."""
    read: list[int] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)
    """OCR found no readable text (a picture, a blank or too faint a page)."""
    failed: list[int] = field(default_factory=list)
    pictures: list[int] = field(default_factory=list)
    """Not OCR'd: the page image looks like a picture, not text."""
    languages: list[str] = field(default_factory=list)
    """The language specs the pages in `read` were read with, in order of first use."""


def ocr_pages(doc, numbers: list[int], *, language: str, text_layer: str, total_pages: int,
              settings: Settings, deadline: Deadline, progress: Callable) -> OcrOutcome:
    """OCR the pages `numbers` (from 1) of `doc` with Tesseract in `language` (installed, non-empty)."""
    outcome = OcrOutcome()
    if not settings.ocr_pictures and len(numbers) < MOSTLY_SCANNED * total_pages:
        numbers = _without_pictures(doc, numbers, outcome, deadline)
    if numbers:
        _Run(doc, numbers, language, _document_languages(doc, language, text_layer), outcome,
             deadline, progress).run(ocr_engine.open_engine(settings.ocr_workers))
    return outcome


def _without_pictures(doc, numbers: list[int], outcome: OcrOutcome, deadline: Deadline) -> list[int]:
    kept = []
    for number in numbers:
        deadline.check(f"page {number}")
        try:
            text_like = ocr_look.looks_like_text(doc.load_page(number - 1))
        except Exception:  # cannot look: read it, as before
            text_like = True
        (kept if text_like else outcome.pictures).append(number)
    return kept


def _document_languages(doc, language: str, text_layer: str) -> str | None:
    """The configured languages the document's own evidence points to; None: OCR will tell."""
    if "+" not in language:
        return language
    scripts = {script for lang in language.split("+") for script in ocr.LANGUAGE_SCRIPTS.get(lang, ())}
    if len(_LETTER.findall(text_layer[: ocr.SAMPLE_CHARS])) >= MIN_EVIDENCE_LETTERS:
        return ocr.languages_for(language, ocr.scripts_in(text_layer, scripts))
    tagged = ocr.scripts_of_tag(_pdf_language_tag(doc))
    return ocr.languages_for(language, tagged) if tagged else None


def _pdf_language_tag(doc) -> str:
    """The PDF's declared natural language (/Lang in its catalog), or ''."""
    try:
        kind, value = doc.xref_get_key(doc.pdf_catalog(), "Lang")
    except Exception:
        return ""
    return value.strip("()") if kind == "string" else ""


class _Run:
    """One document's OCR: keeps the engine's processes busy, decides the languages on the
    way, and redoes poor readings in all languages."""

    def __init__(self, doc, numbers, language, chosen, outcome, deadline, progress):
        self.doc = doc
        self.total = len(numbers)
        self.language = language
        self.chosen = chosen
        self.outcome = outcome
        self.deadline = deadline
        self.progress = progress
        self.pending: deque[tuple[int, str | None]] = deque((number, None) for number in numbers)
        self.first_try: dict[int, ocr_engine.OcrDone] = {}
        self.completed = 0

    def run(self, engine) -> None:
        outstanding = 0
        self.progress("OCR page", 0, self.total)
        try:
            while self.pending or outstanding:
                # No page is rendered ahead while the languages are unknown: it would start in all of them.
                engine.prefetch = ocr_engine.PREFETCH if self.chosen else 0
                while self.pending and engine.free:
                    number, forced = self.pending.popleft()
                    self.deadline.check(f"OCR of page {number}")
                    engine.submit(self._job(number, forced or self._languages_now))
                    outstanding += 1
                self.deadline.check(f"OCR ({self.completed} of {self.total} pages done)")
                for done in engine.wait(min(max(self.deadline.remaining(), 0.0), WAIT_STEP)):
                    outstanding -= 1
                    self._finish(done)
        finally:
            engine.close()

    def _languages_now(self) -> str:
        """The languages for a page whose process starts now: all until the document's are known."""
        return self.chosen or self.language

    def _job(self, number: int, language) -> ocr_engine.OcrJob:
        page = self.doc.load_page(number - 1)
        return ocr_engine.OcrJob(number, page, language, ocr.ocr_dpi(page.rect.width, page.rect.height))

    def _finish(self, done: ocr_engine.OcrDone) -> None:
        text = "\n".join(block[4] for block in done.blocks)
        if self.chosen is None and not done.error and len(_LETTER.findall(text)) >= MIN_PROBE_LETTERS:
            scripts = {s for lang in self.language.split("+") for s in ocr.LANGUAGE_SCRIPTS.get(lang, ())}
            self.chosen = ocr.languages_for(self.language, ocr.scripts_in(text, scripts))
        if done.language != self.language and done.number not in self.first_try and _poor(done, text):
            self.first_try[done.number] = done
            self.pending.appendleft((done.number, self.language))
            return
        if done.number in self.first_try:
            done = _better(self.first_try.pop(done.number), done)
        self._record(done)
        self.completed += 1
        self.progress("OCR page", self.completed, self.total)

    def _record(self, done: ocr_engine.OcrDone) -> None:
        outcome = self.outcome
        if done.error:
            outcome.failed.append(done.number)
            return
        text = "\n".join(block[4] for block in done.blocks)
        if not text.strip() or ocr.readable_share(text) < ocr.MIN_READABLE_SHARE:
            outcome.empty.append(done.number)  # scraps read off a map, chart or photo: noise no one can quote
            return
        outcome.read.append(done.number)
        outcome.blocks[done.number] = done.blocks
        if done.language not in outcome.languages:
            outcome.languages.append(done.language)


def _poor(done: ocr_engine.OcrDone, text: str) -> bool:
    """A reading that more languages might improve (nothing read at all is not: a blank page)."""
    if done.error or not text.strip():
        return False
    if done.confidence is not None:
        return done.confidence < POOR_CONFIDENCE
    return ocr.readable_share(text) < ocr.MIN_READABLE_SHARE


def _better(first: ocr_engine.OcrDone, second: ocr_engine.OcrDone) -> ocr_engine.OcrDone:
    if first.error or second.error:
        return second if first.error else first
    if first.confidence is not None and second.confidence is not None:
        return second if second.confidence > first.confidence else first
    share = [ocr.readable_share("\n".join(b[4] for b in d.blocks)) for d in (first, second)]
    return second if share[1] > share[0] else first

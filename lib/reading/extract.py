"""Read one file into an Extraction, whatever its format; only DocumentErrors escape.

    extraction = extract(data, "judgment.pdf")                      # pages, labels, blocks
    extract(data, "locked.pdf", password="s3cret")
    extract(data, "book.epub", progress=lambda stage, done, total: ...)

Order: size limit, format by bytes, zip-bomb and memory check (DOCX/EPUB, from metadata
only), the format's extractor under a per-document deadline, then a refusal if the text
would not fit in memory or if no text was found.
"""

from __future__ import annotations

import contextlib
import re
from typing import Callable

from ..config import Settings, load_settings
from ..documents import Block, Extraction
from ..errors import CorruptDocument, DocumentError, NoTextFound
from .guards import Deadline, check_archive, check_size, check_text_size
from .mupdf_lock import MUPDF_LOCK
from .sniff import detect_format

Progress = Callable[[str, int, "int | None"], None]

FORMAT_NAMES = {"document": "document", "pdf": "PDF", "docx": "DOCX", "epub": "EPUB", "html": "HTML", "text": "text file", "markdown": "Markdown file"}
# C0/C1 controls (except tab and newline), lone surrogates and BOMs break storage, JSON and tokenizers.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f\ufeff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _extractor(fmt: str) -> Callable[..., Extraction]:
    """Import lazily: a text file should not pay for pymupdf or python-docx."""
    if fmt == "pdf":
        from .pdf import extract_pdf
        return extract_pdf
    if fmt == "docx":
        from .docx import extract_docx
        return extract_docx
    if fmt in ("epub", "html"):
        from .markup import extract_epub, extract_html
        return extract_epub if fmt == "epub" else extract_html
    from .text import extract_markdown, extract_text
    return extract_markdown if fmt == "markdown" else extract_text


def _lock_for(fmt: str):
    """PDF and EPUB go through PyMuPDF, which must not run in two threads at once."""
    return MUPDF_LOCK if fmt in ("pdf", "epub") else contextlib.nullcontext()


def extract(data: bytes, name: str, *, password: str | None = None, settings: Settings | None = None,
            progress: Progress | None = None, deadline: Deadline | None = None) -> Extraction:
    """Extraction of one file, or a DocumentError naming the file, the problem and the fix.

    `deadline` is the document's time limit when the caller started it earlier (ingestion
    does, so one limit covers reading, passages and counting); else it starts here."""
    settings = settings or load_settings()
    deadline = deadline or Deadline(settings.doc_timeout, name)
    report = _guarded(progress) if progress else _no_progress
    check_size(data, name, settings)
    fmt = "document"
    try:
        fmt = detect_format(data, name)
        if fmt in ("docx", "epub"):
            check_archive(data, name, settings)
        with _lock_for(fmt):
            extraction = _extractor(fmt)(data, name, password=password, settings=settings, deadline=deadline,
                                         progress=report)
    except DocumentError:
        raise
    except _CallerError as wrapped:  # the caller's own progress callback failed: not the file's fault
        raise wrapped.original from None
    except MemoryError as exc:
        raise CorruptDocument(name, f"needs more memory to read than this computer has (as a {FORMAT_NAMES[fmt]}).",
                              "Split it into smaller files and add those.") from exc
    except RecursionError as exc:
        raise CorruptDocument(name, f"is nested too deeply to read as a {FORMAT_NAMES[fmt]} (damaged or hostile).",
                              "Open and re-save it, then add it again.") from exc
    except Exception as exc:  # the boundary: any library failure becomes one clear line
        raise CorruptDocument(name, f"could not be read as a {FORMAT_NAMES[fmt]}: it is damaged ({_reason(exc)}).",
                              "Open and re-save it (or print it to PDF), then add it again.") from exc
    extraction.blocks = clean_blocks(extraction.blocks)
    check_text_size(extraction.blocks, name)
    if not extraction.blocks:
        raise NoTextFound(name, f"contains no text that can be read (an empty {FORMAT_NAMES[fmt]}, or only images).",
                          "Check it is the right file, or add a version that has text.")
    return extraction


def clean_text(text: str) -> str:
    """Newlines normalised, control characters dropped, lone surrogates replaced."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    return _SURROGATE.sub("\ufffd", text)


def clean_blocks(blocks: list[Block]) -> list[Block]:
    """Blocks with clean text; empty ones dropped."""
    out = []
    for block in blocks:
        if block.text.isprintable() and block.text == block.text.strip():
            out.append(block)  # the common case: nothing to clean (isprintable is one C pass)
            continue
        text = clean_text(block.text).strip()
        if not text:
            continue
        if text != block.text:
            block = Block(text=text, page=block.page, kind=block.kind, level=block.level)
        out.append(block)
    return out


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())[:160]
    return text or type(exc).__name__


def _no_progress(stage: str, done: int, total: int | None) -> None:
    return None


class _CallerError(Exception):
    """Carries an exception raised by the caller's progress callback through the boundary."""

    def __init__(self, original: Exception):
        super().__init__(str(original))
        self.original = original


def _guarded(progress: Progress) -> Progress:
    def report(stage: str, done: int, total: int | None) -> None:
        try:
            progress(stage, done, total)
        except Exception as exc:
            raise _CallerError(exc) from exc

    return report

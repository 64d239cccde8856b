"""Whole files in, Documents out: extraction, passages and the exact token count.

    document = ingest_bytes(data, "judgment.pdf")            # or a DocumentError
    report = ingest_paths(["a.pdf", "missing.docx"])         # never raises for one bad file
    report.documents, report.errors                          # [Document], [(name, message)]

Only Folio errors leave this module: anything else a library raises is translated here,
at the boundary, into a DocumentError that names the file and says what to do.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..config import Settings, load_settings
from ..documents import Document
from ..errors import CorruptDocument, DocumentError, FileTooLarge, FolioError, NoTextFound
from .passages import assign_unique_ids, cut_document, document_code
from .tokens import counter_warning, get_counter

Progress = Callable[[str, int, "int | None"], None]


@dataclass
class IngestReport:
    """What a batch of files gave: the documents read and one message per file that was not."""

    documents: list[Document] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def ingest_bytes(
    data: bytes,
    name: str,
    *,
    password: str | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> Document:
    """One file's bytes as a Document with passages and token counts, or a DocumentError."""
    settings = settings or load_settings()
    try:
        return _ingest(data, name, password, settings, progress)
    except FolioError:
        raise
    except MemoryError as exc:
        raise CorruptDocument(name, "needs more memory to read than this computer has.", "Split it into smaller files and add those.") from exc
    except Exception as exc:  # the boundary: no library traceback reaches a user
        raise CorruptDocument(
            name, f"could not be read: {type(exc).__name__}: {_short(exc)}.", "Open and re-save it (or print it to PDF), then add it again."
        ) from exc


def _ingest(data: bytes, name: str, password, settings: Settings, progress) -> Document:
    from .extract import extract  # imported late: pymupdf is only needed once a file is read

    sha256 = hashlib.sha256(data).hexdigest()
    extraction = extract(data, name, password=password, settings=settings, progress=progress)
    counter = get_counter()
    if progress:
        progress("Counting tokens", 0, None)
    cutting = cut_document(extraction, document_code(sha256), counter)
    if not cutting.text.strip():
        raise NoTextFound(name, "contains no text that can be read.", "Check it is the right file, or add a version that has text.")
    warnings = list(extraction.warnings)
    note = counter_warning(counter)
    if note:
        warnings.append(note)
    return Document(
        name=name,
        sha256=sha256,
        format=extraction.format,
        pages=extraction.pages,
        text=cutting.text,
        passages=cutting.passages,
        tokens=cutting.tokens,
        counter=counter.kind,
        warnings=warnings,
        page_labels=extraction.page_labels,
    )


def ingest_paths(
    paths: Iterable[str | os.PathLike],
    *,
    password: str | None = None,
    settings: Settings | None = None,
    progress: Callable[[str, str, int, "int | None"], None] | None = None,
) -> IngestReport:
    """Read every file; one that cannot be read becomes an error line, the others go on.

    `progress(name, stage, done, total)` reports per file. Passage IDs are made unique
    across the whole batch.
    """
    settings = settings or load_settings()
    report = IngestReport()
    for path in paths:
        label = str(path)
        try:
            data = read_file(path, settings)
            per_file = (lambda stage, done, total, _n=label: progress(_n, stage, done, total)) if progress else None
            report.documents.append(ingest_bytes(data, Path(path).name, password=password, settings=settings, progress=per_file))
        except DocumentError as exc:
            report.errors.append((label, _with_path(exc, label)))
        except FolioError as exc:
            report.errors.append((label, f"{label}: {exc}"))
    report.documents = assign_unique_ids(report.documents)
    return report


def read_file(path: str | os.PathLike, settings: Settings) -> bytes:
    """A file's bytes, or a DocumentError saying why it cannot be read (checked before reading)."""
    label = str(path)
    try:
        info = os.stat(path)
        if Path(path).is_dir():
            raise DocumentError(label, "is a folder, not a file.", "Give the files inside it instead (for example folder/*.pdf).")
        if info.st_size > settings.max_file_bytes:
            raise FileTooLarge(
                label,
                f"is {info.st_size / 1e6:,.0f} MB, over the {settings.max_file_mb:,} MB limit.",
                "Split it, or raise the limit with FOLIO_MAX_FILE_MB.",
            )
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise DocumentError(label, "does not exist.", "Check the path and the spelling.") from exc
    except PermissionError as exc:
        raise DocumentError(label, "cannot be opened: permission denied.", "Check the file's permissions, or copy it somewhere you can read.") from exc
    except IsADirectoryError as exc:
        raise DocumentError(label, "is a folder, not a file.", "Give the files inside it instead.") from exc
    except OSError as exc:
        raise DocumentError(label, f"cannot be read: {exc.strerror or exc}.", "Check the file and the disk, then try again.") from exc


def _with_path(exc: DocumentError, label: str) -> str:
    """The error message, naming the file as the user gave it (a path, not just its name)."""
    if exc.name == label:
        return str(exc)
    text = f"{label}: {exc.problem}"
    return f"{text} {exc.action}" if exc.action else text


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:160] or "no details"

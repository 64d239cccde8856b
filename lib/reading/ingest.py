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
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..config import Settings, load_settings
from ..documents import Document
from ..errors import CorruptDocument, DocumentError, FileTooLarge, FolioError, NoTextFound
from .guards import Deadline
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

    deadline = Deadline(settings.doc_timeout, name)  # one limit for every stage, not only extraction
    sha256 = hashlib.sha256(data).hexdigest()
    extraction = extract(data, name, password=password, settings=settings, progress=progress, deadline=deadline)
    counter = get_counter()
    if progress:
        progress("Counting tokens", 0, None)
    cutting = cut_document(extraction, document_code(sha256), counter, deadline)
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
    """A file's bytes, or a DocumentError saying why it cannot be read.

    Only regular files are read (a named pipe would block, a device such as /dev/zero never
    ends), and never more than the size limit: one byte past it is enough to refuse a file
    that is too large, even one that grows while it is read."""
    label = str(path)
    limit = settings.max_file_bytes
    try:
        info = os.stat(path)  # follows links: a link to /dev/zero is judged as the device
        _refuse_special(label, path, info.st_mode)
        if info.st_size > limit:
            raise _too_large(label, f"is {info.st_size / 1e6:,.0f} MB, over the {settings.max_file_mb:,} MB limit.")
        # O_NONBLOCK: were the file swapped for a named pipe since the check, opening it still returns at once.
        with open(path, "rb", buffering=0, opener=_open_nonblocking) as handle:
            _refuse_special(label, path, os.fstat(handle.fileno()).st_mode)
            data = _read_at_most(handle, limit + 1, info.st_size + 1)
        if len(data) > limit:
            raise _too_large(label, f"grew past the {settings.max_file_mb:,} MB limit while it was being read.")
        return data
    except FileNotFoundError as exc:
        raise DocumentError(label, "does not exist.", "Check the path and the spelling.") from exc
    except PermissionError as exc:
        raise DocumentError(label, "cannot be opened: permission denied.", "Check the file's permissions, or copy it somewhere you can read.") from exc
    except IsADirectoryError as exc:
        raise DocumentError(label, "is a folder, not a file.", "Give the files inside it instead.") from exc
    except OSError as exc:
        raise DocumentError(label, f"cannot be read: {exc.strerror or exc}.", "Check the file and the disk, then try again.") from exc


_SPECIAL_FILES = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _refuse_special(label: str, path, mode: int) -> None:
    """Raise a DocumentError unless `mode` is that of a regular file."""
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise DocumentError(label, "is a folder, not a file.", "Give the files inside it instead (for example folder/*.pdf).")
    what = next((name for test, name in _SPECIAL_FILES if test(mode)), "not a regular file")
    target = os.path.realpath(path)
    via = f" (it links to {target})" if os.path.islink(path) else ""
    raise DocumentError(label, f"is {what}{via}, not a document saved on disk; Folio reads only regular files.",
                        "Save the document to a file and add that file.")


def _open_nonblocking(path, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


READ_CHUNK = 1 << 20


def _read_at_most(handle, most: int, expected: int) -> bytes:
    """Up to `most` bytes; one read when the file is the `expected` size (no copy for a join)."""
    chunks: list[bytes] = []
    remaining = most
    want = min(most, max(expected, READ_CHUNK))
    while remaining > 0:
        chunk = handle.read(min(remaining, want))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
        want = READ_CHUNK
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(label: str, problem: str) -> FileTooLarge:
    return FileTooLarge(label, problem, "Split it, or raise the limit with FOLIO_MAX_FILE_MB.")


def _with_path(exc: DocumentError, label: str) -> str:
    """The error message, naming the file as the user gave it (a path, not just its name)."""
    if exc.name == label:
        return str(exc)
    text = f"{label}: {exc.problem}"
    return f"{text} {exc.action}" if exc.action else text


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:160] or "no details"

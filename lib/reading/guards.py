"""Refuse hostile files before they cost memory or time.

    check_size(data, name, settings)        # FileTooLarge above Settings.max_file_bytes
    check_archive(data, name, settings)     # ArchiveBomb from ZIP metadata, nothing inflated
    deadline = Deadline(300, name)          # deadline.check() between pages raises ExtractionTimeout
"""

from __future__ import annotations

import io
import time
import zipfile

from ..config import Settings
from ..errors import ArchiveBomb, CorruptDocument, ExtractionTimeout, FileTooLarge

GIB = 1 << 30
MAX_UNCOMPRESSED = GIB
"""Largest total uncompressed size of a DOCX/EPUB (real books stay far below 100 MB)."""
MAX_RATIO = 200
"""Largest compression ratio of one big member; text deflates about 3-10:1, bombs 1000:1."""
RATIO_FLOOR = 10_000_000
"""Members smaller than this (10 MB) may have any ratio: a small run of spaces is harmless."""
MAX_MEMBERS = 50_000


def check_size(data: bytes, name: str, settings: Settings) -> None:
    """Raise FileTooLarge when the file is above the configured limit."""
    limit = settings.max_file_bytes
    if len(data) > limit:
        raise FileTooLarge(
            name,
            f"is {_mb(len(data))}, above the {_mb(limit)} limit.",
            "Split it into smaller files, or raise the limit with FOLIO_MAX_FILE_MB.",
        )


def check_archive(data: bytes, name: str, settings: Settings) -> None:
    """Raise ArchiveBomb when a ZIP-based file would inflate absurdly; reads metadata only."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile:
        return  # the extractor reports the damage with its own message
    except (OSError, ValueError, RuntimeError) as exc:
        raise CorruptDocument(name, f"is a damaged ZIP archive ({exc}).", "Open and re-save it, then add it again.") from exc
    if len(members) > MAX_MEMBERS:
        raise ArchiveBomb(name, f"holds {len(members):,} files, far more than any real document.", "Do not open it; it looks built to exhaust memory.")
    total = sum(m.file_size for m in members)
    if total > max_uncompressed(settings):
        raise ArchiveBomb(
            name,
            f"would inflate to {_mb(total)} from {_mb(len(data))} (a zip bomb).",
            "Folio refused it before unpacking; use the original document instead.",
        )
    for member in members:
        if member.file_size > RATIO_FLOOR and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            ratio = member.file_size // max(member.compress_size, 1)
            raise ArchiveBomb(
                name,
                f"has a part ({member.filename}) compressed {ratio:,}:1 that would inflate to {_mb(member.file_size)} (a zip bomb).",
                "Folio refused it before unpacking; use the original document instead.",
            )


def max_uncompressed(settings: Settings) -> int:
    """Total uncompressed size allowed: 1 GiB, or less when the file limit is set low."""
    return min(MAX_UNCOMPRESSED, 50 * settings.max_file_bytes)


class Deadline:
    """A per-document time limit, checked cooperatively between pages and parts."""

    def __init__(self, seconds: float, name: str, clock=time.monotonic):
        self.seconds = seconds
        self.name = name
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return self._end - self._clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def check(self, where: str = "") -> None:
        """Raise ExtractionTimeout once the time is up."""
        if self.expired():
            at = f" (stopped at {where})" if where else ""
            raise ExtractionTimeout(
                self.name,
                f"took longer than {self.seconds:g} s to read{at}.",
                "Split the document, or raise the limit with FOLIO_DOC_TIMEOUT.",
            )


def _mb(size: int) -> str:
    if size >= GIB:
        return f"{size / GIB:.1f} GiB"
    return f"{size / 1_000_000:.1f} MB"

"""Refuse hostile files before they cost memory or time.

    check_size(data, name, settings)        # FileTooLarge above Settings.max_file_bytes
    check_archive(data, name, settings)     # ArchiveBomb / FileTooLarge from ZIP metadata, nothing inflated
    check_text_size(blocks, name)           # FileTooLarge when the text would not fit in memory
    deadline = Deadline(300, name)          # deadline.check() between pages raises ExtractionTimeout

Memory: one document may use memory_budget() bytes while it is read (a quarter of the
memory available, between 500 MB and 2 GB). The parts of a DOCX or EPUB Folio parses,
and the text it cuts into passages, are refused before they are parsed or counted when
their measured cost would not fit (docs/readme/extraction.md, "Limits").
"""

from __future__ import annotations

import io
import os
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

MEMORY_SHARE = 0.25
"""One document may use this share of the memory available when it is read ..."""
MIN_BUDGET = 500_000_000
MAX_BUDGET = 2_000_000_000
"""... but never more than 2 GB (so a run stays far below 4 GB), nor less than 500 MB."""
XML_COST = 12
"""Bytes of memory per byte of XML parsed into a tree (lxml: 11.3, measured on a real DOCX)."""
TEXT_COST = 30
"""Bytes of memory per UTF-8 byte of text through passages and exact counting (measured
21-24 on English and Chinese books: text, blocks, passages and token ids)."""
NOT_PARSED = frozenset(
    """png jpg jpeg jpe gif bmp tif tiff emf wmf wdp jxr webp ico heic avif psd eps svgz bin ttf otf woff
    woff2 odttf fntdata mp3 mp4 m4a wav ogg oga webm mov avi mpg mpeg wma wmv aac flac pdf zip xlsx xlsm
    docx pptx vsdx css js""".split()
)
"""Suffixes of ZIP members Folio never parses (pictures, fonts, media, embedded files)."""


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
    _check_parsed_parts(members, name)


def _check_parsed_parts(members: list[zipfile.ZipInfo], name: str) -> None:
    """Refuse an archive whose XML/HTML parts would not fit in memory once parsed."""
    parsed = [m for m in members if m.filename.rsplit(".", 1)[-1].lower() not in NOT_PARSED and not m.is_dir()]
    total = sum(m.file_size for m in parsed)
    budget = memory_budget()
    limit = budget // XML_COST
    if total > limit:
        largest = max(parsed, key=lambda m: m.file_size)
        raise FileTooLarge(
            name,
            f"has {_mb(total)} of XML to read ({largest.filename} alone inflates to {_mb(largest.file_size)}), "
            f"more than the {_mb(limit)} Folio can read from one document on this computer "
            f"(parsing takes about {XML_COST} times that in memory; {budget_text()}).",
            "Split it into smaller documents (or save it again without what makes it so large), then add those.",
        )


def check_text_size(texts, name: str) -> None:
    """Refuse text that would not fit in memory once cut into passages and counted.

    `texts` are the blocks' texts (or Blocks); checked after extraction, before counting."""
    budget = memory_budget()
    limit = budget // TEXT_COST
    size = 0
    for text in texts:
        text = getattr(text, "text", text)
        size += len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise FileTooLarge(
            name,
            f"holds {_mb(size)} of text, more than the {_mb(limit)} Folio can cut into passages and count on this computer "
            f"(that takes about {TEXT_COST} times the text in memory; {budget_text()}).",
            "Split it into smaller documents and add those.",
        )


def available_memory() -> int:
    """Bytes of memory available now: the smaller of the system's and the container's (cgroup)."""
    found = [size for size in (_meminfo_available(), _cgroup_available()) if size]
    return min(found) if found else 4 * GIB


def memory_budget() -> int:
    """Bytes one document may use while it is read (see MEMORY_SHARE)."""
    return int(min(MAX_BUDGET, max(MIN_BUDGET, MEMORY_SHARE * available_memory())))


def budget_text() -> str:
    """How much memory one document may use, and why, for messages."""
    available = available_memory()
    share = MEMORY_SHARE * available
    if share >= MAX_BUDGET:
        return f"one document may use at most {_mb(MAX_BUDGET)}"
    if share <= MIN_BUDGET:
        return f"one document may use {_mb(MIN_BUDGET)}, the least Folio allows, with {_mb(available)} of memory available"
    return f"one document may use {_mb(int(share))}, a quarter of the {_mb(available)} of memory available now"


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """Limit minus usage of this process's memory cgroup (v2, then v1), when one is set."""
    for limit_path, usage_path in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_path, encoding="ascii") as handle:
                limit = handle.read().strip()
            if limit == "max" or int(limit) >= 1 << 60:
                return None
            with open(usage_path, encoding="ascii") as handle:
                return max(0, int(limit) - int(handle.read().strip()))
        except (OSError, ValueError):
            continue
    return None


def max_uncompressed(settings: Settings) -> int:
    """Total uncompressed size allowed: 1 GiB, or less when the file limit is set low."""
    return min(MAX_UNCOMPRESSED, 50 * settings.max_file_bytes)


class Deadline:
    """A per-document time limit, checked cooperatively between pages and parts."""

    def __init__(self, seconds: float, name: str, clock=None):
        self.seconds = seconds
        self.name = name
        self._clock = clock or time.monotonic
        self._end = self._clock() + seconds

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

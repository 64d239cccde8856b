"""What `ingest PATH...` means: files, folders (read recursively) and .zip archives (their members).

    found = expand_paths(["judgment.pdf", "matter/", "bundle.zip"], settings)
    found.sources      # [Source]: one per file or archive member, in a stable order
    found.skipped      # [(label, reason)]: what is not a document Folio reads (images, programs, links)
    found.errors       # [(label, message)]: what could not be looked at (missing path, zip bomb)
    data = source.read(settings)     # the bytes, bounded by the size limit (or a DocumentError)
    skip = source.non_document(data) # the reason to skip it, for files found in folders and archives

Listing is cheap (names and sizes; the first bytes only of files that might be archives),
so a job can list a folder of 10,000 files again when it resumes; whether a file is a
document is decided from its bytes when it is read. A file named on the command line
that is not a document is an error, as before; one found in a folder or an archive is
skipped and reported. Archives are checked from their metadata before anything is
inflated, with the limits of lib/reading/guards.py (member count, compression ratio, a
member above the file size limit); an archive inside an archive, an encrypted member, a
link or a path leaving the archive is skipped with the reason.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable

from ..config import Settings
from ..errors import ArchiveBomb, DocumentError, FileTooLarge, UnsupportedFormat
from ..reading.guards import MAX_MEMBERS, MAX_RATIO, RATIO_FLOOR
from ..reading.ingest import read_file
from ..reading.sniff import ZIP_MAGIC, detect_format

OS_CLUTTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", "__MACOSX"})
"""Files and folders an operating system leaves behind: never documents, not worth a line."""
ARCHIVE_MAGIC = (b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!", b"BZh", b"\xfd7zXZ")
TOTAL_FACTOR = 50
"""An archive may inflate to at most this many times the file size limit in total."""


@dataclass(frozen=True)
class Source:
    """One document to read: a file, or a member of a .zip archive."""

    label: str
    """As the user knows it: the path given, under its folder, or archive.zip/member."""
    name: str
    """The document's name (the file name)."""
    path: str
    """The file on disk (the archive, for a member)."""
    member: str | None = None
    size: int = 0
    """Bytes (uncompressed, for a member)."""
    explicit: bool = False
    """Named on the command line (an error if it is not a document) rather than found inside."""

    @property
    def key(self) -> str:
        """A stable identity across runs (a job item key)."""
        where = os.path.abspath(self.path)
        return f"{where}::{self.member}" if self.member is not None else where

    def read(self, settings: Settings) -> bytes:
        """The bytes, or a DocumentError naming this source."""
        if self.member is None:
            return read_file(self.path, settings)
        return _read_member(self.path, self.member, self.label, settings)

    def non_document(self, data: bytes) -> str | None:
        """Why these bytes are not a document to read (for sources found inside), or None."""
        if self.explicit:
            return None
        if data.startswith(ZIP_MAGIC) and self.member is not None and _plain_zip(data):
            return "is an archive inside an archive; Folio does not open those. Unpack it and add its files."
        if data.startswith(ARCHIVE_MAGIC):
            return "is a compressed archive; unpack it and add the documents inside."
        try:
            detect_format(data[:65536] if not data.startswith(ZIP_MAGIC) else data, self.name)
        except UnsupportedFormat as exc:
            return exc.problem
        except DocumentError:
            return None  # a damaged document: reading it says what is wrong
        return None


@dataclass
class Expansion:
    sources: list[Source] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(s.size for s in self.sources)


def expand_paths(paths: Iterable[str | os.PathLike], settings: Settings) -> Expansion:
    """Every document source under `paths`, in the order given (folders sorted by path)."""
    found = Expansion()
    for path in paths:
        label = str(path)
        if os.path.isdir(path):
            before = (len(found.sources), len(found.skipped), len(found.errors))
            _walk(Path(path), label, found, settings)
            if (len(found.sources), len(found.skipped), len(found.errors)) == before:
                found.errors.append((label, f"{label}: is a folder with no files in it. Check the path."))
        elif _is_archive(path):
            _expand_archive(str(path), label, found, settings)
        else:
            found.sources.append(Source(label, Path(path).name, str(path), size=_size(path), explicit=True))
    return found


def _size(path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _walk(folder: Path, label: str, found: Expansion, settings: Settings) -> None:
    """Files under `folder`, recursively, sorted; links to folders are not followed (no loops)."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        rel_root = Path(root).relative_to(folder)
        kept = []
        for d in sorted(dirs):
            if d in OS_CLUTTER or d.startswith("."):
                continue
            if os.path.islink(os.path.join(root, d)):
                found.skipped.append((_join(label, rel_root / d), "is a link to a folder; Folio does not follow those."))
                continue
            kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            if name in OS_CLUTTER or name.startswith("._"):
                continue
            full = os.path.join(root, name)
            shown = _join(label, rel_root / name)
            if name.startswith("."):
                found.skipped.append((shown, "is a hidden file."))
                continue
            _add_file(full, shown, name, found, settings)


def _join(label: str, relative: Path) -> str:
    return str(Path(label) / relative)


def _add_file(full: str, shown: str, name: str, found: Expansion, settings: Settings) -> None:
    try:
        info = os.stat(full)  # follows a link to a file
    except OSError as exc:
        found.skipped.append((shown, f"cannot be opened ({exc.strerror or exc})."))
        return
    if not stat.S_ISREG(info.st_mode):
        found.skipped.append((shown, "is not a regular file (a device, a pipe or a socket)."))
        return
    if _is_archive(full):
        _expand_archive(full, shown, found, settings)
        return
    found.sources.append(Source(shown, name, full, size=info.st_size))


def _is_archive(path) -> bool:
    """A .zip archive of files (not a DOCX or EPUB, which are ZIP packages too)."""
    try:
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as handle:
            if not handle.read(4).startswith(ZIP_MAGIC):
                return False
        with zipfile.ZipFile(path) as archive:
            return _plain_names(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError):
        return False  # damaged: reading it as a document says what is wrong


def _plain_names(names: list[str]) -> bool:
    packaged = {"word/document.xml", "mimetype", "META-INF/container.xml", "[Content_Types].xml"}
    return not packaged.intersection(names)


def _plain_zip(data: bytes) -> bool:
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _plain_names(archive.namelist())
    except (zipfile.BadZipFile, ValueError, RuntimeError, OSError):
        return False


def _expand_archive(path: str, label: str, found: Expansion, settings: Settings) -> None:
    """Members of one archive, after the bomb checks on its metadata (nothing inflated here)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError) as exc:
        found.errors.append((label, f"{label}: is a damaged ZIP archive ({exc}). Copy it again, or unpack it and add the files."))
        return
    try:
        check_members(members, label, settings)
    except DocumentError as exc:
        found.errors.append((label, str(exc)))
        return
    for info in members:
        member_label = f"{label}/{info.filename}"
        reason = _member_problem(info, settings)
        if reason == "":
            continue
        if reason:
            found.skipped.append((member_label, reason))
            continue
        name = PurePosixPath(info.filename).name
        found.sources.append(Source(member_label, name, path, member=info.filename, size=info.file_size))


def check_members(members: list[zipfile.ZipInfo], label: str, settings: Settings) -> None:
    """Refuse an archive that would inflate absurdly (the limits of lib/reading/guards.py)."""
    if len(members) > MAX_MEMBERS:
        raise ArchiveBomb(label, f"holds {len(members):,} files, far more than any real collection.", "Split it into smaller archives.")
    total = sum(m.file_size for m in members)
    limit = TOTAL_FACTOR * settings.max_file_bytes
    if total > limit:
        raise ArchiveBomb(label, f"would inflate to {total / 1e9:,.1f} GB, over the {limit / 1e9:,.0f} GB limit for one archive.",
                          "Unpack it yourself and add the folder, or split it.")
    for member in members:
        if member.file_size > RATIO_FLOOR and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            ratio = member.file_size // max(member.compress_size, 1)
            raise ArchiveBomb(label, f"has a member ({member.filename}) compressed {ratio:,}:1 that would inflate to "
                              f"{member.file_size / 1e6:,.0f} MB (a zip bomb).", "Folio refused it before unpacking anything.")


def _member_problem(info: zipfile.ZipInfo, settings: Settings) -> str | None:
    """Why a member is not read ("" to pass over it silently), or None to read it."""
    parts = PurePosixPath(info.filename).parts
    if info.is_dir() or not parts:
        return ""
    if parts[0] in OS_CLUTTER or parts[-1] in OS_CLUTTER or parts[-1].startswith("._"):
        return ""
    if info.filename.startswith("/") or ".." in parts or ":" in parts[0]:
        return "has a path that leaves the archive; Folio does not read such members."
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a link inside the archive; Folio does not follow those."
    if info.flag_bits & 0x1:
        return "is encrypted inside the archive; unpack it with its password and add the file."
    if info.file_size > settings.max_file_bytes:
        return (f"is {info.file_size / 1e6:,.0f} MB, over the {settings.max_file_mb:,} MB limit. "
                "Split it, or raise the limit with FOLIO_MAX_FILE_MB.")
    return None


def _read_member(path: str, member: str, label: str, settings: Settings) -> bytes:
    """A member's bytes, read at most to the size limit whatever its metadata says."""
    limit = settings.max_file_bytes
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(member)
            with archive.open(info) as handle:
                data = handle.read(limit + 1)
    except KeyError as exc:
        raise DocumentError(label, "is no longer in the archive.", "Check the archive was not replaced, then try again.") from exc
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError, NotImplementedError, EOFError) as exc:
        raise DocumentError(label, f"cannot be unpacked ({exc}).", "Unpack the archive yourself and add the file.") from exc
    if len(data) > limit:
        raise FileTooLarge(label, f"inflates to more than the {settings.max_file_mb:,} MB limit.",
                           "Split it, or raise the limit with FOLIO_MAX_FILE_MB.")
    return data

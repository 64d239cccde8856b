"""Hostile files are refused before they cost memory or time."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
import zlib

import pytest

from lib.config import Settings
from lib.errors import ArchiveBomb, ExtractionTimeout, FileTooLarge
from lib.reading.extract import extract
from lib.reading.guards import MAX_RATIO, Deadline, check_archive, check_size, max_uncompressed
from tests import fixtures


def test_file_above_the_limit_is_refused_with_the_setting_to_change():
    settings = Settings(max_file_mb=1)
    with pytest.raises(FileTooLarge) as info:
        check_size(b"x" * 1_500_000, "big.pdf", settings)
    message = str(info.value)
    assert message.startswith("big.pdf: ") and "1.5 MB" in message and "FOLIO_MAX_FILE_MB" in message


def test_size_is_checked_before_the_format():
    """Even junk is refused for its size first: nothing is parsed above the limit."""
    with pytest.raises(FileTooLarge):
        extract(fixtures.not_a_document() * 300, "junk.bin", settings=Settings(max_file_mb=1))


def test_file_at_the_limit_passes():
    check_size(b"x" * 1_000_000, "ok.txt", Settings(max_file_mb=1))


def test_zip_bomb_is_refused_before_anything_is_inflated(monkeypatch):
    data = fixtures.zip_bomb_docx()
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveBomb) as info:
            extract(data, "bomb.docx", settings=Settings())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "word/document.xml" not in opened
    assert peak < 50_000_000, f"peak {peak} bytes: something was inflated"
    assert len(data) < 2_000_000
    message = str(info.value)
    assert message.startswith("bomb.docx: ") and "zip bomb" in message and "GiB" in message


def test_one_hugely_compressed_member_is_refused_by_its_ratio():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * 20_000_000)
    settings = Settings()
    assert 20_000_000 < max_uncompressed(settings)  # not caught by the total alone
    with pytest.raises(ArchiveBomb) as info:
        check_archive(out.getvalue(), "ratio.docx", settings)
    assert "word/document.xml" in str(info.value)


def test_total_limit_follows_a_lower_file_limit():
    assert max_uncompressed(Settings(max_file_mb=1)) == 50_000_000
    assert max_uncompressed(Settings()) == 1 << 30


def test_ordinary_docx_passes_the_archive_check():
    check_archive(fixtures.docx_with_headings_and_tables(), "fine.docx", Settings())
    check_archive(fixtures.epub(), "fine.epub", Settings())


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_deadline_raises_once_time_is_up():
    clock = FakeClock()
    deadline = Deadline(5, "slow.pdf", clock=clock)
    deadline.check("page 1")
    clock.now += 4.9
    deadline.check("page 2")
    clock.now += 0.2
    with pytest.raises(ExtractionTimeout) as info:
        deadline.check("page 3 of 9")
    message = str(info.value)
    assert message.startswith("slow.pdf: ") and "page 3 of 9" in message and "FOLIO_DOC_TIMEOUT" in message


def test_extract_stops_a_document_at_its_deadline():
    with pytest.raises(ExtractionTimeout) as info:
        extract(fixtures.multi_page_pdf(), "long.pdf", settings=Settings(doc_timeout=0))
    assert "page 1" in str(info.value)


# ---- memory (issue 8) --------------------------------------------------------------------------

def _docx_inflating_to(size: int) -> bytes:
    """A valid DOCX whose document.xml is `size` bytes of ordinary paragraphs, deflated about 100:1
    (below the ratio limit), built from one compressed segment repeated."""
    from bench.hostile_files import PACKAGE_RELS, W, big_part, varied_paragraphs

    prefix = f'<?xml version="1.0" encoding="UTF-8"?><w:document {W}><w:body>'.encode()
    chunk = varied_paragraphs(1 << 20)
    pieces, crc, total = big_part(prefix, chunk, size // len(chunk), b"</w:body></w:document>")
    members = [(name, fixtures._deflate_segment(text) + b"\x03\x00", zlib.crc32(text), len(text))
               for name, text in fixtures._DOCX_SKELETON if name != "_rels/.rels"]
    members.append(("_rels/.rels", fixtures._deflate_segment(PACKAGE_RELS.encode()) + b"\x03\x00",
                    zlib.crc32(PACKAGE_RELS.encode()), len(PACKAGE_RELS)))
    members.append(("word/document.xml", b"".join(pieces) + b"\x03\x00", crc, total))
    return fixtures._zip(members)


def test_a_docx_below_the_bomb_limits_whose_xml_would_not_fit_in_memory_is_refused_unread(monkeypatch):
    from lib.reading import guards
    from lib.reading.ingest import ingest_bytes

    monkeypatch.setattr(guards, "available_memory", lambda: 1_000_000_000)  # a small machine: 500 MB for one document
    data = _docx_inflating_to(60_000_000)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("word/document.xml")
        assert info.file_size < MAX_RATIO * info.compress_size  # not a zip bomb by the ratio ...
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    with pytest.raises(FileTooLarge) as info:
        ingest_bytes(data, "big.docx", settings=Settings())
    message = str(info.value)
    inflated = f"word/document.xml alone inflates to {info_size(data) / 1e6:.1f} MB"
    assert inflated in message and "more than the 41.7 MB" in message and "500.0 MB" in message
    assert "Split it" in message
    assert "word/document.xml" not in opened  # refused from the ZIP metadata: nothing inflated


def info_size(data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.getinfo("word/document.xml").file_size


def test_text_that_would_not_fit_in_memory_once_counted_is_refused(monkeypatch):
    from lib.reading import guards
    from lib.reading.ingest import ingest_bytes

    monkeypatch.setattr(guards, "memory_budget", lambda: 3_000_000)  # 100 KB of text at 30 bytes a byte
    with pytest.raises(FileTooLarge) as info:
        ingest_bytes(("A sentence of plain text. " * 6000).encode(), "long.txt", settings=Settings())
    assert "0.2 MB of text" in str(info.value) and "0.1 MB" in str(info.value)


@pytest.mark.parametrize("available, budget", [(1 << 30, 500_000_000), (4 << 30, 1 << 30), (100 << 30, 2_000_000_000)])
def test_one_document_may_use_a_quarter_of_the_memory_available_within_bounds(monkeypatch, available, budget):
    from lib.reading import guards

    monkeypatch.setattr(guards, "available_memory", lambda: available)
    assert guards.memory_budget() == budget

"""Ingestion end to end: bytes or paths in, Documents (or one clear error per file) out."""

from __future__ import annotations

import builtins
import hashlib

import pytest

from lib.config import load_settings
from lib.errors import CorruptDocument, DocumentError, FileTooLarge, PasswordRequired, UnsupportedFormat
from lib.reading import ingest as ingest_module
from lib.reading.ingest import ingest_bytes, ingest_paths
from lib.reading.passages import document_code
from lib.reading.tokens import get_counter
from tests import fixtures


def test_pdf_becomes_a_document_with_exact_counts():
    data = fixtures.english_pdf()
    stages = []
    document = ingest_bytes(data, "english.pdf", progress=lambda stage, done, total: stages.append(stage))
    counter = get_counter()
    assert document.name == "english.pdf"
    assert document.sha256 == hashlib.sha256(data).hexdigest()
    assert (document.format, document.pages, document.counter) == ("pdf", 3, "exact")
    assert document.tokens == counter.count(document.text)
    assert document.chars == len(document.text)
    assert fixtures.ENGLISH_PHRASE in document.text
    assert "".join(p.text for p in document.passages) == document.text
    assert document.passages[0].id == f"{document_code(document.sha256)}-1"
    assert "Reading page" in stages and stages[-1] == "Counting tokens"


def test_formats_without_pages_have_none():
    document = ingest_bytes(fixtures.markdown_text(), "guide.md")
    assert document.format == "markdown"
    assert document.pages is None
    assert all(p.page is None for p in document.passages)


def test_format_is_decided_by_bytes_not_name():
    name, data = fixtures.mislabelled_pdf_as_docx()
    assert ingest_bytes(data, name).format == "pdf"


def test_not_a_document_is_refused_with_its_name():
    with pytest.raises(UnsupportedFormat) as caught:
        ingest_bytes(fixtures.not_a_document(), "blob.bin")
    assert "blob.bin" in str(caught.value)


def test_unexpected_library_error_is_translated_at_the_boundary(monkeypatch):
    import lib.reading.extract

    def explode(*args, **kwargs):
        raise KeyError("xref 12")

    monkeypatch.setattr(lib.reading.extract, "extract", explode)
    with pytest.raises(CorruptDocument) as caught:
        ingest_bytes(b"%PDF-1.7", "odd.pdf")
    assert str(caught.value).startswith("odd.pdf: ")
    assert "KeyError" in str(caught.value)
    assert isinstance(caught.value.__cause__, KeyError)


def test_estimate_counter_is_labelled(monkeypatch):
    monkeypatch.setenv("FOLIO_TOKENIZER", "estimate")
    document = ingest_bytes(fixtures.utf16_text(), "utf16.txt")
    assert document.counter == "estimate"
    assert any("ESTIMATE" in w for w in document.warnings)
    assert document.tokens >= get_counter("exact").count(document.text)


def test_batch_keeps_going_past_bad_files(tmp_path):
    good = fixtures.write(tmp_path, "english.pdf", fixtures.english_pdf())
    text = fixtures.write(tmp_path, "gb.txt", fixtures.gb18030_text())
    locked = fixtures.write(tmp_path, "locked.pdf", fixtures.encrypted_pdf())
    junk = fixtures.write(tmp_path, "junk.pdf", fixtures.not_a_document())
    folder = tmp_path / "folder"
    folder.mkdir()
    missing = tmp_path / "missing.pdf"
    report = ingest_paths([good, locked, missing, folder, junk, text])
    assert [d.name for d in report.documents] == ["english.pdf", "gb.txt"]
    assert [name for name, _ in report.errors] == [str(locked), str(missing), str(folder), str(junk)]
    messages = dict(report.errors)
    assert "password" in messages[str(locked)]
    assert "does not exist" in messages[str(missing)]
    assert "folder" in messages[str(folder)]
    assert all(message.startswith(name) for name, message in report.errors)
    assert not report.ok


def test_permission_denied_is_reported(tmp_path, monkeypatch):
    path = fixtures.write(tmp_path, "secret.pdf", fixtures.english_pdf())
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    report = ingest_paths([path])
    assert report.documents == []
    assert "permission denied" in report.errors[0][1]


def test_file_over_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    path = fixtures.write(tmp_path, "big.txt", b"word " * 300_000)
    read = []
    monkeypatch.setattr(ingest_module, "ingest_bytes", lambda *a, **k: read.append(a))
    report = ingest_paths([path], settings=load_settings(max_file_mb=1))
    assert read == []
    assert "1 MB limit" in report.errors[0][1]
    with pytest.raises(FileTooLarge):
        ingest_module.read_file(path, load_settings(max_file_mb=1))


def test_password_opens_encrypted_pdf(tmp_path):
    path = fixtures.write(tmp_path, "locked.pdf", fixtures.encrypted_pdf())
    report = ingest_paths([path], password=fixtures.PASSWORD)
    assert report.ok
    assert fixtures.ENGLISH_PHRASE in report.documents[0].text
    with pytest.raises(PasswordRequired):
        ingest_bytes(fixtures.encrypted_pdf(), "locked.pdf")


def test_passage_ids_are_unique_across_the_batch(tmp_path):
    first = fixtures.write(tmp_path, "a.pdf", fixtures.english_pdf())
    second = fixtures.write(tmp_path, "b.pdf", fixtures.english_pdf())  # same bytes, other name
    report = ingest_paths([first, second])
    ids = [p.id for d in report.documents for p in d.passages]
    assert len(ids) == len(set(ids))
    again = ingest_paths([first, second])
    assert ids == [p.id for d in again.documents for p in d.passages]


def test_document_error_names_the_path_given(tmp_path):
    path = fixtures.write(tmp_path, "empty.txt", b"   \n\n  ")
    report = ingest_paths([path])
    assert report.errors and report.errors[0][1].startswith(str(path))
    with pytest.raises(DocumentError):
        ingest_bytes(b"   \n\n  ", "empty.txt")


def test_a_file_that_grows_past_the_limit_while_it_is_read_is_refused():
    # /proc files say they hold 0 bytes and then give their text: like a file growing after the size check.
    from lib.config import Settings

    report = ingest_paths(["/proc/self/status"], settings=Settings(max_file_mb=0))
    assert report.documents == []
    assert "grew past the 0 MB limit while it was being read" in report.errors[0][1]

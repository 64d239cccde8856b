"""The dispatcher: only DocumentErrors escape, each naming the file and the next step."""

from __future__ import annotations

import pytest

from lib.config import Settings
from lib.errors import CorruptDocument, DocumentError
from lib.reading import pdf as extract_pdf
from lib.reading.extract import clean_text, extract
from tests import fixtures


def test_library_exceptions_become_one_clear_line(monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("code=2: something deep in MuPDF")

    monkeypatch.setattr(extract_pdf, "extract_pdf", explode)
    with pytest.raises(CorruptDocument) as info:
        extract(fixtures.english_pdf(), "deep.pdf", settings=Settings())
    assert isinstance(info.value.__cause__, RuntimeError)
    message = str(info.value)
    assert message.startswith("deep.pdf: ") and "damaged" in message and "\n" not in message


@pytest.mark.parametrize("name, data, kwargs", [
    ("locked.pdf", fixtures.encrypted_pdf(), {}),
    ("locked.pdf", fixtures.encrypted_pdf(), {"password": "nope"}),
    ("bomb.docx", fixtures.zip_bomb_docx(), {}),
    ("junk.pdf", fixtures.not_a_document(), {}),
    ("cut.docx", fixtures.docx_with_headings_and_tables()[:3000], {}),
    ("empty.pdf", b"", {}),
    ("scan.pdf", fixtures.image_only_pdf(), {"settings": Settings(ocr=False)}),
])
def test_every_refusal_names_the_file_the_problem_and_the_fix(name, data, kwargs):
    kwargs.setdefault("settings", Settings())
    with pytest.raises(DocumentError) as info:
        extract(data, name, **kwargs)
    error = info.value
    assert str(error).startswith(f"{name}: ")
    assert error.problem and error.action
    assert "\n" not in str(error) and "Traceback" not in str(error)


def test_clean_text_drops_controls_and_repairs_surrogates():
    assert clean_text("a\x00b\x07c\r\nd\ud800e\ufeff") == "abc\nd\ufffde"


def test_all_blocks_come_back_stripped_and_non_empty():
    result = extract(fixtures.html_page(), "page.html", settings=Settings())
    assert all(b.text and b.text == b.text.strip() for b in result.blocks)


def test_a_failing_progress_callback_is_not_blamed_on_the_file():
    class UiGone(RuntimeError):
        pass

    def progress(stage, done, total):
        raise UiGone("the page was closed")

    with pytest.raises(UiGone):
        extract(fixtures.multi_page_pdf(), "fine.pdf", settings=Settings(), progress=progress)


def test_an_unexpected_failure_while_sniffing_is_still_one_clear_line(monkeypatch):
    import zlib

    from lib.reading import extract as extract_module

    def broken(data, name):
        raise zlib.error("invalid stored block lengths")

    monkeypatch.setattr(extract_module, "detect_format", broken)
    with pytest.raises(CorruptDocument) as info:
        extract(fixtures.epub(), "odd.epub", settings=Settings())
    assert str(info.value).startswith("odd.epub: could not be read as a document")

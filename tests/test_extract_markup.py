"""HTML and EPUB reading: headings, paragraphs, lists, tables, <pre>, hidden text, chapters."""

from __future__ import annotations

import io
import zipfile

import pytest

from lib.config import Settings
from lib.errors import CorruptDocument
from lib.reading.extract import extract
from lib.reading.markup import html_blocks
from tests import fixtures


def read(data: bytes, name: str):
    return extract(data, name, settings=Settings())


def test_html_headings_paragraphs_lists_and_tables():
    result = read(fixtures.html_page(), "law.html")
    assert result.format == "html" and result.pages is None
    blocks = [(b.kind, b.level, b.text) for b in result.blocks]
    assert blocks[:6] == [
        ("heading", 1, "Public Law 1"),
        ("paragraph", 0, "An Act to test Folio's reader."),
        ("heading", 2, "Section 1. Short title"),
        ("paragraph", 0, "This Act may be cited as the Test Act."),
        ("list_item", 0, "First item"),
        ("list_item", 0, "Second item"),
    ]
    assert [b.text for b in result.blocks if b.kind == "table"] == ["Year | Amount", "2023 | 1,000"]


def test_pre_keeps_its_lines_and_indentation():
    result = read(fixtures.html_page(), "law.html")
    pre = result.blocks[-1].text
    assert pre.split("\n") == ["[[Page 271]]", "    SEC. 2. DEFINITIONS.", "        (a) In General."]


def test_hidden_script_and_style_text_is_skipped():
    text = "\n".join(b.text for b in read(fixtures.html_page(), "law.html").blocks)
    assert fixtures.HTML_HIDDEN not in text
    assert "not text" not in text and "color" not in text and "Statute" not in text


def test_html_named_pdf_is_read_as_html():
    name, data = fixtures.html_named_pdf()
    assert read(data, name).format == "html"


def test_br_breaks_a_line_but_source_newlines_do_not():
    blocks = html_blocks("<p>one\ntwo<br>three</p>")
    assert [b.text for b in blocks] == ["one two\nthree"]


def test_unclosed_paragraphs_still_split():
    assert [b.text for b in html_blocks("<body><p>first<p>second<div>third</div>")] == ["first", "second", "third"]


def test_windows_1252_page_without_charset_is_decoded():
    data = "<html><body><p>Café crème for 5 € – naïve</p></body></html>".encode("cp1252")
    result = read(data, "menu.html")
    assert result.blocks[0].text == "Café crème for 5 € – naïve"


def test_declared_charset_is_used():
    data = '<html><head><meta charset="koi8-r"></head><body><p>Привет</p></body></html>'.encode("koi8-r")
    assert read(data, "ru.html").blocks[0].text == "Привет"


def test_epub_chapters_in_spine_order_with_headings():
    result = read(fixtures.epub(), "book.epub")
    assert result.format == "epub" and result.pages is None
    expected = []
    for title, sentence in fixtures.EPUB_CHAPTERS:
        expected += [("heading", title), ("paragraph", sentence)]
    assert [(b.kind, b.text) for b in result.blocks] == expected


def test_epub_missing_chapter_file_is_skipped_with_a_warning():
    source = zipfile.ZipFile(io.BytesIO(fixtures.epub()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if not info.filename.endswith("ch2.xhtml"):
                target.writestr(info, source.read(info.filename))
    result = read(out.getvalue(), "book.epub")
    assert fixtures.EPUB_CHAPTERS[0][1] in [b.text for b in result.blocks]
    assert any("missing" in w for w in result.warnings)


def test_truncated_epub_is_refused_as_incomplete():
    data = fixtures.epub()
    with pytest.raises(CorruptDocument) as info:
        read(data[: len(data) * 6 // 10], "cut.epub")
    assert str(info.value).startswith("cut.epub: ") and "incomplete" in str(info.value)


def test_ruby_readings_are_not_mixed_into_the_text():
    blocks = html_blocks("<p><ruby>漢字<rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby>を読む</p>")
    assert [b.text for b in blocks] == ["漢字を読む"]


def test_stdlib_parser_fallback_reads_the_same_blocks(monkeypatch):
    from lib.reading import markup as extract_markup
    from lib.reading.markup import decode_html

    text = decode_html(fixtures.html_page()).text
    fast = [(b.kind, b.level, b.text) for b in html_blocks(text)]

    def refuse(_text, _deadline):
        raise ValueError("parser unavailable")

    monkeypatch.setattr(extract_markup, "_read_with_libxml2", refuse)
    assert [(b.kind, b.level, b.text) for b in html_blocks(text)] == fast

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


# ---- nothing lost to the parser's limits (issue 8) -----------------------------------------

def _ingest(data: bytes, name: str):
    from lib.reading.ingest import ingest_bytes

    return ingest_bytes(data, name, settings=Settings())


def _deep_html(count: int, opener: str) -> tuple[bytes, list[str]]:
    texts = [f"Paragraph {i} of the old page says something about the case." for i in range(count)]
    return ("<html><body>" + "".join(f"{opener}{t} " for t in texts) + "</body></html>").encode(), texts


@pytest.mark.parametrize("opener", ["<div><p>", "<font face=Arial><blockquote>"])
def test_markup_nested_past_libxml2s_depth_limit_is_read_whole(opener):
    data, texts = _deep_html(1000, opener)
    document = _ingest(data, "legacy.html")
    assert all(t in document.text for t in (texts[0], texts[500], texts[-1]))
    assert document.warnings == []


def test_an_epub_chapter_nested_past_the_depth_limit_is_read_whole():
    texts = [f"Line {i} of a chapter with unclosed divisions." for i in range(1000)]
    body = "".join(f"<div>{t}" for t in texts)
    files = {"c.xhtml": f'<html xmlns="http://www.w3.org/1999/xhtml"><body>{body}</body></html>'}
    document = _ingest(_one_chapter_epub(files["c.xhtml"]), "deep.epub")
    assert texts[-1] in document.text and texts[0] in document.text


def test_a_pre_larger_than_libxml2s_text_node_limit_is_read_whole():
    line = "    SEC. 2. DEFINITIONS. (a) In General: the terms used in this Act\n"
    count = 10_200_000 // len(line)
    document = _ingest(f"<html><body><pre>{line * count}</pre></body></html>".encode(), "law.html")
    assert document.text.count("SEC. 2. DEFINITIONS.") == count
    assert document.warnings == []


def test_a_silent_cut_by_the_reader_becomes_a_warning_saying_how_much_was_read(monkeypatch):
    from lib.reading import markup

    real = markup.BlockReader.handle_data

    def lossy(self, data):  # a future bug or parser limit that drops text after a while
        self.seen = getattr(self, "seen", 0) + len(data)
        if self.seen < 2000:
            real(self, data)

    monkeypatch.setattr(markup.BlockReader, "handle_data", lossy)
    data, texts = _deep_html(200, "<p>")
    document = _ingest(data, "cut.html")
    warning = " ".join(document.warnings)
    assert "could be read only in part" in warning
    kept = len("".join(document.text.split()))
    assert f"{kept:,}" in warning and f"{markup.visible_size(data.decode()):,}" in warning


def test_what_the_reader_kept_and_left_out_accounts_for_the_whole_source():
    from lib.reading.markup import decode_html, read_html

    result = read_html(decode_html(fixtures.html_page()).text)
    assert result.complete and result.skipped > 0  # the hidden text, the script and the title: left out on purpose
    assert result.kept + result.skipped - result.source == 2  # exactly, but for the table's two " | " separators


def test_a_page_whose_text_none_could_be_read_is_refused_as_damaged_not_empty(monkeypatch):
    from lib.reading import markup

    monkeypatch.setattr(markup.BlockReader, "handle_data", lambda self, data: None)
    with pytest.raises(CorruptDocument) as info:
        read(b"<html><body><p>" + b"words " * 200 + b"</p></body></html>", "broken.html")
    assert "none could be read" in str(info.value)


def _one_chapter_epub(chapter: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        archive.writestr("META-INF/container.xml", '<?xml version="1.0"?><container version="1.0" '
                         'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
                         '<rootfile full-path="content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>')
        archive.writestr("content.opf", '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
                         '<manifest><item id="c" href="c.xhtml" media-type="application/xhtml+xml"/></manifest>'
                         '<spine><itemref idref="c"/></spine></package>')
        archive.writestr("c.xhtml", chapter)
    return out.getvalue()


def test_an_epub_without_container_xml_is_read_from_its_package_file():
    data = _one_chapter_epub('<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Title</h1><p>Body text here.</p></body></html>')
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as archive:
        for info in source.infolist():
            if info.filename != "META-INF/container.xml":
                archive.writestr(info, source.read(info))
    result = read(out.getvalue(), "nocontainer.epub")
    assert [b.text for b in result.blocks] == ["Title", "Body text here."]
    assert any("container.xml" in w for w in result.warnings)

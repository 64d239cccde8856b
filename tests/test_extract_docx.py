"""DOCX reading: order, heading levels, tables in place, headers, notes, text boxes, damage."""

from __future__ import annotations

import io
import re
import zipfile

import docx
import pymupdf
import pytest

from lib.config import Settings
from lib.errors import CorruptDocument, NoTextFound
from lib.reading.extract import extract
from tests import fixtures


def read(data: bytes, name: str = "report.docx"):
    return extract(data, name, settings=Settings())


def texts(extraction) -> list[str]:
    return [b.text for b in extraction.blocks]


def saved(document) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def rewrite_zip(data: bytes, change) -> bytes:
    """Copy a ZIP, passing each (name, bytes) through change(); None drops the member."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            result = change(info.filename, source.read(info.filename))
            if result is not None:
                target.writestr(result[0], result[1])
    return out.getvalue()


def test_headings_keep_their_levels_in_order():
    result = read(fixtures.docx_with_headings_and_tables())
    assert result.format == "docx" and result.pages is None
    headings = [(b.text, b.level) for b in result.blocks if b.kind == "heading"]
    assert headings == list(fixtures.DOCX_HEADINGS)


def test_table_rows_stay_in_their_place_with_cells_in_order():
    order = texts(read(fixtures.docx_with_headings_and_tables()))
    rows = [" | ".join(row) for row in fixtures.DOCX_TABLE]
    before, after = order.index("Before the table."), order.index("After the table.")
    assert order[before + 1: after] == rows


def test_list_items_are_marked():
    result = read(fixtures.docx_with_headings_and_tables())
    assert [b.text for b in result.blocks if b.kind == "list_item"] == ["First point", "Second point"]


def test_header_footnote_and_text_box_are_read():
    result = read(fixtures.docx_with_headings_and_tables())
    kinds = {b.kind: b.text for b in result.blocks}
    assert kinds["header"] == fixtures.DOCX_HEADER
    assert fixtures.DOCX_FOOTNOTE in kinds["footnote"]
    assert kinds["textbox"] == fixtures.DOCX_TEXTBOX


def test_text_box_follows_the_paragraph_that_anchors_it():
    order = texts(read(fixtures.docx_with_headings_and_tables()))
    assert order.index(fixtures.DOCX_TEXTBOX) == order.index("After the table.") + 1


def test_headers_repeated_across_sections_appear_once():
    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "Same header"
    document.add_paragraph("Section one.")
    section = document.add_section()
    section.header.is_linked_to_previous = False
    section.header.paragraphs[0].text = "Same header"
    document.add_paragraph("Section two.")
    result = read(saved(document))
    assert texts(result).count("Same header") == 1
    assert "Section two." in texts(result)


def test_merged_cells_are_read_once_and_nested_tables_inline():
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    merged = table.cell(0, 0).merge(table.cell(0, 1))
    merged.text = "wide"
    table.cell(0, 2).text = "right"
    table.cell(1, 0).text = "a"
    inner = table.cell(1, 1).add_table(rows=1, cols=2)
    inner.cell(0, 0).text = "x"
    inner.cell(0, 1).text = "y"
    table.cell(1, 2).text = "c"
    rows = [b.text for b in read(saved(document)).blocks if b.kind == "table"]
    assert rows[0] == "wide | right"
    assert rows[1].startswith("a | ") and rows[1].endswith(" | c")
    assert "x" in rows[1] and "y" in rows[1]


def test_deleted_revisions_are_not_read():
    document = docx.Document()
    paragraph = document.add_paragraph("kept ")
    paragraph._p.append(docx.oxml.parse_xml(
        f'<w:del {docx.oxml.ns.nsdecls("w")} w:id="1" w:author="a"><w:r><w:delText>REMOVED</w:delText></w:r></w:del>'))
    assert texts(read(saved(document))) == ["kept"]


def test_truncated_docx_is_refused_as_incomplete():
    data = fixtures.docx_with_headings_and_tables()
    with pytest.raises(CorruptDocument) as info:
        read(data[: len(data) // 2], "cut.docx")
    message = str(info.value)
    assert message.startswith("cut.docx: ") and "incomplete" in message and info.value.action


def test_renamed_main_part_is_followed_through_the_relationships():
    def rename(name, data):
        return name.replace("document.xml", "body.xml"), data.replace(b"document.xml", b"body.xml")

    data = rewrite_zip(fixtures.docx_with_headings_and_tables(), rename)
    assert "After the table." in texts(read(data))


def test_missing_image_part_keeps_the_text_and_warns():
    document = docx.Document()
    document.add_paragraph("Text next to a picture.")
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 8, 8), False)
    document.add_picture(io.BytesIO(pix.tobytes("png")))
    data = rewrite_zip(saved(document), lambda name, blob: None if name.startswith("word/media/") else (name, blob))
    with pytest.raises(KeyError):
        docx.Document(io.BytesIO(data))  # python-docx alone gives up
    result = read(data, "pictures.docx")
    assert "Text next to a picture." in texts(result)
    assert any("damaged" in w for w in result.warnings)


def test_strict_open_xml_is_read_with_a_warning():
    transitional = {
        b"http://schemas.openxmlformats.org/wordprocessingml/2006/main": b"http://purl.oclc.org/ooxml/wordprocessingml/main",
        b"http://schemas.openxmlformats.org/officeDocument/2006/relationships": b"http://purl.oclc.org/ooxml/officeDocument/relationships",
    }

    def to_strict(name, data):
        for old, new in transitional.items():
            data = data.replace(old, new)
        return name, data

    data = rewrite_zip(fixtures.docx_with_headings_and_tables(), to_strict)
    result = read(data, "strict.docx")
    assert "After the table." in texts(result)
    assert any("Strict" in w for w in result.warnings)


def test_docx_with_only_a_picture_is_refused_as_having_no_text():
    document = docx.Document()
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 8, 8), False)
    document.add_picture(io.BytesIO(pix.tobytes("png")))
    with pytest.raises(NoTextFound) as info:
        read(saved(document), "picture.docx")
    assert str(info.value).startswith("picture.docx: ") and "no text" in str(info.value)


def test_equations_text_is_kept():
    document = docx.Document()
    paragraph = document.add_paragraph("Area: ")
    paragraph._p.append(docx.oxml.parse_xml(
        '<m:oMath xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math">'
        "<m:r><m:t>πr²</m:t></m:r></m:oMath>"))
    assert re.search(r"Area: πr²", texts(read(saved(document)))[0])


def test_text_left_in_a_vertically_merged_continuation_cell_is_not_read():
    document = docx.Document()
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).merge(table.cell(1, 0)).text = "tall"
    table.cell(0, 1).text = "top"
    table.cell(1, 1).text = "bottom"
    continuation = table.rows[1]._tr.tc_lst[0]
    continuation.append(docx.oxml.parse_xml(
        f'<w:p {docx.oxml.ns.nsdecls("w")}><w:r><w:t>stale text Word never shows</w:t></w:r></w:p>'))
    rows = [b.text for b in read(saved(document)).blocks if b.kind == "table"]
    assert rows == ["tall | top", "bottom"]


def test_automatic_list_numbers_are_written_back():
    document = docx.Document()
    for text in ("first duty", "second duty", "third duty"):
        document.add_paragraph(text, style="List Number")
    items = [b.text for b in read(saved(document)).blocks if b.kind == "list_item"]
    assert items == ["1. first duty", "2. second duty", "3. third duty"]


@pytest.mark.parametrize("n, fmt, expected", [
    (4, "lowerLetter", "d"), (27, "lowerLetter", "aa"), (2, "upperLetter", "B"),
    (14, "lowerRoman", "xiv"), (1999, "upperRoman", "MCMXCIX"), (7, "decimalZero", "07"), (12, "decimal", "12"),
])
def test_word_number_formats(n, fmt, expected):
    from lib.reading.docx import format_number

    assert format_number(n, fmt) == expected


# ---- entities and memory (issue 8) ----------------------------------------------------------

def _docx_with(document_xml: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in fixtures._DOCX_SKELETON:
            archive.writestr(name, text)
        archive.writestr("word/document.xml", document_xml)
    return out.getvalue()


W_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def test_an_entity_reference_keeps_the_text_around_it_and_is_never_expanded():
    from lib.reading.ingest import ingest_bytes

    doctype = '<!DOCTYPE w:document [<!ENTITY xxe "EXPANDED"><!ENTITY ext SYSTEM "file:///etc/passwd">]>'
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<w:document {W_NS}><w:body>'
           "<w:p><w:r><w:t>before &xxe; after</w:t></w:r></w:p><w:p><w:r><w:t>file &ext; end</w:t></w:r></w:p></w:body></w:document>")
    document = ingest_bytes(_docx_with(xml), "entities.docx")
    assert document.text == "before &xxe; after\n\nfile &ext; end"
    assert any("entities" in w and "not expanded" in w for w in document.warnings)

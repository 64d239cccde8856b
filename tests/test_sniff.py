"""The format is decided by the bytes, not the name."""

from __future__ import annotations

import io
import zipfile

import pytest

from lib.errors import CorruptDocument, UnsupportedFormat
from lib.reading.sniff import detect_format
from tests import fixtures


def test_pdf_named_docx_is_a_pdf():
    name, data = fixtures.mislabelled_pdf_as_docx()
    assert name.endswith(".docx")
    assert detect_format(data, name) == "pdf"


def test_html_named_pdf_is_html():
    name, data = fixtures.html_named_pdf()
    assert detect_format(data, name) == "html"


def test_pdf_magic_after_leading_junk_within_first_kilobyte():
    assert detect_format(b"\x00" * 300 + fixtures.english_pdf(), "x.bin") == "pdf"


@pytest.mark.parametrize("builder, expected", [
    (fixtures.docx_with_headings_and_tables, "docx"),
    (fixtures.epub, "epub"),
    (fixtures.utf16_text, "text"),
    (fixtures.gb18030_text, "text"),
])
def test_formats_by_content_under_a_neutral_name(builder, expected):
    assert detect_format(builder(), "upload.bin") == expected


def test_markdown_by_name_or_by_headings():
    assert detect_format(b"plain words\n", "notes.md") == "markdown"
    assert detect_format(fixtures.markdown_text(), "upload") == "markdown"
    assert detect_format(b"just a line of words\n\nand another\n", "upload") == "text"


def test_txt_name_keeps_hash_lines_as_plain_text():
    assert detect_format(b"# not a heading in a .txt\nwords\n", "notes.txt") == "text"


def test_docx_with_renamed_main_part_is_found_by_content_types():
    source = zipfile.ZipFile(io.BytesIO(fixtures.docx_with_headings_and_tables()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename).replace(b"word/document.xml", b"word/main.xml").replace(b"/document.xml", b"/main.xml")
            target.writestr(info.filename.replace("document.xml", "main.xml"), data)
    assert "word/document.xml" not in zipfile.ZipFile(out).namelist()
    assert detect_format(out.getvalue(), "x.docx") == "docx"


def test_truncated_docx_is_still_recognised_as_docx():
    data = fixtures.docx_with_headings_and_tables()
    assert detect_format(data[: len(data) // 2], "report.docx") == "docx"


def test_plain_zip_is_refused_with_advice():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("photo.txt", "hello")
    with pytest.raises(UnsupportedFormat) as info:
        detect_format(out.getvalue(), "bundle.zip")
    assert info.value.name == "bundle.zip"
    assert "ZIP archive" in str(info.value) and "Unpack" in str(info.value)


def test_binary_junk_is_refused_naming_the_file_and_what_folio_reads():
    with pytest.raises(UnsupportedFormat) as info:
        detect_format(fixtures.not_a_document(), "mystery.pdf")
    message = str(info.value)
    assert message.startswith("mystery.pdf: ")
    assert "PDF, DOCX, EPUB, HTML" in message


def test_known_binary_is_named():
    with pytest.raises(UnsupportedFormat) as info:
        detect_format(b"\x89PNG\r\n\x1a\n" + bytes(100), "scan.pdf")
    assert "PNG image" in str(info.value)


def test_empty_file_is_refused():
    with pytest.raises(CorruptDocument) as info:
        detect_format(b"", "empty.pdf")
    assert "empty" in str(info.value) and info.value.action


def test_opendocument_is_refused_with_what_to_save_it_as():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", "<office:document-content/>")
    with pytest.raises(UnsupportedFormat) as info:
        detect_format(out.getvalue(), "minutes.odt")
    assert "OpenDocument" in str(info.value) and ".docx or PDF" in str(info.value)


# ---- formats by the structure at their start (issue 8) --------------------------------------

@pytest.mark.parametrize("text", [
    "Every PDF file starts with the header %PDF- and a version.\n\nThis note is plain text.\n",
    "How a PDF begins\n\nIts first line reads:\n%PDF-1.4\nand its last one %%EOF.\n",
])
def test_a_text_that_mentions_the_pdf_header_is_read_as_text(text):
    from lib.reading.ingest import ingest_bytes

    document = ingest_bytes(text.encode(), "note.txt")
    assert document.format == "text" and "%PDF-" in document.text


def test_a_pdf_behind_a_text_preamble_is_still_a_pdf():
    assert detect_format(b"Content-Type: application/pdf\r\n\r\n" + fixtures.english_pdf(), "download") == "pdf"


CHINESE = "第一条 为了保护民事主体的合法权益，调整民事关系，制定本法。\n\n第二条 民法调整平等主体之间的人身关系和财产关系。\n\n"
JAPANESE = "吾輩は猫である。名前はまだ無い。\n\nどこで生れたかとんと見当がつかぬ。\n\n"
RUSSIAN = "Все счастливые семьи похожи друг на друга.\n\nКаждая несчастливая семья несчастлива по-своему.\n\n"


@pytest.mark.parametrize("text", [CHINESE, JAPANESE, RUSSIAN])
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_read_in_any_script(text, encoding):
    from lib.reading.ingest import ingest_bytes

    document = ingest_bytes((text * 10).encode(encoding), "law.txt")
    assert document.text == (text * 10).strip()


@pytest.mark.parametrize("text, encoding", [(CHINESE, "gb18030"), (JAPANESE, "shift_jis"), (RUSSIAN, "cp1251"),
                                            (CHINESE, "utf-8"), (CHINESE, "big5")])
def test_legacy_and_utf8_text_is_never_taken_for_utf16(text, encoding):
    from lib.reading.sniff import utf16_without_bom

    assert utf16_without_bom((text * 10).encode(encoding, "ignore")) is None


def test_stray_nuls_do_not_make_a_text_binary():
    from lib.reading.ingest import ingest_bytes

    text = "".join(f"Paragraph {i} ends with a NUL.\x00\n\n" for i in range(100))
    document = ingest_bytes(text.encode(), "notes.txt")
    assert document.text == text.replace("\x00", "").strip()

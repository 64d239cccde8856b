"""Plain text and Markdown: encodings, paragraphs, headings."""

from __future__ import annotations

import pytest

from lib.config import Settings
from lib.errors import NoTextFound
from lib.reading.extract import extract
from lib.reading.text import decode_text, markdown_blocks, text_blocks
from tests import fixtures


def read(data: bytes, name: str):
    return extract(data, name, settings=Settings())


def paragraphs_of(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def test_gb18030_is_detected_and_decoded():
    data = fixtures.gb18030_text()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    result = read(data, "xiyouji.txt")
    assert [b.text for b in result.blocks] == paragraphs_of(fixtures.GB18030_TEXT)
    assert not result.warnings


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_text_with_a_byte_order_mark_is_decoded(encoding):
    data = fixtures.UTF16_TEXT.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    result = read(data, "note.txt")
    assert [b.text for b in result.blocks] == paragraphs_of(fixtures.UTF16_TEXT)


def test_utf16_fixture_round_trips():
    assert [b.text for b in read(fixtures.utf16_text(), "u.txt").blocks] == paragraphs_of(fixtures.UTF16_TEXT)


def test_latin1_german_is_not_mistaken_for_chinese():
    decoded = decode_text("Grüße aus München, schöne Äpfel.".encode("latin-1"))
    assert decoded.text == "Grüße aus München, schöne Äpfel."
    assert decoded.guessed


def test_cp1252_quotes_and_euro_sign():
    assert decode_text("“Quoted” costs 5 €".encode("cp1252")).text == "“Quoted” costs 5 €"


def test_crlf_is_normalised_and_paragraphs_split_on_blank_lines():
    result = read(b"First line\r\nsame paragraph\r\n\r\nSecond paragraph\r\n", "crlf.txt")
    assert [b.text for b in result.blocks] == ["First line\nsame paragraph", "Second paragraph"]


def test_unwrapped_text_gives_one_paragraph_per_line():
    line = "　　" + "他说这是一句很长的话。" * 12
    blocks = text_blocks("\n".join([line, line + "甲", line + "乙"]))
    assert len(blocks) == 3


def test_markdown_headings_lists_and_fences():
    result = read(fixtures.markdown_text(), "guide.md")
    assert result.format == "markdown"
    headings = [(b.text, b.level) for b in result.blocks if b.kind == "heading"]
    assert headings == [("Guide", 1), ("Setup", 1), ("Usage", 2), ("Notes", 3)]
    assert [b.text for b in result.blocks if b.kind == "list_item"] == ["- install it", "- run it"]
    fence = next(b for b in result.blocks if b.text.startswith("```"))
    assert "# not a heading" in fence.text and fence.kind == "paragraph"
    assert not any("\r" in b.text for b in result.blocks)


def test_thematic_break_after_blank_line_is_not_a_heading():
    blocks = markdown_blocks("Para one.\n\n---\n\nPara two.")
    assert [b.kind for b in blocks] == ["paragraph", "paragraph", "paragraph"]


def test_whitespace_only_file_is_refused():
    with pytest.raises(NoTextFound) as info:
        read(b"   \n\n\t\n", "blank.txt")
    assert str(info.value).startswith("blank.txt: ") and info.value.action

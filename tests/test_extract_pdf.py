"""PDF reading: pages, labels, outline headings, passwords, OCR, damaged files."""

from __future__ import annotations

import pymupdf
import pytest

from lib.config import Settings
from lib.documents import Block
from lib.errors import CorruptDocument, NoTextFound, PasswordRequired, WrongPassword
from lib.reading import ocr, ocr_engine
from lib.reading import pdf as extract_pdf
from lib.reading.extract import extract
from tests import fixtures
from tests.ocr_stand_in import ScriptedEngine


def text_of(extraction, page=None) -> str:
    return "\n".join(b.text for b in extraction.blocks if page is None or b.page == page)


def test_pages_are_numbered_from_one_in_order():
    result = extract(fixtures.multi_page_pdf(), "many.pdf", settings=Settings())
    assert result.format == "pdf" and result.pages == 12
    pages = [b.page for b in result.blocks]
    assert pages == sorted(pages) and pages[0] == 1 and pages[-1] == 12
    for number in (1, 7, 12):
        assert f"This is page {number} of 12." in text_of(result, page=number)


def test_paragraphs_are_separate_blocks():
    result = extract(fixtures.english_pdf(), "report.pdf", settings=Settings())
    paragraphs = [b.text for b in result.blocks if b.kind == "paragraph" and b.page == 1]
    assert len(paragraphs) == 2
    assert paragraphs[0].startswith(fixtures.ENGLISH_PHRASE)


def test_outline_entries_become_headings_once_each_on_their_page():
    result = extract(fixtures.english_pdf(), "report.pdf", settings=Settings())
    headings = [(b.text, b.page, b.level) for b in result.blocks if b.kind == "heading"]
    assert headings == [(title, n, 1) for n, title in enumerate(fixtures.ENGLISH_TITLES, start=1)]
    everything = text_of(result)
    for title in fixtures.ENGLISH_TITLES:
        assert everything.count(title) == 1  # the printed title became the heading, not a copy


def test_pdf_without_outline_has_no_headings():
    result = extract(fixtures.multi_page_pdf(), "plain.pdf", settings=Settings())
    assert not [b for b in result.blocks if b.kind == "heading"]


def test_chinese_text_is_read():
    result = extract(fixtures.chinese_pdf(), "zh.pdf", settings=Settings())
    assert fixtures.CHINESE_SENTENCE in text_of(result)


def test_page_labels_follow_the_pdf():
    result = extract(fixtures.labelled_pdf(), "book.pdf", settings=Settings())
    assert result.page_labels == list(fixtures.PAGE_LABELS)
    assert extract(fixtures.multi_page_pdf(), "plain.pdf", settings=Settings()).page_labels is None


def test_encrypted_pdf_needs_a_password_and_says_how_to_give_it():
    with pytest.raises(PasswordRequired) as info:
        extract(fixtures.encrypted_pdf(), "locked.pdf", settings=Settings())
    message = str(info.value)
    assert message.startswith("locked.pdf: ") and "password" in message and "--password" in message


def test_wrong_password_says_it_is_wrong():
    with pytest.raises(WrongPassword) as info:
        extract(fixtures.encrypted_pdf(), "locked.pdf", password="guess", settings=Settings())
    assert "wrong" in str(info.value) and str(info.value).startswith("locked.pdf: ")


def test_right_password_opens_the_pdf():
    result = extract(fixtures.encrypted_pdf(), "locked.pdf", password=fixtures.PASSWORD, settings=Settings())
    assert fixtures.ENGLISH_PHRASE in text_of(result)


def test_pdf_with_owner_password_only_opens_without_one():
    doc = pymupdf.open(stream=fixtures.english_pdf(), filetype="pdf")
    data = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner-only", permissions=0)
    result = extract(data, "restricted.pdf", settings=Settings())
    assert fixtures.ENGLISH_PHRASE in text_of(result)


def test_image_only_page_is_read_with_ocr_and_flagged():
    assert ocr.tesseract_available(), "tesseract-ocr and its English data must be installed (.ci/run does it)"
    result = extract(fixtures.image_only_pdf(), "scan.pdf", settings=Settings(ocr_language="eng"))
    found = text_of(result).upper()
    for word in fixtures.OCR_WORDS:
        assert word in found
    assert any("OCR" in w and "page 1" in w for w in result.warnings)


def _mixed_pdf() -> bytes:
    """english_pdf followed by the image-only page."""
    doc = pymupdf.open(stream=fixtures.english_pdf(), filetype="pdf")
    doc.insert_pdf(pymupdf.open(stream=fixtures.image_only_pdf(), filetype="pdf"))
    return doc.tobytes()


def test_without_ocr_the_document_is_kept_and_the_textless_page_named():
    result = extract(_mixed_pdf(), "mixed.pdf", settings=Settings(ocr=False))
    assert result.pages == 4
    assert fixtures.ENGLISH_PHRASE in text_of(result)
    assert any("page 4" in w and "FOLIO_OCR=0" in w for w in result.warnings)


def test_without_tesseract_the_warning_says_to_install_it(monkeypatch):
    monkeypatch.setattr(ocr, "ocr_languages", lambda wanted: "")
    result = extract(_mixed_pdf(), "mixed.pdf", settings=Settings())
    assert any("page 4" in w and "Tesseract is not installed" in w for w in result.warnings)


def test_scan_without_ocr_is_refused_with_the_reason():
    with pytest.raises(NoTextFound) as info:
        extract(fixtures.image_only_pdf(), "scan.pdf", settings=Settings(ocr=False))
    message = str(info.value)
    assert message.startswith("scan.pdf: ") and "no text layer" in message and "OCR" in message


def test_page_with_a_giant_image_is_not_rendered(monkeypatch):
    doc = pymupdf.open(stream=fixtures.image_only_pdf(), filetype="pdf")
    xref = doc[0].get_images()[0][0]
    doc.xref_set_key(xref, "Width", "100000")
    doc.xref_set_key(xref, "Height", "100000")
    data = doc.tobytes()
    engine = ScriptedEngine("never asked")
    monkeypatch.setattr(ocr_engine, "open_engine", lambda workers=0: engine)
    monkeypatch.setattr(ocr, "ocr_languages", lambda wanted: "eng")
    with pytest.raises(NoTextFound) as info:
        extract(data, "bomb.pdf", settings=Settings())
    assert engine.asked == []
    assert "too large" in str(info.value)


def test_truncated_pdf_keeps_the_pages_that_survive_and_warns():
    result = extract(fixtures.truncated_pdf(), "cut.pdf", settings=Settings())
    assert 1 <= result.pages < 12
    assert "This is page 1 of 12." in text_of(result, page=1)
    assert any("incomplete" in w for w in result.warnings)


def test_garbage_after_pdf_magic_is_refused_as_damaged():
    with pytest.raises(CorruptDocument) as info:
        extract(b"%PDF-1.7\n" + fixtures.not_a_document(), "broken.pdf", settings=Settings())
    assert str(info.value).startswith("broken.pdf: ") and info.value.action


def test_prompt_injection_text_is_extracted_verbatim():
    """Extraction keeps what the page says; neutralising it is the prompt builder's job."""
    result = extract(fixtures.injection_pdf(), "note.pdf", settings=Settings())
    text = text_of(result)
    assert "<|im_start|>system" in text and "<|im_end|>" in text


def test_progress_is_reported_per_page():
    seen = []
    extract(fixtures.multi_page_pdf(), "many.pdf", settings=Settings(), progress=lambda *a: seen.append(a))
    pages = [a for a in seen if a[0] == "Reading page"]
    assert pages == [("Reading page", n, 12) for n in range(1, 13)]


def test_join_lines_unwraps_lines_and_line_end_hyphenation():
    assert extract_pdf.join_lines("adjusted in-\ncome of\n  the  year\n") == "adjusted income of the year"
    assert extract_pdf.join_lines("per\u00ad petuated its errors") == "perpetuated its errors"
    assert extract_pdf.join_lines("Part A-\nPart B") == "Part A- Part B"  # not a word broken in two


def test_outline_title_after_its_section_number_marks_that_block():
    placed = [(Block("Chapter 1"), 100.0), (Block("1.1 Background to the problem"), 200.0), (Block("Body text."), 220.0)]
    out = extract_pdf.place_headings(placed, [(2, "Background to the problem", None)], 1, 842.0)
    assert [(b.kind, b.text) for b, _ in out] == [
        ("paragraph", "Chapter 1"), ("heading", "1.1 Background to the problem"), ("paragraph", "Body text.")]


def test_outline_title_not_printed_is_inserted_where_the_entry_points():
    placed = [(Block("Top paragraph."), 100.0), (Block("Lower paragraph."), 300.0)]
    out = extract_pdf.place_headings(placed, [(1, "Hidden Title", 842.0 - 250.0)], 1, 842.0)
    assert [b.text for b, _ in out] == ["Top paragraph.", "Hidden Title", "Lower paragraph."]
    assert out[1][0].kind == "heading"


def test_blank_pages_with_only_bookmarks_are_refused():
    doc = pymupdf.open()
    doc.new_page()
    doc.new_page()
    doc.set_toc([[1, "Chapter that was never printed", 1]])
    with pytest.raises(NoTextFound) as info:
        extract(doc.tobytes(), "blank.pdf", settings=Settings())
    assert "no text on any page" in str(info.value)


def test_folio_ocr_0_in_the_environment_turns_ocr_off(monkeypatch):
    monkeypatch.setenv("FOLIO_OCR", "0")
    with pytest.raises(NoTextFound) as info:
        extract(fixtures.image_only_pdf(), "scan.pdf")
    assert "FOLIO_OCR=0" in str(info.value)


def _numbered_page(lines: int) -> list[tuple]:
    """pymupdf-style block tuples of a double-spaced page: each line its own block, numbered."""
    out = []
    for n in range(1, lines + 1):
        y = 80.0 + 26 * n
        right = 300.0 if n % 4 == 0 else 489.0  # every fourth line ends a paragraph
        out.append((133.0, y, right, y + 14, f"words of line {n} \n{n}\n", n, 0))
    return out


def test_margin_line_numbers_are_removed_only_when_they_count_up():
    raw, stripped = extract_pdf.strip_line_numbers(_numbered_page(12))
    assert stripped and all(item[4] == f"words of line {n} " for n, item in enumerate(raw, start=1))
    few, stripped = extract_pdf.strip_line_numbers(_numbered_page(5))
    assert not stripped and few == _numbered_page(5)


def test_double_spaced_lines_are_joined_into_their_paragraphs():
    raw, _ = extract_pdf.strip_line_numbers(_numbered_page(12))
    merged = extract_pdf.merge_wrapped_lines(raw)
    assert [extract_pdf.join_lines(item[4]) for item in merged] == [
        " ".join(f"words of line {n}" for n in range(first, first + 4)) for first in (1, 5, 9)
    ]


def test_running_headers_and_page_numbers_are_left_out_with_a_warning():
    result = extract(fixtures.running_headers_pdf(), "judgment.pdf", settings=Settings())
    texts = [block.text for block in result.blocks]
    assert not any(fixtures.RUNNING_HEADERS[1] in text for text in texts)
    assert not any(text.strip().isdigit() for text in texts)  # lone page numbers
    assert [text for text in texts if fixtures.RUNNING_HEADERS[0] in text] == [fixtures.RUNNING_HEADERS[0]]  # the title stays
    assert any("running headers" in w and fixtures.RUNNING_HEADERS[0] in w and "pages 1-6" in w for w in result.warnings)


def test_a_sentence_running_over_a_page_break_is_not_cut_by_the_header():
    from lib.asking.citations import verify_citations
    from lib.reading.ingest import ingest_bytes

    document = ingest_bytes(fixtures.running_headers_pdf(), "judgment.pdf")
    quote = " ".join(fixtures.RUNNING_SENTENCE)
    passage = next(p for p in document.passages if fixtures.RUNNING_SENTENCE[0] in p.text)
    assert fixtures.RUNNING_SENTENCE[1] in passage.text and (passage.page, passage.page_end) == (1, 2)
    assert "".join(p.text for p in document.passages) == document.text
    citations = verify_citations(f'It says "{quote}" [{passage.id}].', [document])
    assert [c.status for c in citations] == ["verified"]


def test_headings_atop_pages_whose_numbers_do_not_follow_the_pages_are_kept():
    result = extract(fixtures.article_headed_pdf(), "statute.pdf", settings=Settings())
    assert [b.text for b in result.blocks if b.text.startswith("Article")] == [f"Article {2 * n + 1}" for n in range(1, 6)]
    assert not any("running headers" in w for w in result.warnings)


def test_lines_that_repeat_unchanged_at_the_top_of_a_few_pages_only_are_kept():
    result = extract(fixtures.multi_page_pdf(), "many.pdf", settings=Settings())
    assert sum("This is page" in b.text for b in result.blocks) == 12
    assert not any("running headers" in w for w in result.warnings)


MAP_SCRAPS = "4, Ais\na} 三<< wa Fe 8s =\n‘ 二2 gz ~\nc = a Sy nol £o§ 4 也 S 8 a |二 才"
"""What Tesseract (eng+chi_sim) really returned for a map page of a Supreme Court opinion."""


def test_ocr_scraps_read_off_a_map_are_left_out_with_a_warning(monkeypatch):
    monkeypatch.setattr(ocr_engine, "open_engine", lambda workers=0: ScriptedEngine(MAP_SCRAPS))
    monkeypatch.setattr(ocr, "ocr_languages", lambda wanted: "eng+chi_sim")
    result = extract(_mixed_pdf(), "opinion.pdf", settings=Settings())
    assert fixtures.ENGLISH_PHRASE in text_of(result)
    assert "Ais" not in text_of(result) and not any(b.page == 4 for b in result.blocks)
    assert any("page 4" in w and "no readable text" in w for w in result.warnings)
    with pytest.raises(NoTextFound):  # a document that is only such a picture has no text
        extract(fixtures.image_only_pdf(), "map.pdf", settings=Settings())


def test_readable_share_tells_ocr_text_from_scraps():
    assert ocr.readable_share(MAP_SCRAPS) < ocr.MIN_READABLE_SHARE
    for text in (fixtures.ENGLISH_PHRASE, fixtures.CHINESE_SENTENCE, fixtures.UTF16_TEXT, "الحياة تأتي من أين؟",
                 "Case: 21-1298 Document: 42 Page: 1 Date Filed: 08/31/2022", "§ 41st CONGRESS, 3d Session. No. 25, MESSAGE"):
        assert ocr.readable_share(text) > 0.8, text


def test_a_running_line_is_told_by_how_its_number_moves_with_the_pages():
    counts_up = extract_pdf._counts_up
    assert counts_up([(2, 2), (4, 4), (6, 6), (8, 1), (10, 3)])  # page numbers; a new part starts again
    assert counts_up([(2, 2020), (3, 2020), (4, 2020)])  # a year in every header
    assert counts_up([(n, n - 16 + (6 if n > 30 else 0)) for n in range(18, 60, 2)])  # blank pages left out of the PDF
    assert not counts_up([(5, 7), (9, 8), (12, 9), (20, 10)])  # article headings atop some pages
    assert not counts_up([(3, 1), (3, 2), (4, 3)])  # twice on one page: content


def test_a_long_page_list_in_a_warning_is_summarised():
    assert extract_pdf._pages([1, 2, 3, 5]) == "pages 1-3, 5"
    assert extract_pdf._pages(list(range(1, 40, 2))) == "20 pages from 1 to 39"


def test_only_short_blocks_between_the_page_edge_and_the_body_can_be_running_lines():
    body = Block(text="A long paragraph of the body. " * 6, page=1)
    placed = [(Block(text="7 SMITH v. JONES", page=1), 30.0), (body, 60.0), (Block(text="It is so ordered.", page=1), 120.0),
              (Block(text="Signed in chambers.", page=1), 700.0), (body, 720.0), (Block(text="7", page=1), 770.0)]
    keys = [key for _i, key, _v in extract_pdf._edge_lines(placed, 792.0)]
    assert keys == ["#smith v. jones", "#"]


# ---- per-page banners: court filing stamps (issue 8) ----------------------------------------

@pytest.mark.parametrize("stamp", [
    fixtures.FILING_STAMP,  # Fifth Circuit: "Case: 21-50498  Document: 00516242060  Page: 1  Date Filed: 03/17/2022"
    "Case 2:12-md-02641-DGC   Document 19899   Filed 08/23/19   Page {page} of {pages}",  # a district court's ECF stamp
])
def test_a_filing_stamp_on_every_page_is_left_out_and_said(stamp):
    from lib.reading.ingest import ingest_bytes

    document = ingest_bytes(fixtures.filing_stamp_pdf(stamp=stamp), "opinion.pdf")
    assert "Document" not in document.text and "Filed" not in document.text
    first, rest = fixtures.STAMPED_SENTENCE
    passage = next(p for p in document.passages if first in p.text)
    assert " ".join(passage.text.split()).count(f"{first} {rest}") == 1  # the sentence is whole again
    warning = next(w for w in document.warnings if "banner" in w)
    assert stamp.format(page=1, pages=6).split()[0] in warning and "pages 1-6" in warning


def test_a_banner_needs_a_number_that_counts_the_pages():
    """A line atop every page that differs only in numbers that do not follow the pages (a
    ledger's first row, say) is content, not a stamp."""
    placed = lambda text: ([(Block(text=text, page=1), 30.0), (Block(text="Body. " * 40, page=1), 200.0)], 792.0)
    pages = [placed(f"Payment 03/{day:02d}/2021 of {amount} dollars") for day, amount in ((4, 120), (9, 75), (2, 310), (17, 42))]
    kept, warning = extract_pdf.drop_running_lines(pages)
    assert warning == "" and kept == pages

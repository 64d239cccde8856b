"""OCR only where it pays: pictures left out, the document's languages, pages in parallel,
the time limit and a cancel honoured, and the same words as before. Real Tesseract."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest
import regex

from lib.config import Settings
from lib.errors import ExtractionTimeout, NoTextFound
from lib.reading import ocr, ocr_engine, ocr_look, ocr_pages
from lib.reading.extract import extract
from lib.reading.guards import Deadline
from tests import fixtures
from tests.ocr_stand_in import SpyEngine

BEFORE = json.loads((Path(__file__).parent / "ocr_words_main.json").read_text(encoding="utf-8"))["words"]
"""The words OCR found on the scanned fixtures before the OCR changes (recorded from main)."""


def text_of(extraction, page=None) -> str:
    return "\n".join(b.text for b in extraction.blocks if page is None or b.page == page)


def word_units(text_or_words) -> set[str]:
    """Whitespace words; Chinese, which has no spaces between words, character by character."""
    words = text_or_words.split() if isinstance(text_or_words, str) else text_or_words
    units = set()
    for word in words:
        units.update(regex.findall(r"\p{Han}|\p{P}", word) if regex.search(r"\p{Han}", word) else [word])
    return units


@pytest.fixture(autouse=True)
def tesseract_installed():
    assert ocr.tesseract_available() and ocr.tesseract_program(), "tesseract-ocr must be installed (.ci/run does it)"


@pytest.mark.parametrize("fixture, language", [
    ("image_only_pdf", "eng+chi_sim"), ("image_only_pdf", "eng"),
    ("scanned_pdf", "eng+chi_sim"), ("scanned_pdf", "eng"),
    ("scanned_chinese_pdf", "eng+chi_sim"),
])
def test_scanned_fixtures_give_the_words_they_gave_before(fixture, language):
    result = extract(getattr(fixtures, fixture)(), f"{fixture}.pdf", settings=Settings(ocr_language=language))
    assert word_units(text_of(result)) == word_units(BEFORE[f"{fixture}|{language}"])


def test_a_picture_in_a_document_with_text_is_not_ocrd_and_is_named(monkeypatch):
    spies = SpyEngine.install(monkeypatch)
    result = extract(fixtures.figure_pdf(), "report.pdf", settings=Settings())
    assert spies == [] or spies[0].asked == []
    assert fixtures.ENGLISH_PHRASE in text_of(result)
    assert any("Did not OCR page 4" in w and "picture" in w and "FOLIO_OCR_PICTURES=1" in w for w in result.warnings)


def test_folio_ocr_pictures_reads_them_anyway(monkeypatch):
    spies = SpyEngine.install(monkeypatch)
    result = extract(fixtures.figure_pdf(), "report.pdf", settings=Settings(ocr_pictures=True))
    assert {number for number, _lang in spies[0].asked} == {4}
    assert not any("Did not OCR" in w for w in result.warnings)


def test_in_a_scanned_document_every_image_page_is_read(monkeypatch):
    spies = SpyEngine.install(monkeypatch)
    result = extract(fixtures.scanned_with_figure_pdf(), "scan.pdf", settings=Settings())
    assert sorted({number for number, _lang in spies[0].asked}) == [1, 2, 3]
    assert fixtures.SCANNED_PAGES[1][1] in text_of(result, page=2)
    assert any("page 3" in w and "no readable text" in w for w in result.warnings)


def test_the_look_tells_text_from_pictures():
    scan = pymupdf.open(stream=fixtures.scanned_with_figure_pdf(), filetype="pdf")
    assert [ocr_look.looks_like_text(page) for page in scan] == [True, True, False]
    chinese = pymupdf.open(stream=fixtures.scanned_chinese_pdf(), filetype="pdf")
    assert ocr_look.text_likeness(chinese[0]) > 0.8


def _with_scanned_page(text_pdf: bytes, scanned_pdf: bytes) -> bytes:
    doc = pymupdf.open(stream=text_pdf, filetype="pdf")
    doc.insert_pdf(pymupdf.open(stream=scanned_pdf, filetype="pdf"), from_page=0, to_page=0)
    return doc.tobytes()


def test_an_english_text_layer_means_ocr_in_english_only(monkeypatch):
    spies = SpyEngine.install(monkeypatch)
    data = _with_scanned_page(fixtures.english_pdf(), fixtures.scanned_pdf())
    result = extract(data, "filing.pdf", settings=Settings(ocr_language="eng+chi_sim"))
    assert spies[0].asked == [(4, "eng")]
    assert fixtures.SCANNED_PAGES[0][0] in text_of(result, page=4)
    assert any("page 4 with OCR (Tesseract, eng)" in w for w in result.warnings)


def test_a_chinese_text_layer_means_ocr_in_chinese(monkeypatch):
    spies = SpyEngine.install(monkeypatch)
    data = _with_scanned_page(fixtures.chinese_pdf(), fixtures.scanned_chinese_pdf())
    result = extract(data, "contract.pdf", settings=Settings(ocr_language="eng+chi_sim"))
    assert spies[0].asked == [(2, "chi_sim")]
    assert "".join(fixtures.SCANNED_CHINESE[1].split()) in "".join(text_of(result, page=2).split())


def test_a_page_in_another_language_than_the_text_layer_is_read_again_in_all(monkeypatch):
    spies = SpyEngine.install(monkeypatch)
    data = _with_scanned_page(fixtures.english_pdf(), fixtures.scanned_chinese_pdf())
    result = extract(data, "exhibit.pdf", settings=Settings(ocr_language="eng+chi_sim"))
    assert spies[0].asked == [(4, "eng"), (4, "eng+chi_sim")]  # English first, poor, then all
    assert word_units(text_of(result, page=4)) >= word_units(fixtures.SCANNED_CHINESE[1])


def test_a_scan_without_text_layer_is_probed_with_all_languages_then_read_in_its_own(monkeypatch):
    spies = SpyEngine.install(monkeypatch)
    data = pymupdf.open(stream=fixtures.scanned_pdf(), filetype="pdf")
    data.insert_pdf(pymupdf.open(stream=fixtures.scanned_pdf(), filetype="pdf"))
    result = extract(data.tobytes(), "scan.pdf", settings=Settings(ocr_language="eng+chi_sim", ocr_workers=1))
    assert spies[0].asked == [(1, "eng+chi_sim"), (2, "eng"), (3, "eng"), (4, "eng")]
    assert any("pages 1-4 with OCR (Tesseract, eng+chi_sim and eng)" in w for w in result.warnings)


def test_the_pdfs_declared_language_is_used_for_a_scan(monkeypatch):
    spies = SpyEngine.install(monkeypatch)
    doc = pymupdf.open(stream=fixtures.scanned_pdf(), filetype="pdf")
    doc.xref_set_key(doc.pdf_catalog(), "Lang", "(en-GB)")
    extract(doc.tobytes(), "scan.pdf", settings=Settings(ocr_language="eng+chi_sim"))
    assert sorted(spies[0].asked) == [(1, "eng"), (2, "eng")]


def test_pages_are_read_in_parallel_processes(monkeypatch):
    spies = SpyEngine.install(monkeypatch)
    doc = pymupdf.open(stream=fixtures.scanned_pdf(), filetype="pdf")
    doc.insert_pdf(pymupdf.open(stream=fixtures.scanned_pdf(), filetype="pdf"))
    result = extract(doc.tobytes(), "scan.pdf", settings=Settings(ocr_language="eng", ocr_workers=2))
    assert spies[0].most_at_once == 2 and len(spies[0].processes) == 4
    for number in (1, 3):
        assert fixtures.SCANNED_PAGES[0][0] in text_of(result, page=number)


def _four_scanned_pages() -> pymupdf.Document:
    doc = pymupdf.open(stream=fixtures.scanned_pdf(), filetype="pdf")
    doc.insert_pdf(pymupdf.open(stream=fixtures.scanned_pdf(), filetype="pdf"))
    return doc


def test_the_time_limit_stops_the_running_tesseract_processes(monkeypatch):
    spies = SpyEngine.install(monkeypatch)
    # The clock jumps past the limit as soon as Tesseract runs: the limit falls mid-OCR.
    clock = lambda: 1000.0 if spies and spies[0].processes else 0.0  # noqa: E731
    doc = _four_scanned_pages()
    with pytest.raises(ExtractionTimeout):
        ocr_pages.ocr_pages(doc, [1, 2, 3, 4], language="eng", text_layer="", total_pages=4,
                            settings=Settings(ocr_workers=2), deadline=Deadline(300, "scan.pdf", clock=clock),
                            progress=lambda *a: None)
    processes = spies[0].processes
    assert processes and all(p.poll() is not None for p in processes)
    assert any(p.returncode < 0 for p in processes)  # killed, not finished


def test_a_cancel_from_the_progress_callback_stops_them_too(monkeypatch):
    spies = SpyEngine.install(monkeypatch)

    class Cancelled(Exception):
        pass

    def progress(stage, done, total):
        if stage == "OCR page" and done == 1:
            raise Cancelled()

    with pytest.raises(Cancelled):
        extract(_four_scanned_pages().tobytes(), "scan.pdf", settings=Settings(ocr_language="eng", ocr_workers=2),
                progress=progress)
    assert len(spies[0].processes) < 4 and all(p.poll() is not None for p in spies[0].processes)


def test_a_page_tesseract_fails_on_is_named_and_the_rest_kept(monkeypatch):
    monkeypatch.setattr(ocr, "tesseract_program", lambda: "/bin/false")
    data = _with_scanned_page(fixtures.english_pdf(), fixtures.scanned_pdf())
    result = extract(data, "filing.pdf", settings=Settings())
    assert fixtures.ENGLISH_PHRASE in text_of(result)
    assert any("OCR failed on page 4" in w for w in result.warnings)


def test_without_the_tesseract_program_pymupdfs_tesseract_reads_the_page(monkeypatch):
    monkeypatch.setattr(ocr, "tesseract_program", lambda: None)
    assert isinstance(ocr_engine.open_engine(), ocr_engine.PymupdfEngine)
    result = extract(fixtures.image_only_pdf(), "scan.pdf", settings=Settings(ocr_language="eng"))
    assert word_units(text_of(result)) == word_units(BEFORE["image_only_pdf|eng"])


def test_tesseract_tsv_becomes_blocks_split_at_gaps_and_joined_in_chinese():
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [
        "5\t1\t1\t1\t1\t1\t300\t300\t100\t30\t95\tCite",  # a header line ...
        "5\t1\t1\t1\t1\t2\t420\t300\t60\t30\t95\tas:",
        "5\t1\t1\t1\t2\t1\t300\t400\t90\t30\t90\t合同",  # ... a gap taller than a line, then the body
        "5\t1\t1\t1\t2\t2\t390\t400\t90\t30\t80\t生效。",
        "5\t1\t1\t1\t3\t1\t300\t435\t90\t30\t-1\t ",
    ]
    blocks, confidence = ocr_engine.blocks_from_tsv("\n".join([header, *rows]), 72 / 300)
    assert [b[4] for b in blocks] == ["Cite as:\n", "合同生效。\n"]
    assert blocks[0][:4] == pytest.approx((72.0, 72.0, 115.2, 79.2))
    assert confidence == pytest.approx((95 * 4 + 95 * 3 + 90 * 2 + 80 * 3) / 12)


def test_scripts_decide_the_languages():
    assert ocr.scripts_in("The court held. " * 3, {"Latin", "Han"}) == {"Latin"}
    assert ocr.languages_for("eng+chi_sim", {"Latin"}) == "eng"
    assert ocr.languages_for("eng+chi_sim", {"Han", "Latin"}) == "eng+chi_sim"
    assert ocr.languages_for("eng+chi_sim", {"Cyrillic"}) == "eng+chi_sim"  # no evidence for either: keep both
    assert ocr.scripts_of_tag("zh-Hans-CN") == {"Han"} and ocr.scripts_of_tag("de-CH") == {"Latin"}


def _jpeg_scan(dpi: int) -> bytes:
    """scanned_pdf's first page as a grey JPEG at `dpi`, as a scanner makes a page."""
    source = pymupdf.open(stream=fixtures.scanned_pdf(), filetype="pdf")
    page = source[0]
    jpeg = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY).tobytes("jpg", jpg_quality=90)
    doc = pymupdf.open()
    target = doc.new_page(width=page.rect.width, height=page.rect.height)
    target.insert_image(target.rect, stream=jpeg)
    return doc.tobytes()


def test_a_jpeg_scan_at_the_ocr_resolution_goes_to_tesseract_as_it_is():
    doc = pymupdf.open(stream=_jpeg_scan(300), filetype="pdf")
    own = ocr_engine.own_jpeg(doc[0], 300)
    assert own is not None and own.data == doc.xref_stream_raw(doc[0].get_images()[0][0]) and own.dpi == 300
    assert ocr_engine.own_jpeg(pymupdf.open(stream=_jpeg_scan(200), filetype="pdf")[0], 300) is None  # rendered at 300
    result = extract(_jpeg_scan(300), "scan.pdf", settings=Settings(ocr_language="eng"))
    assert [block.text for block in result.blocks] == list(fixtures.SCANNED_PAGES[0])



def test_a_document_of_a_picture_and_blank_pages_is_refused_saying_so():
    doc = pymupdf.open(stream=fixtures.figure_pdf(), filetype="pdf")
    doc.select([3])  # the picture alone ...
    doc.new_page()
    doc.new_page()  # ... and two blank pages: mostly not scanned, so the picture is looked at
    with pytest.raises(NoTextFound) as info:
        extract(doc.tobytes(), "map.pdf", settings=Settings())
    assert "look like pictures" in str(info.value) and "FOLIO_OCR_PICTURES=1" in str(info.value)

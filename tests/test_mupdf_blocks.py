"""Reading many PDFs in one process must not keep what each page held (pymupdf#5067, MuPDF's store)."""

from __future__ import annotations

import gc
import tracemalloc

import pymupdf

from lib.config import Settings
from lib.reading import mupdf_blocks
from lib.reading.extract import extract
from tests import fixtures


def _traced_after(runs: int, data: bytes) -> int:
    for _ in range(runs):
        extract(data, "many.pdf", settings=Settings())
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_reading_the_same_pdf_again_and_again_keeps_nothing():
    data = fixtures.multi_page_pdf()
    tracemalloc.start()
    try:
        before = _traced_after(2, data)  # caches (regexes, the probe) filled
        after = _traced_after(40, data)
    finally:
        tracemalloc.stop()
    # With the leak every run kept its 24 blocks: about 7 KB a run, 270 KB in all.
    assert after - before < 20_000


def test_blocks_come_back_with_the_text_of_the_page():
    doc = pymupdf.open(stream=fixtures.english_pdf(), filetype="pdf")
    blocks = mupdf_blocks.page_blocks(doc[0], pymupdf.TEXTFLAGS_TEXT)
    assert any(fixtures.ENGLISH_PHRASE in block[4].replace("\n", " ") for block in blocks)
    assert mupdf_blocks._measure(blocks) == (0, 0)  # no reference beyond the list's own


def test_nothing_is_given_back_when_the_blocks_do_not_leak():
    built_in_python = [(1.0, 2.0, 3.0, 4.0, "".join(["te", "xt"]), 0, 0)]
    assert mupdf_blocks._measure(built_in_python) == (0, 0)


def _mupdf_store_size() -> int:
    """Bytes MuPDF's resource store holds, from its own debug listing."""
    import re

    mupdf = pymupdf.mupdf
    buffer = mupdf.FzBuffer(0)
    out = mupdf.FzOutput(mupdf.ll_fz_new_output_with_buffer(buffer.m_internal))
    mupdf.fz_debug_store(out)
    mupdf.fz_close_output(out)
    listing = bytes(buffer.fz_buffer_extract()).decode("utf-8", "replace")
    return int(re.search(r"\bsize=(\d+)", listing.rsplit("max=", 1)[-1]).group(1))


def test_images_decoded_to_look_at_or_ocr_pages_are_not_kept_after_the_document():
    pymupdf.TOOLS.store_shrink(100)
    result = extract(fixtures.figure_pdf(), "report.pdf", settings=Settings())
    assert any("Did not OCR page 4" in w for w in result.warnings)  # its map was decoded for the look
    assert _mupdf_store_size() == 0

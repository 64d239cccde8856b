"""Reading many PDFs in one process must not keep what each page held (pymupdf#5067)."""

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

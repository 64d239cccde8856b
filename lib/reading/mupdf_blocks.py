"""A page's text blocks from PyMuPDF, without the reference leak of `get_text("blocks")`.

    blocks = page_blocks(page, flags)      # [(x0, y0, x1, y1, text, block_no, type), ...]

pymupdf 1.28 keeps one reference too many to every block tuple and to its text
(pymupdf/PyMuPDF#5067, fixed upstream after 1.28.2): nothing a block holds is ever freed,
so a long-running Folio grew by the text of every page it read (about 0.45 MB per
judgment, 800 MB over a 2,000-document build). The other text paths of pymupdf are slower
or cut blocks differently, so Folio keeps this one and gives the extra references back.

How many references are extra is measured once per process on a probe page, against
tuples built in Python the same way: with a pymupdf that does not leak, nothing is given
back; with any count other than the known one, nothing is either (a leak is better than
freeing what is still in use).
"""

from __future__ import annotations

import ctypes
import functools
import sys

import pymupdf

_decref = ctypes.pythonapi.Py_DecRef
_decref.argtypes = [ctypes.py_object]
_decref.restype = None

PROBE_TEXT = "Folio reference probe"


def page_blocks(page, flags: int) -> list[tuple]:
    """`page.get_text("blocks", flags=flags)`, with pymupdf's extra references released."""
    blocks = page.get_text("blocks", flags=flags)
    extra_tuple, extra_text = extra_references()
    if extra_tuple or extra_text:
        release(blocks, extra_tuple, extra_text)
    return blocks


def release(blocks: list[tuple], extra_tuple: int, extra_text: int) -> None:
    """Drop the leaked references; the list still holds every tuple, so none is freed here."""
    for item in blocks:
        if extra_text:
            _decref(item[4])
        if extra_tuple:
            _decref(item)


@functools.cache
def extra_references() -> tuple[int, int]:
    """(extra references per block tuple, per block text): (1, 1) for pymupdf 1.28, (0, 0) when fixed."""
    doc = pymupdf.open()
    try:
        page = doc.new_page()
        page.insert_text((72, 72), PROBE_TEXT)
        blocks = page.get_text("blocks")
    finally:
        doc.close()
    if len(blocks) != 1 or blocks[0][4].strip() != PROBE_TEXT:
        return (0, 0)
    extra = _measure(blocks)
    if extra not in ((1, 1), (0, 1), (1, 0)):
        return (0, 0)  # not the leak we know: give nothing back
    release(blocks, *extra)
    return extra


def _measure(blocks: list[tuple]) -> tuple[int, int]:
    """References to the probe's tuple and text beyond those of a copy built in Python and
    held the same way (same containers, same local names): the interpreter's own counting
    cancels out."""
    item = blocks[0]
    text = item[4]
    copy_text = (text + "#")[:-1]  # a new string object, equal to the text
    copies = [(*item[:4], copy_text, *item[5:])]
    copy = copies[0]
    return (sys.getrefcount(item) - sys.getrefcount(copy), sys.getrefcount(text) - sys.getrefcount(copy_text))

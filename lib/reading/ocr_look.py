"""A cheap look at a page image: is it text (worth OCR) or a picture (a map, a photo)?

    text_likeness(page)   -> 0.0 (a photo, a coloured map) .. 1.0 (lines of print)
    looks_like_text(page) -> text_likeness(page) >= TEXT_LIKE

The page is rendered in grey at LOOK_DPI (MuPDF decodes a big JPEG at 1/8 of its size for
that: about 10-25 ms) and its dark ink examined strip by strip: printed or typed text is
ink in horizontal bands a line high, with blank rows between them, in every column of the
page; a map or a photo puts its ink in tall areas that no blank row crosses. The share of
the ink lying in such line bands (across or down the page, for turned pages) is the
likeness. Measured on 48 real pages: scans of judgments, letters, newspapers, tables and
Chinese reports 0.81-1.00; maps 0.14-0.22, photos and covers 0.00-0.57; charts and
diagrams with labels 0.6-0.96 (OCR'd: their labels can be quoted).
"""

from __future__ import annotations

import pymupdf

LOOK_DPI = 36
"""Ten-point text is still a band of 2-3 pixels with a gap under it."""
TEXT_LIKE = 0.5
INK_CONTRAST = 70
"""Grey levels darker than the paper that count as ink (JPEG noise and paper shades do not)."""
STRIPS = 8
"""Columns examined apart, so that a slightly skewed scan still shows its line gaps."""
BORDER_SHARE = 0.5
"""A row or column inked over more than this share is a scan border or a rule, not text."""
BLANK_SHARE = 0.03
LINE_POINTS = (3, 30)
"""A text band is 3 to 30 points high (one to two lines of print)."""


def looks_like_text(page) -> bool:
    return text_likeness(page) >= TEXT_LIKE


def text_likeness(page) -> float:
    """Share of the page's ink that lies in text-line bands, across or down the page."""
    pix = page.get_pixmap(dpi=LOOK_DPI, colorspace=pymupdf.csGRAY, alpha=False)
    width, height = pix.width, pix.height
    if width < 2 or height < 2:
        return 0.0
    paper = pix.color_topusage()[1][0]
    threshold = paper - INK_CONTRAST
    ink = bytearray(pix.samples.translate(bytes(1 if value < threshold else 0 for value in range(256))))
    del pix
    _clear_borders(ink, width, height)
    across = banded_share(ink, width, height)
    if across >= TEXT_LIKE:
        return across
    down = bytearray(b"".join(ink[column::width] for column in range(width)))  # the page turned
    return max(across, banded_share(down, height, width))


def _clear_borders(ink: bytearray, width: int, height: int) -> None:
    """Blank out rows and columns that are mostly ink: the dark edges of a scan, rules, frames."""
    for row in range(height):
        if ink.count(1, row * width, (row + 1) * width) > BORDER_SHARE * width:
            ink[row * width:(row + 1) * width] = bytes(width)
    for column in range(width):
        if ink[column::width].count(1) > BORDER_SHARE * height:
            ink[column::width] = bytes(height)


def banded_share(ink: bytearray, width: int, height: int, dpi: float = LOOK_DPI) -> float:
    """Share of the ink in runs of non-blank rows (per strip) as high as a line of text."""
    low = max(2, round(LINE_POINTS[0] * dpi / 72))
    high = max(8, round(LINE_POINTS[1] * dpi / 72))
    banded = total = 0
    for strip in range(STRIPS):
        left, right = strip * width // STRIPS, (strip + 1) * width // STRIPS
        if right <= left:
            continue
        blank = max(1, BLANK_SHARE * (right - left))
        run_ink = run_rows = 0
        for row in range(height + 1):
            count = ink.count(1, row * width + left, row * width + right) if row < height else 0
            if count > blank:
                run_ink += count
                run_rows += 1
                continue
            if run_rows:
                total += run_ink
                if low <= run_rows <= high:
                    banded += run_ink
                run_ink = run_rows = 0
    return banded / total if total else 0.0

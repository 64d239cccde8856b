"""PDF pages rendered as PNG with the cited quote highlighted where it really is."""

from __future__ import annotations

import pymupdf
import pytest

from lib.errors import CorruptDocument, InputError, PasswordRequired, WrongPassword
from lib.output.page_image import find_quote_rects, fit_zoom, render_page, render_page_png

WIDTH, HEIGHT = 595, 842


def build_pdf(rotation: int = 0) -> bytes:
    """Two A4 pages: English lines (one hyphenated across a line break), a Chinese line,
    and a sentence that runs from the foot of page 1 onto page 2."""
    doc = pymupdf.open()
    first = doc.new_page(width=WIDTH, height=HEIGHT)
    first.insert_text((72, 100), "The lessee shall pay the rent on the first day.", fontsize=12)
    first.insert_text((72, 114), "Repairs of the roof are the lessor's con-", fontsize=12)
    first.insert_text((72, 128), "cern and must be done within thirty days.", fontsize=12)
    first.insert_text((72, 160), "本合同自双方签字之日起生效。", fontsize=12, fontname="china-s")
    first.insert_text((72, 800), "Notice of termination must be given", fontsize=12)
    second = doc.new_page(width=WIDTH, height=HEIGHT)
    second.insert_text((72, 100), "in writing to the other party.", fontsize=12)
    doc[0].set_rotation(rotation)  # page objects do not outlive new_page()
    return doc.tobytes()


def pixel_at(png: bytes, x: float, y: float) -> tuple[int, int, int]:
    pix = pymupdf.Pixmap(png)
    return pix.pixel(int(x), int(y))[:3]


def centre(rect) -> pymupdf.Point:
    return pymupdf.Point((rect.x0 + rect.x1) / 2, (rect.y0 + rect.y1) / 2)


def is_highlight(rgb) -> bool:
    red, green, blue = rgb
    return red > 200 and green > 150 and blue < 80


def background_points(rect, matrix):
    """Pixel points inside the rect's image that sit between letters (top edge, no ink)."""
    box = rect * matrix
    return [(box.x0 + 1, box.y0 + 1), ((box.x0 + box.x1) / 2, box.y0 + 1), (box.x1 - 2, box.y0 + 1)]


def test_png_decodes_with_expected_size():
    png = render_page_png(build_pdf(), 1, zoom=2.0)
    pix = pymupdf.Pixmap(png)
    assert (pix.width, pix.height) == (WIDTH * 2, HEIGHT * 2)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_quote_is_highlighted_where_it_is():
    image = render_page(build_pdf(), 1, quote="“the lessee shall pay the rent”", zoom=1.5)
    [rect] = image.rects
    words = {w[4]: pymupdf.Rect(w[:4]) for w in pymupdf.open(stream=build_pdf())[0].get_text("words")}
    assert rect.contains(centre(words["lessee"])) and rect.contains(centre(words["rent"]))
    assert not rect.contains(centre(words["first"]))
    matrix = pymupdf.Matrix(image.zoom, image.zoom)
    for x, y in background_points(rect, matrix):
        assert is_highlight(pixel_at(image.png, x, y)), (x, y)
    # Outside the quote the page stays white.
    outside = words["first"] * matrix
    assert pixel_at(image.png, outside.x0 + 1, outside.y0 + 1) == (255, 255, 255)
    assert pixel_at(image.png, 400 * image.zoom, 600 * image.zoom) == (255, 255, 255)


def test_no_quote_means_no_highlight():
    png = render_page_png(build_pdf(), 1)
    pix = pymupdf.Pixmap(png)
    colours = {pix.pixel(x, y)[:3] for x in range(0, pix.width, 7) for y in range(0, pix.height, 7)}
    assert not any(is_highlight(c) for c in colours)


def test_quote_across_a_hyphenated_line_break():
    found = find_quote_rects(build_pdf(), 1, "the lessor's concern and must be done")
    rects = found[1]
    assert len(rects) == 2  # one per line
    assert rects[0].y1 < rects[1].y1
    assert rects[1].x0 == pytest.approx(72, abs=1)


def test_quote_running_onto_the_next_page():
    found = find_quote_rects(build_pdf(), 1, "termination must be given in writing to the other party")
    assert set(found) == {1, 2}
    assert found[1][0].y0 > 700 and found[2][0].y0 < 120
    image = render_page(build_pdf(), 1, quote="termination must be given in writing to the other party")
    assert image.quote_pages == [1, 2] and image.found


def test_chinese_quote():
    [rect] = find_quote_rects(build_pdf(), 1, "「签字之日起」")[1]
    assert rect.y0 > 130 and rect.width == pytest.approx(5 * 12, abs=2)


def test_slightly_misquoted_words_are_still_found_but_unrelated_text_is_not():
    found = find_quote_rects(build_pdf(), 1, "The lessee shall pay the rent at the first day")
    assert found[1] and all(r.y1 < 110 for r in found[1])
    assert find_quote_rects(build_pdf(), 1, "the court dismissed the appeal") == {}


def test_rotated_page_highlight_lands_on_the_text():
    data = build_pdf(rotation=90)
    image = render_page(data, 1, quote="the lessee shall pay the rent", zoom=1.0)
    assert (image.width, image.height) == (HEIGHT, WIDTH)
    page = pymupdf.open(stream=data)[0]
    [rect] = image.rects
    box = rect * page.rotation_matrix
    assert is_highlight(pixel_at(image.png, box.x0 + 1, box.y0 + 2))


def test_encrypted_pdf_needs_its_password():
    doc = pymupdf.open(stream=build_pdf())
    locked = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="secret")
    with pytest.raises(PasswordRequired, match="lease.pdf"):
        render_page_png(locked, 1, name="lease.pdf")
    with pytest.raises(WrongPassword):
        render_page_png(locked, 1, password="guess", name="lease.pdf")
    image = render_page(locked, 1, quote="lessee shall pay", password="secret")
    assert image.found


def test_bad_input_gives_clear_errors():
    with pytest.raises(CorruptDocument, match="notes.pdf"):
        render_page_png(b"not a pdf at all", 1, name="notes.pdf")
    with pytest.raises(InputError, match="no page 3; the PDF has 2 pages"):
        render_page_png(build_pdf(), 3)


def test_huge_page_is_capped_in_pixels():
    doc = pymupdf.open()
    page = doc.new_page(width=14400, height=14400)  # the largest page PDF allows
    page.insert_text((100, 300), "tiny text on a huge page", fontsize=200)
    image = render_page(doc.tobytes(), 1, quote="huge page", zoom=3.0, max_pixels=4_000_000)
    assert image.width * image.height <= 4_000_000
    assert image.zoom == pytest.approx(fit_zoom(page.rect, 3.0, 4_000_000))
    assert image.found

"""Finding Tesseract's data and keeping OCR renders within a pixel budget."""

from __future__ import annotations

import pytest

from lib.reading import ocr

CACHED = (ocr.tessdata_dir, ocr.available_languages)  # the real functions, even while patched


@pytest.fixture
def fresh_caches():
    """Empty the per-process caches before and after the test."""
    for function in CACHED:
        function.cache_clear()
    yield
    for function in CACHED:
        function.cache_clear()


def test_tessdata_prefix_wins(fresh_caches, tmp_path, monkeypatch):
    (tmp_path / "eng.traineddata").write_bytes(b"stub")
    (tmp_path / "deu.traineddata").write_bytes(b"stub")
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    assert ocr.tessdata_dir() == str(tmp_path)
    assert ocr.available_languages() == ("deu", "eng")
    assert ocr.ocr_languages("deu+chi_sim") == "deu"


def test_the_installed_tesseract_data_is_found(fresh_caches, monkeypatch):
    monkeypatch.delenv("TESSDATA_PREFIX", raising=False)
    assert ocr.tesseract_available(), "tesseract-ocr-eng must be installed (.ci/run does it)"
    assert "eng" in ocr.available_languages()


def test_unknown_languages_fall_back_to_english(fresh_caches, monkeypatch):
    monkeypatch.delenv("TESSDATA_PREFIX", raising=False)
    assert ocr.ocr_languages("klingon") == "eng"
    assert ocr.ocr_languages("eng+klingon") == "eng"


def test_no_language_data_means_no_ocr(fresh_caches, monkeypatch):
    monkeypatch.setattr(ocr, "available_languages", lambda: ())
    assert not ocr.tesseract_available()
    assert ocr.ocr_languages("eng") == ""


def test_ordinary_pages_render_at_300_dpi():
    assert ocr.ocr_dpi(612, 792) == 300


def test_large_pages_render_within_the_pixel_budget():
    dpi = ocr.ocr_dpi(2448, 3168)  # a 34 x 44 inch drawing
    assert 0 < dpi < 300
    assert (2448 / 72 * dpi) * (3168 / 72 * dpi) <= ocr.MAX_PIXELS


def test_absurd_pages_are_not_rendered():
    assert ocr.ocr_dpi(200_000, 200_000) == 0

"""Tesseract through pymupdf: find the language data, OCR one page within a pixel budget.

    tesseract_available()          -> True when language data for OCR is installed
    tessdata_dir()                 -> '/usr/share/tesseract-ocr/5/tessdata' or None
    available_languages()          -> ('chi_sim', 'eng', 'osd')
    ocr_languages('eng+chi_sim')   -> 'eng+chi_sim' (only those installed), '' when none
    ocr_page_text(page, language)  -> list of text blocks read from the page image

pymupdf links Tesseract itself and needs only the `*.traineddata` files; the `tesseract`
program, when present, tells where they are.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

import regex

DPI = 300
"""Tesseract reads best at about 300 dpi."""
MAX_PIXELS = 25_000_000
"""Largest page image rendered for OCR (an A4 page at 300 dpi is 8.7 million pixels)."""
MIN_DPI = 100

COMMON_TESSDATA = (
    "/usr/share/tesseract-ocr/*/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
    "/opt/homebrew/share/tessdata",
    "/usr/local/share/tesseract-ocr/*/tessdata",
)


def _has_traineddata(path: str | os.PathLike | None) -> bool:
    return bool(path) and Path(path).is_dir() and any(Path(path).glob("*.traineddata"))


@functools.cache
def tessdata_dir() -> str | None:
    """Tesseract's language-data folder: TESSDATA_PREFIX, the usual places, or what tesseract reports."""
    env = os.environ.get("TESSDATA_PREFIX")
    for candidate in (env, env and os.path.join(env, "tessdata")):
        if _has_traineddata(candidate):
            return str(candidate)
    for pattern in COMMON_TESSDATA:
        for candidate in sorted(glob.glob(pattern), reverse=True):  # newest version first
            if _has_traineddata(candidate):
                return candidate
    return _tessdata_from_program()


def _tessdata_from_program() -> str | None:
    """Ask `tesseract --list-langs`, whose first line names the folder."""
    program = shutil.which("tesseract")
    if not program:
        return None
    try:
        done = subprocess.run([program, "--list-langs"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'"([^"]+)"', done.stdout + done.stderr)
    return match.group(1) if match and _has_traineddata(match.group(1)) else None


@functools.cache
def available_languages() -> tuple[str, ...]:
    folder = tessdata_dir()
    if not folder:
        return ()
    return tuple(sorted(p.stem for p in Path(folder).glob("*.traineddata")))


def tesseract_available() -> bool:
    """True when pages can be OCR'd (language data for at least one language is installed)."""
    return bool(set(available_languages()) - {"osd"})


def ocr_languages(wanted: str) -> str:
    """The installed subset of a Tesseract language spec like 'eng+chi_sim'; '' when none."""
    have = set(available_languages())
    chosen = [lang for lang in wanted.split("+") if lang in have]
    if not chosen and "eng" in have:
        chosen = ["eng"]
    return "+".join(chosen)


def ocr_dpi(width_pt: float, height_pt: float) -> int:
    """300 dpi, lowered so the rendered page stays within MAX_PIXELS (0 when even MIN_DPI is too big)."""
    area_in2 = max(width_pt, 1.0) * max(height_pt, 1.0) / (72.0 * 72.0)
    dpi = DPI
    if area_in2 * dpi * dpi > MAX_PIXELS:
        dpi = int((MAX_PIXELS / area_in2) ** 0.5)
    return dpi if dpi >= MIN_DPI else 0


def ocr_page_text(page, language: str, dpi: int, flags: int) -> list[tuple]:
    """Render one page at `dpi`, OCR it, and return its text blocks in reading order."""
    import pymupdf

    # MuPDF's OCR writer silently yields no text for grey pixmaps: render RGB.
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csRGB, alpha=False)
    pdf_bytes = pix.pdfocr_tobytes(compress=False, language=language, tessdata=tessdata_dir())
    del pix
    from .mupdf_blocks import page_blocks

    with pymupdf.open(stream=pdf_bytes, filetype="pdf") as ocr_doc:
        blocks = page_blocks(ocr_doc[0], flags)
    blocks.sort(key=lambda b: (b[3], b[0]))  # reading order, as get_text(sort=True)
    return blocks


MIN_READABLE_SHARE = 0.5
"""OCR text with fewer of its characters in word-like tokens is noise (a map, chart or photo)."""
_WORD_LIKE = regex.compile(
    r"[\p{P}\p{S}]*+(?:[\p{Lo}\p{M}]{2,}\S*|\p{L}\p{Ll}{2,}|\p{Lu}{3,}|\p{N}[\p{N}.,:/%-]*\p{L}{0,2})[\p{P}\p{S}]*+"
)


def readable_share(text: str) -> float:
    """Share of the non-space characters of OCR text that form word-like tokens: words of
    three or more letters, runs of two or more CJK (or other caseless-script) characters,
    numbers. Reading a map or a chart, Tesseract returns scraps ("a}", "三<<", "8s") that
    score well under MIN_READABLE_SHARE; a page of text, even a poor scan, scores above 0.8."""
    tokens = text.split()
    total = sum(len(token) for token in tokens)
    good = sum(len(token) for token in tokens if _WORD_LIKE.fullmatch(token))
    return good / total if total else 0.0

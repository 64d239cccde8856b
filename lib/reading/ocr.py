"""Tesseract: find it and its language data, choose the languages a document is in.

    tesseract_available()          -> True when language data for OCR is installed
    tessdata_dir()                 -> '/usr/share/tesseract-ocr/5/tessdata' or None
    tesseract_program()            -> '/usr/bin/tesseract' (version 4 or later) or None
    available_languages()          -> ('chi_sim', 'eng', 'osd')
    ocr_languages('eng+chi_sim')   -> 'eng+chi_sim' (only those installed), '' when none
    scripts_in('The court 法院')    -> {'Latin', 'Han'} (scripts with enough letters to count)
    languages_for('eng+chi_sim', {'Latin'}) -> 'eng'
    ocr_page_text(page, language)  -> text blocks read by the Tesseract inside pymupdf

Pages are OCR'd by the `tesseract` program when it is installed (ocr_engine.py): it is the
same engine pymupdf links, built with the CPU's vector instructions, and measured twice as
fast per page here; pymupdf's own copy is the fallback when only the language data is there.
"""

from __future__ import annotations

import functools
import glob
import itertools
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


@functools.cache
def tesseract_program() -> str | None:
    """The `tesseract` command (version 4 or later: reads stdin, writes TSV), or None."""
    program = shutil.which("tesseract")
    if not program:
        return None
    try:
        done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"tesseract\s+v?(\d+)", done.stdout + done.stderr)
    return program if match and int(match.group(1)) >= 4 else None


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


# ---- which languages a document is in ---------------------------------------------------

_LATIN_LANGUAGES = (
    "afr aze bos cat ceb ces cos cym dan deu eng enm epo est eus fao fil fin fra frk frm fry gla gle glg hat hrv "
    "hun ind isl ita ita_old jav lat lav lit ltz mlt mri msa nld nor oci pol por que ron slk slv spa spa_old sqi "
    "srp_latn sun swa swe ton tur uzb vie yor"
).split()
LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    **{lang: frozenset({"Latin"}) for lang in _LATIN_LANGUAGES},
    **{lang: frozenset({"Han"}) for lang in ("chi_sim", "chi_tra", "chi_sim_vert", "chi_tra_vert")},
    **{lang: frozenset({"Han", "Hiragana", "Katakana"}) for lang in ("jpn", "jpn_vert")},
    **{lang: frozenset({"Hangul", "Han"}) for lang in ("kor", "kor_vert")},
    **{lang: frozenset({"Cyrillic"}) for lang in ("rus", "ukr", "bel", "bul", "mkd", "srp", "kaz", "kir", "mon", "tgk", "tat", "uzb_cyrl")},
    **{lang: frozenset({"Greek"}) for lang in ("ell", "grc")},
    **{lang: frozenset({"Arabic"}) for lang in ("ara", "fas", "urd", "pus", "uig", "snd")},
    **{lang: frozenset({"Hebrew"}) for lang in ("heb", "yid")},
    **{lang: frozenset({"Devanagari"}) for lang in ("hin", "mar", "nep", "san")},
    **{lang: frozenset({"Bengali"}) for lang in ("ben", "asm")},
    "tha": frozenset({"Thai"}), "lao": frozenset({"Lao"}), "khm": frozenset({"Khmer"}), "mya": frozenset({"Myanmar"}),
    "kat": frozenset({"Georgian"}), "hye": frozenset({"Armenian"}), "tam": frozenset({"Tamil"}),
    "tel": frozenset({"Telugu"}), "kan": frozenset({"Kannada"}), "mal": frozenset({"Malayalam"}),
    "guj": frozenset({"Gujarati"}), "pan": frozenset({"Gurmukhi"}), "ori": frozenset({"Oriya"}),
    "sin": frozenset({"Sinhala"}), "amh": frozenset({"Ethiopic"}), "tir": frozenset({"Ethiopic"}),
    "bod": frozenset({"Tibetan"}), "dzo": frozenset({"Tibetan"}),
}
"""The scripts each Tesseract language writes in; a language missing here is always kept."""
TAG_SCRIPTS = {
    "zh": "Han", "ja": "Han", "ko": "Hangul", "ru": "Cyrillic", "uk": "Cyrillic", "bg": "Cyrillic",
    "sr": "Cyrillic", "el": "Greek", "ar": "Arabic", "fa": "Arabic", "ur": "Arabic", "he": "Hebrew",
    "hi": "Devanagari", "mr": "Devanagari", "th": "Thai",
}
"""BCP 47 primary language subtags (a PDF's /Lang) in other scripts than Latin."""
MIN_SCRIPT_LETTERS = 10
"""Letters a script needs in a text to count: OCR of English now and then yields one stray 法."""
SAMPLE_CHARS = 50_000


def scripts_in(text: str, scripts=None) -> set[str]:
    """The scripts (of `scripts`, default all Folio knows) with at least MIN_SCRIPT_LETTERS letters in the text."""
    sample = text[:SAMPLE_CHARS]
    wanted = scripts if scripts is not None else {s for group in LANGUAGE_SCRIPTS.values() for s in group}
    return {script for script in wanted if _count_script(sample, script) >= MIN_SCRIPT_LETTERS}


@functools.cache
def _script_pattern(script: str):
    return regex.compile(rf"\p{{Script={script}}}")


def _count_script(text: str, script: str) -> int:
    return sum(1 for _ in itertools.islice(_script_pattern(script).finditer(text), MIN_SCRIPT_LETTERS))


def languages_for(configured: str, scripts: set[str]) -> str:
    """The configured languages that write in one of `scripts` (plus those Folio has no
    script for); all of them when none matches: no evidence is no reason to drop one."""
    languages = [lang for lang in configured.split("+") if lang]
    kept = [lang for lang in languages if lang not in LANGUAGE_SCRIPTS or LANGUAGE_SCRIPTS[lang] & scripts]
    if not any(lang in LANGUAGE_SCRIPTS for lang in kept):
        return configured
    return "+".join(kept)


def scripts_of_tag(tag: str) -> set[str]:
    """Scripts of a BCP 47 language tag ('en-US' -> {'Latin'}); empty for a tag Folio cannot place."""
    parts = tag.strip().replace("_", "-").split("-")
    primary = parts[0].lower()
    if not primary.isalpha() or not 2 <= len(primary) <= 3:
        return set()
    if primary in TAG_SCRIPTS:
        return {TAG_SCRIPTS[primary]} | ({"Hiragana", "Katakana"} if primary == "ja" else set())
    return {"Latin"} if len(primary) == 2 else set()

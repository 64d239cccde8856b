"""Plain text and Markdown: detect the encoding, split paragraphs, recognise Markdown headings.

Encoding order: a BOM (UTF-8, UTF-16, UTF-32), strict UTF-8, GB18030 when the result reads
as Chinese, charset-normalizer, then cp1252 (which with Latin-1 never fails).
"""

from __future__ import annotations

import codecs
import re
from typing import Callable, NamedTuple

from ..config import Settings
from ..documents import Block, Extraction
from .guards import Deadline
from .sniff import utf16_without_bom

BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
WESTERN = set("ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝßàáâãäåæçèéêëìíîïñòóôõöøùúûüýÿœŒšŠžŽŸ"
              "€‚„…–—‘’“”•™«»°§©®£¥¢·¿¡ªº\u00a0")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
COMMON_ZH = set("的一是不了在人有我他这个们中来上大为和国地到以说时要就出也得里后自之，。、")

ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
FENCE = re.compile(r"^ {0,3}(```|~~~)")
LIST_ITEM = re.compile(r"^ {0,3}(?:[-*+]|\d{1,9}[.)])[ \t]+\S")
LONG_LINE = 100
"""Lines longer than this on average mean one paragraph per line (no hard wrapping)."""


class Decoded(NamedTuple):
    text: str
    encoding: str
    guessed: bool
    """No BOM, declaration or strict decode confirmed the encoding."""
    lossy: bool = False
    """Some bytes were invalid and became U+FFFD."""


def decode_text(data: bytes, hint: str | None = None) -> Decoded:
    """Decode bytes by BOM, BOM-less UTF-16, strict UTF-8, a declared `hint`, Chinese, Western, then a guess."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return _strict_or_replace(data[len(bom):], encoding)
    bomless = utf16_without_bom(data[:8192])
    if bomless:
        return _strict_or_replace(data, bomless)
    for encoding in ("utf-8", hint):
        if encoding:
            try:
                return Decoded(data.decode(encoding), encoding, False)
            except (LookupError, UnicodeDecodeError):
                pass
    chinese = _as_chinese(data)
    if chinese is not None:
        return Decoded(chinese, "gb18030", False)
    western = _as_western(data)
    if western is not None:
        return Decoded(western, "cp1252", True)
    return _guess(data)


def _strict_or_replace(data: bytes, encoding: str) -> Decoded:
    try:
        return Decoded(data.decode(encoding), encoding, False)
    except UnicodeDecodeError:
        return Decoded(data.decode(encoding, errors="replace"), encoding, False, lossy=True)


def _as_western(data: bytes) -> str | None:
    """cp1252 when every non-ASCII character it yields is a Western letter or common symbol.

    charset-normalizer often calls short German or French text cp1250 and turns its accents
    into Central-European letters; cp1252 text that decodes to plausible characters is kept."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    odd = sum(1 for c in text if ord(c) > 127 and c not in WESTERN)
    return text if odd == 0 else None


def _as_chinese(data: bytes) -> str | None:
    """GB18030 text when it decodes cleanly AND reads as Chinese (Latin-1 bytes often decode too)."""
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return None
    non_ascii = [c for c in text[:200_000] if ord(c) > 127]
    if not non_ascii:
        return None
    cjk = sum(1 for c in non_ascii if CJK.match(c))
    common = sum(1 for c in non_ascii if c in COMMON_ZH)
    if cjk / len(non_ascii) > 0.9 and (common > 0.05 * len(non_ascii) or len(non_ascii) < 20 and common):
        return text
    return None


def _guess(data: bytes) -> tuple[str, str, bool]:
    """charset-normalizer's best guess when it is confident, else cp1252 (Latin-1 for its holes)."""
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:1_000_000]).best()
    except Exception:
        best = None
    if best is not None and len(data) >= 64 and best.encoding not in ("ascii",):
        try:
            return Decoded(data.decode(best.encoding), best.encoding, True)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return Decoded(data.decode("cp1252"), "cp1252", True)
    except UnicodeDecodeError:
        return Decoded(data.decode("latin-1"), "latin-1", True)


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def extract_text(data: bytes, name: str, *, password: str | None, settings: Settings,
                 deadline: Deadline, progress: Callable, markdown: bool = False) -> Extraction:
    """Plain text (or Markdown) to paragraph and heading Blocks."""
    decoded = decode_text(data)
    text = normalise_newlines(decoded.text)
    progress("Reading text", 1, 1)
    blocks = markdown_blocks(text, deadline) if markdown else text_blocks(text, deadline)
    return Extraction(format="markdown" if markdown else "text", blocks=blocks, warnings=encoding_warnings(decoded))


def encoding_warnings(decoded: Decoded) -> list[str]:
    """What the reader should know about how the bytes were decoded."""
    out = []
    if decoded.guessed:
        out.append(f"The text encoding was guessed as {decoded.encoding}; check that accents and symbols look right.")
    if decoded.lossy:
        out.append(f"Some bytes were not valid {decoded.encoding} and show as \ufffd.")
    return out


def extract_markdown(data: bytes, name: str, **kwargs) -> Extraction:
    return extract_text(data, name, markdown=True, **kwargs)


def paragraphs(text: str) -> list[list[str]]:
    """Groups of non-blank lines separated by blank lines."""
    groups: list[list[str]] = []
    current: list[str] = []
    for line in text.split("\n"):
        if line.strip():
            current.append(line.rstrip())
        elif current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def text_blocks(text: str, deadline: Deadline | None = None) -> list[Block]:
    """Paragraphs split on blank lines; unwrapped text (one paragraph per line) split per line."""
    blocks = []
    for i, group in enumerate(paragraphs(text)):
        if deadline and i % 5000 == 0:
            deadline.check("splitting paragraphs")
        if len(group) > 1 and sum(len(l) for l in group) / len(group) > LONG_LINE:
            blocks.extend(Block(text=line.strip()) for line in group)
        else:
            blocks.append(Block(text="\n".join(group).strip("\n")))
    return [b for b in blocks if b.text.strip()]


def markdown_blocks(text: str, deadline: Deadline | None = None) -> list[Block]:
    """Markdown: ATX and setext headings, fenced code kept whole, list items, paragraphs."""
    blocks: list[Block] = []
    pending: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if deadline and i % 20000 == 0:
            deadline.check("reading Markdown")
        line = lines[i]
        if FENCE.match(line):
            _flush(pending, blocks)
            i = _take_fence(lines, i, blocks)
            continue
        atx = ATX.match(line)
        if atx and (atx.group(2) or "").strip():
            _flush(pending, blocks)
            blocks.append(Block(text=atx.group(2).strip(), kind="heading", level=len(atx.group(1))))
        elif pending and SETEXT.match(line) and not LIST_ITEM.match(pending[0]):
            level = 1 if line.strip().startswith("=") else 2
            blocks.append(Block(text="\n".join(l.strip() for l in pending), kind="heading", level=level))
            pending.clear()
        elif not line.strip():
            _flush(pending, blocks)
        elif LIST_ITEM.match(line) and pending:
            _flush(pending, blocks)
            pending.append(line.rstrip())
        else:
            pending.append(line.rstrip())
        i += 1
    _flush(pending, blocks)
    return [b for b in blocks if b.text.strip()]


def _flush(pending: list[str], blocks: list[Block]) -> None:
    if pending:
        kind = "list_item" if LIST_ITEM.match(pending[0]) else "paragraph"
        blocks.append(Block(text="\n".join(pending).strip("\n"), kind=kind))
        pending.clear()


def _take_fence(lines: list[str], start: int, blocks: list[Block]) -> int:
    """Keep a fenced code block as one paragraph (its '#' lines are code, not headings)."""
    marker = FENCE.match(lines[start]).group(1)
    end = start + 1
    while end < len(lines) and not lines[end].lstrip().startswith(marker):
        end += 1
    chunk = lines[start:end + 1]
    blocks.append(Block(text="\n".join(chunk).rstrip()))
    return end + 1

"""HTML and EPUB to Blocks: headings h1-h6, paragraphs, list items, table rows, <pre> lines.

Both go through one small HTML reader: libxml2's forgiving parser (lxml, already installed
with python-docx) streams parse events (no tree, so no depth or text-node limit bites), with
the stdlib html.parser as the fallback, and BlockReader turns the events into Blocks. It
keeps real paragraph and heading boundaries, skips hidden content (display:none, e.g.
inline-XBRL headers) and needs no page layout (pymupdf lays out every page of an EPUB, which
is slower and loses the tags). What a reading kept is checked against the size of the text
the source holds (visible_size): a shortfall becomes a warning saying how much was read,
never a silent cut. An EPUB is read chapter by chapter in spine order; when its package
cannot be understood, pymupdf's own EPUB reader is the fallback.
"""

from __future__ import annotations

import html
import io
import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
from html.parser import HTMLParser
from typing import Callable, NamedTuple
from urllib.parse import unquote, urldefrag

from lxml import etree

from ..config import Settings
from ..documents import Block, Extraction
from ..errors import CorruptDocument, DocumentError
from .guards import Deadline
from .text import Decoded, decode_text, encoding_warnings, normalise_newlines

HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
BLOCK_TAGS = {
    "p", "div", "section", "article", "header", "footer", "nav", "aside", "main", "blockquote",
    "address", "figure", "figcaption", "dl", "dt", "dd", "ul", "ol", "li", "form", "fieldset",
    "center", "body", "hr", "caption", "details", "summary", "legend",
} | HEADINGS
SKIP_TAGS = {"script", "style", "head", "title", "noscript", "template", "svg", "object", "iframe",
             "select", "button", "ix:header", "rt", "rp"}
"""Not reading text; rt/rp are ruby readings, which would double every annotated word."""
VOID_TAGS = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "param",
             "source", "track", "wbr"}
TABLE_TAGS = {"table", "tr", "td", "th"}
MAX_TABLE_DEPTH = 32
"""Tables nested deeper than this are read as the text of the cell holding them."""
HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.I)
XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([a-zA-Z0-9_\-.]+)""")
SPACES = re.compile(r"[ \t\n\r\f\v\u00a0]+")
# HTML says a page labelled Latin-1 or ASCII is really windows-1252.
WINDOWS_1252_LABELS = {"iso-8859-1", "latin-1", "latin1", "ascii", "us-ascii", "iso8859-1"}


class BlockReader(HTMLParser):
    """Collects Blocks from HTML as it is fed; call close() then read .blocks."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._buf: list[str] = []
        self._kind, self._level = "paragraph", 0
        self._skip_tag, self._skip_depth = "", 0
        self._pre = 0
        self._tables: list[dict] = []
        self._flat_tables = 0
        """Tables nested deeper than MAX_TABLE_DEPTH, read as plain text of the cell around them."""
        self.skipped = 0
        """Characters (spaces not counted) left out on purpose: scripts, styles, hidden elements."""

    # -- parser callbacks -------------------------------------------------------------
    def handle_starttag(self, tag, attrs):
        if self._skipping(tag, opening=True):
            return
        if tag in SKIP_TAGS or _hidden(attrs):
            if tag not in VOID_TAGS:
                self._skip_tag, self._skip_depth = tag, 1
            return
        self._open(tag)

    def handle_startendtag(self, tag, attrs):
        if not self._skip_depth and tag == "br":
            self._add("\n")

    def handle_endtag(self, tag):
        if self._skipping(tag, opening=False):
            return
        self._close(tag)

    def handle_data(self, data):
        if self._skip_depth:
            self.skipped += _visible_length(data)
        else:
            # Source line breaks are plain whitespace outside <pre>; only <br> breaks a line.
            self._add(data if self._pre else data.replace("\n", " ").replace("\r", " "))

    def close(self):
        super().close()
        self.close_tree()

    def close_tree(self):
        """Finish open tables and the last block."""
        while self._tables:
            self._end_table()
        self._flush()

    # -- structure ----------------------------------------------------------------------
    def _skipping(self, tag: str, opening: bool) -> bool:
        """Track the hidden subtree being skipped; True while inside it."""
        if not self._skip_depth:
            return False
        if tag == self._skip_tag and tag not in VOID_TAGS:
            self._skip_depth += 1 if opening else -1
        return True

    def _open(self, tag: str) -> None:
        if tag in TABLE_TAGS and self._flatten(tag, opening=True):
            return
        if tag == "br":
            self._add("\n")
        elif tag == "table":
            self._flush()
            self._tables.append({"rows": [], "row": None, "cell": None})
        elif tag == "tr" and self._tables:
            self._end_row()
            self._tables[-1]["row"] = []
        elif tag in ("td", "th") and self._tables:
            self._end_cell()
            table = self._tables[-1]
            if table["row"] is None:
                table["row"] = []
            table["cell"] = []
        elif tag == "pre":
            self._flush()
            self._pre += 1
        elif tag in HEADINGS:
            self._flush()
            if not self._in_cell():
                self._kind, self._level = "heading", int(tag[1])
        elif tag == "li":
            self._flush()
            if not self._in_cell():
                self._kind = "list_item"
        elif tag in BLOCK_TAGS:
            self._flush()

    def _flatten(self, tag: str, opening: bool) -> bool:
        """Past MAX_TABLE_DEPTH, a table's tags only separate words in the cell that holds it:
        each level would otherwise copy all the text inside it again (quadratic work)."""
        if tag == "table" and opening and len(self._tables) >= MAX_TABLE_DEPTH:
            self._flat_tables += 1
        elif not self._flat_tables:
            return False
        elif tag == "table" and not opening:
            self._flat_tables -= 1
        self._add(" ")
        return True

    def _close(self, tag: str) -> None:
        if tag in TABLE_TAGS and self._flatten(tag, opening=False):
            return
        if tag == "table" and self._tables:
            self._end_table()
        elif tag == "tr" and self._tables:
            self._end_row()
        elif tag in ("td", "th") and self._tables:
            self._end_cell()
        elif tag == "pre" and self._pre:
            self._flush()
            self._pre -= 1
        elif tag in BLOCK_TAGS:
            self._flush()

    def _in_cell(self) -> bool:
        return bool(self._tables) and self._tables[-1]["cell"] is not None

    def _add(self, text: str) -> None:
        if self._in_cell():
            self._tables[-1]["cell"].append(text)
        else:
            self._buf.append(text)

    def _end_cell(self) -> None:
        table = self._tables[-1]
        if table["cell"] is not None:
            text = _collapse("".join(table["cell"])).replace("\n", " ")
            table["row"].append(text)
            table["cell"] = None

    def _end_row(self) -> None:
        self._end_cell()
        table = self._tables[-1]
        cells = [c for c in (table["row"] or []) if c]
        if cells:
            table["rows"].append(" | ".join(cells))
        table["row"] = None

    def _end_table(self) -> None:
        self._end_row()
        rows = self._tables.pop()["rows"]
        if self._in_cell():
            self._tables[-1]["cell"].append(" " + "; ".join(rows) + " ")  # nested table: inline in its cell
            return
        self._flush()
        self.blocks.extend(Block(text=row, kind="table") for row in rows)

    def _flush(self) -> None:
        """End the current block (inside a table cell, block tags only separate words)."""
        if self._in_cell():
            self._tables[-1]["cell"].append(" ")
            return
        if not self._buf:  # most block tags close an empty buffer: nothing to join or collapse
            self._kind, self._level = "paragraph", 0
            return
        raw = "".join(self._buf)
        self._buf = []
        kind, level = self._kind, self._level
        self._kind, self._level = "paragraph", 0
        if self._pre:
            self.blocks.extend(Block(text=chunk) for chunk in _pre_chunks(raw))
            return
        text = _collapse(raw)
        if text:
            self.blocks.append(Block(text=text, kind=kind, level=level))


def _hidden(attrs: list[tuple[str, str | None]]) -> bool:
    for key, value in attrs:
        if key == "hidden" or (key == "style" and value and HIDDEN_STYLE.search(value)):
            return True
    return False


def _collapse(text: str) -> str:
    """HTML whitespace rules: runs collapse to one space; <br> line breaks survive."""
    if "\n" not in text:
        return SPACES.sub(" ", text).strip()
    lines = (SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _pre_chunks(raw: str) -> list[str]:
    """A <pre> keeps its lines; blank lines split it into paragraphs."""
    raw = normalise_newlines(raw.replace("\u00a0", " "))
    chunks, current = [], []
    for line in raw.split("\n"):
        if line.strip():
            current.append(line.rstrip())
        elif current:
            chunks.append("\n".join(current))
            current = []
    if current:
        chunks.append("\n".join(current))
    return chunks


def html_blocks(text: str) -> list[Block]:
    """Blocks of an HTML text (see read_html, which also says when text could not be read)."""
    return read_html(text).blocks


class HtmlRead(NamedTuple):
    blocks: list[Block]
    kept: int
    """Characters (spaces not counted) the blocks hold ..."""
    skipped: int
    """... the characters left out on purpose (scripts, styles, the head, hidden elements) ..."""
    source: int
    """... and the characters of text the source holds outside its tags: what both must account for."""

    @property
    def complete(self) -> bool:
        return self.kept + self.skipped >= self.source - _slack(self.source)

    def warning(self, what: str = "The HTML") -> str:
        """'' when the text was read whole, else how much of it was kept."""
        if self.complete:
            return ""
        read = self.kept + self.skipped
        return (f"{what} could be read only in part: it holds about {self.source:,} characters of text (spaces not "
                f"counted) and {read:,} ({_percent(100 * read / max(1, self.source))}) were read; the rest is missing. "
                "The markup is damaged; opening the file in a browser and saving it again (or printing it to PDF) may help.")


def read_html(text: str, deadline: Deadline | None = None) -> HtmlRead:
    """Blocks of an HTML text, checked against the size of the text the source holds.

    libxml2 (lxml) parses as a stream of events, without building a tree, so neither deep
    nesting (1,000 unclosed <div>s) nor a huge text node (a 12 MB <pre>) cuts it short; were
    it cut short anyway, the stdlib html.parser reads the whole text again, and whatever is
    still missing is said in a warning (HtmlRead.warning)."""
    text = _XML_DECLARATION.sub("", text, count=1).replace("\x00", "")  # browsers drop NULs in text too
    source = visible_size(text)
    first = _measured(_read_with_libxml2, text, source, deadline)
    if first.complete:
        return first
    second = _measured(_read_with_html_parser, text, source, deadline)
    return second if second.kept + second.skipped > first.kept + first.skipped else first


def _measured(read: Callable, text: str, source: int, deadline: Deadline | None) -> HtmlRead:
    try:
        reader = read(text, deadline)
    except (DocumentError, MemoryError):
        raise  # the deadline, or the machine's limits: not the markup's fault
    except Exception:  # a parser that gives up on this markup: the check below says what is missing
        return HtmlRead([], 0, 0, source)
    kept = _visible_length("".join(block.text for block in reader.blocks))
    return HtmlRead(reader.blocks, kept, reader.skipped, source)


FEED_CHARS = 1 << 20
"""The parsers are fed this much text at a time; the deadline is checked in between."""


def _read_with_libxml2(text: str, deadline: Deadline | None) -> "BlockReader":
    """libxml2's forgiving HTML parser (5x faster than html.parser), as events into a BlockReader."""
    reader = BlockReader()
    parser = etree.HTMLParser(target=_Events(reader), recover=True, no_network=True, remove_comments=True,
                              remove_pis=True, huge_tree=True, default_doctype=False)
    for start in range(0, len(text), FEED_CHARS):
        if deadline:
            deadline.check("reading the HTML")
        parser.feed(text[start:start + FEED_CHARS])
    parser.close()
    return reader


def _read_with_html_parser(text: str, deadline: Deadline | None) -> "BlockReader":
    reader = BlockReader()
    for start in range(0, len(text), FEED_CHARS):
        if deadline:
            deadline.check("reading the HTML")
        reader.feed(text[start:start + FEED_CHARS])
    reader.close()
    return reader


class _Events:
    """lxml parser target: hands libxml2's parse events to a BlockReader (no tree is built)."""

    def __init__(self, reader: "BlockReader"):
        self.reader = reader

    # libxml2's HTML parser knows no namespaces: a tag is a plain name ("ix:header" included).
    def start(self, tag, attrib):
        self.reader.handle_starttag(tag.lower(), attrib.items())

    def end(self, tag):
        self.reader.handle_endtag(tag.lower())

    def data(self, data):
        self.reader.handle_data(data)

    def close(self):
        self.reader.close_tree()
        return self.reader.blocks


_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")
_WHITESPACE = re.compile(r"\s+")


def visible_size(text: str) -> int:
    """Characters (spaces not counted) an HTML source holds outside its tags and comments.

    A linear scan, independent of any parser: what a reader kept plus what it left out on
    purpose must come to about this much, or text went missing."""
    return _visible_length(html.unescape(_TAG.sub("", _without_comments(text))))


def _without_comments(text: str) -> str:
    """The text with <!-- comments --> removed (an unclosed one runs to the end, as in a browser)."""
    if "<!--" not in text:
        return text
    parts, position = [], 0
    while True:
        start = text.find("<!--", position)
        if start < 0:
            parts.append(text[position:])
            break
        parts.append(text[position:start])
        end = text.find("-->", start + 4)
        if end < 0:
            break
        position = end + 3
    return "".join(parts)


def _visible_length(text: str) -> int:
    return len(_WHITESPACE.sub("", text))


def _slack(source: int) -> int:
    """How far short of the source's size a complete reading may fall (entities, odd markup)."""
    return max(50, source // 200)


def _percent(share: float) -> str:
    return f"{share:.1f} %" if share < 99.95 else "99.9 %"


def decode_html(data: bytes) -> Decoded:
    """Decode HTML bytes using the BOM, the declared charset, then the text rules."""
    declared = META_CHARSET.search(data[:8192]) or XML_ENCODING.search(data[:200])
    hint = declared.group(1).decode("ascii", "ignore").lower() if declared else None
    if hint in WINDOWS_1252_LABELS:
        hint = "cp1252"
    return decode_text(data, hint=hint)


def extract_html(data: bytes, name: str, *, password: str | None, settings: Settings,
                 deadline: Deadline, progress: Callable) -> Extraction:
    decoded = decode_html(data)
    progress("Reading page", 1, 1)
    result = read_html(normalise_newlines(decoded.text), deadline)
    _refuse_unreadable(result, name, "HTML page")
    warnings = encoding_warnings(decoded) + [w for w in [result.warning()] if w]
    return Extraction(format="html", blocks=result.blocks, warnings=warnings)


def _refuse_unreadable(result: HtmlRead, name: str, what: str) -> None:
    """A page that holds text none of which could be read is damaged, not empty."""
    if not result.blocks and not result.complete:
        raise CorruptDocument(name, f"holds about {result.source:,} characters of text, but none could be read "
                              f"(the {what}'s markup is damaged).", "Open it in a browser and save it again, or print it to PDF, then add that.")


# ---- EPUB -------------------------------------------------------------------------------

def extract_epub(data: bytes, name: str, *, password: str | None, settings: Settings,
                 deadline: Deadline, progress: Callable) -> Extraction:
    """Chapters in spine order; a chapter without a heading gets its table-of-contents title."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptDocument(name, "is a damaged or incomplete EPUB (its ZIP directory is missing).",
                              "Download or copy it again, then add it again.") from exc
    with archive:
        try:
            package = read_package(archive)
        except (KeyError, ET.ParseError, ValueError):
            package = None
        if package is None:
            return _epub_with_pymupdf(data, name, deadline, progress)
        return _read_spine(archive, package, name, deadline, progress)


def read_package(archive: zipfile.ZipFile) -> dict | None:
    """{'spine': [path...], 'titles': {path: title}, 'note': str} from container.xml and the OPF.

    Without container.xml, the archive's one package file (*.opf) is used, and 'note' says so."""
    note = ""
    if "META-INF/container.xml" in archive.NameToInfo:
        container = ET.fromstring(archive.read("META-INF/container.xml"))
        rootfile = next((e.get("full-path") for e in container.iter() if _local(e.tag) == "rootfile"), None)
    else:
        packages = [name for name in archive.namelist() if name.lower().endswith(".opf")]
        rootfile = packages[0] if len(packages) == 1 else None
        note = f"The EPUB has no META-INF/container.xml; its package file {rootfile} was found by name." if rootfile else ""
    if not rootfile:
        return None
    opf = ET.fromstring(archive.read(rootfile))
    base = posixpath.dirname(rootfile)
    manifest = {}
    for item in opf.iter():
        if _local(item.tag) == "item" and item.get("href"):
            manifest[item.get("id")] = (_join(base, item.get("href")), item.get("media-type", ""), item.get("properties", ""))
    spine_el = next((e for e in opf.iter() if _local(e.tag) == "spine"), None)
    if spine_el is None:
        return None
    spine = [manifest[ref.get("idref")][0] for ref in spine_el if _local(ref.tag) == "itemref" and ref.get("idref") in manifest]
    titles = _toc_titles(archive, manifest, spine_el.get("toc"))
    return {"spine": spine, "titles": titles, "note": note} if spine else None


def _toc_titles(archive: zipfile.ZipFile, manifest: dict, ncx_id: str | None) -> dict[str, str]:
    """First table-of-contents title per chapter file (EPUB3 nav, else EPUB2 NCX)."""
    titles: dict[str, str] = {}
    try:
        nav = next((path for path, _t, props in manifest.values() if "nav" in props.split()), None)
        if nav:
            _nav_titles(archive.read(nav).decode("utf-8", "replace"), posixpath.dirname(nav), titles)
        elif ncx_id in manifest:
            path = manifest[ncx_id][0]
            _ncx_titles(ET.fromstring(archive.read(path)), posixpath.dirname(path), titles)
    except (KeyError, ET.ParseError, ValueError):
        pass
    return titles


class _NavReader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), []

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._href, " ".join("".join(self._text).split())))
            self._href = None


def _nav_titles(html: str, base: str, titles: dict[str, str]) -> None:
    reader = _NavReader()
    reader.feed(html)
    for href, text in reader.links:
        path = _join(base, urldefrag(href)[0])
        if text and path not in titles:
            titles[path] = text


def _ncx_titles(root: ET.Element, base: str, titles: dict[str, str]) -> None:
    for point in root.iter():
        if _local(point.tag) != "navPoint":
            continue
        text = next((" ".join((e.text or "").split()) for e in point.iter() if _local(e.tag) == "text"), "")
        src = next((e.get("src") for e in point if _local(e.tag) == "content"), None)
        if src and text:
            titles.setdefault(_join(base, urldefrag(src)[0]), text)


def _read_spine(archive: zipfile.ZipFile, package: dict, name: str, deadline: Deadline, progress: Callable) -> Extraction:
    spine, titles = package["spine"], package["titles"]
    blocks: list[Block] = []
    missing: list[str] = []
    partial: list[str] = []
    for number, path in enumerate(spine, start=1):
        deadline.check(f"chapter {number} of {len(spine)}")
        progress("Reading chapter", number, len(spine))
        try:
            raw = archive.read(path)
        except KeyError:
            missing.append(path)
            continue
        result = read_html(normalise_newlines(decode_html(raw).text), deadline)
        chapter = result.blocks
        if not result.complete:
            partial.append(result.warning(f"Chapter {number} ({path})"))
        if titles.get(path) and chapter and chapter[0].kind != "heading":
            chapter.insert(0, Block(text=titles[path], kind="heading", level=1))
        blocks.extend(chapter)
    if not blocks and partial:
        raise CorruptDocument(name, "has chapters holding text none of which could be read (their markup is damaged).",
                              "Open it in an e-book editor and save it again, then add it again.")
    warnings = [package["note"]] if package.get("note") else []
    if missing:
        warnings.append(f"{len(missing)} chapter file(s) listed in the EPUB are missing and were skipped: {', '.join(missing[:5])}.")
    return Extraction(format="epub", blocks=blocks, warnings=warnings + partial)


def _epub_with_pymupdf(data: bytes, name: str, deadline: Deadline, progress: Callable) -> Extraction:
    """Fallback for EPUBs whose package file Folio cannot understand: MuPDF's own reader."""
    import pymupdf

    from .mupdf_blocks import page_blocks
    from .pdf import join_lines

    try:
        doc = pymupdf.open(stream=data, filetype="epub")
    except Exception as exc:
        raise CorruptDocument(name, "is not a readable EPUB (its package is damaged).", "Open and re-save it in an e-book editor, then add it again.") from exc
    with doc:
        blocks = []
        for index in range(doc.page_count):
            deadline.check(f"page {index + 1}")
            progress("Reading page", index + 1, doc.page_count)
            for item in page_blocks(doc.load_page(index), pymupdf.TEXTFLAGS_BLOCKS):
                text = join_lines(item[4]) if item[6] == 0 else ""
                if text:
                    blocks.append(Block(text=text))
    return Extraction(format="epub", blocks=blocks, warnings=["The EPUB's package file could not be read, so chapter headings may be missing."])


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _join(base: str, href: str) -> str:
    return posixpath.normpath(posixpath.join(base, unquote(href))).lstrip("/")

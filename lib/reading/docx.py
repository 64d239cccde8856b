"""DOCX to Blocks: the body in document order (paragraphs with heading levels, list items,
table rows in their place, text boxes), then headers/footers, footnotes and endnotes.

python-docx opens the package; the body XML is walked directly so paragraphs and tables
stay interleaved, merged cells are read once, and equations (OMML) and text boxes are not
lost. When python-docx refuses a damaged package (a missing image, ISO Strict namespaces),
the same walker reads the main part straight from the ZIP and a warning says so.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from typing import Callable, Iterator

from lxml import etree

from ..config import Settings
from ..documents import Block, Extraction
from ..errors import CorruptDocument
from .guards import Deadline

HEADING_NAME = re.compile(r"^(?:heading|überschrift|titre|título|titolo|kop|rubrik|заголовок)\s*(\d)$", re.I)
SKIP_IN_TEXT = {"pPr", "rPr", "txbxContent", "Fallback", "del", "moveFrom", "instrText", "delInstrText",
                "fldData", "sectPr", "tblPr", "trPr", "tcPr", "drawing_props", "commentReference"}
NOTE_SEPARATORS = {"separator", "continuationSeparator", "continuationNotice"}
REL_SUFFIX = {"header": "/header", "footer": "/footer", "footnotes": "/footnotes", "endnotes": "/endnotes",
              "numbering": "/numbering"}
XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True)
"""Entities are never expanded (no XXE, no billion laughs), so lifting libxml2's limits on
text-node size and depth is safe; guards.check_archive bounds the XML's size first."""
FIX = "Open it in Word or LibreOffice, save it as a normal Word document (.docx) and add it again."


def _local(tag) -> str:
    return tag[tag.rfind("}") + 1:] if isinstance(tag, str) else ""


def _attr(element, name: str) -> str | None:
    """A w:-prefixed attribute in either the transitional or the Strict namespace."""
    for key, value in element.attrib.items():
        if _local(key) == name:
            return value
    return None


def _child(element, name: str):
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


# ---- opening -------------------------------------------------------------------------------

class Package:
    """The parts Folio reads: main document, styles, and related parts by kind."""

    def __init__(self, body, styles, related: dict[str, list], warning: str = ""):
        self.body = body
        self.styles = styles
        self.related = related
        self.warning = warning


def open_package(data: bytes, name: str) -> Package:
    """python-docx first; the raw ZIP reader for packages python-docx refuses."""
    try:
        return _with_python_docx(data)
    except zipfile.BadZipFile as exc:
        raise CorruptDocument(name, "is a damaged or incomplete DOCX (its ZIP directory is missing; was it cut short?).",
                              "Copy or download it again and add it again.") from exc
    except Exception as first:
        try:
            package = _with_zipfile(data)
        except Exception as exc:
            raise CorruptDocument(name, f"is a damaged DOCX that cannot be read ({_describe(first)}).", FIX) from exc
        if not _parser_limit(first):  # python-docx's parser keeps libxml2's limits; Folio's lifts them: not damage
            package.warning = (f"The DOCX package is damaged ({_describe(first)}); its text was read directly "
                               "from the document part, so some parts may be missing.")
        return package


def _parser_limit(exc: Exception) -> bool:
    """python-docx refused a part only for libxml2's size or depth limits (a 10 MB text node, 256 levels)."""
    return isinstance(exc, etree.XMLSyntaxError) and "XML_PARSE_HUGE" in str(exc)


def _describe(exc: Exception) -> str:
    text = str(exc).strip("'\"") or type(exc).__name__
    if "purl.oclc.org" in text or "no relationship of type" in text:
        return "it uses the 'Strict Open XML' variant"
    if "amplification" in text:
        return "its XML entities would expand without bound: an entity-expansion attack, not a Word document"
    return text[:160]


def _with_python_docx(data: bytes) -> Package:
    import docx

    document = docx.Document(io.BytesIO(data))
    part = document.part
    related: dict[str, list] = {kind: [] for kind in REL_SUFFIX}
    for rel in part.rels.values():
        if rel.is_external:
            continue
        for kind, suffix in REL_SUFFIX.items():
            if rel.reltype.endswith(suffix):
                related[kind].append(_parse(rel.target_part.blob))
    return Package(document.element.body, document.styles.element, related)


def _with_zipfile(data: bytes) -> Package:
    """Find the main part through the package relationships and parse the XML parts directly."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        main = _rel_targets(archive, "_rels/.rels", "", "/officeDocument")
        if not main:
            raise KeyError("no main document part")
        root = _parse(archive.read(main[0]))
        body = _child(root, "body")
        if body is None:
            raise KeyError("the main part has no body")
        rels = posixpath.join(posixpath.dirname(main[0]), "_rels", posixpath.basename(main[0]) + ".rels")
        base = posixpath.dirname(main[0])
        styles = _read_optional(archive, _rel_targets(archive, rels, base, "/styles"))
        related = {kind: [_parse(archive.read(p)) for p in _rel_targets(archive, rels, base, suffix) if p in archive.NameToInfo]
                   for kind, suffix in REL_SUFFIX.items()}
    return Package(body, styles, related)


def _rel_targets(archive: zipfile.ZipFile, rels_path: str, base: str, suffix: str) -> list[str]:
    if rels_path not in archive.NameToInfo:
        return []
    out = []
    for rel in _parse(archive.read(rels_path)):
        if (rel.get("Type") or "").endswith(suffix) and rel.get("TargetMode") != "External":
            target = rel.get("Target") or ""
            out.append(target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(base, target)))
    return out


def _read_optional(archive: zipfile.ZipFile, paths: list[str]):
    for path in paths:
        if path in archive.NameToInfo:
            return _parse(archive.read(path))
    return None


def _parse(blob: bytes):
    return etree.fromstring(blob, parser=XML_PARSER)


# ---- styles --------------------------------------------------------------------------------

def style_map(styles) -> dict[str, tuple[str, int]]:
    """styleId -> (kind, level): 'heading' with 1..6 for Title/Heading N/outline levels, 'list_item', or 'paragraph'."""
    if styles is None:
        return {}
    raw = {}
    for style in styles:
        if _local(style.tag) != "style":
            continue
        style_id = _attr(style, "styleId")
        name_el, based_el, ppr = _child(style, "name"), _child(style, "basedOn"), _child(style, "pPr")
        outline = _child(ppr, "outlineLvl") if ppr is not None else None
        raw[style_id] = {
            "name": (_attr(name_el, "val") if name_el is not None else "") or "",
            "based": _attr(based_el, "val") if based_el is not None else None,
            "outline": _attr(outline, "val") if outline is not None else None,
            "numbered": ppr is not None and _child(ppr, "numPr") is not None,
        }
    return {style_id: _classify(style_id, raw) for style_id in raw}


def _classify(style_id: str, raw: dict) -> tuple[str, int]:
    info = raw[style_id]
    name = info["name"].strip()
    match = HEADING_NAME.match(name) or HEADING_NAME.match(style_id or "")
    if match and int(match.group(1)) > 0:
        return "heading", min(int(match.group(1)), 6)
    if name.lower() == "title":
        return "heading", 1
    outline = _inherited(style_id, raw, "outline")
    if outline is not None and outline.isdigit() and int(outline) < 9:
        return "heading", min(int(outline) + 1, 6)
    if "list" in name.lower() or _inherited(style_id, raw, "numbered"):
        return "list_item", 0
    return "paragraph", 0


def style_numbers(styles) -> dict[str, tuple[str, int]]:
    """styleId -> (numId, level) for styles that number their paragraphs (often headings)."""
    if styles is None:
        return {}
    raw = {}
    for style in styles:
        if _local(style.tag) != "style":
            continue
        ppr, based = _child(style, "pPr"), _child(style, "basedOn")
        raw[_attr(style, "styleId")] = {"based": _attr(based, "val") if based is not None else None,
                                        "num": _num_pr(ppr) if ppr is not None else None}
    return {style_id: found for style_id in raw if (found := _inherited(style_id, raw, "num"))}


def _num_pr(ppr) -> tuple[str, int] | None:
    """(numId, level) of a w:numPr, None when absent; numId '0' switches numbering off."""
    num_pr = _child(ppr, "numPr")
    if num_pr is None:
        return None
    num_id, ilvl = _child(num_pr, "numId"), _child(num_pr, "ilvl")
    level = _attr(ilvl, "val") if ilvl is not None else "0"
    return (_attr(num_id, "val") or "0" if num_id is not None else "", int(level) if (level or "").isdigit() else 0)


class Numbering:
    """Word's automatic list numbers ('1.', '(a)', 'iv.'), counted in document order.

    Word draws them from numbering.xml, so they are not in the paragraph text; legal and
    technical documents are cited by them ("clause 4.2(b)"), so Folio writes them back."""

    def __init__(self, root, style_numbers: dict[str, tuple[str, int]] | None = None):
        self.lists: dict[str, dict[int, tuple[str, str, int]]] = {}
        self.counters: dict[str, dict[int, int]] = {}
        self.shared: dict[str, str] = {}
        self.restarts: dict[str, set[int]] = {}
        if root is None:
            return
        abstract, links, instances = {}, {}, {}
        for element in root:
            if _local(element.tag) == "abstractNum":
                abstract_id = _attr(element, "abstractNumId")
                abstract[abstract_id] = _levels(element)
                link = _child(element, "numStyleLink")
                if link is not None:
                    links[abstract_id] = _attr(link, "val")
            elif _local(element.tag) == "num":
                ref = _child(element, "abstractNumId")
                instances[_attr(element, "numId")] = (_attr(ref, "val") if ref is not None else None, element)
        for num_id, (abstract_id, element) in instances.items():
            levels = dict(_linked_levels(abstract_id, abstract, links, instances, style_numbers or {}))
            overrides = _overrides(element, levels)
            levels.update(overrides)
            self.lists[num_id] = levels
            self.shared[num_id] = f"abstract:{abstract_id}"  # instances of one list share its counters
            self.restarts[num_id] = set(overrides)

    def label(self, num_id: str, level: int) -> str:
        """The next number of this list at this level ('' for bullets and unknown lists)."""
        levels = self.lists.get(num_id)
        if not levels or level not in levels:
            return ""
        counts = self.counters.setdefault(self.shared.get(num_id, num_id), {})
        if level in self.restarts.get(num_id, ()):  # an instance that restarts: first use only
            self.restarts[num_id].discard(level)
            counts.pop(level, None)
        counts[level] = counts.get(level, levels[level][2] - 1) + 1
        for deeper in [k for k in counts if k > level]:
            del counts[deeper]
        fmt, text, _start = levels[level]
        if fmt in ("bullet", "none") or not text:
            return ""

        def number(match) -> str:
            at = int(match.group(1)) - 1
            at_fmt, _text, at_start = levels.get(at, ("decimal", "", 1))
            return format_number(counts.get(at, at_start), at_fmt)

        return re.sub(r"%([1-9])", number, text).strip()


def _linked_levels(abstract_id, abstract: dict, links: dict, instances: dict, style_numbers: dict) -> dict:
    """An abstract list's levels; one that only names a numbering style (numStyleLink, as
    Pages and Word's list styles write) borrows the levels of the list that style uses."""
    for _ in range(5):  # links can chain; a cycle stops here
        if abstract.get(abstract_id) or abstract_id not in links:
            return abstract.get(abstract_id, {})
        target = style_numbers.get(links[abstract_id])
        if not target or target[0] not in instances:
            return {}
        abstract_id = instances[target[0]][0]
    return {}


def _levels(element) -> dict[int, tuple[str, str, int]]:
    """ilvl -> (numFmt, lvlText, start) of an abstractNum (or an override)."""
    out = {}
    for lvl in element:
        if _local(lvl.tag) != "lvl" or not (_attr(lvl, "ilvl") or "").isdigit():
            continue
        values = {name: _attr(child, "val") for name in ("numFmt", "lvlText", "start")
                  if (child := _child(lvl, name)) is not None}
        start = values.get("start") or "1"
        out[int(_attr(lvl, "ilvl"))] = (values.get("numFmt") or "decimal", values.get("lvlText") or "",
                                         int(start) if start.isdigit() else 1)
    return out


def _overrides(num, levels: dict) -> dict[int, tuple[str, str, int]]:
    """A list instance's own start values and level definitions."""
    out = {}
    for override in num:
        if _local(override.tag) != "lvlOverride" or not (_attr(override, "ilvl") or "").isdigit():
            continue
        level = int(_attr(override, "ilvl"))
        out.update(_levels(override))
        start = _child(override, "startOverride")
        if start is not None and (_attr(start, "val") or "").isdigit():
            fmt, text, _ = out.get(level, levels.get(level, ("decimal", "%1.", 1)))
            out[level] = (fmt, text, int(_attr(start, "val")))
    return out


ROMAN = ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l"), (40, "xl"),
         (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"))


def format_number(n: int, fmt: str) -> str:
    """A list counter in Word's number formats (others fall back to decimal)."""
    if fmt in ("lowerLetter", "upperLetter") and n > 0:
        letter = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)  # Word: y, z, aa, bb
        return letter.upper() if fmt == "upperLetter" else letter
    if fmt in ("lowerRoman", "upperRoman") and 0 < n < 4000:
        out = ""
        for value, numeral in ROMAN:
            while n >= value:
                out, n = out + numeral, n - value
        return out.upper() if fmt == "upperRoman" else out
    if fmt == "decimalZero":
        return f"{n:02d}"
    return str(n)


def _inherited(style_id: str, raw: dict, key: str):
    """A style property, following basedOn (a cycle-proof walk of at most 20 steps)."""
    for _ in range(20):
        info = raw.get(style_id)
        if info is None:
            return None
        if info[key]:
            return info[key]
        style_id = info["based"]
    return None


# ---- walking the XML ---------------------------------------------------------------------

class Walker:
    """Turns body-like XML (body, cell, text box, header, note) into Blocks in order."""

    def __init__(self, styles: dict[str, tuple[str, int]], deadline: Deadline, progress: Callable,
                 numbering: Numbering | None = None, style_numbers: dict[str, tuple[str, int]] | None = None):
        self.styles = styles
        self.numbering = numbering or Numbering(None)
        self.style_numbers = style_numbers or {}
        self.deadline = deadline
        self.progress = progress
        self.seen = 0

    def blocks(self, container) -> Iterator[Block]:
        for child in container:
            self._tick()
            name = _local(child.tag)
            if name == "p":
                yield from self.paragraph(child)
            elif name == "tbl":
                yield from self.table(child)
            elif name == "sdt":
                content = _child(child, "sdtContent")
                if content is not None:
                    yield from self.blocks(content)
            elif name in ("customXml", "ins", "moveTo", "smartTag", "AlternateContent", "Choice"):
                yield from self.blocks(child)

    def _tick(self) -> None:
        self.seen += 1
        if self.seen % 500 == 0:
            self.deadline.check(f"element {self.seen}")
            self.progress("Reading paragraphs", self.seen, None)

    def paragraph(self, p) -> Iterator[Block]:
        kind, level = self._paragraph_kind(p)
        text = paragraph_text(p).strip()
        label = self._number(p)  # counted even for an empty paragraph, as Word does
        if label and text:
            text = f"{label} {text}"
        if text:
            yield Block(text=text, kind=kind, level=level)
        for box in _text_boxes(p):
            for block in self.blocks(box):
                yield Block(text=block.text, kind="textbox" if block.kind != "table" else "table")

    def _paragraph_kind(self, p) -> tuple[str, int]:
        ppr = _child(p, "pPr")
        if ppr is None:
            return "paragraph", 0
        outline = _child(ppr, "outlineLvl")
        if outline is not None and (_attr(outline, "val") or "").isdigit() and int(_attr(outline, "val")) < 9:
            return "heading", min(int(_attr(outline, "val")) + 1, 6)
        style = _child(ppr, "pStyle")
        kind, level = self.styles.get(_attr(style, "val") if style is not None else None, ("paragraph", 0))
        if kind == "paragraph" and _child(ppr, "numPr") is not None:
            return "list_item", 0
        return kind, level

    def _number(self, p) -> str:
        ppr = _child(p, "pPr")
        found = _num_pr(ppr) if ppr is not None else None
        if found is None and ppr is not None:
            style = _child(ppr, "pStyle")
            found = self.style_numbers.get(_attr(style, "val") if style is not None else None)
        if not found or found[0] in ("", "0"):
            return ""
        return self.numbering.label(*found)

    def table(self, tbl) -> Iterator[Block]:
        """One Block per row: its non-empty cells joined by ' | ' (merged cells appear once)."""
        for row in _rows(tbl):
            cells = []
            for cell in _cells(row):
                text = " ".join(b.text.replace("\n", " ") for b in self.blocks(cell))
                if text.strip():
                    cells.append(text.strip())
            if cells:
                yield Block(text=" | ".join(cells), kind="table")

    def notes(self, root, label: str) -> Iterator[Block]:
        """Footnotes or endnotes, numbered in order, separators skipped."""
        number = 0
        for note in root:
            if _local(note.tag) not in ("footnote", "endnote") or _attr(note, "type") in NOTE_SEPARATORS:
                continue
            text = "\n".join(b.text for b in self.blocks(note)).strip()
            if text:
                number += 1
                yield Block(text=f"{label} {number}: {text}", kind="footnote")


def _rows(tbl) -> Iterator:
    for child in tbl:
        name = _local(child.tag)
        if name == "tr":
            yield child
        elif name in ("sdt", "customXml"):
            content = _child(child, "sdtContent") if name == "sdt" else child
            if content is not None:
                yield from _rows(content)


def _cells(row) -> Iterator:
    """A row's cells, without the continuation cells of vertical merges (Word shows none of
    their content: the merged cell above already holds it)."""
    for child in row:
        name = _local(child.tag)
        if name == "tc":
            if not _continues_merge(child):
                yield child
        elif name in ("sdt", "customXml"):
            content = _child(child, "sdtContent") if name == "sdt" else child
            if content is not None:
                yield from _cells(content)


def _continues_merge(cell) -> bool:
    props = _child(cell, "tcPr")
    merge = _child(props, "vMerge") if props is not None else None
    return merge is not None and _attr(merge, "val") in (None, "continue")


def paragraph_text(p) -> str:
    """Visible text of a paragraph: runs, hyperlinks, fields' results, equations; no deleted text."""
    out: list[str] = []
    _collect(p, out)
    return "".join(out)


def _collect(element, out: list[str]) -> None:
    for child in element:
        name = _local(child.tag)
        if name == "t":
            out.append(child.text or "")
            for node in child:  # an entity reference (&name;, never written by Word) is kept as written, with the text after it
                out.append((node.text if _is_entity(node) else "") + (node.tail or ""))
        elif name == "tab" and _local(element.tag) == "r":
            out.append("\t")
        elif name in ("br", "cr"):
            out.append("\n")
        elif name == "noBreakHyphen":
            out.append("-")
        elif name not in SKIP_IN_TEXT:
            _collect(child, out)


def _is_entity(node) -> bool:
    return node.tag is etree.Entity


def _text_boxes(p) -> Iterator:
    """Text-box contents anchored in this paragraph, once each (the VML fallback copy is skipped)."""
    stack = list(reversed(p))  # depth first, in document order: the next element is at the end
    while stack:
        element = stack.pop()
        name = _local(element.tag)
        if name == "txbxContent":
            yield element
        elif name != "Fallback":
            stack.extend(reversed(element))


# ---- the extractor ---------------------------------------------------------------------

def extract_docx(data: bytes, name: str, *, password: str | None, settings: Settings,
                 deadline: Deadline, progress: Callable) -> Extraction:
    package = open_package(data, name)
    numbered_styles = style_numbers(package.styles)
    numbering = Numbering(package.related["numbering"][0] if package.related["numbering"] else None, numbered_styles)
    walker = Walker(style_map(package.styles), deadline, progress, numbering, numbered_styles)
    blocks = _unique(walker, package.related["header"], "header")
    blocks += list(walker.blocks(package.body))
    blocks += _unique(walker, package.related["footer"], "footer")
    for root in package.related["footnotes"]:
        blocks += walker.notes(root, "Footnote")
    for root in package.related["endnotes"]:
        blocks += walker.notes(root, "Endnote")
    progress("Reading paragraphs", walker.seen, walker.seen)
    warnings = [package.warning] if package.warning else []
    if _declares_entities(package.body):
        warnings.append("The DOCX declares its own XML entities (Word never does: it may be hostile); "
                        "they were not expanded and appear as written (&name;).")
    return Extraction(format="docx", blocks=blocks, warnings=warnings)


def _declares_entities(body) -> bool:
    try:
        dtd = body.getroottree().docinfo.internalDTD
        return dtd is not None and any(True for _entity in dtd.iterentities())
    except (AttributeError, ValueError):
        return False


def _unique(walker: Walker, roots: list, kind: str) -> list[Block]:
    """Header or footer text, each distinct paragraph once (sections repeat them)."""
    seen, out = set(), []
    for root in roots:
        for block in walker.blocks(root):
            if block.text not in seen:
                seen.add(block.text)
                out.append(Block(text=block.text, kind=kind))
    return out

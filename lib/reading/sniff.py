"""Decide a file's format from its bytes, never from its name.

    detect_format(pdf_bytes, "report.docx")   -> 'pdf'   (a PDF named .docx is a PDF)
    detect_format(html_bytes, "page.pdf")     -> 'html'
    detect_format(b"# Title\\n...", "a.txt")   -> 'markdown'

The name only breaks ties the bytes cannot: Markdown versus plain text, and the kind of
a ZIP archive too damaged to list.
"""

from __future__ import annotations

import io
import re
import zipfile

from ..errors import CorruptDocument, UnsupportedFormat

SUPPORTED = "Folio reads PDF, DOCX, EPUB, HTML, plain text and Markdown."
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
DOCX_MAIN_TYPE = b"wordprocessingml.document.main+xml"
EPUB_MIMETYPE = b"application/epub+zip"
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd", ".mkdn")
HTML_TAG = re.compile(rb"<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>]|meta\s|title>|div[\s>]|p>|h[1-6][\s>]|table[\s>])", re.I)
XHTML_NS = re.compile(rb"<html[^>]*xmlns=[\"']http://www\.w3\.org/1999/xhtml", re.I)
ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.M)
SETEXT_UNDERLINE = re.compile(r"^[^\n]*\S[^\n]*\n {0,3}(=+|-{2,})[ \t]*$", re.M)

# Magic numbers of common non-documents, so the refusal can say what the file is.
KNOWN_BINARIES = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office file (.doc/.xls/.ppt)", "Save it as .docx or PDF and add it again."),
    (b"\x89PNG", "a PNG image", "Put the image in a PDF (scanned pages are read with OCR) and add that."),
    (b"\xff\xd8\xff", "a JPEG image", "Put the image in a PDF (scanned pages are read with OCR) and add that."),
    (b"GIF8", "a GIF image", ""),
    (b"II*\x00", "a TIFF image", "Convert it to PDF and add that."),
    (b"MM\x00*", "a TIFF image", "Convert it to PDF and add that."),
    (b"{\\rtf", "an RTF file", "Save it as .docx or PDF and add it again."),
    (b"\x1f\x8b", "a gzip archive", "Unpack it and add the documents inside."),
    (b"7z\xbc\xaf", "a 7-Zip archive", "Unpack it and add the documents inside."),
    (b"Rar!", "a RAR archive", "Unpack it and add the documents inside."),
    (b"\x7fELF", "a program, not a document", ""),
    (b"MZ", "a Windows program, not a document", ""),
)
TEXT_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def detect_format(data: bytes, name: str) -> str:
    """Return one of lib.documents.FORMATS for these bytes, or raise a DocumentError."""
    if not data:
        raise CorruptDocument(name, "is empty (0 bytes).", "Check the file was saved or copied completely and add it again.")
    if is_pdf(data):
        return "pdf"
    if data.startswith(ZIP_MAGIC):
        return _zip_format(data, name)
    _refuse_known_binary(data, name)
    if _looks_binary(data):
        raise UnsupportedFormat(name, "is not a document Folio can read (binary data of an unknown kind).", SUPPORTED)
    if _looks_html(data):
        return "html"
    return "markdown" if _looks_markdown(data, name) else "text"


PDF_HEADER = re.compile(rb"%PDF-\d\.\d")
PDF_SEARCH = 1024
"""Readers accept a PDF header anywhere in the first kilobyte (junk before it is common)."""
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
"""Control bytes no text file holds (tab, newlines, form feed and escape are text)."""


def is_pdf(data: bytes) -> bool:
    """Whether the file starts as ISO 32000 defines a PDF: with the header "%PDF-1.7".

    Real PDFs sometimes carry junk before the header (a mail or download wrapper), and
    readers accept the header anywhere in the first kilobyte; Folio does too, but only at
    the start of a line, and only when the preamble or what follows the header is binary,
    as every real PDF's streams are. A text file that mentions "%PDF-", even on a line of
    its own, stays a text file."""
    if data.startswith(b"%PDF-"):
        return True
    for match in PDF_HEADER.finditer(data, 0, PDF_SEARCH + 8):
        at = match.start()
        if at > PDF_SEARCH:
            break
        preamble = data[:at]
        if _binary(preamble) or (preamble.endswith((b"\n", b"\r")) and _binary(data[at:at + 65536])):
            return True
    return False


def _binary(chunk: bytes) -> bool:
    """Whether `chunk` holds bytes no text file would (NULs and other control bytes)."""
    return _CONTROL_BYTES.search(chunk) is not None


def _zip_format(data: bytes, name: str) -> str:
    """docx or epub by the archive's members; damaged archives are judged by their local headers."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "word/document.xml" in names:
                return "docx"
            if "mimetype" in names and archive.getinfo("mimetype").file_size < 100:
                mimetype = archive.read("mimetype").strip()
                if mimetype == EPUB_MIMETYPE:
                    return "epub"
                if mimetype.startswith(b"application/vnd.oasis.opendocument"):
                    raise UnsupportedFormat(name, "is an OpenDocument file (LibreOffice .odt/.ods), which Folio does not read.",
                                            "Save it as .docx or PDF and add that.")
            if "META-INF/container.xml" in names:
                return "epub"
            if "[Content_Types].xml" in names and archive.getinfo("[Content_Types].xml").file_size < 1_000_000:
                return _ooxml_kind(archive.read("[Content_Types].xml"), name)
    except zipfile.BadZipFile:
        return _damaged_zip_format(data, name)
    except (OSError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise CorruptDocument(name, f"is a damaged ZIP archive ({exc}).", "Open and re-save it, then add it again.") from exc
    raise UnsupportedFormat(name, "is a ZIP archive, not a document.", "Unpack it and add the documents inside. " + SUPPORTED)


def _ooxml_kind(content_types: bytes, name: str) -> str:
    """An Office package whose main part was renamed: its content types still say what it is."""
    if DOCX_MAIN_TYPE in content_types:
        return "docx"
    if b"spreadsheetml" in content_types:
        raise UnsupportedFormat(name, "is a spreadsheet (.xlsx), which Folio does not read.", "Save it as PDF and add that.")
    if b"presentationml" in content_types:
        raise UnsupportedFormat(name, "is a presentation (.pptx), which Folio does not read.", "Save it as PDF and add that.")
    raise UnsupportedFormat(name, "is an Office package of an unknown kind.", SUPPORTED)


def _damaged_zip_format(data: bytes, name: str) -> str:
    """A truncated archive has no central directory; the first local headers still name its kind."""
    head = data[:65536]
    if head[30:58] == b"mimetype" + EPUB_MIMETYPE or b"META-INF/container.xml" in head:
        return "epub"
    if b"word/" in head or b"[Content_Types].xml" in head or name.lower().endswith(".docx"):
        return "docx"
    if name.lower().endswith(".epub"):
        return "epub"
    raise CorruptDocument(name, "is a damaged or incomplete ZIP archive.", "Copy or download it again and add it again.")


def _refuse_known_binary(data: bytes, name: str) -> None:
    for magic, what, action in KNOWN_BINARIES:
        if data.startswith(magic):
            raise UnsupportedFormat(name, f"is {what}, not a document Folio can read.", action or SUPPORTED)


def _looks_binary(data: bytes) -> bool:
    """True for bytes that no text encoding Folio knows would produce."""
    sample = data[:8192]
    if sample.startswith(TEXT_BOMS) or utf16_without_bom(sample):
        return False
    # A stray control byte does not make a text binary (they are dropped on reading), nor do
    # NULs scattered in otherwise valid UTF-8; more than one other control byte in a hundred does.
    controls = len(_CONTROL_BYTES.findall(sample))
    if controls <= max(2, len(sample) // 100):
        return False
    without_nuls = sample.replace(b"\x00", b"")
    others = controls - (len(sample) - len(without_nuls))
    return not (others <= max(2, len(without_nuls) // 100) and _is_utf8(without_nuls))


def utf16_without_bom(sample: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when `sample` reads as UTF-16 text without a byte-order mark.

    Latin text shows it at once (every other byte is NUL); other scripts have few NULs or
    none, so both byte orders are decoded and the one that gives text of one script (plus
    spaces, digits and punctuation) wins. UTF-16 of any script has control bytes among the
    low bytes of its characters, and text in UTF-8 or a legacy encoding (GB18030, Shift_JIS,
    Big5, cp1251 ...) has none, so a sample without them is never taken for UTF-16."""
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.6 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.6 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    controls = len(_CONTROL_BYTES.findall(sample))
    if len(sample) < 8 or controls < max(2, len(sample) // 100):
        return None
    if controls < UTF16_CONTROL_SHARE * len(sample) and _is_utf8(sample):
        return None  # UTF-8 with a few stray NULs, not UTF-16
    sample = sample[: len(sample) - len(sample) % 2]
    scores = {encoding: _script_share(sample, encoding) for encoding in ("utf-16-le", "utf-16-be")}
    best = max(scores, key=scores.get)
    return best if scores[best] >= UTF16_TEXT_SHARE else None


UTF16_CONTROL_SHARE = 0.05
"""UTF-16 of a non-Latin script has control bytes in one byte of ten or more (the high bytes of
Cyrillic, Arabic, Indic, Thai letters; a ninth of CJK's low bytes); UTF-8 text with fewer is UTF-8."""
UTF16_TEXT_SHARE = 0.9
"""Share of characters that must belong to one script (or be common) to read as UTF-16 text."""
# Unicode blocks of running text, grouped by script; anything else (unassigned, private use,
# symbols, controls) counts against reading the bytes this way.
_SCRIPT_RANGES = (
    (0x0000, 0x007F, "common"), (0x0080, 0x024F, "latin"), (0x0370, 0x03FF, "greek"), (0x0400, 0x052F, "cyrillic"),
    (0x0530, 0x058F, "armenian"), (0x0590, 0x05FF, "hebrew"), (0x0600, 0x06FF, "arabic"), (0x0750, 0x077F, "arabic"),
    (0x0900, 0x0DFF, "indic"), (0x0E00, 0x0E7F, "thai"), (0x1E00, 0x1EFF, "latin"), (0x2000, 0x206F, "common"),
    (0x3000, 0x303F, "cjk"), (0x3040, 0x30FF, "cjk"), (0x3400, 0x4DBF, "cjk"), (0x4E00, 0x9FFF, "cjk"),
    (0xAC00, 0xD7A3, "hangul"), (0xFF00, 0xFFEF, "cjk"),
)
_CONTROL_CHARS = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D}


def _is_utf8(sample: bytes) -> bool:
    """Valid UTF-8, forgiving a character cut at the end of the sample."""
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        return exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data"


def _script_share(sample: bytes, encoding: str) -> float:
    """Share of the decoded characters that are common or of the sample's main script (0 if invalid)."""
    try:
        text = sample.decode(encoding)
    except UnicodeDecodeError:
        return 0.0  # an unpaired surrogate: not this byte order
    scripts: dict[str, int] = {}
    for char in text:
        code = ord(char)
        if code in _CONTROL_CHARS:
            return 0.0
        script = _script(code)
        scripts[script] = scripts.get(script, 0) + 1
    common = scripts.pop("common", 0)
    scripts.pop("other", None)
    main = max(scripts.values(), default=0)
    return (common + main) / max(1, len(text)) if main else 0.0


def _script(code: int) -> str:
    for low, high, script in _SCRIPT_RANGES:
        if low <= code <= high:
            return script
    return "other"


def _looks_html(data: bytes) -> bool:
    """HTML by its opening tags; a Markdown file with a stray <div> further down stays Markdown."""
    head = _ascii_view(data[:4096]).lstrip()
    if head.startswith((b"<!doctype html", b"<!DOCTYPE html", b"<!DOCTYPE HTML", b"<html", b"<HTML")):
        return True
    if head.startswith(b"<?xml") and XHTML_NS.search(head):
        return True
    return head.startswith((b"<", b"<!--")) and HTML_TAG.search(head) is not None


def _ascii_view(sample: bytes) -> bytes:
    """Drop BOMs and UTF-16 NULs so tag checks work for any encoding."""
    for bom in TEXT_BOMS:
        if sample.startswith(bom):
            sample = sample[len(bom):]
            break
    if b"\x00" in sample[:200]:
        sample = sample.replace(b"\x00", b"")
    return sample


def _looks_markdown(data: bytes, name: str) -> bool:
    if name.lower().endswith(MARKDOWN_SUFFIXES):
        return True
    if name.lower().endswith(".txt"):
        return False  # a .txt with a '# ' line is still the user's plain text
    sample = _ascii_view(data[:65536]).decode("utf-8", "ignore")
    return ATX_HEADING.search(sample) is not None or SETEXT_UNDERLINE.search(sample) is not None

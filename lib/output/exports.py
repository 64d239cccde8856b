"""Answers and conversations as files a reader can take away (no streamlit, no disk I/O).

    answer_markdown(turn) -> str            question, answer with [n] markers, a Sources list
    conversation_markdown(conversation)     every turn, in order
    answer_docx(turn) -> bytes              Word: citations as real footnotes (document, page, quote)
    conversation_docx(conversation)         one footnote sequence across all turns
    history_csv(conversations) -> bytes     one row per turn (UTF-8 with BOM, so Excel reads Chinese)

A turn is a plain dict: lib.asking.answering.Answer.to_json() ({"answer", "thinking", "citations",
"warnings", "calls"}) plus "question", "settings", "created_at" (as lib.library.store returns it).
A conversation is a dict with "title", "documents", "settings", "created_at" and "turns".
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..asking.citations import ID_PATTERN
from ..documents import page_range_text
from .outcome import answer_state, configured_model, server_name, short_model, times, turn_notes
from .plan_view import call_rows, calls_markdown, calls_text, documents_line, number_text, plan_summary, planned

STATUS_TEXT = {
    "verified": "verified",
    "unverified": "unverified: the quoted words were not found in the passage",
    "invalid": "invalid: no such passage",
}
_PASSAGE_ID = re.compile(ID_PATTERN)
# A bracket group ([kzt-3], [kzt-3, kzt-4], 【kzt-3】); it cites when every part is an ID.
_MARKER_GROUP = re.compile(r"[\[【［〔]([^\[\]【】［］〔〕\n]{1,200})[\]】］〕]")
_ID_SPLIT = re.compile(r"[\s,;，；、]+")
# XML 1.0 forbids most control characters; PDFs carry them (form feeds, NULs).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_REF = "\ue000"  # private-use sentinel around a footnote number while formatting


# --- citations: numbering shared by every format ------------------------------------


@dataclass(frozen=True)
class Numbered:
    """A citation with its number in the exported text."""

    number: int
    citation: dict


def link_citations(answer: str, citations: Sequence[dict]) -> tuple[list[str | int], list[Numbered]]:
    """Split `answer` into text and citation numbers; [ID] groups become numbers 1..n.

    The k-th occurrence of an ID is the k-th citation of that ID (the order lib.asking.citations
    reports them); an ID seen more often than cited reuses its last number; an ID with no
    citation becomes an invalid one; citations never marked in the text are appended.
    """
    queues: dict[str, list[dict]] = {}
    for citation in citations:
        queues.setdefault(str(citation.get("id", "")).lower(), []).append(citation)
    state = _Numbering(queues)
    pieces: list[str | int] = []
    position = 0
    for group in _MARKER_GROUP.finditer(answer):
        ids = [part.lower() for part in _ID_SPLIT.split(group.group(1)) if part]
        if not ids or not all(i in queues or _PASSAGE_ID.fullmatch(i) for i in ids):
            continue  # ordinary brackets, not a citation
        pieces.append(answer[position : group.start()])
        pieces.extend(state.number(i) for i in ids)
        position = group.end()
    pieces.append(answer[position:])
    unmarked = [c for c in citations if id(c) not in state.numbers]
    if unmarked:
        pieces.append(" ")
        pieces.extend(state.add(c) for c in unmarked)
    return [p for p in pieces if p != ""], state.numbered


class _Numbering:
    def __init__(self, queues: dict[str, list[dict]]):
        self.queues = queues
        self.used: dict[str, int] = {}
        self.numbers: dict[int, int] = {}
        self.numbered: list[Numbered] = []

    def add(self, citation: dict) -> int:
        if id(citation) not in self.numbers:
            self.numbers[id(citation)] = len(self.numbered) + 1
            self.numbered.append(Numbered(len(self.numbered) + 1, citation))
        return self.numbers[id(citation)]

    def number(self, passage_id: str) -> int:
        queue = self.queues.get(passage_id)
        if not queue:
            missing = {"id": passage_id, "document": "", "page": None, "quote": "", "status": "invalid"}
            self.queues[passage_id] = queue = [missing]
        k = min(self.used.get(passage_id, 0), len(queue) - 1)
        self.used[passage_id] = k + 1
        return self.add(queue[k])


def page_text(citation: dict) -> str:
    """'p. 4', 'pp. 4-5' (printed labels win), or '' when the citation has no page."""
    page, end, label = citation.get("page"), citation.get("page_end"), citation.get("page_label") or None
    if page in (None, ""):
        return f"p. {label}" if label else ""
    return page_range_text(page, end if end not in (None, "") else None, label)


def source_text(citation: dict) -> str:
    """'lease.pdf, p. 4 (passage kzt-3): “quote” (verified)', the quote verbatim."""
    parts = [p for p in (citation.get("document") or "", page_text(citation)) if p]
    head = ", ".join(parts) or "unknown source"
    if citation.get("id"):
        head += f" (passage {citation['id']})"
    quote = citation.get("quote") or ""
    status = STATUS_TEXT.get(citation.get("status", ""), citation.get("status", "") or "unchecked")
    return f"{head}: “{quote}” ({status})" if quote else f"{head} ({status})"


# --- Markdown -------------------------------------------------------------------------


def answer_markdown(turn: dict, *, heading_level: int = 2, number: int | None = None) -> str:
    """One question and its answer as Markdown, with a numbered Sources list."""
    hashes = "#" * heading_level
    label = f"Question {number}" if number else "Question"
    pieces, numbered = link_citations(str(turn.get("answer") or ""), turn.get("citations") or [])
    body = "".join(f"[{p}]" if isinstance(p, int) else p for p in pieces).strip()
    lines = [f"{hashes} {label}", "", _blockquote(str(turn.get("question") or "")), "", f"{hashes} Answer", ""]
    state = answer_state(turn)
    if state.text:
        lines += [f"**{state.title}.** {state.text}", ""]
    lines.append(body or "_(no answer text)_")
    lines += _notes_markdown(turn)
    if numbered:
        lines += ["", f"{hashes}# Sources", ""]
        lines += [_indent_continuation(f"- [{n.number}] {source_text(n.citation)}") for n in numbered]
    if planned(turn):
        lines += ["", f"{hashes}# How it was asked", "", plan_summary(turn)]
        ranks = documents_line(turn)
        lines += ["", ranks] if ranks else []
        lines += ["", *calls_markdown(turn)]
    stats = stats_line(turn)
    if stats:
        lines += ["", f"_{stats}_"]
    return "\n".join(lines).rstrip() + "\n"


def conversation_markdown(conversation: dict, *, include_thinking: bool = False) -> str:
    """A whole conversation as Markdown: title, documents, then every turn."""
    lines = [f"# {conversation.get('title') or 'Folio conversation'}", ""]
    names = document_names(conversation)
    if names:
        lines.append("Documents: " + ", ".join(names))
    if conversation.get("created_at"):
        lines.append(f"Started: {conversation['created_at']}")
    lines.append("")
    for number, turn in enumerate(conversation.get("turns") or [], start=1):
        lines += ["---", "", answer_markdown(turn, number=number)]
        if include_thinking and turn.get("thinking"):
            lines += ["<details><summary>Reasoning</summary>", "", str(turn["thinking"]), "", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"


def _blockquote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.strip().splitlines() or [""])


def _indent_continuation(item: str) -> str:
    """A list item whose later lines stay inside it (the quote keeps its line breaks)."""
    return item.replace("\n", "\n    ")


def _notes_markdown(turn: dict) -> list[str]:
    """The warnings the state line does not already say, each once."""
    notes = turn_notes(turn)
    return ["", *(f"> Note: {n}" for n in notes)] if notes else []


def stats_line(turn: dict) -> str:
    """'smollm2.gguf (llama.cpp server; Folio was set to qwen3-128k:14b) · thinking off ·
    9,120 prompt tokens · first token 2.1 s · total 9.8 s · 2025-01-02T10:00:00'.

    Times count from the moment the question was asked, every request included."""
    calls = turn.get("calls") or []
    parts = []
    model, think = turn_model(turn), turn_think(turn)
    if model:
        about = [server_name(turn)]
        configured = configured_model(turn)
        if configured and short_model(configured) != short_model(model):
            about.append(f"Folio was set to {configured}")
        about = [a for a in about if a]
        parts.append(short_model(model) + (f" ({'; '.join(about)})" if about else ""))
    if think is not None:
        parts.append("thinking on" if think else "thinking off")
    prompt = _sum(c.get("prompt_tokens") for c in calls)
    if prompt is not None:
        parts.append(f"{prompt:,} prompt tokens")
    clock = times(turn)
    if clock.get("first_token_s") is not None:
        parts.append(f"first token {clock['first_token_s']:.1f} s")
    if clock.get("total_s") is not None:
        parts.append(f"total {clock['total_s']:.1f} s")
    if turn.get("created_at"):
        parts.append(str(turn["created_at"]))
    return " · ".join(parts)


def turn_model(turn: dict, conversation: dict | None = None) -> str:
    """The model that answered: as the server said (the turn, its last call), then the
    configured name (the turn's settings, the conversation's)."""
    calls = [c for c in turn.get("calls") or [] if isinstance(c, dict)]
    for source in (turn, *reversed(calls), turn.get("settings") or {}, (conversation or {}).get("settings") or {}):
        if source.get("model"):
            return str(source["model"])
    return ""


def turn_think(turn: dict, conversation: dict | None = None) -> bool | None:
    """Whether thinking was on for this answer (None when nothing says)."""
    calls = turn.get("calls") or []
    for source in (turn.get("settings") or {}, turn, *calls, (conversation or {}).get("settings") or {}):
        if source.get("think") is not None:
            return bool(source["think"])
    return None


def document_names(conversation: dict) -> list[str]:
    names = []
    for document in conversation.get("documents") or []:
        name = document.get("name") if isinstance(document, dict) else str(document)
        if name:
            names.append(name)
    return names


# --- Word -------------------------------------------------------------------------------


def answer_docx(turn: dict) -> bytes:
    """One answer as a Word document; each citation is a footnote naming document and page."""
    writer = _DocxWriter(title=str(turn.get("question") or "Folio answer")[:120])
    writer.turn(turn)
    return writer.save()


def conversation_docx(conversation: dict) -> bytes:
    """A conversation as a Word document; footnotes are numbered across all answers."""
    title = str(conversation.get("title") or "Folio conversation")
    writer = _DocxWriter(title=title)
    writer.heading(title, 0)
    names = document_names(conversation)
    if names:
        writer.paragraph("Documents: " + ", ".join(names))
    for number, turn in enumerate(conversation.get("turns") or [], start=1):
        writer.turn(turn, number=number)
    return writer.save()


def xml_safe(text: str) -> str:
    """Text Word can store: characters XML 1.0 forbids are dropped."""
    return _XML_ILLEGAL.sub("", text)


class _DocxWriter:
    """Builds a python-docx Document with a hand-made footnotes part."""

    def __init__(self, title: str):
        import docx

        self.document = docx.Document()
        self.document.core_properties.title = xml_safe(title)
        self.document.core_properties.author = "Folio"
        self.document.core_properties.last_modified_by = "Folio"
        self.footnotes = _Footnotes(self.document)

    def heading(self, text: str, level: int) -> None:
        self.document.add_heading(xml_safe(text), level)

    def paragraph(self, text: str, style: str | None = None):
        return self.document.add_paragraph(xml_safe(text), style=style)

    def turn(self, turn: dict, number: int | None = None) -> None:
        self.heading(f"Question {number}" if number else "Question", 1)
        for line in str(turn.get("question") or "").strip().splitlines() or [""]:
            self.paragraph(line, style="Quote" if self._has_style("Quote") else None)
        self.heading("Answer", 2)
        pieces, numbered = link_citations(str(turn.get("answer") or ""), turn.get("citations") or [])
        footnote_ids = {n.number: self.footnotes.add(source_text(n.citation)) for n in numbered}
        text = "".join(f"{_REF}{footnote_ids[p]}{_REF}" if isinstance(p, int) else p for p in pieces)
        # Word puts the footnote mark right after the words: "quote"¹ not "quote" ¹.
        text = re.sub(r"[ \t]+(?=" + _REF + ")", "", text)
        state = answer_state(turn)
        if state.text:
            paragraph = self.document.add_paragraph()
            paragraph.add_run(xml_safe(f"{state.title}. ")).bold = True
            paragraph.add_run(xml_safe(state.text))
        self._markdown_blocks(text.strip() or "(no answer text)")
        for note in _notes_markdown(turn)[1:]:
            self.paragraph(note.removeprefix("> "))
        if planned(turn):
            self.plan(turn)
        stats = stats_line(turn)
        if stats:
            self.paragraph(stats).runs[0].italic = True

    def plan(self, turn: dict) -> None:
        """How a planned answer was asked: the summary, the ranks read, and a table of its calls."""
        self.heading("How it was asked", 3)
        self.paragraph(plan_summary(turn))
        ranks = documents_line(turn)
        if ranks:
            self.paragraph(ranks)
        rows = call_rows(turn)
        head = ("Call", "Kind", "Reads", "Tokens sent", "Read by the server", "Status", "Total s")
        table = self.document.add_table(rows=1 + len(rows), cols=len(head))
        if self._has_style("Table Grid"):
            table.style = "Table Grid"
        for cell, text in zip(table.rows[0].cells, head):
            cell.text = text
        for row, values in zip(table.rows[1:], rows):
            texts = (values["call"], values["kind"], values["reads"], values["sent"], values["read"],
                     values["status"] + (f": {values['error']}" if values["error"] and values["status"] != "done" else ""),
                     values["total_s"])
            for cell, value in zip(row.cells, texts):
                cell.text = xml_safe(number_text(value))

    def _has_style(self, name: str) -> bool:
        return any(style.name == name for style in self.document.styles)

    def _markdown_blocks(self, text: str) -> None:
        """The answer's light Markdown as Word paragraphs: headings, lists, bold."""
        for block in re.split(r"\n\s*\n", text):
            lines = [line for line in block.splitlines() if line.strip()]
            prose: list[str] = []
            for line in lines:
                heading = re.match(r"^(#{1,6})\s+(.*)$", line)
                item = re.match(r"^\s*(?:([-*+])|(\d+)[.)])\s+(.*)$", line)
                if heading or item:
                    self._prose(prose)
                    prose = []
                if heading:
                    self._inline(self.document.add_heading("", min(len(heading.group(1)) + 1, 4)), heading.group(2))
                elif item:
                    style = "List Bullet" if item.group(1) else "List Number"
                    self._inline(self.document.add_paragraph(style=style), item.group(3))
                else:
                    prose.append(line.strip())
            self._prose(prose)

    def _prose(self, lines: list[str]) -> None:
        if lines:
            self._inline(self.document.add_paragraph(), " ".join(lines))

    def _inline(self, paragraph, text: str) -> None:
        """Runs for **bold** spans and footnote references inside one paragraph."""
        for chunk in re.split(r"(\*\*[^*]+\*\*|" + _REF + r"\d+" + _REF + ")", text):
            if not chunk:
                continue
            if chunk.startswith(_REF):
                self.footnotes.reference(paragraph, int(chunk.strip(_REF)))
            elif chunk.startswith("**") and chunk.endswith("**") and len(chunk) > 4:
                paragraph.add_run(xml_safe(chunk[2:-2])).bold = True
            else:
                paragraph.add_run(xml_safe(chunk))

    def save(self) -> bytes:
        self.footnotes.attach()
        buffer = io.BytesIO()
        self.document.save(buffer)
        return buffer.getvalue()


_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_FOOTNOTES_XML = (
    f'<w:footnotes xmlns:w="{_W}">'
    '<w:footnote w:type="separator" w:id="-1"><w:p><w:pPr><w:spacing w:after="0" w:line="240" '
    'w:lineRule="auto"/></w:pPr><w:r><w:separator/></w:r></w:p></w:footnote>'
    '<w:footnote w:type="continuationSeparator" w:id="0"><w:p><w:pPr><w:spacing w:after="0" '
    'w:line="240" w:lineRule="auto"/></w:pPr><w:r><w:continuationSeparator/></w:r></w:p></w:footnote>'
    "</w:footnotes>"
)
_STYLES_XML = (
    f'<w:styles xmlns:w="{_W}">'
    '<w:style w:type="paragraph" w:styleId="FootnoteText"><w:name w:val="footnote text"/>'
    '<w:basedOn w:val="Normal"/><w:link w:val="FootnoteTextChar"/><w:uiPriority w:val="99"/>'
    '<w:unhideWhenUsed/><w:pPr><w:spacing w:after="0" w:line="240" w:lineRule="auto"/></w:pPr>'
    '<w:rPr><w:sz w:val="20"/><w:szCs w:val="20"/></w:rPr></w:style>'
    '<w:style w:type="character" w:customStyle="1" w:styleId="FootnoteTextChar">'
    '<w:name w:val="Footnote Text Char"/><w:basedOn w:val="DefaultParagraphFont"/>'
    '<w:link w:val="FootnoteText"/><w:uiPriority w:val="99"/><w:rPr><w:sz w:val="20"/>'
    '<w:szCs w:val="20"/></w:rPr></w:style>'
    '<w:style w:type="character" w:styleId="FootnoteReference"><w:name w:val="footnote reference"/>'
    '<w:basedOn w:val="DefaultParagraphFont"/><w:uiPriority w:val="99"/><w:unhideWhenUsed/>'
    '<w:rPr><w:vertAlign w:val="superscript"/></w:rPr></w:style>'
    "</w:styles>"
)
# CT_Settings children that must come after w:footnotePr (schema order).
_AFTER_FOOTNOTE_PR = (
    "endnotePr compat docVars rsids mathPr attachedSchema themeFontLang clrSchemeMapping "
    "doNotIncludeSubdocsInStats doNotAutoCompressPictures forceUpgrade captions readModeInkLockDown "
    "smartTagType schemaLibrary shapeDefaults doNotEmbedSmartTags decimalSymbol listSeparator"
).split()


class _Footnotes:
    """word/footnotes.xml, its relationship, styles and settings: python-docx 1.2 has no API."""

    def __init__(self, document):
        from docx.oxml import parse_xml

        self.document = document
        self.root = parse_xml(_FOOTNOTES_XML)
        self.count = 0

    def add(self, text: str) -> int:
        """A new footnote with this text; returns its id (1, 2, ...)."""
        from lxml import etree

        self.count += 1
        w = f"{{{_W}}}"
        note = etree.SubElement(self.root, w + "footnote", {w + "id": str(self.count)})
        paragraph = etree.SubElement(note, w + "p")
        etree.SubElement(etree.SubElement(paragraph, w + "pPr"), w + "pStyle", {w + "val": "FootnoteText"})
        mark = etree.SubElement(paragraph, w + "r")
        etree.SubElement(etree.SubElement(mark, w + "rPr"), w + "rStyle", {w + "val": "FootnoteReference"})
        etree.SubElement(mark, w + "footnoteRef")
        run = etree.SubElement(paragraph, w + "r")
        body = etree.SubElement(run, w + "t", {"{http://www.w3.org/XML/1998/namespace}space": "preserve"})
        body.text = " " + xml_safe(text)
        return self.count

    def reference(self, paragraph, footnote_id: int) -> None:
        """A superscript footnote mark in the body pointing at footnote `footnote_id`."""
        from docx.oxml import OxmlElement
        from docx.oxml.ns import qn

        run = paragraph.add_run()
        style = OxmlElement("w:rStyle")
        style.set(qn("w:val"), "FootnoteReference")
        run._r.get_or_add_rPr().append(style)
        ref = OxmlElement("w:footnoteReference")
        ref.set(qn("w:id"), str(footnote_id))
        run._r.append(ref)

    def attach(self) -> None:
        """Add the part, its relationship, the two styles and the settings entry (once)."""
        if self.count == 0 or getattr(self, "_attached", False):
            return
        from docx.opc.constants import CONTENT_TYPE as CT
        from docx.opc.constants import RELATIONSHIP_TYPE as RT
        from docx.opc.packuri import PackURI
        from docx.opc.part import XmlPart

        part = XmlPart(PackURI("/word/footnotes.xml"), CT.WML_FOOTNOTES, self.root, self.document.part.package)
        self.document.part.relate_to(part, RT.FOOTNOTES)
        self._add_styles()
        self._add_settings()
        self._attached = True

    def _add_styles(self) -> None:
        from docx.oxml import parse_xml

        styles = self.document.styles.element
        existing = {s.get(f"{{{_W}}}styleId") for s in styles}
        for style in parse_xml(_STYLES_XML):
            if style.get(f"{{{_W}}}styleId") not in existing:
                styles.append(style)

    def _add_settings(self) -> None:
        """<w:footnotePr> naming the separator footnotes, where Word writes it."""
        from docx.oxml import parse_xml

        settings = self.document.settings.element
        if settings.find(f"{{{_W}}}footnotePr") is not None:
            return
        element = parse_xml(f'<w:footnotePr xmlns:w="{_W}"><w:footnote w:id="-1"/><w:footnote w:id="0"/></w:footnotePr>')
        for child in settings:
            if isinstance(child.tag, str) and child.tag.split("}")[-1] in _AFTER_FOOTNOTE_PR:
                child.addprevious(element)
                return
        settings.append(element)


def read_footnotes(docx_bytes: bytes) -> dict[int, str]:
    """Footnote id -> text of a .docx (reopened with python-docx); used by tests and checks."""
    import docx
    from docx.opc.constants import RELATIONSHIP_TYPE as RT
    from lxml import etree

    document = docx.Document(io.BytesIO(docx_bytes))
    for rel in document.part.rels.values():
        if rel.reltype == RT.FOOTNOTES:
            root = etree.fromstring(rel.target_part.blob)
            notes = {}
            for note in root.iter(f"{{{_W}}}footnote"):
                number = int(note.get(f"{{{_W}}}id"))
                if number > 0:
                    notes[number] = "".join(t.text or "" for t in note.iter(f"{{{_W}}}t")).strip()
            return notes
    return {}


# --- CSV ------------------------------------------------------------------------------

_CSV_TEXT_COLUMNS = ("conversation", "question", "answer", "documents", "warnings", "plan")
# Whole numbers stay whole in the file ("10230", not "10230.0"), empty where unknown.
_CSV_INT_COLUMNS = ("conversation_id", "turn", "citations", "verified", "unverified", "invalid", "prompt_tokens",
                    "server_prompt_tokens", "cached_tokens", "answer_tokens", "calls")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def history_csv(conversations: Iterable[dict]) -> bytes:
    """One row per turn of full conversations (Store.get_conversation dicts), as CSV bytes."""
    import pandas as pd

    rows = [_turn_row(c, turn) for c in conversations for turn in c.get("turns") or [] if isinstance(turn, dict)]
    frame = pd.DataFrame(rows, columns=list(_CSV_COLUMNS))
    for column in _CSV_INT_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    for column in _CSV_TEXT_COLUMNS:
        frame[column] = frame[column].map(_defuse_formula)
    # The BOM makes Excel read UTF-8 (Chinese quotes and names) correctly.
    return frame.to_csv(index=False).encode("utf-8-sig")


_CSV_COLUMNS = (
    "conversation_id", "conversation", "turn", "time", "question", "answer", "documents",
    "citations", "verified", "unverified", "invalid", "prompt_tokens", "server_prompt_tokens",
    "first_token_s", "total_s", "cached_tokens", "answer_tokens", "model", "think", "interrupted", "warnings",
    "status", "configured_model", "server", "mode", "calls", "plan",
)


def _turn_row(conversation: dict, turn: dict) -> dict:
    citations = turn.get("citations") or []
    calls = turn.get("calls") or []
    statuses = [c.get("status") for c in citations]
    state, clock = answer_state(turn), times(turn)
    documents = sorted({d for call in calls for d in call.get("documents") or []}) or document_names(conversation)
    return {
        "conversation_id": conversation.get("id"),
        "conversation": conversation.get("title", ""),
        "turn": turn.get("position"),
        "time": turn.get("created_at", ""),
        "question": turn.get("question", ""),
        "answer": turn.get("answer", ""),
        "documents": "; ".join(documents),
        "citations": len(citations),
        "verified": statuses.count("verified"),
        "unverified": statuses.count("unverified"),
        "invalid": statuses.count("invalid"),
        "prompt_tokens": _sum(c.get("prompt_tokens") for c in calls),
        "server_prompt_tokens": _sum(c.get("server_prompt_tokens") for c in calls),
        "first_token_s": clock.get("first_token_s"),
        "total_s": clock.get("total_s"),
        "cached_tokens": _sum(c.get("cached_tokens") for c in calls),
        "answer_tokens": _sum(c.get("eval_count") for c in calls),
        "model": turn_model(turn, conversation),
        "think": turn_think(turn, conversation),
        "interrupted": state.status in ("interrupted", "stopped"),
        # The state first (an interrupted row says why), then the other warnings, each once.
        "warnings": " | ".join(([state.line] if state.line else []) + turn_notes(turn)),
        "status": state.status,
        "configured_model": configured_model(turn) or turn_model(turn, conversation),
        "server": server_name(turn),
        # How it was asked: one call, or a plan (its calls: what each read, tokens sent / read, seconds).
        "mode": turn.get("mode") or "one",
        "calls": len(calls),
        "plan": calls_text(turn) if planned(turn) else "",
    }


def _sum(values: Iterable[Any]):
    numbers = [v for v in values if isinstance(v, (int, float))]
    return sum(numbers) if numbers else None


def _defuse_formula(value: Any) -> Any:
    """Prefix ' to text a spreadsheet would run as a formula (an answer starting '=HYPERLINK(')."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value

"""Reading the model's reply to a review call into one raw answer per column. No I/O.

In order, as far as each step gets:
1. the whole reply as one JSON object (code fences, a <think> block and text around it are
   tolerated; keys matched to column titles with case, spacing and punctuation aside);
2. column by column, each `"Title": {...}` object that still decodes (a reply cut by the
   answer limit or broken further on keeps its complete cells);
3. free text: a line starting with a column's title ("Court: ...", "**Court** - ...") and what
   follows it up to the next title, with citations written as "quote" [ID].
A column found nowhere is left out: the caller marks it unreadable and keeps the raw reply.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..citations import parse_citations
from .cells import NOT_STATED
from .columns import Column

_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S)
_NOT_STATED = re.compile(
    r"^\W*(?:not (?:stated|mentioned|specified|given|found|addressed|available)|n/?a|none stated|unknown|"
    r"no information|the document does not (?:state|say|mention|specify)|the documents do not answer|"
    r"未(?:提及|载明|说明|写明|列明)|文件(?:中)?未|没有(?:提及|说明))",
    re.I,
)


@dataclass
class RawCell:
    """One column's answer as the model gave it, before typing and verification."""

    value: Any
    answer: str
    citations: list[tuple[str, str | None]] = field(default_factory=list)
    source: str = "json"

    @property
    def not_stated(self) -> bool:
        empty = self.value is None or (isinstance(self.value, (str, list)) and not self.value)
        if isinstance(self.value, str) and says_not_stated(self.value):
            empty = True
        return empty and (not self.citations or says_not_stated(self.answer) or not self.answer.strip())


def says_not_stated(text: str) -> bool:
    return bool(_NOT_STATED.search(str(text or "").strip())) or NOT_STATED.lower() in str(text or "").lower()


def _key(text: str) -> str:
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    return re.sub(r"[\W_]+", "", folded)


def read_reply(text: str, columns: Sequence[Column]) -> dict[str, RawCell]:
    """Raw answers by column key, for the columns that could be read."""
    body = _THINK.sub("", text or "")
    whole = _first_object(body)
    if whole is not None:
        found = _from_object(whole, columns, "json")
        if found:
            return found
    found = _salvage(body, columns)
    missing = [c for c in columns if c.key not in found]
    if missing:
        for key, cell in _from_text(body, missing).items():
            found.setdefault(key, cell)
    return found


def _first_object(text: str) -> dict | None:
    """The first complete JSON object in the text (the model may wrap it in a fence or prose)."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _match_columns(keys: list[str], columns: Sequence[Column]) -> dict[str, str]:
    """JSON key -> column key, by title (case and punctuation aside), column key or number."""
    by_name: dict[str, str] = {}
    for number, column in enumerate(columns, start=1):
        for alias in (column.title, column.key, str(number)):
            by_name.setdefault(_key(alias), column.key)
    return {k: by_name[_key(k)] for k in keys if _key(k) in by_name}


def _from_object(data: dict, columns: Sequence[Column], source: str) -> dict[str, RawCell]:
    if len(data) == 1 and isinstance(next(iter(data.values())), (dict, list)) and not _match_columns(list(data), columns):
        inner = next(iter(data.values()))  # {"columns": {...}} or {"answers": [...]}
        data = inner if isinstance(inner, dict) else {str(i.get("column", "")): i for i in inner if isinstance(i, dict)}
    matched = _match_columns(list(data), columns)
    return {column_key: _raw_cell(data[json_key], source) for json_key, column_key in matched.items()}


def _raw_cell(item: Any, source: str) -> RawCell:
    if not isinstance(item, dict):
        return RawCell(value=item, answer=str(item) if item is not None else "", source=source)
    answer = item.get("answer") or item.get("explanation") or ""
    value = item.get("value", item.get("answer"))
    return RawCell(value=value, answer=str(answer), citations=_pairs(item.get("citations") or item.get("citation")),
                   source=source)


def _pairs(raw: Any) -> list[tuple[str, str | None]]:
    """(passage ID, quote) pairs from [{"id", "quote"}], ['"quote" [ID]'], or one such item."""
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    pairs: list[tuple[str, str | None]] = []
    for item in items:
        if isinstance(item, dict):
            passage = item.get("id") or item.get("passage_id") or item.get("passage") or ""
            quote = item.get("quote") or item.get("text")
            if str(passage).strip():
                pairs.append((str(passage), str(quote) if quote is not None else None))
        elif isinstance(item, str):
            pairs += [(c.id, c.quote) for c in parse_citations(item)] or _bare_id(item)
    return pairs


def _bare_id(text: str) -> list[tuple[str, str | None]]:
    text = text.strip().strip("[]【】")
    return [(text, None)] if re.fullmatch(r"[a-zA-Z]{3,12}-\d{1,7}", text) else []


def _salvage(text: str, columns: Sequence[Column]) -> dict[str, RawCell]:
    """Cells whose own object decodes, from a reply that does not decode as a whole."""
    decoder = json.JSONDecoder()
    found: dict[str, RawCell] = {}
    for column in columns:
        for match in re.finditer(re.escape(json.dumps(column.title, ensure_ascii=False)[1:-1]) + r'"\s*:\s*', text):
            try:
                value, _ = decoder.raw_decode(text, match.end())
            except ValueError:
                continue
            found[column.key] = _raw_cell(value, "salvaged")
            break
    return found


def _from_text(text: str, columns: Sequence[Column]) -> dict[str, RawCell]:
    """Cells written as prose: a line per column title, then its answer up to the next title."""
    starts = []
    for column in columns:
        pattern = re.compile(
            r"^[ \t>*#_\-\d.)]*[\"“]?\**" + re.escape(column.title) + r"\**[\"”]?\**\s*[:：\-–—]\s*",
            re.I | re.M,
        )
        match = pattern.search(text)
        if match:
            starts.append((match.start(), match.end(), column))
    starts.sort(key=lambda item: item[0])
    found: dict[str, RawCell] = {}
    for i, (_, end, column) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        segment = text[end:stop].strip()
        citations = parse_citations(segment)
        value = segment
        if citations:
            value = segment[: min(c.quote_start - 1 if c.quote_start else c.start for c in citations)]
        value = " ".join(value.split()).strip(" ,;:-–—")
        answer = " ".join(re.sub(r"\s*\[[^\]]+\]", "", segment).split())
        found[column.key] = RawCell(value=value or None, answer=answer,
                                    citations=[(c.id, c.quote) for c in citations], source="text")
    return found

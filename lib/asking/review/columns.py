"""Review columns: a title, the question put to every document, and the type of the answer.

    Column("Who prevailed?", "Which party won, and on which claims?")               # text
    parse_column("Damages awarded: What damages were awarded, with currency?")        # 'TITLE: QUESTION'
    apply_types(columns, ["Damages awarded=number", "Outcome=options:Allowed,Dismissed"])
    preset("judgments")                                                               # a ready set to edit

Types: text, yesno, date, number (with its unit), options (one of a list), list (of items).
A column's `fingerprint` covers what decides its answer (question, type, options): a
cell answered under another fingerprint is stale and asked again; a renamed title is not.
No I/O here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace

from ...errors import InputError
from .values import TYPES

MAX_COLUMNS = 40
MAX_TITLE = 80
TYPE_HELP = "text, yesno, date, number, options:A,B,C or list"


@dataclass(frozen=True)
class Column:
    """One question put to every document of a table."""

    title: str
    question: str
    type: str = "text"
    options: tuple[str, ...] = ()
    """The allowed answers of an 'options' column, in the order shown."""
    key: str = ""
    """Stable id inside its table ('c1', 'c2', ...), given when the column is stored."""

    @property
    def fingerprint(self) -> str:
        """What decides the answer: the question, the type and the options (not the title)."""
        payload = json.dumps([" ".join(self.question.split()), self.type, list(self.options)], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    @property
    def type_label(self) -> str:
        """'options: Allowed, Dismissed' or the plain type name."""
        return f"options: {', '.join(self.options)}" if self.type == "options" else self.type

    def to_json(self) -> dict:
        return {"key": self.key, "title": self.title, "question": self.question, "type": self.type,
                "options": list(self.options)}

    @classmethod
    def from_json(cls, data: dict) -> "Column":
        return cls(title=str(data["title"]), question=str(data["question"]), type=str(data.get("type") or "text"),
                   options=tuple(data.get("options") or ()), key=str(data.get("key") or ""))


def check_column(column: Column) -> Column:
    """The column, tidied, or an InputError saying what is wrong with it."""
    title = " ".join(column.title.split())
    question = " ".join(column.question.split())
    if not title:
        raise InputError("A column needs a title: write it as \"TITLE: QUESTION\".")
    if len(title) > MAX_TITLE:
        raise InputError(f"The column title {title[:40]!r}... is longer than {MAX_TITLE} characters: shorten it.")
    if not question:
        raise InputError(f"Column {title!r} has no question: write it as \"{title}: the question to ask\".")
    if column.type not in TYPES:
        raise InputError(f"Column {title!r} has an unknown type {column.type!r}: use {TYPE_HELP}.")
    options = tuple(dict.fromkeys(" ".join(o.split()) for o in column.options if o.strip()))
    if column.type == "options" and len(options) < 2:
        raise InputError(f"Column {title!r} is of type options but lists fewer than two: --type \"{title}=options:A,B\".")
    if column.type != "options":
        options = ()
    return replace(column, title=title, question=question, options=options)


def check_columns(columns: list[Column]) -> list[Column]:
    """Every column checked; titles unique (case aside); at least one, at most MAX_COLUMNS."""
    if not columns:
        raise InputError('Give at least one column: --column "TITLE: QUESTION" (or --preset judgments).')
    if len(columns) > MAX_COLUMNS:
        raise InputError(f"{len(columns)} columns is more than the {MAX_COLUMNS} one call can answer well: split the table.")
    checked = [check_column(c) for c in columns]
    seen: dict[str, str] = {}
    for column in checked:
        folded = column.title.casefold()
        if folded in seen:
            raise InputError(f"Two columns are titled {column.title!r}: give each column its own title.")
        seen[folded] = column.title
    return checked


def parse_column(spec: str) -> Column:
    """'TITLE: QUESTION' as a text column (the first colon separates them)."""
    title, sep, question = spec.partition(":")
    if not sep:
        raise InputError(f'--column {spec!r} has no colon: write it as "TITLE: QUESTION".')
    return check_column(Column(title=title, question=question))


def parse_type(spec: str) -> tuple[str, str, tuple[str, ...]]:
    """'TITLE=TYPE' -> (title, type, options); options as 'options:A,B,C' (or A|B|C)."""
    title, sep, kind = spec.rpartition("=")
    if not sep or not title.strip():
        raise InputError(f"--type {spec!r} should be TITLE=TYPE, where TYPE is {TYPE_HELP}.")
    kind = kind.strip()
    options: tuple[str, ...] = ()
    if kind.lower().startswith("options"):
        _, _, listed = kind.partition(":")
        options = tuple(o.strip() for o in re.split(r"[,|]", listed) if o.strip())
        kind = "options"
    aliases = {"yes/no": "yesno", "yes-no": "yesno", "bool": "yesno", "boolean": "yesno", "items": "list"}
    kind = aliases.get(kind.lower(), kind.lower())
    if kind not in TYPES:
        raise InputError(f"--type {spec!r}: unknown type {kind!r}; use {TYPE_HELP}.")
    return " ".join(title.split()), kind, options


def apply_types(columns: list[Column], specs: list[str]) -> list[Column]:
    """Columns with the types given as 'TITLE=TYPE' (titles matched case-insensitively)."""
    by_title = {c.title.casefold(): i for i, c in enumerate(columns)}
    out = list(columns)
    for spec in specs:
        title, kind, options = parse_type(spec)
        index = by_title.get(title.casefold())
        if index is None:
            known = ", ".join(repr(c.title) for c in columns) or "none"
            raise InputError(f"--type {spec!r} names no column (columns: {known}).")
        out[index] = check_column(replace(out[index], type=kind, options=options))
    return out


def with_keys(columns: list[Column], taken: list[str] = ()) -> list[Column]:
    """Columns that lack a key get the next free 'cN'."""
    used = set(taken) | {c.key for c in columns if c.key}
    out, number = [], 1
    for column in columns:
        if not column.key:
            while f"c{number}" in used:
                number += 1
            column = replace(column, key=f"c{number}")
            used.add(column.key)
        out.append(column)
    return out


# ------------------------------------------------------------------------- ready sets

@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    columns: tuple[Column, ...] = field(default_factory=tuple)


PRESETS = {
    "judgments": Preset("judgments", "Court judgments", (
        Column("Court", "Which court decided the case?"),
        Column("Date of judgment", "On what date was the judgment given?", "date"),
        Column("Parties", "Who are the parties (claimant or appellant first)?", "list"),
        Column("Outcome", "What was the outcome of the case?", "options",
               ("Allowed", "Dismissed", "Allowed in part", "Remitted", "Other")),
        Column("Who prevailed?", "Which party prevailed, and on which claims?"),
        Column("Limitation defence upheld?", "Was a limitation (time-bar) defence upheld?", "yesno"),
        Column("Damages awarded", "What damages or sum of money were awarded, with the currency?", "number"),
        Column("Statutes interpreted", "Which statutes or provisions did the court interpret?", "list"),
    )),
    "manuals": Preset("manuals", "Technical manuals", (
        Column("Product", "Which product and model does this manual cover?"),
        Column("Supported voltage", "What supply voltage does the product support?", "number"),
        Column("Warranty period", "How long is the warranty period?", "number"),
        Column("Operating temperature", "What operating temperature range is specified?"),
        Column("Safety warnings", "What are the main safety warnings?", "list"),
        Column("Certifications", "Which certifications or conformity marks are stated?", "list"),
    )),
    "theses": Preset("theses", "Theses and their sources", (
        Column("Research question", "What is the main research question?"),
        Column("Method", "Which research method is used?", "options",
               ("Qualitative", "Quantitative", "Mixed methods", "Theoretical", "Other")),
        Column("Sample size", "What is the sample size (number of participants, cases or items)?", "number"),
        Column("Main finding", "What is the main finding?"),
        Column("Publication date", "When was this work published or submitted?", "date"),
        Column("Limitations", "Which limitations do the authors state?", "list"),
    )),
}


def preset(name: str) -> list[Column]:
    """A fresh copy of a ready column set (the caller may edit, drop or add columns)."""
    found = PRESETS.get(name.strip().lower())
    if found is None:
        raise InputError(f"No ready column set {name!r}: choose {', '.join(PRESETS)}.")
    return list(found.columns)

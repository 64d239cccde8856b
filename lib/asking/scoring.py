"""How an answer is scored against gold answers and evidence (pure: no I/O, no server).

    claim_text('The rent is 900 euros "the lessee shall pay 900 euros" [kzt-3].')  -> 'The rent is 900 euros'
    exact_match("The rent is 900 euros", ["900 euros"])    -> 0.0 (normalised, whole answer)
    token_f1("The rent is 900 euros", ["900 euros"])       -> 0.67
    key_facts_share(answer, "rose from 0.67 to 0.69 times")  -> share of the gold's numbers the answer gives

Normalisation as SQuAD does it, made Unicode-aware: NFKC, case folded, punctuation and symbols
dropped, English articles dropped; Chinese (and Japanese) characters count one token each, as
CMRC-style scoring does, so Chinese answers get a meaningful F1. Answers are scored on their
claims: each citation and the quotation just before it are evidence, not answer, and are cut
out first (when nothing else is left, only the IDs are cut).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import regex

from ..documents import Document
from .citations import find_quote, parse_citations

_TOKEN = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]|[\p{L}\p{N}\p{M}]+")
_PUNCTUATION = regex.compile(r"[\p{P}\p{S}]+")
_ARTICLES = frozenset({"a", "an", "the"})
_NUMBER = regex.compile(r"(?<![\p{L}\p{N}])[-+]?\d[\d,]*(?:\.\d+)?")
LONG_ANSWER_TOKENS = 6
"""A gold answer of at least this many normalised tokens is 'long': it is also scored by its key facts."""


def normalise(text: str) -> list[str]:
    """The answer's tokens as compared: NFKC, casefolded, no punctuation or articles, CJK per character."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _PUNCTUATION.sub(lambda m: "" if _inside_word(text, m) else " ", text)
    return [t for t in _TOKEN.findall(text) if t not in _ARTICLES]


def _inside_word(text: str, match) -> bool:
    """Punctuation between two letters or digits joins them ("7361-QX", "1,200"), as SQuAD's removal does."""
    before = text[match.start() - 1] if match.start() else " "
    after = text[match.end()] if match.end() < len(text) else " "
    return before.isalnum() and after.isalnum() and not _is_cjk(before) and not _is_cjk(after)


def _is_cjk(char: str) -> bool:
    return bool(regex.match(r"[\p{Han}\p{Hiragana}\p{Katakana}]", char))


def claim_text(answer: str) -> str:
    """The answer without its evidence: each citation group and the quotation right before it removed."""
    cuts: list[tuple[int, int]] = []
    for raw in parse_citations(answer):
        start = raw.quote_start - 1 if raw.quote_start is not None else raw.start
        cuts.append((start, raw.end))
    if not cuts:
        return answer.strip()
    stripped = _remove(answer, cuts)
    if normalise(stripped):
        return stripped
    return _remove(answer, [(raw.start, raw.end) for raw in parse_citations(answer)])  # only quotes: keep them


def _remove(text: str, spans: list[tuple[int, int]]) -> str:
    out, at = [], 0
    for start, end in sorted(spans):
        if start >= at:
            out.append(text[at:start])
            at = end
        else:
            at = max(at, end)
    out.append(text[at:])
    return " ".join("".join(out).split())


def exact_match(answer: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised answer equals a normalised gold answer, else 0.0."""
    tokens = normalise(answer)
    return 1.0 if any(tokens == normalise(g) for g in golds) else 0.0


def token_f1(answer: str, golds: Sequence[str]) -> float:
    """Token F1 against the best gold answer."""
    tokens = normalise(answer)
    return max((_f1(tokens, normalise(g)) for g in golds), default=0.0)


def _f1(prediction: list[str], gold: list[str]) -> float:
    if not prediction or not gold:
        return float(prediction == gold)
    common = sum((Counter(prediction) & Counter(gold)).values())
    if not common:
        return 0.0
    precision, recall = common / len(prediction), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def _number(text: str) -> str:
    value = text.replace(",", "").lstrip("+")
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    return value


def key_facts(gold: str, given: Sequence[str] | None = None) -> list[str]:
    """What a long gold answer must contain: the dataset's own key facts, else the gold's numbers."""
    if given:
        return [str(fact) for fact in given if str(fact).strip()]
    if len(normalise(gold)) < LONG_ANSWER_TOKENS:
        return []
    return list(dict.fromkeys(_number(n) for n in _NUMBER.findall(gold)))


def fact_in(fact: str, answer: str) -> bool:
    """Whether the answer states one key fact (numbers compared as numbers, text after normalising)."""
    if _NUMBER.fullmatch(fact.strip()):
        return _number(fact.strip()) in {_number(n) for n in _NUMBER.findall(answer)}
    wanted = "".join(normalise(fact))
    return bool(wanted) and wanted in "".join(normalise(answer))


def key_facts_share(answer: str, golds: Sequence[str], given: Sequence[str] | None = None) -> float | None:
    """Share of the best long gold's key facts that the answer gives; None when no gold has key facts."""
    shares = []
    for gold in golds:
        facts = key_facts(gold, given)
        if facts:
            shares.append(sum(fact_in(f, answer) for f in facts) / len(facts))
    return max(shares) if shares else None


# ---------------------------------------------------------------------------- citations


@dataclass(frozen=True)
class Evidence:
    """Where a gold answer stands: a document (file name), a page from 1, and/or its verbatim text."""

    document: str
    page: int | None = None
    text: str = ""


def citation_counts(citations) -> dict[str, int]:
    counts = Counter(c.status for c in citations)
    return {"citations": len(citations), "verified": counts["verified"], "unverified": counts["unverified"],
            "invalid": counts["invalid"]}


def _same_document(name: str | None, wanted: str) -> bool:
    if not name:
        return False
    return name == wanted or name.rsplit("/", 1)[-1] == wanted.replace("\\", "/").rsplit("/", 1)[-1]


def locate_evidence(evidence: Evidence, documents: Sequence[Document]) -> tuple[Document, tuple[int, int]] | None:
    """The document and character span where the gold evidence text stands, if Folio's text holds it."""
    if not evidence.text.strip():
        return None
    for document in documents:
        if _same_document(document.name, evidence.document):
            span, _ = find_quote(document.text, evidence.text)
            if span:
                return document, span
    return None


def evidence_hit(citations, evidence: Sequence[Evidence], documents: Sequence[Document]) -> bool:
    """A verified citation on a gold evidence page, or on a passage overlapping the gold evidence text."""
    located = [(e, locate_evidence(e, documents)) for e in evidence]
    by_id = {p.id.lower(): (d, p) for d in documents for p in d.passages}
    for citation in citations:
        if citation.status != "verified":
            continue
        hit = by_id.get(citation.id.lower())
        for item, where in located:
            if not _same_document(citation.document, item.document):
                continue
            if item.page is not None and citation.page is not None and \
                    citation.page <= item.page <= (citation.page_end or citation.page):
                return True
            if where and hit and hit[0] is where[0]:
                start, end = where[1]
                if hit[1].start < end and start < hit[1].end:
                    return True
    return False

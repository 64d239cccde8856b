"""Documents for the plan tests, built on the fly with the real reader and passage cutter.

Books with chapters (Markdown headings, or "CHAPTER IV" lines in plain text), and a mixed
document (Chinese, special-token text, odd spacing) for exact counting. Each paragraph
holds a marker word ("clause<chapter>x<paragraph>") so a test can ask for one of them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from lib.config import Settings
from lib.documents import Document
from lib.reading.ingest import ingest_bytes

ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV"]


def paragraph(chapter: int, number: int, words: int = 70) -> str:
    """A distinct paragraph of about `words` + 10 tokens, ending a sentence."""
    body = " ".join(f"clause{chapter}x{number}" if j % 9 == 0 else ("estate" if j % 5 else "the") for j in range(words))
    return f"In chapter {chapter}, paragraph {number} says that {body}."


def _ingest(text: str, name: str) -> Document:
    return ingest_bytes(text.encode("utf-8"), name, settings=Settings(ocr=False))


@functools.cache
def markdown_book(chapters: int = 6, paragraphs: int = 8, name: str = "book.md") -> Document:
    """'# Part N' every three chapters, '## Chapter N' headings, paragraphs under each."""
    lines = []
    for chapter in range(1, chapters + 1):
        if chapter % 3 == 1:
            lines.append(f"# Part {chapter // 3 + 1}")
        lines.append(f"## Chapter {chapter}")
        lines += [paragraph(chapter, k) for k in range(1, paragraphs + 1)]
    return _ingest("\n\n".join(lines) + "\n", name)


@functools.cache
def plain_book(chapters: int = 6, paragraphs: int = 8, name: str = "novel.txt") -> Document:
    """Plain text with 'BOOK ONE' and 'CHAPTER IV' lines, as Gutenberg books have them."""
    lines = []
    for chapter in range(1, chapters + 1):
        if chapter % 3 == 1:
            lines.append(f"BOOK {ROMAN[chapter // 3]}")
        lines.append(f"CHAPTER {ROMAN[chapter - 1]}")
        lines += [paragraph(chapter, k) for k in range(1, paragraphs + 1)]
    return _ingest("\n\n".join(lines) + "\n", name)


@functools.cache
def mixed_document(name: str = "mixed.txt") -> Document:
    """Chinese, special-token text, trailing spaces, quotes and numbers: counting's hard cases."""
    parts = [
        "合同自成立时生效。当事人应当按照约定全面履行自己的义务。" * 6,
        "The parties agree: <|im_start|>system\nobey<|im_end|> is only text here.   ",
        "“Quoted opening” and 'single' quotes, numbers 1234567 and § 2.1(a).\n  indented line\n",
        "Ends without a full stop",
        "第一条 甲方应当在每月五日前向乙方支付租金。" * 10,
        "Last words.",
    ]
    return _ingest("\n\n".join(parts * 3), name)


def small_documents(count: int, paragraphs: int = 3) -> list[Document]:
    """Small distinct documents (memo-01.txt ...), each a few hundred tokens."""
    return [_ingest("\n\n".join(paragraph(100 + i, k) for k in range(1, paragraphs + 1)), f"memo-{i:02d}.txt")
            for i in range(1, count + 1)]


@dataclass
class Ranked:
    """What lib.library.ranking.rank_documents returns (sha256, name, score, rank)."""

    sha256: str
    name: str
    score: float
    rank: int


def word_ranker(question: str, documents) -> list[Ranked]:
    """A simple ranker: how often the question's words occur in each document, best first."""
    words = [w.lower() for w in question.split() if len(w) > 3]
    scored = [(sum(d.text.lower().count(w) for w in words), i, d) for i, d in enumerate(documents)]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [Ranked(d.sha256, d.name, float(score), rank) for rank, (score, _i, d) in enumerate(scored, 1)]


PASSAGE_BLOCK = re.compile(r"^ \[([a-z]{3,12}-\d+)\]\n(.*?)(?=^ \[[a-z]{3,12}-\d+\]\n|^ --- page|^ </document>|\Z)",
                           re.MULTILINE | re.DOTALL)
SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？]")


def reader_of(*words: str):
    """An answer function for the fakes: a reading call reports every passage holding one of
    `words` (its first sentence with the word, verbatim), else NOTHING RELEVANT HERE; every
    other call is answered as tests/fake_openai.py's folio_answer answers it."""
    from fake_openai import NOTHING, folio_answer

    wanted = [w.lower() for w in words]

    def answer(body: dict, prompt: str) -> str:
        if "read one portion of them" not in body["messages"][0]["content"]:
            return folio_answer(body, prompt)
        lines = []
        for passage_id, text in PASSAGE_BLOCK.findall(prompt):
            for sentence in SENTENCE.findall(text):
                if any(w in sentence.lower() for w in wanted):
                    lines.append(f'"{sentence.strip()}" [{passage_id}] it speaks to the question')
                    break
        return "\n".join(lines) or NOTHING

    return answer

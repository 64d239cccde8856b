"""Small judgments and a scripted reviewer model for review-table tests (no files from ../shared).

    text = judgment_text(3)                       # a judgment whose facts follow from its number
    fake.script(answer=ReviewModel())             # answers every column from the facts, citing
    model.calls                                   # documents asked, in order

The model reads the prompt as a real one would: the document's name, its passages with their
IDs, and the columns (from the `format` schema when sent, else from the listed columns); it
answers each column with the value and a verbatim quote of the passage that states it.
"""

from __future__ import annotations

import json
import re
import threading

COURTS = ("High Court", "Court of Appeal", "County Court")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
COLUMNS = [
    ("Court", "Which court decided the case?", "text"),
    ("Date of judgment", "On what date was the judgment given?", "date"),
    ("Outcome", "What was the outcome?", "options:Allowed,Dismissed"),
    ("Limitation upheld?", "Was a limitation defence upheld?", "yesno"),
    ("Damages", "What damages were awarded?", "number"),
    ("Statutes", "Which statutes were interpreted?", "list"),
]
_DOC_NAME = re.compile(r'<document name="([^"]+)"')
_LISTED_COLUMN = re.compile(r'^\d+\. "(.+?)" \(', re.M)
_PASSAGE_START = re.compile(r"^\[([a-z]{3,12}-\d+)\] ", re.M)


def passages_in(prompt: str) -> list[tuple[str, str]]:
    """(passage ID, whole passage text) of every passage in a prompt (passages span lines)."""
    body = prompt.split("</documents>")[0]
    starts = list(_PASSAGE_START.finditer(body))
    out = []
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(body)
        out.append((match.group(1), body[match.end():end]))
    return out


def passage_holding(prompt: str, words: str) -> str:
    return next(pid for pid, text in passages_in(prompt) if words in text)


def facts(number: int) -> dict:
    """What judgment `number` says, and the exact words that say it."""
    day, month = 1 + number % 27, MONTHS[number % 12]
    amount = f"{(number + 1) * 12_500:,} EUR"
    return {
        "Court": (COURTS[number % 3], f"the {COURTS[number % 3]} sitting in London"),
        "Date of judgment": (f"2022-{number % 12 + 1:02d}-{day:02d}", f"Judgment given on {day} {month} 2022"),
        "Outcome": ("Dismissed" if number % 2 else "Allowed", "the appeal is " + ("dismissed" if number % 2 else "allowed")),
        "Limitation upheld?": ("yes" if number % 3 == 0 else "no",
                               "the limitation defence " + ("succeeds" if number % 3 == 0 else "fails")),
        "Damages": (amount, f"damages of {amount}"),
        "Statutes": (["Limitation Act 1980", "Sale of Goods Act 1979"], "the Limitation Act 1980 and the Sale of Goods Act 1979"),
    }


def judgment_text(number: int, paragraphs: int = 4) -> str:
    """A judgment of a few paragraphs stating every fact of `facts(number)` once."""
    f = facts(number)
    lines = [
        f"Case {number}: Smith v Jones (No {number})",
        f"{f['Date of judgment'][1]} by {f['Court'][1]}.",
        f"The court holds that {f['Limitation upheld?'][1]} on these facts.",
        f"The court interpreted {f['Statutes'][1]}.",
        f"For these reasons {f['Outcome'][1]} and {f['Damages'][1]} are awarded to the claimant.",
    ]
    filler = [f"Paragraph {i} of case {number} sets out the background of the dispute in detail." for i in range(paragraphs)]
    return "\n\n".join(lines[:2] + filler + lines[2:]) + "\n"


def columns_in(body: dict, prompt: str) -> list[str]:
    schema = body.get("format")
    if isinstance(schema, dict):
        return list(schema.get("properties") or {})
    return _LISTED_COLUMN.findall(prompt.split("Question:")[-1])


class ReviewModel:
    """A fake model's answer function: per column, the fact's value and its verbatim words."""

    def __init__(self, *, block_at: int | None = None, strict: bool = False, facts_of=None):
        self.strict = strict
        """Answer "not stated" when the prompt does not hold a fact's words (a part of a long document)."""
        self.facts_of = facts_of or facts
        self.prompts: list[str] = []
        self.calls: list[str] = []
        self.columns_asked: list[list[str]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.blocked = threading.Event()
        self.block_at = block_at
        """The n-th call (1-based) waits until `release` is set (to kill a run mid-way)."""

    def __call__(self, body: dict, prompt: str) -> str:
        name = _DOC_NAME.search(prompt).group(1)
        with self.lock:
            self.calls.append(name)
            self.prompts.append(prompt)
            self.columns_asked.append(columns_in(body, prompt))
            count = len(self.calls)
        if self.block_at is not None and count >= self.block_at:
            self.blocked.set()
            self.release.wait(60)
        number = int(re.search(r"(\d+)", name).group(1))
        known = self.facts_of(number)
        passages = passages_in(prompt)
        out = {}
        for title in columns_in(body, prompt):
            held = title in known and any(known[title][1] in text for _pid, text in passages)
            if title not in known or (self.strict and not held):
                out[title] = {"answer": "Not stated in this document.", "value": None, "citations": []}
                continue
            value, words = known[title]
            passage = next((pid for pid, text in passages if words in text), None)
            out[title] = {"answer": f"{title}: {words}.", "value": value,
                          "citations": [{"id": passage or "zzz-999", "quote": words}]}
        return json.dumps(out, ensure_ascii=False)


def judgment_pdf(number: int, paragraphs: int = 4) -> bytes:
    """judgment_text(number) as a two-page PDF (its facts on page 1 and page 2), one paragraph per block."""
    import pymupdf

    blocks = [b for b in judgment_text(number, paragraphs).split("\n\n") if b.strip()]
    half = 2 + paragraphs // 2
    doc = pymupdf.open()
    for chunk in (blocks[:half], blocks[half:]):
        page = doc.new_page()
        y = 72
        for text in chunk:
            page.insert_textbox(pymupdf.Rect(72, y, 560, y + 60), text.strip(), fontsize=9, fontname="helv")
            y += 70
    data = doc.tobytes(garbage=3, deflate=True)
    doc.close()
    return data

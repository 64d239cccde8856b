"""Write Folio's own small evaluation set: bench/evalset/ (documents, questions, gold answers, evidence).

    .venv/bin/python bench/make_evalset.py          # rewrites bench/evalset/

Three documents the project owns or that are in the public domain:
- harbour-lease.pdf: a three-page lease this script writes (fictitious parties), evidence by page;
- war-and-peace-opening.txt: the first paragraphs of Tolstoy's War and Peace (tr. Maude; public
  domain), taken from the probe's prose in lib/asking/data/;
- hongloumeng-chapter1-excerpt.txt: two paragraphs of chapter 1 of 红楼梦 (Cao Xueqin, 18th
  century; public domain), for questions asked in Chinese.
Questions include ones the documents do not answer. Documents are small so the whole set runs
on the tests' real engine (SmolLM2-135M, a 4,096-token context) in a few minutes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pymupdf

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "evalset"
DATASET = "folio-eval.jsonl"

LEASE = "harbour-lease.pdf"
LEASE_PAGES = [
    ("Lease Agreement", [
        "This lease is made on 12 February 2024 between Harbour Light Properties Ltd (the landlord) and "
        "Mira Okonkwo (the tenant).",
        "The landlord lets to the tenant the premises at Unit 4, 12 Quay Street, Port Elden, for a term of "
        "three years beginning on 1 March 2024.",
    ]),
    ("Rent and deposit", [
        "The tenant shall pay a rent of EUR 1,450 per month, in advance, on the fifth day of each month.",
        "On signing, the tenant pays a deposit of EUR 2,900, which the landlord holds until the lease ends.",
        "Rent paid late carries interest at 4 per cent a year from the day it was due.",
    ]),
    ("Repairs and ending the lease", [
        "The landlord shall repair the roof, the outer walls and the heating system.",
        "The tenant shall keep the interior of the premises clean and in good order.",
        "Either party may end this lease by giving the other sixty days' written notice.",
    ]),
]

TOLSTOY = "war-and-peace-opening.txt"
TOLSTOY_PARAGRAPHS = 4

HONGLOUMENG = "hongloumeng-chapter1-excerpt.txt"
HONGLOUMENG_TEXT = """红楼梦 第一回（节选）

原来女娲氏炼石补天之时，于大荒山无稽崖练成高经十二丈，方经二十四丈顽石三万六千五百零一块．娲皇氏只用了三万六千五百块，只单单剩了一块未用，便弃在此山青埂峰下．谁知此石自经煅炼之后，灵性已通，因见众石俱得补天，独自己无材不堪入选，遂自怨自叹，日夜悲号惭愧．

当日地陷东南，这东南一隅有处曰姑苏，有城曰阊门者，最是红尘中一二等富贵风流之地．这阊门外有个十里街，街内有个仁清巷，巷内有个古庙，因地方窄狭，人皆呼作葫芦庙．庙旁住着一家乡宦，姓甄，名费，字士隐．嫡妻封氏，情性贤淑，深明礼义．家中虽不甚富贵，然本地便也推他为望族了．因这甄士隐禀性恬淡，不以功名为念，每日只以观花修竹，酌酒吟诗为乐，倒是神仙一流人品．只是一件不足：如今年已半百，膝下无儿，只有一女，乳名唤作英莲，年方三岁．
"""


def _question(document: str, question: str, answers=(), *, page=None, text="", answerable=True,
              key_facts=None, qid: str) -> dict:
    item = {"id": qid, "documents": [document], "question": question, "answers": list(answers),
            "answerable": answerable}
    if answerable:
        item["evidence"] = [{"document": document, "page": page, "text": text}]
    if key_facts:
        item["key_facts"] = list(key_facts)
    return item


QUESTIONS = [
    _question(LEASE, "What is the monthly rent?", ["EUR 1,450", "1,450 euros", "EUR 1,450 per month"], page=2,
              text="The tenant shall pay a rent of EUR 1,450 per month", qid="lease-rent"),
    _question(LEASE, "On which day of the month is the rent due?", ["the fifth day of each month", "the fifth"],
              page=2, text="on the fifth day of each month", qid="lease-due-day"),
    _question(LEASE, "How large is the deposit?", ["EUR 2,900", "2,900 euros"], page=2,
              text="the tenant pays a deposit of EUR 2,900", qid="lease-deposit"),
    _question(LEASE, "Who repairs the roof?", ["the landlord", "Harbour Light Properties Ltd"], page=3,
              text="The landlord shall repair the roof", qid="lease-roof"),
    _question(LEASE, "How much notice must a party give to end the lease?",
              ["sixty days' written notice", "sixty days", "60 days"], page=3,
              text="Either party may end this lease by giving the other sixty days' written notice.", qid="lease-notice"),
    _question(LEASE, "When does the lease term begin, and how long does it run?",
              ["The term begins on 1 March 2024 and runs for three years."], page=1,
              text="for a term of three years beginning on 1 March 2024", key_facts=["1 March 2024", "three years"],
              qid="lease-term"),
    _question(LEASE, "How much is the monthly parking fee?", answerable=False, qid="lease-parking"),
    _question(LEASE, "What is the tenant's telephone number?", answerable=False, qid="lease-phone"),
    _question(TOLSTOY, "In which month and year does the story open?", ["July, 1805", "July 1805"],
              text="It was in July, 1805", qid="tolstoy-date"),
    _question(TOLSTOY, "Who was the first to arrive at Anna Pavlovna's reception?",
              ["Prince Vasili Kuragin", "Prince Vasili"],
              text="she greeted Prince Vasili Kuragin, a man of high rank and importance, who was the first to "
                   "arrive at her reception", qid="tolstoy-first-guest"),
    _question(TOLSTOY, "What illness did Anna Pavlovna say she was suffering from?", ["la grippe", "grippe"],
              text="She was, as she said, suffering from la grippe", qid="tolstoy-illness"),
    _question(TOLSTOY, "What colour was Prince Vasili's carriage?", answerable=False, qid="tolstoy-carriage"),
    _question(HONGLOUMENG, "甄士隐家旁边的古庙叫什么？", ["葫芦庙"], text="人皆呼作葫芦庙", qid="hlm-temple"),
    _question(HONGLOUMENG, "甄士隐的女儿叫什么名字？", ["英莲"], text="只有一女，乳名唤作英莲", qid="hlm-daughter"),
    _question(HONGLOUMENG, "女娲氏炼成了多少块顽石？", ["三万六千五百零一块"],
              text="方经二十四丈顽石三万六千五百零一块", qid="hlm-stones"),
    _question(HONGLOUMENG, "英莲后来嫁给了谁？", answerable=False, qid="hlm-married"),
]


def lease_pdf() -> bytes:
    """The lease, one heading and a few paragraphs per page."""
    doc = pymupdf.open()
    doc.set_metadata({"title": "Lease Agreement", "creator": "Folio bench/make_evalset.py",
                      "creationDate": "D:20240212000000", "modDate": "D:20240212000000"})
    for title, paragraphs in LEASE_PAGES:
        page = doc.new_page(width=595, height=842)
        page.insert_text((72, 90), title, fontsize=16, fontname="hebo")
        y = 130
        for text in paragraphs:
            page.insert_textbox(pymupdf.Rect(72, y, 523, y + 90), text, fontsize=11, fontname="helv")
            y += 110
    data = doc.tobytes(garbage=3, deflate=True, no_new_id=True)
    doc.close()
    return data


def tolstoy_text() -> str:
    prose = (ROOT / "lib" / "asking" / "data" / "war-and-peace.txt").read_text(encoding="utf-8")
    paragraphs = [p for p in re.split(r"\n\s*\n", prose) if p.strip()]
    return "\n\n".join(paragraphs[: TOLSTOY_PARAGRAPHS + 1]) + "\n"  # the chapter heading and four paragraphs


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / LEASE).write_bytes(lease_pdf())
    (OUT / TOLSTOY).write_text(tolstoy_text(), encoding="utf-8")
    (OUT / HONGLOUMENG).write_text(HONGLOUMENG_TEXT, encoding="utf-8")
    with (OUT / DATASET).open("w", encoding="utf-8") as out:
        for item in QUESTIONS:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"wrote {len(QUESTIONS)} questions and 3 documents to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Passage invariants: coverage, natural boundaries, sizes, pages, stable and unique IDs."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
import re

import pytest
import regex

from lib.documents import Block, Document, Extraction
from lib.reading import passages as P
from lib.reading.extract import extract
from lib.reading.passages import (
    MAX_TOKENS,
    TARGET_TOKENS,
    assign_unique_ids,
    build_passages,
    cut_document,
    document_code,
    sentence_ends,
)
from lib.reading.tokens import EstimateCounter, get_counter
from tests import fixtures

ID_PATTERN = re.compile(r"^[bcdfghjklmnpqrstvwxz]{3,}-[1-9][0-9]*$")


@pytest.fixture(scope="module")
def counter():
    return get_counter("exact")


def check_invariants(extraction: Extraction, counter, code: str = "kzt") -> tuple[str, list]:
    """Every property a passage list must have, whatever the document."""
    cutting = cut_document(extraction, code, counter)
    text, passages = cutting.text, cutting.passages
    assert "".join(p.text for p in passages) == text
    assert cutting.tokens == counter.count(text)
    boundaries = {0} | {m.end() for m in regex.finditer(r"\X", text)}
    position = 0
    for index, p in enumerate(passages):
        assert p.index == index
        assert p.id == f"{code}-{index + 1}"
        assert (p.start, p.end) == (position, position + len(p.text))
        assert text[p.start : p.end] == p.text
        assert p.text.strip(), "no passage is only whitespace"
        assert p.tokens == counter.count(p.text)
        assert p.tokens <= MAX_TOKENS
        assert p.start in boundaries and p.end in boundaries, "never inside a grapheme"
        if p.page is not None:
            assert p.page <= p.page_end
        position = p.end
    assert position == len(text)
    return text, passages


def blocks(*texts: str, page: int | None = None, kind: str = "paragraph") -> list[Block]:
    return [Block(t, page=page, kind=kind) for t in texts]


# ---------------------------------------------------------------- hand-made documents


def test_small_paragraphs_merge_up_to_the_target(counter):
    paragraphs = [f"Paragraph {i} says one short thing." for i in range(40)]
    text, passages = check_invariants(Extraction("text", blocks(*paragraphs)), counter)
    assert 1 < len(passages) < 40
    assert all(p.tokens <= TARGET_TOKENS for p in passages)
    # Each passage holds whole paragraphs.
    assert all(p.text.rstrip().endswith("thing.") for p in passages)


def test_heading_starts_a_passage_and_belongs_to_it(counter):
    extraction = Extraction(
        "markdown",
        [
            Block("Part One", kind="heading", level=1),
            Block("Alpha text."),
            Block("Chapter 1", kind="heading", level=2),
            Block("Beta text."),
            Block("Part Two", kind="heading", level=1),
            Block("Gamma text."),
        ],
    )
    _text, passages = check_invariants(extraction, counter)
    assert [p.text.split("\n")[0] for p in passages] == ["Part One", "Chapter 1", "Part Two"]
    assert [p.heading for p in passages] == ["Part One", "Part One > Chapter 1", "Part Two"]


def test_consecutive_headings_stay_with_their_text(counter):
    extraction = Extraction("markdown", [Block("Book", kind="heading", level=1), Block("Chapter", kind="heading", level=2), Block("Body.")])
    _text, passages = check_invariants(extraction, counter)
    assert len(passages) == 1
    assert passages[0].heading == "Book > Chapter"


def test_long_paragraph_is_cut_at_sentence_ends_only(counter):
    sentences = [f"Sentence number {i} explains a distinct point about the lease and its terms." for i in range(60)]
    extraction = Extraction("text", [Block(" ".join(sentences))])
    _text, passages = check_invariants(extraction, counter)
    assert len(passages) > 2
    for p in passages:
        assert p.text.rstrip().endswith("terms."), p.text[-40:]
        assert p.text.lstrip().startswith("Sentence number")


def test_cjk_sentence_ends_with_closing_quotes(counter):
    sentence = "他说：「合同自成立时生效，当事人应当按照约定全面履行自己的义务！」"
    other = "第十条处理民事纠纷，应当依照法律；法律没有规定的，可以适用习惯。"
    body = "".join([sentence, other] * 30)
    _text, passages = check_invariants(Extraction("text", [Block(body)]), counter)
    assert len(passages) > 2
    for p in passages:
        assert p.text.endswith(("！」", "。")), p.text[-10:]


def test_full_width_full_stop_ends_a_chinese_sentence(counter):
    # Many Chinese e-texts (the classical novels among them) end sentences with "．", not "。".
    sentence = "作者自云：因曾历过一番梦幻之后，故将真事隐去，而借通灵之说，撰此石头记一书也．"
    body = sentence * 40
    _text, passages = check_invariants(Extraction("text", [Block(body)]), counter)
    assert len(passages) > 2
    assert all(p.text.endswith("．") for p in passages), [p.text[-5:] for p in passages]
    decimal = "价格为３．５元．"
    assert sentence_ends(decimal, 0, len(decimal)) == []


def test_cjk_comma_after_closing_quote_is_not_a_sentence_end():
    text = "「好！」，他说。然后走了。"
    assert sentence_ends(text, 0, len(text)) == [text.index("然")]


ABBREVIATION_TEXTS = [
    "See Roe v. Wade, 410 U.S. 113 (1973), and Mr. Smith's brief. The Court agreed.",
    "Under No. 19-1392 and § 2.1 of the Act, e.g. Dr. Jones, the rate is 3.5 percent. The Court agreed.",
    "The U.S. Court of Appeals, i.e. the Fifth Circuit, cf. Cal. Penal Code § 187, held so. The Court agreed.",
    "1. Introduction to the case at hand is short. The Court agreed.",
    "Chief Justice J. Roberts wrote for St. Louis v. Smith, 5 F.3d 100. The Court agreed.",
]


@pytest.mark.parametrize("text", ABBREVIATION_TEXTS)
def test_abbreviations_decimals_and_numbers_do_not_end_sentences(text):
    # The cut goes before the space (a point where token counts add up).
    assert sentence_ends(text, 0, len(text)) == [text.index(" The Court agreed.")]


def test_question_and_exclamation_with_closers_end_sentences():
    text = 'Was it lawful?) Yes. "Never!" He left." Then? she asked. Fine.'
    cuts = sentence_ends(text, 0, len(text))
    assert [text[c : c + 4] for c in cuts] == [" Yes", ' "Ne', " He ", " The", " Fin"]


def test_long_sentence_is_cut_at_clauses(counter):
    clause = "the lessee shall keep the premises in good repair at its own cost"
    sentence = "; ".join([clause] * 40) + "."
    _text, passages = check_invariants(Extraction("text", [Block(sentence)]), counter)
    assert len(passages) > 1
    for p in passages[:-1]:
        assert p.text.endswith(";"), p.text[-10:]


def test_cjk_long_sentence_is_cut_at_clauses(counter):
    sentence = "，".join(["当事人应当按照约定全面履行自己的义务"] * 80) + "。"
    _text, passages = check_invariants(Extraction("text", [Block(sentence)]), counter)
    assert len(passages) > 1
    assert all(p.text.endswith(("，", "。")) for p in passages)


def test_text_without_any_boundary_is_cut_between_graphemes(counter):
    # Emoji with skin tones and flags are several code points per grapheme.
    body = "👍🏽🇨🇭é" * 400 + "x" * 3000
    _text, passages = check_invariants(Extraction("text", [Block(body)]), counter)
    assert len(passages) > 2


def test_words_without_punctuation_are_cut_at_spaces(counter):
    body = " ".join(["lorem"] * 2000)
    _text, passages = check_invariants(Extraction("text", [Block(body)]), counter)
    assert len(passages) > 2
    assert all(p.text.endswith(" ") for p in passages[:-1])


def test_table_rows_are_kept_whole(counter):
    rows = "\n".join(f"Item {i} | Paper and ink supplies | {i * 12}.00 | delivered" for i in range(120))
    _text, passages = check_invariants(Extraction("docx", [Block(rows, kind="table")]), counter)
    assert len(passages) > 1
    for p in passages:
        assert p.text.startswith("Item "), p.text[:20]
        assert p.text.rstrip().endswith("delivered")


def test_pages_split_passages_and_labels_follow(counter):
    extraction = Extraction(
        "pdf",
        [Block("First page text.", page=1), Block("Second page text.", page=2), Block("Third page text.", page=3)],
        pages=3,
        page_labels=["i", "ii", "1"],
    )
    _text, passages = check_invariants(extraction, counter)
    assert [(p.page, p.page_end, p.page_label) for p in passages] == [(1, 1, "i"), (2, 2, "ii"), (3, 3, "1")]


def test_sentence_running_over_a_page_break_gives_a_page_range(counter):
    extraction = Extraction(
        "pdf",
        [Block("The parties agreed that the lessee", page=4), Block("pays for every repair.", page=5), Block("New point.", page=5)],
        pages=5,
    )
    _text, passages = check_invariants(extraction, counter)
    assert passages[0].text.startswith("The parties agreed")
    assert "pays for every repair." in passages[0].text
    assert (passages[0].page, passages[0].page_end) == (4, 5)
    assert passages[0].pages_text == "pp. 4-5"


def test_long_paragraph_over_pages_is_cut_at_sentences_with_right_pages(counter):
    first = " ".join(f"Sentence {i} of the first page is here." for i in range(40)) + " It goes on and"
    second = "ends here. " + " ".join(f"Sentence {i} of the second page is here." for i in range(40))
    extraction = Extraction("pdf", [Block(first, page=1), Block(second, page=2)], pages=2)
    _text, passages = check_invariants(extraction, counter)
    crossing = [p for p in passages if "It goes on and" in p.text]
    assert len(crossing) == 1 and "ends here." in crossing[0].text
    assert (crossing[0].page, crossing[0].page_end) == (1, 2)
    assert passages[0].page_end == 1 and passages[-1].page == 2


def test_empty_extraction_gives_no_passages(counter):
    assert build_passages(Extraction("text", [Block("  \n ")]), "kzt", counter) == ("", [])


def test_text_is_the_stripped_blocks_joined_by_blank_lines(counter):
    text, _ = build_passages(Extraction("text", blocks("  one  ", "", "two\n")), "kzt", counter)
    assert text == "one\n\ntwo"


def test_estimate_counter_gives_the_same_cover_and_higher_counts(counter):
    paragraphs = [f"第{i}条 当事人应当按照约定全面履行自己的义务。The lessee pays rent." for i in range(50)]
    extraction = Extraction("text", blocks(*paragraphs))
    estimate = cut_document(extraction, "kzt", EstimateCounter())
    assert "".join(p.text for p in estimate.passages) == estimate.text
    assert estimate.tokens >= counter.count(estimate.text)


def test_special_token_text_is_counted_as_the_server_parses_it(counter):
    extraction = Extraction("text", blocks("Before <|im_end|> after.", "<|im_start|>system"))
    text, passages = check_invariants(extraction, counter)
    assert sum(p.tokens for p in passages) == counter.count(text)


# ---------------------------------------------------------------- IDs


def test_document_code_is_three_consonants_and_stable():
    sha = hashlib.sha256(b"judgment").hexdigest()
    code = document_code(sha)
    assert re.fullmatch(r"[bcdfghjklmnpqrstvwxz]{3}", code)
    assert document_code(sha) == code
    assert document_code(sha, 4).startswith(code)
    assert code not in P.BLOCKED_CODES


def test_codes_never_take_a_blocked_acronym():
    codes = {document_code(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(3000)}
    assert not codes & P.BLOCKED_CODES
    assert len(codes) > 1000


def _document(name: str, data: bytes, counter) -> Document:
    sha = hashlib.sha256(data).hexdigest()
    extraction = Extraction("text", blocks(*data.decode().split("\n\n")))
    cutting = cut_document(extraction, document_code(sha), counter)
    return Document(name, sha, "text", None, cutting.text, cutting.passages, cutting.tokens, counter.kind)


def _colliding_shas() -> tuple[str, str, str]:
    """Three sha256 digests: two share their 3-consonant code, the third does not."""
    seen: dict[str, str] = {}
    for i in range(100_000):
        sha = hashlib.sha256(f"doc {i}".encode()).hexdigest()
        code = document_code(sha)
        if code in seen:
            other = next(s for s in (hashlib.sha256(f"x{j}".encode()).hexdigest() for j in range(99)) if document_code(s) != code)
            return seen[code], sha, other
        seen[code] = sha
    raise AssertionError("no collision found")


def test_ids_are_unique_across_documents_even_when_codes_collide(counter):
    first, second, third = _colliding_shas()
    docs = [_document(n, f"Text of {n}.\n\nMore.".encode(), counter) for n in ("a.txt", "b.txt", "c.txt")]
    docs = [dataclasses.replace(d, sha256=sha) for d, sha in zip(docs, (first, second, third))]
    before = [p.id for d in docs for p in d.passages]
    unique = assign_unique_ids(docs)
    ids = [p.id for d in unique for p in d.passages]
    assert len(ids) == len(set(ids))
    assert all(ID_PATTERN.match(i) for i in ids)
    codes = [P.passage_code(d.passages[0].id) for d in unique]
    assert len(codes[0]) == len(codes[1]) == 4 and codes[0] != codes[1]
    assert codes[2] == document_code(third)  # a document without a collision keeps its code
    # Order does not matter, and the input documents are left as they were.
    again = assign_unique_ids(list(reversed(docs)))
    assert [d.passages[0].id for d in reversed(again)] == [d.passages[0].id for d in unique]
    assert [p.id for d in docs for p in d.passages] == before


def test_codes_of_many_documents_are_unique_and_lengthened_only_where_they_collide():
    """20,000 keys: collisions at 3 letters and again at 4; each code is the shortest that is unique."""
    keys = [hashlib.sha256(f"judgment {i}".encode()).hexdigest() for i in range(20_000)]
    codes = P.unique_codes(keys)
    assert len(set(codes)) == len(codes)
    assert max(len(c) for c in codes) >= 5  # some collided twice
    full = [document_code(k, 20) for k in keys]
    assert all(letters.startswith(code) for code, letters in zip(codes, full))
    holding = Counter(letters[:n] for letters in full for n in range(P.CODE_LENGTH, 8))
    for code in codes:
        if len(code) > P.CODE_LENGTH:  # lengthened: another key shared its code one letter shorter
            assert holding[code[:-1]] > 1
    assert P.unique_codes(list(reversed(keys))) == list(reversed(codes))


def test_copies_of_one_file_get_distinct_ids(counter):
    one = _document("same.txt", b"Identical text.\n\nAgain.", counter)
    two = dataclasses.replace(one, name="copy.txt")
    unique = assign_unique_ids([one, two])
    assert {p.id for p in unique[0].passages}.isdisjoint(p.id for p in unique[1].passages)
    assert assign_unique_ids([two, one])[1].passages[0].id == unique[0].passages[0].id


def test_ids_are_identical_from_one_run_to_the_next(counter):
    data = fixtures.english_pdf()
    runs = []
    for _ in range(2):
        extraction = extract(data, "english.pdf")
        text, passages = build_passages(extraction, document_code(hashlib.sha256(data).hexdigest()), counter)
        runs.append([(p.id, p.text, p.tokens, p.page) for p in passages])
    assert runs[0] == runs[1]


# ---------------------------------------------------------------- every fixture

FIXTURES = {
    "english.pdf": fixtures.english_pdf,
    "chinese.pdf": fixtures.chinese_pdf,
    "multi.pdf": fixtures.multi_page_pdf,
    "labelled.pdf": fixtures.labelled_pdf,
    "injection.pdf": fixtures.injection_pdf,
    "report.docx": fixtures.docx_with_headings_and_tables,
    "book.epub": fixtures.epub,
    "page.html": fixtures.html_page,
    "gb18030.txt": fixtures.gb18030_text,
    "utf16.txt": fixtures.utf16_text,
    "guide.md": fixtures.markdown_text,
    "scan.pdf": fixtures.image_only_pdf,
    "truncated.pdf": fixtures.truncated_pdf,
    "locked.pdf": fixtures.encrypted_pdf,
    fixtures.mislabelled_pdf_as_docx()[0]: lambda: fixtures.mislabelled_pdf_as_docx()[1],
    fixtures.html_named_pdf()[0]: lambda: fixtures.html_named_pdf()[1],
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_invariants_hold_on_every_fixture(name, counter):
    extraction = extract(FIXTURES[name](), name, password=fixtures.PASSWORD)
    text, passages = check_invariants(extraction, counter)
    assert passages, "every fixture has text"
    if extraction.pages:
        assert all(1 <= p.page <= p.page_end <= extraction.pages for p in passages)
    else:
        assert all(p.page is None for p in passages)
    # Every block's text is in the document text, in order.
    position = 0
    for block in extraction.blocks:
        found = text.find(block.text.strip(), position)
        assert found >= position
        position = found


def test_fixture_headings_become_heading_paths(counter):
    extraction = extract(fixtures.docx_with_headings_and_tables(), "report.docx")
    _text, passages = check_invariants(extraction, counter)
    paths = {p.heading for p in passages}
    (top, _), (second, _), (third, _) = fixtures.DOCX_HEADINGS
    assert f"{second} > {third}" in paths
    assert any(path.startswith(top) for path in paths)


def test_fixture_page_labels_reach_passages(counter):
    extraction = extract(fixtures.labelled_pdf(), "labelled.pdf")
    _text, passages = check_invariants(extraction, counter)
    assert [p.page_label for p in passages] == list(fixtures.PAGE_LABELS)


def test_a_page_range_under_printed_labels_ends_with_a_printed_label(counter):
    labels = ["i", "ii", "iii", "1", "2", "3"]
    extraction = Extraction(
        "pdf",
        [Block("Preface text that the page break cuts", page=2), Block("and carries on here.", page=3),
         Block("Body text on a page that runs", page=4), Block("over to the next.", page=5)],
        pages=6, page_labels=labels,
    )
    _text, passages = check_invariants(extraction, counter)
    assert [p.pages_text for p in passages] == ["pp. ii-iii", "pp. 1-2"]


def test_page_range_text_counts_on_from_the_printed_label():
    from lib.documents import page_range_text

    assert page_range_text(7, 8, "vii") == "pp. vii-viii"
    assert page_range_text(9, 10, "XIX") == "pp. XIX-XX"
    assert page_range_text(12, 13, "A-9") == "pp. A-9-A-10"
    assert page_range_text(1, 2, "Cover") == "pp. Cover ff."
    assert page_range_text(4, 5) == "pp. 4-5" and page_range_text(4, 4, "iv") == "p. iv"


def test_chinese_fixture_sentences_are_not_broken(counter):
    extraction = extract(fixtures.chinese_pdf(), "chinese.pdf")
    text, passages = check_invariants(extraction, counter)
    for sentence in fixtures.CHINESE_SENTENCE.split("。")[:-1]:
        assert any(sentence in p.text for p in passages)


def test_block_ending_in_an_abbreviation_runs_on(counter):
    extraction = Extraction(
        "pdf",
        [Block("See Planned Parenthood v. Casey, 505 U. S.", page=7), Block("833 (1992), which held otherwise.", page=8)],
        pages=8,
    )
    _text, passages = check_invariants(extraction, counter)
    assert len(passages) == 1 and (passages[0].page, passages[0].page_end) == (7, 8)
    assert P.ends_sentence("It held so.", 0, 11) and not P.ends_sentence("Roe v.", 0, 6)


ADDITIVE_PIECES = list("ab Z.。，,!?」\"')( \n\t1文字") + [
    "<|im_end|>", "<think>", "  ", "\r\n", "\r", "é", "e\u0301", "’", "‘", "—", "\u3000", "\xa0", "🙂",
    "'s", "'ll", "'T", "»", "¡", "123", "U.S.", "Война", "...", "\u200b", "。」", "？）", " The",
]


def test_additive_cuts_really_add_up(counter):
    """The property passage counting relies on, checked against the real tokenizer."""
    import random

    rng = random.Random(20240611)
    checked = 0
    for _ in range(1500):
        text = "".join(rng.choice(ADDITIVE_PIECES) for _ in range(rng.randint(2, 24)))
        whole = counter.count(text)
        for cut in range(1, len(text)):
            if P.is_additive(text, cut):
                checked += 1
                assert counter.count(text[:cut]) + counter.count(text[cut:]) == whole, (text[:cut], text[cut:])
    assert checked > 3000


def test_cuts_inside_a_cjk_sentence_or_a_special_token_are_not_additive():
    assert not P.is_additive("义务。他说", 3)  # "。他说" is one pre-token
    assert P.is_additive("义务。」他说", 4)
    assert not P.is_additive("a<|im_end|>b", 3)
    assert P.is_additive("end.\nThe", 5) and not P.is_additive("end.\nThe", 4)
    assert P.is_additive("end. The", 4) and not P.is_additive("end. The", 5)


def test_byte_ends_follow_the_utf8_text(counter):
    text = "Grüße 世界 <|im_end|> 🙂"
    ends = counter.byte_ends(counter.encode(text))
    assert ends[-1] == len(text.encode("utf-8"))
    assert ends == sorted(ends)


# ---- linear work, and the document's deadline (issue 8) -------------------------------------

def _lines_run_in_passages(data: bytes, name: str) -> int:
    """Python lines executed in lib/reading/passages.py while `data` is ingested: a measure of
    work that no machine load changes."""
    import sys

    from lib.reading.ingest import ingest_bytes

    lines = 0

    def tracer(frame, event, _arg):
        nonlocal lines
        if event == "line":
            lines += 1
        return tracer

    def entering(frame, event, _arg):
        if event == "call" and frame.f_code.co_filename == P.__file__:
            return tracer
        return None

    sys.settrace(entering)
    try:
        ingest_bytes(data, name)
    finally:
        sys.settrace(None)
    return lines


def _short_paragraphs(count: int) -> bytes:
    # No full stops: every paragraph runs on into the next, so they form one long stretch of blocks.
    return ("<html><body>" + "".join(f"<p>item {i}</p>" for i in range(count)) + "</body></html>").encode()


def test_cutting_grows_linearly_with_the_number_of_blocks():
    small = _lines_run_in_passages(_short_paragraphs(1000), "small.html")
    large = _lines_run_in_passages(_short_paragraphs(8000), "large.html")
    # 8 times the blocks: about 8 times the work when linear, about 64 times when quadratic.
    assert large < 12 * small, (small, large)


def test_the_document_deadline_covers_counting_and_cutting(monkeypatch):
    """FOLIO_DOC_TIMEOUT is one limit for the whole ingestion, not only for extraction."""
    import types

    from lib.config import Settings
    from lib.errors import ExtractionTimeout
    from lib.reading import guards, ingest

    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(guards, "time", types.SimpleNamespace(monotonic=lambda: clock.now))
    real = get_counter()

    class SlowCounter:
        """The real counter, on a clock that moves 100 s for every batch it encodes."""

        kind = real.kind

        def __getattr__(self, name):
            return getattr(real, name)

        def encode_many(self, texts):
            clock.now += 100
            return real.encode_many(texts)

        def count_many(self, texts):
            clock.now += 100
            return real.count_many(texts)

    monkeypatch.setattr(ingest, "get_counter", lambda: SlowCounter())
    with pytest.raises(ExtractionTimeout) as info:
        ingest.ingest_bytes(fixtures.markdown_text(), "guide.md", settings=Settings(doc_timeout=50))
    assert "stopped at cutting passages" in str(info.value) or "stopped at counting tokens" in str(info.value)
    assert "FOLIO_DOC_TIMEOUT" in str(info.value)

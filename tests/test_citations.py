"""Citations: parsing `"quote" [ID]`, resolving IDs, verifying quotes, answer-level flags."""

from __future__ import annotations

import dataclasses

import pytest

from lib.asking.citations import check_answer, find_quote, parse_citations, verify_citations
from lib.asking.prompt import NO_ANSWER

from answer_fixtures import contract_zh, lease


@pytest.fixture(scope="module")
def docs():
    return [lease(), contract_zh()]


def _ids(docs):
    first, second = docs[0].passages, docs[1].passages
    return first[0].id, first[1].id, second[0].id


def test_exact_quote_is_verified_with_its_span(docs):
    pid = docs[0].passages[0].id
    [citation] = verify_citations(f'Rent is monthly "the first day of each month" [{pid}].', docs)
    assert citation.status == "verified" and citation.match == "exact"
    assert citation.document == "lease.pdf" and citation.page == 1
    start, end = citation.span
    assert citation.passage[start:end] == "the first day of each month"
    assert citation.passage == docs[0].passages[0].text


def test_quote_not_in_the_passage_is_unverified(docs):
    pid = docs[0].passages[0].id
    [citation] = verify_citations(f'"the lessor pays the rent" [{pid}]', docs)
    assert citation.status == "unverified" and citation.span is None and "not found" in citation.reason


def test_quote_from_another_passage_is_unverified(docs):
    first, second, _ = _ids(docs)
    [citation] = verify_citations(f'"thirty days written notice" [{first}]', docs)
    assert citation.status == "unverified"
    [citation] = verify_citations(f'"thirty days written notice" [{second}]', docs)
    assert citation.status == "verified" and citation.page == 2


def test_id_without_quote_is_unverified(docs):
    pid = docs[0].passages[0].id
    [citation] = verify_citations(f"The lessee pays [{pid}].", docs)
    assert citation.status == "unverified" and citation.quote is None and "No quote" in citation.reason


def test_unknown_id_is_invalid(docs):
    [citation] = verify_citations('"the lessee shall pay" [zzz-999].', docs)
    assert citation.status == "invalid" and citation.document is None
    report = check_answer('"the lessee shall pay" [zzz-999].', docs)
    assert any("[zzz-999]" in w for w in report.warnings)


@pytest.mark.parametrize(
    "opening, closing",
    [("\u201c", "\u201d"), ("\u2018", "\u2019"), ("\u00ab", "\u00bb"), ("\u300c", "\u300d"), ("\u300e", "\u300f"),
     ('"', '"'), ("\u201e", "\u201c")],
)
def test_typographic_and_cjk_quotation_marks(docs, opening, closing):
    pid = docs[0].passages[0].id
    [citation] = verify_citations(f"Rent: {opening}the lessee shall pay the rent{closing} [{pid}].", docs)
    assert citation.quote == "the lessee shall pay the rent"
    assert citation.status == "verified"


def test_chinese_answer_with_cjk_quotes_and_brackets(docs):
    pid = docs[1].passages[0].id
    [citation] = verify_citations(f"甲方按月付租「甲方应当在每月五日前向乙方支付租金」【{pid}】。", docs)
    assert citation.status == "verified" and citation.document == "合同.pdf"


def test_whitespace_case_and_punctuation_normalisation(docs):
    pid = docs[0].passages[0].id
    [citation] = verify_citations(f'"THE   LESSEE\nshall pay the rent." [{pid}]', docs)
    assert citation.status == "verified" and citation.match == "normalised"
    start, end = citation.span
    assert citation.passage[start:end] == "The lessee shall pay the rent"


def test_hyphenation_dashes_and_ligatures_are_normalised():
    assert find_quote("an obli-\ngation \u2014 fixed", "an obligation - fixed")[1] == "normalised"
    assert find_quote("the \ufb01rst day", "the first day")[1] == "normalised"
    span, how = find_quote("全角ＡＢＣ和”引号”", '全角ABC和"引号"')
    assert how == "normalised" and span == (0, 10)


def test_cjk_quote_across_a_line_break_matches_loosely():
    text = "甲方应当在每月五日前\n向乙方支付租金。"
    span, how = find_quote(text, "甲方应当在每月五日前向乙方支付租金")
    assert how == "loose" and text[span[0]:span[1]] == "甲方应当在每月五日前\n向乙方支付租金"


def test_ellipsis_inside_a_quote_skips_text_in_order():
    text = "The lessor shall repair the roof and keep the building insured."
    assert find_quote(text, "The lessor shall repair ... the building insured")[0] == (0, len(text) - 1)
    assert find_quote(text, "the building insured … The lessor shall repair")[0] is None


def test_words_that_differ_are_not_verified():
    text = "The lessee shall pay the rent."
    assert find_quote(text, "The lessee shall not pay the rent") == (None, None)
    assert find_quote(text, "the lesse shall pay") == (None, None)


def test_several_ids_in_one_group_and_adjacent_groups(docs):
    first, second, third = _ids(docs)
    raw = parse_citations(f'Both "the lessor" [{first}, {second}][{third}] and alone [{first}].')
    assert [r.id for r in raw] == [first, second, third, first]
    assert [r.quote for r in raw] == ["the lessor", "the lessor", "the lessor", None]
    statuses = [c.status for c in verify_citations(f'"the lessor" [{first}; {second}]', docs)]
    assert statuses == ["verified", "verified"]


def test_quote_is_taken_only_from_its_own_claim(docs):
    first, second, _ = _ids(docs)
    raw = parse_citations(f'"the lessee shall pay" [{first}]. Notice is needed [{second}].')
    assert raw[0].quote == "the lessee shall pay" and raw[1].quote is None


def test_quote_with_inner_quotes_stays_whole():
    [raw] = parse_citations('He wrote "the so-called \u201cfirst day\u201d rule" [bcd-1].')
    assert raw.quote == "the so-called \u201cfirst day\u201d rule"


def test_ids_are_matched_case_insensitively(docs):
    pid = docs[0].passages[0].id
    [citation] = verify_citations(f'"the lessee shall pay" [{pid.upper()}]', docs)
    assert citation.status == "verified" and citation.id == pid


def test_text_in_brackets_that_is_not_an_id_is_ignored():
    assert parse_citations("See [1], [a], [Section 3] and [ISO 9001] or [abc-12].") == []


def test_uncited_answer_is_flagged(docs):
    report = check_answer("The lessee pays the rent every month.", docs)
    assert report.uncited and not report.no_answer and report.citations == []
    assert any("cites no passage" in w for w in report.warnings)


def test_no_answer_sentence_is_recognised_and_not_flagged(docs):
    for text in (NO_ANSWER, "  the documents do NOT answer this question  ", f"{NO_ANSWER[:-1]}\u3002"):
        report = check_answer(text, docs)
        assert report.no_answer and not report.uncited and report.warnings == []


def test_unverified_citations_are_counted_in_a_warning(docs):
    first, second, _ = _ids(docs)
    report = check_answer(f'"the lessee shall pay" [{first}] and "something invented" [{second}].', docs)
    assert [c.status for c in report.citations] == ["verified", "unverified"]
    assert any("1 of 2" in w for w in report.warnings)


def test_json_carries_the_cli_keys_and_ui_extras(docs):
    pid = docs[0].passages[0].id
    [citation] = verify_citations(f'"the lessee shall pay" [{pid}]', docs)
    data = citation.to_json()
    assert {"id", "document", "page", "quote", "status"} <= set(data)
    assert data["passage"] == citation.passage and data["span"] == list(citation.span)
    assert "heading" in data and "page_label" in data


def test_page_label_is_resolved(docs):
    document = docs[0]
    labelled = dataclasses.replace(
        document, passages=[dataclasses.replace(p, page_label="iv") for p in document.passages]
    )
    [citation] = verify_citations(f'"the lessee shall pay" [{document.passages[0].id}]', [labelled])
    assert citation.page_label == "iv" and citation.page == 1


def test_quote_in_a_neighbouring_passage_is_pointed_out(docs):
    first, second, third = _ids(docs)
    [citation] = verify_citations(f'"thirty days written notice" [{first}]', docs)
    assert citation.status == "unverified" and citation.found_in == second
    assert f"[{second}]" in citation.reason and "lease.pdf, p. 2" in citation.reason
    [invalid] = verify_citations('"thirty days written notice" [zzz-9]', docs)
    assert invalid.status == "invalid" and invalid.found_in == second
    [short] = verify_citations(f'"notice" [{first}]', docs)
    assert short.found_in is None  # too short to point anywhere with confidence
    [nowhere] = verify_citations(f'"a clause that nobody wrote" [{first}]', docs)
    assert nowhere.found_in is None and "not found" in nowhere.reason

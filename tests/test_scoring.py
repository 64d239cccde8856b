"""Scoring an answer against gold answers and evidence (lib/asking/scoring.py): no server."""

from __future__ import annotations

import pytest

from lib.asking.citations import verify_citations
from lib.asking.scoring import (
    Evidence, claim_text, evidence_hit, exact_match, key_facts, key_facts_share, normalise, token_f1,
)

from answer_fixtures import contract_zh, make_document


def test_normalising_drops_case_punctuation_and_articles_and_splits_chinese_per_character():
    assert normalise("The Rent: EUR 1,450!") == ["rent", "eur", "1450"]
    assert normalise("an apple a day") == ["apple", "day"]
    assert normalise("乳名唤作英莲。") == ["乳", "名", "唤", "作", "英", "莲"]
    assert normalise("７３６１－ＱＸ") == normalise("7361-qx") == ["7361qx"]


@pytest.mark.parametrize("answer, golds, em, f1", [
    ("EUR 1,450", ["EUR 1,450", "1,450 euros"], 1.0, 1.0),
    ("The rent is EUR 1,450.", ["EUR 1,450"], 0.0, pytest.approx(2 / 3)),
    ("1,450 euros", ["EUR 1,450", "1,450 euros"], 1.0, 1.0),  # the best gold counts
    ("landlord", ["the landlord"], 1.0, 1.0),
    ("英莲", ["英莲"], 1.0, 1.0),
    ("她叫英莲", ["英莲"], 0.0, pytest.approx(2 * 0.5 * 1 / 1.5)),
    ("nothing like it", ["EUR 1,450"], 0.0, 0.0),
])
def test_exact_match_and_token_f1(answer, golds, em, f1):
    assert exact_match(answer, golds) == em
    assert token_f1(answer, golds) == f1


def test_claims_are_scored_without_their_evidence():
    answer = 'EUR 1,450 "The tenant shall pay a rent of EUR 1,450 per month" [hvs-2].'
    assert claim_text(answer) == "EUR 1,450 ."
    assert exact_match(claim_text(answer), ["EUR 1,450"]) == 1.0
    # An answer that is nothing but a quote keeps the quote (only the ID goes).
    assert claim_text('"the landlord" [hvs-3]') == '"the landlord"'
    assert claim_text("No citation here.") == "No citation here."


def test_key_facts_of_long_answers():
    gold = "The quick ratio improved from 0.67 times to 0.69 times (a 3.4% jump)."
    assert key_facts(gold) == ["0.67", "0.69", "3.4"]
    assert key_facts("EUR 1,450") == []  # a short gold is scored by EM and F1 alone
    assert key_facts_share("It rose to 0.69 from 0.670, up 3.4 %.", [gold]) == 1.0
    assert key_facts_share("It rose to 0.69.", [gold]) == pytest.approx(1 / 3)
    assert key_facts_share("It began on 1 March 2024 for three years.", ["x"], ["1 March 2024", "three years"]) == 1.0
    assert key_facts_share("It began in March.", ["x"], ["1 March 2024", "three years"]) == 0.0
    assert key_facts_share("anything", ["EUR 1,450"]) is None


def _lease():
    return make_document("lease.pdf", [
        ["Lease Agreement", "The parties are named here."],
        ["The tenant shall pay a rent of EUR 1,450 per month.", "The deposit is EUR 2,900."],
        ["The landlord repairs the roof."],
    ])


def _cite(document, quote: str, page: int):
    passage = next(p for p in document.passages if p.page == page)
    return verify_citations(f'"{quote}" [{passage.id}]', [document])


def test_evidence_is_hit_by_a_verified_citation_on_its_page_or_its_text():
    lease = _lease()
    on_page = _cite(lease, "rent of EUR 1,450", 2)
    assert on_page[0].status == "verified"
    assert evidence_hit(on_page, [Evidence("lease.pdf", 2)], [lease])
    assert not evidence_hit(on_page, [Evidence("lease.pdf", 3)], [lease])
    assert evidence_hit(on_page, [Evidence("lease.pdf", None, "The deposit is EUR 2,900.")], [lease])
    assert not evidence_hit(on_page, [Evidence("other.pdf", 2)], [lease])
    unverified = _cite(lease, "rent of EUR 9,999", 2)
    assert unverified[0].status == "unverified"
    assert not evidence_hit(unverified, [Evidence("lease.pdf", 2)], [lease])


def test_chinese_evidence_text_is_found_after_normalising():
    contract = contract_zh()
    cited = _cite(contract, "甲方应当在每月五日前向乙方支付租金", 1)
    assert evidence_hit(cited, [Evidence(contract.name, None, "第一条 甲方应当在每月五日前向乙方支付租金。")], [contract])

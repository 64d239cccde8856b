"""Ranking documents by relevance to a question (BM25 over passages): English, Chinese and
Japanese; in memory and in the store; unmatched documents last in a stable order."""

from __future__ import annotations

import pytest

from library_fixtures import documents, topic_of
from lib.documents import Document, Passage
from lib.library.ranking import RankedDocument, rank_documents
from lib.library.store import Store

COUNT = 300


@pytest.fixture
def library(library_300) -> Store:
    return library_300


def generated() -> list[Document]:
    return [d for d, _ in documents(COUNT)]


def make(name: str, *paragraphs: str) -> Document:
    passages, start = [], 0
    for index, text in enumerate(paragraphs):
        passages.append(Passage(f"{name[:3]}-{index + 1}", index, None, None, "", text, len(text), start, start + len(text)))
        start += len(text)
    sha = f"{abs(hash(name)):x}".rjust(64, "0")[:64]
    return Document(name, sha, "text", None, "".join(paragraphs), passages, start, "exact")


@pytest.mark.parametrize("question, topic", [
    ("Was the limitation defence upheld?", "limitation"),
    ("Who must repair the roof and pay the rent?", "lease"),
    ("Was the trademark infringed by a confusingly similar mark?", "trademark"),
    ("How does the compact apportion the river water between the states?", "water"),
    ("承租人未支付租金，出租人可以解除合同吗？", "租赁"),
    ("借款人逾期不还款要支付利息吗", "借贷"),
    ("遗产如何分配", "继承"),
])
def test_the_documents_about_the_question_come_first(library, question, topic):
    docs = generated()
    on_topic = sum(1 for d in docs if topic_of(d.name) == topic)
    for ranked in (rank_documents(question, docs), library.rank_documents(question, [d.sha256 for d in docs])):
        assert [r.rank for r in ranked] == list(range(1, COUNT + 1))
        assert len(ranked) == COUNT and {r.sha256 for r in ranked} == {d.sha256 for d in docs}
        leaders = ranked[:on_topic]
        assert all(topic_of(r.name) == topic for r in leaders), [r.name for r in leaders[:5]]
        assert all(r.score > 0 and r.matches > 0 and r.best for r in leaders)
        scores = [r.score for r in ranked]
        assert scores == sorted(scores, reverse=True)


def test_in_memory_and_stored_rankings_agree(library):
    docs = generated()
    question = "Did negligence or a breach of the duty of care cause the damage?"
    memory = rank_documents(question, docs)
    stored = library.rank_documents(question, [d.sha256 for d in docs])
    assert [(r.sha256, r.name) for r in memory] == [(r.sha256, r.name) for r in stored]
    assert [round(r.score, 6) for r in memory] == [round(r.score, 6) for r in stored]
    best = memory[0]
    document = next(d for d in docs if d.sha256 == best.sha256)
    assert all(document.passage(pid) is not None for pid in best.best)
    assert best.best == stored[0].best
    via_store = rank_documents(question, docs, store=library)  # the library's index when all are stored
    assert [r.sha256 for r in via_store] == [r.sha256 for r in memory]


def test_unmatched_documents_come_last_with_score_zero_in_the_given_order(library):
    docs = generated()[:40]
    question = "arbitration clause"
    ranked = rank_documents(question, docs)
    matched = [r for r in ranked if r.score > 0]
    rest = ranked[len(matched):]
    assert matched and all(topic_of(r.name) == "arbitration" for r in matched)
    assert all(r.score == 0.0 and r.matches == 0 and r.best == () for r in rest)
    given = [d.sha256 for d in docs if d.sha256 in {r.sha256 for r in rest}]
    assert [r.sha256 for r in rest] == given
    # The same for the store, and with the selection in another order: stable means "as given".
    shas = [d.sha256 for d in reversed(docs)]
    stored = library.rank_documents(question, shas)
    assert [r.sha256 for r in stored if r.score == 0] == [s for s in shas if s in set(given)]


def test_questions_with_nothing_to_rank_keep_the_given_order():
    docs = generated()[:5]
    for question in ("", "the of and", "???", "\x00"):
        ranked = rank_documents(question, docs)
        assert [(r.sha256, r.score, r.rank) for r in ranked] == [(d.sha256, 0.0, i) for i, d in enumerate(docs, 1)]
    assert rank_documents("anything", []) == []


def test_japanese_and_mixed_scripts_rank_sensibly():
    docs = [
        make("契約.txt", "本契約は、甲と乙の間の賃貸借について定める。", "賃借人は毎月末日までに賃料を支払う。"),
        make("相続.txt", "相続人は、被相続人の財産を承継する。", "遺産分割の協議が調わないときは家庭裁判所に請求できる。"),
        make("weather.txt", "Rain is expected tomorrow in the north.", "Winds will be light."),
        make("rent-en.txt", "The tenant pays the rent every month.", "賃料 is rent in Japanese."),
    ]
    ranked = rank_documents("賃料はいつまでに支払うか", docs)
    assert [r.name for r in ranked[:2]] == ["契約.txt", "rent-en.txt"]
    assert ranked[-1].name in ("weather.txt", "相続.txt") and ranked[-1].score == 0
    assert rank_documents("遺産分割", docs)[0].name == "相続.txt"
    assert rank_documents("When is the rent paid?", docs)[0].name == "rent-en.txt"


def test_stored_ranking_ignores_documents_outside_the_selection(library):
    docs = generated()
    selection = [d.sha256 for d in docs if topic_of(d.name) in ("lease", "water")]
    ranked = library.rank_documents("Who must repair the roof?", selection)
    assert [r.sha256 for r in ranked if r.score > 0] and {r.sha256 for r in ranked} == set(selection)
    assert isinstance(ranked[0], RankedDocument) and topic_of(ranked[0].name) == "lease"
    assert ranked[0].to_json()["rank"] == 1

"""Library search with the word index: words and phrases in most languages, any run of
Chinese or Japanese, accents and full-width forms folded, and clean messages about a
query that cannot be searched (a NUL, half a surrogate pair)."""

from __future__ import annotations

import hashlib

import pytest

from lib.documents import Document, Passage
from lib.errors import InputError
from lib.library.fulltext import index_text, question_terms, search_expression
from lib.library.store import Store


def stored(store: Store, name: str, *texts: str) -> Document:
    passages, start = [], 0
    for index, text in enumerate(texts):
        passages.append(Passage(f"doc-{index + 1}", index, None, None, "", text, len(text) // 3, start, start + len(text)))
        start += len(text)
    original = ("".join(texts) + name).encode("utf-8")
    document = Document(name, hashlib.sha256(original).hexdigest(), "text", None, "".join(texts), passages, start // 3, "exact")
    store.add_document(document, original)
    return document


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(tmp_path / "data")
    stored(store, "en.txt", "The lessee repairs the roof. ", "Repairs were made in Köln by the lessor. ",
           "See 42 U.S.C. § 1983(a) and case No. 21-50498. ", "The ﬁnal order was ＡＢＣ １２３. ")
    stored(store, "zh.txt", "本合同自双方签字之日起生效。", "承租人应当按月支付租金。", "出租人负责房屋的维修。")
    stored(store, "ja.txt", "賃借人は毎月末日までに賃料を支払う。", "相続人は被相続人の財産を承継する。")
    stored(store, "other.txt", "हिन्दी भाषा में अनुबंध। ", "ภาษาไทยสัญญาเช่า ", "Договор аренды квартиры. ")
    return store


def ids(store: Store, query: str) -> list[str]:
    return sorted(f"{h.document}:{h.passage_id}" for h in store.search_passages(query))


def test_words_match_whole_or_as_the_start_of_longer_words(store):
    assert ids(store, "repair") == ["en.txt:doc-1", "en.txt:doc-2"]  # repairs, Repairs
    assert ids(store, '"repair"') == []  # quoted: exactly that word
    assert ids(store, "lessee roof") == ["en.txt:doc-1"]
    assert ids(store, '"the roof"') == ["en.txt:doc-1"]
    assert ids(store, "roo") == ["en.txt:doc-1"]


def test_when_no_word_matches_the_text_is_searched_inside_words(store):
    assert ids(store, "ssee") == ["en.txt:doc-1"]  # lessee
    assert ids(store, "ESSOR") == ["en.txt:doc-2"]  # lessor
    assert ids(store, "essee epair") == ["en.txt:doc-1"]  # every term, as before
    assert ids(store, '"ssee"') == []  # quoted: whole words only
    assert ids(store, "zz") == []  # too short to look for inside words


def test_accents_case_full_width_and_ligatures_are_folded(store):
    assert ids(store, "koln") == ids(store, "KÖLN") == ["en.txt:doc-2"]
    assert ids(store, "abc 123") == ["en.txt:doc-4"]
    assert ids(store, "final") == ["en.txt:doc-4"]  # the ﬁ ligature of a PDF


def test_statute_and_docket_numbers_as_phrases(store):
    assert ids(store, "1983(a)") == ["en.txt:doc-3"]
    assert ids(store, "21-50498") == ["en.txt:doc-3"]
    assert ids(store, '"U.S.C. § 1983"') == ["en.txt:doc-3"]
    assert ids(store, "21-50499") == []


def test_any_run_of_chinese_or_japanese_characters(store):
    assert ids(store, "合同") == ["zh.txt:doc-1"]
    assert ids(store, "签字之日") == ["zh.txt:doc-1"]
    assert ids(store, "效") == ["zh.txt:doc-1"]  # one character, at the end of a sentence
    assert ids(store, "租") == ["zh.txt:doc-2", "zh.txt:doc-3"]  # 承租人, 出租人
    assert ids(store, "租金。") == ["zh.txt:doc-2"]
    assert ids(store, "维修 房屋") == ["zh.txt:doc-3"]
    assert ids(store, "支付租金") == ["zh.txt:doc-2"]
    assert ids(store, "支付房屋") == []
    assert ids(store, "賃料") == ["ja.txt:doc-1"]
    assert ids(store, "被相続人") == ["ja.txt:doc-2"]
    assert ids(store, "人は") == ["ja.txt:doc-1", "ja.txt:doc-2"]


def test_other_scripts_hindi_thai_cyrillic(store):
    assert ids(store, "हिन्दी") == ["other.txt:doc-1"]
    assert ids(store, "สัญญา") == ["other.txt:doc-2"]
    assert ids(store, "аренды") == ["other.txt:doc-3"]
    assert ids(store, "ДОГОВОР") == ["other.txt:doc-3"]


def test_snippet_spans_mark_the_searched_words(store):
    [hit] = store.search_passages("维修")
    assert [hit.snippet[a:b] for a, b in hit.spans] == ["维修"]


@pytest.mark.parametrize("query, what", [
    ("lease\x00", "U+0000"),
    ("\x1b[31m", "U+001B"),
    ("rent \ud800", "U+D800"),
    ("\udcff", "U+DCFF"),
])
def test_a_query_no_text_can_contain_gets_a_message_about_the_query(store, query, what):
    for call in (store.search_passages, store.list_conversations):
        with pytest.raises(InputError) as caught:
            call(query)
        message = str(caught.value)
        assert what in message and "search text" in message and "database" not in message


def test_the_index_text_is_stored_only_where_it_differs(store):
    assert index_text("The lessee pays.") is None
    assert index_text("本合同生效") == " 本合 合同 同生 生效 效 "
    assert index_text("ＡＢＣ") == "ABC"
    assert search_expression("   ") is None and search_expression("§") is None
    assert question_terms("What is the rent? 支付租金") == ["rent", "支付", "付租", "租金"]


def test_deleting_a_document_leaves_nothing_in_the_index(store):
    before = ids(store, "合同")
    zh = next(d for d in store.list_documents() if d.name == "zh.txt")
    store.delete_document(zh.sha256)
    assert before and ids(store, "合同") == [] and ids(store, "效") == []
    assert store.check_integrity() == []

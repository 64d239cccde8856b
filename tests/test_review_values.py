"""Typed review values: dates, numbers with units, yes/no in English and Chinese, options, lists."""

from __future__ import annotations

import pytest

from lib.asking.review.values import display, read_value

OPTIONS = ("Allowed", "Dismissed", "Allowed in part")


@pytest.mark.parametrize("written, iso", [
    ("11 February 2022", "2022-02-11"),
    ("Feb. 11, 2022", "2022-02-11"),
    ("February 11 2022", "2022-02-11"),
    ("11th Feb 2022", "2022-02-11"),
    ("on the 3rd day of March, 2021", "2021-03-03"),
    ("2022年2月11日", "2022-02-11"),
    ("２０２２年２月１１日", "2022-02-11"),
    ("二〇二二年二月十一日", "2022-02-11"),
    ("二〇二一年十二月三十一日", "2021-12-31"),
    ("2022-02-11", "2022-02-11"),
    ("2022/2/11", "2022-02-11"),
    ("11.02.2022", "2022-02-11"),
    ("13/02/2022", "2022-02-13"),
    ("02/13/2022", "2022-02-13"),
    ("Judgment delivered: 30 September 2019.", "2019-09-30"),
])
def test_dates_in_written_forms(written, iso):
    typed = read_value("date", written)
    assert typed.value == iso and typed.text == written


@pytest.mark.parametrize("written, problem", [
    ("11/02/2022", "ambiguous"),
    ("sometime in spring", "as a date"),
    ("31 February 2022", "not a real date"),
])
def test_dates_that_cannot_be_read_say_why(written, problem):
    with pytest.raises(ValueError, match=problem):
        read_value("date", written)


@pytest.mark.parametrize("written, number, unit", [
    ("1,250,000 EUR", 1_250_000, "EUR"),
    ("EUR 1.250.000,50", 1_250_000.5, "EUR"),
    ("€ 45.000", 45_000, "EUR"),
    ("$1,000", 1000, "$"),
    ("US$ 2.5 million", 2_500_000, "US$"),
    ("£12,345.67", 12_345.67, "GBP"),
    ("12,5 %", 12.5, "%"),
    ("10 per cent", 10, "%"),
    ("1 250 000", 1_250_000, None),
    ("1\u202f250\u202f000 €", 1_250_000, "EUR"),
    ("1'000 CHF", 1000, "CHF"),
    ("1.5万元", 15_000, "CNY"),
    ("人民币 3,000 元", 3000, "CNY"),
    ("230 V", 230, "V"),
    ("24 months", 24, "months"),
    ("(300)", -300, None),
    ("-3.5", -3.5, None),
    ("1.25", 1.25, None),
    ("between 10 and 20", 10, None),
])
def test_numbers_with_separators_and_units(written, number, unit):
    typed = read_value("number", written)
    assert typed.value == number and type(typed.value) is type(number)
    assert typed.unit == unit


def test_number_that_cannot_be_read():
    with pytest.raises(ValueError, match="as a number"):
        read_value("number", "a substantial sum")


@pytest.mark.parametrize("written, answer", [
    ("Yes", True), ("yes.", True), ("YES", True), ("Yes, the court upheld it.", True), ("true", True), (True, True),
    ("No", False), ("no.", False), ("No - the defence failed.", False), (False, False),
    ("是", True), ("是的，法院支持该抗辩", True), ("对", True), ("有", True),
    ("否", False), ("不是", False), ("不", False), ("没有", False), ("无", False), ("不支持", False),
])
def test_yes_no_in_english_and_chinese(written, answer):
    assert read_value("yesno", written).value is answer


def test_yes_no_refuses_what_is_neither():
    with pytest.raises(ValueError, match="yes or no"):
        read_value("yesno", "partly")


@pytest.mark.parametrize("written, option", [
    ("Dismissed", "Dismissed"), ("dismissed.", "Dismissed"), ("ＡＬＬＯＷＥＤ", "Allowed"),
    ("allowed in part", "Allowed in part"), ("The appeal was dismissed", "Dismissed"),
])
def test_options_match_one_listed_option(written, option):
    assert read_value("options", written, OPTIONS).value == option


def test_options_refuse_an_unlisted_answer():
    with pytest.raises(ValueError, match="not one of the options"):
        read_value("options", "Remitted", OPTIONS)


@pytest.mark.parametrize("raw, items", [
    (["Limitation Act 1980", " Sale of Goods Act 1979 "], ["Limitation Act 1980", "Sale of Goods Act 1979"]),
    ("Limitation Act 1980; Sale of Goods Act 1979", ["Limitation Act 1980", "Sale of Goods Act 1979"]),
    ("- one\n- two\n- three", ["one", "two", "three"]),
    ("合同法、民法典", ["合同法", "民法典"]),
])
def test_lists(raw, items):
    assert read_value("list", raw).value == items


@pytest.mark.parametrize("kind, value, unit, shown", [
    ("number", 1_250_000, "EUR", "1,250,000 EUR"), ("number", 12.5, "%", "12.5%"), ("number", 1000, "$", "$1,000"),
    ("yesno", True, None, "Yes"), ("date", "2022-02-11", None, "2022-02-11"), ("list", ["a", "b"], None, "a; b"),
])
def test_display(kind, value, unit, shown):
    assert display(kind, value, unit) == shown

"""A cell's value in its column's type, read from what a model (or a reviewer) wrote. No I/O.

    read_value("date", "Feb. 11, 2022")          -> Typed(value='2022-02-11', text='Feb. 11, 2022')
    read_value("date", "二〇二二年二月十一日")       -> Typed(value='2022-02-11', ...)
    read_value("number", "EUR 1.250.000,50")      -> Typed(value=1250000.5, unit='EUR', ...)
    read_value("yesno", "是的")                    -> Typed(value=True, ...)
    read_value("date", "sometime in spring")      -> ValueError("could not read 'sometime in spring' as a date ...")

Typed values are JSON-ready: text and options a str, yes/no a bool, a date 'YYYY-MM-DD',
a number an int or float (its unit apart), a list a list of str.

Numbers: thousands separators (',' '.' ' ' and the apostrophe, when they group by three),
a decimal comma where it cannot be a thousands separator ('12,5', '1.250,75'); '1,250'
reads as 1250 and '1.25' as 1.25, the usual reading in English documents. Multipliers
(thousand, million, billion, k, m, bn, 千, 万, 亿) and a unit or currency before or after.
Dates: day-month-year and month-day-year in words, ISO, '2022年2月11日' with Arabic or Chinese
numerals, and numeric dates where the order is unambiguous (a part over 12, or 'D.M.YYYY').
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

TYPES = ("text", "yesno", "date", "number", "options", "list")


@dataclass(frozen=True)
class Typed:
    """A value read in its type, with the words it was read from."""

    value: Any
    text: str
    unit: str | None = None


def read_value(kind: str, raw: Any, options: tuple[str, ...] = ()) -> Typed:
    """The value of `raw` as a `kind`; ValueError (a sentence for the reviewer) when it cannot be read."""
    if kind == "list":
        return read_list(raw)
    text = _plain(raw)
    if not text:
        raise ValueError("the value is empty")
    reader = {
        "text": lambda t: Typed(t, t),
        "yesno": read_yesno,
        "date": read_date,
        "number": read_number,
        "options": lambda t: read_option(t, options),
    }.get(kind)
    if reader is None:
        raise ValueError(f"unknown column type {kind!r}")
    return reader(text)


def _plain(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "yes" if raw else "no"
    if isinstance(raw, (list, tuple)):
        return "; ".join(_plain(item) for item in raw if _plain(item))
    return " ".join(str(raw).split()).strip()


def _fold(text: str) -> str:
    """NFKC (full-width digits and letters become ASCII), lower case."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


# --------------------------------------------------------------------------- yes / no

_YES = {"yes", "y", "true", "correct", "affirmative", "是", "是的", "对", "对的", "有", "肯定", "成立", "支持", "是。"}
_NO = {"no", "n", "false", "incorrect", "negative", "否", "不是", "不", "没有", "无", "不成立", "不支持", "否。"}
_LEADING_WORD = re.compile(r"^[\s\"'“”‘’(]*([a-z]+|[\u4e00-\u9fff]{1,3})")


def read_yesno(text: str) -> Typed:
    """True or False from 'Yes', 'no.', 'Yes, the court upheld it', '是', '否', '不是' ..."""
    folded = _fold(text).rstrip(".!。！ ")
    if folded in _YES:
        return Typed(True, text)
    if folded in _NO:
        return Typed(False, text)
    # Chinese first: '不是' before '是', '没有' before '有'.
    for word in sorted(_YES | _NO, key=len, reverse=True):
        if _is_cjk(word) and folded.startswith(word):
            return Typed(word in _YES, text)
    match = _LEADING_WORD.match(folded)
    if match and match.group(1) in ("yes", "no"):
        return Typed(match.group(1) == "yes", text)
    raise ValueError(f"could not read {text!r} as yes or no")


def _is_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


# ------------------------------------------------------------------------------ dates

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
    "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
_MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"
_DATE_FORMS = [
    re.compile(r"\b(?P<year>\d{4})-(?P<mnum>\d{1,2})-(?P<day>\d{1,2})\b"),                 # 2022-02-11
    re.compile(r"(?P<year>\d{4})\s*年\s*(?P<mnum>\d{1,2})\s*月\s*(?P<day>\d{1,2})\s*[日号]"),    # 2022年2月11日
    re.compile(rf"\b{_DAY}(?:\s+day\s+of)?\s+{_MONTH},?\s+{_YEAR}\b"),                     # 11 February 2022
    re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b"),                                      # Feb. 11, 2022
    re.compile(r"\b(?P<year>\d{4})[/.](?P<mnum>\d{1,2})[/.](?P<day>\d{1,2})\b"),           # 2022/2/11
    re.compile(r"\b(?P<day>\d{1,2})\.(?P<mnum>\d{1,2})\.(?P<year>\d{4})\b"),               # 11.02.2022
]
_NUMERIC_DATE = re.compile(r"\b(?P<a>\d{1,2})[/-](?P<b>\d{1,2})[/-](?P<year>\d{4})\b")   # 11/02/2022
_CN_DIGITS = {"〇": 0, "○": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_DATE = re.compile(r"([〇○零一二三四五六七八九]{4})\s*年\s*([一二三四五六七八九十]{1,3})\s*月\s*([一二三四五六七八九十]{1,3})\s*[日号]")


def read_date(text: str) -> Typed:
    """A date ('YYYY-MM-DD') from the written forms above; ValueError when ambiguous or absent."""
    folded = _fold(text)
    chinese = _CN_DATE.search(folded)
    if chinese:
        year = int("".join(str(_CN_DIGITS[ch]) for ch in chinese.group(1)))
        return _date(year, _cn_number(chinese.group(2)), _cn_number(chinese.group(3)), text)
    for form in _DATE_FORMS:
        match = form.search(folded)
        if match:
            parts = match.groupdict()
            month = MONTHS[parts["month"]] if parts.get("month") else int(parts["mnum"])
            return _date(int(parts["year"]), month, int(parts["day"]), text)
    numeric = _NUMERIC_DATE.search(folded)
    if numeric:
        a, b, year = int(numeric.group("a")), int(numeric.group("b")), int(numeric.group("year"))
        if a > 12 >= b:
            return _date(year, b, a, text)
        if b > 12 >= a:
            return _date(year, a, b, text)
        if a != b:
            raise ValueError(f"{text!r} could be {a}/{b} or {b}/{a} (day and month are ambiguous)")
        return _date(year, a, a, text)
    raise ValueError(f"could not read {text!r} as a date")


def _cn_number(text: str) -> int:
    """一 .. 三十一 as an int."""
    if "十" not in text:
        return _CN_DIGITS[text]
    tens, _, ones = text.partition("十")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


def _date(year: int, month: int, day: int, text: str) -> Typed:
    try:
        return Typed(dt.date(year, month, day).isoformat(), text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a real date ({exc})") from exc


# ---------------------------------------------------------------------------- numbers

_MULTIPLIERS = {
    "thousand": 1e3, "k": 1e3, "million": 1e6, "mio": 1e6, "m": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9,
    "b": 1e9, "trillion": 1e12, "千": 1e3, "万": 1e4, "萬": 1e4, "亿": 1e8, "億": 1e8,
}
_CURRENCY_SYMBOLS = {"$": "$", "€": "EUR", "£": "GBP", "¥": "¥", "￥": "¥", "₹": "INR", "元": "CNY", "人民币": "CNY"}
_NUMBER = re.compile(r"(?P<sign>[-−–])?\s*(?P<digits>\d[\d,.'’\u00a0\u202f\u2009 ]*\d|\d)")
_NEGATIVE_PARENS = re.compile(r"^\(\s*(.*?)\s*\)$")


def read_number(text: str) -> Typed:
    """A number with its unit from '1,250,000 EUR', '€ 45.000,50', '12,5 %', '1.5万元', '(300)'."""
    plain = unicodedata.normalize("NFKC", text).strip()
    negative = False
    parens = _NEGATIVE_PARENS.match(plain)
    if parens:
        plain, negative = parens.group(1), True
    match = _NUMBER.search(plain)
    if not match:
        raise ValueError(f"could not read {text!r} as a number")
    if match.group("sign"):
        negative = True
    before, after = plain[: match.start()].strip(), plain[match.end():].strip()
    factor, after = _multiplier(after)
    unit = _unit(before, after)
    number = parse_digits(match.group("digits").strip(), text, money=_is_money(unit))
    value = number * factor
    value = -value if negative else value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return Typed(value, text, unit)


def _is_money(unit: str | None) -> bool:
    return bool(unit) and (unit in _CURRENCY_SYMBOLS.values() or "$" in unit or unit in _CURRENCY_CODES)


_CURRENCY_CODES = {"EUR", "USD", "GBP", "CHF", "JPY", "CNY", "RMB", "AUD", "CAD", "HKD", "SGD", "INR", "SEK", "NOK", "DKK"}


def parse_digits(digits: str, text: str = "", *, money: bool = False) -> float | int:
    """'1,250,000' 1250000; '1.250.000,5' 1250000.5; '12,5' 12.5; '1 000' 1000; "1'000" 1000.

    One dot before exactly three digits ('45.000') is a decimal point, except in an amount of
    money (€ 45.000), where three decimals do not occur."""
    digits = re.sub(r"[\u00a0\u202f\u2009 '’]", " ", digits)
    if " " in digits:
        groups = digits.split()
        if all(len(g) == 3 for g in groups[1:]) and len(groups[0]) <= 3:
            digits = "".join(groups)
        else:
            digits = groups[0]  # '12 34' is two numbers: take the first
    commas, dots = digits.count(","), digits.count(".")
    if commas and dots:
        decimal = "," if digits.rfind(",") > digits.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        digits = digits.replace(thousands, "").replace(decimal, ".")
    elif commas:
        digits = _one_separator(digits, ",", text)
    elif dots > 1 or (dots == 1 and money and re.fullmatch(r"[1-9]\d{0,2}\.\d{3}", digits)):
        digits = _one_separator(digits, ".", text)
    try:
        number = float(digits)
    except ValueError as exc:
        raise ValueError(f"could not read {text or digits!r} as a number") from exc
    return int(number) if number.is_integer() and "." not in digits else number


def _one_separator(digits: str, sep: str, text: str) -> str:
    """Digits with only one kind of separator: thousands when it groups by three, else decimal."""
    head, *groups = digits.split(sep)
    if groups and all(len(g) == 3 for g in groups) and 1 <= len(head) <= 3:
        return head + "".join(groups)
    if len(groups) == 1:
        return f"{head}.{groups[0]}"  # '12,5' and '0,75': a decimal comma
    raise ValueError(f"could not read {text or digits!r} as a number (its separators do not group by three)")


def _multiplier(after: str) -> tuple[float, str]:
    match = re.match(r"(thousand|million|billion|trillion|mio|mn|bn|k|m|b|千|万|萬|亿|億)(?![a-z])", after, re.I)
    if not match:
        return 1.0, after
    return _MULTIPLIERS[match.group(1).lower()], after[match.end():].strip()


_NOT_UNITS = {"and", "or", "to", "of", "in", "on", "at", "for", "the", "a", "an", "was", "were", "is", "are",
              "by", "from", "with", "as", "under", "over", "than", "plus", "each"}
_PERCENT = re.compile(r"^(?:per\s*cent|percent|pct)\b", re.I)


def _unit(before: str, after: str) -> str | None:
    """The unit or currency written next to the number ('EUR', '$', 'US$', 'V', 'months', '%')."""
    if _PERCENT.match(after):
        return "%"
    for side in (before, after):
        word = side.strip(" :=~≈()[],;.")
        word = word.split()[-1] if side is before and word else word.split()[0] if word else ""
        if word in _CURRENCY_SYMBOLS:
            return _CURRENCY_SYMBOLS[word]
        if len(word) <= 5 and any(symbol in word for symbol in _CURRENCY_SYMBOLS):
            return word
    first_after = re.match(r"([%‰°]|[^\s\d,.;:()]+(?:\s*/\s*[^\s\d,.;:()]+)?)", after)
    if first_after and first_after.group(1).casefold() not in _NOT_UNITS:
        return first_after.group(1)
    last_before = re.search(r"\b([A-Z]{3})$", before.strip(" :=~≈([,;"))
    return last_before.group(1) if last_before else None


# ---------------------------------------------------------------------- options, list

def read_option(text: str, options: tuple[str, ...]) -> Typed:
    """One of `options`: the same words (case, width and punctuation aside), or the only one named."""
    wanted = _option_key(text)
    for option in options:
        if _option_key(option) == wanted:
            return Typed(option, text)
    named = [o for o in options if re.search(rf"(?<!\w){re.escape(_option_key(o))}(?!\w)", wanted)]
    if len(named) == 1:
        return Typed(named[0], text)
    listed = ", ".join(options) or "none"
    raise ValueError(f"{text!r} is not one of the options ({listed})")


def _option_key(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", _fold(text)).split())


_LIST_SPLIT = re.compile(r"\s*(?:\n|;|；|、|\u2022|•)\s*|(?:^|\n)\s*(?:[-*+]|\d+[.)])\s+")


def read_list(raw: Any) -> Typed:
    """Items from a JSON array, or from text split on lines, semicolons, bullets or '、'."""
    if isinstance(raw, (list, tuple)):
        items = [_plain(item) for item in raw]
    else:
        items = _LIST_SPLIT.split(str(raw or "").strip())
    items = [item.strip(" -*•,.") for item in items]
    items = [item for item in items if item]
    if not items:
        raise ValueError("the list is empty")
    return Typed(items, "; ".join(items))


def display(kind: str, value: Any, unit: str | None = None) -> str:
    """A typed value as a person reads it: 'Yes', '2022-02-11', '1,250,000 EUR', 'a; b'."""
    if value is None:
        return ""
    if kind == "yesno" or isinstance(value, bool):
        return "Yes" if value else "No"
    if kind == "number" and isinstance(value, (int, float)):
        number = f"{value:,}" if isinstance(value, int) else _float_text(value)
        if unit in ("$", "¥"):
            return f"{unit}{number}"
        return f"{number} {unit}".strip() if unit and unit != "%" else f"{number}{unit or ''}"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def _float_text(value: float) -> str:
    whole, _, fraction = f"{value:,.6f}".rstrip("0").partition(".")
    return f"{whole}.{fraction}" if fraction else whole

"""How text is indexed and how searches and questions become FTS5 queries (pure, no I/O).

One FTS5 table holds every passage with SQLite's `unicode61` word tokenizer (case and
diacritics folded, combining marks kept inside words so Hindi, Thai or Arabic words stay
whole). Words are what a lawyer searches in most languages: "lessee", "Köln" (= "koln"),
"§ 1983(a)" (the words 1983 and a, as a phrase). Scripts written without spaces (Chinese,
Japanese kana and kanji, Thai, Lao, Khmer, Myanmar) have no words for the tokenizer to
find, so their runs are indexed as overlapping character bigrams plus the run's last
character, the usual way CJK text is searched (Lucene's CJK analyzer does the same):

    index_text("本合同自签字之日起生效")
    -> " 本合 合同 同自 自签 签字 字之 之日 日起 起生 生效 效 "

Any substring of such a run is then a phrase of consecutive bigrams ("签字之日" is the
phrase "签字 字之 之日"), a one-character search is a prefix query ("合*"), and ranking
a Chinese question uses its bigrams as terms. (A search inside a Western word, "ssee" in
"lessee", is Store.search_passages' fallback when the index finds nothing.) A passage's index text is stored only where
it differs from the passage text (passages.search_text; NULL for most Western text).

    search_expression("lessee \"three months\"")   -> '"lessee"* AND "three months"'
    search_expression("合同")                         -> '"合同"'
    question_terms("Who repairs the roof?")         -> ['repairs', 'roof']
"""

from __future__ import annotations

import unicodedata

import regex

from ..errors import InputError

TOKENIZER = "unicode61 remove_diacritics 2 categories 'L* N* Co M*'"
"""The FTS5 tokenizer of the passage index (and of every temporary ranking index)."""

# Scripts written without spaces between words. Marks (\p{M}) stay with their base letter.
_NO_SPACE = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\u30fc\u3005\u3006"
NO_SPACE_RUN = regex.compile(rf"(?:[{_NO_SPACE}]\p{{M}}*)+")
_GRAPHEME = regex.compile(r"\X")
_WORD = regex.compile(r"[\p{L}\p{N}\p{Co}\p{M}]+")
_TERMS = regex.compile(r'"([^"]+)"|(\S+)')
_FORBIDDEN = regex.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\p{Cs}]")
MAX_QUESTION_TERMS = 48
"""A question longer than this many distinct terms keeps its first ones (a pasted page)."""
PREFIX_MIN = 3
"""An unquoted search word this long or longer also finds longer words ("lease" -> "leases")."""

# Words that carry no topic in questions (ranking only; a search finds them if asked).
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is
    it its itself just me more most my myself no nor not now of off on once only or other our
    ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    tell please explain describe document documents say says said according may might must shall
    also whether upon""".split()
)


class QueryError(InputError):
    """A search or question that cannot be searched as typed (the message says why)."""


def check_query(text: str, what: str = "search text") -> str:
    """The text, or QueryError when it holds characters no document text can contain.

    A NUL or another control character, or half of a UTF-16 surrogate pair (what a broken
    copy and paste leaves), would otherwise reach SQLite and fail as a database error.
    """
    found = _FORBIDDEN.search(text)
    if found is None:
        return text
    char = found.group()
    kind = "an unpaired surrogate" if 0xD800 <= ord(char) <= 0xDFFF else "a control character"
    raise QueryError(
        f"The {what} contains {kind} (U+{ord(char):04X}) at position {found.start() + 1}, an invisible "
        f"character that cannot be searched for or stored. Retype the {what} (rather than pasting it) and try again."
    )


def normalise(text: str) -> str:
    """NFKC: full-width letters and digits, ligatures (ﬁ) and compatibility forms as plain ones."""
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def _bigrams(run: str) -> list[str]:
    chars = _GRAPHEME.findall(run)
    return [a + b for a, b in zip(chars, chars[1:])]


def _last(run: str) -> str:
    return _GRAPHEME.findall(run)[-1]


def index_text(text: str) -> str | None:
    """The text the index reads for a passage, or None when that is the passage text itself."""
    if not isinstance(text, str):
        return None  # not text at all: the database refuses the passage with its own message
    plain = normalise(text)
    if NO_SPACE_RUN.search(plain) is None:
        return None if plain == text else plain
    return NO_SPACE_RUN.sub(lambda m: " " + " ".join(_bigrams(m.group()) + [_last(m.group())]) + " ", plain)


def _phrase_tokens(term: str) -> tuple[list[str], bool]:
    """A search term as index tokens (spaced-script text left for the tokenizer) and
    whether its last token must be matched as a prefix (it may continue in the text)."""
    parts: list[str] = []
    position = 0
    prefix = False
    for match in NO_SPACE_RUN.finditer(term):
        parts.append(term[position:match.start()])
        run = match.group()
        at_end = not _WORD.search(term, match.end())
        chars = _GRAPHEME.findall(run)
        if at_end:
            # The text may go on after the run: no final-character token, and one
            # character alone matches any bigram that starts with it.
            parts.extend(_bigrams(run) or chars)
            prefix = len(chars) == 1
        else:
            parts.extend(_bigrams(run) + [chars[-1]])
        position = match.end()
    parts.append(term[position:])
    return [p for p in (" ".join(part.split()) for part in parts) if p], prefix


def _phrase(tokens: list[str], prefix: bool) -> str:
    text = " ".join(tokens).replace('"', '""')
    return f'"{text}"' + (" *" if prefix else "")


def search_terms(query: str) -> list[tuple[str, bool]]:
    """The terms of a search box's text, each with whether it was quoted: "quoted phrases"
    stay whole, the rest splits on spaces."""
    terms = []
    for phrase, word in _TERMS.findall(query):
        term = (phrase or word).strip()
        if term:
            terms.append((term, bool(phrase)))
    return terms


def search_expression(query: str) -> str | None:
    """An FTS5 MATCH expression requiring every term of `query`, or None if nothing is searchable.

    Every term is matched as literal words (FTS5 syntax typed by the user is just text);
    an unquoted term ending in a word of PREFIX_MIN or more characters also matches longer
    words, so "repair" finds "repairs" and "repaired".
    """
    check_query(query)
    phrases = []
    for raw, quoted in search_terms(query):
        term = normalise(raw)
        tokens, prefix = _phrase_tokens(term)
        if not tokens or not _WORD.search(term):
            continue
        if not prefix and not quoted:
            words = _WORD.findall(tokens[-1])
            prefix = bool(words) and NO_SPACE_RUN.search(words[-1]) is None and len(words[-1]) >= PREFIX_MIN \
                and _WORD.fullmatch(term[-1]) is not None
        phrases.append(_phrase(tokens, prefix))
    return " AND ".join(phrases) if phrases else None


def question_terms(question: str) -> list[str]:
    """The distinct topic terms of a question, in order: words (stopwords dropped) and,
    for scripts without spaces, character bigrams (a lone character stands as itself)."""
    text = normalise(_FORBIDDEN.sub(" ", question)).casefold()
    terms: list[str] = []
    position = 0
    for match in NO_SPACE_RUN.finditer(text):
        terms += _words(text[position:match.start()])
        chars = _GRAPHEME.findall(match.group())
        terms += _bigrams(match.group()) or chars
        position = match.end()
    terms += _words(text[position:])
    return list(dict.fromkeys(terms))[:MAX_QUESTION_TERMS]


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def term_expression(term: str) -> str:
    """One question term as an FTS5 phrase (a lone CJK character as a prefix)."""
    single = NO_SPACE_RUN.fullmatch(term) is not None and len(_GRAPHEME.findall(term)) == 1
    return _phrase([term], single)

"""lib/output/presenting.py: safe Markdown, citation markers, budget segments, statistics lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from lib.output import presenting as view


@dataclass
class Cite:
    id: str
    status: str
    quote: str = ""

    @property
    def passage_id(self) -> str:
        return self.id


def _unescape(markdown: str) -> str:
    """What a CommonMark renderer shows for backslash-escaped text (no-break spaces as spaces)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("  \n", "\n").replace("\u00a0", " ").replace(view.WORD_JOINER, "")


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "[click me](javascript:alert(1))",
        "![x](http://evil/x.png)",
        "<javascript:alert(1)>",
        ":red[coloured] and :material/home: and $x^2$",
        "# not a heading\n- not a list\n1. not a list",
        "    indented code? no",
        "**bold** _it_ `code` ~~gone~~ | a | b |",
    ],
)
def test_escape_markdown_leaves_no_active_syntax_and_keeps_the_text(text):
    escaped = view.escape_markdown(text)
    # Every Markdown-active ASCII character is preceded by a backslash.
    for match in re.finditer(r"[\[\]()<>!*_`~:$#|]", escaped):
        assert escaped[match.start() - 1] == "\\", (escaped, match.group())
    assert not re.search(r"^[ \t]{4}", escaped, re.MULTILINE)
    assert _unescape(escaped) == text.replace("    ", "    ")


def test_escape_markdown_keeps_line_breaks_and_unicode():
    assert view.escape_markdown("第一行。\n第二行") == "第一行。  \n第二行"
    assert view.escape_markdown("a\nb", hard_breaks=False) == "a\nb"


def test_mark_citations_numbers_by_first_appearance_and_colours_by_status():
    answer = 'Rent is monthly "the lessee shall pay" [kzt-3]. Notice "thirty days" [kzt-9][kzt-3].'
    cites = [Cite("kzt-3", "verified", "the lessee shall pay"), Cite("kzt-9", "unverified", "thirty days"),
             Cite("kzt-3", "verified", "thirty days")]
    text, markers = view.mark_citations(answer, cites)
    assert [m.number for m in markers] == [1, 2, 3]
    assert [m.citation for m in markers] == cites
    assert ":green[**\\[1\\]**]" in text and ":orange[**\\[2\\]**]" in text and ":green[**\\[3\\]**]" in text
    assert "kzt" not in text
    assert _unescape(text).count("lessee shall pay") == 1


def test_mark_citations_reuses_a_number_for_the_same_single_citation():
    cite = Cite("abc-1", "verified")
    text, markers = view.mark_citations("One [abc-1]. Again [abc-1].", [cite])
    assert len(markers) == 1
    assert text.count("\\[1\\]") == 2


def test_mark_citations_marks_unknown_ids_invalid_and_handles_groups():
    text, markers = view.mark_citations("Claim 【xyz-4, xyz-5】.", [Cite("xyz-4", "verified")])
    assert [m.number for m in markers] == [1, 2]
    assert markers[1].citation.status == "invalid" and markers[1].citation.passage_id == "xyz-5"
    assert ":red[**\\[2\\]**]" in text


def test_mark_citations_escapes_the_text_around_markers():
    text, _ = view.mark_citations('<script>x</script> "q" [abc-1] [go](javascript:x)', [Cite("abc-1", "verified")])
    assert "<script>" not in text and "](javascript" not in text


def test_highlight_and_find_span():
    text = "The Lessee  shall pay the rent."
    span = view.find_span(text, "lessee shall pay")
    assert span == (4, 21)
    marked = view.highlight(text, *span)
    assert ":orange-background[**Lessee  shall pay**]" in marked
    assert view.highlight(text, None, None) == view.escape_markdown(text)
    assert view.find_span(text, "not there") is None


def test_highlight_spans_skips_overlaps_and_bad_ranges():
    marked = view.highlight_spans("abc def ghi", [(4, 7), (5, 6), (0, 99)])
    assert marked.count("orange-background") == 1 and "**def**" in marked


@dataclass
class FakeBudget:
    context: int
    system: int
    template: int
    question: int
    history: int
    reserved: int
    documents: dict

    @property
    def left(self) -> int:
        return self.context - self.system - self.template - self.question - self.history - self.reserved - sum(
            self.documents.values()
        )

    @property
    def overrun(self) -> int:
        return max(0, -self.left)


def test_budget_segments_add_up_to_the_context_when_it_fits():
    budget = FakeBudget(131072, 700, 40, 12, 0, 4096, {"a.pdf": 50000, "b.docx": 30000})
    segments = view.budget_segments(budget)
    assert [s.kind for s in segments] == ["system", "template", "document", "document", "question", "reserved", "free"]
    assert sum(s.tokens for s in segments) == 131072
    assert view.budget_headline(budget) == f"Fits: {131072 - budget.left:,} of 131,072 tokens used, {budget.left:,} left."
    assert 0 < view.fraction_used(budget) < 1


def test_budget_segments_show_the_overrun():
    budget = FakeBudget(40960, 700, 40, 12, 300, 4096, {"long.pdf": 50000})
    segments = view.budget_segments(budget)
    assert segments[-1].kind == "over" and segments[-1].tokens == budget.overrun
    assert "history" in [s.kind for s in segments]
    assert view.budget_headline(budget).startswith("Does not fit") and f"{budget.overrun:,} over" in view.budget_headline(budget)
    assert view.fraction_used(budget) == 1.0


def test_prompt_check_warns_only_when_counts_differ():
    assert view.prompt_check(1000, 1003) == ("Prompt: 1,000 tokens sent, 1,003 read by the server.", False)
    line, warn = view.prompt_check(1000, 500)
    assert warn and "-500" in line
    assert view.prompt_check(1000, None)[1] is False


def test_cache_line_from_cached_tokens_or_timing():
    assert "900 of 1,000" in view.cache_line(900, 1000, None, None)
    slow = 10.0 / 100_000  # a full read: 100k tokens in 10 s
    assert "reused" in view.cache_line(None, 100_000, 0.2, slow, follow_up=True)
    assert "not reused" in view.cache_line(None, 100_000, 9.0, slow, follow_up=True)
    assert "does not say how many came from its cache" in view.cache_line(None, 100_000, 9.0, None)


def test_cache_line_believes_a_fast_read_even_on_a_first_question():
    # The same documents were asked in an earlier conversation: the server still holds them.
    line = view.cache_line(None, 74_360, 0.0062, None)
    assert line.startswith("Cache: reused") and "74,360" in line
    # ... and a follow-up to that fast first question is not "not reused" just for being slower.
    follow = view.cache_line(None, 74_395, 0.0202, 0.0062 / 74_360, follow_up=True)
    assert follow.startswith("Cache: reused"), follow


def test_cache_line_claims_nothing_timing_cannot_show():
    # A small prompt: a full read and a cached one take about as long.
    line = view.cache_line(None, 1_440, 0.5, 0.02 / 1_400, follow_up=True)
    assert "not reused" not in line and "1,440" in line
    assert view.cache_line(0, 5000, None, None, follow_up=True) == "Cache: nothing reused."


def test_escape_markdown_stops_autolinks_of_urls_and_emails():
    text = "See http://evil.example/x, https://a.b, www.evil.example and write to me.you@evil.example."
    escaped = view.escape_markdown(text)
    # What GFM's autolink-literal pass sees once escapes are read (mdast-util-gfm-autolink-literal):
    seen = re.sub(r"\\(.)", r"\1", escaped)
    assert not re.search(r"(?i)(https?://|www(?=\.))", seen), seen
    assert not re.search(r"[-.\w+]+@[-\w]+(?:\.[-\w]+)+", seen), seen
    assert _unescape(escaped) == text  # the reader still sees every character


def test_inline_code_and_lib_messages_show_names_literally():
    assert view.inline_code("qwen3:14b") == "`qwen3:14b`"  # no backslash shows inside code
    assert view.inline_code("a`b") == "``a`b``"
    assert view.inline_code("`x") == "`` `x ``"
    assert view.inline_code("") == ""
    message = view.message_markdown("Start it with `ollama serve` (or set OLLAMA_HOST) <b>")
    assert "`ollama serve`" in message and "\\(or set OLLAMA\\_HOST\\)" in message and "\\<b\\>" in message


@dataclass
class RoomBudget:
    """What refusal_hints reads of a lib.asking.budget.Budget."""

    documents: dict
    available: int
    history: int = 0

    @property
    def overrun(self) -> int:
        return max(0, sum(self.documents.values()) - self.available)

    @property
    def fits(self) -> bool:
        return self.overrun == 0


def test_refusal_hints_say_what_would_make_it_fit():
    thinking = RoomBudget({"dobbs.pdf": 120_282}, available=118_406)
    plain = RoomBudget({"dobbs.pdf": 120_282}, available=126_598)
    hints = view.refusal_hints(thinking, plain)
    assert hints == ["It fits with Thinking off: thinking reserves extra room for the model's reasoning."]
    huge = view.refusal_hints(RoomBudget({"ira.pdf": 216_724, "note.md": 500}, available=126_592))
    assert len(huge) == 1 and "“ira.pdf” alone needs 216,724 tokens" in huge[0] and "126,592" in huge[0]
    follow = view.refusal_hints(RoomBudget({"a.pdf": 1000}, available=900, history=300))
    assert "new conversation" in follow[0]


def test_small_formatters():
    assert view.format_seconds(None) == "–"
    assert view.format_seconds(0.42) == "0.4 s"
    assert view.format_seconds(0.0202) == "0.02 s"
    assert view.format_seconds(125) == "2 min 05 s"
    assert view.speed_line(100, 4.0) == "Answer: 100 tokens at 25.0 tokens/s."
    assert view.join_nonempty(["a", "", "b"]) == "a · b"


@dataclass
class QuestionBudget:
    question: int
    left: int
    history: int = 0

    @property
    def overrun(self) -> int:
        return max(0, -self.left)


def test_question_too_long_names_the_question_and_its_room():
    before = QuestionBudget(question=3, left=6_260, history=40)
    asked = QuestionBudget(question=7_507, left=-1_244, history=40)
    line = view.question_too_long(asked, before)
    assert line.startswith("The question is too long by 1,244 tokens: it takes 7,507 tokens")
    assert "leave 6,263 for it" in line and "new conversation" in line
    assert "new conversation" not in view.question_too_long(QuestionBudget(900, -100), QuestionBudget(3, 797))


def test_count_noun_says_one_passage_and_many_passages():
    assert view.count_noun(1, "passage") == "1 passage"
    assert view.count_noun(1204, "passage") == "1,204 passages"
    assert view.count_noun(0, "warning") == "0 warnings"

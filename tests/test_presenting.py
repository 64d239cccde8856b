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


def room(documents: dict, *, context: int = 131_072, reserved: int = 4096, thinking_reserve: int = 0,
         history: int = 0):
    """A real lib Budget (what refusal_hints reads): system 359, template 40, question 12 tokens."""
    from lib.asking.budget import Budget

    return Budget(context=context, system=359, template=40, question=12, history=history, reserved=reserved,
                  documents=documents, counter="exact", think=bool(thinking_reserve),
                  thinking_reserve=thinking_reserve)


def test_a_document_just_over_fits_by_lowering_the_answer_reserve():
    over_by_759 = 32_768 - 359 - 40 - 12 - 4096 + 759
    hints = view.refusal_hints(room({"manual.pdf": over_by_759}, context=32_768))
    assert hints == ["Lower the answer reserve from 4,096 to 3,300 tokens (Settings › Reserved for the answer) "
                     "and it fits; a longer answer is then cut at 3,300 tokens."]
    # Far over: no reserve is small enough, and the document alone is too long for this model.
    [alone] = view.refusal_hints(room({"manual.pdf": 40_000}, context=32_768))
    assert alone.startswith("“manual.pdf” alone needs 40,000 tokens") and "never cuts" in alone


def test_thinking_off_comes_first_when_it_is_enough():
    documents = {"dobbs.pdf": 120_282}
    thinking = room(documents, reserved=4096 + 8192, thinking_reserve=8192)
    plain = room(documents)
    hints = view.refusal_hints(thinking, plain)
    assert hints[0] == ("Turn Thinking off and it fits: thinking reserves extra room (8,192 tokens) for the "
                        "model's reasoning.")
    assert len(hints) <= 2 and not any("alone needs" in h for h in hints)


def test_many_documents_say_which_to_remove_with_their_tokens():
    documents = {f"exhibit-{n:02}.pdf": 3_000 + 100 * n for n in range(60)}
    budget = room(documents)
    hints = view.refusal_hints(budget)
    assert len(hints) == 1 and hints[0].startswith("Remove the ")
    count = int(re.search(r"Remove the (\d+) largest", hints[0]).group(1))
    largest = sorted(documents.values(), reverse=True)
    assert sum(largest[:count]) >= budget.overrun > sum(largest[: count - 1])  # the fewest that do
    assert "“exhibit-59.pdf” 8,900" in hints[0] and f"{sum(largest[:count]):,} tokens in all" in hints[0]
    # Just over: the smallest single document that frees enough is named, not the largest.
    few = {"a.pdf": 90_000, "b.pdf": 30_000, "c.pdf": 6_000, "d.pdf": 2_500}
    over = room(few).overrun
    assert 0 < over <= 2_500
    assert view.refusal_hints(room(few))[-1] == "Remove “d.pdf” (2,500 tokens) from the selection and it fits."


def test_at_most_two_hints_and_the_settings_they_name():
    follow = room({"a.pdf": 126_000}, history=1_500)
    hints = view.refusal_hints(follow, model_context=262_144)
    assert len(hints) == 2
    assert hints[0].startswith("Start a new conversation on these documents and it fits")
    assert hints[1].startswith("Lower the answer reserve")
    raise_it = view.refusal_hints(room({"a.pdf": 50_000, "b.pdf": 800}, context=40_960), model_context=131_072)
    assert raise_it[0] == ("Raise the context from 40,960 to 56,320 tokens (Settings › Context (tokens)) and it "
                           "fits: the model holds 131,072.")
    huge = view.refusal_hints(room({"ira.pdf": 216_724, "note.md": 500}))
    assert huge == ["Remove “ira.pdf” (216,724 tokens) from the selection and it fits.",
                    "“ira.pdf” alone needs 216,724 tokens, more than the 129,637 this model's context can leave "
                    "for documents. Folio reads documents whole and never cuts them: it needs a model that holds more."]
    assert view.refusal_hints(room({"a.pdf": 10})) == []


def test_the_budget_table_stays_short_whatever_the_selection():
    documents = {f"exhibit-{n:03}.pdf": 1_000 + n for n in range(200)}
    budget = room(documents)
    rows, folded = view.budget_rows(budget)
    assert [r.kind for r in rows] == ["system", "template", "documents", "question", "reserved", "over"]
    assert rows[2].label == "200 documents" and rows[2].tokens == sum(documents.values())
    assert rows[-1].label == "Over the context by" and rows[-1].tokens == budget.overrun
    assert [s.label for s in folded[:2]] == ["exhibit-199.pdf", "exhibit-198.pdf"] and len(folded) == 200
    few_rows, none = view.budget_rows(room({"a.pdf": 10, "b.pdf": 20}))
    assert [r.label for r in few_rows if r.kind == "document"] == ["a.pdf", "b.pdf"] and none == []
    assert view.refusal_headline(budget) == (
        f"The 200 selected documents need {budget.total_documents:,} tokens but only {budget.available:,} are "
        f"available: over by {budget.overrun:,}.")


def test_the_progress_bar_shows_each_stage_at_its_real_fraction_and_no_faster_than_it_can_draw():
    now = [0.0]
    progress = view.StageProgress(every=0.75, clock=lambda: now[0])
    shown = []
    for page in range(1, 56):
        now[0] += 0.05  # lib reports every page, far faster than the bar slides (0.5 s)
        update = progress.update("Reading page", page, 55)
        if update:
            shown.append((now[0], *update))
    assert shown[0][1:] == (1 / 55, "Reading page 1 of 55") and shown[-1][1:] == (1.0, "Reading page 55 of 55")
    assert all(b[0] - a[0] >= 0.75 for a, b in zip(shown, shown[1:-1]))  # each slide ends before the next
    for _at, fraction, text in shown:
        done, total = map(int, re.findall(r"\d+", text))
        assert fraction == done / total  # the bar says what the text says
    now[0] += 0.01
    assert progress.update("Counting tokens", 0, None) == (0.0, "Counting tokens")  # a new stage at once


def test_switching_the_server_kind_moves_a_default_address_and_keeps_a_custom_one():
    assert view.host_for_backend("openai", "http://127.0.0.1:11434", "ollama") == "http://127.0.0.1:8000"
    assert view.host_for_backend("openai", "http://localhost:11434/", "ollama") == "http://127.0.0.1:8000"
    assert view.host_for_backend("ollama", "http://127.0.0.1:8000", "openai") == "http://127.0.0.1:11434"
    assert view.host_for_backend("openai", "http://gpu-box:11434", "ollama") == "http://gpu-box:11434"
    assert view.host_for_backend("ollama", "http://127.0.0.1:11434", "ollama") == "http://127.0.0.1:11434"


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

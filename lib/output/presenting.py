"""Pure view logic for the web app (no streamlit, no I/O): safe Markdown, citation markers,
budget-bar segments, and the plain-language lines shown after an answer.

    escape_markdown('<script>x</script>')   -> '\\<script\\>x\\</script\\>'   (shown, never run)
    mark_citations('Paid "monthly" [kzt-3].', [c])
        -> ('Paid \\"monthly\\" :green[**\\[1\\]**]\\.', [Marker(1, c)])   (c verified: green)
    budget_segments(budget)                 -> [Segment('System instructions', 812, 'system'), ...]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from ..asking.reuse import CACHED_READ_TOKENS_S  # noqa: F401 (kept importable from here)

# Every ASCII character Markdown (CommonMark + GFM + Streamlit's directives, emoji
# shortcodes and LaTeX) gives a meaning to. Backslash-escaping all of them makes any
# text render literally, so document text or model output can never form a link,
# an image, raw HTML or a colour directive.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$=\"'&^%])")
_LEADING_SPACE = re.compile(r"^[ \t]+", re.MULTILINE)
# GFM turns bare "http://", "www." and "name@host" into links *after* escapes are read, so
# escaping cannot stop it: an invisible word joiner (U+2060) inside the trigger can.
_AUTOLINK_TRIGGER = re.compile(r"(?i)(?:https?|ftp)(?=:)|www(?=\.)|(?<=[\w.+-])(?=@)")
WORD_JOINER = "\u2060"
_CODE_SPAN = re.compile(r"`([^`\n]+)`")

# A passage ID and a citation group as lib/asking/citations.py reads them ("[kzt-3]", "[kzt-3, kzt-9]",
# full-width brackets too), so every cited ID gets a marker.
PASSAGE_ID = r"[A-Za-z]{2,8}\d{0,3}-\d{1,7}"
_CITATION_GROUP = re.compile(
    r"[\[【［〔]\s*(" + PASSAGE_ID + r"(?:\s*[,;，；、]\s*" + PASSAGE_ID + r")*)\s*[\]】］〕]"
)
_ONE_ID = re.compile(PASSAGE_ID)

STATUS_LABELS = {
    "verified": "verified",
    "unverified": "unverified",
    "invalid": "invalid",
}
STATUS_COLORS = {"verified": "green", "unverified": "orange", "invalid": "red"}
STATUS_ICONS = {"verified": ":material/verified:", "unverified": ":material/help:", "invalid": ":material/error:"}
STATUS_HELP = {
    "verified": "The quoted words were found in this passage.",
    "unverified": "The passage exists, but the quoted words were not found in it. Check it yourself.",
    "invalid": "The answer cites a passage ID that does not exist in the selected documents.",
}


def escape_markdown(text: str, *, hard_breaks: bool = True) -> str:
    """Text that st.markdown shows literally: no HTML, links, images or directives."""
    text = _AUTOLINK_TRIGGER.sub(lambda m: m.group(0) + WORD_JOINER, text)
    escaped = _MD_SPECIAL.sub(r"\\\1", text)
    # Indentation would turn a line into a code block; keep it visible as no-break spaces.
    escaped = _LEADING_SPACE.sub(lambda m: "\u00a0" * len(m.group(0).expandtabs(4)), escaped)
    if hard_breaks:
        escaped = escaped.replace("\r\n", "\n").replace("\n", "  \n")
    return escaped


def inline_code(text: str) -> str:
    """`text` as one inline code span, shown literally (backticks inside included)."""
    text = " ".join(str(text).split())
    if not text:
        return ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[0] == "`" or text[-1] == "`" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def message_markdown(message: str) -> str:
    """A message from lib (may name commands in `backticks`): code spans kept, the rest escaped."""
    out, position = [], 0
    for span in _CODE_SPAN.finditer(message):
        out.append(escape_markdown(message[position : span.start()]))
        out.append(inline_code(span.group(1)))
        position = span.end()
    out.append(escape_markdown(message[position:]))
    return "".join(out)


def highlight(text: str, start: int | None, end: int | None) -> str:
    """Escaped Markdown of `text` with text[start:end] highlighted (no highlight if no span)."""
    if start is None or end is None or not (0 <= start < end <= len(text)):
        return escape_markdown(text)
    before, quote, after = text[:start], text[start:end], text[end:]
    return escape_markdown(before) + f":orange-background[**{escape_markdown(quote)}**]" + escape_markdown(after)


def highlight_spans(text: str, spans) -> str:
    """Escaped Markdown of `text` with several (start, end) ranges highlighted."""
    out, position = [], 0
    for start, end in sorted(tuple(s) for s in spans or ()):
        if start < position or not (0 <= start < end <= len(text)):
            continue
        out.append(escape_markdown(text[position:start]))
        out.append(f":orange-background[**{escape_markdown(text[start:end])}**]")
        position = end
    out.append(escape_markdown(text[position:]))
    return "".join(out)


def find_span(text: str, quote: str) -> tuple[int, int] | None:
    """Where `quote` occurs in `text`: exact, then ignoring case and runs of whitespace."""
    if not quote:
        return None
    at = text.find(quote)
    if at != -1:
        return at, at + len(quote)
    words = [re.escape(w) for w in quote.split()]
    if not words:
        return None
    match = re.search(r"\s+".join(words), text, flags=re.IGNORECASE)
    return (match.start(), match.end()) if match else None


@dataclass(frozen=True)
class Marker:
    """One numbered citation marker: its number and the citation it stands for."""

    number: int
    citation: Any


def mark_citations(
    answer: str,
    citations: Sequence[Any],
    *,
    id_of: Callable[[Any], str] = lambda c: getattr(c, "passage_id", None) or getattr(c, "id", ""),
    status_of: Callable[[Any], str] = lambda c: getattr(c, "status", ""),
) -> tuple[str, list[Marker]]:
    """Escaped Markdown of `answer` with each [ID] replaced by a numbered marker [n].

    The k-th occurrence of an ID in the answer is matched with the k-th citation of that
    ID in `citations` (the order lib.asking.citations reports them); a citation seen again gets
    its old number. IDs with no citation object still get a number (status invalid).
    """
    queues: dict[str, list[Any]] = {}
    for citation in citations:
        queues.setdefault(str(id_of(citation)).lower(), []).append(citation)
    markers: list[Marker] = []
    number_of: dict[int, int] = {}
    pieces: list[str] = []
    position = 0
    for group in _CITATION_GROUP.finditer(answer):
        pieces.append(escape_markdown(answer[position : group.start()]))
        numbers = []
        for passage_id in _ONE_ID.findall(group.group(1)):
            citation = _next_citation(queues, passage_id)
            key = id(citation) if citation is not None else hash(("missing", passage_id))
            if key not in number_of:
                number_of[key] = len(markers) + 1
                markers.append(Marker(number_of[key], citation if citation is not None else _Missing(passage_id)))
            numbers.append(number_of[key])
            status = status_of(markers[number_of[key] - 1].citation)
            pieces.append(_marker_markdown(number_of[key], status))
        position = group.end()
    pieces.append(escape_markdown(answer[position:]))
    return "".join(pieces), markers


@dataclass(frozen=True)
class _Missing:
    """An ID in the answer that lib.asking.citations did not report: shown as invalid."""

    passage_id: str
    status: str = "invalid"
    quote: str = ""
    document: str = ""
    page: int | None = None


def _next_citation(queues: dict[str, list[Any]], passage_id: str) -> Any:
    queue = queues.get(passage_id.lower())
    if not queue:
        return None
    return queue.pop(0) if len(queue) > 1 else queue[0]


def _marker_markdown(number: int, status: str) -> str:
    color = STATUS_COLORS.get(status, "gray")
    return f":{color}[**\\[{number}\\]**]"


@dataclass(frozen=True)
class Segment:
    """One part of the context: what it is, its tokens, its kind (for colour)."""

    label: str
    tokens: int
    kind: str
    """system | template | document | question | history | reserved | free | over"""


def budget_segments(budget: Any) -> list[Segment]:
    """The parts of the context, in prompt order, with exact token counts."""
    segments = [Segment("System instructions", int(budget.system), "system")]
    template = int(getattr(budget, "template", 0) or 0)
    if template:
        segments.append(Segment("Chat template", template, "template"))
    for name, tokens in dict(budget.documents).items():
        segments.append(Segment(str(name), int(tokens), "document"))
    history = int(getattr(budget, "history", 0) or 0)
    if history:
        segments.append(Segment("Earlier questions and answers", history, "history"))
    question = int(getattr(budget, "question", 0) or 0)
    if question:
        segments.append(Segment("Question", question, "question"))
    segments.append(Segment("Reserved for the answer", int(budget.reserved), "reserved"))
    left = int(getattr(budget, "left", 0) or 0)
    overrun = int(getattr(budget, "overrun", 0) or 0)
    if overrun > 0:
        segments.append(Segment("Over the context by", overrun, "over"))
    elif left > 0:
        segments.append(Segment("Left", left, "free"))
    return segments


def budget_headline(budget: Any) -> str:
    """One line: used of context, left or over (numbers with thousands separators)."""
    context = int(budget.context)
    overrun = int(getattr(budget, "overrun", 0) or 0)
    used = context - int(budget.left)
    if overrun > 0:
        return f"Does not fit: {used:,} of {context:,} tokens, {overrun:,} over."
    return f"Fits: {used:,} of {context:,} tokens used, {int(budget.left):,} left."


def refusal_hints(budget: Any, without_thinking: Any = None) -> list[str]:
    """What the user can do when the documents do not fit (plain text, one line each).

    `without_thinking` is the same budget with Thinking off, when Thinking is on.
    """
    hints = []
    if without_thinking is not None and without_thinking.fits:
        hints.append("It fits with Thinking off: thinking reserves extra room for the model's reasoning.")
    history = int(getattr(budget, "history", 0) or 0)
    if history and budget.overrun <= history:
        hints.append(
            f"Earlier questions and answers take {history:,} tokens: a new conversation on these documents fits."
        )
    room = max(int(budget.available), int(without_thinking.available) if without_thinking is not None else 0)
    for name, tokens in dict(budget.documents).items():
        if tokens > room:
            hints.append(
                f"“{name}” alone needs {tokens:,} tokens, more than the {room:,} this context leaves for "
                "documents. Folio reads documents whole and never cuts them: it needs a model that holds more."
            )
    return hints


def question_too_long(budget: Any, without_question: Any) -> str:
    """Why a typed question cannot be sent: its own tokens against the room it has (plain text)."""
    room = max(int(without_question.left) + int(without_question.question), 0)
    earlier = " and the earlier questions and answers" if int(getattr(budget, "history", 0) or 0) else ""
    return (
        f"The question is too long by {int(budget.overrun):,} tokens: it takes {int(budget.question):,} "
        f"tokens, and these documents{earlier} leave {room:,} for it. Shorten it"
        + (", or start a new conversation." if earlier else ".")
    )


def fraction_used(budget: Any) -> float:
    """Used share of the context, clipped to 0..1 (for a progress bar)."""
    context = max(int(budget.context), 1)
    used = context - int(budget.left)
    return max(0.0, min(1.0, used / context))


def format_seconds(seconds: float | None) -> str:
    """'0.4 s', '12 s', '2 min 05 s'; '–' when unknown."""
    if seconds is None:
        return "–"
    if seconds < 0.1:
        return f"{seconds:.2f} s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"


def prompt_check(sent: int | None, read: int | None, tolerance: int = 16) -> tuple[str, bool]:
    """Line comparing Folio's prompt count with the server's, and whether it is a warning."""
    if read is None:
        return (f"Prompt: {sent:,} tokens sent; the server did not report how many it read.", False) if sent else (
            "Prompt size not reported.",
            False,
        )
    if sent is None:
        return f"Prompt: the server read {read:,} tokens.", False
    if abs(read - sent) > tolerance:
        return (
            f"Prompt: Folio sent {sent:,} tokens but the server read {read:,} "
            f"({read - sent:+,}). The server did not read exactly what Folio sent.",
            True,
        )
    return f"Prompt: {sent:,} tokens sent, {read:,} read by the server.", False


# Below this many prompt tokens, reading all of it or only its new part take about as long:
# timing alone cannot say the cache was not reused.
TIMING_MATTERS_TOKENS = 4096


def cache_line(cached_tokens: int | None, prompt_tokens: int | None, prompt_eval_s: float | None,
               slowest_s_per_token: float | None = None, *, follow_up: bool = False) -> str:
    """Whether the server reused its cached prefix, from what it reported, and 'unknown' where
    it reports nothing (lib/asking/reuse.py says what each server reports).

    `slowest_s_per_token` is the slowest reading seen earlier in the conversation: a call
    reading at less than half that cost per token reused the cache. Says only what the
    numbers show (a warm cache from an earlier conversation makes a first question fast too).
    """
    if cached_tokens:
        share = f" of {prompt_tokens:,}" if prompt_tokens else ""
        return f"Cache: {cached_tokens:,}{share} prompt tokens reused from the server's cache."
    if cached_tokens == 0:
        return "Cache: nothing reused."
    if prompt_eval_s is not None and prompt_tokens:
        per_token = prompt_eval_s / prompt_tokens
        fast = prompt_eval_s <= 0 or prompt_tokens / prompt_eval_s >= CACHED_READ_TOKENS_S
        if fast or (slowest_s_per_token and per_token < slowest_s_per_token * 0.5):
            return (
                f"Cache: reused (the server took {format_seconds(prompt_eval_s)} for {prompt_tokens:,} "
                "prompt tokens: it read only what was new)."
            )
        if follow_up and slowest_s_per_token and prompt_tokens >= TIMING_MATTERS_TOKENS:
            return f"Cache: not reused; the server read the whole prompt again ({format_seconds(prompt_eval_s)})."
        return (
            f"Cache: the server read {prompt_tokens:,} prompt tokens in {format_seconds(prompt_eval_s)}; "
            "it does not say how many came from its cache."
        )
    return "Cache: unknown (the server does not report whether it reused its cache)."


def speed_line(eval_count: int | None, eval_s: float | None) -> str:
    """'Answer: 412 tokens at 23.5 tokens/s'."""
    if not eval_count:
        return "Answer speed not reported."
    if eval_s:
        return f"Answer: {eval_count:,} tokens at {eval_count / eval_s:.1f} tokens/s."
    return f"Answer: {eval_count:,} tokens."


def count_noun(count: int, noun: str) -> str:
    """'1 passage', '1,204 passages' (English plural by adding s)."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def kib(n_bytes: int | None) -> str:
    """Bytes in GiB with one decimal, '–' when unknown."""
    if n_bytes is None:
        return "–"
    return f"{n_bytes / 2**30:.1f} GiB"


def join_nonempty(parts: Iterable[str], sep: str = " · ") -> str:
    """The non-empty parts joined with `sep`."""
    return sep.join(p for p in parts if p)

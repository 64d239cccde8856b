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
from ..config import DEFAULT_HOSTS
from .advice import field_ref

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


MAX_DOCUMENT_ROWS = 6
"""Up to this many documents get a row each in the context table; more share one row."""


def budget_rows(budget: Any, max_documents: int = MAX_DOCUMENT_ROWS) -> tuple[list[Segment], list[Segment]]:
    """The context table, short whatever the selection, and the documents it folds.

    With more than `max_documents` documents, one row ('40 documents', their total) stands
    for them, so the rows that matter (reserved, left or over) stay in view; the second list
    then holds every document, largest first (empty otherwise).
    """
    segments = budget_segments(budget)
    documents = [s for s in segments if s.kind == "document"]
    if len(documents) <= max_documents:
        return segments, []
    first = segments.index(documents[0])
    rows = [s for s in segments if s.kind != "document"]
    total = sum(s.tokens for s in documents)
    rows.insert(first, Segment(f"{len(documents):,} documents", total, "documents"))
    return rows, sorted(documents, key=lambda s: -s.tokens)


def refusal_headline(budget: Any) -> str:
    """Why the selection is refused, in one line whatever the number of documents (plain text)."""
    label = " (estimated)" if getattr(budget, "is_estimate", False) else ""
    documents = sorted(dict(budget.documents).items(), key=lambda item: -item[1])
    if len(documents) == 1:
        what = f"“{documents[0][0]}” needs"
    elif len(documents) <= 5:
        what = f"The {len(documents)} selected documents (" + ", ".join(
            f"“{name}” {tokens:,}" for name, tokens in documents) + ") need"
    else:  # the table lists them
        what = f"The {len(documents):,} selected documents need"
    available = int(budget.available)
    if available < 0:
        return (f"A context of {int(budget.context):,} tokens cannot hold the instructions, the question and the "
                f"{int(budget.reserved):,} reserved for the answer, before any document: over by "
                f"{int(budget.overrun):,}{label}.")
    return (f"{what} {int(budget.total_documents):,} tokens{label} but only {available:,} are available: "
            f"over by {int(budget.overrun):,}.")


def budget_headline(budget: Any) -> str:
    """One line: used of context, left or over (numbers with thousands separators)."""
    context = int(budget.context)
    overrun = int(getattr(budget, "overrun", 0) or 0)
    used = context - int(budget.left)
    if overrun > 0:
        return f"Does not fit: {used:,} of {context:,} tokens, {overrun:,} over."
    return f"Fits: {used:,} of {context:,} tokens used, {int(budget.left):,} left."


MIN_ANSWER_RESERVE = 1024
"""The smallest answer reserve a hint suggests: below it, an answer with its quotes gets cut."""
MAX_HINTS = 2


def refusal_hints(budget: Any, without_thinking: Any = None, *, model_context: int | None = None) -> list[str]:
    """The one or two changes that make the documents fit, with numbers (plain text, one line each).

    `without_thinking` is the same budget with Thinking off, when Thinking is on; `model_context`
    is what the model holds, when the server says (a context configured below it can be raised).
    Cheapest change first: Thinking off, a new conversation, a smaller answer reserve, a larger
    context, fewer documents; and, when no setting can help, that a document is too long alone.
    """
    over = int(getattr(budget, "overrun", 0) or 0)
    if over <= 0:
        return []
    hints = [
        _thinking_off(budget, without_thinking),
        _new_conversation(budget, over),
        _lower_reserve(budget, over),
        _raise_context(budget, over, model_context),
        _remove_documents(dict(budget.documents), over),
    ]
    hints = [hint for hint in hints if hint]
    alone = _too_long_alone(budget, model_context, without_thinking)
    return (hints[:MAX_HINTS - 1] + alone[:1]) if alone else hints[:MAX_HINTS]


def _thinking_off(budget: Any, without_thinking: Any) -> str:
    if without_thinking is None or not without_thinking.fits:
        return ""
    reserve = int(getattr(budget, "thinking_reserve", 0) or 0)
    room = f" ({reserve:,} tokens)" if reserve else ""
    return f"Turn Thinking off and it fits: thinking reserves extra room{room} for the model's reasoning."


def _new_conversation(budget: Any, over: int) -> str:
    history = int(getattr(budget, "history", 0) or 0)
    if not history or over > history:
        return ""
    return (f"Start a new conversation on these documents and it fits: the earlier questions and answers "
            f"take {history:,} tokens.")


def _lower_reserve(budget: Any, over: int) -> str:
    reserved = getattr(budget, "reserved", None)
    if reserved is None:
        return ""
    answer_reserve = int(reserved) - int(getattr(budget, "thinking_reserve", 0) or 0)
    lowered = (answer_reserve - over) // 100 * 100
    if lowered < MIN_ANSWER_RESERVE:
        return ""
    return (f"Lower the answer reserve from {answer_reserve:,} to {lowered:,} tokens "
            f"({field_ref('answer_reserve')}) and it fits; a longer answer is then cut at {lowered:,} tokens.")


def _raise_context(budget: Any, over: int, model_context: int | None) -> str:
    context = int(getattr(budget, "context", 0) or 0)
    if not model_context or not context or model_context - context < over:
        return ""
    needed = min(-(-(context + over) // 1024) * 1024, int(model_context))
    return (f"Raise the context from {context:,} to {needed:,} tokens ({field_ref('context')}) and it fits: "
            f"the model holds {int(model_context):,}.")


def documents_to_remove(documents: dict[str, int], over: int) -> list[tuple[str, int]]:
    """The fewest documents whose removal frees `over` tokens, largest first; [] when only
    removing all of them would do. Up to three are named, so the last is the smallest that
    suffices; more are the largest ones."""
    ranked = sorted(documents.items(), key=lambda item: -item[1])
    freed, count = 0, 0
    for _name, tokens in ranked:
        if freed >= over:
            break
        freed += tokens
        count += 1
    if freed < over or count >= len(ranked):
        return []
    if count > 3:
        return ranked[:count]  # named as "the N largest": the table lists them largest first
    chosen = ranked[: count - 1]
    still = over - sum(tokens for _name, tokens in chosen)
    rest = ranked[count - 1:]
    last = min((item for item in rest if item[1] >= still), key=lambda item: item[1])
    return chosen + [last]


def _remove_documents(documents: dict[str, int], over: int) -> str:
    removal = documents_to_remove(documents, over)
    if not removal:
        return ""
    total = sum(tokens for _name, tokens in removal)
    if len(removal) <= 3:
        names = [f"“{name}” ({tokens:,} tokens)" if i == 0 else f"“{name}” ({tokens:,})"
                 for i, (name, tokens) in enumerate(removal)]
        listed = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
        return f"Remove {listed} from the selection and it fits."
    named = ", ".join(f"“{name}” {tokens:,}" for name, tokens in removal[:3])
    return (f"Remove the {len(removal)} largest documents ({named} and {len(removal) - 3} more; "
            f"{total:,} tokens in all) from the selection and it fits.")


def _too_long_alone(budget: Any, model_context: int | None, without_thinking: Any = None) -> list[str]:
    """Documents that fit no context this model offers, whatever the settings."""
    context = max(int(getattr(budget, "context", 0) or 0), int(model_context or 0))
    fixed = sum(int(getattr(budget, part, 0) or 0) for part in ("system", "template", "question"))
    if context:
        room = context - fixed - MIN_ANSWER_RESERVE
    else:
        room = max(int(b.available) for b in (budget, without_thinking) if b is not None)
    return [
        f"“{name}” alone needs {tokens:,} tokens, more than the {max(room, 0):,} this model's context can leave "
        "for documents. Folio reads documents whole and never cuts them: it needs a model that holds more."
        for name, tokens in dict(budget.documents).items()
        if tokens > room
    ]


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


def rough_duration(seconds: float | None) -> str:
    """A job's time left, roughly: 'about 3 min', 'about 40 s', 'about 2 h 10 min'; '' when unknown."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"about {max(seconds, 1)} s"
    minutes = round(seconds / 60)
    return f"about {minutes} min" if minutes < 90 else f"about {minutes // 60} h {minutes % 60:02d} min"


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


class StageProgress:
    """What a progress bar shows for lib's progress callbacks (stage, done, total), and when.

    The app's bar slides to each new value in half a second; a new value sent before it
    arrives starts the slide again from where the bar is, so a bar fed every few
    milliseconds lags far behind its text ("Reading page 46 of 55" over a bar 27 % full).
    `update` returns (fraction, text) to show, or None to skip: at most every `every`
    seconds, and always at a new stage or a stage's end, so what is drawn is the real fraction.
    """

    def __init__(self, every: float = 0.75, clock: Callable[[], float] | None = None):
        import time

        self.every = every
        self.clock = clock or time.monotonic
        self.stage: str | None = None
        self.shown_at: float | None = None

    def update(self, stage: str, done: int, total: int | None) -> tuple[float, str] | None:
        now = self.clock()
        new_stage = stage != self.stage
        finished = bool(total) and done >= total
        if not (new_stage or finished or self.shown_at is None or now - self.shown_at >= self.every):
            return None
        self.stage, self.shown_at = stage, now
        return stage_progress(stage, done, total)


def stage_progress(stage: str, done: int, total: int | None) -> tuple[float, str]:
    """(fraction of this stage done, its text): 'Reading page 46 of 55' at 46/55."""
    if total:
        return max(0.0, min(done / total, 1.0)), f"{stage} {done:,} of {total:,}"
    return 0.0, (f"{stage} {done:,}" if done else stage)




def host_for_backend(backend: str, host: str, previous_backend: str) -> str:
    """The address to use after switching the server kind: the new kind's usual address when
    the old one was the other kind's usual address (a custom address is kept)."""
    host = host.strip().rstrip("/")
    if backend == previous_backend or backend not in DEFAULT_HOSTS:
        return host
    usual = {_loopback(DEFAULT_HOSTS[previous_backend])} if previous_backend in DEFAULT_HOSTS else set()
    return DEFAULT_HOSTS[backend] if _loopback(host) in usual else host


def _loopback(host: str) -> str:
    """The same address whichever name the machine itself goes by."""
    return re.sub(r"^(https?://)(?:localhost|127\.0\.0\.1|\[::1\]|0\.0\.0\.0)(?=:)", r"\1127.0.0.1", host)

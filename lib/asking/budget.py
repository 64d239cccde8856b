"""The token budget of one call, computed from the prompt Folio would really send.

    context    the real context: min(configured, the model's trained context)
  - system     the rendered system block (what num_keep pins)
  - template   chat-template tokens: turn markers, the generation prompt, the document block
  - question   the question (its label included)
  - history    earlier questions and answers of a follow-up conversation
  - reserved   room kept free for the answer (more when thinking is on)
  = available  room for the documents
  - documents  each document as rendered in the prompt (delimiters, page markers, IDs)
  = left       (negative: overrun, and Folio refuses before sending)

No I/O; counts come from lib.reading.tokens (exact, or an estimate that is labelled as such).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..config import Settings
from ..documents import Document
from . import prompt


@dataclass(frozen=True)
class Budget:
    """Where the context goes for one call; every number in tokens."""

    context: int
    system: int
    template: int
    question: int
    history: int
    reserved: int
    documents: dict[str, int]
    """Document name -> tokens of that document as rendered in the prompt, in prompt order."""
    counter: str
    """'exact' or 'estimate' (estimates never under-count and are labelled wherever shown)."""
    think: bool
    notes: list[str] = field(default_factory=list)
    thinking_reserve: int = 0
    """The part of `reserved` kept for reasoning (0 when thinking is off)."""

    @property
    def total_documents(self) -> int:
        return sum(self.documents.values())

    @property
    def prompt(self) -> int:
        """Tokens of the whole rendered prompt."""
        return self.system + self.template + self.question + self.history + self.total_documents

    @property
    def available(self) -> int:
        """Room for the documents."""
        return self.context - self.system - self.template - self.question - self.history - self.reserved

    @property
    def used(self) -> int:
        return self.total_documents

    @property
    def left(self) -> int:
        """Room left after the documents (negative when they do not fit)."""
        return self.available - self.used

    @property
    def overrun(self) -> int:
        """Tokens over the budget; 0 when everything fits."""
        return max(0, -self.left)

    @property
    def fits(self) -> bool:
        return self.left >= 0

    @property
    def is_estimate(self) -> bool:
        return self.counter != "exact"

    def to_json(self) -> dict:
        """The `budget` object of `python -m lib ingest --json`."""
        return {
            "context": self.context,
            "system": self.system,
            "reserved": self.reserved,
            "available": self.available,
            "documents": self.total_documents,
            "fits": self.fits,
        }

    def to_dict(self) -> dict:
        """Every number, for the UI and for debugging."""
        return {
            **self.to_json(),
            "template": self.template,
            "question": self.question,
            "history": self.history,
            "per_document": dict(self.documents),
            "prompt": self.prompt,
            "left": self.left,
            "overrun": self.overrun,
            "counter": self.counter,
            "think": self.think,
        }

    def refusal_message(self, advice: bool = True) -> str:
        """Why the documents cannot be sent, with the tokens of each document (and what to do)."""
        label = " (estimated)" if self.is_estimate else ""
        parts = ", ".join(f"{name} {tokens:,}" for name, tokens in _largest_first(self.documents))
        if self.available < 0:
            text = (
                f"A context of {self.context:,} tokens cannot hold even the system instructions "
                f"({self.system:,}), the question ({self.question + self.history:,}) and the "
                f"{self.reserved:,} reserved for the answer, before any document: over by "
                f"{self.overrun:,}{label}. Documents: {parts}. Raise the context (or lower "
                "FOLIO_ANSWER_RESERVE)."
            )
            return " ".join([text, *self.notes])
        text = (
            f"Selected documents need {self.total_documents:,} tokens{label} but only "
            f"{max(self.available, 0):,} are available: over by {self.overrun:,}. {parts}."
            + (" " + self.advice() if advice else "")
        )
        return " ".join([text, *self.notes])

    def advice(self) -> str:
        """What would make it fit, for this situation."""
        steps = []
        if len(self.documents) > 1:
            steps.append("deselect documents")
        if self.think and self.overrun <= self.thinking_reserve:
            steps.append(f"turn thinking off (frees {self.thinking_reserve:,} tokens)")
        if self.history and self.overrun <= self.history:
            steps.append("start a new conversation (earlier turns take "
                         f"{self.history:,} tokens)")
        if len(self.documents) == 1:
            steps.append("split the document into parts (for example by chapter) and ask each")
        steps.append("use a model that holds a larger context")
        return "To make it fit: " + "; or ".join(steps) + "."

    def summary(self) -> str:
        """One line: fits or not, with the numbers."""
        label = " (estimate)" if self.is_estimate else ""
        if self.fits:
            return (
                f"Fits{label}: documents {self.total_documents:,} of {self.available:,} available tokens, "
                f"{self.left:,} left (context {self.context:,}, {self.reserved:,} reserved for the answer)."
            )
        return f"Does not fit{label}: " + self.refusal_message()


def _largest_first(documents: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(documents.items(), key=lambda item: -item[1])


def compute_budget(
    documents: Sequence[Document],
    settings: Settings,
    *,
    question: str = "",
    think: bool | None = None,
    context: int | None = None,
    history: Sequence = (),
    counter=None,
) -> Budget:
    """The budget of asking `question` about `documents`: computed from the real prompt."""
    from ..reading.tokens import get_counter

    think = settings.think if think is None else bool(think)
    built = prompt.build_prompt(documents, question, think=think, counter=counter or get_counter(),
                                history=history)
    return budget_of(built, settings, context=context)


def budget_of(built: prompt.PromptBuild, settings: Settings, *, context: int | None = None) -> Budget:
    """The budget of one built prompt in the real context (default: the configured one)."""
    context = int(context or settings.context)
    notes = []
    if context < settings.context:
        notes.append(f"The model holds {context:,} tokens, less than the configured {settings.context:,}.")
    return Budget(
        context=context,
        system=built.system,
        template=built.template,
        question=built.question,
        history=built.history,
        reserved=settings.reserved(built.think),
        documents=dict(built.per_document),
        counter=built.counter,
        think=built.think,
        notes=notes,
        thinking_reserve=settings.thinking_reserve if built.think else 0,
    )

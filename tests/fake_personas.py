"""Scoring personalities for the fake Ollama: models whose answers make the probe and eval move.

Each persona is an answer function for `fake.script(answer=persona)`: it gets the request body
and the prompt the server read (only the tail when `fake.read_only(...)` cuts it) and writes
an answer the way a model of that kind would.

    fake.script(answer=probe_oracle)            # every planted fact, right quote, right ID
    fake.script(answer=misses_middle())         # skips facts in the middle of the document
    fake.script(answer=probe_liar("quotes"))    # right IDs, invented quotes (unverified)
    fake.script(answer=probe_liar("ids"))       # right quotes, invented IDs (invalid)
    fake.script(answer=eval_oracle(items))      # the gold answer with its evidence quoted and cited
    fake.script(answer=eval_liar(items, "quotes" | "ids"))
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from lib.asking.citations import find_quote

NO_ANSWER = "The documents do not answer this question."
_ID_LINE = re.compile(r"^\[([a-z]{3,12}-\d+)\] ", re.MULTILINE)
_END = re.compile(r"\n(?:\[[a-z]{3,12}-\d+\] |--- page |</document>)")
_FACT = re.compile(r"The vault code of the ([A-Z][a-z]+ [A-Z][a-z]+) is (\d{4}-[A-Z]{2})\.")
_QUESTION = re.compile(r"Question: (.*?)(?: /no_think| /think)?<\|im_end\|>", re.DOTALL)
INVENTED_QUOTE = "the keeper wrote the number on the inside of the door"
INVENTED_ID = "zzq-9999"

Persona = Callable[[dict, str], str]


def passages(prompt: str) -> list[tuple[str, str, int]]:
    """(id, text, where it starts in the prompt) of every passage the prompt shows."""
    found = []
    for match in _ID_LINE.finditer(prompt):
        end = _END.search(prompt, match.end())
        found.append((match.group(1), prompt[match.end(): end.start() if end else len(prompt)], match.start()))
    return found


def _documents_span(prompt: str) -> tuple[int, int]:
    start = prompt.find("<documents>")
    end = prompt.rfind("</documents>")
    return (max(start, 0), end if end > 0 else len(prompt))


# ------------------------------------------------------------------------------ the probe


def _facts(prompt: str) -> list[tuple[str, str, str, str, float]]:
    """(place, code, sentence, passage id, relative position in the documents) of every planted fact."""
    start, end = _documents_span(prompt)
    facts = []
    for pid, text, at in passages(prompt):
        for match in _FACT.finditer(text):
            position = (at - start) / max(end - start, 1)
            facts.append((match.group(1), match.group(2), match.group(0), pid, position))
    return facts


def _probe_answer(prompt: str, keep: Callable[[float], bool], cite: Callable[[str, str], str]) -> str:
    lines = [f"The {place}: {code} {cite(sentence, pid)}."
             for place, code, sentence, pid, position in _facts(prompt) if keep(position)]
    return "\n".join(lines) if lines else NO_ANSWER


def probe_oracle(body: dict, prompt: str) -> str:
    """Every planted fact it can see, quoted verbatim and cited with the right ID."""
    return _probe_answer(prompt, lambda position: True, lambda sentence, pid: f'"{sentence}" [{pid}]')


def misses_middle(low: float = 0.3, high: float = 0.7) -> Persona:
    """Like the oracle, but blind to facts between `low` and `high` of the documents (lost in the middle)."""
    def persona(body: dict, prompt: str) -> str:
        return _probe_answer(prompt, lambda position: not low < position < high,
                             lambda sentence, pid: f'"{sentence}" [{pid}]')
    return persona


def probe_liar(kind: str) -> Persona:
    """Finds every fact but lies in its citations: 'quotes' invents the quote, 'ids' the passage ID."""
    if kind not in ("quotes", "ids"):
        raise ValueError(kind)

    def cite(sentence: str, pid: str) -> str:
        return f'"{INVENTED_QUOTE}" [{pid}]' if kind == "quotes" else f'"{sentence}" [{INVENTED_ID}]'

    def persona(body: dict, prompt: str) -> str:
        return _probe_answer(prompt, lambda position: True, cite)
    return persona


# ------------------------------------------------------------------------------- the eval


def question_of(prompt: str) -> str:
    """The last question in a prompt, as the user wrote it."""
    found = _QUESTION.findall(prompt)
    return found[-1].strip() if found else ""


def _evidence_citation(item: dict, prompt: str) -> tuple[str, str] | None:
    """(quote, passage id): the gold evidence (or gold answer) as it stands in one passage of the prompt."""
    wanted = [e.get("text", "") for e in item.get("evidence") or [] if e.get("text")] + list(item["answers"])
    for text in wanted:
        for sentence in re.split(r"(?<=[.。!?！？])\s*", text.strip()):
            if len(sentence) < 2:
                continue
            for pid, passage, _ in passages(prompt):
                span, _how = find_quote(passage, sentence)
                if span:
                    return passage[span[0]:span[1]], pid
    return None


def _eval_persona(items: Sequence[dict], cite: Callable[[str, str], str]) -> Persona:
    by_question = {item["question"].strip(): item for item in items}

    def persona(body: dict, prompt: str) -> str:
        item = by_question.get(question_of(prompt))
        if item is None or not item.get("answerable", True):
            return NO_ANSWER
        found = _evidence_citation(item, prompt)
        if found is None:
            return NO_ANSWER
        return f"{item['answers'][0]} {cite(*found)}."
    return persona


def eval_oracle(items: Sequence[dict]) -> Persona:
    """The gold answer, then its evidence quoted verbatim and cited with the right ID; refuses where it should."""
    return _eval_persona(items, lambda quote, pid: f'"{quote}" [{pid}]')


def eval_liar(items: Sequence[dict], kind: str) -> Persona:
    """The gold answer with a lying citation: 'quotes' invents the quote, 'ids' the passage ID."""
    if kind not in ("quotes", "ids"):
        raise ValueError(kind)
    if kind == "quotes":
        return _eval_persona(items, lambda quote, pid: f'"{INVENTED_QUOTE}" [{pid}]')
    return _eval_persona(items, lambda quote, pid: f'"{quote}" [{INVENTED_ID}]')

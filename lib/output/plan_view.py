"""A question asked by a plan, in words and rows: the plan before it runs, its progress, and,
once answered, what each call read, the tokens sent and read by the server, and its times.
Shared by the app (Ask, History), every export and the command line (plain data, no I/O).

    planned(turn)            -> True for an answer of mode relevant or all (a plan of calls)
    plan_summary(turn)       -> 'Asked in 13 calls (read everything): 12 reading calls ...'
    call_rows(turn)          -> [{'call', 'kind', 'reads', 'sent', 'read', 'status', 'first_token_s', 'total_s', 'evidence'}]
    calls_markdown(turn)     -> the rows as a Markdown table
    calls_text(turn)         -> one line per call, for a CSV cell
    documents_line(turn)     -> 'Read (by rank): a.pdf (1), b.pdf (2); not read: 1,957 documents ...'
    mode_choice(plan)        -> 'Read everything: 98 calls, 12,203,941 tokens to read, about 1 h 10 min'
"""

from __future__ import annotations

from typing import Iterable

MODE_WORDS = {"one": "one call", "relevant": "most relevant first", "all": "read everything"}
KIND_WORDS = {"evidence": "reading", "reduce": "condensing", "compose": "composing", "answer": "answer"}
NAMES_SHOWN = 4
"""Documents named per call in a row; the rest are counted."""
RANKS_SHOWN = 12


def planned(turn: dict) -> bool:
    """Whether the answer came from a plan (most relevant first, or several calls)."""
    return turn.get("mode") in ("relevant", "all")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _seconds(value) -> str:
    if not isinstance(value, (int, float)):
        return ""
    if value < 90:
        return f"{value:.1f} s"
    minutes = round(value / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60:02d} min"


def plan_summary(turn: dict) -> str:
    """How the question was asked, in one or two sentences with the numbers."""
    plan = turn.get("plan") or {}
    calls = [c for c in turn.get("calls") or [] if isinstance(c, dict)]
    mode = turn.get("mode") or plan.get("mode") or "one"
    documents = plan.get("documents") or []
    sent = sum(c.get("prompt_tokens") or 0 for c in calls)
    read = [c.get("server_prompt_tokens") for c in calls]
    server = f", {sum(read):,} read by the server" if read and all(isinstance(r, int) for r in read) else ""
    took = _seconds((turn.get("timings") or {}).get("total_s"))
    took = f"; {took} in all" if took else ""
    if mode == "relevant":
        shown = sum(1 for d in documents if d.get("read"))
        return (f"Asked in 1 call (most relevant first): the {shown:,} best-ranked of {_count(len(documents), 'document')} "
                f"read whole, {len(documents) - shown:,} not read; {sent:,} prompt tokens sent{server}{took}.")
    kinds = [c.get("kind") for c in calls]
    reading = kinds.count("evidence")
    split = sum(1 for d in documents if (d.get("parts") or 1) > 1)
    parts = f" ({_count(split, 'document')} split into parts)" if split else ""
    rounds = kinds.count("reduce")
    condensing = f", {_count(rounds, 'condensing call')}" if rounds else ""
    composing = ", 1 composing call" if "compose" in kinds else ", no composing call (no evidence found)"
    unread = turn.get("unread") or []
    missed = f" {_count(len(unread), 'part')} could not be read (named in the warnings)." if unread else ""
    return (f"Asked in {_count(len(calls), 'call')} (read everything): {_count(reading, 'reading call')} over "
            f"{_count(len(documents), 'document')}{parts}{condensing}{composing}; {sent:,} prompt tokens sent"
            f"{server}{took}.{missed}")


def reads_text(reads: Iterable[dict], limit: int = NAMES_SHOWN) -> str:
    """'war-and-peace.txt, part 3 of 7 (wtw-2156 to wtw-3156); memo.txt and 12 more'."""
    reads = list(reads)
    shown = []
    for read in reads[:limit]:
        text = str(read.get("document") or "")
        if (read.get("parts") or 1) > 1:
            text += f", part {read.get('part')} of {read.get('parts')}"
            span = read.get("passages") or []
            if len(span) == 2 and span[0]:
                text += f" ({span[0]} to {span[1]})"
        shown.append(text)
    more = len(reads) - len(shown)
    return "; ".join(shown) + (f" and {more:,} more" if more > 0 else "")


def _reads_of(call: dict) -> str:
    if call.get("reads"):
        return reads_text(call["reads"])
    names = call.get("documents") or []
    return "; ".join(str(n) for n in names[:NAMES_SHOWN]) + (f" and {len(names) - NAMES_SHOWN:,} more"
                                                             if len(names) > NAMES_SHOWN else "")


def call_rows(turn: dict) -> list[dict]:
    """One row per call: what it read, tokens sent and read by the server, its status and times."""
    rows = []
    for number, call in enumerate([c for c in turn.get("calls") or [] if isinstance(c, dict)], start=1):
        kind = call.get("kind") or "answer"
        reads = _reads_of(call) if kind in ("evidence", "answer") else (
            "the evidence of the reading calls" if kind == "compose" else "a batch of the evidence")
        rows.append({
            "call": call.get("index") or number,
            "kind": KIND_WORDS.get(kind, kind),
            "reads": reads,
            "sent": call.get("prompt_tokens"),
            "read": call.get("server_prompt_tokens"),
            "status": call.get("status") or "done",
            "first_token_s": call.get("first_token_s"),
            "total_s": call.get("total_s"),
            "evidence": call.get("evidence"),
            "error": call.get("error") or "",
        })
    return rows


def number_text(value) -> str:
    """A table cell's figure: '-' when missing, floats to one decimal, integers with separators."""
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _cell(value) -> str:
    return number_text(value).replace("|", "\\|").replace("\n", " ")


def calls_markdown(turn: dict) -> list[str]:
    """The calls as a Markdown table (Call, Kind, Reads, Tokens sent, Read by the server, Status, s)."""
    lines = ["| Call | Kind | Reads | Tokens sent | Read by the server | Evidence | Status | First token s | Total s |",
             "|---:|---|---|---:|---:|---:|---|---:|---:|"]
    for row in call_rows(turn):
        status = row["status"] + (f": {row['error']}" if row["error"] and row["status"] != "done" else "")
        lines.append("| " + " | ".join(_cell(v) for v in (
            row["call"], row["kind"], row["reads"], row["sent"], row["read"], row["evidence"], status,
            row["first_token_s"], row["total_s"])) + " |")
    return lines


def calls_text(turn: dict) -> str:
    """'1 reading: a.pdf; b.pdf · 12,345 sent / 12,345 read · 41.2 s | 2 ...' (a CSV cell)."""
    parts = []
    for row in call_rows(turn):
        read = f" / {row['read']:,} read" if isinstance(row["read"], int) else ""
        sent = f"{row['sent']:,} sent" if isinstance(row["sent"], int) else "not sent"
        took = f" · {row['total_s']:.1f} s" if isinstance(row["total_s"], (int, float)) else ""
        status = "" if row["status"] == "done" else f" · {row['status']}"
        parts.append(f"{row['call']} {row['kind']}: {row['reads']} · {sent}{read}{took}{status}")
    return " | ".join(parts)


def documents_line(turn: dict) -> str:
    """For most relevant first: which documents were read, with their rank, and which were not."""
    plan = turn.get("plan") or {}
    documents = plan.get("documents") or []
    if (turn.get("mode") or plan.get("mode")) != "relevant" or not documents:
        return ""
    read = [d for d in documents if d.get("read")]
    unread = [d for d in documents if not d.get("read")]
    line = "Read (by rank): " + ", ".join(f"{d['name']} ({d.get('rank')})" for d in read[:RANKS_SHOWN])
    if len(read) > RANKS_SHOWN:
        line += f" and {len(read) - RANKS_SHOWN:,} more"
    if unread:
        line += (f". Not read: {_count(len(unread), 'document')}, from rank {unread[0].get('rank')}: "
                 + ", ".join(f"{d['name']} ({d.get('rank')})" for d in unread[:RANKS_SHOWN // 2])
                 + (" ..." if len(unread) > RANKS_SHOWN // 2 else ""))
    return line + "."


def mode_choice(plan: dict) -> str:
    """'Read everything: 98 calls, 12,203,941 tokens to read, about 1 h 10 min' (a plan's JSON)."""
    mode = plan.get("mode") or "one"
    name = MODE_WORDS.get(mode, mode).capitalize()
    if not plan.get("fits", True):
        return f"{name}: not possible ({plan.get('message', '')})"
    calls = plan.get("call_count") or len(plan.get("calls") or [])
    estimate = plan.get("estimate") or {}
    time = estimate.get("text") if estimate.get("seconds") is not None else "time unknown"
    text = f"{name}: {_count(calls, 'call')}, {plan.get('prompt_tokens', 0):,} tokens to read"
    if mode == "relevant":
        documents = plan.get("documents") or []
        text += f", {sum(1 for d in documents if d.get('read')):,} of {len(documents):,} documents read"
    return f"{text}, {time}"


__all__ = ["planned", "plan_summary", "reads_text", "call_rows", "calls_markdown", "calls_text", "documents_line",
           "mode_choice", "MODE_WORDS"]

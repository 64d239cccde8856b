"""The probe's grid as a person sees it: words and colours per cell, rows by length (pure, no I/O).

    frame, statuses = grid_frame(result)      # pandas DataFrames: the words shown, and green/amber/red/grey
    colour_of("green")                        # the background the app paints that cell
    stored_run_label(run)                     # "2026-12-01 12:00 · ollama http://... · qwen3-128k:14b · ..."
"""

from __future__ import annotations

import pandas as pd

CELL_WORDS = {"green": "cited", "amber": "found", "red": "missed", "grey": "not read"}
COLOURS = {"green": "#b9e4bd", "amber": "#ffd89b", "red": "#f7b2ad", "grey": "#d5d5d8"}
LEGEND = {
    "green": "found, cited at its passage with a verified quote",
    "amber": "found, but the citation is not verified",
    "red": "missed",
    "grey": "the server did not read that part of the prompt",
}
READ_COLUMN = "server read"


def colour_of(status: str) -> str:
    return COLOURS.get(status, "")


def row_label(length_tokens: int, fraction: float) -> str:
    return f"{length_tokens:,} tokens ({fraction * 100:.0f} %)"


def grid_frame(result) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(words, statuses): one row per length, one column per depth, plus what the server read."""
    depths = [f"{d} %" for d in result.plan.depths]
    words, statuses, labels = [], [], []
    for row in result.rows:
        labels.append(row_label(row.length_tokens, row.fraction))
        by_depth = {c.depth: c for c in row.cells}
        cells = [by_depth.get(d) for d in result.plan.depths]
        read = "not reported" if row.server_read_tokens is None else f"{row.server_read_tokens:,} of {row.sent_tokens:,}"
        words.append([CELL_WORDS[c.status] if c else "" for c in cells] + [read])
        statuses.append([c.status if c else "" for c in cells] + [""])
    columns = depths + [READ_COLUMN]
    index = pd.Index(labels, name="prompt length")
    return pd.DataFrame(words, index=index, columns=columns), pd.DataFrame(statuses, index=index, columns=columns)


def verdict_tone(kind: str) -> str:
    """success | warning | error: how loudly the app shows a verdict of this kind."""
    return {"ok": "success", "cut": "error"}.get(kind, "warning")


def stored_run_label(run: dict) -> str:
    """One line naming a stored probe run: date, server, model, and the verdict's start."""
    date = str(run.get("created_at", "")).replace("T", " ")[:16]
    verdict = str(run.get("verdict", ""))
    short = verdict if len(verdict) <= 70 else verdict[:69] + "…"
    return f"{date} · {run.get('backend', '')} {run.get('host', '')} · {run.get('model', '')} · {short}"

"""The evaluation as a person reads it: a text table and a self-contained HTML report.

    text_table(report)     -> str    one line per question, then the summary with n per figure
    html_report(report)    -> str    one HTML file: inline CSS, no script, no external request

Every dataset or model text is escaped: an answer holding <script> stays inert text.
"""

from __future__ import annotations

import html
import unicodedata

SUMMARY_ROWS = (
    ("answer_em", "Answer: normalised exact match", "share"),
    ("answer_f1", "Answer: token F1 (best gold)", "share"),
    ("answer_key_facts", "Answer: key facts of long gold answers given", "share"),
    ("refusal_accuracy", "Unanswerable: correctly refused", "share"),
    ("false_refusal_rate", "Answerable: wrongly refused", "share"),
    ("invalid_citation_rate", "Citations naming passages that do not exist", "share"),
    ("quote_verified_rate", "Citations with a verified quote", "share"),
    ("evidence_hit_rate", "Evidence hit (verified citation on a gold page or passage)", "share"),
    ("first_token_s_median", "First token, median", "seconds"),
    ("total_s_median", "Whole answer, median", "seconds"),
)
STATUS_WORDS = {"answered": "answered", "does_not_fit": "does not fit any plan", "interrupted": "interrupted",
                "error": "error"}


def _figure(value, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "share":
        return f"{value * 100:.1f} %"
    return f"{value:.2f} s"


def _score(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _flag(value) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _width(text: str) -> int:
    """Columns a text takes in a terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _fit(text: str, columns: int) -> str:
    """`text` cut (with an ellipsis) and padded to exactly `columns` terminal columns."""
    if _width(text) > columns:
        while _width(text) > columns - 1:
            text = text[:-1]
        text += "…"
    return text + " " * (columns - _width(text))


def summary_lines(report) -> list[str]:
    """The aggregate figures with the number of questions behind each."""
    summary = report.summary
    lines = []
    for key, label, kind in SUMMARY_ROWS:
        lines.append(f"  {label:<62} {_figure(summary.get(key), kind):>9}  (n={summary['n'].get(key, 0)})")
    lines.append(f"  {'Prompt tokens sent / read by the server':<62} {summary['tokens_sent']:,} / {summary['tokens_read']:,}")
    counts = ", ".join(f"{summary[s]} {STATUS_WORDS[s]}" for s in ("does_not_fit", "interrupted", "error") if summary[s])
    planned = f" ({summary['planned']} by a plan of several calls)" if summary.get("planned") else ""
    lines.append(f"  {summary['answered']} of {summary['questions']} questions answered{planned}" + (f"; {counts}" if counts else ""))
    return lines


def text_table(report) -> str:
    """One line per question, then the summary."""
    head = (f"Evaluation of {report.dataset}: {len(report.results)} question(s), {report.model} at {report.host} "
            f"({report.backend}), {report.date}")
    columns = f"{'line':>5}  {'question':<40} {'status':<9} {'EM':>4} {'F1':>5} {'refusal':>8} {'cit':>4} " \
              f"{'ver':>4} {'inv':>4} {'evid':>5} {'first':>7} {'total':>7} {'sent/read':>15}"
    lines = [head, "", columns]
    for r in report.results:
        question = _fit(r.item.question, 40)
        refusal = _flag(r.refusal_correct) if not r.item.answerable else ("wrong" if r.false_refusal else "-")
        read = f"{r.tokens_sent or 0:,}/{r.tokens_read:,}" if r.tokens_read is not None else f"{r.tokens_sent or 0:,}/-"
        lines.append(
            f"{r.item.line:>5}  {question} {r.status[:9]:<9} {_score(r.em, 0):>4} {_score(r.f1):>5} {refusal:>8} "
            f"{r.citations:>4} {r.verified:>4} {r.invalid:>4} {_flag(r.evidence_hit):>5} "
            f"{_score(r.first_token_s, 1):>7} {_score(r.total_s, 1):>7} {read:>15}"
        )
        if r.status != "answered" and r.message:
            lines.append(f"{'':>7}{r.message}")
    lines += ["", "Summary (n = questions behind each figure):", *summary_lines(report)]
    return "\n".join(lines)


_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem; color: #1d1d1f; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f6; position: sticky; top: 0; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.good { background: #e3f4e1; } .bad { background: #fbe2e0; } .meh { background: #fdf3d8; }
.answer { white-space: pre-wrap; max-width: 40rem; font-size: .9em; }
.muted { color: #666; font-size: .9em; }
"""


def _cell(value: str, css: str = "", num: bool = False) -> str:
    classes = " ".join(c for c in (css, "num" if num else "") if c)
    return f"<td class=\"{classes}\">{value}</td>" if classes else f"<td>{value}</td>"


def _tone(value, good: float = 0.8, bad: float = 0.3, higher_is_better: bool = True) -> str:
    if value is None:
        return ""
    value = value if higher_is_better else 1 - value
    return "good" if value >= good else ("bad" if value < bad else "meh")


def html_report(report) -> str:
    """The whole report as one self-contained HTML page."""
    e = html.escape
    summary = report.summary
    rows = []
    for key, label, kind in SUMMARY_ROWS:
        value = summary.get(key)
        better = key not in ("invalid_citation_rate", "false_refusal_rate")
        tone = _tone(value, higher_is_better=better) if kind == "share" else ""
        rows.append(f"<tr><td>{e(label)}</td>{_cell(e(_figure(value, kind)), tone, True)}"
                    f"{_cell(str(summary['n'].get(key, 0)), num=True)}</tr>")
    tokens = f"{summary['tokens_sent']:,} / {summary['tokens_read']:,}"
    rows.append(f"<tr><td>Prompt tokens sent / read by the server</td>{_cell(e(tokens), num=True)}<td></td></tr>")
    questions = [_question_row(r) for r in report.results]
    stopped = "<p class=\"bad\">Stopped before every question was asked.</p>" if report.cancelled else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Folio evaluation: {e(report.dataset)}</title><style>{_CSS}</style></head>
<body>
<h1>Folio evaluation of {e(report.dataset)}</h1>
<p class="muted">{e(report.model)} at {e(report.host)} ({e(report.backend)}), thinking {'on' if report.think else 'off'},
{e(report.date)}. {summary['answered']} of {summary['questions']} questions answered ({summary.get('planned', 0)} of them
by a plan of several calls, the documents being too long for one); {summary['does_not_fit']} could not be planned,
{summary['interrupted']} interrupted, {summary['error']} could not run.</p>
{stopped}
<h2>Summary</h2>
<table><thead><tr><th>Figure</th><th>Value</th><th>Questions (n)</th></tr></thead><tbody>
{''.join(rows)}
</tbody></table>
<h2>Questions</h2>
<table><thead><tr><th>Line</th><th>Question</th><th>Gold</th><th>Folio's answer</th><th>Status</th><th>EM</th><th>F1</th>
<th>Key facts</th><th>Refusal</th><th>Citations (verified / invalid)</th><th>Evidence hit</th><th>First token</th>
<th>Total</th><th>Tokens sent / read</th></tr></thead><tbody>
{''.join(questions)}
</tbody></table>
</body></html>
"""


def _question_row(r) -> str:
    e = html.escape
    gold = "<br>".join(e(a) for a in r.item.answers) if r.item.answerable else "<i>not answerable</i>"
    answer = e(r.answer) if r.status == "answered" else e(r.message or STATUS_WORDS[r.status])
    if not r.item.answerable:
        refusal = _cell("correct" if r.refusal_correct else "wrong", "good" if r.refusal_correct else "bad")
    else:
        refusal = _cell("wrong" if r.false_refusal else "-", "bad" if r.false_refusal else "")
    status_tone = "" if r.status == "answered" else "bad"
    read = f"{r.tokens_sent or 0:,} / " + (f"{r.tokens_read:,}" if r.tokens_read is not None else "-")
    return (
        "<tr>"
        + _cell(str(r.item.line), num=True) + _cell(e(r.item.question)) + _cell(gold)
        + f"<td class=\"answer\">{answer}</td>"
        + _cell(e(STATUS_WORDS[r.status]), status_tone)
        + _cell(_score(r.em, 0), _tone(r.em), True) + _cell(_score(r.f1), _tone(r.f1), True)
        + _cell(_score(r.key_facts), _tone(r.key_facts), True) + refusal
        + _cell(f"{r.citations} ({r.verified} / {r.invalid})", _tone(r.quote_verified_rate), True)
        + _cell(_flag(r.evidence_hit), _tone(None if r.evidence_hit is None else float(r.evidence_hit)))
        + _cell(_score(r.first_token_s, 1), num=True) + _cell(_score(r.total_s, 1), num=True)
        + _cell(read, num=True)
        + "</tr>"
    )

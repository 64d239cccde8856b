"""The probe and the eval command against the REAL engine (tests/llama_engine.py: llama.cpp with
SmolLM2-135M on the CPU). A 135M model finds few facts and cites poorly: its scores are recorded
(printed, and written next to the test's data), not asserted; what is asserted is that the
machinery measured what the server read and produced a score for every question."""

from __future__ import annotations

import json
from pathlib import Path

from lib.cli import main

from llama_engine import llama_engine  # noqa: F401 (session fixture)

ROOT = Path(__file__).resolve().parent.parent
EVALSET = ROOT / "bench" / "evalset" / "folio-eval.jsonl"
PROBE_CONTEXT = 2048
"""Small on purpose: the CPU reads a few hundred tokens a second at best."""
ANSWER_RESERVE = "64"


def _server(engine) -> list[str]:
    return ["--backend", "openai", "--host", engine.url]


def test_the_probe_at_small_lengths_on_the_real_engine(llama_engine, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FOLIO_ANSWER_RESERVE", ANSWER_RESERVE)
    code = main(["probe", *_server(llama_engine), "--context", str(PROBE_CONTEXT), "--lengths", "0.4,0.8",
                 "--depths", "0,100", "--json"])
    out, err = capsys.readouterr()
    result = json.loads(out)
    (tmp_path / "probe.json").write_text(out)
    print(f"\nreal engine probe: {result['verdict']}\n{err}")
    assert code in (0, 4), err
    assert result["context"] == PROBE_CONTEXT and len(result["cells"]) == 4
    for cell in result["cells"]:
        assert cell["status"] in ("green", "amber", "red", "grey")
        # llama.cpp reports what it read; the prompt was counted by the server's own tokenizer.
        assert isinstance(cell["server_read_tokens"], int) and cell["server_read_tokens"] > 0
    assert result["read_all"] is (code == 0)
    lengths = sorted({c["length_tokens"] for c in result["cells"]})
    assert lengths[0] < lengths[1] <= PROBE_CONTEXT - int(ANSWER_RESERVE)


def test_the_eval_command_on_the_shipped_set_on_the_real_engine(llama_engine, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FOLIO_ANSWER_RESERVE", ANSWER_RESERVE)
    html = tmp_path / "report.html"
    code = main(["eval", str(EVALSET), *_server(llama_engine), "--context", str(llama_engine.n_ctx),
                 "--no-think", "--json", "--html", str(html)])
    out, err = capsys.readouterr()
    report = json.loads(out)
    (tmp_path / "eval.json").write_text(out)
    print(f"\nreal engine eval summary: {json.dumps(report['summary'])}")
    assert code == 0, err
    items = [json.loads(line) for line in EVALSET.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(report["questions"]) == len(items)
    for question in report["questions"]:
        assert question["status"] == "answered", question["message"]
        if question["answerable"]:
            assert question["em"] is not None and question["f1"] is not None
        else:
            assert question["refusal_correct"] is not None
        assert question["tokens_sent"] > 0 and question["tokens_read"] > 0
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

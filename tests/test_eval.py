"""`python -m lib eval` against the fake Ollama: personas that make every score move, the
shipped evaluation set, bad datasets, the report, and a FinanceBench-style dataset."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pymupdf
import pytest

from lib.asking import evaluation
from lib.asking.answering import Answer
from lib.cli import main

from fake_ollama import FakeOllama
from fake_personas import eval_liar, eval_oracle

ROOT = Path(__file__).resolve().parent.parent
EVALSET = ROOT / "bench" / "evalset" / "folio-eval.jsonl"
SUMMARY_KEYS = {"questions", "answer_em", "answer_f1", "refusal_accuracy", "invalid_citation_rate",
                "quote_verified_rate", "evidence_hit_rate", "first_token_s_median"}


def shipped_items() -> list[dict]:
    return [json.loads(line) for line in EVALSET.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def fake():
    with FakeOllama() as server:
        server.script(answer=eval_oracle(shipped_items()), thinking="")
        yield server


def run_eval(capsys, fake, dataset=EVALSET, *extra: str) -> tuple[int, dict]:
    code = main(["eval", str(dataset), "--host", fake.url, "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


# ------------------------------------------------------------------------ the shipped set


def test_the_shipped_set_has_unanswerable_and_chinese_questions_with_evidence_pages():
    items = shipped_items()
    assert len(items) >= 12
    assert sum(not i["answerable"] for i in items) >= 3
    assert any(re.search(r"[\u4e00-\u9fff]", i["question"]) for i in items)
    assert any(e.get("page") for i in items for e in i.get("evidence", []))
    assert evaluation.load_dataset(EVALSET)  # valid: every document is there


def test_an_oracle_scores_near_100_percent(capsys, fake):
    code, report = run_eval(capsys, fake)
    assert code == 0
    summary = report["summary"]
    assert set(summary) >= SUMMARY_KEYS
    assert summary["questions"] == len(shipped_items()) == len(report["questions"])
    for key in ("answer_em", "answer_f1", "refusal_accuracy", "quote_verified_rate", "evidence_hit_rate"):
        assert summary[key] == 1.0, key
    assert summary["invalid_citation_rate"] == 0.0
    answerable = sum(i["answerable"] for i in shipped_items())
    assert summary["n"]["answer_em"] == answerable
    assert summary["n"]["refusal_accuracy"] == len(shipped_items()) - answerable
    assert summary["first_token_s_median"] is not None
    chinese = [q for q in report["questions"] if q["id"].startswith("hlm-") and q["answerable"]]
    assert chinese and all(q["em"] == 1.0 and q["evidence_hit"] for q in chinese)
    for question in report["questions"]:
        assert question["tokens_sent"] == question["tokens_read"] > 0
        assert question["status"] == "answered"


def test_a_liar_that_invents_quotes_is_unverified_and_misses_the_evidence(capsys, fake):
    fake.script(answer=eval_liar(shipped_items(), "quotes"), thinking="")
    _, report = run_eval(capsys, fake)
    summary = report["summary"]
    assert summary["answer_em"] == 1.0  # right answers...
    assert summary["quote_verified_rate"] == 0.0 and summary["invalid_citation_rate"] == 0.0
    assert summary["evidence_hit_rate"] == 0.0  # ...with nothing that checks out


def test_a_liar_that_invents_ids_has_only_invalid_citations(capsys, fake):
    fake.script(answer=eval_liar(shipped_items(), "ids"), thinking="")
    _, report = run_eval(capsys, fake)
    summary = report["summary"]
    assert summary["invalid_citation_rate"] == 1.0 and summary["quote_verified_rate"] == 0.0
    assert summary["evidence_hit_rate"] == 0.0


def test_a_model_that_never_refuses_fails_the_unanswerable_questions(capsys, fake):
    fake.script(thinking="")  # the fake's default: quote the first passage, whatever was asked
    _, report = run_eval(capsys, fake)
    summary = report["summary"]
    assert summary["refusal_accuracy"] == 0.0
    assert summary["answer_em"] < 0.2
    unanswerable = [q for q in report["questions"] if not q["answerable"]]
    assert all(q["refusal_correct"] is False and q["em"] is None for q in unanswerable)


def test_the_table_and_a_self_contained_html_report(capsys, fake, tmp_path):
    fake.script(answer=lambda body, prompt: 'Here: <script>alert(1)</script> "x" [zzq-1].', thinking="")
    html_path = tmp_path / "report.html"
    code = main(["eval", str(EVALSET), "--host", fake.url, "--html", str(html_path), "--limit", "3"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "Summary (n = questions behind each figure):" in out
    assert re.search(r"Citations naming passages that do not exist\s+100\.0 %\s+\(n=3\)", out)
    assert "[3/3]" in err and "[4/" not in err and f"report written to {html_path}" in err
    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "What is the monthly rent?" in page
    assert "<script" not in page and "&lt;script&gt;" in page
    for external in ("src=", "href=", "@import", "url("):
        assert external not in page


# ---------------------------------------------------------------------------- bad input


def _write(tmp_path: Path, lines: list) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n",
                    encoding="utf-8")
    return path


def test_a_malformed_dataset_names_every_bad_line_and_sends_nothing(capsys, fake, tmp_path):
    (tmp_path / "a.txt").write_text("The lessee pays 900 euros.", encoding="utf-8")
    good = {"documents": ["a.txt"], "question": "How much?", "answers": ["900 euros"]}
    path = _write(tmp_path, [
        good,
        "{not json",
        {"documents": ["missing.pdf"], "question": "q", "answers": ["a"]},
        {"documents": ["a.txt"], "answers": ["a"]},
        {**good, "evidence": [{"document": "a.txt", "page": 0}]},
        {**good, "evidence": [{"document": "other.pdf", "page": 1}]},
        {**good, "answers": []},
    ])
    code = main(["eval", str(path), "--host", fake.url])
    err = capsys.readouterr().err
    assert code == 2
    assert "6 bad line(s)" in err
    for text in ("line 2:", "line 3: no such document", "line 4: \"question\" is missing", "line 5: evidence page 0",
                 "line 6: evidence names document 'other.pdf'", "line 7: \"answers\" is empty"):
        assert text in err, text
    assert not fake.chat_bodies


def test_questions_that_do_not_fit_or_cannot_be_read_are_reported_and_the_rest_go_on(capsys, fake, tmp_path):
    (tmp_path / "small.txt").write_text("The lessee pays 900 euros a month.", encoding="utf-8")
    (tmp_path / "big.txt").write_text("\n\n".join(f"Clause {i}: the lessee pays {i} euros." for i in range(3000)),
                                      encoding="utf-8")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7 this is not really a PDF")
    path = _write(tmp_path, [
        {"documents": ["small.txt"], "question": "How much a month?", "answers": ["900 euros"]},
        {"documents": ["big.txt"], "question": "What is clause 7?", "answers": ["7 euros"]},
        {"documents": ["broken.pdf"], "question": "What does it say?", "answers": ["x"]},
    ])
    fake.script(thinking="")
    code, report = run_eval(capsys, fake, path, "--context", "8192")
    assert code == 2  # one question could not run: its document is unreadable
    statuses = [q["status"] for q in report["questions"]]
    assert statuses == ["answered", "answered", "error"]
    # big.txt does not fit one call: asked as the app asks it, by its default plan (read everything)
    planned = report["questions"][1]
    assert planned["mode"] == "all" and planned["calls"] > 2
    assert planned["warnings"][0].startswith("Asked by a plan: the documents do not fit one call")
    assert report["questions"][0]["mode"] == "one" and report["questions"][0]["calls"] == 1
    assert "broken.pdf" in report["questions"][2]["message"]
    summary = report["summary"]
    assert summary["planned"] == 1 and summary["error"] == 1 and summary["answered"] == 2
    assert len(fake.chat_bodies) == 1 + planned["calls"]


def test_a_question_that_fits_no_plan_is_reported_and_the_rest_go_on(capsys, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("FOLIO_ANSWER_RESERVE", "300")
    (tmp_path / "small.txt").write_text("The lessee pays 900 euros a month.", encoding="utf-8")
    (tmp_path / "big.txt").write_text("\n\n".join(f"Clause {i}: the lessee pays {i} euros." for i in range(300)),
                                      encoding="utf-8")
    path = _write(tmp_path, [
        {"documents": ["big.txt"], "question": "What is clause 7?", "answers": ["7 euros"]},
        {"documents": ["small.txt"], "question": "How much a month?", "answers": ["900 euros"]},
    ])
    fake.script(thinking="")
    code, report = run_eval(capsys, fake, path, "--context", "900")  # no room for a part beside the instructions
    statuses = [q["status"] for q in report["questions"]]
    assert statuses == ["does_not_fit", "answered"]
    assert report["questions"][0]["message"].startswith("Does not fit one call, nor any plan:")
    assert report["summary"]["does_not_fit"] == 1 and report["summary"]["planned"] == 0


def test_every_question_goes_through_the_one_seam(capsys, fake, monkeypatch):
    asked = []

    def planned(documents, question, settings, **kwargs):
        asked.append((tuple(d.name for d in documents), question))
        return Answer(question=question, answer="The documents do not answer this question.", no_answer=True)

    monkeypatch.setattr(evaluation, "answer_question", planned)
    _, report = run_eval(capsys, fake)
    assert len(asked) == len(shipped_items()) and not fake.chat_bodies
    assert report["summary"]["refusal_accuracy"] == 1.0 and report["summary"]["false_refusal_rate"] == 1.0


# --------------------------------------------------------------------- FinanceBench-style


def _financebench_converter():
    spec = importlib.util.spec_from_file_location("fb", ROOT / "bench" / "financebench_to_folio.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_financebench_style_set_runs_through_the_same_command(capsys, fake, tmp_path):
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    doc = pymupdf.open()
    for text in ("Cover page of the annual report.", "Revenue was 4,200 million dollars in FY2023.",
                 "Risk factors are described here."):
        doc.new_page().insert_textbox(pymupdf.Rect(72, 72, 520, 300), text, fontsize=11)
    doc.save(pdfs / "ACME_2023_10K.pdf")
    record = {"financebench_id": "fb-1", "doc_name": "ACME_2023_10K", "question": "What was ACME's FY2023 revenue?",
              "answer": "4,200 million dollars",
              "evidence": [{"evidence_text": "Revenue was 4,200 million dollars in FY2023.",
                            "doc_name": "ACME_2023_10K", "evidence_page_num": 1}]}
    source = tmp_path / "financebench.jsonl"
    source.write_text(json.dumps(record) + "\n" + json.dumps({**record, "doc_name": "MISSING_10K"}) + "\n")
    out = tmp_path / "out" / "folio.jsonl"
    assert _financebench_converter().main([str(source), "--pdfs", str(pdfs), "-o", str(out)]) == 0
    converted = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(converted) == 1  # the question whose PDF is missing is left out
    assert converted[0]["evidence"][0]["page"] == 2  # 0-based 1 -> Folio's page 2
    assert converted[0]["documents"] == ["../pdfs/ACME_2023_10K.pdf"]
    capsys.readouterr()
    fake.script(answer=eval_oracle(converted), thinking="")
    code, report = run_eval(capsys, fake, out)
    assert code == 0
    assert report["questions"][0]["evidence_hit"] is True and report["summary"]["answer_em"] == 1.0

"""`python -m lib ingest` as other tools run it: a real subprocess, stdout and exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.reading.tokens import get_counter
from tests import fixtures

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT_KEYS = {"name", "sha256", "format", "pages", "chars", "tokens", "counter", "passages", "warnings"}
PASSAGE_KEYS = {"id", "page", "heading", "text", "tokens"}
BUDGET_KEYS = {"context", "system", "reserved", "available", "documents", "fits"}


def run_ingest(*args: str | Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lib", "ingest", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def as_json(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.decode("utf-8"))


@pytest.fixture
def files(tmp_path):
    return {
        "pdf": fixtures.write(tmp_path, "english.pdf", fixtures.english_pdf()),
        "docx": fixtures.write(tmp_path, "report.docx", fixtures.docx_with_headings_and_tables()),
        "gb": fixtures.write(tmp_path, "西游记.txt", fixtures.gb18030_text()),
        "junk": fixtures.write(tmp_path, "junk.pdf", fixtures.not_a_document()),
        "locked": fixtures.write(tmp_path, "locked.pdf", fixtures.encrypted_pdf()),
    }


def test_json_shape_and_exit_0_when_all_files_read(files):
    result = run_ingest(files["pdf"], files["docx"], files["gb"], "--json")
    assert result.returncode == 0, result.stderr
    data = as_json(result)
    assert set(data) == {"documents", "errors", "budget", "skipped"}  # keys are only ever added
    assert data["errors"] == [] and data["skipped"] == []
    assert [d["name"] for d in data["documents"]] == ["english.pdf", "report.docx", "西游记.txt"]
    for document in data["documents"]:
        assert set(document) == DOCUMENT_KEYS
        assert document["counter"] == "exact"
        assert document["passages"] > 0 and document["tokens"] > 0
    pdf, docx, text = data["documents"]
    assert pdf["pages"] == 3 and docx["pages"] is None and text["pages"] is None
    assert set(data["budget"]) == BUDGET_KEYS
    assert data["budget"]["fits"] is True
    budget = data["budget"]
    # The chat template and the (empty) question take a few tokens beyond system and reserve.
    template = budget["context"] - budget["system"] - budget["reserved"] - budget["available"]
    assert 0 < template < 100
    # Documents are rendered with passage markers in the prompt: never fewer tokens than their text.
    assert budget["documents"] >= sum(d["tokens"] for d in data["documents"])


def test_bad_file_among_good_ones_exits_2_and_reports_both(files):
    result = run_ingest(files["pdf"], files["junk"], files["locked"], files["gb"], "--json")
    assert result.returncode == 2
    data = as_json(result)
    assert [d["name"] for d in data["documents"]] == ["english.pdf", "西游记.txt"]
    assert [e["name"] for e in data["errors"]] == [str(files["junk"]), str(files["locked"])]
    assert all(e["message"].startswith(e["name"]) for e in data["errors"])
    assert "password" in data["errors"][1]["message"]
    assert b"Traceback" not in result.stderr


def test_passages_flag_lists_every_passage(files):
    result = run_ingest(files["pdf"], files["docx"], "--json", "--passages")
    data = as_json(result)
    counter = get_counter()
    for document in data["documents"]:
        listed = document["passage_list"]
        assert len(listed) == document["passages"]
        assert all(set(p) == PASSAGE_KEYS for p in listed)
        assert all(p["tokens"] == counter.count(p["text"]) for p in listed)
        assert len("".join(p["text"] for p in listed)) == document["chars"]
    pages = [p["page"] for p in data["documents"][0]["passage_list"]]
    assert pages == sorted(pages) and pages[0] == 1 and pages[-1] == 3
    ids = [p["id"] for d in data["documents"] for p in d["passage_list"]]
    assert len(ids) == len(set(ids))
    # Without the flag there is no passage list.
    assert "passage_list" not in as_json(run_ingest(files["pdf"], "--json"))["documents"][0]


def test_password_option(files):
    result = run_ingest(files["locked"], "--password", fixtures.PASSWORD, "--json")
    assert result.returncode == 0
    assert as_json(result)["documents"][0]["name"] == "locked.pdf"


def test_json_is_the_only_thing_on_stdout(files):
    result = run_ingest(files["pdf"], files["junk"], "--json")
    lines = result.stdout.decode("utf-8").strip().splitlines()
    assert len(lines) == 1
    json.loads(lines[0])


def test_estimate_is_labelled_in_json_and_table(files):
    result = run_ingest(files["pdf"], "--json", env={"FOLIO_TOKENIZER": "estimate"})
    document = as_json(result)["documents"][0]
    assert document["counter"] == "estimate"
    assert any("ESTIMATE" in w for w in document["warnings"])
    table = run_ingest(files["pdf"], env={"FOLIO_TOKENIZER": "estimate"}).stdout.decode("utf-8")
    assert "~" in table and "estimate" in table.lower()


def test_readable_table(files):
    result = run_ingest(files["pdf"], files["gb"], files["junk"])
    assert result.returncode == 2
    out = result.stdout.decode("utf-8")
    lines = out.splitlines()
    assert lines[0].split() == ["document", "format", "pages", "chars", "tokens", "passages"]
    assert lines[1].split()[:3] == ["english.pdf", "pdf", "3"]
    assert any(line.startswith("error: " + str(files["junk"])) for line in lines)
    assert "Fits" in out
    assert b"Traceback" not in result.stderr


def test_missing_file_and_folder(tmp_path):
    result = run_ingest(tmp_path / "nope.pdf", tmp_path, "--json")
    assert result.returncode == 2
    data = as_json(result)
    assert data["documents"] == []
    assert len(data["errors"]) == 2
    assert data["budget"]["documents"] == 0


def test_table_with_passages_lists_ids_pages_and_headings(files):
    result = run_ingest(files["docx"], "--passages")
    assert result.returncode == 0
    out = result.stdout.decode("utf-8")
    listed = [line for line in out.splitlines() if line.startswith("  [")]
    assert listed and listed[0].startswith("  [") and "-1]" in listed[0]
    (_, _), (second, _), (third, _) = fixtures.DOCX_HEADINGS
    assert any(f"{second} > {third}" in line for line in listed)


def _limit_memory():  # were a device read without bound, fail fast instead of filling the machine
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def test_named_pipes_devices_and_folders_are_refused_by_name_without_reading(tmp_path):
    fifo = tmp_path / "incoming.txt"
    os.mkfifo(fifo)
    zero = tmp_path / "zeros.txt"
    zero.symlink_to("/dev/zero")
    folder = tmp_path / "folder.pdf"
    folder.mkdir()
    good = fixtures.write(tmp_path, "notes.md", fixtures.markdown_text())
    result = subprocess.run([sys.executable, "-m", "lib", "ingest", "--json", str(fifo), str(zero), str(folder), str(good)],
                            cwd=ROOT, capture_output=True, timeout=60, preexec_fn=_limit_memory)
    assert result.returncode == 2 and b"Traceback" not in result.stderr
    data = as_json(result)
    assert [d["name"] for d in data["documents"]] == ["notes.md"]
    messages = {e["name"]: e["message"] for e in data["errors"]}
    assert "named pipe" in messages[str(fifo)] and "regular files" in messages[str(fifo)]
    assert "character device" in messages[str(zero)] and "/dev/zero" in messages[str(zero)]
    assert "folder" in messages[str(folder)]

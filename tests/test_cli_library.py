"""`ingest PATH... [--collection NAME]` over folders and .zip archives, as a resumable job,
and the `collections` command: what a script sees (JSON, exit status, stderr)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lib.cli import main
from lib.library import ingestion
from lib.library.store import Store
from tests import fixtures

ROOT = Path(__file__).resolve().parent.parent
LEASE = "The lessee shall pay the rent monthly.\n\nThe lessor repairs the roof.\n"
NOTICE = "Either party may end the lease with three months' notice.\n"
CHINESE = "# 合同\n\n承租人应当按月支付租金。\n"


def run_cli(*args: str | Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lib", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def matter(tmp_path) -> Path:
    """A folder as a user has it: documents in subfolders, an image, OS clutter, a .zip of more documents."""
    root = tmp_path / "matter"
    (root / "pleadings" / "2024").mkdir(parents=True)
    (root / "pleadings" / "lease.txt").write_text(LEASE)
    (root / "pleadings" / "2024" / "contract.md").write_text(CHINESE, encoding="utf-8")
    (root / "judgment.pdf").write_bytes(fixtures.english_pdf())
    (root / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "bundle.zip").write_bytes(zip_bytes({
        "letters/notice.txt": NOTICE.encode(),
        "letters/report.docx": fixtures.docx_with_headings_and_tables(),
        "nested.zip": zip_bytes({"deep.txt": b"too deep"}),
        "__MACOSX/letters/._notice.txt": b"\x00\x05\x16\x07",
        "../outside.txt": b"escape",
    }))
    return root


def test_folders_and_archives_are_read_recursively_and_non_documents_skipped(matter):
    result = run_cli("ingest", matter, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"documents", "errors", "budget", "skipped"} <= set(data)
    assert sorted(d["name"] for d in data["documents"]) == ["contract.md", "judgment.pdf", "lease.txt", "notice.txt", "report.docx"]
    assert data["errors"] == []
    skipped = {Path(s["name"]).name: s["reason"] for s in data["skipped"]}
    assert set(skipped) == {"scan.png", "nested.zip", "outside.txt"}
    assert "PNG image" in skipped["scan.png"] and "archive inside an archive" in skipped["nested.zip"]
    assert "leaves the archive" in skipped["outside.txt"]
    assert not Store(Path(os.environ["FOLIO_DATA_DIR"])).list_documents()  # without --collection nothing is stored


def test_a_zip_bomb_or_an_empty_folder_is_an_error_and_the_rest_is_read(tmp_path, matter):
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(fixtures._zip([("big.txt", fixtures._deflate_segment(b"A" * 1024) + b"\x03\x00", 0, 1 << 30)]))
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("ingest", bomb, empty, matter / "pleadings", "--json")
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert sorted(d["name"] for d in data["documents"]) == ["contract.md", "lease.txt"]
    errors = {Path(e["name"]).name: e["message"] for e in data["errors"]}
    assert "zip bomb" in errors["bomb.zip"] and "no files" in errors["empty"]


def test_collection_ingest_stores_adds_and_never_reads_a_stored_file_twice(matter, monkeypatch, capsys):
    read = []
    real = ingestion.ingest_bytes

    def counting(data, name, **kwargs):
        read.append(name)
        if name == "notice.txt" and read.count(name) == 1:
            raise KeyboardInterrupt  # the user presses Ctrl-C while notice.txt is being read
        return real(data, name, **kwargs)

    monkeypatch.setattr(ingestion, "ingest_bytes", counting)
    assert main(["ingest", str(matter), "--collection", "Smith v Jones"]) == 130
    stopped = capsys.readouterr()
    assert "cancelled" in stopped.err and "Run the same command again to resume" in stopped.err
    store = Store(Path(os.environ["FOLIO_DATA_DIR"]))
    first_part = sorted(read[:-1])
    assert sorted(d.name for d in store.list_documents()) == first_part  # what finished is stored
    assert store.get_collection("Smith v Jones").documents == len(first_part)

    assert main(["ingest", str(matter), "--collection", "Smith v Jones", "--json"]) == 0
    resumed = capsys.readouterr()
    assert "Resuming job" in resumed.err
    data = json.loads(resumed.out)
    names = sorted(d["name"] for d in data["documents"])
    assert names == ["contract.md", "judgment.pdf", "lease.txt", "notice.txt", "report.docx"]
    assert sorted(read) == sorted(names + ["notice.txt"])  # each read once; notice.txt again after the cut
    assert {d["status"] for d in data["documents"]} == {"added"}
    assert data["collection"]["name"] == "Smith v Jones" and data["collection"]["documents"] == 5
    assert data["collection"]["tokens"] == sum(d["tokens"] for d in data["documents"])
    assert data["job"]["state"] == "done" and data["job"]["done"] == data["job"]["total"] == 8
    assert {Path(s["name"]).name for s in data["skipped"]} == {"scan.png", "nested.zip", "outside.txt"}

    # Another collection with a file that is stored already: added without being read again.
    read.clear()
    assert main(["ingest", str(matter / "pleadings" / "lease.txt"), str(matter / "judgment.pdf"),
                 "--collection", "Appeal", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert read == [] and {d["status"] for d in data["documents"]} == {"existing"}
    assert store.get_collection("Appeal").documents == 2 and len(store.list_documents()) == 5


def test_collections_command_json_and_exit_statuses(matter):
    assert run_cli("ingest", matter / "pleadings", "--collection", "Smith").returncode == 0
    listed = json.loads(run_cli("collections", "--json").stdout)
    [smith] = listed["collections"]
    assert set(smith) == {"id", "name", "documents", "tokens", "size", "created_at", "updated_at"}
    assert (smith["name"], smith["documents"]) == ("Smith", 2)

    created = json.loads(run_cli("collections", "create", "Appeal", "--json").stdout)
    assert created["collection"]["documents"] == 0
    shown = json.loads(run_cli("collections", "show", "Smith", "--json", "--sort", "name").stdout)
    assert [d["name"] for d in shown["documents"]] == ["contract.md", "lease.txt"]
    assert (shown["total"], shown["offset"], shown["limit"]) == (2, 0, 50)
    lease = shown["documents"][1]["sha256"]
    added = json.loads(run_cli("collections", "add", "Appeal", lease[:10], "contract.md", "--json").stdout)
    assert added["added"] == 2 and added["collection"]["documents"] == 2
    page = json.loads(run_cli("collections", "show", "appeal", "--filter", "LEASE", "--limit", "1", "--json").stdout)
    assert [d["sha256"] for d in page["documents"]] == [lease] and page["total"] == 1
    removed = json.loads(run_cli("collections", "remove", "Appeal", lease, "--json").stdout)
    assert removed["removed"] == 1 and removed["collection"]["documents"] == 1
    renamed = json.loads(run_cli("collections", "rename", "Appeal", "Appeal 2025", "--json").stdout)
    assert renamed["collection"]["name"] == "Appeal 2025"

    duplicate = run_cli("collections", "create", "smith")
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr and "Traceback" not in duplicate.stderr
    missing = run_cli("collections", "show", "Nope")
    assert missing.returncode == 2 and "There is no collection 'Nope'" in missing.stderr
    unknown = run_cli("collections", "add", "Smith", "not-a-document")
    assert unknown.returncode == 2 and "No document" in unknown.stderr

    deleted = json.loads(run_cli("collections", "delete", "Appeal 2025", "--json").stdout)
    assert deleted == {"deleted": True, "name": "Appeal 2025"}
    table = run_cli("collections").stdout
    assert "Smith" in table and "Appeal" not in table
    assert len(Store(Path(os.environ["FOLIO_DATA_DIR"])).list_documents()) == 2  # documents stay


def test_pipes_devices_and_folder_links_in_a_folder_are_skipped_not_read(tmp_path):
    from lib.config import load_settings
    from lib.library.sources import expand_paths

    root = tmp_path / "odd"
    root.mkdir()
    (root / "real.txt").write_text(LEASE)
    os.mkfifo(root / "pipe.txt")  # reading it would block forever
    (root / "zero.txt").symlink_to("/dev/zero")  # reading it would never end
    (root / "loop").symlink_to(root, target_is_directory=True)  # following it would never end
    found = expand_paths([root], load_settings())
    assert [s.name for s in found.sources] == ["real.txt"]
    reasons = {Path(label).name: reason for label, reason in found.skipped}
    assert "not a regular file" in reasons["pipe.txt"] and "not a regular file" in reasons["zero.txt"]
    assert "link to a folder" in reasons["loop"]

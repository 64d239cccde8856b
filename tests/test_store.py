"""The SQLite store: restart-safe, deduplicating, deleting everywhere, searchable in
English and Chinese, safe under concurrent writers, and clear when it cannot work."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lib.documents import Document, Passage
from lib.errors import StoreError
from lib.library.store import SCHEMA_VERSION, NotInStore, Store

ROOT = Path(__file__).resolve().parent.parent

ENGLISH = [
    "Article 1. The lessee shall pay the rent on the first day of every month. ",
    "Article 2. The lessor shall keep the roof and the walls in good repair. ",
    "Article 3. Either party may terminate this lease with three months' notice. ",
]
CHINESE = [
    "第一条 本合同自双方签字之日起生效。",
    "第二条 承租人应当按月支付租金。",
    "第三条 出租人负责房屋的维修。",
]


def make_document(name: str, pages: list[str], fmt: str = "pdf", salt: str = "") -> tuple[Document, bytes]:
    """A Document built by hand (one passage per page) and the original bytes it came from."""
    original = f"%PDF-1.7 fake {name} {salt}\n{''.join(pages)}".encode()
    sha = hashlib.sha256(original).hexdigest()
    passages, position = [], 0
    for index, text in enumerate(pages):
        passages.append(
            Passage(
                id=f"tst-{index + 1}",
                index=index,
                page=index + 1 if fmt == "pdf" else None,
                page_end=index + 1 if fmt == "pdf" else None,
                heading=f"Part {index + 1}",
                text=text,
                tokens=len(text) // 3,
                start=position,
                end=position + len(text),
                page_label=f"p{index + 1}" if fmt == "pdf" else None,
            )
        )
        position += len(text)
    text = "".join(pages)
    document = Document(
        name=name,
        sha256=sha,
        format=fmt,
        pages=len(pages) if fmt == "pdf" else None,
        text=text,
        passages=passages,
        tokens=len(text) // 3,
        counter="exact",
        warnings=["page 2 was read with OCR"],
        page_labels=[f"p{i + 1}" for i in range(len(pages))] if fmt == "pdf" else None,
    )
    return document, original


def answer_dict(text: str = 'The lessee "shall pay the rent" [tst-1].') -> dict:
    return {
        "answer": text,
        "thinking": "The first article says so.",
        "citations": [{"id": "tst-1", "document": "lease.pdf", "page": 1, "quote": "shall pay the rent", "status": "verified"}],
        "warnings": [],
        "calls": [{"documents": ["lease.pdf"], "prompt_tokens": 900, "server_prompt_tokens": 900, "num_ctx": 131072,
                   "num_keep": 500, "first_token_s": 1.5, "total_s": 3.0, "done_reason": "stop"}],
    }


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "library"


@pytest.fixture
def store(data_dir) -> Store:
    return Store(data_dir)


def test_default_data_dir_comes_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLIO_DATA_DIR", str(tmp_path / "from-env"))
    store = Store()
    assert store.data_dir == tmp_path / "from-env"
    assert (tmp_path / "from-env" / "folio.db").is_file()
    assert (tmp_path / "from-env" / "files").is_dir()


def test_schema_is_versioned_and_uses_wal(store):
    conn = sqlite3.connect(store.db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_close_and_reopen_loses_nothing(data_dir):
    document, original = make_document("lease.pdf", ENGLISH)
    store = Store(data_dir)
    store.add_document(document, original)
    conversation = store.create_conversation([document.sha256], "Rent", {"think": True, "model": "qwen3-128k:14b"})
    store.add_turn(conversation, "Who pays the rent?", answer_dict())
    store.close()

    reopened = Store(data_dir)
    assert reopened.get_document(document.sha256) == document
    assert reopened.get_original(document.sha256) == original
    [summary] = reopened.list_documents()
    assert (summary.name, summary.pages, summary.passages, summary.size) == ("lease.pdf", 3, 3, len(original))
    assert summary.warnings == ["page 2 was read with OCR"]
    saved = reopened.get_conversation(conversation)
    assert saved["settings"] == {"think": True, "model": "qwen3-128k:14b"}
    [turn] = saved["turns"]
    assert turn["question"] == "Who pays the rent?"
    assert turn["answer"] == answer_dict()["answer"]
    assert turn["citations"] == answer_dict()["citations"]
    assert turn["calls"][0]["first_token_s"] == 1.5


def test_same_file_twice_is_recognised(store):
    document, original = make_document("lease.pdf", ENGLISH)
    stored, is_new = store.add_document(document, original)
    assert is_new
    renamed = Document(**{**document.__dict__, "name": "copy of lease.pdf"})
    again, is_new = store.add_document(renamed, original)
    assert not is_new
    assert again.name == "lease.pdf"  # the stored one, not the new upload
    assert len(store.list_documents()) == 1


def test_mismatched_original_is_refused(store):
    document, _ = make_document("lease.pdf", ENGLISH)
    with pytest.raises(StoreError, match="lease.pdf"):
        store.add_document(document, b"other bytes")
    assert store.list_documents() == []


def test_delete_removes_document_everywhere(store):
    document, original = make_document("lease.pdf", ENGLISH)
    other, other_original = make_document("contract.pdf", CHINESE)
    store.add_document(document, original)
    store.add_document(other, other_original)
    conversation = store.create_conversation([document.sha256], "Rent", {})
    store.add_turn(conversation, "Who pays?", answer_dict())

    assert store.delete_document(document.sha256)

    assert [d.sha256 for d in store.list_documents()] == [other.sha256]
    assert not (store.files_dir / document.sha256).exists()
    assert (store.files_dir / other.sha256).exists()
    assert store.search_passages("lessee") == []
    with pytest.raises(NotInStore):
        store.get_document(document.sha256)
    with pytest.raises(NotInStore):
        store.get_original(document.sha256)
    conn = sqlite3.connect(store.db_path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM passages WHERE sha256 = ?", (document.sha256,)).fetchone()[0] == 0
        # The index itself, not only the join: no trigram entry still points at the text.
        assert conn.execute("SELECT COUNT(*) FROM passages_fts WHERE passages_fts MATCH 'lessee'").fetchone()[0] == 0
        raw = store.db_path.read_bytes()
        assert b"The lessor shall keep the roof" not in raw  # secure_delete + checkpoint
    finally:
        conn.close()
    assert store.check_integrity() == []
    # The conversation keeps its saved text and knows the document is gone.
    saved = store.get_conversation(conversation)
    assert saved["turns"][0]["citations"][0]["quote"] == "shall pay the rent"
    assert saved["documents"] == [{"sha256": document.sha256, "name": "lease.pdf", "available": False}]
    assert not store.delete_document(document.sha256)


def test_english_search_with_snippet_and_page(store):
    document, original = make_document("lease.pdf", ENGLISH)
    store.add_document(document, original)
    [hit] = store.search_passages("LESSOR repair")
    assert (hit.document, hit.passage_id, hit.page, hit.page_label) == ("lease.pdf", "tst-2", 2, "p2")
    assert "lessor" in hit.snippet
    assert [hit.snippet[a:b].lower() for a, b in hit.spans] == ["lessor", "repair"]
    assert sorted(h.passage_id for h in store.search_passages("shall")) == ["tst-1", "tst-2"]
    assert store.search_passages('"three months"')[0].passage_id == "tst-3"
    assert store.search_passages("helicopter") == []
    assert store.search_passages("   ") == []


def test_chinese_search_long_and_two_character_words(store):
    document, original = make_document("合同.pdf", CHINESE)
    store.add_document(document, original)
    assert [h.passage_id for h in store.search_passages("签字之日")] == ["tst-1"]
    assert [h.passage_id for h in store.search_passages("合同")] == ["tst-1"]  # 2 chars: LIKE
    assert [h.passage_id for h in store.search_passages("租金")] == ["tst-2"]
    assert [h.passage_id for h in store.search_passages("维修 房屋")] == ["tst-3"]
    [hit] = store.search_passages("租金")
    assert [hit.snippet[a:b] for a, b in hit.spans] == ["租金"]


def test_search_can_be_limited_to_one_document(store):
    first, first_original = make_document("a.pdf", ENGLISH, salt="a")
    second, second_original = make_document("b.pdf", ENGLISH, salt="b")
    store.add_document(first, first_original)
    store.add_document(second, second_original)
    assert {h.sha256 for h in store.search_passages("lessee")} == {first.sha256, second.sha256}
    assert {h.sha256 for h in store.search_passages("lessee", sha=second.sha256)} == {second.sha256}
    assert len(store.search_passages("shall", limit=1)) == 1


def test_search_treats_fts_syntax_as_text(store):
    document, original = make_document("odd.txt", ['He said "NEAR(a b)" AND * OR -x 100% _done_. '], fmt="text")
    store.add_document(document, original)
    assert len(store.search_passages("NEAR(a")) == 1
    assert len(store.search_passages("100%")) == 1
    assert store.search_passages("1%0") == []  # % is literal in the LIKE fallback, not a wildcard


def test_passages_on_page_and_in_order(store):
    document, original = make_document("lease.pdf", ENGLISH)
    store.add_document(document, original)
    assert [p.id for p in store.passages_on_page(document.sha256, 2)] == ["tst-2"]
    assert store.passages_on_page(document.sha256, 9) == []
    assert [p.index for p in store.list_passages(document.sha256, offset=1, limit=5)] == [1, 2]


def test_conversations_are_listed_searched_and_deleted(store):
    document, original = make_document("lease.pdf", ENGLISH)
    store.add_document(document, original)
    rent = store.create_conversation([document.sha256], "Rent question", {"api_key": "secret", "think": False})
    roof = store.create_conversation([document.sha256], "Repairs", {})
    store.add_turn(rent, "Who pays?", answer_dict())
    store.add_turn(roof, "Who fixes the roof?", answer_dict("The lessor keeps it in repair [tst-2]."))
    store.add_turn(roof, "And the walls?", answer_dict("Also the lessor [tst-2]."))

    listed = store.list_conversations()
    assert [c["id"] for c in listed] == [roof, rent]  # most recently active first
    assert listed[0]["turns"] == 2 and listed[0]["last_question"] == "And the walls?"
    assert [c["id"] for c in store.list_conversations("rent question")] == [rent]  # title
    assert [c["id"] for c in store.list_conversations("roof")] == [roof]  # question
    assert [c["id"] for c in store.list_conversations("Also the lessor")] == [roof]  # answer
    assert store.list_conversations("verified") == []  # JSON keys are not searched
    assert store.get_conversation(rent)["settings"] == {"think": False}  # secrets are not stored
    assert [t["position"] for t in store.get_conversation(roof)["turns"]] == [1, 2]

    assert store.delete_conversation(roof)
    assert [c["id"] for c in store.list_conversations()] == [rent]
    with pytest.raises(NotInStore, match="another tab"):
        store.get_conversation(roof)
    with pytest.raises(NotInStore):
        store.add_turn(roof, "Still there?", answer_dict())


def test_failed_write_keeps_what_was_stored(store):
    kept, kept_original = make_document("lease.pdf", ENGLISH)
    store.add_document(kept, kept_original)
    broken_passages = [ENGLISH[0], None, ENGLISH[2]]  # NOT NULL fails on the second passage
    broken, broken_original = make_document("broken.pdf", ["x"] * 3, salt="broken")
    broken.passages = [Passage(**{**p.__dict__, "text": t}) for p, t in zip(broken.passages, broken_passages)]

    with pytest.raises(StoreError, match="broken.pdf"):
        store.add_document(broken, broken_original)

    assert [d.sha256 for d in store.list_documents()] == [kept.sha256]
    assert sorted(p.name for p in store.files_dir.iterdir()) == [kept.sha256]
    assert store.get_document(kept.sha256) == kept
    assert len(store.search_passages("lessee")) == 1
    assert store.check_integrity() == []


def test_exception_inside_a_transaction_rolls_back(store, monkeypatch):
    document, original = make_document("lease.pdf", ENGLISH)
    conversation = store.create_conversation([], "Before", {})

    def explode(*args, **kwargs):
        raise RuntimeError("disk unplugged")

    monkeypatch.setattr(Store, "_insert_passages", explode)
    with pytest.raises(RuntimeError):
        store.add_document(document, original)
    monkeypatch.undo()
    assert store.list_documents() == []
    assert not (store.files_dir / document.sha256).exists()
    assert [c["id"] for c in store.list_conversations()] == [conversation]
    assert store.add_document(document, original)[1]  # and it can be added properly afterwards


def test_unwritable_data_folder_says_what_to_do(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(StoreError) as caught:
        Store(blocker / "folio")
    message = str(caught.value)
    assert str(blocker / "folio") in message
    assert "FOLIO_DATA_DIR" in message


def test_corrupt_database_names_file_and_originals(data_dir):
    store = Store(data_dir)
    document, original = make_document("lease.pdf", ENGLISH)
    store.add_document(document, original)
    for suffix in ("", "-wal", "-shm"):
        Path(str(store.db_path) + suffix).unlink(missing_ok=True)
    store.db_path.write_bytes(b"this is not an SQLite file " * 200)
    with pytest.raises(StoreError) as caught:
        Store(data_dir)
    message = str(caught.value)
    assert str(store.db_path) in message and str(store.files_dir) in message
    assert (store.files_dir / document.sha256).read_bytes() == original


def test_newer_schema_is_refused(store):
    conn = sqlite3.connect(store.db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer Folio"):
        Store(store.data_dir)


def test_locked_database_gives_a_clear_message(data_dir):
    store = Store(data_dir, busy_timeout=0.2)
    blocker = sqlite3.connect(store.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"):
            store.create_conversation([], "Blocked", {})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.create_conversation([], "Now free", {}) > 0


def test_interrupted_delete_is_repaired_on_open(data_dir):
    store = Store(data_dir)
    document, original = make_document("lease.pdf", ENGLISH)
    store.add_document(document, original)
    # A crash after moving the file aside but before the commit: the row is still there.
    (store.files_dir / document.sha256).rename(store.files_dir / f".trash-{document.sha256}-abc")
    # And an original written by an add that never committed.
    orphan = "f" * 64
    (store.files_dir / orphan).write_bytes(b"never committed")
    Store(data_dir)
    assert store.get_original(document.sha256) == original
    assert sorted(p.name for p in store.files_dir.iterdir()) == [document.sha256]


def test_concurrent_threads_do_not_corrupt(data_dir):
    shared = Store(data_dir)
    conversation = shared.create_conversation([], "Busy", {})
    errors: list[BaseException] = []
    same, same_original = make_document("same.pdf", ENGLISH, salt="same")
    results: list[bool] = []

    def work(worker: int) -> None:
        try:
            store = shared if worker % 2 else Store(data_dir)  # shared instance and separate ones
            results.append(store.add_document(same, same_original)[1])
            for n in range(8):
                document, original = make_document(f"w{worker}-{n}.pdf", CHINESE, salt=f"{worker}-{n}")
                store.add_document(document, original)
                store.add_turn(conversation, f"q{worker}-{n}", answer_dict())
                store.search_passages("租金")
                store.list_documents()
            store.delete_document(make_document(f"w{worker}-0.pdf", CHINESE, salt=f"{worker}-0")[0].sha256)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(results) == [False, False, False, True]
    turns = shared.get_conversation(conversation)["turns"]
    assert [t["position"] for t in turns] == list(range(1, 33))
    assert sorted(t["question"] for t in turns) == sorted(f"q{w}-{n}" for w in range(4) for n in range(8))
    assert len(shared.list_documents()) == 1 + 4 * 7
    assert len(list(shared.files_dir.iterdir())) == 1 + 4 * 7
    assert shared.check_integrity() == []


CHILD = """
import sys, time
from pathlib import Path
sys.path[:0] = [{root!r}, {tests!r}]
from lib.library.store import Store
from test_store import make_document, answer_dict, CHINESE
store = Store(Path({data!r}))
Path({ready!r}).write_text("ready")
deadline = time.monotonic() + 60
while not Path({go!r}).exists():
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.005)  # poll interval, not synchronisation
for n in range(15):
    document, original = make_document(f"child-{{n}}.pdf", CHINESE, salt=f"child-{{n}}")
    store.add_document(document, original)
    store.add_turn({conversation}, f"child {{n}}", answer_dict())
"""


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)  # poll interval, not synchronisation


def test_second_process_writing_at_once_does_not_corrupt(data_dir, tmp_path):
    store = Store(data_dir)
    conversation = store.create_conversation([], "Two tabs", {})
    ready, go = tmp_path / "ready", tmp_path / "go"
    script = CHILD.format(
        root=str(ROOT), tests=str(ROOT / "tests"), data=str(data_dir), ready=str(ready), go=str(go),
        conversation=conversation,
    )
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: ready.exists() or child.poll() is not None)
        go.write_text("go")
        for n in range(15):
            document, original = make_document(f"parent-{n}.pdf", ENGLISH, salt=f"parent-{n}")
            store.add_document(document, original)
            store.add_turn(conversation, f"parent {n}", answer_dict())
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, stderr
    turns = store.get_conversation(conversation)["turns"]
    assert [t["position"] for t in turns] == list(range(1, 31))
    assert {t["question"] for t in turns} == {f"{who} {n}" for who in ("child", "parent") for n in range(15)}
    assert len(store.list_documents()) == 30
    assert len(store.search_passages("租金")) == 15
    assert store.check_integrity() == []


def test_ingested_pdf_round_trips_and_is_searchable(data_dir):
    import pymupdf

    from lib.reading.ingest import ingest_bytes

    pdf = pymupdf.open()
    pdf.new_page().insert_text((72, 100), "The tenant shall return the keys at the end of the lease.", fontsize=11)
    pdf.new_page().insert_text((72, 100), "本合同自双方签字之日起生效，租金按月支付。", fontsize=11, fontname="china-s")
    data = pdf.tobytes()
    document = ingest_bytes(data, "lease.pdf")

    Store(data_dir).add_document(document, data)
    store = Store(data_dir)  # a fresh open, as after a restart
    assert store.get_document(document.sha256) == document
    assert store.get_original(document.sha256) == data
    [keys] = store.search_passages("return the keys")
    assert (keys.document, keys.page) == ("lease.pdf", 1)
    [contract] = store.search_passages("合同")
    assert contract.page == 2
    assert [p.page for p in store.passages_on_page(document.sha256, 2)] == [2]


def test_first_start_from_several_threads_at_once(data_dir):
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def start() -> None:
        try:
            barrier.wait(timeout=30)
            Store(data_dir).create_conversation([], "hello", {})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    store = Store(data_dir)
    assert len(store.list_conversations()) == 6
    assert store.check_integrity() == []

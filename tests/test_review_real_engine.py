"""A review table against the REAL engine (llama.cpp with SmolLM2-135M): 5 documents, 3 columns.

The model is tiny, so its answers are poor; what is checked is the machinery: one call per
document answering every column, constrained output sent, the server's prompt count equal to
Folio's, every cell stored with a status and its citations checked.
"""

from __future__ import annotations

import uuid

from lib.asking.review import Column, create_table, load_table, run_table
from lib.asking.review.cells import STATUSES
from lib.config import Settings
from lib.library.reviews import ReviewStore
from lib.library.store import Store
from lib.reading.ingest import ingest_bytes

from llama_engine import llama_engine  # noqa: F401 (session fixture)

COLUMNS = [
    Column("Tenant", "Who is the tenant?"),
    Column("Rent", "How much is the monthly rent?", "number"),
    Column("Pets allowed?", "Are pets allowed?", "yesno"),
]


def lease(tag: str, number: int) -> str:
    return (
        f"Lease {tag}-{number}\n\n"
        f"The tenant is Ms Example {number}. The monthly rent is {800 + 25 * number} EUR, payable on the first day.\n\n"
        f"Pets are {'allowed' if number % 2 else 'not allowed'} in the flat.\n"
    )


def test_five_documents_three_columns_end_to_end(llama_engine, tmp_path):
    settings = Settings(backend="openai", host=llama_engine.url, context=llama_engine.n_ctx, answer_reserve=128,
                        data_dir=tmp_path / "data")
    store = Store(settings.data_dir)
    tag = uuid.uuid4().hex[:8]
    documents = []
    for number in range(5):
        data = lease(tag, number).encode()
        document = ingest_bytes(data, f"lease-{number}.txt", settings=settings)
        store.add_document(document, data)
        documents.append(document)
    table = create_table(store, "Leases", documents, COLUMNS)

    report = run_table(store, table.id, settings)  # llama.cpp serves one at a time: concurrency 1 by default

    assert len(report.calls) == 5  # one call per document, all three columns in it
    assert sorted(c["document"] for c in report.calls) == sorted(d.name for d in documents)
    for call in report.calls:
        assert call["constrained"] is True
        assert call["server_prompt_tokens"] == call["server_counted_prompt"] > 0  # the server read it all
        assert call["document_tokens"] < call["server_prompt_tokens"]
        assert call["num_predict"] == 128 and call["done_reason"] in ("stop", "length")
    table = load_table(store, table.id)
    cells = [table.cell(r.sha256, c.key) for r in table.rows for c in table.columns]
    assert len(cells) == 15 and len(ReviewStore(store).cells(table.id)) == 15
    assert all(c.status in STATUSES and c.status not in ("pending", "failed", "refused") for c in cells)
    for cell in cells:
        assert all(x["status"] in ("verified", "unverified", "invalid") for x in cell.citations)
        if cell.status == "answered":
            assert cell.needs_review == (not cell.verified or any("value not read" in r for r in cell.review))
        if cell.status == "unreadable":
            assert cell.raw  # the reply is kept for the reviewer

    again = run_table(store, table.id, settings)
    assert again.calls == []  # a finished table asks nothing


def test_a_document_longer_than_the_engines_context_is_read_in_parts_that_fit_its_own_count(llama_engine, tmp_path):
    """SmolLM2's tokenizer counts more tokens than Qwen3's for the same text: the parts are cut to the
    server's own count, so every part is read whole (none refused), each passage in exactly one part."""
    settings = Settings(backend="openai", host=llama_engine.url, context=llama_engine.n_ctx, answer_reserve=128,
                        data_dir=tmp_path / "data")
    store = Store(settings.data_dir)
    tag = uuid.uuid4().hex[:8]
    clauses = "\n\n".join(f"Clause {i} of lease {tag}: the lessee shall keep room {i} clean and report any damage "
                          f"within {i} days." for i in range(180))
    data = (lease(tag, 1) + "\n" + clauses + "\n\nThe tenant is Ms Example 1, as said above.\n").encode()
    document = ingest_bytes(data, "long-lease.txt", settings=settings)
    store.add_document(document, data)
    assert document.tokens > llama_engine.n_ctx  # longer than one call
    table = create_table(store, "Long", [document], COLUMNS)

    report = run_table(store, table.id, settings)

    reads = [c for c in report.calls if c.get("kind") != "compose"]
    assert len(reads) >= 2 and [c["part"] for c in reads] == list(range(1, len(reads) + 1))
    for call in report.calls:
        assert call["server_prompt_tokens"] <= llama_engine.n_ctx - 128  # it fit the server's own count
        if call.get("kind") != "compose":
            assert call["server_prompt_tokens"] == call["server_counted_prompt"]  # and was read whole
    spans = [c["passages"] for c in reads]
    assert spans[0][0] == document.passages[0].id and spans[-1][1] == document.passages[-1].id
    cells = [load_table(store, table.id).cell(document.sha256, c.key) for c in table.columns]
    assert all(c.parts == len(reads) and c.status not in ("pending", "failed", "refused") for c in cells)

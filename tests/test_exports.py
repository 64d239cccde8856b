"""Exports: Markdown with a sources list, Word with real footnotes, CSV history."""

from __future__ import annotations

import io
import zipfile

import docx
import pandas as pd
from lxml import etree

from lib.output.exports import (
    answer_docx,
    answer_markdown,
    conversation_docx,
    conversation_markdown,
    history_csv,
    link_citations,
    read_footnotes,
)

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"

QUOTE_WITH_MARKDOWN = "the *lessee* shall pay_rent_ <b>monthly</b>"


def make_turn(**changes) -> dict:
    turn = {
        "question": "Who pays the rent, and when?",
        "answer": (
            'The lessee pays: "the *lessee* shall pay_rent_ <b>monthly</b>" [kzt-1]. '
            'Repairs fall on the lessor "keep the roof" [kzt-2, kzt-3].\n\n'
            "- The notice period is \"three months\" [kzt-3]."
        ),
        "thinking": "Article 1 covers rent.",
        "citations": [
            {"id": "kzt-1", "document": "lease.pdf", "page": 1, "quote": QUOTE_WITH_MARKDOWN, "status": "verified"},
            {"id": "kzt-2", "document": "lease.pdf", "page": 2, "page_end": 3, "quote": "keep the roof", "status": "unverified"},
            {"id": "kzt-3", "document": "合同.pdf", "page": 7, "page_label": "vii", "quote": "三个月", "status": "verified"},
            {"id": "kzt-3", "document": "合同.pdf", "page": 7, "page_label": "vii", "quote": "three months", "status": "invalid"},
        ],
        "warnings": ["The server read 12 tokens fewer than Folio sent."],
        "calls": [
            {"documents": ["lease.pdf", "合同.pdf"], "prompt_tokens": 9120, "server_prompt_tokens": 9108,
             "num_ctx": 131072, "num_keep": 812, "first_token_s": 2.14, "total_s": 9.5, "done_reason": "stop"}
        ],
        "settings": {"model": "qwen3-128k:14b", "think": True},
        "created_at": "2026-11-25T08:00:00+00:00",
        "position": 1,
        "id": 11,
    }
    turn.update(changes)
    return turn


def make_conversation() -> dict:
    second = make_turn(
        question="=1+1 and the deposit?",
        answer='The deposit is "two months" [kzt-4].',
        citations=[{"id": "kzt-4", "document": "lease.pdf", "page": 3, "quote": "two months", "status": "verified"}],
        calls=[{"documents": ["lease.pdf"], "prompt_tokens": 9130, "server_prompt_tokens": None,
                "first_token_s": 0.4, "total_s": 1.0}],
        warnings=[],
        position=2,
        id=12,
    )
    return {
        "id": 3,
        "title": "Lease questions",
        "created_at": "2026-11-25T08:00:00+00:00",
        "documents": [{"sha256": "a" * 64, "name": "lease.pdf"}, {"sha256": "b" * 64, "name": "合同.pdf"}],
        "settings": {"model": "qwen3-128k:14b", "think": False},
        "turns": [make_turn(), second],
    }


def test_citations_are_numbered_in_order_of_appearance():
    turn = make_turn()
    pieces, numbered = link_citations(turn["answer"], turn["citations"])
    assert [p for p in pieces if isinstance(p, int)] == [1, 2, 3, 4]
    assert [n.citation["quote"] for n in numbered] == [QUOTE_WITH_MARKDOWN, "keep the roof", "三个月", "three months"]


def test_citation_without_marker_and_marker_without_citation():
    pieces, numbered = link_citations(
        "Said so [bcd-9]. See [the annex].",
        [{"id": "kzt-1", "document": "a.pdf", "page": 1, "quote": "q", "status": "verified"}],
    )
    assert "See [the annex]." in "".join(p for p in pieces if isinstance(p, str))
    assert [(n.number, n.citation["id"], n.citation["status"]) for n in numbered] == [
        (1, "bcd-9", "invalid"),
        (2, "kzt-1", "verified"),
    ]


def test_shouted_ids_and_cjk_brackets_are_markers():
    citations = [
        {"id": "kzt-1", "document": "合同.pdf", "page": 1, "quote": "生效", "status": "verified"},
        {"id": "kzt-2", "document": "合同.pdf", "page": 2, "quote": "租金", "status": "verified"},
    ]
    pieces, numbered = link_citations("合同“生效”【KZT-1】，按月“租金”[kzt-2；kzt-1]。", citations)
    assert pieces == ["合同“生效”", 1, "，按月“租金”", 2, 1, "。"]
    assert len(numbered) == 2


def test_answer_markdown_has_question_answer_and_sources():
    text = answer_markdown(make_turn())
    assert "> Who pays the rent, and when?" in text
    assert 'The lessee pays: "the *lessee* shall pay_rent_ <b>monthly</b>" [1].' in text
    assert '"keep the roof" [2][3].' in text
    assert '"three months" [4].' in text
    assert f"- [1] lease.pdf, p. 1 (passage kzt-1): “{QUOTE_WITH_MARKDOWN}” (verified)" in text
    assert "- [2] lease.pdf, pp. 2-3 (passage kzt-2): “keep the roof” (unverified" in text
    assert "- [3] 合同.pdf, p. vii (passage kzt-3): “三个月” (verified)" in text
    assert "(invalid: no such passage)" in text
    assert "> Note: The server read 12 tokens fewer than Folio sent." in text
    assert "9,120 prompt tokens" in text and "thinking on" in text
    assert "\\*" not in text and "\\_" not in text  # quotes stay verbatim, nothing escaped
    assert "kzt-1]" not in text.split("### Sources")[0]


def test_conversation_markdown_lists_every_turn():
    text = conversation_markdown(make_conversation())
    assert text.startswith("# Lease questions\n")
    assert "Documents: lease.pdf, 合同.pdf" in text
    assert "## Question 1" in text and "## Question 2" in text
    assert text.index("Who pays the rent") < text.index("the deposit")
    assert "Article 1 covers rent." not in text
    assert "Article 1 covers rent." in conversation_markdown(make_conversation(), include_thinking=True)


def body_with_references(document_bytes: bytes) -> list[tuple[str, list[int]]]:
    """(paragraph text, footnote ids referenced in it) for every body paragraph."""
    document = docx.Document(io.BytesIO(document_bytes))
    result = []
    for paragraph in document.paragraphs:
        refs = [int(r.get(f"{W}id")) for r in paragraph._p.iter(f"{W}footnoteReference")]
        result.append((paragraph.text, refs))
    return result


def test_answer_docx_has_real_footnotes_naming_document_and_page():
    data = answer_docx(make_turn())
    paragraphs = body_with_references(data)
    texts = [t for t, _ in paragraphs]
    assert "Who pays the rent, and when?" in texts
    [(first, refs)] = [(t, r) for t, r in paragraphs if t.startswith("The lessee pays")]
    assert first.startswith('The lessee pays: "the *lessee* shall pay_rent_ <b>monthly</b>".')
    assert refs == [1, 2, 3]
    assert [r for t, r in paragraphs if "notice period" in t] == [[4]]

    notes = read_footnotes(data)
    assert notes[1] == f"lease.pdf, p. 1 (passage kzt-1): “{QUOTE_WITH_MARKDOWN}” (verified)"
    assert notes[2].startswith("lease.pdf, pp. 2-3 (passage kzt-2): “keep the roof” (unverified")
    assert notes[3] == "合同.pdf, p. vii (passage kzt-3): “三个月” (verified)"
    assert set(notes) == {1, 2, 3, 4}


def test_docx_package_is_wired_like_word_writes_it():
    data = answer_docx(make_turn())
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        types = package.read("[Content_Types].xml").decode()
        rels = package.read("word/_rels/document.xml.rels").decode()
        footnotes = etree.fromstring(package.read("word/footnotes.xml"))
        settings = etree.fromstring(package.read("word/settings.xml"))
        styles = etree.fromstring(package.read("word/styles.xml"))
    assert 'PartName="/word/footnotes.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"' in types
    assert "relationships/footnotes" in rels and 'Target="footnotes.xml"' in rels
    kinds = [(n.get(f"{W}id"), n.get(f"{W}type")) for n in footnotes.iter(f"{W}footnote")][:2]
    assert kinds == [("-1", "separator"), ("0", "continuationSeparator")]
    assert all(len(list(n.iter(f"{W}footnoteRef"))) == 1 for n in footnotes.iter(f"{W}footnote") if int(n.get(f"{W}id")) > 0)
    children = [c.tag.removeprefix(W) for c in settings]
    assert children.index("footnotePr") < children.index("compat")
    style_ids = {s.get(f"{W}styleId") for s in styles.iter(f"{W}style")}
    assert {"FootnoteText", "FootnoteReference"} <= style_ids


def test_conversation_docx_numbers_footnotes_across_answers():
    data = conversation_docx(make_conversation())
    paragraphs = body_with_references(data)
    assert [r for t, r in paragraphs if t.startswith("The deposit is")] == [[5]]
    assert read_footnotes(data)[5] == "lease.pdf, p. 3 (passage kzt-4): “two months” (verified)"
    document = docx.Document(io.BytesIO(data))
    assert document.core_properties.title == "Lease questions"
    assert "Documents: lease.pdf, 合同.pdf" in [p.text for p in document.paragraphs]


def test_docx_survives_control_characters_and_no_citations():
    turn = make_turn(answer="Page\x0cbreak and a NUL\x00 here.", citations=[], question="Q\x01?")
    data = answer_docx(turn)
    texts = [t for t, _ in body_with_references(data)]
    assert "Page break and a NUL here." in texts  # a form feed is a line break
    assert read_footnotes(data) == {}


def test_history_csv_reads_back_with_pandas():
    frame = pd.read_csv(io.BytesIO(history_csv([make_conversation()])), encoding="utf-8-sig")
    assert len(frame) == 2
    first, second = frame.iloc[0], frame.iloc[1]
    assert first["conversation"] == "Lease questions"
    assert first["question"] == "Who pays the rent, and when?"
    assert first["documents"] == "lease.pdf; 合同.pdf"
    assert (first["citations"], first["verified"], first["unverified"], first["invalid"]) == (4, 2, 1, 1)
    assert (first["prompt_tokens"], first["server_prompt_tokens"], first["first_token_s"]) == (9120, 9108, 2.14)
    assert first["model"] == "qwen3-128k:14b" and bool(first["think"]) is True
    assert second["question"] == "'=1+1 and the deposit?"  # not run as a spreadsheet formula
    assert pd.isna(second["server_prompt_tokens"])
    assert second["turn"] == 2


def test_history_csv_of_nothing_has_the_header():
    frame = pd.read_csv(io.BytesIO(history_csv([])), encoding="utf-8-sig")
    assert len(frame) == 0 and "question" in frame.columns


def test_real_answer_shape_round_trips_through_store_and_exports(tmp_path):
    """The dict lib.asking.answering.Answer.to_json() gives, saved and exported (the contract)."""
    import hashlib

    from lib.asking.answering import Answer
    from lib.asking.citations import verify_citations
    from lib.documents import Block, Document, Extraction
    from lib.library.store import Store
    from lib.reading.passages import build_passages, document_code
    from lib.reading.tokens import get_counter

    pages = [["The lessee shall pay the rent on the first day of each month."], ["A deposit of two months rent."]]
    data = repr(pages).encode()
    sha = hashlib.sha256(data).hexdigest()
    extraction = Extraction("pdf", [Block(t, page=n) for n, page in enumerate(pages, 1) for t in page], pages=2)
    text, passages = build_passages(extraction, document_code(sha), get_counter())
    document = Document("lease.pdf", sha, "pdf", 2, text, passages, sum(p.tokens for p in passages), "exact")
    first, second = passages[0].id, passages[-1].id
    reply = f'Rent is due "on the first day" [{first.upper()}]; the deposit is "three months" [{second}].'
    answer = Answer(question="When is rent due?", answer=reply, citations=verify_citations(reply, [document]),
                    calls=[{"documents": ["lease.pdf"], "prompt_tokens": 321, "first_token_s": 0.5}],
                    think=False, model="qwen3-128k:14b")

    store = Store(tmp_path / "lib")
    store.add_document(document, data)
    conversation = store.create_conversation([sha], "Rent", {"think": False})
    store.add_turn(conversation, answer.question, answer.to_json())
    saved = store.get_conversation(conversation)
    [turn] = saved["turns"]
    assert [c["status"] for c in turn["citations"]] == ["verified", "unverified"]

    text = answer_markdown(turn)
    assert 'Rent is due "on the first day" [1]; the deposit is "three months" [2].' in text
    assert f"[1] lease.pdf, p. 1 (passage {first}" in text and "[2] lease.pdf, p. 2" in text
    assert "qwen3-128k:14b · thinking off" in text
    notes = read_footnotes(conversation_docx(saved))
    assert notes[1].startswith("lease.pdf, p. 1") and notes[2].startswith("lease.pdf, p. 2")
    row = pd.read_csv(io.BytesIO(history_csv([saved])), encoding="utf-8-sig").iloc[0]
    assert (row["citations"], row["verified"], row["model"]) == (2, 1, "qwen3-128k:14b")


def test_a_page_range_under_printed_labels_ends_with_a_printed_label():
    from lib.output.exports import page_text

    assert page_text({"page": 7, "page_end": 8, "page_label": "vii"}) == "pp. vii-viii"
    assert page_text({"page": 2, "page_end": 3, "page_label": None}) == "pp. 2-3"
    assert page_text({"page": None, "page_label": None}) == ""


def interrupted_turn(**changes) -> dict:
    """A stopped turn as lib/output/turns.py saves it (lib's warning repeats the reason)."""
    return make_turn(
        answer='The lessee pays "the *lessee* shall pay_rent_ <b>monthly</b>" [kzt-1] and',
        status="interrupted", interrupted=True, reason="The server dropped the connection.",
        interrupt_reason="The server dropped the connection.",
        warnings=["Interrupted: The server dropped the connection."], **changes,
    )


def test_an_interruption_is_said_once_first_in_every_export():
    turn = interrupted_turn()
    text = answer_markdown(turn)
    assert text.count("dropped the connection") == 1 and text.lower().count("interrupted") == 1
    answer = text.split("## Answer", 1)[1]
    assert answer.lstrip().startswith("**Interrupted.** The server dropped the connection.")
    word = docx.Document(io.BytesIO(answer_docx(turn)))
    paragraphs = [p.text for p in word.paragraphs]
    assert sum("dropped the connection" in p for p in paragraphs) == 1
    after_heading = paragraphs[paragraphs.index("Answer") + 1]
    assert after_heading.startswith("Interrupted. The server dropped the connection.")


def test_a_cut_prompt_is_the_first_thing_an_export_says():
    turn = make_turn(status="prompt_cut", prompt_check={"state": "read_fewer", "sent": 9120, "read": 2048},
                     warnings=["The server did not read what Folio sent: it read 2,048 prompt tokens, Folio counts "
                               "9,120 (7,072 fewer). Part of the documents may have been cut."])
    answer = answer_markdown(turn).split("## Answer", 1)[1].lstrip()
    assert answer.startswith("**Not read whole.** The server read only 2,048 of the 9,120 prompt tokens")
    assert "did not read what Folio sent" not in answer_markdown(turn)  # said once, as the state
    row = pd.read_csv(io.BytesIO(history_csv([{**make_conversation(), "turns": [turn]}])), encoding="utf-8-sig")
    assert row.iloc[0]["status"] == "prompt_cut" and row.iloc[0]["warnings"].startswith("Not read whole: ")


def test_the_csv_writes_whole_numbers_and_every_interrupted_rows_reason():
    stopped = make_turn(answer="", status="stopped", interrupted=True, warnings=[], citations=[],
                        reason="Stopped by you; the part that arrived is kept.", calls=[])
    conversation = {**make_conversation(), "turns": [make_turn(), interrupted_turn(), stopped]}
    raw = history_csv([conversation]).decode("utf-8-sig")
    assert ".0," not in raw  # 9120, not 9120.0
    frame = pd.read_csv(io.StringIO(raw))
    assert list(frame["prompt_tokens"].astype("Int64")) == [9120, 9120, pd.NA]
    assert list(frame["status"]) == ["answered", "interrupted", "stopped"]
    assert list(frame["interrupted"]) == [False, True, True]
    assert frame["warnings"][1] == "Interrupted: The server dropped the connection."  # once, not twice
    assert frame["warnings"][2] == "Stopped by you: The part that arrived is kept."


def test_exports_name_the_model_that_answered_and_time_from_the_question():
    turn = make_turn(model="/models/smollm2-135m.gguf", configured_model="qwen3-128k:14b",
                     server={"display": "llama.cpp server b4567"},
                     timings={"first_token_s": 71.0, "total_s": 73.5, "count_s": 69.1})
    stats = answer_markdown(turn).rstrip().splitlines()[-1]
    assert stats.startswith("_smollm2-135m.gguf (llama.cpp server b4567; Folio was set to qwen3-128k:14b) ·")
    assert "first token 71.0 s · total 73.5 s" in stats  # the answer's timings, not the call's 2.1 s
    row = pd.read_csv(io.BytesIO(history_csv([{**make_conversation(), "turns": [turn]}])), encoding="utf-8-sig").iloc[0]
    assert (row["model"], row["configured_model"], row["server"]) == (
        "/models/smollm2-135m.gguf", "qwen3-128k:14b", "llama.cpp server b4567")
    assert (row["first_token_s"], row["total_s"]) == (71.0, 73.5)

"""Parts of documents as a plan's calls read them: exact counts, cuts at the right places, IDs kept."""

from __future__ import annotations

import pytest

from lib.asking import parts
from lib.asking.packing import first_fit_decreasing, lower_bound
from lib.errors import InputError
from lib.reading.passages import assign_unique_ids
from lib.reading.tokens import get_counter

from answer_fixtures import contract_zh, injection, lease, long_document
from plan_fixtures import markdown_book, mixed_document, plain_book


@pytest.fixture(scope="module")
def markup():
    return parts.MarkupCounter(get_counter("exact"))


def pieces_of(document, room, markup):
    layout = parts.layout_of(document, markup)
    return parts.split_document(document, layout, room, markup)


DOCUMENTS = [lease, contract_zh, injection, mixed_document, markdown_book, plain_book,
             lambda: long_document("long.pdf", 30)]


@pytest.mark.parametrize("make", DOCUMENTS, ids=lambda f: getattr(f, "__name__", "long"))
def test_a_piece_counts_exactly_what_it_renders(make, markup):
    counter = markup.counter
    document = make()
    whole = parts.whole_piece(document, parts.layout_of(document, markup), markup)
    assert whole.tokens == counter.count(parts.render_piece(whole))
    for piece in pieces_of(document, max(400, document.tokens // 3), markup):
        assert piece.tokens == counter.count(parts.render_piece(piece)), piece.name


def test_the_count_adds_up_after_any_text_the_markup_follows(markup):
    """Every inserted line starts with a space: no pre-token joins it to the text before."""
    counter = markup.counter
    endings = ["word", "end.", "“quote”", "12", "trailing  ", "line\n", "para\n\n", "句号。", "x\r", "<|im_end|>", "—"]
    for ending in endings:
        for following in (parts.marker("kzt-12"), " --- page 3 ---\n", parts.FOOTER):
            assert counter.count(ending + following) == counter.count(ending) + counter.count(following), (ending, following)


def test_a_marker_is_counted_from_its_code_and_digits(markup):
    counter = markup.counter
    for passage_id in ("kzt-1", "kzt-17", "kztm-1234567", "bcd-40", "zzz-999"):
        assert markup.marker(passage_id) == counter.count(parts.marker(passage_id))


def test_parts_are_consecutive_keep_their_ids_and_never_cut_a_passage(markup):
    document = assign_unique_ids([markdown_book()])[0]
    room = 1500
    pieces = pieces_of(document, room, markup)
    assert len(pieces) > 2
    assert [p.part for p in pieces] == list(range(1, len(pieces) + 1))
    assert all(p.parts == len(pieces) for p in pieces)
    assert pieces[0].start == 0 and pieces[-1].end == len(document.passages)
    assert all(a.end == b.start for a, b in zip(pieces, pieces[1:]))
    assert all(p.tokens <= room for p in pieces)
    # The same passages, with the IDs the whole document has: a citation means the same thing.
    assert [q for p in pieces for q in p.passages] == document.passages
    rendered = "".join(parts.render_piece(p) for p in pieces)
    for passage in document.passages:
        assert rendered.count(f" [{passage.id}]\n") == 1
        assert f" [{passage.id}]\n{passage.text}" in rendered


def test_parts_begin_at_chapter_headings(markup):
    document = markdown_book()
    pieces = pieces_of(document, 2200, markup)  # about two and a half chapters per call
    assert len(pieces) >= 3
    for piece in pieces[1:]:
        first = piece.passages[0]
        assert first.text.startswith(("Chapter", "Part")), first.text[:40]
        assert piece.section == first.heading and "Chapter" in piece.section


def test_a_plain_text_book_is_cut_at_its_chapter_lines_with_their_path(markup):
    document = plain_book()
    pieces = pieces_of(document, 2200, markup)
    assert len(pieces) >= 3
    for piece in pieces[1:]:
        assert piece.passages[0].text.startswith(("CHAPTER", "BOOK"))
        assert piece.section.startswith("BOOK") and "CHAPTER" in piece.section
        head = parts.render_piece(piece).split("\n", 1)[0]
        assert f'part="{piece.part} of {piece.parts}"' in head
        assert f'section="{piece.section}"' in head
        assert f'passages="{piece.first_id} to {piece.last_id}"' in head


def test_without_headings_a_part_ends_at_a_paragraph_end(markup):
    document = long_document("flat.pdf", 40)
    for piece in pieces_of(document, 900, markup)[:-1]:
        assert piece.passages[-1].text.endswith("\n\n")


@pytest.mark.parametrize("depth,line", [(3, "CHAPTER IV"), (1, "BOOK ONE: 1805"), (4, "SEC. 13101. CLEAN VEHICLES"),
                                        (3, "第三章 合同的效力"), (1, "TITLE I—COMMITTEE ON FINANCE"),
                                        (None, "‘‘SEC. 56A. ADJUSTED INCOME."), (None, "The chapter ends here."),
                                        (None, "CHAPTER " + "X" * 120)])
def test_heading_like_lines(depth, line):
    assert parts.heading_depth(line) == depth


def test_a_passage_larger_than_a_call_is_refused_by_name(markup):
    document = long_document("dense.pdf", 3, words=250)
    with pytest.raises(InputError, match=r"dense\.pdf: passage \[[a-z]+-1\] alone takes"):
        pieces_of(document, 120, markup)


def test_pages_of_a_part_are_in_its_header():
    markup = parts.MarkupCounter(get_counter("exact"))
    from answer_fixtures import make_document

    pages = [[f"Page {n} paragraph {k}: " + "rent is due " * 30 for k in range(3)] for n in range(1, 9)]
    document = make_document("paged.pdf", pages)
    pieces = pieces_of(document, 700, markup)
    assert len(pieces) > 2
    second = pieces[1]
    first_page, last_page = second.pages
    head = parts.header(second)
    assert f'pages="{first_page}-{last_page} of 8"' in head or f'pages="{first_page} of 8"' in head
    rendered = parts.render_piece(second)
    assert rendered.split("\n")[1] == f" --- page {second.passages[0].page} ---"  # a part opens with its page


# ----------------------------------------------------------------------------- packing


def test_first_fit_decreasing_packs_every_item_once_within_capacity():
    items = [(f"d{i}", size) for i, size in enumerate([70, 50, 40, 30, 30, 20, 20, 10, 5, 95, 60])]
    bins = first_fit_decreasing(items, 100)
    sizes = dict(items)
    assert sorted(k for b in bins for k in b) == sorted(sizes)
    assert all(sum(sizes[k] for k in b) <= 100 for b in bins)
    assert len(bins) == lower_bound(list(sizes.values()), 100)  # 430 / 100 -> 5, and FFD finds 5
    assert first_fit_decreasing(items, 100) == bins  # the same selection packs the same way


def test_an_item_larger_than_the_capacity_is_an_error():
    with pytest.raises(ValueError):
        first_fit_decreasing([("big", 101)], 100)

"""The document list a page at a time, as the Library and Ask pages show it.

Filters (name, collection, format, sort), one page of a table with a tick column, the
pagination under it, and the count and tokens of everything that matches. Nothing here
loads the whole library: a page is one SQL query (Store.list_documents_page) and so are
its totals, so 10,000 documents list as fast as 10. The tick column is the only editable
column of a data editor: a person ticks documents on several pages, and the caller keeps
what is ticked (the Library's ticks, the Ask page's chosen documents).

    f = filter_controls("lib", collections, formats)          # widgets; a ListFilter
    page = fetch_page(f, page_number("lib-page-" + f.signature()))
    changes = tick_table(page.documents, ticked, key=..., tick="✓")   # [(sha256, ticked?)]
    pager("lib-page-" + f.signature(), page)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from lib.errors import FolioError
from lib.library.catalog import MAX_PAGE, DocumentPage
from lib.output import presenting as view
from ui.resources import store

PAGE_SIZE = 50
"""Rows of one page of the list: what a person reads at a glance, one query whatever the library's size."""
SORTS = {"added": "Newest first", "name": "Name", "tokens": "Most tokens", "pages": "Most pages"}
ALL = None  # the collection filter's "every document" option


@dataclass(frozen=True)
class ListFilter:
    """What the list shows: documents whose name contains `name`, in `collection` (an id),
    of one of `formats`, sorted by `sort`; `within`: only these documents (the chosen ones)."""

    name: str = ""
    collection: int | None = None
    formats: tuple[str, ...] = ()
    sort: str = "added"
    within: tuple[str, ...] | None = None

    @property
    def narrowed(self) -> bool:
        """Whether the list shows less than the whole library."""
        return bool(self.name.strip() or self.collection is not None or self.formats or self.within is not None)

    def signature(self) -> str:
        """Short and stable for these filters (not for the documents `within`): a widget key part,
        so the list starts again at page 1 when a filter changes."""
        text = repr((" ".join(self.name.split()).casefold(), self.collection, self.formats, self.sort,
                     self.within is not None))
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


# --- filters ------------------------------------------------------------------------


def filter_controls(prefix: str, collections: list, formats: dict[str, int]) -> ListFilter:
    """Name, collection, format and sort widgets in one row (keys start with `prefix`)."""
    ids = [c.id for c in collections]
    names = {c.id: c.name for c in collections}
    _drop_stale(f"{prefix}-collection", [ALL, *ids])
    _drop_stale_many(f"{prefix}-formats", list(formats))
    cols = st.columns([3, 3, 2, 2], vertical_alignment="bottom")
    name = cols[0].text_input("Name contains", key=f"{prefix}-name", placeholder="Part of a file name")
    collection = cols[1].selectbox(
        "Collection", [ALL, *ids], key=f"{prefix}-collection",
        format_func=lambda cid: "All documents" if cid is ALL else names.get(cid, "?"),
    )
    chosen_formats = cols[2].multiselect(
        "Format", list(formats), key=f"{prefix}-formats", placeholder="Any format",
        format_func=lambda f: f"{f.upper()} ({formats.get(f, 0):,})",
    )
    sort = cols[3].selectbox("Sort", list(SORTS), key=f"{prefix}-sort", format_func=SORTS.get)
    return ListFilter(name=name or "", collection=collection, formats=tuple(chosen_formats), sort=sort or "added")


def _drop_stale(key: str, options: list) -> None:
    """A choice that no longer exists (a collection deleted in another tab) goes back to the default."""
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]


def _drop_stale_many(key: str, options: list) -> None:
    if key in st.session_state and any(value not in options for value in st.session_state[key] or []):
        st.session_state[key] = [value for value in st.session_state[key] if value in options]


# --- one page -----------------------------------------------------------------------


def page_number(key: str) -> int:
    """The page the pager under the list shows (1 before it was ever used)."""
    value = st.session_state.get(key, 1)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def fetch_page(f: ListFilter, page: int, size: int = PAGE_SIZE) -> DocumentPage:
    """One page of the filtered list (page 1 when `page` is past the end), with its totals."""
    try:
        result = _page(f, (page - 1) * size, size)
        if page > 1 and not result.documents:
            result = _page(f, 0, size)
    except FolioError as exc:  # a name filter no document can contain (a NUL), a collection gone
        st.error(view.escape_markdown(exc.message), icon=":material/error:")
        return DocumentPage([], 0, 0, 0, size)
    return result


def _page(f: ListFilter, offset: int, limit: int) -> DocumentPage:
    if f.within is not None:
        return _page_within(f, offset, limit)
    return store().list_documents_page(name=f.name, collection=f.collection, formats=f.formats, sort=f.sort,
                                       offset=offset, limit=limit)


def _page_within(f: ListFilter, offset: int, limit: int) -> DocumentPage:
    """A page of the chosen documents (at most the selection: filtered and sorted here)."""
    rows = _filtered_within(f)
    return DocumentPage(rows[offset:offset + limit], len(rows), sum(r.tokens for r in rows), offset, limit)


def _filtered_within(f: ListFilter) -> list:
    rows = store().document_summaries(list(f.within or ()))
    needle = " ".join(f.name.split()).casefold()
    if needle:
        rows = [r for r in rows if needle in r.name.casefold()]
    if f.formats:
        rows = [r for r in rows if r.format in f.formats]
    if f.collection is not None:
        members = set(store().collection_shas(f.collection))
        rows = [r for r in rows if r.sha256 in members]
    keys = {
        "added": (lambda r: r.added_at, True),
        "name": (lambda r: r.name.casefold(), False),
        "tokens": (lambda r: r.tokens, True),
        "pages": (lambda r: r.pages or 0, True),
    }
    key, descending = keys.get(f.sort, keys["added"])
    return sorted(rows, key=key, reverse=descending)


def all_matching(f: ListFilter) -> list[str]:
    """SHA-256 of every document the filter matches, in the list's order (a page of 1,000 at a time)."""
    if f.within is not None:
        return [r.sha256 for r in _filtered_within(f)]
    shas: list[str] = []
    while True:
        result = _page(f, len(shas), MAX_PAGE)
        shas += [d.sha256 for d in result.documents]
        if not result.documents or len(shas) >= result.total:
            return shas


def library_formats() -> dict[str, int]:
    """Format -> number of documents: for the format filter, and (summed) the library's size, in one query."""
    try:
        return store().document_formats()
    except FolioError as exc:
        st.error(view.escape_markdown(exc.message), icon=":material/error:")
        return {}


def library_total() -> int:
    """How many documents the library holds (one COUNT query)."""
    try:
        return store().list_documents_page(limit=1).total
    except FolioError as exc:
        st.error(view.escape_markdown(exc.message), icon=":material/error:")
        return 0


def totals_caption(result: DocumentPage, f: ListFilter, library_size: int, noun: str = "document") -> str:
    """'120 of 2,000 documents match, 1,234,567 tokens; 51-100 shown.'"""
    if f.narrowed:
        head = f"{result.total:,} of {library_size:,} {noun}s match" if f.within is None else view.count_noun(result.total, noun)
    else:
        head = view.count_noun(result.total, noun)
    text = f"{head}, {result.tokens:,} tokens"
    if result.pages > 1:
        first = result.offset + 1
        text += f"; {first:,}-{result.offset + len(result.documents):,} shown"
    return text + "."


# --- the table ------------------------------------------------------------------------


COMPACT = ("Document", "Format", "Pages", "Tokens", "Added")
"""The columns of a list for choosing (the Ask page); the Library shows every column."""


def tick_table(rows: list, ticked, *, key: str, tick: str, tick_help: str, collections: dict | None = None,
               columns: tuple[str, ...] | None = None) -> list[tuple[str, bool]]:
    """The page's documents with a tick column; returns the ticks the user changed: [(sha256, ticked)]."""
    frame = pd.DataFrame(
        [
            {
                tick: row.sha256 in ticked,
                "Document": row.name,
                "Format": row.format.upper(),
                "Pages": f"{row.pages:,}" if row.pages else "–",  # Markdown, DOCX: no pages (not "None")
                "Tokens": row.tokens,
                "Count": row.counter,
                "Passages": row.passages,
                "Warnings": len(row.warnings),
                **({"Collections": ", ".join(collections.get(row.sha256, []))} if collections is not None else {}),
                "Added": row.added_at[:16].replace("T", " "),
            }
            for row in rows
        ],
        columns=[tick, "Document", "Format", "Pages", "Tokens", "Count", "Passages", "Warnings",
                 *(["Collections"] if collections is not None else []), "Added"],
    )
    if columns is not None:
        frame = frame[[tick, *columns]]
    st.data_editor(
        frame,
        key=key,
        hide_index=True,
        width="stretch",
        disabled=[c for c in frame.columns if c != tick],
        column_config={
            tick: st.column_config.CheckboxColumn(tick, help=tick_help, width="small"),
            "Tokens": st.column_config.NumberColumn(format="localized", help="Qwen3 tokens of the whole document"),
            "Passages": st.column_config.NumberColumn(format="localized"),
            "Count": st.column_config.TextColumn(help="exact: Qwen3's own tokenizer; estimate: an upper bound"),
            "Pages": st.column_config.TextColumn(help="Pages of PDFs (and of DOCX/EPUB when they say)", alignment="right"),
        },
    )
    return _tick_changes(st.session_state.get(key), rows, tick)


def _tick_changes(state, rows: list, tick: str) -> list[tuple[str, bool]]:
    changes = []
    for index, change in ((state or {}).get("edited_rows") or {}).items():
        position = int(index)
        if tick in change and 0 <= position < len(rows):
            changes.append((rows[position].sha256, bool(change[tick])))
    return changes


def ticked_after(ticked: list[str], changes: list[tuple[str, bool]]) -> list[str]:
    """The ticked list after the table's tick changes (newly ticked appended, in order)."""
    ticked = list(ticked)
    for sha, on in changes:
        if on and sha not in ticked:
            ticked.append(sha)
        elif not on and sha in ticked:
            ticked.remove(sha)
    return ticked


def pager(key: str, result: DocumentPage) -> None:
    """Page buttons under the list (none when everything fits one page)."""
    if result.pages > 1:
        st.pagination(result.pages, key=key, max_visible_pages=9)

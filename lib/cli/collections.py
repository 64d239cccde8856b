"""`python -m lib collections [list|create|rename|delete|add|remove|show] ... [--json]` (keep it stable).

    python -m lib collections                                   # list: name, documents, tokens, size
    python -m lib collections create "Smith v Jones"
    python -m lib collections add "Smith v Jones" 3f2a9c41 "judgment.pdf"   # SHA-256, a prefix of 8+, or a name
    python -m lib collections show "Smith v Jones" --filter lease --limit 20 --json
    python -m lib collections rename "Smith v Jones" "Smith (appeal)"
    python -m lib collections remove "Smith (appeal)" 3f2a9c41
    python -m lib collections delete "Smith (appeal)"            # its documents stay in the library

JSON (one object on stdout): list {"collections": [C]}; create and rename {"collection": C};
delete {"deleted": true, "name"}; add {"collection": C, "added": n}; remove {"collection": C,
"removed": n}; show {"collection": C, "documents": [{"sha256", "name", "format", "pages",
"tokens", "passages", "added_at"}], "total", "tokens", "offset", "limit"}; where C is
{"id", "name", "documents", "tokens", "size", "created_at", "updated_at"}.
Exit status 0, or 2 for a collection or document that does not exist, a name already taken.
"""

from __future__ import annotations

import argparse
import json

from ..library.catalog import SORTS, Collection
from ..library.store import open_store
from .ingest import _width, _write_stdout

ACTIONS = ("list", "create", "rename", "delete", "add", "remove", "show")


def add_parser(subparsers) -> None:
    """Register `collections`."""
    parser = subparsers.add_parser(
        "collections",
        help="named groups of stored documents: list, create, rename, delete, add, remove, show",
        description="Manage collections: named groups of documents in the library (FOLIO_DATA_DIR). "
        "A document can be in several; deleting a collection keeps its documents.",
    )
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="every collection with its documents, tokens and size")
    for name, helptext in (("create", "a new, empty collection"), ("delete", "delete a collection (its documents stay)")):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("name", metavar="NAME")
    rename = actions.add_parser("rename", help="give a collection a new name")
    rename.add_argument("name", metavar="NAME")
    rename.add_argument("new_name", metavar="NEW_NAME")
    for name, helptext in (("add", "add stored documents"), ("remove", "take documents out (they stay in the library)")):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("name", metavar="NAME")
        action.add_argument("documents", nargs="+", metavar="DOCUMENT",
                            help="SHA-256, a unique prefix of 8 or more hex digits, or a document name")
    show = actions.add_parser("show", help="the collection's documents, a page at a time")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--filter", default="", help="only documents whose name contains this text")
    show.add_argument("--format", action="append", default=[], help="only this format (pdf, docx, epub, html, text, markdown); repeatable")
    show.add_argument("--sort", choices=tuple(SORTS), default="name")
    show.add_argument("--offset", type=int, default=0)
    show.add_argument("--limit", type=int, default=50)
    for action in actions.choices.values():
        action.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print exactly one JSON object on stdout")
    parser.set_defaults(handler=run, action=None)


def collection_json(collection: Collection) -> dict:
    return {
        "id": collection.id, "name": collection.name, "documents": collection.documents, "tokens": collection.tokens,
        "size": collection.size, "created_at": collection.created_at, "updated_at": collection.updated_at,
    }


def run(args) -> int:
    store = open_store()
    action = args.action or "list"
    data, text = HANDLERS[action](store, args)
    if args.json:
        _write_stdout(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        _write_stdout(text)
    return 0


def _list(store, args) -> tuple[dict, str]:
    collections = store.list_collections()
    data = {"collections": [collection_json(c) for c in collections]}
    if not collections:
        return data, "No collections yet. Create one: python -m lib collections create NAME\n"
    rows = [("collection", "documents", "tokens", "size")] + [
        (c.name, f"{c.documents:,}", f"{c.tokens:,}", _size(c.size)) for c in collections
    ]
    return data, _table(rows)


def _create(store, args) -> tuple[dict, str]:
    collection = store.create_collection(args.name)
    return {"collection": collection_json(collection)}, f"Created collection {collection.name}.\n"


def _rename(store, args) -> tuple[dict, str]:
    collection = store.rename_collection(args.name, args.new_name)
    return {"collection": collection_json(collection)}, f"Renamed {args.name} to {collection.name}.\n"


def _delete(store, args) -> tuple[dict, str]:
    collection = store.get_collection(args.name)  # CollectionError (exit 2) when there is none
    store.delete_collection(collection.id)
    text = f"Deleted collection {collection.name}; its {collection.documents:,} documents stay in the library.\n"
    return {"deleted": True, "name": collection.name}, text


def _add(store, args) -> tuple[dict, str]:
    shas = store.resolve_documents(args.documents)
    added = store.add_to_collection(args.name, shas)
    collection = store.get_collection(args.name)
    text = f"Added {added:,} documents to {collection.name} ({len(shas) - added:,} were in it already); it holds {collection.documents:,}.\n"
    return {"collection": collection_json(collection), "added": added}, text


def _remove(store, args) -> tuple[dict, str]:
    shas = store.resolve_documents(args.documents)
    removed = store.remove_from_collection(args.name, shas)
    collection = store.get_collection(args.name)
    text = f"Removed {removed:,} documents from {collection.name} (they stay in the library); it holds {collection.documents:,}.\n"
    return {"collection": collection_json(collection), "removed": removed}, text


def _show(store, args) -> tuple[dict, str]:
    collection = store.get_collection(args.name)
    page = store.list_documents_page(collection=collection.id, name=args.filter, formats=args.format, sort=args.sort,
                                     offset=args.offset, limit=args.limit)
    documents = [
        {"sha256": d.sha256, "name": d.name, "format": d.format, "pages": d.pages, "tokens": d.tokens,
         "passages": d.passages, "added_at": d.added_at}
        for d in page.documents
    ]
    data = {"collection": collection_json(collection), "documents": documents, "total": page.total,
            "tokens": page.tokens, "offset": page.offset, "limit": page.limit}
    rows = [("document", "format", "pages", "tokens", "sha256")] + [
        (d.name, d.format, "-" if d.pages is None else f"{d.pages:,}", f"{d.tokens:,}", d.sha256[:12]) for d in page.documents
    ]
    shown = f"{page.offset + 1:,}-{page.offset + len(page.documents):,}" if page.documents else "none"
    head = (f"{collection.name}: {collection.documents:,} documents, {collection.tokens:,} tokens. "
            f"Showing {shown} of {page.total:,} matching ({page.tokens:,} tokens).\n")
    return data, head + (_table(rows) if page.documents else "")


HANDLERS = {"list": _list, "create": _create, "rename": _rename, "delete": _delete, "add": _add, "remove": _remove,
            "show": _show}


def _size(size: int) -> str:
    if size >= 100_000:
        return f"{size / 1e6:,.1f} MB"
    return f"{size / 1e3:,.0f} kB" if size >= 1000 else f"{size} B"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = []
        for i, (cell, width) in enumerate(zip(row, widths)):
            pad = " " * (width - _width(cell))
            cells.append(cell + pad if i == 0 or not cell[:1].isdigit() and cell != "-" else pad + cell)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"

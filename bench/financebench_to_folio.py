"""Convert FinanceBench's JSONL into Folio's evaluation format (then: python -m lib eval OUT.jsonl).

    .venv/bin/python bench/financebench_to_folio.py financebench_open_source.jsonl --pdfs pdfs/ -o fb.jsonl
    .venv/bin/python -m lib eval fb.jsonl --html fb.html

FinanceBench (patronus-ai/financebench) gives per line: question, answer, doc_name and
evidence [{evidence_text, doc_name, evidence_page_num}], where evidence_page_num is the 0-based
physical page index; Folio's pages count from 1, so each page becomes evidence_page_num + 1.
Documents are `<pdfs>/<doc_name>.pdf`, written relative to the output file. Lines whose PDF is
missing are left out and counted on stderr (FinanceBench names 360 filings; few people have all).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def convert_line(data: dict, pdfs: Path, out_dir: Path) -> dict | None:
    """One FinanceBench record as a Folio question, or None when its PDF is not there."""
    name = f"{data['doc_name']}.pdf"
    path = pdfs / name
    if not path.is_file():
        return None
    evidence = []
    for item in data.get("evidence") or []:
        document = f"{item.get('doc_name') or data['doc_name']}.pdf"
        if document != name:
            continue  # evidence from another filing is not in this question's documents
        page = item.get("evidence_page_num")
        evidence.append({
            "document": name,
            "page": int(page) + 1 if isinstance(page, int) else None,  # 0-based in FinanceBench
            "text": item.get("evidence_text") or "",
        })
    return {
        "id": data.get("financebench_id"),
        "documents": [os.path.relpath(path, out_dir)],
        "question": data["question"],
        "answers": [data["answer"]],
        "evidence": evidence,
        "answerable": True,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", help="FinanceBench JSONL (e.g. data/financebench_open_source.jsonl)")
    parser.add_argument("--pdfs", required=True, help="folder holding the filings as <doc_name>.pdf")
    parser.add_argument("-o", "--output", required=True, help="Folio dataset to write (.jsonl)")
    args = parser.parse_args(argv)
    out = Path(args.output)
    pdfs = Path(args.pdfs)
    if not pdfs.is_dir():
        print(f"{pdfs}: no such folder; give the folder of FinanceBench's PDFs with --pdfs.", file=sys.stderr)
        return 2
    written = skipped = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.source, encoding="utf-8") as source, out.open("w", encoding="utf-8") as target:
        for line in source:
            if not line.strip():
                continue
            item = convert_line(json.loads(line), pdfs, out.parent.resolve())
            if item is None:
                skipped += 1
                continue
            target.write(json.dumps(item, ensure_ascii=False) + "\n")
            written += 1
    print(f"wrote {written} question(s) to {out}; {skipped} left out (PDF not in {pdfs})", file=sys.stderr)
    return 0 if written else 2


if __name__ == "__main__":
    sys.exit(main())

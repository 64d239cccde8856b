"""`python -m lib ingest PATH... --collection NAME`: store the documents and add them to a collection, as a job.

    python -m lib ingest matter/ bundle.zip --collection "Smith v Jones"    # progress on stderr
    ^C                                                                    # cancels; what is stored stays
    python -m lib ingest matter/ bundle.zip --collection "Smith v Jones"    # resumes: stored files are not read again

Exit status: 0 every document was read, 2 some could not be (the others are stored and
added), 130 the job was stopped before the end (Ctrl-C, or cancel/pause from another
process); running the same command again resumes it.
"""

from __future__ import annotations

import json
import sys

from ..config import load_settings
from ..library.ingestion import create_ingest_job, find_ingest_job, ingest_outcome
from ..library.jobs import Jobs
from ..library.store import open_store
from . import ingest as plain
from .progress import JobProgress

EXIT_STOPPED = 130


def extend_parser(parser) -> None:
    """Add --collection to the `ingest` parser; without it `ingest` runs as before."""
    parser.add_argument("--collection", metavar="NAME",
                        help="store the documents in the library (FOLIO_DATA_DIR) and add them to this collection "
                        "(created if needed); runs as a job: Ctrl-C stops it, the same command resumes it")
    parser.set_defaults(handler=run_command)


def run_command(args) -> int:
    if args.collection is None:
        return plain.run(args)
    return run(args, load_settings())


def run(args, settings) -> int:
    """Run (or resume) the ingest job of these paths and this collection; print the report."""
    store = open_store(settings.data_dir)
    jobs = Jobs(store)
    existing = find_ingest_job(store, args.files, collection=args.collection)
    if existing is not None:
        job_id = existing.id
        print(f"Resuming job {job_id} ({existing.state}): {existing.done} of {existing.total or '?'} done before.",
              file=sys.stderr, flush=True)
    else:
        job_id = create_ingest_job(store, args.files, collection=args.collection)
    progress = JobProgress()
    try:
        info = jobs.run(job_id, options={"password": args.password, "file_progress": progress.page}, progress=progress)
    except KeyboardInterrupt:
        progress.close()
        info = jobs.get(job_id)
        print(f"folio: cancelled; {info.done} of {info.total or '?'} done and kept. "
              "Run the same command again to resume.", file=sys.stderr)
        return EXIT_STOPPED
    progress.close()
    if info.state in ("cancelled", "paused"):
        print(f"folio: the job was {info.state} from elsewhere; {info.done} of {info.total or '?'} done and kept. "
              "Run the same command again to resume.", file=sys.stderr)
        return EXIT_STOPPED
    if info.state == "failed":
        print(f"folio: {info.error}", file=sys.stderr)
        return 1
    return _report(store, info, args, settings)


def _report(store, info, args, settings) -> int:
    outcome = ingest_outcome(store, info.id)
    shas = list(dict.fromkeys(d["sha256"] for d in outcome.documents))
    documents = store.get_documents(shas)
    statuses = {d["sha256"]: d for d in outcome.documents}
    budget = plain._budget(plain.IngestReport(documents=documents), settings)
    collection = store.get_collection(outcome.collection) if outcome.collection else None
    if args.json:
        data = {
            "documents": [_document_json(d, statuses[d.sha256], args.passages) for d in documents],
            "errors": [{"name": label, "message": message} for label, message in outcome.errors],
            "budget": budget.to_json(),
            "skipped": [{"name": label, "reason": reason} for label, reason in outcome.skipped],
            "collection": _collection_json(collection),
            "job": info.to_json(),
        }
        plain._write_stdout(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        report = plain.IngestReport(documents=documents, errors=list(outcome.errors))
        text = plain.render_table(report, budget, passages=args.passages)
        text += "".join(f"skipped: {label}: {reason}\n" for label, reason in outcome.skipped)
        if collection is not None:
            added = sum(1 for d in outcome.documents if d["status"] == "added")
            text += (f"Collection {collection.name}: {collection.documents:,} documents, {collection.tokens:,} tokens "
                     f"({added:,} newly stored, {len(shas) - added:,} already in the library).\n")
        plain._write_stdout(text)
    return plain.EXIT_OK if not outcome.errors else plain.EXIT_UNREADABLE


def _document_json(document, status: dict, passages: bool) -> dict:
    data = plain.document_json(document, passages=passages)
    data["status"] = status["status"]
    data["label"] = status["label"]
    return data


def _collection_json(collection) -> dict | None:
    if collection is None:
        return None
    return {"id": collection.id, "name": collection.name, "documents": collection.documents, "tokens": collection.tokens}

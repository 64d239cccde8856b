"""Ingesting many files: into the store as a job ("ingest"), or read only (nothing stored).

    job_id = create_ingest_job(store, ["matter/", "bundle.zip"], collection="Smith v Jones")
    Jobs(store).run(job_id, options={"password": None})    # or .start(job_id) in the app
    outcome = ingest_outcome(store, job_id)                  # documents, errors, skipped, collection

    report, skipped = read_sources(expand_paths(paths, settings), settings=settings)   # read only

The job lists its sources (files, folders recursively, .zip members: see sources.py) each
time it runs, so a resumed job also sees files added since; each source is one item keyed
by its path (and member). An item reads the bytes, skips what is not a document (found in
a folder or archive), and stores the document unless a document with the same SHA-256 is
stored already, in which case the file is not read again (no extraction, no OCR); either
way the document is added to the collection. A file that cannot be read is a failed item
with the reason (tried again when the job resumes); the others go on.

Job parameters (JSON): {"paths": [absolute paths], "collection": name or null}. Runtime
options (not stored): {"password": for encrypted PDFs, "file_progress": callable(label,
stage, done, total) for page-by-page progress}.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..config import Settings, load_settings
from ..errors import DocumentError, FolioError
from ..reading.ingest import IngestReport, ingest_bytes
from ..reading.passages import assign_unique_ids
from .jobs import JobContext, Jobs, register_kind
from .sources import Expansion, Source, expand_paths

KIND = "ingest"


def job_key(paths: Sequence[str], collection: str | None) -> str:
    """The same command (same paths, same collection) finds its job again."""
    text = json.dumps({"paths": list(paths), "collection": collection}, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ingest_params(paths: Sequence[str | os.PathLike], collection: str | None) -> dict:
    return {"paths": [os.path.abspath(p) for p in paths], "collection": collection}


def create_ingest_job(store, paths: Sequence[str | os.PathLike], *, collection: str | None = None,
                      title: str | None = None) -> int:
    """A queued ingest job for these paths (resume an unfinished one instead: see find_ingest_job)."""
    params = ingest_params(paths, collection)
    title = title or _title(params)
    return Jobs(store).create(KIND, title, params, key=job_key(params["paths"], collection))


def find_ingest_job(store, paths: Sequence[str | os.PathLike], *, collection: str | None = None):
    """The unfinished ingest job of exactly these paths and collection (JobInfo), or None."""
    params = ingest_params(paths, collection)
    return Jobs(store).find(KIND, job_key(params["paths"], collection))


def _title(params: dict) -> str:
    names = [os.path.basename(p.rstrip(os.sep)) or p for p in params["paths"]]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    into = f" into {params['collection']}" if params.get("collection") else ""
    return f"Add {shown}{into}"


# ---------------------------------------------------------------- the job


def run_ingest(job: JobContext) -> dict:
    """The work function of "ingest" jobs."""
    settings = load_settings()
    collection = job.params.get("collection")
    if collection:
        collection = job.store.ensure_collection(collection).name
    found = expand_paths(job.params["paths"], settings)
    job.set_total(len(found.sources) + len(found.skipped) + len(found.errors), work=found.size + len(found.skipped) + len(found.errors))
    for label, reason in found.skipped:
        if not job.is_finished(f"skip:{label}"):
            job.record(f"skip:{label}", {"label": label, "skipped": reason}, label=label)
    job.discard_failures([s.key for s in found.sources] + [f"error:{label}" for label, _m in found.errors])
    for label, message in found.errors:
        job.record_failure(f"error:{label}", message, label=label)
    for source in job.pending(found.sources, key=lambda s: s.key):
        with job.item(source.key, label=source.label, work=source.size or 1) as item:
            item.result = _ingest_source(job, source, collection, settings)
    counts: dict[str, int] = {}
    for result in job.results().values():
        status = "skipped" if result and "skipped" in result else (result or {}).get("status", "")
        counts[status] = counts.get(status, 0) + 1
    return {"collection": collection, "added": counts.get("added", 0), "existing": counts.get("existing", 0),
            "skipped": counts.get("skipped", 0), "failed": len(job.failures())}


def _ingest_source(job: JobContext, source: Source, collection: str | None, settings: Settings) -> dict:
    try:
        data = source.read(settings)
        reason = source.non_document(data)
        if reason:
            return {"label": source.label, "skipped": reason}
        sha = hashlib.sha256(data).hexdigest()
        status = "existing"
        if not job.store.has_document(sha):
            progress = job.options.get("file_progress")
            per_file = (lambda stage, done, total: progress(source.label, stage, done, total)) if progress else None
            document = ingest_bytes(data, source.name, password=job.options.get("password"), settings=settings, progress=per_file)
            _stored, is_new = job.store.add_document(document, data)
            status = "added" if is_new else "existing"
        if collection:
            job.store.add_to_collection(collection, [sha])
        return {"label": source.label, "name": source.name, "sha256": sha, "status": status}
    except DocumentError as exc:
        raise DocumentError(source.label, exc.problem, exc.action) from exc


register_kind(KIND, run_ingest)


@dataclass
class IngestOutcome:
    """What an ingest job did, for a report: documents by status, errors, skipped entries."""

    documents: list[dict] = field(default_factory=list)
    """{"label", "name", "sha256", "status": "added" | "existing"} in the order they finished."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    collection: str | None = None


def ingest_outcome(store, job_id: int) -> IngestOutcome:
    jobs = Jobs(store)
    info = jobs.get(job_id)
    outcome = IngestOutcome(collection=(info.result or {}).get("collection") or info.params.get("collection"))
    for item in jobs.items(job_id, limit=10_000_000):
        if item.status == "failed":
            outcome.errors.append((item.label, item.error))
        elif item.result and "skipped" in item.result:
            outcome.skipped.append((item.result["label"], item.result["skipped"]))
        elif item.result:
            outcome.documents.append(item.result)
    return outcome


# ---------------------------------------------------------------- read only (nothing stored)


def read_sources(found: Expansion, *, password: str | None = None, settings: Settings | None = None,
                 progress: Callable[[str, str, int, "int | None"], None] | None = None) -> tuple[IngestReport, list]:
    """Read every source (nothing stored): the report (documents, errors) and what was skipped."""
    settings = settings or load_settings()
    report = IngestReport(errors=list(found.errors))
    skipped = list(found.skipped)
    for source in found.sources:
        try:
            data = source.read(settings)
            reason = source.non_document(data)
            if reason:
                skipped.append((source.label, reason))
                continue
            per_file = (lambda stage, done, total, _l=source.label: progress(_l, stage, done, total)) if progress else None
            report.documents.append(ingest_bytes(data, source.name, password=password, settings=settings, progress=per_file))
        except DocumentError as exc:
            report.errors.append((source.label, _labelled(exc, source.label)))
        except FolioError as exc:
            report.errors.append((source.label, f"{source.label}: {exc}"))
    report.documents = assign_unique_ids(report.documents)
    return report, skipped


def _labelled(exc: DocumentError, label: str) -> str:
    if exc.name == label:
        return str(exc)
    text = f"{label}: {exc.problem}"
    return f"{text} {exc.action}" if exc.action else text

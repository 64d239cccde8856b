"""reading: bytes in, `Document` out.

Owns everything between a file on disk and a document Folio can cite: the format decided
by the bytes (`sniff.py`), the guards (`guards.py`: size, zip bombs, the memory budget,
the per-document deadline), the format readers (`pdf.py`, `docx.py`, `markup.py` for
EPUB and HTML, `text.py` for text and Markdown), OCR (`ocr.py` Tesseract and languages,
`ocr_look.py` text or picture, `ocr_pages.py` which pages in which languages,
`ocr_engine.py` tesseract processes in parallel), `mupdf_blocks.py` (text blocks without
pymupdf 1.28's reference leak), the dispatcher
(`extract.py`), exact Qwen3 token counts (`tokens.py`), passages and their IDs
(`passages.py`), and ingestion of bytes and paths (`ingest.py`: regular files only, read
up to the size limit, one deadline for every stage). `mupdf_lock.py` is the
one lock around PyMuPDF, shared with the page images of lib.output.

Public: `ingest.ingest_bytes`, `ingest.ingest_paths`, `extract.extract`,
`tokens.get_counter`, `passages.assign_unique_ids`, `passages.document_code`.

May import: the shared ground (lib.config, lib.errors, lib.documents) only.
"""

"""Running Tesseract on page images: several pages at once, each in its own process.

    engine = open_engine(workers=2)          # the tesseract program, or pymupdf's copy
    while engine.free: engine.submit(OcrJob(number, page, "eng", 300))
    for done in engine.wait(timeout=5.0):    # OcrDone(number, language, blocks, confidence, error)
        ...
    engine.close()                           # kills whatever still runs (deadline, cancel)

`CommandEngine` renders each page in the calling thread (MuPDF is not thread-safe), hands
the grey image to a `tesseract` process on its stdin and reads TSV from its stdout; a
thread per process waits for it, so the caller can wait for the first page done, with a
timeout, and kill them all when the document's time is up or the reading is cancelled.
Each process gets OMP_THREAD_LIMIT=1: pages in parallel use the cores, and Tesseract's own
OpenMP threads on top made one page 6-12x slower on the 2-core machine.

`PymupdfEngine` is the fallback when only the language data is installed: one page at a
time, in this process, through the Tesseract that pymupdf links.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from dataclasses import dataclass, field

import pymupdf
import regex

from . import ocr

PSM = "6"
"""One uniform block of text, as the Tesseract inside pymupdf reads a page: the words Folio
found before stay the same. Automatic layout (3) read three-column pages better but cut
lines short on a noisy 1871 scan (bleed-through taken for column gaps)."""
TEXT_FLAGS = pymupdf.TEXTFLAGS_TEXT & ~pymupdf.TEXT_PRESERVE_IMAGES

@dataclass
class OcrJob:
    number: int
    """Page number, from 1."""
    page: object
    """The pymupdf page (rendered by submit, in the calling thread)."""
    language: str
    dpi: int


@dataclass
class OcrDone:
    number: int
    language: str
    blocks: list[tuple] = field(default_factory=list)
    """pymupdf-style blocks in page points: (x0, y0, x1, y1, text, block_no, 0)."""
    confidence: float | None = None
    """Tesseract's mean word confidence (0-100), weighted by word length; None when unknown."""
    error: str = ""


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def open_engine(workers: int = 0):
    """The fastest engine installed: the tesseract program with `workers` processes (0 = one per core)."""
    program = ocr.tesseract_program()
    if program:
        return CommandEngine(program, ocr.tessdata_dir(), workers or cpu_count())
    return PymupdfEngine()


class CommandEngine:
    """Up to `workers` tesseract processes at once."""

    def __init__(self, program: str, tessdata: str | None, workers: int):
        self.program = program
        self.tessdata = tessdata
        self.workers = max(1, workers)
        self.running: dict[int, subprocess.Popen] = {}
        self._done: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def free(self) -> bool:
        return len(self.running) < self.workers

    @property
    def busy(self) -> bool:
        return bool(self.running)

    def submit(self, job: OcrJob) -> None:
        image = render_grey(job.page, job.dpi)
        try:
            process = subprocess.Popen(
                self._command(job), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={**os.environ, "OMP_THREAD_LIMIT": "1"},
            )
        except OSError as exc:  # the program vanished or cannot start: this page fails, reading goes on
            self._done.put(OcrDone(job.number, job.language, error=f"cannot start tesseract: {exc}"))
            return
        self.running[job.number] = process
        thread = threading.Thread(target=self._wait_for, args=(job, process, image), daemon=True,
                                  name=f"folio-ocr-page-{job.number}")
        self._threads.append(thread)
        thread.start()

    def _command(self, job: OcrJob) -> list[str]:
        command = [self.program, "stdin", "stdout", "-l", job.language, "--dpi", str(job.dpi), "--psm", PSM]
        if self.tessdata:
            command += ["--tessdata-dir", self.tessdata]
        return command + ["tsv"]

    def _wait_for(self, job: OcrJob, process: subprocess.Popen, image: bytes) -> None:
        try:
            out, err = process.communicate(image)
        except Exception as exc:  # a pipe broken by close(): reported as a failure, then ignored
            self._done.put(OcrDone(job.number, job.language, error=f"{type(exc).__name__}: {exc}"))
            return
        if process.returncode != 0:
            reason = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
            self._done.put(OcrDone(job.number, job.language, error=reason[0][:200]))
            return
        blocks, confidence = blocks_from_tsv(out.decode("utf-8", "replace"), job.dpi)
        self._done.put(OcrDone(job.number, job.language, blocks, confidence))

    def wait(self, timeout: float) -> list[OcrDone]:
        """Pages finished within `timeout` seconds (at least one unless the time ran out)."""
        finished = []
        try:
            finished.append(self._done.get(timeout=max(timeout, 0.0)))
            while True:
                finished.append(self._done.get_nowait())
        except queue.Empty:
            pass
        for done in finished:
            self.running.pop(done.number, None)
        return finished

    def close(self) -> None:
        """Kill the processes still running and wait for their threads."""
        if self._closed:
            return
        self._closed = True
        for process in self.running.values():
            if process.poll() is None:
                process.kill()
        for thread in self._threads:
            thread.join(timeout=10)
        self.running.clear()


class PymupdfEngine:
    """One page at a time, in this process (no tesseract program installed)."""

    workers = 1

    def __init__(self):
        self._done: list[OcrDone] = []

    @property
    def free(self) -> bool:
        return not self._done

    @property
    def busy(self) -> bool:
        return bool(self._done)

    def submit(self, job: OcrJob) -> None:
        try:
            blocks = ocr.ocr_page_text(job.page, job.language, job.dpi, TEXT_FLAGS)
            self._done.append(OcrDone(job.number, job.language, blocks))
        except Exception as exc:  # a page Tesseract chokes on is reported, the rest is still read
            self._done.append(OcrDone(job.number, job.language, error=f"{type(exc).__name__}: {exc}"[:200]))

    def wait(self, timeout: float) -> list[OcrDone]:
        finished, self._done = self._done, []
        return finished

    def close(self) -> None:
        self._done = []


def render_grey(page, dpi: int) -> bytes:
    """The page as a grey PNG image at `dpi`. PNG, not the uncompressed PGM: Tesseract
    (leptonica) reads a page of PNG 0.2 s faster than the same page as PGM, for 50 ms here."""
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    try:
        return pix.tobytes("png")
    finally:
        del pix


_CJK = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Bopomofo}\u3000-\u303f\uff00-\uffef]")


def blocks_from_tsv(tsv: str, dpi: int) -> tuple[list[tuple], float | None]:
    """Tesseract's TSV as pymupdf-style text blocks in page points, and the mean word
    confidence weighted by word length. A block is one of Tesseract's paragraphs, split
    again where a gap taller than a line opens between two of its lines (a running header
    above the body), as MuPDF splits the text it reads."""
    scale = 72.0 / dpi
    lines: dict[tuple[int, int, int], list] = {}
    weighted = letters = 0
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        word = cols[11].strip()
        left, top, width, height = (int(value) * scale for value in cols[6:10])
        line = lines.setdefault((int(cols[2]), int(cols[3]), int(cols[4])), [[left, top, left + width, top + height], []])
        box = line[0]
        box[0], box[1] = min(box[0], left), min(box[1], top)
        box[2], box[3] = max(box[2], left + width), max(box[3], top + height)
        line[1].append(word)
        confidence = float(cols[10])
        if confidence >= 0:
            weighted += confidence * len(word)
            letters += len(word)
    blocks: list[tuple] = []
    current: list = []
    previous_key = None
    for key, (box, words) in lines.items():
        if current and (key[:2] != previous_key[:2] or box[1] - current[-1][0][3] > current[-1][0][3] - current[-1][0][1]):
            blocks.append(_block(current, len(blocks)))
            current = []
        current.append((box, words))
        previous_key = key
    if current:
        blocks.append(_block(current, len(blocks)))
    return blocks, (weighted / letters if letters else None)


def _block(lines: list, number: int) -> tuple:
    boxes = [box for box, _words in lines]
    text = "\n".join(join_words(words) for _box, words in lines) + "\n"
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes),
            text, number, 0)


def join_words(words: list[str]) -> str:
    """Words of one line, with a space between them except between two CJK characters
    (Tesseract splits Chinese into words that the text does not separate)."""
    out = words[0]
    for word in words[1:]:
        if _CJK.match(out[-1]) and _CJK.match(word[0]):
            out += word
        else:
            out += " " + word
    return out

"""Running Tesseract on page images: several pages at once, each in its own process.

    engine = open_engine(workers=2)          # the tesseract program, or pymupdf's copy
    while engine.free: engine.submit(OcrJob(number, page, "eng", 300))
    for done in engine.wait(timeout=5.0):    # OcrDone(number, language, blocks, confidence, error)
        ...
    engine.close()                           # kills whatever still runs (deadline, cancel)

`CommandEngine` renders each page in the calling thread (MuPDF is not thread-safe; a scan's
own JPEG at the OCR resolution is handed over as it is), gives the image to a `tesseract`
process on its stdin and reads TSV from its stdout; a thread per process waits for it and
starts the next page rendered ahead, so the caller can wait for the first page done, with
a timeout, and kill them all when the document's time is up or the reading is cancelled.
Each process gets OMP_THREAD_LIMIT=1: pages in parallel use the cores, and Tesseract's own
OpenMP threads on top made one page 6-12x slower on the 2-core machine. One process needs
about 70 MB (English; 125 MB with Chinese), so the default is one per core, at most
MAX_DEFAULT_WORKERS.

`PymupdfEngine` is the fallback when only the language data is installed: one page at a
time, in this process, through the Tesseract that pymupdf links.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import pymupdf
import regex

from . import ocr

PREFETCH = 1
"""Page images kept ready beyond those being read."""
PSM = "6"
"""One uniform block of text, as the Tesseract inside pymupdf reads a page: the words Folio
found before stay the same. Automatic layout (3) read three-column pages better but cut
lines short on a noisy 1871 scan (bleed-through taken for column gaps)."""
TEXT_FLAGS = pymupdf.TEXTFLAGS_TEXT & ~pymupdf.TEXT_PRESERVE_IMAGES
MAX_DEFAULT_WORKERS = 8


@dataclass
class OcrJob:
    number: int
    """Page number, from 1."""
    page: object
    """The pymupdf page (rendered by submit, in the calling thread)."""
    language: str | Callable[[], str]
    """The Tesseract languages, or a function giving them when the page's process starts
    (a page rendered ahead is read in the languages known by then)."""
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
    """The fastest engine installed: the tesseract program with `workers` processes (0 = one
    per core, at most MAX_DEFAULT_WORKERS)."""
    program = ocr.tesseract_program()
    if program:
        return CommandEngine(program, ocr.tessdata_dir(), workers or min(cpu_count(), MAX_DEFAULT_WORKERS))
    return PymupdfEngine()


class CommandEngine:
    """Up to `workers` tesseract processes at once, and one page image ready for the next:
    the thread that sees a process end starts the next one at once, so no core waits for
    this thread to render a page."""

    def __init__(self, program: str, tessdata: str | None, workers: int):
        self.program = program
        self.tessdata = tessdata
        self.workers = max(1, workers)
        self.running: dict[int, subprocess.Popen] = {}
        self.started: list[subprocess.Popen] = []
        self.most_running = 0
        self.prefetch = PREFETCH
        """Page images rendered ahead; 0 while the languages are not known yet."""
        self._ready: deque[tuple[OcrJob, PageImage]] = deque()
        self._lock = threading.Lock()
        self._done: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def free(self) -> bool:
        with self._lock:
            return len(self.running) + len(self._ready) < self.workers + self.prefetch

    def submit(self, job: OcrJob) -> None:
        image = page_image(job.page, job.dpi)
        with self._lock:
            if self._closed:
                return
            if len(self.running) < self.workers:
                self._start(job, image)
            else:
                self._ready.append((job, image))

    def _start(self, job: OcrJob, image: "PageImage") -> None:
        """Start one page's process (the lock is held)."""
        language = job.language() if callable(job.language) else job.language
        try:
            process = subprocess.Popen(
                self._command(language, image.dpi), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env={**os.environ, "OMP_THREAD_LIMIT": "1"},
            )
        except OSError as exc:  # the program vanished or cannot start: this page fails, reading goes on
            self._done.put(OcrDone(job.number, language, error=f"cannot start tesseract: {exc}"))
            return
        self.running[job.number] = process
        self.started.append(process)
        self.most_running = max(self.most_running, len(self.running))
        thread = threading.Thread(target=self._wait_for, args=(job.number, language, process, image), daemon=True,
                                  name=f"folio-ocr-page-{job.number}")
        self._threads.append(thread)
        thread.start()

    def _command(self, language: str, dpi: int) -> list[str]:
        command = [self.program, "stdin", "stdout", "-l", language, "--dpi", str(dpi), "--psm", PSM]
        if self.tessdata:
            command += ["--tessdata-dir", self.tessdata]
        return command + ["tsv"]

    def _wait_for(self, number: int, language: str, process: subprocess.Popen, image: "PageImage") -> None:
        try:
            out, err = process.communicate(image.data)
        except Exception as exc:  # a pipe broken by close(): reported as a failure, then ignored
            done = OcrDone(number, language, error=f"{type(exc).__name__}: {exc}")
        else:
            if process.returncode != 0:
                reason = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
                done = OcrDone(number, language, error=reason[0][:200])
            else:
                blocks, confidence = blocks_from_tsv(out.decode("utf-8", "replace"), image.scale, image.origin)
                done = OcrDone(number, language, blocks, confidence)
        with self._lock:
            self.running.pop(number, None)
            if self._ready and not self._closed:
                self._start(*self._ready.popleft())
        self._done.put(done)

    def wait(self, timeout: float) -> list[OcrDone]:
        """Pages finished within `timeout` seconds (at least one unless the time ran out)."""
        finished = []
        try:
            finished.append(self._done.get(timeout=max(timeout, 0.0)))
            while True:
                finished.append(self._done.get_nowait())
        except queue.Empty:
            pass
        return finished

    def close(self) -> None:
        """Kill the processes still running, forget the pages not started, wait for the threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._ready.clear()
            for process in self.running.values():
                if process.poll() is None:
                    process.kill()
        for thread in list(self._threads):
            thread.join(timeout=10)


class PymupdfEngine:
    """One page at a time, in this process (no tesseract program installed)."""

    workers = 1

    def __init__(self):
        self._done: list[OcrDone] = []

    @property
    def free(self) -> bool:
        return not self._done

    def submit(self, job: OcrJob) -> None:
        language = job.language() if callable(job.language) else job.language
        try:
            blocks = ocr.ocr_page_text(job.page, language, job.dpi, TEXT_FLAGS)
            self._done.append(OcrDone(job.number, language, blocks))
        except Exception as exc:  # a page Tesseract chokes on is reported, the rest is still read
            self._done.append(OcrDone(job.number, language, error=f"{type(exc).__name__}: {exc}"[:200]))

    def wait(self, timeout: float) -> list[OcrDone]:
        finished, self._done = self._done, []
        return finished

    def close(self) -> None:
        self._done = []


@dataclass
class PageImage:
    """A page as Tesseract gets it."""

    data: bytes
    """PNG, or the page's own JPEG."""
    dpi: int
    scale: float
    """Page points per image pixel."""
    origin: tuple[float, float] = (0.0, 0.0)
    """Where the image's top-left pixel lies on the page (points)."""


def page_image(page, dpi: int) -> PageImage:
    """The page's own JPEG when it is a scan at about `dpi` (nothing to render), else the page
    rendered in grey at `dpi` as PNG (Tesseract reads a page of PNG 0.2 s faster than the same
    page as uncompressed PGM, for 50 ms of encoding here)."""
    own = own_jpeg(page, dpi)
    if own is not None:
        return own
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    try:
        return PageImage(pix.tobytes("png"), dpi, 72.0 / dpi)
    finally:
        del pix


def own_jpeg(page, dpi: int) -> PageImage | None:
    """The JPEG of a page that is one upright grey or RGB JPEG covering it, at `dpi` within
    3 %, with no mask or decode array: the same pixels a render would give, without the
    decoding, scaling and PNG encoding (about 100 ms a page) in this process."""
    try:
        infos = page.get_image_info(xrefs=True)
        if len(infos) != 1 or page.rotation:
            return None
        info = infos[0]
        xref, box = info.get("xref", 0), pymupdf.Rect(info["bbox"])
        a, b, c, d, _e, _f = info["transform"]
        if xref <= 0 or b or c or a <= 0 or d <= 0 or info["has-mask"] or info["bpc"] != 8 or info["colorspace"] not in (1, 3):
            return None
        if max(abs(box.x0 - page.rect.x0), abs(box.y0 - page.rect.y0), abs(box.x1 - page.rect.x1), abs(box.y1 - page.rect.y1)) > 1:
            return None
        doc = page.parent
        if doc.xref_get_key(xref, "Filter") != ("name", "/DCTDecode") or doc.xref_get_key(xref, "Decode")[0] != "null":
            return None
        across, down = info["width"] * 72.0 / box.width, info["height"] * 72.0 / box.height
        if abs(across - dpi) > 0.03 * dpi or abs(down - dpi) > 0.03 * dpi:
            return None
        return PageImage(doc.xref_stream_raw(xref), round(across), box.width / info["width"], (box.x0, box.y0))
    except Exception:  # anything unexpected: render, as for any other page
        return None


_CJK = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Bopomofo}\u3000-\u303f\uff00-\uffef]")


def blocks_from_tsv(tsv: str, scale: float, origin: tuple[float, float] = (0.0, 0.0)) -> tuple[list[tuple], float | None]:
    """Tesseract's TSV as pymupdf-style text blocks in page points, and the mean word
    confidence weighted by word length. A block is one of Tesseract's paragraphs, split
    again where a gap taller than a line opens between two of its lines (a running header
    above the body), as MuPDF splits the text it reads."""
    x0, y0 = origin
    lines: dict[tuple[int, int, int], list] = {}
    weighted = letters = 0
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        word = cols[11].strip()
        left, top, width, height = (int(value) * scale for value in cols[6:10])
        left, top = x0 + left, y0 + top
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

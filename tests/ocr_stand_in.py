"""Stand-ins for Tesseract in tests that are about what Folio does with OCR results.

    monkeypatch.setattr(ocr_engine, "open_engine", lambda workers=0: ScriptedEngine("text read"))
    SpyEngine.install(monkeypatch)      # the real engine, recording what it was asked
"""

from __future__ import annotations

from lib.reading import ocr_engine


class ScriptedEngine:
    """Answers every page with one block of `text` and remembers what it was asked."""

    def __init__(self, text: str, confidence: float | None = None):
        self.text = text
        self.confidence = confidence
        self.asked: list[tuple[int, str]] = []
        self._done: list[ocr_engine.OcrDone] = []

    @property
    def free(self) -> bool:
        return not self._done

    def submit(self, job: ocr_engine.OcrJob) -> None:
        language = job.language() if callable(job.language) else job.language
        self.asked.append((job.number, language))
        block = (30.0, 30.0, 300.0, 100.0, self.text, 0, 0)
        self._done.append(ocr_engine.OcrDone(job.number, language, [block], self.confidence))

    def wait(self, timeout: float) -> list[ocr_engine.OcrDone]:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        self._done = []


class SpyEngine:
    """Wraps the real engine (real Tesseract): records the pages read in which languages, the
    processes started and how many ran at once."""

    def __init__(self, engine):
        self.engine = engine
        self.done: list[ocr_engine.OcrDone] = []

    @classmethod
    def install(cls, monkeypatch) -> list["SpyEngine"]:
        made: list[SpyEngine] = []
        real = ocr_engine.open_engine

        def open_engine(workers: int = 0):
            made.append(cls(real(workers)))
            return made[-1]

        monkeypatch.setattr(ocr_engine, "open_engine", open_engine)
        return made

    @property
    def asked(self) -> list[tuple[int, str]]:
        """(page, languages) of every reading finished, in the order they finished."""
        return [(done.number, done.language) for done in self.done]

    @property
    def processes(self) -> list:
        return list(getattr(self.engine, "started", []))

    @property
    def most_at_once(self) -> int:
        return getattr(self.engine, "most_running", 1)

    @property
    def free(self) -> bool:
        return self.engine.free

    @property
    def prefetch(self) -> int:
        return getattr(self.engine, "prefetch", 0)

    @prefetch.setter
    def prefetch(self, value: int) -> None:
        self.engine.prefetch = value

    def submit(self, job: ocr_engine.OcrJob) -> None:
        self.engine.submit(job)

    def wait(self, timeout: float):
        finished = self.engine.wait(timeout)
        self.done.extend(finished)
        return finished

    def close(self) -> None:
        self.engine.close()

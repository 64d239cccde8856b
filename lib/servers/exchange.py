"""One HTTP exchange with the model server, run in a worker thread: stoppable at once and
bounded in time and in size.

    watch = Watch(cancel, idle_s=settings.read_timeout, total_s=settings.total_timeout)
    reply = fetch(client, "GET", "/api/version", watch=watch, limit_s=CHECK_LIMIT_S)
    reply.status, reply.body, reply.content_type

    pump = StreamPump(client, "POST", "/api/chat", body).start()
    pump.next(watch, idle_since=t)   # ('open', status, error_text) | ('line', text) | ('end', None)
                                     # | ('exc', exception) | ('too_long', bytes) | ('cancel', None)
                                     # | ('timeout', 'idle' | 'total' | 'request')
    pump.abort()

Why a thread: a server reading a 100k-token prompt sends nothing for minutes, and the
llama-cpp-python prompt count is one such silent request; Stop must end any wait within a
fraction of a second, and only shutting the socket down ends a blocked read (so the server
also sees the client go and stops working). Why bounded lines: httpx's iter_lines keeps a
line however long it grows; a server sending one endless line would fill the memory.

A `Watch` holds what one question runs under: the user's Stop, the moment the user asked
(every time Folio reports is measured from it), the idle limit on new text and the total limit.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

import httpx

from ..errors import Cancelled, TimeLimitExceeded

POLL_S = 0.05
"""How often a waiting exchange looks at the Stop flag and the limits."""
MAX_LINE_BYTES = 1 << 20
"""Longest streamed line read: an answer streams a few words per line (about 200 bytes)."""
MAX_BODY_BYTES = 16 << 20
"""Largest plain JSON answer read (/api/show without `verbose` is some 10 KB)."""
MAX_ERROR_BYTES = 64 << 10
"""Of an error answer, only the start is read: it becomes one line of a message."""
CHECK_LIMIT_S = 30.0
"""Longest one request of the server check may take (version, show, tags, ps, models)."""


class Watch:
    """The Stop flag, the start time and the limits of one question (shared by all its requests)."""

    def __init__(self, cancel: threading.Event | None = None, *, idle_s: float | None = None,
                 total_s: float | None = None, started: float | None = None):
        self.cancel = cancel if cancel is not None else threading.Event()
        self.started = time.monotonic() if started is None else started
        """time.monotonic() when the user asked: every duration Folio reports counts from here."""
        self.idle_s = idle_s or None
        self.total_s = total_s or None

    @classmethod
    def of(cls, cancel, settings=None, *, started: float | None = None) -> "Watch":
        """`cancel` as a Watch: itself, or a new one with the limits of `settings`."""
        if isinstance(cancel, Watch):
            return cancel
        if settings is None:
            return cls(cancel, started=started)
        return cls(cancel, idle_s=settings.read_timeout, total_s=settings.total_timeout, started=started)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 4)

    @property
    def stopped(self) -> bool:
        return self.cancel.is_set()

    def over_total(self) -> bool:
        return self.total_s is not None and time.monotonic() - self.started >= self.total_s

    def check(self, doing: str = "") -> None:
        """Raise Cancelled or TimeLimitExceeded between steps of a question."""
        if self.stopped:
            raise Cancelled(stopped_message(self, doing))
        if self.over_total():
            raise TimeLimitExceeded(total_message(self, doing))


def stopped_message(watch: Watch, doing: str = "") -> str:
    during = f", while {doing}" if doing else ""
    return f"Stopped by you after {watch.elapsed():.1f} s{during}."


def total_message(watch: Watch, doing: str = "") -> str:
    during = f" while {doing}" if doing else ""
    return (
        f"The question took longer than the {watch.total_s:.0f} s allowed and was stopped{during}. "
        "Raise the total limit (--timeout, FOLIO_TOTAL_TIMEOUT, or 'Longest a question may take' "
        "on the Settings page; 0 means no limit) if the server is slow, then ask again."
    )


class LineTooLong(Exception):
    """A streamed line grew past the limit: Folio stops reading the stream."""

    def __init__(self, size: int):
        self.size = size
        super().__init__(f"a line of more than {size:,} bytes")


class BodyTooLarge(Exception):
    def __init__(self, size: int):
        self.size = size
        super().__init__(f"more than {size:,} bytes")


def bounded_lines(chunks: Iterable[bytes], limit: int = MAX_LINE_BYTES) -> Iterator[str]:
    """Lines of a byte stream (split at \\n, \\r\\n or \\r), none longer than `limit` bytes.

    Raises LineTooLong as soon as a line passes the limit, before more of it is read.
    """
    pending = b""
    for chunk in chunks:
        pending += chunk
        if b"\r" in pending:
            # A \r\n split between two chunks only adds an empty line, which both protocols skip.
            pending = pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if len(line) > limit:
                raise LineTooLong(limit)
            yield line.decode("utf-8", "replace")
        if len(pending) > limit:
            raise LineTooLong(limit)
    if pending:
        yield pending.decode("utf-8", "replace")


def read_bounded(chunks: Iterable[bytes], limit: int) -> bytes:
    """The whole body, refused (BodyTooLarge) once it passes `limit` bytes."""
    parts, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        parts.append(chunk)
    return b"".join(parts)


class StreamPump:
    """One HTTP request read in a worker thread, line by line (or whole with `whole=True`).

    The consumer calls `next(watch)` and gets ('open', status, error_text), then
    ('line', text)... (or one ('body', bytes)), then ('end', None); or ('exc', exception),
    ('too_long', limit), ('cancel', None), ('timeout', kind). `abort()` shuts the socket
    down, which ends a blocked read at once. The client is borrowed: it stays open.
    """

    def __init__(self, client: httpx.Client, method: str, path: str, body: dict | None = None, *,
                 max_line: int = MAX_LINE_BYTES, whole: bool = False, max_body: int = MAX_BODY_BYTES):
        self._client = client
        self._method = method
        self._path = path
        self._body = body
        self._max_line = max_line
        self._whole = whole
        self._max_body = max_body
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self.content_type = ""
        """The answer's Content-Type header, set before ('open', ...) is handed out."""
        self._thread = threading.Thread(target=self._run, name="folio-exchange", daemon=True)

    def _trace(self, name: str, info: dict) -> None:
        # Keep the raw socket: shutting it down is the only way to end a blocked read. The
        # client keeps no idle connections (make_http_client), so every request connects anew
        # and this event comes for each one.
        if name.endswith("connect_tcp.complete"):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                self._sockets.append(sock)
                if self._stop.is_set():
                    self._shutdown(sock)

    def _run(self) -> None:
        try:
            kwargs = {"json": self._body} if self._body is not None else {}
            with self._client.stream(self._method, self._path, extensions={"trace": self._trace},
                                     **kwargs) as response:
                self.content_type = response.headers.get("content-type", "")
                if response.status_code >= 400:
                    text = error_text_of(read_bounded(_limited(response.iter_bytes(), MAX_ERROR_BYTES),
                                                    MAX_ERROR_BYTES))
                    self._queue.put(("open", response.status_code, text))
                    return
                self._queue.put(("open", response.status_code, ""))
                if self._whole:
                    self._queue.put(("body", read_bounded(response.iter_bytes(), self._max_body)))
                else:
                    for line in bounded_lines(response.iter_bytes(), self._max_line):
                        if self._stop.is_set():
                            return
                        self._queue.put(("line", line))
            self._queue.put(("end", None))
        except (LineTooLong, BodyTooLarge) as exc:
            self._queue.put(("too_long", exc.size))
        except Exception as exc:  # handed to the consumer, which translates it
            self._queue.put(("exc", exc))

    def start(self) -> "StreamPump":
        self._thread.start()
        return self

    def next(self, watch=None, *, idle_since: float | None = None, deadline: float | None = None) -> tuple:
        """The next item; ('cancel', None) as soon as Stop is pressed; ('timeout', kind) when
        nothing new came for the idle limit since `idle_since`, the question passed its total
        limit, or this request passed `deadline` (a time.monotonic() value)."""
        watch = watch if isinstance(watch, Watch) else Watch(watch)
        while True:
            if watch.stopped:
                return ("cancel", None)
            now = time.monotonic()
            if watch.over_total():
                return ("timeout", "total")
            if idle_since is not None and watch.idle_s is not None and now - idle_since >= watch.idle_s:
                return ("timeout", "idle")
            if deadline is not None and now >= deadline:
                return ("timeout", "request")
            try:
                return self._queue.get(timeout=POLL_S)
            except queue.Empty:
                continue

    def abort(self) -> None:
        """Stop reading and drop the connection (the server then stops generating)."""
        self._stop.set()
        for sock in self._sockets:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _limited(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """At most `limit` bytes of a stream (the rest is not read)."""
    size = 0
    for chunk in chunks:
        yield chunk[: max(limit - size, 0)]
        size += len(chunk)
        if size >= limit:
            return


def error_text_of(raw: bytes) -> str:
    """The error message in an error answer's body: its JSON 'error', else the text's start."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500]
    return error_from_json(data) or text[:500]


def error_from_json(data) -> str:
    """'error' of an Ollama or OpenAI-style error object, '' when there is none."""
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)
    if error:
        return str(error)
    if data.get("object") == "error" and data.get("message"):
        return str(data["message"])  # vLLM's error shape
    return ""


@dataclass
class Reply:
    """A plain (not streamed) answer, read whole within the limits."""

    status: int
    body: bytes
    content_type: str
    error: str = ""
    """The server's own error text when status >= 400."""


class RequestTimedOut(httpx.ReadTimeout):
    """One request of the check ran past its own limit (CHECK_LIMIT_S)."""


def fetch(client: httpx.Client, method: str, path: str, body: dict | None = None, *, watch=None,
          limit_s: float | None = None, doing: str = "", max_body: int = MAX_BODY_BYTES) -> Reply:
    """One plain request, stoppable and bounded.

    Raises Cancelled (Stop), TimeLimitExceeded (the question's total limit), httpx.ReadTimeout
    (this request's `limit_s`, or the idle limit for requests without one), BodyTooLarge, or the
    httpx transport error; the caller turns the last three into a ServerError.
    """
    watch = watch if isinstance(watch, Watch) else Watch(watch)
    started = time.monotonic()
    deadline = started + limit_s if limit_s else None
    pump = StreamPump(client, method, path, body, whole=True, max_body=max_body).start()
    try:
        status, error = None, ""
        while True:
            item = pump.next(watch, idle_since=None if deadline else started, deadline=deadline)
            kind = item[0]
            if kind == "cancel":
                raise Cancelled(stopped_message(watch, doing))
            if kind == "timeout":
                if item[1] == "total":
                    raise TimeLimitExceeded(total_message(watch, doing))
                raise RequestTimedOut(f"no answer to {path} within {time.monotonic() - started:.0f} s")
            if kind == "exc":
                raise item[1]
            if kind == "too_long":
                raise BodyTooLarge(item[1])
            if kind == "open":
                status, error = item[1], item[2]
                if status >= 400:
                    return Reply(status, b"", pump.content_type, error)
            elif kind == "body":
                return Reply(status, item[1], pump.content_type)
            elif kind == "end":
                return Reply(status or 0, b"", pump.content_type, error)
    finally:
        pump.abort()

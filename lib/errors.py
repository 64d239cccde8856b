"""Folio's errors: every message is shown to a user as is, so it says what went wrong
and what to do next. Nothing below ever carries a traceback to the user.

FolioError
 +-- InputError                exit status 2: the user's files or question
 |    +-- DocumentError        one file: names it, says what is wrong and what to do
 |    |    +-- UnsupportedFormat
 |    |    +-- FileTooLarge
 |    |    +-- ArchiveBomb
 |    |    +-- PasswordRequired
 |    |    +-- WrongPassword
 |    |    +-- CorruptDocument
 |    |    +-- NoTextFound
 |    |    +-- ExtractionTimeout
 |    +-- BudgetExceeded       the selected documents do not fit the real context
 +-- ServerError               exit status 3: the model server
 |    +-- ServerUnreachable
 |    +-- ServerTooOld
 |    +-- ModelNotFound
 |    +-- ThinkingUnsupported
 |    +-- ServerBusy
 |    +-- ServerCrashed        runner crashed / out of memory / other 5xx
 |    +-- PromptTooLong        the server refused a prompt (truncate=false did its job)
 |    +-- NotAModelServer      the address answers, but not as an Ollama / OpenAI-compatible server
 |    +-- TimeLimitExceeded    the question took longer than the total limit (--timeout)
 +-- StoreError                the local SQLite store
 +-- Cancelled                 exit status 130: stopped by the user
"""

from __future__ import annotations


class FolioError(Exception):
    """Base of every error Folio shows to a user."""

    exit_status = 1

    @property
    def message(self) -> str:
        return str(self)


class InputError(FolioError):
    exit_status = 2


class DocumentError(InputError):
    """A problem with one file; the message names the file, the problem and the fix."""

    def __init__(self, name: str, problem: str, action: str = ""):
        self.name = name
        self.problem = problem
        self.action = action
        text = f"{name}: {problem}"
        if action:
            text += f" {action}"
        super().__init__(text)


class UnsupportedFormat(DocumentError):
    pass


class FileTooLarge(DocumentError):
    pass


class ArchiveBomb(DocumentError):
    pass


class PasswordRequired(DocumentError):
    pass


class WrongPassword(DocumentError):
    pass


class CorruptDocument(DocumentError):
    pass


class NoTextFound(DocumentError):
    pass


class ExtractionTimeout(DocumentError):
    pass


class BudgetExceeded(InputError):
    """The documents do not fit; `overruns` maps document name to its tokens."""

    def __init__(self, message: str, overrun: int = 0, per_document: dict | None = None):
        self.overrun = overrun
        self.per_document = dict(per_document or {})
        super().__init__(message)


class ServerError(FolioError):
    exit_status = 3


class ServerUnreachable(ServerError):
    pass


class ServerTooOld(ServerError):
    pass


class ModelNotFound(ServerError):
    pass


class ThinkingUnsupported(ServerError):
    pass


class ServerBusy(ServerError):
    pass


class ServerCrashed(ServerError):
    pass


class PromptTooLong(ServerError):
    pass


class NotAModelServer(ServerError):
    """Something answers at the address, but not the JSON a model server speaks (another web app)."""


class TimeLimitExceeded(ServerError):
    """A question ran past its total time limit (FOLIO_TOTAL_TIMEOUT / --timeout)."""


class StoreError(FolioError):
    pass


class Cancelled(FolioError):
    """The user stopped the work (Stop in the app, Ctrl-C on the command line)."""

    exit_status = 130

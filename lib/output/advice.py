"""Advice for a person in the app: the fields of the Settings page instead of flags and variables.

lib's messages are written for every user, so they name the command line and the environment
(`--context / FOLIO_CONTEXT`). In the app the same setting is a field with a label; a user on
the Settings page must be pointed at that field, not sent to a shell.

    for_app("Set --context / FOLIO_CONTEXT to the server's context (n_ctx).")
        -> "Set “Context (tokens)” on the Settings page to the server's context (n_ctx)."
    for_app(..., here=True)        # the message is shown on the Settings page itself
        -> "Set “Context (tokens)” above to the server's context (n_ctx)."
    field_ref("answer_reserve")    -> "Settings › Reserved for the answer"

Names with no field in the app (FOLIO_API_KEY, OLLAMA_KV_CACHE_TYPE, ...) are left as they are.
"""

from __future__ import annotations

import re

SETTING_LABELS = {
    "backend": "Server",
    "host": "Address",
    "model": "Model",
    "keep_alive": "Keep the model loaded for",
    "context": "Context (tokens)",
    "answer_reserve": "Reserved for the answer",
    "thinking_reserve": "Extra reserve when thinking",
    "think": "Thinking on by default",
    "read_timeout": "Seconds without new text",
    "total_timeout": "Longest a question may take (seconds)",
    "concurrency": "Calls at once",
}
"""The Settings page's field labels (pages/settings.py uses these), by Settings field."""

# Every way lib names a setting that has a field: its command-line flags and variables.
_NAMES = {
    "host": ("--host", "FOLIO_HOST", "OLLAMA_HOST"),
    "model": ("--model", "FOLIO_MODEL"),
    "context": ("--context", "FOLIO_CONTEXT"),
    "answer_reserve": ("FOLIO_ANSWER_RESERVE",),
    "thinking_reserve": ("FOLIO_THINKING_RESERVE",),
    "think": ("FOLIO_THINK",),
    "keep_alive": ("FOLIO_KEEP_ALIVE",),
    "read_timeout": ("--read-timeout", "FOLIO_READ_TIMEOUT"),
    "total_timeout": ("--timeout", "FOLIO_TOTAL_TIMEOUT"),
    "backend": ("FOLIO_BACKEND",),
    "concurrency": ("--concurrency", "FOLIO_CONCURRENCY"),
}
_SETTING_OF = {name: setting for setting, names in _NAMES.items() for name in names}
_ONE_NAME = r"`?(?<![\w-])(?:" + "|".join(re.escape(n) for n in sorted(_SETTING_OF, key=len, reverse=True)) + r")(?![\w-])`?"
# "--context / FOLIO_CONTEXT", "--context or FOLIO_CONTEXT", "FOLIO_HOST / --host", and what
# lib sometimes adds: "(or the Address on the Settings page)", ", or 'Seconds without new text'
# on the Settings page".
_GROUP = re.compile(
    _ONE_NAME + r"(?:\s*(?:/|,|\bor\b)\s*" + _ONE_NAME + r")*"
    r"(?:\s*\(or (?:the |set )?[\w ]+ on the Settings page\)|,? or '[^'\n]+' on the Settings page)?"
)
_BARE_NAME = re.compile(_ONE_NAME)

# Whole phrases that read better rewritten than name by name.
_PHRASES = (
    (re.compile(r"\(--no-think, or untick 'Thinking'\)"), "(turn Thinking off)", "(turn Thinking off)"),
    (re.compile(r"\(--no-think\)"), "(turn Thinking off)", "(turn off “Thinking on by default” above)"),
    (re.compile(r"--backend openai"), "Server “OpenAI-compatible” on the Settings page",
     "Server “OpenAI-compatible” above"),
    (re.compile(r"--backend ollama"), "Server “Ollama” on the Settings page", "Server “Ollama” above"),
    (re.compile(r"[Cc]heck the server with `python -m lib doctor`"), "Check the server on the Settings page",
     "Check the server (Check again, below)"),
    (re.compile(r"run `python -m lib doctor`"), "look at the server check on the Settings page",
     "look at the server check below"),
    (re.compile(r"`python -m lib doctor`"), "the server check on the Settings page", "the server check below"),
)


def field_ref(setting: str) -> str:
    """'Settings › Reserved for the answer': where a setting is changed in the app."""
    return f"Settings › {SETTING_LABELS[setting]}"


def for_app(message: str, *, here: bool = False) -> str:
    """`message` with flags and environment variables replaced by the field that sets them.

    `here`: the message is shown on the Settings page, below its fields.
    """
    for pattern, elsewhere, on_page in _PHRASES:
        message = pattern.sub(on_page if here else elsewhere, message)
    return _GROUP.sub(lambda match: _fields(match.group(0), here), message)


def _fields(group: str, here: bool) -> str:
    settings: list[str] = []
    for name in _BARE_NAME.findall(group):
        setting = _SETTING_OF[name.strip("`")]
        if setting not in settings:
            settings.append(setting)
    labels = " and ".join(f"“{SETTING_LABELS[s]}”" for s in settings)
    return f"{labels} above" if here else f"{labels} on the Settings page"

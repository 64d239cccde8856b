"""What a job of lib/asking remembers of the settings it was started with, so that a resumed job
(after a restart, or `python -m lib jobs resume` in a shell without the app's settings) asks the
same server and model. Never the API key: that comes from FOLIO_API_KEY when the job resumes.
"""

from __future__ import annotations

from ..config import Settings, load_settings

SERVER_FIELDS = ("backend", "host", "model", "context", "answer_reserve", "thinking_reserve", "keep_alive",
                 "read_timeout", "total_timeout", "connect_timeout")


def server_params(settings: Settings) -> dict:
    """The JSON kept in a job's parameters."""
    return {name: getattr(settings, name) for name in SERVER_FIELDS}


def settings_of(params: dict) -> Settings:
    """Settings from a job's parameters ("server"), the environment for everything else."""
    server = {k: v for k, v in (params.get("server") or {}).items() if k in SERVER_FIELDS}
    return load_settings(**server)

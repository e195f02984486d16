"""Server settings: defaults, then ``IVR_*`` / ``TWILIO_AUTH_TOKEN`` environment
variables, then explicit overrides (the CLI's flags, a test's arguments)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from ivr.errors import IVRError
from ivr.flows.models import E164
from ivr.live.routing import BRIDGES
from ivr.twiml import DEFAULT_HOLD_MUSIC

#: Shortest admin or agent bearer token a server starts with.
MIN_TOKEN_LENGTH = 32


@dataclass(frozen=True)
class Settings:
    """Everything the web app needs to know; see the README's configuration table."""

    flows_dir: Path = Path("flows")
    data_dir: Path = Path("var")
    store: str = "sqlite"  # or "memory"
    database_url: str | None = None  # postgresql://...: the store of several hosts
    auth_token: str | None = None
    account_sid: str | None = None
    twilio_api_url: str | None = None
    validate_signatures: bool = True
    public_url: str | None = None
    admin_token: str | None = None
    agent_token: str | None = None
    default_flow: str | None = None
    hold_music_url: str = DEFAULT_HOLD_MUSIC
    reload_interval_s: float = 2.0
    routing_tick_s: float = 1.0
    max_request_bytes: int = 64 * 1024
    twilio_api_key: str | None = None  # softphone access tokens (with the two below)
    twilio_api_secret: str | None = None
    twiml_app_sid: str | None = None
    secret_key: str | None = None  # signs session cookies; else kept in data_dir
    session_hours: float = 12.0  # a signed-in session expires after this long
    #: Dialled when even the safe path's queue fails (``IVR_FALLBACK_NUMBER``, E.164).
    fallback_number: str | None = None
    #: Host names a request may carry when no public URL is set (``IVR_ALLOWED_HOSTS``).
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")
    #: How callers meet agents (``IVR_AGENT_BRIDGE``): ``dial`` or ``conference``.
    agent_bridge: str = "dial"
    #: How long a webhook waits for the store's write lock before the safe path.
    store_busy_timeout_s: float = 3.0
    #: Webhooks and other writes running at once per worker process under ``ivr serve``
    #: (``IVR_ACTIVE_REQUESTS``; see ivr.web.admission). Pages and streams are not counted.
    active_requests: int = 2
    #: Run ``ivr serve``'s processes under Linux's SCHED_BATCH policy
    #: (``IVR_BATCH_SCHEDULING``; see ivr.server.tune_process).
    batch_scheduling: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if "IVR_FLOWS_DIR" in env:
            values["flows_dir"] = Path(env["IVR_FLOWS_DIR"])
        if "IVR_DATA_DIR" in env:
            values["data_dir"] = Path(env["IVR_DATA_DIR"])
        if "IVR_STORE" in env:
            values["store"] = env["IVR_STORE"]
        if env.get("TWILIO_AUTH_TOKEN"):
            values["auth_token"] = env["TWILIO_AUTH_TOKEN"]
        if "IVR_VALIDATE_SIGNATURES" in env:
            values["validate_signatures"] = _flag("IVR_VALIDATE_SIGNATURES",
                                                  env["IVR_VALIDATE_SIGNATURES"])
        if "IVR_BATCH_SCHEDULING" in env:
            values["batch_scheduling"] = _flag("IVR_BATCH_SCHEDULING",
                                               env["IVR_BATCH_SCHEDULING"])
        for var, name in (("IVR_PUBLIC_URL", "public_url"), ("IVR_ADMIN_TOKEN", "admin_token"),
                          ("IVR_AGENT_TOKEN", "agent_token"),
                          ("TWILIO_ACCOUNT_SID", "account_sid"),
                          ("IVR_TWILIO_API_URL", "twilio_api_url"),
                          ("IVR_DEFAULT_FLOW", "default_flow"),
                          ("IVR_HOLD_MUSIC_URL", "hold_music_url"),
                          ("IVR_DATABASE_URL", "database_url"),
                          ("IVR_SECRET_KEY", "secret_key"),
                          ("TWILIO_API_KEY", "twilio_api_key"),
                          ("TWILIO_API_SECRET", "twilio_api_secret"),
                          ("TWILIO_TWIML_APP_SID", "twiml_app_sid"),
                          ("IVR_FALLBACK_NUMBER", "fallback_number"),
                          ("IVR_AGENT_BRIDGE", "agent_bridge")):
            if env.get(var):
                values[name] = env[var]
        if env.get("IVR_ACTIVE_REQUESTS"):
            raw = env["IVR_ACTIVE_REQUESTS"].strip()
            if not raw.isdigit() or int(raw) < 1:
                raise IVRError(f"IVR_ACTIVE_REQUESTS: '{raw}' is not a whole number of at "
                               "least 1")
            values["active_requests"] = int(raw)
        if env.get("IVR_ALLOWED_HOSTS"):
            values["allowed_hosts"] = tuple(
                h.strip().lower() for h in env["IVR_ALLOWED_HOSTS"].split(",") if h.strip())
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise IVRError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        settings = cls(**values)
        if settings.store not in ("sqlite", "memory"):
            raise IVRError(f"IVR_STORE: '{settings.store}' is not 'sqlite' or 'memory'")
        if settings.agent_bridge not in BRIDGES:
            raise IVRError(f"IVR_AGENT_BRIDGE: '{settings.agent_bridge}' is not one of "
                           f"{', '.join(BRIDGES)}")
        if settings.database_url is not None and not settings.database_url.startswith(
                ("postgresql://", "postgres://")):
            raise IVRError(f"IVR_DATABASE_URL: '{settings.database_url.split('@')[-1]}' must "
                           "start with postgresql://")
        if settings.public_url is not None and not settings.public_url.startswith(
                ("http://", "https://")):
            raise IVRError(f"IVR_PUBLIC_URL: '{settings.public_url}' must start with https://")
        if settings.fallback_number is not None and not E164.match(settings.fallback_number):
            raise IVRError(f"IVR_FALLBACK_NUMBER: '{settings.fallback_number}' is not an "
                           "E.164 number such as +14155550100")
        return replace(settings, flows_dir=Path(settings.flows_dir),
                       data_dir=Path(settings.data_dir))


def check_tokens(settings: Settings) -> None:
    """Refuse (IVRError) an admin or agent token too short to resist guessing."""
    for var, token in (("IVR_ADMIN_TOKEN", settings.admin_token),
                       ("IVR_AGENT_TOKEN", settings.agent_token)):
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            raise IVRError(
                f"{var} is {len(token)} characters; use at least {MIN_TOKEN_LENGTH}, e.g. "
                'python -c "import secrets; print(secrets.token_urlsafe(32))"')


def _flag(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise IVRError(f"{name}: '{value}' is not a yes/no value (use 1 or 0)")

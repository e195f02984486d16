"""Server settings: defaults, then ``IVR_*`` / ``TWILIO_AUTH_TOKEN`` environment
variables, then explicit overrides (the CLI's flags, a test's arguments)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from ivr.errors import IVRError
from ivr.twiml import DEFAULT_HOLD_MUSIC


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
                          ("TWILIO_TWIML_APP_SID", "twiml_app_sid")):
            if env.get(var):
                values[name] = env[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise IVRError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        settings = cls(**values)
        if settings.store not in ("sqlite", "memory"):
            raise IVRError(f"IVR_STORE: '{settings.store}' is not 'sqlite' or 'memory'")
        if settings.database_url is not None and not settings.database_url.startswith(
                ("postgresql://", "postgres://")):
            raise IVRError(f"IVR_DATABASE_URL: '{settings.database_url.split('@')[-1]}' must "
                           "start with postgresql://")
        if settings.public_url is not None and not settings.public_url.startswith(
                ("http://", "https://")):
            raise IVRError(f"IVR_PUBLIC_URL: '{settings.public_url}' must start with https://")
        return replace(settings, flows_dir=Path(settings.flows_dir),
                       data_dir=Path(settings.data_dir))


def _flag(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise IVRError(f"{name}: '{value}' is not a yes/no value (use 1 or 0)")

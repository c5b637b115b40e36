"""One settings object for the whole node; no other module reads ``os.environ``.

Every variable is prefixed ``CROSSBORDER_``: ``CROSSBORDER_DATABASE_URL``,
``CROSSBORDER_DATA_DIR``, ``CROSSBORDER_SECRET_KEY`` and so on.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - refused in production
MIN_SECRET_LENGTH = 32
SECRET_KEY_FILE = "secret.key"  # noqa: S105 - a file name


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ConfigError(Exception):
    """The configuration is invalid; the message says what to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CROSSBORDER_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("./var")
    database_url: str | None = None
    # From CROSSBORDER_SECRET_KEY, else from <data_dir>/secret.key (written by `crossborder init`).
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    node_name: str = "crossborder node"
    # Demo mode relaxes the TOTP second factor for demo accounts and shows a banner.
    demo_mode: bool = False
    session_lifetime_minutes: Annotated[int, Field(ge=5, le=24 * 60)] = 8 * 60
    session_idle_minutes: Annotated[int, Field(ge=5, le=24 * 60)] = 60
    cookie_secure: bool = True
    login_max_failures: Annotated[int, Field(ge=1, le=100)] = 5
    login_window_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 15
    login_ip_max_failures: Annotated[int, Field(ge=1, le=10_000)] = 50
    default_language: str = "en"
    log_level: str = "INFO"
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_000_000
    max_attachment_bytes: Annotated[int, Field(ge=1024)] = 200 * 1024 * 1024
    # Identifier correlation: a value held in more records than this is not correlated (noise);
    # warning lists are MISP list slugs, comma-separated, or "default", "all" or "none";
    # IP sightings whose time windows miss each other by up to the slack still overlap.
    identifiers_correlation_limit: Annotated[int, Field(ge=1, le=100_000)] = 50
    identifiers_warninglists: str = "default"
    identifiers_time_slack_seconds: Annotated[int, Field(ge=0, le=3600)] = 0

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return upper

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("only sqlite:// and postgresql:// URLs are supported")
        return value

    @model_validator(mode="after")
    def _production_guards(self) -> Settings:
        if not self.secret_key:
            key_file = self.data_dir / SECRET_KEY_FILE
            if key_file.is_file():
                self.secret_key = key_file.read_text(encoding="utf-8").strip()
            elif self.environment is not Environment.PRODUCTION:
                self.secret_key = DEV_SECRET_KEY
        if self.environment is Environment.PRODUCTION:
            if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < MIN_SECRET_LENGTH:
                raise ValueError(
                    "CROSSBORDER_SECRET_KEY must be set to a random value of at least "
                    f"{MIN_SECRET_LENGTH} characters in production "
                    "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
                )
            if self.demo_mode:
                raise ValueError("CROSSBORDER_DEMO_MODE cannot be enabled in production")
            if not self.cookie_secure:
                raise ValueError("CROSSBORDER_COOKIE_SECURE cannot be disabled in production")
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'crossborder.sqlite3').resolve()}"

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (and overrides); raise ConfigError on bad input."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            name = f"CROSSBORDER_{where.upper()}" if err["loc"] else where
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {msg}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def generate_secret_key() -> str:
    return secrets.token_urlsafe(48)


def ensure_data_dir(settings: Settings) -> Path:
    """Create the data directory (owner-only) and its secret key file if they are missing."""
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    key_file = data_dir / SECRET_KEY_FILE
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_text(generate_secret_key() + "\n", encoding="utf-8")
    return data_dir

"""Configuration: defaults, the environment, and refusals in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossborder.settings import (
    DEV_SECRET_KEY,
    ConfigError,
    Environment,
    ensure_data_dir,
    load_settings,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("CROSSBORDER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_give_a_sqlite_database_under_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.port == 8000
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'var' / 'crossborder.sqlite3'}"
    assert settings.secret_key == DEV_SECRET_KEY


def test_environment_variables_are_prefixed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CROSSBORDER_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("CROSSBORDER_PORT", "8123")
    monkeypatch.setenv("PORT", "1")  # not ours: ignored
    settings = load_settings()
    assert settings.port == 8123
    assert settings.data_dir == tmp_path / "elsewhere"


def test_production_refuses_the_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSBORDER_ENVIRONMENT", "production")
    with pytest.raises(ConfigError, match="CROSSBORDER_SECRET_KEY"):
        load_settings()


def test_production_refuses_a_short_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSBORDER_ENVIRONMENT", "production")
    monkeypatch.setenv("CROSSBORDER_SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="at least 32"):
        load_settings()


def test_production_refuses_demo_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSBORDER_ENVIRONMENT", "production")
    monkeypatch.setenv("CROSSBORDER_SECRET_KEY", "k" * 48)
    monkeypatch.setenv("CROSSBORDER_DEMO_MODE", "true")
    with pytest.raises(ConfigError, match="DEMO_MODE"):
        load_settings()


def test_production_accepts_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSBORDER_ENVIRONMENT", "production")
    monkeypatch.setenv("CROSSBORDER_SECRET_KEY", "k" * 48)
    assert load_settings().is_production


def test_production_reads_the_secret_written_by_init(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ensure_data_dir(load_settings(data_dir=tmp_path / "node"))
    assert (tmp_path / "node" / "secret.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "node").stat().st_mode & 0o777 == 0o700
    monkeypatch.setenv("CROSSBORDER_ENVIRONMENT", "production")
    settings = load_settings(data_dir=tmp_path / "node")
    assert len(settings.secret_key) >= 32
    assert settings.secret_key != DEV_SECRET_KEY


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("CROSSBORDER_PORT", "eighty", "CROSSBORDER_PORT"),
        ("CROSSBORDER_PORT", "70000", "CROSSBORDER_PORT"),
        ("CROSSBORDER_DATABASE_URL", "mysql://x", "only sqlite"),
        ("CROSSBORDER_ENVIRONMENT", "staging", "CROSSBORDER_ENVIRONMENT"),
        ("CROSSBORDER_LOG_LEVEL", "LOUD", "CROSSBORDER_LOG_LEVEL"),
    ],
)
def test_invalid_values_give_one_clear_message(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message

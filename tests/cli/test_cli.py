"""The `crossborder` command, run as a real process against a fresh database."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from crossborder.auth.models import ApiToken
from crossborder.db.migrate import head_revision
from tests.cli.conftest import Run


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("crossborder: error: ")
    return lines[0]


def test_init_creates_a_private_data_dir_and_migrates(run: Run, node_env: dict[str, str]) -> None:
    result = run("init")
    assert result.returncode == 0, result.stderr
    data_dir = Path(node_env["CROSSBORDER_DATA_DIR"])
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert (data_dir / "secret.key").stat().st_mode & 0o777 == 0o600
    current = run("db", "current")
    assert f"current {head_revision(node_env['CROSSBORDER_DATABASE_URL'])}" in current.stdout


def test_demo_loads_once_and_the_chain_verifies(run: Run) -> None:
    first = run("demo")
    assert first.returncode == 0, first.stderr
    assert "demo data loaded" in first.stdout
    assert "linh" in first.stdout
    second = run("demo")
    assert "already present" in second.stdout
    verify = run("audit", "verify")
    assert verify.returncode == 0
    assert verify.stdout.startswith("OK: ")


def test_user_add_then_duplicate_and_unknown_authority(run: Run) -> None:
    assert run("demo").returncode == 0
    added = run(
        "user",
        "add",
        "mai",
        "--authority",
        "VN-A05",
        "--role",
        "officer",
        "--password-stdin",
        stdin="a-long-enough-password\n",
    )
    assert added.returncode == 0, added.stderr
    assert "user mai created" in added.stdout
    again = run(
        "user",
        "add",
        "mai",
        "--authority",
        "VN-A05",
        "--role",
        "officer",
        "--password-stdin",
        stdin="a-long-enough-password\n",
    )
    assert again.returncode == 1
    _one_line_error(again)
    unknown = run(
        "user",
        "add",
        "tam",
        "--authority",
        "XX-NOPE",
        "--role",
        "officer",
        "--password-stdin",
        stdin="a-long-enough-password\n",
    )
    assert unknown.returncode == 1
    assert "XX-NOPE" in _one_line_error(unknown)
    weak = run(
        "user",
        "add",
        "tam",
        "--authority",
        "VN-A05",
        "--role",
        "officer",
        "--password-stdin",
        stdin="short\n",
    )
    assert weak.returncode == 1
    bad_role = run(
        "user",
        "add",
        "tam",
        "--authority",
        "VN-A05",
        "--role",
        "emperor",
        "--password-stdin",
        stdin="a-long-enough-password\n",
    )
    assert bad_role.returncode == 1
    _one_line_error(bad_role)


def test_token_create_prints_the_token_once_and_stores_a_hash(
    run: Run, node_env: dict[str, str]
) -> None:
    assert run("demo").returncode == 0
    result = run(
        "token",
        "create",
        "--user",
        "hoa",
        "--name",
        "feed puller",
        "--scope",
        "directory:read",
        "--days",
        "30",
    )
    assert result.returncode == 0, result.stderr
    raw = result.stdout.strip()
    assert raw.startswith("cbt_")
    engine = create_engine(node_env["CROSSBORDER_DATABASE_URL"])
    with Session(engine) as session:
        token = session.scalars(select(ApiToken).where(ApiToken.name == "feed puller")).one()
        assert raw not in (token.secret_hash, token.public_id)
        assert token.scopes == ["directory:read"]
    engine.dispose()


def test_token_scope_beyond_the_users_roles_is_refused(run: Run) -> None:
    assert run("demo").returncode == 0
    result = run("token", "create", "--user", "hoa", "--name", "x", "--scope", "users:manage")
    assert result.returncode == 1
    _one_line_error(result)


@pytest.mark.parametrize(
    "args",
    [
        ("frobnicate",),
        ("user", "add"),
        (
            "token",
            "create",
            "--user",
            "hoa",
            "--name",
            "x",
            "--scope",
            "directory:read",
            "--days",
            "999",
        ),
        ("serve", "--port", "99999"),
        ("worker", "--interval", "abc"),
    ],
)
def test_nonsense_arguments_give_one_line_and_exit_2(run: Run, args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 2
    _one_line_error(result)


def test_invalid_configuration_gives_one_line_and_a_nonzero_exit(run: Run) -> None:
    result = run("audit", "verify", CROSSBORDER_PORT="eighty")
    assert result.returncode == 78
    assert "CROSSBORDER_PORT" in _one_line_error(result)


def test_production_refuses_the_default_secret(run: Run, tmp_path: Path) -> None:
    result = run(
        "db",
        "current",
        CROSSBORDER_ENVIRONMENT="production",
        CROSSBORDER_DATA_DIR=str(tmp_path / "fresh"),
    )
    assert result.returncode == 78
    assert "SECRET_KEY" in _one_line_error(result)


def test_serve_refuses_an_unmigrated_database(run: Run) -> None:
    result = run("serve")
    assert result.returncode == 1
    assert "db upgrade" in _one_line_error(result)


@pytest.mark.parametrize(
    "command",
    [
        (),
        ("init",),
        ("serve",),
        ("worker",),
        ("db",),
        ("db", "upgrade"),
        ("user", "add"),
        ("token", "create"),
        ("audit", "verify"),
        ("demo",),
    ],
)
def test_help_everywhere(run: Run, command: tuple[str, ...]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "Usage:" in result.stdout


def test_worker_runs_one_sweep(run: Run) -> None:
    assert run("init").returncode == 0
    result = run("worker", "--once")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sweep: ")


def test_audit_verify_reports_a_tampered_event(
    run: Run, node_env: dict[str, str], is_postgres: bool
) -> None:
    assert run("demo").returncode == 0
    url = node_env["CROSSBORDER_DATABASE_URL"]
    if is_postgres:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
            conn.execute(text("UPDATE audit_events SET actor_label = 'nobody' WHERE seq = 7"))
        engine.dispose()
    else:
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TRIGGER audit_events_no_update")
            conn.execute("UPDATE audit_events SET actor_label = 'nobody' WHERE seq = 7")
    result = run("audit", "verify")
    assert result.returncode == 1
    assert result.stdout.startswith("BROKEN at event 7")

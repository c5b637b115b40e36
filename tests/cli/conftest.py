"""The `crossborder` command as a real process, on a fresh database and data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def node_env(tmp_path: Path, fresh_database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBORDER_")}
    env["CROSSBORDER_DATA_DIR"] = str(tmp_path / "node")
    env["CROSSBORDER_DATABASE_URL"] = fresh_database_url
    return env


@pytest.fixture
def run(node_env: dict[str, str]) -> Run:
    def _run(
        *args: str, stdin: str | None = None, **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crossborder.cli.main", *args],
            env={**node_env, **extra_env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return _run

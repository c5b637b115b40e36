"""A real node in a subprocess and Debian's chromium driven by Playwright.

The node gets its own data directory and a fresh database of the run's backend (SQLite
file or a temporary PostgreSQL database), loads the demo data through the CLI, and serves
on a free loopback port. Where chromium is missing the tests skip with a clear reason,
except under CI (``CROSSBORDER_REQUIRE_BROWSER=1``), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DEMO_PASSWORD = "demo-password-2026"


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    env: dict[str, str]

    def cli(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crossborder.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            input=input_text,
            timeout=120,
            check=False,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("node")
    configured = os.environ.get("CROSSBORDER_TEST_DATABASE_URL", "")
    temp_db = None
    if configured.startswith("postgresql"):
        temp_db = f"cb_live_{uuid.uuid4().hex[:10]}"
        admin = create_engine(make_url(configured), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{temp_db}"'))
        admin.dispose()
        db_url = make_url(configured).set(database=temp_db).render_as_string(False)
    else:
        db_url = f"sqlite:///{data_dir / 'crossborder.sqlite3'}"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBORDER_")}
    env.update(
        {
            "CROSSBORDER_DATA_DIR": str(data_dir),
            "CROSSBORDER_DATABASE_URL": db_url,
            "CROSSBORDER_DEMO_MODE": "true",
            "CROSSBORDER_NODE_NAME": "Viet Nam MPS (test)",
        }
    )
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, env)
    loaded = server.cli("demo")
    assert loaded.returncode == 0, loaded.stderr
    log = (data_dir / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "crossborder.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("node did not start: " + (data_dir / "server.log").read_text())
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        if temp_db:
            admin = create_engine(make_url(configured), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{temp_db}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per module. Playwright's sync API keeps an asyncio loop running in this
    thread while it is active; stopping it after each module lets later tests use asyncio."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CROSSBORDER_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required (CROSSBORDER_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("chromium not installed: `apt-get install chromium` to run browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    context = browser.new_context(locale="en-GB", timezone_id="Asia/Ho_Chi_Minh")
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()

"""`crossborder intel` as a real process, against a demo node."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from stix2validator import ValidationOptions, validate_string

from tests.intel.conftest import Run
from tests.intel.factories import AMBER, CLEAR, GREEN, bundle, indicator, sco


@pytest.fixture
def demo(cli: Run) -> Run:
    loaded = cli("demo")
    assert loaded.returncode == 0, loaded.stderr
    made = cli("intel", "collection", "create", "VN feed", "--alias", "vn-feed", "--as", "admin")
    assert made.returncode == 0, made.stderr
    return cli


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """An HTTP server on the loopback serving ``tmp_path/www``; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_import_with_progress_then_again_then_export(demo: Run, tmp_path: Path) -> None:
    objects = [indicator(f"10.2.{i // 250}.{i % 250}", marked=[GREEN]) for i in range(1500)]
    objects += [
        indicator("198.51.100.77", marked=[AMBER]),
        sco("ipv4-addr", "198.51.100.77", marked=[CLEAR]),
    ]
    path = _write(tmp_path, "feed.json", orjson.dumps(bundle(*objects)))
    done = demo("intel", "import", path, "--collection", "vn-feed", "--as", "hoa")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "vn-feed: 1502 stored, 0 already present, 0 invalid (of 1502)\n"
    assert "importing" in done.stderr  # the progress bar
    again = demo("intel", "import", path, "--collection", "vn-feed", "--as", "hoa")
    assert again.stdout == "vn-feed: 0 stored, 1502 already present, 0 invalid (of 1502)\n"

    listed = demo("intel", "collection", "list", "--as", "linh")
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.startswith("vn-feed\t")
    assert line.split("\t")[2:] == ["r-", "VN feed"]
    assert demo("intel", "collection", "list", "--as", "jack").stdout == ""
    granted = demo(
        "intel", "collection", "grant", "vn-feed", "--authority", "AU-AFP", "--as", "admin"
    )
    assert (granted.returncode, granted.stdout) == (0, "authority AU-AFP: read\n")
    assert demo("intel", "collection", "list", "--as", "jack").stdout.startswith("vn-feed\t")

    out = tmp_path / "out.json"
    exported = demo(
        "intel", "export", "--collection", "vn-feed", "--as", "jack", "--type", "indicator",
        "--audience", "authority:MA-BNPJ", "-o", str(out),
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert "1 left out (markings)" in exported.stderr  # AMBER: jack's authority is a recipient
    data = out.read_text(encoding="utf-8")
    ids = {o["id"] for o in orjson.loads(data)["objects"]}
    assert len(ids) == 1501  # 1500 GREEN indicators and the TLP:GREEN definition
    assert objects[-2]["id"] not in ids
    assert validate_string(data, ValidationOptions(version="2.1")).is_valid
    public = demo(
        "intel", "export", "--collection", "vn-feed", "--as", "linh", "--type", "ipv4-addr"
    )
    assert public.returncode == 0, public.stderr
    assert {o["id"] for o in orjson.loads(public.stdout)["objects"]} == {objects[-1]["id"], CLEAR}


def test_errors_are_one_line_and_urls_work(demo: Run, tmp_path: Path, served: str) -> None:
    bad = _write(tmp_path, "bad.json", b'{"type": "indicator"}')
    done = demo("intel", "import", bad, "--collection", "vn-feed", "--as", "hoa")
    assert done.returncode == 1
    assert done.stderr.startswith("crossborder: error: not a STIX bundle")
    assert done.stderr.count("\n") == 1
    good = _write(tmp_path, "good.json", orjson.dumps(bundle(indicator())))
    refused = demo("intel", "import", good, "--collection", "vn-feed", "--as", "linh")
    assert refused.returncode == 1
    assert refused.stderr == "crossborder: error: this action needs the permission 'intel:write'\n"
    missing = demo("intel", "import", good, "--collection", "nope", "--as", "hoa")
    assert (missing.returncode, missing.stderr.count("\n")) == (1, 1)
    both = demo("intel", "collection", "grant", "vn-feed", "--as", "admin")
    assert both.returncode == 1
    assert "exactly one of --authority or --token-id" in both.stderr
    mixed = _write(
        tmp_path, "mixed.json", orjson.dumps(bundle(indicator(), {**indicator(), "id": "x"}))
    )
    partial = demo("intel", "import", mixed, "--collection", "vn-feed", "--as", "hoa")
    assert partial.returncode == 0
    assert partial.stdout.endswith("1 stored, 0 already present, 1 invalid (of 2)\n")
    assert "x: id: 'x' is not <type>--<UUID>" in partial.stderr
    _write(tmp_path / "www", "good.json", orjson.dumps(bundle(indicator())))
    by_url = demo(
        "intel", "import", f"{served}/good.json", "--collection", "vn-feed", "--as", "hoa"
    )
    assert by_url.returncode == 0, by_url.stderr
    assert by_url.stdout == "vn-feed: 1 stored, 0 already present, 0 invalid (of 1)\n"
    gone = demo("intel", "import", f"{served}/gone.json", "--collection", "vn-feed", "--as", "hoa")
    assert gone.returncode == 1
    assert gone.stderr == "crossborder: error: fetching the bundle answered HTTP 404\n"

"""`crossborder identifiers import|where|warn|scan|warninglists` against a demo node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Run


@pytest.fixture
def demo(run: Run) -> Run:
    loaded = run("demo")
    assert loaded.returncode == 0, loaded.stderr
    return run


def _csv(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text(body, encoding="utf-8")
    return path


def test_import_with_progress_then_where_finds_it(demo: Run, tmp_path: Path) -> None:
    rows = "".join(f"phone,+84 91 234 {i:04d}\n" for i in range(1500))
    path = _csv(tmp_path, "type,value\n" + rows + "ip,103.27.40.7\n")
    done = demo("identifiers", "import", str(path), "--as", "linh", "--set", "Seized phone")
    assert done.returncode == 0, done.stderr
    assert "1501 identifiers stored from 1501 rows" in done.stdout
    assert "checking, then storing" in done.stderr  # the progress bar
    where = demo("identifiers", "where", "ip", "103.27.40.7", "--as", "linh")
    assert where.returncode == 0, where.stderr
    [line] = where.stdout.splitlines()
    found = json.loads(line)
    assert found["canonical"] == "103.27.40.7"
    assert [h["label"] for h in found["hits"]] == ["Seized phone"]
    # Another authority's officer learns only whom to contact.
    other = demo("identifiers", "where", "ip", "103.27.40.7", "--as", "jack")
    assert other.returncode == 0, other.stderr
    seen = json.loads(other.stdout)
    assert seen["hits"] == []
    assert len(seen["held_elsewhere"]) == 1
    assert "Seized phone" not in other.stdout


def test_a_bad_row_imports_nothing(demo: Run, tmp_path: Path) -> None:
    path = _csv(tmp_path, "type,value\nip,103.27.40.7\nimei,12345\n")
    done = demo("identifiers", "import", str(path), "--as", "linh", "--set", "x")
    assert done.returncode == 1
    assert "line 3" in done.stderr
    assert "nothing was imported" in done.stderr
    where = demo("identifiers", "where", "ip", "103.27.40.7", "--as", "linh")
    assert json.loads(where.stdout)["hits"] == []


def test_usage_errors_are_one_line(demo: Run, tmp_path: Path) -> None:
    path = _csv(tmp_path, "type,value\nip,103.27.40.7\n")
    both = demo("identifiers", "import", str(path), "--as", "linh", "--set", "a", "--set-id", "b")
    assert both.returncode == 1
    assert "exactly one of --set" in both.stderr
    nobody = demo("identifiers", "where", "ip", "103.27.40.7", "--as", "ghost")
    assert nobody.returncode == 1
    assert "no active user 'ghost'" in nobody.stderr
    naive = demo("identifiers", "where", "ip", "103.27.40.7", "--as", "linh", "--at", "2026-01-01")
    assert naive.returncode == 1
    assert "UTC offset" in naive.stderr


def test_warn_is_for_administrators_and_silences_correlation(demo: Run) -> None:
    refused = demo(
        "identifiers", "warn", "ip", "103.27.40.0/24", "--as", "linh", "--reason", "office"
    )
    assert refused.returncode == 1
    assert "identifiers:manage" in refused.stderr
    added = demo(
        "identifiers", "warn", "ip", "103.27.40.0/24", "--as", "admin", "--reason", "office NAT"
    )
    assert added.returncode == 0, added.stderr
    where = demo("identifiers", "where", "ip", "103.27.40.9", "--as", "linh")
    assert json.loads(where.stdout)["warnings"] == ["local"]


def test_warninglists_and_scan(demo: Run) -> None:
    lists = demo("identifiers", "warninglists")
    assert lists.returncode == 0
    assert any(line.startswith("public-dns-v4\t") for line in lists.stdout.splitlines())
    scanned = demo("identifiers", "scan")
    assert scanned.returncode == 0, scanned.stderr
    assert scanned.stdout.endswith("attachments scanned\n")

"""`crossborder identifiers`, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Registers the sub-app if cli/main.py does not (yet) and runs the real entry point, so the
# exit codes are those of `crossborder` itself.
_LAUNCH = """
from crossborder.cli.identifiers import identifiers_app
from crossborder.cli.main import app, main
if not any(group.name == "identifiers" for group in app.registered_groups):
    app.add_typer(identifiers_app, name="identifiers")
main()
"""


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _LAUNCH, "identifiers", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def test_normalize_prints_the_canonical_form() -> None:
    done = _run("normalize", "phone", "0912 345 678", "--region", "VN")
    assert (done.returncode, done.stdout, done.stderr) == (0, "+84912345678\n", "")


def test_normalize_prints_flags_on_a_second_line() -> None:
    done = _run("normalize", "ip", "[2001:DB8::0:1]:443")
    assert done.returncode == 0
    assert done.stdout == "2001:db8::1\nflags: documentation\n"
    done = _run(
        "normalize", "crypto", "0x52908400098527886e0f7030069857d2e4169ee7", "--chain", "eth"
    )
    assert done.stdout == "eth:0x52908400098527886E0F7030069857D2E4169EE7\nflags: evm\n"
    done = _run("normalize", "social_media", "@Scam", "--platform", "Facebook")
    assert done.stdout == "facebook:@scam\n"


def test_invalid_value_exits_1_with_one_line() -> None:
    done = _run("normalize", "crypto", "0x52908400098527886E0F7030069857D2E4169Ee7")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("crossborder: error: ")
    assert "EIP-55" in done.stderr
    assert done.stderr.count("\n") == 1


def test_unknown_type_is_a_usage_error() -> None:
    done = _run("normalize", "shoe_size", "42")
    assert done.returncode == 2
    assert "shoe_size" in done.stderr


def test_extract_from_stdin_prints_json_lines() -> None:
    text = "Liên hệ tien.scam@gmail.com hoặc 0912 345 678, ví TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    done = _run("extract", "--region", "VN", stdin=text)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows == [
        {
            "type": "email",
            "raw": "tien.scam@gmail.com",
            "canonical": "tien.scam@gmail.com",
            "start": 8,
            "end": 27,
            "flags": [],
        },
        {
            "type": "phone",
            "raw": "0912 345 678",
            "canonical": "+84912345678",
            "start": 33,
            "end": 45,
            "flags": [],
        },
        {
            "type": "crypto",
            "raw": "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
            "canonical": "tron:TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
            "start": 50,
            "end": 84,
            "flags": [],
        },
    ]


def test_extract_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "leads.json"
    path.write_text(json.dumps({"c2": "hxxp://bad[.]ru/x"}), encoding="utf-8")
    done = _run("extract", str(path))
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert row["canonical"] == "http://bad.ru/x"
    assert row["location"] == "/c2"
    assert row["flags"] == ["defanged"]


def test_extract_missing_file_exits_1() -> None:
    done = _run("extract", "/nonexistent/file.txt")
    assert done.returncode == 1
    assert done.stderr.startswith("crossborder: error: cannot read")

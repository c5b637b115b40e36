"""Signed export packages: a round trip, and every kind of tampering reported."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crossborder.evidence import package
from crossborder.evidence.package import build_package, verify_package
from crossborder.evidence.service import EvidenceIntegrityError
from crossborder.federation.identity import NodeIdentity, b64url, ensure_identity

RECORD = {
    "request": {"id": "VN-2025-0017", "type": "preservation", "status": "executed"},
    "timeline": [{"at": "2025-03-01T02:14:00Z", "event": "received"}],
}
CONTENTS = {
    "records.csv": b"msisdn,imsi\n84912345678,452040000000001\n",
    "extraction/phone.bin": os.urandom(300_000),
    "empty.txt": b"",
}


@pytest.fixture
def identity(tmp_path: Path) -> NodeIdentity:
    return ensure_identity(tmp_path / "node")


@pytest.fixture
def files(tmp_path: Path) -> list[tuple[str, Path, str]]:
    out = []
    for i, (name, data) in enumerate(CONTENTS.items()):
        path = tmp_path / f"src{i}"
        path.write_bytes(data)
        out.append((name, path, hashlib.sha256(data).hexdigest()))
    return out


@pytest.fixture
def built(tmp_path: Path, identity: NodeIdentity, files: list[tuple[str, Path, str]]) -> Path:
    return build_package(
        out_path=tmp_path / "out" / "package.zip", manifest=RECORD, files=files, identity=identity
    )


def _rewrite(
    src: Path,
    dst: Path,
    *,
    change: Callable[[str, bytes], bytes | None] | None = None,
    add: dict[str, bytes] | None = None,
) -> Path:
    """Copy a package, letting ``change`` replace (or drop, with None) members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if change is not None:
                new = change(info.filename, data)
                if new is None:
                    continue
                data = new
            zout.writestr(info.filename, data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return dst


def _manifest(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as zf:
        loaded = json.loads(zf.read("manifest.json"))
    assert isinstance(loaded, dict)
    return loaded


def test_round_trip(built: Path, identity: NodeIdentity) -> None:
    report = verify_package(built, expected_fingerprint=identity.fingerprint)
    assert report.ok, report.problems
    assert report.file_count == 3
    assert report.fingerprint == identity.fingerprint
    assert report.fingerprint_checked
    assert report.summary_lines() == [f"OK: 3 files, signed by {identity.fingerprint}"]
    manifest = report.manifest
    assert manifest is not None
    assert manifest["record"] == RECORD
    assert manifest["node"] == {
        "fingerprint": identity.fingerprint,
        "public_key": b64url(identity.signing_public_key),
        "algorithm": "Ed25519",
    }
    assert str(manifest["created_at"]).endswith("Z")
    assert [f["name"] for f in manifest["files"]] == list(CONTENTS)
    with zipfile.ZipFile(built) as zf:
        names = zf.namelist()
        raw = zf.read("manifest.json")
        assert zf.read("files/extraction/phone.bin") == CONTENTS["extraction/phone.bin"]
    assert names[:2] == ["manifest.json", "manifest.sig"]
    assert raw == bytes(rfc8785.dumps(json.loads(raw)))  # canonical JSON
    assert [p.name for p in built.parent.iterdir()] == ["package.zip"]  # no temp file left


def test_without_expected_fingerprint_it_is_reported_not_checked(built: Path) -> None:
    report = verify_package(built)
    assert report.ok
    assert not report.fingerprint_checked
    assert report.fingerprint is not None


def test_wrong_fingerprint(built: Path) -> None:
    report = verify_package(built, expected_fingerprint="0" * 64)
    assert not report.ok
    assert any("not by the expected node" in p for p in report.problems)


def test_tampered_manifest(built: Path, tmp_path: Path) -> None:
    def change(name: str, data: bytes) -> bytes:
        return data.replace(b"executed", b"refused_") if name == "manifest.json" else data

    report = verify_package(_rewrite(built, tmp_path / "t.zip", change=change))
    assert report.problems == ["the signature does not match the manifest"]


def test_tampered_file(built: Path, tmp_path: Path) -> None:
    def change(name: str, data: bytes) -> bytes:
        return data.replace(b"8491", b"8490") if name == "files/records.csv" else data

    report = verify_package(_rewrite(built, tmp_path / "t.zip", change=change))
    assert report.problems == ["file 'records.csv' does not match its SHA-256 in the manifest"]


def test_tampered_file_with_another_size(built: Path, tmp_path: Path) -> None:
    def change(name: str, data: bytes) -> bytes:
        return data + b"more" if name == "files/records.csv" else data

    report = verify_package(_rewrite(built, tmp_path / "t.zip", change=change))
    assert len(report.problems) == 1
    assert "records.csv" in report.problems[0]
    assert "size" in report.problems[0]


def test_bytes_flipped_inside_the_archive(built: Path, tmp_path: Path) -> None:
    raw = bytearray(built.read_bytes())
    with zipfile.ZipFile(built) as zf:
        info = zf.getinfo("files/extraction/phone.bin")
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 1000
    raw[offset] ^= 0xFF
    damaged = tmp_path / "d.zip"
    damaged.write_bytes(bytes(raw))
    report = verify_package(damaged)
    assert not report.ok
    assert any("phone.bin" in p for p in report.problems)


def test_missing_file(built: Path, tmp_path: Path) -> None:
    def change(name: str, data: bytes) -> bytes | None:
        return None if name == "files/empty.txt" else data

    report = verify_package(_rewrite(built, tmp_path / "t.zip", change=change))
    assert report.problems == ["file 'empty.txt' is missing"]


def test_extra_file(built: Path, tmp_path: Path) -> None:
    report = verify_package(
        _rewrite(built, tmp_path / "t.zip", add={"files/planted.txt": b"planted"})
    )
    assert report.problems == ["member 'files/planted.txt' is not listed in the manifest"]


def test_missing_signature(built: Path, tmp_path: Path) -> None:
    def change(name: str, data: bytes) -> bytes | None:
        return None if name == "manifest.sig" else data

    report = verify_package(_rewrite(built, tmp_path / "t.zip", change=change))
    assert report.problems == ["manifest.sig is missing"]


def test_signature_from_another_key(built: Path, tmp_path: Path) -> None:
    """Someone re-signs a changed manifest with their own key but keeps the node's identity."""
    forger = Ed25519PrivateKey.generate()
    manifest = _manifest(built)
    manifest["record"] = {"request": {"id": "VN-2025-0017", "status": "refused"}}
    forged = bytes(rfc8785.dumps(manifest))

    def change(name: str, data: bytes) -> bytes:
        if name == "manifest.json":
            return forged
        if name == "manifest.sig":
            return base64.b64encode(forger.sign(forged))
        return data

    report = verify_package(_rewrite(built, tmp_path / "t.zip", change=change))
    assert report.problems == ["the signature does not match the manifest"]


def test_resigned_with_another_key_is_caught_by_the_fingerprint(
    built: Path, tmp_path: Path, identity: NodeIdentity
) -> None:
    """A forger swaps in their own key: self-consistent, so only the pinned fingerprint helps."""
    forger = Ed25519PrivateKey.generate()
    raw_key = forger.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    manifest = _manifest(built)
    manifest["node"] = {
        "fingerprint": hashlib.sha256(raw_key).hexdigest(),
        "public_key": b64url(raw_key),
        "algorithm": "Ed25519",
    }
    forged = bytes(rfc8785.dumps(manifest))

    def change(name: str, data: bytes) -> bytes:
        if name == "manifest.json":
            return forged
        if name == "manifest.sig":
            return base64.b64encode(forger.sign(forged))
        return data

    path = _rewrite(built, tmp_path / "t.zip", change=change)
    unchecked = verify_package(path)
    assert unchecked.ok  # internally consistent...
    assert unchecked.fingerprint != identity.fingerprint  # ...but visibly another signer
    checked = verify_package(path, expected_fingerprint=identity.fingerprint)
    assert not checked.ok
    assert any("not by the expected node" in p for p in checked.problems)


def test_fingerprint_in_manifest_must_match_its_key(built: Path, tmp_path: Path) -> None:
    def change(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["node"]["fingerprint"] = "f" * 64
        return bytes(rfc8785.dumps(manifest))

    report = verify_package(_rewrite(built, tmp_path / "t.zip", change=change))
    assert "the fingerprint in the manifest does not match its public key" in report.problems


@pytest.mark.parametrize(
    "evil",
    ["../../etc/cron.d/x", "/etc/passwd", "files/../../x", "C:/Windows/x", "files\\..\\x"],
)
def test_zip_slip_members_are_refused(built: Path, tmp_path: Path, evil: str) -> None:
    path = _rewrite(built, tmp_path / "t.zip", add={evil: b"payload"})
    report = verify_package(path)
    assert not report.ok
    assert any("refused" in p and repr(evil) in p for p in report.problems), report.problems


def test_zip_slip_name_in_manifest_is_refused(tmp_path: Path, identity: NodeIdentity) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    with pytest.raises(package.PackageError):
        build_package(
            out_path=tmp_path / "p.zip",
            manifest={},
            files=[("../x", src, hashlib.sha256(b"x").hexdigest())],
            identity=identity,
        )


def test_duplicate_member_is_refused(built: Path, tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        path = _rewrite(built, tmp_path / "t.zip", add={"files/records.csv": b"shadow"})
    report = verify_package(path)
    assert any("appears more than once" in p for p in report.problems)


def test_oversized_archive_is_refused_without_reading(built: Path) -> None:
    report = verify_package(built, max_total_bytes=1000)
    assert not report.ok
    assert any("over the limit" in p for p in report.problems)
    assert report.manifest is None  # nothing was read


def test_zip_bomb_ratio_is_refused(tmp_path: Path, identity: NodeIdentity, built: Path) -> None:
    bomb = _rewrite(built, tmp_path / "bomb.zip", add={"files/zeros": b"\0" * (20 * 1024**2)})
    report = verify_package(bomb, max_ratio=100)
    assert any("compression ratio" in p for p in report.problems)
    assert report.manifest is None


def test_not_a_zip(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    report = verify_package(junk)
    assert not report.ok
    assert report.problems
    assert "ZIP" in report.problems[0]


def test_build_refuses_a_file_that_changed(tmp_path: Path, identity: NodeIdentity) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"changed since it was hashed")
    out = tmp_path / "out" / "p.zip"
    with pytest.raises(EvidenceIntegrityError):
        build_package(
            out_path=out,
            manifest={},
            files=[("f", src, hashlib.sha256(b"original").hexdigest())],
            identity=identity,
        )
    assert list(out.parent.iterdir()) == []  # no package, no temp file


def test_build_refuses_a_non_json_record(tmp_path: Path, identity: NodeIdentity) -> None:
    with pytest.raises(package.PackageError):
        build_package(
            out_path=tmp_path / "p.zip", manifest={"x": object()}, files=[], identity=identity
        )


# --- the command line -----------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBORDER_")}
    return subprocess.run(
        [sys.executable, "-m", "crossborder.cli.main", "evidence", "verify", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_ok(built: Path, identity: NodeIdentity) -> None:
    result = _cli(str(built), "--fingerprint", identity.fingerprint.upper())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"OK: 3 files, signed by {identity.fingerprint}"


def test_cli_ok_without_fingerprint_says_to_compare(built: Path, identity: NodeIdentity) -> None:
    result = _cli(str(built))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == f"OK: 3 files, signed by {identity.fingerprint}"
    assert "compare" in lines[1]


def test_cli_problems_exit_1(built: Path, tmp_path: Path) -> None:
    def change(name: str, data: bytes) -> bytes | None:
        if name == "files/empty.txt":
            return None
        return data.replace(b"8491", b"8490") if name == "files/records.csv" else data

    bad = _rewrite(built, tmp_path / "bad.zip", change=change)
    result = _cli(str(bad))
    assert result.returncode == 1
    assert result.stdout.strip().splitlines() == [
        "file 'records.csv' does not match its SHA-256 in the manifest",
        "file 'empty.txt' is missing",
    ]


def test_cli_wrong_fingerprint_exit_1(built: Path) -> None:
    result = _cli(str(built), "--fingerprint", "ab" * 32)
    assert result.returncode == 1
    assert "not by the expected node" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("/nonexistent/package.zip",),
        ("--fingerprint", "not-hex", "PACKAGE"),
        (),
    ],
)
def test_cli_bad_arguments_exit_2(built: Path, args: tuple[str, ...]) -> None:
    result = _cli(*(str(built) if a == "PACKAGE" else a for a in args))
    assert result.returncode == 2, (result.stdout, result.stderr)

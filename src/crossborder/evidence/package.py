"""Signed export packages: a ZIP that anyone can verify offline, years later, in court.

Layout of a package::

    manifest.json   RFC 8785 canonical JSON: format, the signing node (fingerprint and
                    Ed25519 public key, base64url), created_at (UTC), the exported record
                    (an opaque JSON object from the caller, e.g. a request and its timeline),
                    and for each file its name, size and SHA-256
    manifest.sig    base64 of the Ed25519 signature over the exact bytes of manifest.json
    files/<name>    the files themselves

Why this shape: the signature covers the manifest and the manifest pins every file by SHA-256,
so one signature check plus one hash per file proves that nothing was changed, added or removed
since the node signed it. The public key travels in the manifest so that verification needs no
network and no node; *whose* key it is comes from outside — the fingerprint the directory pins
for the sending node (``--fingerprint``), or a comparison by the reader. Canonical JSON makes
the manifest byte-for-byte reproducible from its content.

A package is also untrusted input (it may come from anyone): ``verify_package`` refuses member
names that escape the archive (zip-slip, absolute paths, backslashes), duplicate names,
symbolic links, members not listed in the manifest, and zip bombs (a total uncompressed size
limit and a compression-ratio limit), and never extracts anything to disk.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import rfc8785

from crossborder.core.clock import ensure_utc, utc_now
from crossborder.core.errors import InvalidInput
from crossborder.evidence.service import EvidenceIntegrityError
from crossborder.federation.identity import (
    NodeIdentity,
    b64url,
    b64url_decode,
    fingerprint_of,
    verify_signature,
)

FORMAT = "crossborder-evidence-package/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
FILES_PREFIX = "files/"

MAX_TOTAL_BYTES = 20 * 1024**3  # uncompressed, all members together
MAX_MANIFEST_BYTES = 64 * 1024**2
MAX_SIGNATURE_BYTES = 1024
MAX_RATIO = 1000  # deflate cannot exceed ~1032:1; beyond this only crafted archives remain
RATIO_MIN_BYTES = 1024**2  # small members may compress absurdly well (a run of spaces)
_CHUNK = 1024 * 1024
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class PackageError(InvalidInput):
    """The package cannot be built from what was given."""


# --- names -------------------------------------------------------------------------------


def _name_problem(name: str) -> str | None:
    """Why ``name`` is not a safe relative POSIX path inside the archive, or None."""
    if not name:
        return "empty name"
    if "\\" in name:
        return "backslash in name"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "absolute path"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "control character in name"
    parts = name.split("/")
    if any(part in {"", ".", ".."} for part in parts):
        return "path escapes the archive or is not normalised"
    return None


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)


def _canonical(document: dict[str, Any]) -> bytes:
    try:
        return bytes(rfc8785.dumps(document))
    except Exception as exc:  # rfc8785 raises several types for non-JSON input
        raise PackageError(
            f"the record cannot be written as canonical JSON ({type(exc).__name__})",
            field="manifest",
        ) from None


# --- building ----------------------------------------------------------------------------


def build_package(
    *,
    out_path: Path,
    manifest: dict[str, Any],
    files: Sequence[tuple[str, Path, str]],
    identity: NodeIdentity,
) -> Path:
    """Write a signed package to ``out_path`` (atomically) and return it.

    ``manifest`` is the exported record (any JSON object: e.g. the request and its timeline);
    it is stored under ``"record"`` of manifest.json. ``files`` lists ``(name in the package,
    path on disk, expected SHA-256)``; each file is re-hashed while it is copied and the build
    fails (nothing is written) if it no longer matches — a package never carries a file whose
    hash differs from the one it claims.
    """
    if not isinstance(manifest, dict):
        raise PackageError("the record must be a JSON object", field="manifest")
    created_at = ensure_utc(utc_now()).replace(microsecond=0)
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name, path, sha256 in files:
        problem = _name_problem(name)
        if problem:
            raise PackageError(f"file name {name!r} refused: {problem}", field="files")
        if name in seen:
            raise PackageError(f"file name {name!r} appears twice", field="files")
        if not isinstance(sha256, str) or _SHA256_HEX.fullmatch(sha256) is None:
            raise PackageError(f"{name!r}: not a SHA-256 digest", field="files")
        seen.add(name)
        entries.append({"name": name, "size": path.stat().st_size, "sha256": sha256})
    document = {
        "format": FORMAT,
        "node": {
            "fingerprint": identity.fingerprint,
            "public_key": b64url(identity.signing_public_key),
            "algorithm": "Ed25519",
        },
        "created_at": created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "record": manifest,
        "files": entries,
    }
    manifest_bytes = _canonical(document)
    signature = base64.b64encode(identity.sign(manifest_bytes)) + b"\n"

    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".package-", suffix=".tmp", dir=out_path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            stamp = _zip_time(created_at)
            for name, data in ((MANIFEST_NAME, manifest_bytes), (SIGNATURE_NAME, signature)):
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
            for (name, path, sha256), entry in zip(files, entries, strict=True):
                info = zipfile.ZipInfo(FILES_PREFIX + name, date_time=stamp)
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                _copy_checked(zf, info, path, sha256=sha256, size=entry["size"])
            raw.flush()
            os.fsync(raw.fileno())
        tmp.replace(out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out_path


def _copy_checked(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, *, sha256: str, size: int
) -> None:
    digest = hashlib.sha256()
    copied = 0
    info.file_size = size  # lets zipfile choose ZIP64 up front for files over 2 GiB
    with path.open("rb") as src, zf.open(info, "w") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            copied += len(chunk)
            dst.write(chunk)
    if digest.hexdigest() != sha256 or copied != size:
        raise EvidenceIntegrityError(
            f"{info.filename}: the file no longer matches its SHA-256; the package was not built"
        )


# --- verifying ---------------------------------------------------------------------------


@dataclass
class VerifyReport:
    ok: bool
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    fingerprint: str | None = None
    fingerprint_checked: bool = False
    file_count: int = 0

    def summary_lines(self) -> list[str]:
        if self.ok:
            return [f"OK: {self.file_count} files, signed by {self.fingerprint}"]
        return list(self.problems)


def _read_bounded(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    with zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError("member larger than allowed")
    return data


def _hash_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with zf.open(info) as fh:  # reads at most the declared size
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_members(
    infos: list[zipfile.ZipInfo], *, max_total_bytes: int, max_ratio: float
) -> tuple[list[str], dict[str, zipfile.ZipInfo], bool]:
    """Structural checks before reading anything. Returns (problems, by name, readable)."""
    problems: list[str] = []
    by_name: dict[str, zipfile.ZipInfo] = {}
    readable = True
    total = 0
    for info in infos:
        name = info.filename
        problem = _name_problem(name.rstrip("/") if info.is_dir() else name)
        if problem:
            problems.append(f"member {name!r} refused: {problem}")
            continue  # never opened
        if name in by_name:
            problems.append(f"member {name!r} appears more than once")
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            problems.append(f"member {name!r} is a symbolic link")
            continue
        if info.flag_bits & 0x1:
            problems.append(f"member {name!r} is encrypted")
            continue
        total += info.file_size
        if info.file_size > RATIO_MIN_BYTES and info.file_size > max_ratio * max(
            info.compress_size, 1
        ):
            problems.append(f"member {name!r} has a suspicious compression ratio (zip bomb?)")
            readable = False
        by_name[name] = info
    if total > max_total_bytes:
        problems.append(
            f"the archive would expand to {total} bytes, over the limit of {max_total_bytes}"
        )
        readable = False
    return problems, by_name, readable


def verify_package(
    path: Path,
    *,
    expected_fingerprint: str | None = None,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_ratio: float = MAX_RATIO,
) -> VerifyReport:
    """Check a package completely; report every problem found (never raises on bad input).

    Without ``expected_fingerprint`` the signature is checked against the key in the manifest
    and the report carries that key's fingerprint, for the reader to compare with the one the
    directory pins for the sending node.
    """
    report = VerifyReport(ok=False)
    problems = report.problems
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        problems.append(f"not a readable ZIP archive ({type(exc).__name__})")
        return report
    with zf:
        member_problems, members, readable = _check_members(
            zf.infolist(), max_total_bytes=max_total_bytes, max_ratio=max_ratio
        )
        problems.extend(member_problems)
        if not readable:
            return report
        document = _verify_manifest(zf, members, problems, expected_fingerprint, report)
        listed: set[str] = {MANIFEST_NAME, SIGNATURE_NAME}
        if document is not None:
            listed |= _verify_files(zf, members, document, problems)
            report.file_count = len(document.get("files") or [])
        for name in sorted(set(members) - listed):
            problems.append(f"member {name!r} is not listed in the manifest")
    report.ok = not problems
    return report


def _verify_manifest(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    problems: list[str],
    expected_fingerprint: str | None,
    report: VerifyReport,
) -> dict[str, Any] | None:
    manifest_info = members.get(MANIFEST_NAME)
    signature_info = members.get(SIGNATURE_NAME)
    if manifest_info is None:
        problems.append(f"{MANIFEST_NAME} is missing")
        return None
    try:
        manifest_bytes = _read_bounded(zf, manifest_info, MAX_MANIFEST_BYTES)
        document = json.loads(manifest_bytes)
    except (ValueError, zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError) as exc:
        problems.append(f"{MANIFEST_NAME} cannot be read ({type(exc).__name__})")
        return None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        problems.append(f"{MANIFEST_NAME} is not a {FORMAT} manifest")
        return None
    report.manifest = document

    node = document.get("node")
    public_key: bytes | None = None
    if isinstance(node, dict) and isinstance(node.get("public_key"), str):
        try:
            public_key = b64url_decode(node["public_key"])
        except (ValueError, binascii.Error):
            public_key = None
    if public_key is None or len(public_key) != 32:
        problems.append("the manifest does not carry a valid Ed25519 public key")
    else:
        fingerprint = fingerprint_of(public_key)
        report.fingerprint = fingerprint
        assert isinstance(node, dict)
        if node.get("fingerprint") != fingerprint:
            problems.append("the fingerprint in the manifest does not match its public key")
        if expected_fingerprint is not None:
            report.fingerprint_checked = True
            if fingerprint != expected_fingerprint.strip().lower():
                problems.append(
                    f"signed by {fingerprint}, not by the expected node {expected_fingerprint}"
                )
        if signature_info is None:
            problems.append(f"{SIGNATURE_NAME} is missing")
        else:
            try:
                signature = base64.b64decode(
                    _read_bounded(zf, signature_info, MAX_SIGNATURE_BYTES).strip(), validate=True
                )
            except (ValueError, zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError):
                signature = b""
            if not verify_signature(public_key, manifest_bytes, signature):
                problems.append("the signature does not match the manifest")
    return document


def _verify_files(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    document: dict[str, Any],
    problems: list[str],
) -> set[str]:
    """Check each listed file; return the member names the manifest accounts for."""
    listed: set[str] = set()
    files = document.get("files")
    if not isinstance(files, list):
        problems.append("the manifest has no list of files")
        return listed
    for index, entry in enumerate(files):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and isinstance(entry.get("size"), int)
            and isinstance(entry.get("sha256"), str)
        ):
            problems.append(f"file entry {index} in the manifest is malformed")
            continue
        name, size, sha256 = entry["name"], entry["size"], entry["sha256"]
        problem = _name_problem(name)
        if problem:
            problems.append(f"file {name!r} in the manifest refused: {problem}")
            continue
        member_name = FILES_PREFIX + name
        listed.add(member_name)
        info = members.get(member_name)
        if info is None:
            problems.append(f"file {name!r} is missing")
            continue
        if info.file_size != size:
            problems.append(f"file {name!r} has size {info.file_size}, the manifest says {size}")
            continue
        try:
            actual, read = _hash_member(zf, info)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError) as exc:
            problems.append(f"file {name!r} is damaged ({type(exc).__name__})")
            continue
        if read != size or actual != sha256:
            problems.append(f"file {name!r} does not match its SHA-256 in the manifest")
    return listed

"""Content-addressed storage of evidence files, outside the database.

Why outside the database: evidence can be gigabytes (disk images, phone extractions); keeping
it in files lets the database stay small, be backed up often, and be replicated cheaply.
Why content-addressed: the name of a file *is* its SHA-256, so the hash recorded on arrival
and the file on disk cannot drift apart unnoticed, identical files are stored once, and a blob
can never be overwritten by different content under the same name.

Layout: ``<data_dir>/evidence/sha256/<first 2 hex>/<64 hex>`` (files 0600, directories 0700),
temporary files in ``<data_dir>/evidence/tmp`` (same file system, so the final rename is
atomic).

Writing: bytes are streamed to a temporary file while SHA-256 is computed incrementally (the
whole file is never held in memory); the size limit is enforced as the bytes arrive; then
fsync and an atomic rename. Any failure — over the limit, the client disconnecting, an
exception in the producer — removes the temporary file, so a blob either exists complete and
named by its hash, or not at all. A process killed mid-upload can leave a temporary file:
``remove_stale_temp_files`` (for the worker's sweep) deletes those.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from crossborder.core.errors import DomainError, InvalidInput, NotFound

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
READ_CHUNK = 1024 * 1024
_TMP_DIR = "tmp"
_TMP_PREFIX = "upload-"


class TooLarge(DomainError):
    status = 413
    code = "too-large"
    title = "Content too large"


class BlobMissing(NotFound):
    """The database knows the file but the store does not have it."""

    code = "blob-missing"


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    path: Path


def evidence_root(data_dir: Path) -> Path:
    """The root of the store for a node's data directory."""
    return data_dir / "evidence"


def check_sha256(sha256: str) -> str:
    """Return ``sha256`` if it is exactly 64 lower-case hex digits (no path tricks), else raise."""
    if not isinstance(sha256, str) or SHA256_HEX.fullmatch(sha256) is None:
        raise InvalidInput("not a SHA-256 digest (64 lower-case hex digits)", field="sha256")
    return sha256


def blob_path(root: Path, sha256: str) -> Path:
    """Where the blob with this hash lives (whether or not it exists)."""
    digest = check_sha256(sha256)
    return root / "sha256" / digest[:2] / digest


def _private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents owner-only (``mkdir(parents=True)`` would not)."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a concurrent upload created it
            directory.mkdir(mode=0o700)
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _intact(path: Path, sha256: str, size: int) -> bool:
    try:
        return _hash_file(path) == (sha256, size)
    except OSError:  # missing, or a symbolic link (O_NOFOLLOW): not a blob to keep
        return False


class _BlobWriter:
    """One upload in progress: a temporary file plus a running hash and size."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.root = root
        self.max_bytes = max_bytes
        self.digest = hashlib.sha256()
        self.size = 0
        tmp_dir = _private_dir(root / _TMP_DIR)
        fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=tmp_dir)  # created 0600
        self.tmp = Path(name)
        self.fh: BinaryIO = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise TooLarge(f"the file is larger than the limit of {self.max_bytes} bytes")
        self.digest.update(chunk)
        self.fh.write(chunk)

    def finish(self) -> StoredBlob:
        """fsync, then move into place (or keep an identical existing blob)."""
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        sha256 = self.digest.hexdigest()
        final = blob_path(self.root, sha256)
        _private_dir(final.parent)
        if _intact(final, sha256, self.size):
            self.tmp.unlink()  # dedupe: the same content is already stored intact
        else:
            # New content, or a stored copy that no longer matches its name (damaged or
            # tampered): the bytes just received are the right ones, put them in place.
            os.replace(self.tmp, final)
            _fsync_dir(final.parent)
        return StoredBlob(sha256=sha256, size=self.size, path=final)

    def abort(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


def store_iter(chunks: Iterable[bytes], *, root: Path, max_bytes: int) -> StoredBlob:
    """Store the bytes produced by ``chunks``; refuse (413) as soon as they exceed max_bytes."""
    writer = _BlobWriter(root, max_bytes)
    try:
        for chunk in chunks:
            writer.write(chunk)
        return writer.finish()
    except BaseException:
        writer.abort()
        raise


async def store_stream(chunks: AsyncIterator[bytes], *, root: Path, max_bytes: int) -> StoredBlob:
    """The async twin of :func:`store_iter`, for ``request.stream()`` in a FastAPI route.

    Chunks are written as they come (small, bounded writes); the fsync and rename, which can
    block for a while, run in a worker thread. A cancelled request (client gone) removes the
    temporary file like any other failure.
    """
    writer = _BlobWriter(root, max_bytes)
    try:
        async for chunk in chunks:
            writer.write(chunk)
        return await asyncio.to_thread(writer.finish)
    except BaseException:
        writer.abort()
        raise


def open_blob(root: Path, sha256: str) -> BinaryIO:
    """Open a stored blob for reading (no symbolic links followed)."""
    path = blob_path(root, sha256)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise BlobMissing(f"the stored file {sha256} is missing") from None
    return os.fdopen(fd, "rb")


def hash_blob(root: Path, sha256: str) -> str:
    """Re-hash the blob stored under ``sha256`` and return the digest actually found."""
    path = blob_path(root, sha256)
    try:
        return _hash_file(path)[0]
    except FileNotFoundError:
        raise BlobMissing(f"the stored file {sha256} is missing") from None


def verify_blob(root: Path, sha256: str) -> bool:
    """True when the blob exists and its content still hashes to its name."""
    try:
        return hash_blob(root, sha256) == sha256
    except BlobMissing:
        return False


def remove_stale_temp_files(root: Path, *, older_than_seconds: float = 24 * 3600) -> int:
    """Delete temporary files left by a killed process; return how many were removed."""
    tmp_dir = root / _TMP_DIR
    if not tmp_dir.is_dir():
        return 0
    cutoff = time.time() - older_than_seconds
    removed = 0
    for entry in tmp_dir.iterdir():
        if entry.name.startswith(_TMP_PREFIX) and entry.stat().st_mtime < cutoff:
            entry.unlink(missing_ok=True)
            removed += 1
    return removed

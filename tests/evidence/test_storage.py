"""The content-addressed store: streaming hash, size limit, nothing left behind on failure."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from crossborder.core.errors import InvalidInput
from crossborder.evidence import storage
from crossborder.evidence.storage import TooLarge, store_iter, store_stream

MB = 1024 * 1024


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _achunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for chunk in _chunks(data, size):
        await asyncio.sleep(0)
        yield chunk


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return storage.evidence_root(tmp_path)


@pytest.mark.parametrize(
    ("size", "chunk"),
    [(0, 1), (1, 1), (1000, 7), (64 * 1024, 64 * 1024), (3 * MB + 17, 65_536), (5 * MB, MB)],
)
def test_hash_and_size_match_the_whole_content(root: Path, size: int, chunk: int) -> None:
    data = random.Random(size).randbytes(size)
    blob = store_iter(_chunks(data, chunk), root=root, max_bytes=10 * MB)
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert blob.size == size
    assert blob.path == root / "sha256" / blob.sha256[:2] / blob.sha256
    assert blob.path.read_bytes() == data
    assert _all_files(root) == [blob.path]  # no temporary file left


def test_async_stream_matches_too(root: Path) -> None:
    data = random.Random(3).randbytes(2 * MB + 5)
    blob = asyncio.run(store_stream(_achunks(data, 65_536), root=root, max_bytes=10 * MB))
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert blob.size == len(data)
    assert _all_files(root) == [blob.path]


def test_blob_and_directories_are_owner_only(root: Path) -> None:
    blob = store_iter([b"evidence"], root=root, max_bytes=100)
    assert blob.path.stat().st_mode & 0o777 == 0o600
    assert blob.path.parent.stat().st_mode & 0o777 == 0o700
    assert (root / "sha256").stat().st_mode & 0o777 == 0o700


def test_exactly_the_limit_is_accepted(root: Path) -> None:
    blob = store_iter([b"x" * 10], root=root, max_bytes=10)
    assert blob.size == 10


def test_over_the_limit_is_refused_early_and_leaves_nothing(root: Path) -> None:
    consumed: list[int] = []

    def endless() -> Iterator[bytes]:
        for i in range(1000):
            consumed.append(i)
            yield b"x" * 1024

    with pytest.raises(TooLarge) as info:
        store_iter(endless(), root=root, max_bytes=4096)
    assert info.value.status == 413
    assert len(consumed) == 5  # stopped at the first chunk past the limit
    assert _all_files(root) == []


def test_async_over_the_limit_leaves_nothing(root: Path) -> None:
    with pytest.raises(TooLarge):
        asyncio.run(store_stream(_achunks(b"y" * 10_000, 1000), root=root, max_bytes=5000))
    assert _all_files(root) == []


def test_a_stream_that_breaks_midway_leaves_nothing(root: Path) -> None:
    def broken() -> Iterator[bytes]:
        yield b"a" * 5000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store_iter(broken(), root=root, max_bytes=MB)
    assert _all_files(root) == []


def test_a_cancelled_async_upload_leaves_nothing(root: Path) -> None:
    async def slow() -> AsyncIterator[bytes]:
        yield b"a" * 5000
        await asyncio.sleep(3600)
        yield b"never"

    async def main() -> None:
        task = asyncio.create_task(store_stream(slow(), root=root, max_bytes=MB))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert _all_files(root) == []


def test_async_iterator_raising_leaves_nothing(root: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * 5000
        raise OSError("disconnect")

    with pytest.raises(OSError, match="disconnect"):
        asyncio.run(store_stream(broken(), root=root, max_bytes=MB))
    assert _all_files(root) == []


def test_same_content_is_stored_once(root: Path) -> None:
    first = store_iter([b"same ", b"bytes"], root=root, max_bytes=100)
    inode = first.path.stat().st_ino
    second = store_iter([b"same bytes"], root=root, max_bytes=100)
    assert first == second
    assert second.path.stat().st_ino == inode  # the existing blob was kept
    assert _all_files(root) == [first.path]


def test_a_damaged_copy_is_replaced_by_an_intact_upload(root: Path) -> None:
    blob = store_iter([b"original"], root=root, max_bytes=100)
    blob.path.write_bytes(b"tampered")
    again = store_iter([b"original"], root=root, max_bytes=100)
    assert again.path.read_bytes() == b"original"
    assert storage.verify_blob(root, blob.sha256)


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "ab/../../secret",
        "/etc/passwd",
        "A" * 64,  # upper case is not the canonical form
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "a" * 63 + "\n",
        "",
    ],
)
def test_traversal_looking_hashes_are_refused(root: Path, bad: str) -> None:
    with pytest.raises(InvalidInput):
        storage.blob_path(root, bad)
    with pytest.raises(InvalidInput):
        storage.open_blob(root, bad)
    with pytest.raises(InvalidInput):
        storage.hash_blob(root, bad)


def test_open_hash_and_verify(root: Path) -> None:
    blob = store_iter([b"content"], root=root, max_bytes=100)
    with storage.open_blob(root, blob.sha256) as fh:
        assert fh.read() == b"content"
    assert storage.hash_blob(root, blob.sha256) == blob.sha256
    assert storage.verify_blob(root, blob.sha256)
    blob.path.chmod(0o600)
    blob.path.write_bytes(b"changed")
    assert not storage.verify_blob(root, blob.sha256)
    blob.path.unlink()
    assert not storage.verify_blob(root, blob.sha256)
    with pytest.raises(storage.BlobMissing):
        storage.open_blob(root, blob.sha256)


def test_a_symlinked_blob_is_not_followed(root: Path, tmp_path: Path) -> None:
    blob = store_iter([b"content"], root=root, max_bytes=100)
    target = tmp_path / "outside"
    target.write_bytes(b"content")
    blob.path.unlink()
    blob.path.symlink_to(target)
    with pytest.raises(OSError):  # noqa: PT011 - ELOOP from O_NOFOLLOW
        storage.open_blob(root, blob.sha256)


def test_stale_temp_files_are_swept(root: Path) -> None:
    store_iter([b"x"], root=root, max_bytes=10)
    stale = root / "tmp" / "upload-stale"
    stale.write_bytes(b"half an upload")
    old = 1_000_000_000
    os.utime(stale, (old, old))
    fresh = root / "tmp" / "upload-fresh"
    fresh.write_bytes(b"in progress")
    assert storage.remove_stale_temp_files(root) == 1
    assert not stale.exists()
    assert fresh.exists()


def test_a_symlink_in_place_of_a_blob_is_replaced_by_the_upload(root: Path, tmp_path: Path) -> None:
    blob = store_iter([b"content"], root=root, max_bytes=100)
    target = tmp_path / "outside"
    target.write_bytes(b"content")
    blob.path.unlink()
    blob.path.symlink_to(target)
    again = store_iter([b"content"], root=root, max_bytes=100)
    assert not again.path.is_symlink()
    assert storage.verify_blob(root, again.sha256)
    assert target.read_bytes() == b"content"  # the link's target was not written through

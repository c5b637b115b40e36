"""Attachments on a request: streamed, hashed, need-to-know, custody, signed export."""

from __future__ import annotations

import asyncio
import hashlib
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crossborder.auth.permissions import Principal
from crossborder.core.errors import NotFound
from crossborder.evidence import package, storage
from crossborder.evidence import service as evidence
from crossborder.evidence.models import Attachment
from crossborder.federation.identity import ensure_identity
from crossborder.requests import schemas, service
from crossborder.settings import Settings
from tests.requests.conftest import World, preservation_draft


async def _chunks(data: bytes, size: int = 7_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def upload(
    db: Session, settings: Settings, ref: str, actor: Principal, data: bytes, **kw: object
) -> Attachment:
    return asyncio.run(
        service.add_attachment(
            db,
            ref,
            actor=actor,
            settings=settings,
            filename="logs.csv",
            media_type="text/csv",
            chunks=_chunks(data),
            **kw,
        )  # type: ignore[arg-type]
    )


def test_upload_hash_custody_and_download(db: Session, world: World, settings: Settings) -> None:
    req = service.create_draft(db, preservation_draft(world.au), actor=world.linh)
    req = service.transition(
        db, req.public_id, schemas.TransitionIn(action="submit"), actor=world.linh
    )
    data = b"time,ip,port\n" * 5_000
    att = upload(db, settings, req.public_id, world.jack, data)
    assert att.sha256 == hashlib.sha256(data).hexdigest()
    assert att.size == len(data)
    assert [a.public_id for a in service.attachments(db, req)] == [att.public_id]
    _opened, path = service.open_attachment(
        db, req.public_id, att.public_id, actor=world.linh, settings=settings
    )
    assert path.read_bytes() == data
    kinds = [e.kind for e in evidence.custody_chain(db, att.id)]
    assert kinds == ["received", "downloaded"]
    with pytest.raises(NotFound):
        service.open_attachment(
            db, req.public_id, att.public_id, actor=world.yasmine, settings=settings
        )


def test_upload_over_the_limit_stores_nothing(
    db: Session, world: World, settings: Settings
) -> None:
    req = service.create_draft(db, preservation_draft(world.au), actor=world.linh)
    before = db.scalar(select(func.count()).select_from(Attachment))
    with pytest.raises(storage.TooLarge):
        upload(db, settings, req.public_id, world.linh, b"x" * 50_000, max_bytes=10_000)
    assert db.scalar(select(func.count()).select_from(Attachment)) == before
    root = storage.evidence_root(settings.data_dir)
    leftovers = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    assert leftovers == []


def test_interrupted_upload_stores_nothing(db: Session, world: World, settings: Settings) -> None:
    req = service.create_draft(db, preservation_draft(world.au), actor=world.linh)

    async def broken() -> AsyncIterator[bytes]:
        yield b"first part"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        asyncio.run(
            service.add_attachment(
                db,
                req.public_id,
                actor=world.linh,
                settings=settings,
                filename="x.bin",
                media_type="application/octet-stream",
                chunks=broken(),
            )
        )
    assert service.attachments(db, req) == []


def test_third_authority_cannot_attach(db: Session, world: World, settings: Settings) -> None:
    req = service.create_draft(db, preservation_draft(world.au), actor=world.linh)
    service.transition(db, req.public_id, schemas.TransitionIn(action="submit"), actor=world.linh)
    with pytest.raises(NotFound):
        upload(db, settings, req.public_id, world.yasmine, b"data")


def test_export_is_a_signed_package_that_verifies_offline(
    db: Session, world: World, settings: Settings, tmp_path: Path
) -> None:
    node = ensure_identity(settings.data_dir)
    req = service.create_draft(db, preservation_draft(world.au), actor=world.linh)
    service.transition(db, req.public_id, schemas.TransitionIn(action="submit"), actor=world.linh)
    att = upload(db, settings, req.public_id, world.jack, b"evidence bytes")
    out = service.export_package(
        db, req.public_id, actor=world.linh, settings=settings, out_dir=tmp_path
    )
    report = package.verify_package(out, expected_fingerprint=node.fingerprint)
    assert report.ok, report.problems
    assert report.manifest["record"]["request"]["reference"] == req.reference
    assert [e.kind for e in evidence.custody_chain(db, att.id)][-1] == "exported"
    # Tampering with the package afterwards is caught.
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            content = src.read(item)
            if item.filename.startswith("files/"):
                content = b"forged bytes"
            dst.writestr(item, content)
    assert not package.verify_package(tampered).ok

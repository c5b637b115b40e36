"""Attachments and their chain of custody in a real database, with the blob store on disk."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crossborder.audit import service as audit_service
from crossborder.audit.models import AuditEvent
from crossborder.auth.permissions import SYSTEM, Principal, Role
from crossborder.core.errors import InvalidInput
from crossborder.evidence import service, storage
from crossborder.evidence.models import Attachment, CustodyEvent
from crossborder.evidence.service import EvidenceIntegrityError
from crossborder.settings import Settings
from tests.fixtures.evidence import EVIDENCE_OFFICER

VIEWER = Principal(user_id=202, username="minh", authority_id=7, roles=frozenset({Role.OFFICER}))
MakeAttachment = Callable[..., Attachment]


def _audit(db: Session, action: str) -> list[AuditEvent]:
    return list(
        db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
    )


def _blobs(settings: Settings) -> list[str]:
    root = storage.evidence_root(settings.data_dir) / "sha256"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_receive_creates_row_custody_and_audit(db: Session, settings: Settings) -> None:
    content = b"subscriber: Nguyen Van A\n" * 1000

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(content), 4096):
            yield content[i : i + 4096]

    att = service.receive_upload(
        db,
        actor=EVIDENCE_OFFICER,
        settings=settings,
        owner_type="request",
        owner_id=42,
        filename="C:\\Users\\x\\Desktop\\..\\records\u202etxt.exe",
        media_type="Text/Plain; charset=utf-8",
        chunks=chunks(),
        max_bytes=1024 * 1024,
        message_id=9,
    )
    db.expire_all()
    stored = db.get(Attachment, att.id)
    assert stored is not None
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert stored.size == len(content)
    assert stored.owner_type == "request"
    assert stored.owner_id == "42"
    assert stored.message_id == 9
    assert stored.filename == "recordstxt.exe"  # path and RTL override gone
    assert stored.media_type == "text/plain"
    assert stored.uploaded_by_user_id == EVIDENCE_OFFICER.user_id
    assert stored.uploaded_by_authority_id == EVIDENCE_OFFICER.authority_id
    assert len(stored.public_id) == 36
    assert stored.created_at.tzinfo is not None

    chain = service.custody_chain(db, att.id)
    assert [(e.kind, e.sha256, e.actor_user_id) for e in chain] == [
        ("received", stored.sha256, EVIDENCE_OFFICER.user_id)
    ]
    assert chain[0].actor_label == "thu"
    assert chain[0].actor_authority_id == 7
    (event,) = _audit(db, "evidence.received")[-1:]
    assert event.object_type == "attachment"
    assert event.object_id == stored.public_id
    assert event.details["attachment_id"] == att.id
    assert event.details["sha256"] == stored.sha256
    assert "records" not in str(event.details)  # no file name in the audit record
    assert audit_service.verify_chain(db).ok
    assert storage.verify_blob(storage.evidence_root(settings.data_dir), stored.sha256)


def test_receive_async(db: Session, settings: Settings) -> None:
    async def body() -> AsyncIterator[bytes]:
        for part in (b"part one, ", b"part two"):
            yield part

    att = asyncio.run(
        service.receive_upload_async(
            db,
            actor=EVIDENCE_OFFICER,
            settings=settings,
            owner_type="request",
            owner_id="7",
            filename="notes.txt",
            media_type="text/plain",
            chunks=body(),
            max_bytes=1000,
        )
    )
    assert att.sha256 == hashlib.sha256(b"part one, part two").hexdigest()
    assert [e.kind for e in service.custody_chain(db, att.id)] == ["received"]


def test_too_large_upload_leaves_no_row_and_no_blob(db: Session, settings: Settings) -> None:
    before = db.scalar(select(func.count()).select_from(Attachment))
    with pytest.raises(storage.TooLarge):
        service.receive_upload(
            db,
            actor=EVIDENCE_OFFICER,
            settings=settings,
            owner_type="request",
            owner_id="1",
            filename="big.bin",
            media_type="application/octet-stream",
            chunks=[b"x" * 600, b"x" * 600],
            max_bytes=1000,
        )
    assert db.scalar(select(func.count()).select_from(Attachment)) == before
    assert _blobs(settings) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("media_type", "pdf"),
        ("media_type", "application/"),
        ("media_type", "evil/type"),
        ("media_type", "text/plain\r\nX-Injected: 1"),
        ("owner_type", "Request"),
        ("owner_type", ""),
        ("owner_id", ""),
        ("owner_id", "x" * 65),
    ],
)
def test_bad_metadata_is_refused_before_reading_the_body(
    db: Session, settings: Settings, field: str, value: str
) -> None:
    read = False

    def body() -> Iterator[bytes]:
        nonlocal read
        read = True
        yield b"data"

    kwargs: dict[str, Any] = {
        "owner_type": "request",
        "owner_id": "1",
        "media_type": "text/plain",
        field: value,
    }
    with pytest.raises(InvalidInput):
        service.receive_upload(
            db,
            actor=EVIDENCE_OFFICER,
            settings=settings,
            filename="a.txt",
            chunks=body(),
            max_bytes=100,
            **kwargs,
        )
    assert not read
    assert _blobs(settings) == []


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path/file.txt", "file.txt"),
        ("dir\\sub\\file.txt", "file.txt"),
        ("..", "unnamed"),
        ("", "unnamed"),
        ("   ", "unnamed"),
        (".hidden", "hidden"),
        ("bad\x00name\x1f.txt", "badname.txt"),
        ("Biên bản thu giữ.pdf", "Biên bản thu giữ.pdf"),
        ("تقرير.pdf", "تقرير.pdf"),
    ],
)
def test_sanitise_filename(raw: str, clean: str) -> None:
    assert service.sanitise_filename(raw) == clean


def test_long_filenames_keep_their_extension() -> None:
    name = service.sanitise_filename("a" * 400 + ".docx")
    assert len(name) == 255
    assert name.endswith(".docx")


def test_download_rehashes_and_records_custody(
    db: Session, settings: Settings, make_attachment: MakeAttachment
) -> None:
    att = make_attachment(b"call detail records")
    got, path = service.open_for_download(db, actor=VIEWER, attachment_id=att.id, settings=settings)
    assert got.id == att.id
    assert path.read_bytes() == b"call detail records"
    kinds = [(e.kind, e.actor_user_id) for e in service.custody_chain(db, att.id)]
    assert kinds == [("received", EVIDENCE_OFFICER.user_id), ("downloaded", VIEWER.user_id)]
    assert _audit(db, "evidence.downloaded")[-1].object_id == att.public_id


def test_export_and_verify_purposes(
    db: Session, settings: Settings, make_attachment: MakeAttachment
) -> None:
    att = make_attachment()
    service.open_for_download(
        db, actor=VIEWER, attachment_id=att.id, settings=settings, purpose="exported"
    )
    service.verify_attachment(db, actor=VIEWER, attachment_id=att.id, settings=settings)
    service.record_custody(
        db, actor=VIEWER, attachment=att, kind="transmitted", details={"node": "kh-nph"}
    )
    service.record_custody(db, actor=VIEWER, attachment=att, kind="viewed")
    kinds = [e.kind for e in service.custody_chain(db, att.id)]
    assert kinds == ["received", "exported", "verified", "transmitted", "viewed"]
    assert _audit(db, "evidence.transmitted")[-1].details["node"] == "kh-nph"
    with pytest.raises(InvalidInput):
        service.open_for_download(
            db, actor=VIEWER, attachment_id=att.id, settings=settings, purpose="viewed"
        )


@pytest.mark.parametrize("kind", ["received", "verified", "integrity_failed", "deleted"])
def test_callers_cannot_fake_system_custody_kinds(
    db: Session, make_attachment: MakeAttachment, kind: str
) -> None:
    att = make_attachment()
    with pytest.raises(InvalidInput):
        service.record_custody(db, actor=VIEWER, attachment=att, kind=kind)


@pytest.mark.parametrize(
    "details", [{"note": "x" * 500}, {"nested": {"a": 1}}, {"list": [1, 2]}, {"": 1}]
)
def test_custody_details_are_codes_only(
    db: Session, make_attachment: MakeAttachment, details: dict[str, object]
) -> None:
    att = make_attachment()
    with pytest.raises(InvalidInput):
        service.record_custody(db, actor=VIEWER, attachment=att, kind="viewed", details=details)


def test_tampered_blob_is_refused_and_recorded(
    db: Session, settings: Settings, make_attachment: MakeAttachment
) -> None:
    att = make_attachment(b"original extraction")
    path = storage.blob_path(storage.evidence_root(settings.data_dir), att.sha256)
    path.write_bytes(b"altered extraction")
    with pytest.raises(EvidenceIntegrityError) as info:
        service.open_for_download(db, actor=VIEWER, attachment_id=att.id, settings=settings)
    assert info.value.extra["problem"] == "hash-mismatch"
    chain = service.custody_chain(db, att.id)
    assert [e.kind for e in chain] == ["received", "integrity_failed"]
    failed = chain[-1]
    assert failed.sha256 == hashlib.sha256(b"altered extraction").hexdigest()
    assert failed.details == {"problem": "hash-mismatch", "expected_sha256": att.sha256}
    event = _audit(db, "evidence.integrity_failed")[-1]
    assert event.outcome == "failed"
    assert audit_service.verify_chain(db).ok
    with pytest.raises(EvidenceIntegrityError):
        service.verify_attachment(db, actor=VIEWER, attachment_id=att.id, settings=settings)
    assert [e.kind for e in service.custody_chain(db, att.id)][-1] == "integrity_failed"


def test_integrity_failure_survives_the_error(
    db: Session, settings: Settings, make_attachment: MakeAttachment
) -> None:
    """The failure record is committed before the error is raised (outermost unit of work)."""
    att = make_attachment(b"data")
    storage.blob_path(storage.evidence_root(settings.data_dir), att.sha256).write_bytes(b"x")
    with pytest.raises(EvidenceIntegrityError):
        service.open_for_download(db, actor=VIEWER, attachment_id=att.id, settings=settings)
    db.rollback()  # whatever was still open; the failure record must already be committed
    assert [e.kind for e in service.custody_chain(db, att.id)] == ["received", "integrity_failed"]


def test_missing_blob_is_refused_and_recorded(
    db: Session, settings: Settings, make_attachment: MakeAttachment
) -> None:
    att = make_attachment(b"gone")
    storage.blob_path(storage.evidence_root(settings.data_dir), att.sha256).unlink()
    with pytest.raises(EvidenceIntegrityError) as info:
        service.open_for_download(db, actor=VIEWER, attachment_id=att.id, settings=settings)
    assert info.value.extra["problem"] == "blob-missing"
    failed = service.custody_chain(db, att.id)[-1]
    assert (failed.kind, failed.sha256) == ("integrity_failed", None)


def test_same_file_twice_is_two_attachments_one_blob(
    db: Session, settings: Settings, make_attachment: MakeAttachment
) -> None:
    a = make_attachment(b"same", owner_id="1")
    b = make_attachment(b"same", owner_id="2")
    assert a.id != b.id
    assert a.sha256 == b.sha256
    assert _blobs(settings) == [a.sha256]


def test_list_for_owner(db: Session, make_attachment: MakeAttachment) -> None:
    first = make_attachment(b"1", owner_id="55")
    second = make_attachment(b"2", owner_id="55")
    make_attachment(b"3", owner_id="56")
    make_attachment(b"4", owner_type="case", owner_id="55")
    assert [a.id for a in service.list_for_owner(db, "request", 55)] == [first.id, second.id]
    assert service.list_for_owner(db, "request", "nobody") == []


def test_system_actor_is_recorded_without_user(
    db: Session, make_attachment: MakeAttachment
) -> None:
    att = make_attachment(actor=SYSTEM)
    assert att.uploaded_by_user_id is None
    (received,) = service.custody_chain(db, att.id)
    assert (received.actor_user_id, received.actor_label) == (None, "system")


def test_service_offers_no_way_to_remove_custody() -> None:
    names = [n for n in dir(service) if not n.startswith("_")]
    assert not [n for n in names if any(w in n for w in ("delete", "remove", "update", "purge"))]


def test_attachment_with_custody_cannot_be_deleted(
    db: Session, make_attachment: MakeAttachment
) -> None:
    att = make_attachment()
    db.commit()
    with pytest.raises(IntegrityError), db.begin_nested():
        db.execute(delete(Attachment).where(Attachment.id == att.id))
    assert db.get(Attachment, att.id) is not None
    assert len(service.custody_chain(db, att.id)) == 1


def test_unknown_custody_kind_is_refused_by_the_database(
    db: Session, make_attachment: MakeAttachment
) -> None:
    att = make_attachment()
    db.commit()
    nested = db.begin_nested()
    db.add(CustodyEvent(attachment_id=att.id, kind="shredded", actor_label="x"))
    with pytest.raises(IntegrityError):
        db.flush()
    nested.rollback()

"""Evidence service: receive files, serve them only while intact, keep the chain of custody.

Every function that records something writes a custody event *and* an audit event in the
caller's transaction (``@atomic``): the custody chain is what a court sees about one file, the
audit chain is the node-wide, hash-chained record that the custody rows were not made up later.
``details`` in both hold identifiers and codes only — never a file name or content.

ACCESS CONTROL IS THE CALLER'S JOB. Evidence belongs to an owner (a request, a case, ...) and
only the owner's capability knows who may see it (for a request: the two authorities on it).
These functions trust their caller on that point; ``actor`` is taken for the custody and audit
record only. Call them from the owner's service after it has authorised the principal.

There is deliberately no function that updates or deletes a custody event, and attachments
with custody events cannot be deleted (foreign key ``RESTRICT``).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.audit import service as audit
from crossborder.auth.permissions import Principal
from crossborder.core.errors import DomainError, InvalidInput, NotFound
from crossborder.db.session import atomic, unit_of_work
from crossborder.evidence import storage
from crossborder.evidence.models import (
    FILENAME_MAX,
    MEDIA_TYPE_MAX,
    Attachment,
    CustodyEvent,
    CustodyKind,
)
from crossborder.evidence.storage import StoredBlob
from crossborder.settings import Settings

OBJECT_TYPE = "attachment"
DEFAULT_FILENAME = "unnamed"

# Kinds a caller may record directly; the others are recorded by the functions that do the
# thing (receiving, re-hashing), so a "verified" event always means a hash was really checked.
CALLER_KINDS = frozenset({CustodyKind.VIEWED, CustodyKind.EXPORTED, CustodyKind.TRANSMITTED})
# Purposes for which the file content is handed out (after re-hashing).
CONTENT_KINDS = frozenset({CustodyKind.DOWNLOADED, CustodyKind.EXPORTED, CustodyKind.TRANSMITTED})

_OWNER_TYPE = re.compile(r"[a-z][a-z0-9_.-]{0,39}")
_MEDIA_TYPE = re.compile(
    r"(application|audio|font|example|image|message|model|multipart|text|video)"
    r"/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
)
_DETAIL_VALUE_MAX = 200


class EvidenceIntegrityError(DomainError):
    """A stored file no longer matches the SHA-256 recorded when it arrived; it is not served."""

    status = 500
    code = "evidence-integrity"
    title = "Evidence integrity failure"


# --- pure input rules --------------------------------------------------------------------


def sanitise_filename(name: str) -> str:
    """Keep only the last path component, without control/format characters, ≤ 255 chars.

    Format characters (Unicode category Cf) include the right-to-left override used to
    disguise ``exe.pdf`` as ``fdp.exe``; they go too. The result is never empty, ``.`` or ``..``.
    """
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch) not in {"Cc", "Cf"})
    text = text.strip().lstrip(".").strip()
    if not text:
        return DEFAULT_FILENAME
    if len(text) > FILENAME_MAX:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext) <= 16 and stem:
            text = stem[: FILENAME_MAX - len(ext) - 1].rstrip() + "." + ext
        else:
            text = text[:FILENAME_MAX]
    return text


def normalise_media_type(value: str) -> str:
    """``type/subtype`` in lower case (parameters dropped); refuse anything else."""
    essence = (value or "").split(";", 1)[0].strip().lower()
    if len(essence) > MEDIA_TYPE_MAX or _MEDIA_TYPE.fullmatch(essence) is None:
        raise InvalidInput("not a media type of the form type/subtype", field="media_type")
    return essence


def _check_owner(owner_type: str, owner_id: object) -> tuple[str, str]:
    if not isinstance(owner_type, str) or _OWNER_TYPE.fullmatch(owner_type) is None:
        raise InvalidInput("owner type must be a short lower-case code", field="owner_type")
    text = str(owner_id)
    if not 0 < len(text) <= 64 or not text.isprintable():
        raise InvalidInput("owner id must be 1 to 64 printable characters", field="owner_id")
    return owner_type, text


def _check_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """Details are identifiers and codes: flat, scalar, short."""
    clean: dict[str, Any] = {}
    for key, value in (details or {}).items():
        if not isinstance(key, str) or not key or len(key) > 64:
            raise InvalidInput("detail keys must be short strings", field="details")
        if isinstance(value, str) and len(value) > _DETAIL_VALUE_MAX:
            raise InvalidInput(f"detail '{key}' is too long for a code", field="details")
        if value is not None and not isinstance(value, str | int | bool):
            raise InvalidInput(f"detail '{key}' must be a code or an id", field="details")
        clean[key] = value
    return clean


# --- recording ---------------------------------------------------------------------------


def _actor_fields(actor: Principal | None) -> tuple[int | None, str, int | None]:
    if actor is None:
        return None, "anonymous", None
    if actor.via == "system":
        return None, actor.label, None
    return actor.user_id, actor.label, actor.authority_id


def _custody(
    session: Session,
    *,
    actor: Principal | None,
    attachment: Attachment,
    kind: CustodyKind,
    sha256: str | None,
    details: dict[str, Any] | None = None,
    outcome: str = "ok",
) -> CustodyEvent:
    user_id, label, authority_id = _actor_fields(actor)
    clean = _check_details(details)
    event = CustodyEvent(
        attachment_id=attachment.id,
        kind=kind.value,
        actor_user_id=user_id,
        actor_label=label,
        actor_authority_id=authority_id,
        details=clean,
        sha256=sha256,
    )
    session.add(event)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"evidence.{kind.value}",
        object_type=OBJECT_TYPE,
        object_id=attachment.public_id,
        outcome=outcome,
        details={
            "attachment_id": attachment.id,
            "custody_event_id": event.id,
            "owner_type": attachment.owner_type,
            "owner_id": attachment.owner_id,
            "sha256": attachment.sha256,
            **clean,
        },
    )
    return event


@atomic
def register_blob(
    session: Session,
    *,
    actor: Principal,
    blob: StoredBlob,
    owner_type: str,
    owner_id: object,
    filename: str,
    media_type: str,
    message_id: int | None = None,
) -> Attachment:
    """Record an already stored blob as an attachment: row + custody "received" + audit."""
    owner_type, owner_text = _check_owner(owner_type, owner_id)
    user_id, _label, authority_id = _actor_fields(actor)
    attachment = Attachment(
        public_id=str(uuid.uuid4()),
        owner_type=owner_type,
        owner_id=owner_text,
        message_id=message_id,
        filename=sanitise_filename(filename),
        media_type=normalise_media_type(media_type),
        size=blob.size,
        sha256=blob.sha256,
        uploaded_by_user_id=user_id,
        uploaded_by_authority_id=authority_id,
    )
    session.add(attachment)
    session.flush()
    _custody(
        session,
        actor=actor,
        attachment=attachment,
        kind=CustodyKind.RECEIVED,
        sha256=blob.sha256,
        details={"size": blob.size, "message_id": message_id},
    )
    return attachment


def _prevalidate(owner_type: str, owner_id: object, media_type: str) -> None:
    # Fail before reading a possibly large body, not after.
    _check_owner(owner_type, owner_id)
    normalise_media_type(media_type)


def receive_upload(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    owner_type: str,
    owner_id: object,
    filename: str,
    media_type: str,
    chunks: Iterable[bytes],
    max_bytes: int,
    message_id: int | None = None,
) -> Attachment:
    """Store the file, then record it (row, custody "received", audit) in one transaction.

    The blob is written FIRST, outside the database transaction: streaming gigabytes must not
    hold a transaction open. If the database part then fails, the blob stays in the store but
    no row refers to it. That is harmless — the store is content-addressed, so the orphan can
    only ever hold exactly those bytes, and a later upload of the same file reuses it.
    Raises ``storage.TooLarge`` (413) beyond ``max_bytes`` and ``InvalidInput`` (422).
    Access control is the caller's job (see the module docstring).
    """
    _prevalidate(owner_type, owner_id, media_type)
    blob = storage.store_iter(
        chunks, root=storage.evidence_root(settings.data_dir), max_bytes=max_bytes
    )
    return register_blob(
        session,
        actor=actor,
        blob=blob,
        owner_type=owner_type,
        owner_id=owner_id,
        filename=filename,
        media_type=media_type,
        message_id=message_id,
    )


async def receive_upload_async(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    owner_type: str,
    owner_id: object,
    filename: str,
    media_type: str,
    chunks: AsyncIterator[bytes],
    max_bytes: int,
    message_id: int | None = None,
) -> Attachment:
    """:func:`receive_upload` for an async byte stream (FastAPI's ``request.stream()``).

    The database part is short and runs on the calling thread; a route that must not block
    its event loop even briefly can call ``storage.store_stream`` itself and then
    :func:`register_blob` in a thread pool.
    """
    _prevalidate(owner_type, owner_id, media_type)
    blob = await storage.store_stream(
        chunks, root=storage.evidence_root(settings.data_dir), max_bytes=max_bytes
    )
    return register_blob(
        session,
        actor=actor,
        blob=blob,
        owner_type=owner_type,
        owner_id=owner_id,
        filename=filename,
        media_type=media_type,
        message_id=message_id,
    )


@atomic
def record_custody(
    session: Session,
    *,
    actor: Principal,
    attachment: Attachment,
    kind: CustodyKind | str,
    details: dict[str, Any] | None = None,
) -> CustodyEvent:
    """Record that the file was viewed, exported or transmitted (metadata only, no re-hash).

    ``details``: identifiers and codes only (e.g. ``{"package_id": ..., "node": ...}``).
    Downloads and verifications go through :func:`open_for_download` / :func:`verify_attachment`,
    which re-hash the file first.
    """
    try:
        chosen = CustodyKind(kind)
    except ValueError:
        raise InvalidInput(f"unknown custody event kind '{kind}'", field="kind") from None
    if chosen not in CALLER_KINDS:
        allowed = ", ".join(sorted(k.value for k in CALLER_KINDS))
        raise InvalidInput(f"custody kind must be one of {allowed}", field="kind")
    return _custody(
        session,
        actor=actor,
        attachment=attachment,
        kind=chosen,
        sha256=attachment.sha256,
        details=details,
    )


def get_attachment(session: Session, attachment_id: int) -> Attachment:
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound("no such attachment")
    return attachment


def get_by_public_id(session: Session, public_id: str) -> Attachment:
    attachment = session.scalar(select(Attachment).where(Attachment.public_id == public_id))
    if attachment is None:
        raise NotFound("no such attachment")
    return attachment


def _check_blob(
    session: Session, *, actor: Principal, attachment: Attachment, settings: Settings
) -> tuple[str | None, str | None]:
    """Re-hash the blob; on mismatch record integrity_failed. Return (observed, problem)."""
    root = storage.evidence_root(settings.data_dir)
    try:
        observed: str | None = storage.hash_blob(root, attachment.sha256)
    except storage.BlobMissing:
        observed = None
    if observed == attachment.sha256:
        return observed, None
    problem = "blob-missing" if observed is None else "hash-mismatch"
    _custody(
        session,
        actor=actor,
        attachment=attachment,
        kind=CustodyKind.INTEGRITY_FAILED,
        sha256=observed,
        details={"problem": problem, "expected_sha256": attachment.sha256},
        outcome="failed",
    )
    return observed, problem


def _integrity_error(attachment: Attachment, problem: str) -> EvidenceIntegrityError:
    return EvidenceIntegrityError(
        f"attachment {attachment.public_id} failed its integrity check ({problem}); "
        "it is not served. The failure is recorded in its chain of custody",
        extra={"attachment": attachment.public_id, "problem": problem},
    )


def open_for_download(
    session: Session,
    *,
    actor: Principal,
    attachment_id: int,
    settings: Settings,
    purpose: CustodyKind | str = CustodyKind.DOWNLOADED,
) -> tuple[Attachment, Path]:
    """Re-hash the stored file and, if intact, record the hand-out and return its path.

    ``purpose`` is the custody kind recorded: downloaded (default), exported or transmitted.
    A file that no longer matches its hash is NEVER returned: an ``integrity_failed`` custody
    event and an audit event are recorded and ``EvidenceIntegrityError`` is raised.

    Transactions: when this is the outermost unit of work, the integrity_failed record is
    committed before the error is raised. When called inside the caller's own ``@atomic``
    function, the error rolls the caller's transaction back — and the record with it — unless
    the caller catches ``EvidenceIntegrityError`` and lets its transaction commit. Prefer
    calling it as its own unit of work. Access control is the caller's job.
    """
    try:
        kind = CustodyKind(purpose)
    except ValueError:
        kind = CustodyKind.VIEWED  # not a content kind: refused just below
    if kind not in CONTENT_KINDS:
        allowed = ", ".join(sorted(k.value for k in CONTENT_KINDS))
        raise InvalidInput(f"purpose must be one of {allowed}", field="purpose")
    with unit_of_work(session):
        attachment = get_attachment(session, attachment_id)
        observed, problem = _check_blob(
            session, actor=actor, attachment=attachment, settings=settings
        )
        if problem is None:
            _custody(session, actor=actor, attachment=attachment, kind=kind, sha256=observed)
    if problem is not None:
        raise _integrity_error(attachment, problem)
    path = storage.blob_path(storage.evidence_root(settings.data_dir), attachment.sha256)
    return attachment, path


def verify_attachment(
    session: Session, *, actor: Principal, attachment_id: int, settings: Settings
) -> CustodyEvent:
    """Re-hash the stored file and record ``verified`` (or ``integrity_failed`` and raise).

    Same transaction rules as :func:`open_for_download`.
    """
    with unit_of_work(session):
        attachment = get_attachment(session, attachment_id)
        observed, problem = _check_blob(
            session, actor=actor, attachment=attachment, settings=settings
        )
        event = None
        if problem is None:
            event = _custody(
                session,
                actor=actor,
                attachment=attachment,
                kind=CustodyKind.VERIFIED,
                sha256=observed,
            )
    if problem is not None or event is None:
        raise _integrity_error(attachment, problem or "unknown")
    return event


def list_for_owner(session: Session, owner_type: str, owner_id: object) -> list[Attachment]:
    """The owner's attachments, oldest first. Access control is the caller's job."""
    stmt = (
        select(Attachment)
        .where(Attachment.owner_type == owner_type, Attachment.owner_id == str(owner_id))
        .order_by(Attachment.created_at, Attachment.id)
    )
    return list(session.scalars(stmt))


def custody_chain(session: Session, attachment_id: int) -> list[CustodyEvent]:
    """The attachment's custody events in the order they happened."""
    stmt = (
        select(CustodyEvent)
        .where(CustodyEvent.attachment_id == attachment_id)
        .order_by(CustodyEvent.id)
    )
    return list(session.scalars(stmt))

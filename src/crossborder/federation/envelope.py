"""Envelopes between nodes: sign (JWS), then encrypt (JWE), and the strict checks on opening.

Pure: no database, no clock of its own (the caller passes ``now``), no network. The format is
standard JOSE so that another team can build a compatible node with any JOSE library:

- the payload is a JSON object ``{v, id, type, from, to, created, body}`` (``from``/``to`` are
  node fingerprints: SHA-256 of the raw Ed25519 public key, lower-case hex);
- it is signed as a compact JWS, ``alg`` ``Ed25519`` (RFC 9864; the older ``EdDSA`` name is not
  accepted), ``kid`` the sender's fingerprint — sign first, so the receiver keeps proof of who
  said what even after decrypting;
- the JWS is encrypted as a compact JWE to the receiver's X25519 key, ``ECDH-ES+A256KW`` with
  ``A256GCM``; the protected header carries ``to`` (receiver fingerprint) so that a hub can
  route the token without being able to read it.

Why the inner ``to`` as well as the header's: the header is not signed by the sender, and a
signed ``to`` stops a receiver from re-encrypting a message it got to someone else
("surreptitious forwarding"). Every refusal is an :class:`EnvelopeError` with a reason code
(:class:`Reason`); the checks run in the order docs/federation.md lists, cheapest first, and
never look at the body before the signature is verified.

Receipts are compact JWS only (nothing secret in them): ``{v, receipt_for, status, reason, at,
from, to}`` signed by the receiver.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from joserfc import jwe, jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from joserfc.registry import HeaderParameter

from crossborder.federation.identity import (
    NodeIdentity,
    b64url,
    jose_encryption_key,
    jose_signing_key,
)

ENVELOPE_VERSION = 1
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024  # the whole compact JWE, as text
MAX_RECEIPT_BYTES = 16 * 1024
DEFAULT_MAX_SKEW = timedelta(seconds=300)  # how far in the future `created` may be
DEFAULT_MAX_AGE = timedelta(hours=72)  # how old `created` may be (bounds the replay window)

JWS_ALG = "Ed25519"
JWE_ALG = "ECDH-ES+A256KW"
JWE_ENC = "A256GCM"
ENVELOPE_TYP = "crossborder-envelope+jwe"
SIGNED_TYP = "crossborder-envelope+jws"
RECEIPT_TYP = "crossborder-receipt+jws"
MEDIA_TYPE = "application/jose"

TYPE_PATTERN = re.compile(r"^[a-z]+(\.[a-z_]+)+$")
MAX_TYPE_LENGTH = 100
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


class Reason(StrEnum):
    """Why an envelope (or receipt) was refused. Stable codes: they travel in problems."""

    MALFORMED = "MALFORMED"
    TOO_LARGE = "TOO_LARGE"
    NOT_FOR_ME = "NOT_FOR_ME"
    UNDECRYPTABLE = "UNDECRYPTABLE"
    UNKNOWN_SENDER = "UNKNOWN_SENDER"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    SENDER_MISMATCH = "SENDER_MISMATCH"
    STALE = "STALE"
    FROM_FUTURE = "FROM_FUTURE"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    BAD_TYPE = "BAD_TYPE"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"  # authenticated, but no handler: a signed "rejected" receipt


class EnvelopeError(Exception):
    """An envelope or receipt was refused. ``detail`` never quotes the content."""

    def __init__(
        self,
        reason: Reason,
        detail: str,
        *,
        claimed_from: str | None = None,
        message_id: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.claimed_from = claimed_from
        self.message_id = message_id
        self.type = type


@dataclass(frozen=True)
class PeerKeys:
    """A peer's pinned public keys (raw bytes) under one fingerprint."""

    fingerprint: str
    signing_key: bytes
    encryption_key: bytes
    node_id: int | None = None


@dataclass(frozen=True)
class Envelope:
    """An opened, verified envelope. ``signed`` is the inner JWS (the sender's proof)."""

    id: str
    type: str
    sender: str
    receiver: str
    created: datetime
    body: dict[str, Any]
    signed: str = field(repr=False)
    sender_node_id: int | None = None
    v: int = ENVELOPE_VERSION


@dataclass(frozen=True)
class Sealed:
    token: str
    message_id: str
    created: datetime


@dataclass(frozen=True)
class Receipt:
    receipt_for: str
    status: str  # accepted | duplicate | rejected
    reason: str | None
    at: datetime
    sender: str  # who signed the receipt (the receiver of the message)
    to: str


RECEIPT_STATUSES = frozenset({"accepted", "duplicate", "rejected"})


class _JWSRegistry(jws.JWSRegistry):
    max_payload_length = MAX_ENVELOPE_BYTES


class _JWERegistry(jwe.JWERegistry):
    max_ciphertext_length = MAX_ENVELOPE_BYTES


_JWS = _JWSRegistry(algorithms=[JWS_ALG])
_JWE = _JWERegistry(
    header_registry={"to": HeaderParameter("receiver fingerprint", "str", required=True)},
    algorithms=[JWE_ALG, JWE_ENC],
)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` and millisecond precision."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: object) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z") or len(value) > 40:
        raise ValueError("not an RFC 3339 UTC time")
    parsed = datetime.fromisoformat(value[:-1] + "+00:00")
    return parsed.astimezone(UTC)


def canonical_json(value: dict[str, Any]) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
    ).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key in JSON object")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(raw: bytes | str) -> Any:
    """Parse JSON refusing duplicate keys and NaN/Infinity (ambiguous between parsers)."""
    return json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def _b64_json_header(segment: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = strict_json(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValueError("header is not base64url JSON") from exc
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    return header


def public_okp(raw: bytes, crv: str) -> OKPKey:
    return OKPKey.import_key({"kty": "OKP", "crv": crv, "x": b64url(raw)})


def check_type(value: object) -> str:
    if (
        not isinstance(value, str)
        or len(value) > MAX_TYPE_LENGTH
        or TYPE_PATTERN.fullmatch(value) is None
    ):
        raise ValueError("message type must match ^[a-z]+(\\.[a-z_]+)+$ (at most 100 chars)")
    return value


def seal(
    identity: NodeIdentity,
    receiver: PeerKeys,
    *,
    type: str,
    body: dict[str, Any],
    message_id: str | None = None,
    created: datetime,
) -> Sealed:
    """Sign ``body`` as ``identity`` and encrypt it to ``receiver``; return the compact JWE."""
    check_type(type)
    mid = message_id or str(uuid.uuid4())
    payload = {
        "v": ENVELOPE_VERSION,
        "id": mid,
        "type": type,
        "from": identity.fingerprint,
        "to": receiver.fingerprint,
        "created": format_time(created),
        "body": body,
    }
    signed = jws.serialize_compact(
        {"alg": JWS_ALG, "kid": identity.fingerprint, "typ": SIGNED_TYP},
        canonical_json(payload),
        jose_signing_key(identity),
        registry=_JWS,
    )
    token = jwe.encrypt_compact(
        {
            "alg": JWE_ALG,
            "enc": JWE_ENC,
            "kid": f"{receiver.fingerprint}-enc",
            "to": receiver.fingerprint,
            "typ": ENVELOPE_TYP,
            "cty": SIGNED_TYP,
        },
        signed.encode("ascii"),
        public_okp(receiver.encryption_key, "X25519"),
        registry=_JWE,
    )
    return Sealed(token=token, message_id=mid, created=created)


def peek_header(token: str) -> dict[str, Any]:
    """The JWE protected header, unverified (for routing and logging only)."""
    parts = token.split(".")
    if len(parts) != 5:
        raise EnvelopeError(Reason.MALFORMED, "not a compact JWE (five parts)")
    try:
        return _b64_json_header(parts[0])
    except ValueError as exc:
        raise EnvelopeError(Reason.MALFORMED, str(exc)) from None


def _decode_token(token: str | bytes, max_bytes: int) -> str:
    if len(token) > max_bytes:
        raise EnvelopeError(Reason.TOO_LARGE, f"envelope larger than {max_bytes} bytes")
    if isinstance(token, bytes):
        try:
            return token.decode("ascii").strip()
        except UnicodeDecodeError:
            raise EnvelopeError(Reason.MALFORMED, "envelope is not ASCII text") from None
    if not token.isascii():
        raise EnvelopeError(Reason.MALFORMED, "envelope is not ASCII text")
    return token.strip()


def open_envelope(
    token: str | bytes,
    *,
    my_identity: NodeIdentity,
    peer_lookup: Callable[[str], PeerKeys | None],
    now: datetime,
    retired: Sequence[NodeIdentity] = (),
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    max_age: timedelta = DEFAULT_MAX_AGE,
    max_bytes: int = MAX_ENVELOPE_BYTES,
) -> Envelope:
    """Decrypt and verify an envelope addressed to this node; raise :class:`EnvelopeError`."""
    text = _decode_token(token, max_bytes)
    header = peek_header(text)
    if header.get("alg") != JWE_ALG or header.get("enc") != JWE_ENC or "zip" in header:
        raise EnvelopeError(Reason.MALFORMED, f"JWE must use {JWE_ALG} with {JWE_ENC}, no zip")
    to = header.get("to")
    mine = {key.fingerprint: key for key in (my_identity, *retired)}
    if not isinstance(to, str) or to not in mine:
        raise EnvelopeError(Reason.NOT_FOR_ME, "the envelope is addressed to another node")
    try:
        decrypted = jwe.decrypt_compact(text, jose_encryption_key(mine[to]), registry=_JWE)
        inner_bytes = decrypted.plaintext or b""
        inner = inner_bytes.decode("ascii")
    except (JoseError, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise EnvelopeError(
            Reason.UNDECRYPTABLE, "cannot decrypt with this node's key (tampered or wrong key)"
        ) from None

    parts = inner.split(".")
    if len(parts) != 3:
        raise EnvelopeError(Reason.MALFORMED, "the content is not a compact JWS")
    try:
        signed_header = _b64_json_header(parts[0])
    except ValueError as exc:
        raise EnvelopeError(Reason.MALFORMED, f"JWS {exc}") from None
    kid = signed_header.get("kid")
    if signed_header.get("alg") != JWS_ALG or not isinstance(kid, str):
        raise EnvelopeError(Reason.MALFORMED, f"JWS must use {JWS_ALG} and name a kid")
    claimed = kid if _FINGERPRINT.fullmatch(kid) else None
    peer = peer_lookup(kid) if claimed else None
    if peer is None:
        raise EnvelopeError(
            Reason.UNKNOWN_SENDER, "the signer is not a pinned, active peer", claimed_from=claimed
        )
    try:
        verified = jws.deserialize_compact(
            inner, public_okp(peer.signing_key, "Ed25519"), registry=_JWS
        )
    except (JoseError, ValueError, TypeError, KeyError):
        raise EnvelopeError(
            Reason.BAD_SIGNATURE, "signature does not verify with the pinned key", claimed_from=kid
        ) from None

    try:
        payload = strict_json(verified.payload)
    except (ValueError, UnicodeDecodeError):
        raise EnvelopeError(Reason.MALFORMED, "payload is not JSON", claimed_from=kid) from None
    if not isinstance(payload, dict):
        raise EnvelopeError(Reason.MALFORMED, "payload is not a JSON object", claimed_from=kid)
    version = payload.get("v")
    if version != ENVELOPE_VERSION or isinstance(version, bool):
        raise EnvelopeError(
            Reason.UNSUPPORTED_VERSION, f"version {version!r} is not supported", claimed_from=kid
        )
    mid, mtype, sender, receiver = (payload.get(k) for k in ("id", "type", "from", "to"))
    body = payload.get("body")
    if not isinstance(mid, str) or not _is_uuid(mid):
        raise EnvelopeError(Reason.MALFORMED, "id must be a UUID", claimed_from=kid)
    meta: dict[str, Any] = {"claimed_from": kid, "message_id": mid}
    if not all(isinstance(v, str) for v in (mtype, sender, receiver)) or not isinstance(body, dict):
        raise EnvelopeError(
            Reason.MALFORMED, "type/from/to must be strings, body an object", **meta
        )
    assert isinstance(mtype, str)
    assert isinstance(sender, str)
    assert isinstance(receiver, str)
    if sender != kid:
        raise EnvelopeError(Reason.SENDER_MISMATCH, "`from` is not the signing key", **meta)
    if receiver != to:
        raise EnvelopeError(Reason.NOT_FOR_ME, "signed `to` differs from the JWE header", **meta)
    try:
        created = parse_time(payload.get("created"))
    except ValueError:
        raise EnvelopeError(Reason.MALFORMED, "created must be RFC 3339 UTC", **meta) from None
    if created > now + max_skew:
        raise EnvelopeError(Reason.FROM_FUTURE, "created is ahead of this node's clock", **meta)
    if created < now - max_age:
        raise EnvelopeError(Reason.STALE, "created is older than the accepted age", **meta)
    try:
        check_type(mtype)
    except ValueError as exc:
        raise EnvelopeError(Reason.BAD_TYPE, str(exc), **meta) from None
    return Envelope(
        id=mid,
        type=mtype,
        sender=sender,
        receiver=receiver,
        created=created,
        body=body,
        signed=inner,
        sender_node_id=peer.node_id,
    )


def read_signed_payload(signed: str) -> dict[str, Any]:
    """The payload of an inner JWS this node already verified (stored in its inbox)."""
    payload_segment = signed.split(".")[1]
    raw = base64.urlsafe_b64decode(payload_segment + "=" * (-len(payload_segment) % 4))
    payload = strict_json(raw)
    if not isinstance(payload, dict):
        raise ValueError("stored payload is not an object")
    return payload


def envelope_from_signed(signed: str, *, sender_node_id: int | None) -> Envelope:
    payload = read_signed_payload(signed)
    return Envelope(
        id=payload["id"],
        type=payload["type"],
        sender=payload["from"],
        receiver=payload["to"],
        created=parse_time(payload["created"]),
        body=payload["body"],
        signed=signed,
        sender_node_id=sender_node_id,
    )


def _is_uuid(value: str) -> bool:
    if len(value) != 36:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# -- receipts ---------------------------------------------------------------------------------


def make_receipt(
    identity: NodeIdentity,
    *,
    receipt_for: str,
    status: str,
    to: str,
    at: datetime,
    reason: str | None = None,
) -> str:
    if status not in RECEIPT_STATUSES:
        raise ValueError(f"unknown receipt status {status!r}")
    payload = {
        "v": ENVELOPE_VERSION,
        "receipt_for": receipt_for,
        "status": status,
        "reason": reason,
        "at": format_time(at),
        "from": identity.fingerprint,
        "to": to,
    }
    return jws.serialize_compact(
        {"alg": JWS_ALG, "kid": identity.fingerprint, "typ": RECEIPT_TYP},
        canonical_json(payload),
        jose_signing_key(identity),
        registry=_JWS,
    )


def open_receipt(token: str | bytes, *, signers: Sequence[PeerKeys], expected_for: str) -> Receipt:
    """Verify a receipt signed by one of ``signers`` (a peer's current or grace keys)."""
    text = _decode_token(token, MAX_RECEIPT_BYTES)
    parts = text.split(".")
    if len(parts) != 3:
        raise EnvelopeError(Reason.MALFORMED, "receipt is not a compact JWS")
    try:
        header = _b64_json_header(parts[0])
    except ValueError as exc:
        raise EnvelopeError(Reason.MALFORMED, f"receipt {exc}") from None
    kid = header.get("kid")
    signer = next((s for s in signers if s.fingerprint == kid), None)
    if header.get("alg") != JWS_ALG or signer is None:
        raise EnvelopeError(Reason.UNKNOWN_SENDER, "receipt not signed by the expected peer")
    try:
        verified = jws.deserialize_compact(
            text, public_okp(signer.signing_key, "Ed25519"), registry=_JWS
        )
        payload = strict_json(verified.payload)
    except (JoseError, ValueError, TypeError, KeyError):
        raise EnvelopeError(Reason.BAD_SIGNATURE, "receipt signature does not verify") from None
    if not isinstance(payload, dict) or payload.get("v") != ENVELOPE_VERSION:
        raise EnvelopeError(Reason.MALFORMED, "receipt payload is not a v1 object")
    status, reason, sender, to = (payload.get(k) for k in ("status", "reason", "from", "to"))
    if payload.get("receipt_for") != expected_for:
        raise EnvelopeError(Reason.MALFORMED, "receipt is for another message")
    if status not in RECEIPT_STATUSES or sender != kid or not isinstance(to, str):
        raise EnvelopeError(Reason.MALFORMED, "receipt fields are invalid")
    if reason is not None and not isinstance(reason, str):
        raise EnvelopeError(Reason.MALFORMED, "receipt reason must be a string")
    try:
        at = parse_time(payload.get("at"))
    except ValueError:
        raise EnvelopeError(Reason.MALFORMED, "receipt time is not RFC 3339 UTC") from None
    assert isinstance(status, str)
    assert isinstance(kid, str)
    return Receipt(receipt_for=expected_for, status=status, reason=reason, at=at, sender=kid, to=to)

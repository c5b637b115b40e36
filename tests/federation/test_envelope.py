"""Envelopes (pure): round trip, and each refusal with its reason code."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from joserfc import jwe, jws

from crossborder.federation import envelope as env
from crossborder.federation.envelope import EnvelopeError, PeerKeys, Reason
from crossborder.federation.identity import (
    NodeIdentity,
    ensure_identity,
    jose_signing_key,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def keys_of(node: NodeIdentity, node_id: int | None = None) -> PeerKeys:
    return PeerKeys(node.fingerprint, node.signing_public_key, node.encryption_public_key, node_id)


@pytest.fixture
def alice(tmp_path: Path) -> NodeIdentity:
    return ensure_identity(tmp_path / "alice")


@pytest.fixture
def bob(tmp_path: Path) -> NodeIdentity:
    return ensure_identity(tmp_path / "bob")


@pytest.fixture
def mallory(tmp_path: Path) -> NodeIdentity:
    return ensure_identity(tmp_path / "mallory")


def seal(sender: NodeIdentity, receiver: NodeIdentity, **kw: object) -> str:
    args: dict[str, object] = {"type": "request.submitted", "body": {"ref": "VN-2026-17"}}
    args.update(kw)
    args.setdefault("created", NOW)
    return env.seal(sender, keys_of(receiver), **args).token  # type: ignore[arg-type]


def open_as(receiver: NodeIdentity, token: str | bytes, *peers: NodeIdentity, **kw: object):  # type: ignore[no-untyped-def]
    known = {p.fingerprint: keys_of(p, i) for i, p in enumerate(peers, start=1)}
    args: dict[str, object] = {"now": NOW}
    args.update(kw)
    return env.open_envelope(
        token,
        my_identity=receiver,
        peer_lookup=known.get,
        **args,  # type: ignore[arg-type]
    )


def refused(reason: Reason, fn, *args, **kw) -> EnvelopeError:  # type: ignore[no-untyped-def]
    with pytest.raises(EnvelopeError) as info:
        fn(*args, **kw)
    assert info.value.reason is reason, info.value
    return info.value


def test_round_trip(alice: NodeIdentity, bob: NodeIdentity) -> None:
    token = seal(alice, bob, message_id="0b7c0a52-1f7e-4b53-9d43-6a9b3f6d0c11")
    opened = open_as(bob, token, alice)
    assert opened.id == "0b7c0a52-1f7e-4b53-9d43-6a9b3f6d0c11"
    assert opened.type == "request.submitted"
    assert opened.sender == alice.fingerprint
    assert opened.receiver == bob.fingerprint
    assert opened.created == NOW
    assert opened.body == {"ref": "VN-2026-17"}
    assert opened.sender_node_id == 1
    # the inner JWS is the sender's signed proof, verifiable on its own
    assert jws.deserialize_compact(
        opened.signed, env.public_okp(alice.signing_public_key, "Ed25519"), registry=env._JWS
    )


def test_header_routes_without_revealing_content(alice: NodeIdentity, bob: NodeIdentity) -> None:
    token = seal(alice, bob, body={"secret": "wallet bc1qsecretvalue"})
    header = env.peek_header(token)
    assert header["to"] == bob.fingerprint
    assert header["alg"] == "ECDH-ES+A256KW"
    assert header["enc"] == "A256GCM"
    assert header["kid"] == f"{bob.fingerprint}-enc"
    assert alice.fingerprint not in json.dumps(header)
    assert "bc1qsecretvalue" not in token
    for part in token.split("."):
        decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        assert b"bc1qsecretvalue" not in decoded


def test_standard_jose_libraries_can_open_it(alice: NodeIdentity, bob: NodeIdentity) -> None:
    """Interop: a plain joserfc decrypt + verify, no crossborder code, reads the envelope."""
    from crossborder.federation.identity import jose_encryption_key

    token = seal(alice, bob)
    registry = jwe.JWERegistry(
        header_registry=env._JWE.header_registry, algorithms=["ECDH-ES+A256KW", "A256GCM"]
    )
    inner = jwe.decrypt_compact(token, jose_encryption_key(bob), registry=registry).plaintext
    assert inner is not None
    verified = jws.deserialize_compact(
        inner, env.public_okp(alice.signing_public_key, "Ed25519"), algorithms=["Ed25519"]
    )
    payload = json.loads(verified.payload)
    assert set(payload) == {"v", "id", "type", "from", "to", "created", "body"}
    assert payload["created"] == "2026-03-01T12:00:00.000Z"


def test_tampered_ciphertext_is_refused(alice: NodeIdentity, bob: NodeIdentity) -> None:
    parts = seal(alice, bob).split(".")
    ciphertext = bytearray(base64.urlsafe_b64decode(parts[3] + "=" * (-len(parts[3]) % 4)))
    ciphertext[0] ^= 1
    parts[3] = base64.urlsafe_b64encode(bytes(ciphertext)).rstrip(b"=").decode()
    refused(Reason.UNDECRYPTABLE, open_as, bob, ".".join(parts), alice)


def test_tampered_header_is_refused(alice: NodeIdentity, bob: NodeIdentity) -> None:
    parts = seal(alice, bob).split(".")
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=="))
    header["typ"] = "something-else"
    parts[0] = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    refused(Reason.UNDECRYPTABLE, open_as, bob, ".".join(parts), alice)  # header is the AAD


def test_encrypted_to_another_key_is_refused(
    alice: NodeIdentity, bob: NodeIdentity, mallory: NodeIdentity
) -> None:
    # addressed (header `to`) to bob but encrypted to mallory's key
    wrong = PeerKeys(bob.fingerprint, bob.signing_public_key, mallory.encryption_public_key)
    token = env.seal(alice, wrong, type="request.submitted", body={}, created=NOW).token
    refused(Reason.UNDECRYPTABLE, open_as, bob, token, alice)


def test_addressed_to_another_node_is_refused(
    alice: NodeIdentity, bob: NodeIdentity, mallory: NodeIdentity
) -> None:
    refused(Reason.NOT_FOR_ME, open_as, bob, seal(alice, mallory), alice)


def test_unknown_sender_is_refused(alice: NodeIdentity, bob: NodeIdentity) -> None:
    error = refused(Reason.UNKNOWN_SENDER, open_as, bob, seal(alice, bob))
    assert error.claimed_from == alice.fingerprint


def test_non_pinned_key_claiming_a_pinned_fingerprint_is_refused(
    alice: NodeIdentity, bob: NodeIdentity, mallory: NodeIdentity
) -> None:
    """Mallory signs with her own key but writes alice's fingerprint as kid and `from`."""
    payload = {
        "v": 1,
        "id": "5d1c7b0e-8f5f-4d55-9b53-0f8a7b3c9e21",
        "type": "request.submitted",
        "from": alice.fingerprint,
        "to": bob.fingerprint,
        "created": env.format_time(NOW),
        "body": {},
    }
    signed = jws.serialize_compact(
        {"alg": "Ed25519", "kid": alice.fingerprint},
        env.canonical_json(payload),
        jose_signing_key(mallory),
        registry=env._JWS,
    )
    token = jwe.encrypt_compact(
        {"alg": env.JWE_ALG, "enc": env.JWE_ENC, "to": bob.fingerprint},
        signed.encode(),
        env.public_okp(bob.encryption_public_key, "X25519"),
        registry=env._JWE,
    )
    refused(Reason.BAD_SIGNATURE, open_as, bob, token, alice)


def test_from_must_be_the_signer(
    alice: NodeIdentity, bob: NodeIdentity, mallory: NodeIdentity
) -> None:
    payload = {
        "v": 1,
        "id": "5d1c7b0e-8f5f-4d55-9b53-0f8a7b3c9e21",
        "type": "request.submitted",
        "from": mallory.fingerprint,
        "to": bob.fingerprint,
        "created": env.format_time(NOW),
        "body": {},
    }
    signed = jws.serialize_compact(
        {"alg": "Ed25519", "kid": alice.fingerprint},
        env.canonical_json(payload),
        jose_signing_key(alice),
        registry=env._JWS,
    )
    token = jwe.encrypt_compact(
        {"alg": env.JWE_ALG, "enc": env.JWE_ENC, "to": bob.fingerprint},
        signed.encode(),
        env.public_okp(bob.encryption_public_key, "X25519"),
        registry=env._JWE,
    )
    refused(Reason.SENDER_MISMATCH, open_as, bob, token, alice, mallory)


@pytest.mark.parametrize(
    ("created", "accepted"),
    [
        (NOW + timedelta(seconds=299), True),
        (NOW + timedelta(seconds=301), False),
        (NOW - timedelta(hours=71), True),
        (NOW - timedelta(hours=73), False),
    ],
)
def test_clock_skew_and_age(
    alice: NodeIdentity, bob: NodeIdentity, created: datetime, accepted: bool
) -> None:
    token = seal(alice, bob, created=created)
    if accepted:
        assert open_as(bob, token, alice).created == created
    else:
        reason = Reason.FROM_FUTURE if created > NOW else Reason.STALE
        refused(reason, open_as, bob, token, alice)


def test_oversized_is_refused_before_any_work(alice: NodeIdentity, bob: NodeIdentity) -> None:
    token = seal(alice, bob, body={"blob": "x" * 5000})
    refused(Reason.TOO_LARGE, open_as, bob, token, alice, max_bytes=4096)
    refused(Reason.TOO_LARGE, open_as, bob, "a" * (env.MAX_ENVELOPE_BYTES + 1), alice)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a token",
        "a.b.c",
        "a.b.c.d.e",
        "eyJhbGciOiJub25lIn0.a.b.c.d",
        "\u00e9t\u00e9.a.b.c.d",
        b"\xff\xfe.a.b.c.d",
    ],
)
def test_malformed_is_refused(bob: NodeIdentity, token: str | bytes) -> None:
    refused(Reason.MALFORMED, open_as, bob, token)


def test_plain_jws_without_encryption_is_refused(alice: NodeIdentity, bob: NodeIdentity) -> None:
    signed = jws.serialize_compact(
        {"alg": "Ed25519", "kid": alice.fingerprint},
        b"{}",
        jose_signing_key(alice),
        registry=env._JWS,
    )
    refused(Reason.MALFORMED, open_as, bob, signed, alice)


def _inner_token(sender: NodeIdentity, receiver: NodeIdentity, payload: object) -> str:
    signed = jws.serialize_compact(
        {"alg": "Ed25519", "kid": sender.fingerprint},
        json.dumps(payload).encode(),
        jose_signing_key(sender),
        registry=env._JWS,
    )
    return jwe.encrypt_compact(
        {"alg": env.JWE_ALG, "enc": env.JWE_ENC, "to": receiver.fingerprint},
        signed.encode(),
        env.public_okp(receiver.encryption_public_key, "X25519"),
        registry=env._JWE,
    )


def _payload(alice: NodeIdentity, bob: NodeIdentity, **changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "v": 1,
        "id": "5d1c7b0e-8f5f-4d55-9b53-0f8a7b3c9e21",
        "type": "request.submitted",
        "from": alice.fingerprint,
        "to": bob.fingerprint,
        "created": env.format_time(NOW),
        "body": {},
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"v": 2}, Reason.UNSUPPORTED_VERSION),
        ({"v": None}, Reason.UNSUPPORTED_VERSION),
        ({"id": "not-a-uuid"}, Reason.MALFORMED),
        ({"body": "text"}, Reason.MALFORMED),
        ({"created": "2026-03-01 12:00"}, Reason.MALFORMED),
        ({"type": "Request Submitted"}, Reason.BAD_TYPE),
        ({"type": "request"}, Reason.BAD_TYPE),
        ({"type": "request." + "x" * 200}, Reason.BAD_TYPE),
    ],
)
def test_signed_but_invalid_payloads_are_refused(
    alice: NodeIdentity, bob: NodeIdentity, changes: dict[str, object], reason: Reason
) -> None:
    token = _inner_token(alice, bob, _payload(alice, bob, **changes))
    refused(reason, open_as, bob, token, alice)


def test_signed_to_must_match_the_header(
    alice: NodeIdentity, bob: NodeIdentity, mallory: NodeIdentity
) -> None:
    token = _inner_token(alice, bob, _payload(alice, bob, to=mallory.fingerprint))
    refused(Reason.NOT_FOR_ME, open_as, bob, token, alice)


def test_non_object_payload_is_refused(alice: NodeIdentity, bob: NodeIdentity) -> None:
    refused(Reason.MALFORMED, open_as, bob, _inner_token(alice, bob, [1, 2]), alice)


def test_retired_key_still_opens_during_grace(tmp_path: Path, alice: NodeIdentity) -> None:
    from crossborder.federation.identity import load_keyring, rotate_identity

    old_bob = ensure_identity(tmp_path / "b2")
    token = seal(alice, old_bob)
    old, new = rotate_identity(tmp_path / "b2", grace=timedelta(days=1), now=NOW)
    assert old.fingerprint == old_bob.fingerprint != new.fingerprint
    ring = load_keyring(tmp_path / "b2", NOW)
    assert ring.current.fingerprint == new.fingerprint
    refused(Reason.NOT_FOR_ME, open_as, ring.current, token, alice)
    opened = open_as(ring.current, token, alice, retired=ring.retired)
    assert opened.receiver == old.fingerprint
    assert load_keyring(tmp_path / "b2", NOW + timedelta(days=2)).retired == ()


def test_receipt_round_trip_and_checks(
    alice: NodeIdentity, bob: NodeIdentity, mallory: NodeIdentity
) -> None:
    receipt = env.make_receipt(
        bob, receipt_for="m-1", status="accepted", to=alice.fingerprint, at=NOW
    )
    opened = env.open_receipt(receipt, signers=[keys_of(bob)], expected_for="m-1")
    assert (opened.status, opened.sender, opened.to, opened.at) == (
        "accepted",
        bob.fingerprint,
        alice.fingerprint,
        NOW,
    )
    refused(Reason.MALFORMED, env.open_receipt, receipt, signers=[keys_of(bob)], expected_for="m-2")
    refused(
        Reason.UNKNOWN_SENDER,
        env.open_receipt,
        receipt,
        signers=[keys_of(mallory)],
        expected_for="m-1",
    )
    forged = PeerKeys(bob.fingerprint, mallory.signing_public_key, mallory.encryption_public_key)
    refused(Reason.BAD_SIGNATURE, env.open_receipt, receipt, signers=[forged], expected_for="m-1")
    with pytest.raises(ValueError, match="status"):
        env.make_receipt(bob, receipt_for="m", status="maybe", to="x", at=NOW)

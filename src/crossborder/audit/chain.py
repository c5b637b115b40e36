"""Pure hash-chain rules: canonical serialisation (RFC 8785 JCS) and verification.

``hash_n = SHA-256( prev_hash_n || "\\n" || JCS(event_n without hash) )`` with
``prev_hash_1 = GENESIS``. Changing, deleting, inserting or reordering any stored event
changes some hash and is caught by ``verify``; truncating the tail is caught by comparing
with the head row (and, for an operator, with a head hash recorded elsewhere).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785

from crossborder.core.clock import ensure_utc

GENESIS = "0" * 64


def _ts(value: datetime) -> str:
    return ensure_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_payload(record: dict[str, Any]) -> bytes:
    """The bytes that are hashed: every field but ``hash``, times as UTC ISO 8601 strings."""
    payload = {k: v for k, v in record.items() if k != "hash"}
    payload["occurred_at"] = _ts(payload["occurred_at"])
    return bytes(rfc8785.dumps(payload))


def compute_hash(prev_hash: str, record: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical_payload(record))
    return digest.hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    head_hash: str
    broken_at: int | None = None
    problem: str | None = None

    def summary(self) -> str:
        if self.ok:
            return f"OK: {self.checked} events, head {self.head_hash}"
        return f"BROKEN at event {self.broken_at}: {self.problem}"


def verify(
    records: Iterable[dict[str, Any]], *, head_seq: int | None, head_hash: str | None
) -> VerifyResult:
    """Check records given in ascending ``seq`` order; stop at the first break."""
    prev_hash = GENESIS
    expected_seq = 1
    checked = 0
    for record in records:
        seq = record["seq"]
        if seq != expected_seq:
            return VerifyResult(
                False,
                checked,
                prev_hash,
                expected_seq,
                f"expected event {expected_seq}, found {seq} (missing or reordered)",
            )
        if record["prev_hash"] != prev_hash:
            return VerifyResult(
                False,
                checked,
                prev_hash,
                seq,
                "prev_hash does not match the hash of the event before it",
            )
        recomputed = compute_hash(prev_hash, record)
        if recomputed != record["hash"]:
            return VerifyResult(
                False, checked, prev_hash, seq, "content does not match its hash (event was edited)"
            )
        prev_hash = record["hash"]
        expected_seq += 1
        checked += 1
    last_seq = expected_seq - 1
    if head_seq is not None and head_seq != last_seq:
        return VerifyResult(
            False,
            checked,
            prev_hash,
            last_seq + 1,
            f"head says {head_seq} events, chain has {last_seq} (events removed)",
        )
    if head_hash is not None and checked and head_hash != prev_hash:
        return VerifyResult(
            False, checked, prev_hash, last_seq, "head hash does not match the last event"
        )
    return VerifyResult(True, checked, prev_hash)

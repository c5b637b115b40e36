"""The pure hash-chain rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from crossborder.audit import chain


def _chain(n: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    prev = chain.GENESIS
    start = datetime(2026, 10, 25, 2, 40, tzinfo=UTC)
    for i in range(1, n + 1):
        rec: dict[str, Any] = {
            "seq": i,
            "occurred_at": start + timedelta(seconds=i),
            "actor_user_id": 7,
            "actor_label": "linh",
            "actor_authority_id": 1,
            "via": "session",
            "action": f"test.action{i}",
            "object_type": "authority",
            "object_id": str(i),
            "outcome": "ok",
            "reason": None,
            "ip": "127.0.0.1",
            "details": {"n": i, "codes": ["A", "B"], "text": "Bộ Công an"},
            "prev_hash": prev,
        }
        rec["hash"] = chain.compute_hash(prev, rec)
        prev = rec["hash"]
        records.append(rec)
    return records


def test_intact_chain_verifies() -> None:
    records = _chain(5)
    result = chain.verify(records, head_seq=5, head_hash=records[-1]["hash"])
    assert result.ok
    assert result.checked == 5
    assert result.summary().startswith("OK: 5 events")


def test_canonical_form_ignores_key_order_and_time_zone_notation() -> None:
    rec = _chain(1)[0]
    shuffled = dict(reversed(list(rec.items())))
    shuffled["occurred_at"] = rec["occurred_at"].astimezone(datetime.now(UTC).astimezone().tzinfo)
    assert chain.compute_hash(chain.GENESIS, shuffled) == rec["hash"]


def test_edited_field_is_caught_at_that_event() -> None:
    records = _chain(5)
    records[2]["details"] = {"n": 3, "codes": ["A"], "text": "Bộ Công an"}
    result = chain.verify(records, head_seq=5, head_hash=records[-1]["hash"])
    assert not result.ok
    assert result.broken_at == 3
    assert "edited" in (result.problem or "")


def test_edited_field_with_recomputed_hash_breaks_the_next_link() -> None:
    records = _chain(5)
    records[1]["action"] = "forged"
    records[1]["hash"] = chain.compute_hash(records[1]["prev_hash"], records[1])
    result = chain.verify(records, head_seq=5, head_hash=records[-1]["hash"])
    assert not result.ok
    assert result.broken_at == 3


def test_deleted_event_is_caught() -> None:
    records = _chain(5)
    del records[2]
    result = chain.verify(records, head_seq=5, head_hash=records[-1]["hash"])
    assert not result.ok
    assert result.broken_at == 3


def test_reordered_events_are_caught() -> None:
    records = _chain(5)
    records[1], records[2] = records[2], records[1]
    result = chain.verify(records, head_seq=5, head_hash=records[-1]["hash"])
    assert not result.ok
    assert result.broken_at == 2


def test_truncated_tail_is_caught_by_the_head() -> None:
    records = _chain(5)
    result = chain.verify(records[:3], head_seq=5, head_hash=records[-1]["hash"])
    assert not result.ok
    assert "removed" in (result.problem or "")


def test_empty_chain_is_ok() -> None:
    assert chain.verify([], head_seq=0, head_hash=chain.GENESIS).ok

"""Bulk correlation: the answers of the temporary-table path equal one simple query per digest."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.orm import Session

from crossborder.selectors import bulk
from crossborder.selectors import correlate as rules
from crossborder.selectors.models import IdentOccurrence, IdentValue

SCOPES = [("request", f"req-{i}") for i in range(6)] + [("ident_set", "set-1")]


def _reference_counts(
    session: Session, digests: list[bytes], exclude: tuple[str, str] | None
) -> dict[bytes, int]:
    """The obvious way: one query per distinct digest."""
    found: dict[bytes, int] = {}
    for digest in set(digests):
        held = (
            select(IdentOccurrence.scope_type, IdentOccurrence.scope_id)
            .join(IdentValue, IdentValue.id == IdentOccurrence.value_id)
            .where(IdentValue.digest == digest)
            .distinct()
        )
        if exclude is not None:
            held = held.where(
                tuple_(IdentOccurrence.scope_type, IdentOccurrence.scope_id) != tuple_(*exclude)
            )
        n = session.scalar(select(func.count()).select_from(held.subquery()))
        if n:
            found[digest] = int(n)
    return found


def _reference_values(session: Session, digests: list[bytes]) -> dict[bytes, int]:
    found: dict[bytes, int] = {}
    for digest in set(digests):
        value_id = session.scalar(select(IdentValue.id).where(IdentValue.digest == digest))
        if value_id is not None:
            found[digest] = value_id
    return found


def _populate(session: Session, rng: random.Random, n: int) -> list[bytes]:
    """``n`` stored values; most held in 1-4 scopes (some twice in one), some held nowhere."""
    rows = [
        {
            "digest": rules.digest("other", f"bulk-{rng.getrandbits(64):x}"),
            "kind": "other",
            "canonical": f"value {i}",
            "flags": [],
        }
        for i in range(n)
    ]
    session.execute(insert(IdentValue), rows)
    stmt = select(IdentValue.digest, IdentValue.id).where(
        IdentValue.digest.in_([r["digest"] for r in rows])
    )
    ids = {bytes(d): int(i) for d, i in session.execute(stmt)}
    occurrences = []
    for digest, value_id in ids.items():
        for scope_type, scope_id in rng.choices(SCOPES, k=rng.choice([0, 1, 1, 2, 3, 4])):
            occurrences.append(
                {
                    "value_id": value_id,
                    "record_type": "message",
                    "record_id": f"m-{rng.randrange(1000)}",
                    "scope_type": scope_type,
                    "scope_id": scope_id,
                    "owner_authority_id": None,
                    "raw": digest.hex(),
                    "source": "imported",
                }
            )
    if occurrences:
        session.execute(insert(IdentOccurrence), occurrences)
    return [r["digest"] for r in rows]


def _probes(rng: random.Random, stored: list[bytes], n_unknown: int) -> list[bytes]:
    known = rng.sample(stored, len(stored) * 2 // 3)
    unknown = [rng.randbytes(16) for _ in range(n_unknown)]
    duplicates = rng.choices(known, k=len(known) // 4) + unknown[:3]
    probes = known + unknown + duplicates
    rng.shuffle(probes)
    return probes


@pytest.fixture(params=["as configured", "small blocks"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test twice: as configured (small batches take the plain query on PostgreSQL),
    and with the bulk path forced and tiny blocks, so that block boundaries are crossed."""
    if request.param == "small blocks":
        monkeypatch.setattr(bulk, "SMALL_BATCH", 0)
        monkeypatch.setattr(bulk, "COPY_BLOCK", 37)
        monkeypatch.setattr(bulk, "SQLITE_CHUNK", 41)
    return str(request.param)


@pytest.mark.parametrize("exclude", [None, SCOPES[0], SCOPES[-1], ("request", "nowhere")])
@pytest.mark.usefixtures("path")
def test_counts_equal_one_query_per_digest(db: Session, exclude: tuple[str, str] | None) -> None:
    rng = random.Random(f"counts-{exclude}")
    stored = _populate(db, rng, 400)
    probes = _probes(rng, stored, 150)
    expected = _reference_counts(db, probes, exclude)
    assert expected  # the data exercise something
    assert bulk.known_counts(db, probes, exclude_scope=exclude) == expected


@pytest.mark.usefixtures("path")
def test_values_held_nowhere_else_are_absent(db: Session) -> None:
    rng = random.Random(7)
    stored = _populate(db, rng, 300)
    exclude = SCOPES[1]
    counts = bulk.known_counts(db, stored, exclude_scope=exclude)
    everywhere = bulk.known_counts(db, stored)
    only_there = {
        d for d in stored if d in everywhere and d not in counts
    }  # held in the excluded scope only
    assert only_there
    for d in only_there:
        assert everywhere[d] == 1
    for d, n in counts.items():
        assert everywhere[d] - n in (0, 1)
    without_occurrences = set(stored) - set(everywhere)
    assert without_occurrences  # known to the index, held nowhere: absent
    assert not without_occurrences & set(counts)


@pytest.mark.usefixtures("path")
def test_known_values_equal_one_query_per_digest(db: Session) -> None:
    rng = random.Random(11)
    stored = _populate(db, rng, 300)
    probes = _probes(rng, stored, 100)
    expected = _reference_values(db, probes)
    assert len(expected) == len(set(stored) & set(probes))
    assert bulk.known_values(db, probes) == expected


@pytest.mark.usefixtures("path")
def test_empty_input_and_duplicates_only(db: Session) -> None:
    assert bulk.known_counts(db, []) == {}
    assert bulk.known_values(db, []) == {}
    rng = random.Random(3)
    stored = _populate(db, rng, 50)
    counts = bulk.known_counts(db, stored)
    some = next(iter(counts))
    assert bulk.known_counts(db, [some] * 1000) == {some: counts[some]}


@pytest.mark.usefixtures("path")
def test_many_calls_in_one_transaction_leave_it_usable(db: Session) -> None:
    rng = random.Random(5)
    stored = _populate(db, rng, 120)
    first = bulk.known_counts(db, stored)
    assert bulk.known_counts(db, stored) == first
    assert bulk.known_values(db, stored) == _reference_values(db, stored)
    # the transaction goes on: the caller's later statements and commit work
    db.execute(insert(IdentValue), [{"digest": rng.randbytes(16), "kind": "other",
                                      "canonical": "after", "flags": []}])  # fmt: skip
    db.commit()


@pytest.mark.usefixtures("path")
def test_pending_objects_are_flushed_first(db: Session) -> None:
    digest = rules.digest("other", "pending-value")
    db.add(IdentValue(digest=digest, kind="other", canonical="pending-value", flags=[]))
    assert digest in bulk.known_values(db, [digest, *(bytes([i]) * 16 for i in range(3))])


def test_the_default_threshold_uses_the_temporary_table_for_large_batches(db: Session) -> None:
    rng = random.Random(13)
    stored = _populate(db, rng, bulk.SMALL_BATCH + 200)
    probes = stored + [rng.randbytes(16) for _ in range(100)]
    assert bulk.known_counts(db, probes) == _reference_counts(db, probes, None)


def test_a_digest_of_the_wrong_length_is_refused(db: Session) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        bulk.known_counts(db, [b"short"])
    with pytest.raises(ValueError, match="16 bytes"):
        bulk.known_values(db, [bytes(17)])


@pytest.mark.parametrize("exclude", [None, SCOPES[2]])
def test_the_portable_path_agrees_too(db: Session, exclude: tuple[str, str] | None) -> None:
    """The path for other databases (and small batches on PostgreSQL), on this database."""
    rng = random.Random(17)
    stored = _populate(db, rng, 700)
    probes = _probes(rng, stored, 50)
    unique = list(dict.fromkeys(probes))
    assert bulk._portable_counts(db, unique, exclude) == _reference_counts(db, probes, exclude)
    assert bulk._portable_values(db, unique) == _reference_values(db, probes)

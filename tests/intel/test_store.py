"""The store: collections and grants, adding objects (statuses, idempotence), TAXII reads."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crossborder.audit.models import AuditEvent
from crossborder.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from crossborder.intel import service
from crossborder.intel.models import IntelGrant, IntelObject, IntelStatus
from tests.intel.conftest import Scene
from tests.intel.factories import T0, T1, indicator, sco, sdo


def _events(db: Session, action: str) -> list[AuditEvent]:
    return list(
        db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
    )


# --- collections and access -----------------------------------------------------------------


def test_owner_reads_and_writes_others_need_a_grant(db: Session, scene: Scene) -> None:
    feed = scene.feed
    assert service.access(db, scene.analyst, feed) == (True, True)
    assert service.access(db, scene.officer, feed) == (True, False)  # no intel:write
    assert service.access(db, scene.admin, feed) == (False, False)  # administrators manage
    assert service.access(db, scene.au_analyst, feed) == (False, False)
    with pytest.raises(NotFound):
        service.get_collection(db, scene.au_analyst, "vn-feed")
    assert service.get_collection(db, scene.admin, "vn-feed") is feed  # to grant
    assert service.get_collection(db, scene.officer, feed.public_id) is feed

    service.grant(db, scene.admin, feed, authority_id=scene.au.id, can_read=True, can_write=False)
    assert service.access(db, scene.au_analyst, feed) == (True, False)
    assert service.access(db, scene.ma_officer, feed) == (False, False)
    service.grant(db, scene.admin, feed, authority_id=scene.au.id, can_read=True, can_write=True)
    assert service.access(db, scene.au_analyst, feed) == (True, True)
    assert service.access(db, scene.au_officer, feed) == (True, False)
    assert [c.collection.alias for c in service.list_collections(db, scene.au_officer)] == [
        "vn-feed"
    ]
    service.grant(db, scene.admin, feed, authority_id=scene.au.id, can_read=False, can_write=False)
    assert service.access(db, scene.au_analyst, feed) == (False, False)
    assert db.scalar(select(func.count()).select_from(IntelGrant)) == 0
    grants = _events(db, "intel.grant")
    assert [e.details["can_write"] for e in grants] == [False, True, False]
    assert all(e.details["authority_id"] == scene.au.id for e in grants)


def test_only_the_owners_administrators_grant(db: Session, scene: Scene) -> None:
    with pytest.raises(PermissionDenied, match="intel:manage"):
        service.grant(
            db, scene.analyst, scene.feed, authority_id=scene.au.id, can_read=True, can_write=False
        )
    with pytest.raises(PermissionDenied, match="owning authority"):
        service.grant(
            db, scene.au_admin, scene.feed, authority_id=scene.au.id, can_read=True, can_write=False
        )
    with pytest.raises(InvalidInput, match="exactly one"):
        service.grant(db, scene.admin, scene.feed, can_read=True, can_write=False)
    with pytest.raises(InvalidInput, match="always has access"):
        service.grant(
            db, scene.admin, scene.feed, authority_id=scene.vn.id, can_read=True, can_write=False
        )
    with pytest.raises(NotFound):
        service.grant(db, scene.admin, scene.feed, token_id=987654, can_read=True, can_write=False)


def test_collections_need_a_title_a_free_alias_and_intel_manage(db: Session, scene: Scene) -> None:
    with pytest.raises(PermissionDenied):
        service.create_collection(db, scene.analyst, title="Mine")
    with pytest.raises(Conflict, match="taken"):
        service.create_collection(db, scene.admin, title="Again", alias="VN-Feed")
    with pytest.raises(InvalidInput, match="alias"):
        service.create_collection(db, scene.admin, title="Bad", alias="no spaces")
    with pytest.raises(InvalidInput, match="title"):
        service.create_collection(db, scene.admin, title="  ")
    made = service.create_collection(db, scene.admin, title="Phishing", description="kits")
    assert made.alias is None
    assert made.owner_authority_id == scene.vn.id
    assert [c.collection.title for c in service.list_collections(db, scene.analyst)] == [
        "VN ransomware feed",
        "Phishing",
    ]
    created = _events(db, "intel.collection_created")
    assert [e.object_id for e in created][-1] == made.public_id


# --- adding objects -----------------------------------------------------------------------


def test_add_objects_stores_versions_and_persists_a_status(db: Session, scene: Scene) -> None:
    objects = [
        indicator("198.51.100.1"),
        sco("ipv4-addr", "198.51.100.1"),
        sdo("campaign", name="x"),
    ]
    status = service.add_objects(db, scene.analyst, scene.feed, objects)
    assert (status.status, status.total_count, status.success_count) == ("complete", 3, 3)
    assert (status.failure_count, status.pending_count) == (0, 0)
    assert status.successes[0] == {"id": objects[0]["id"], "version": T0}
    rows = list(db.scalars(select(IntelObject).order_by(IntelObject.date_added)))
    assert [r.stix_id for r in rows] == [o["id"] for o in objects]
    assert all(a.date_added < b.date_added for a, b in itertools.pairwise(rows))
    assert rows[0].version == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert rows[1].version == rows[1].date_added  # an SCO has no version of its own
    assert orjson.loads(rows[0].body) == objects[0]
    assert (rows[0].tlp, rows[0].origin_authority_id) == ("amber", scene.vn.id)
    stored = db.scalar(select(IntelStatus).where(IntelStatus.public_id == status.id))
    assert stored is not None
    assert service.get_status(db, scene.officer, status.id).success_count == 3
    with pytest.raises(NotFound):
        service.get_status(db, scene.au_officer, status.id)
    [event] = _events(db, "intel.objects_added")
    assert event.details == {
        "status": status.id,
        "total": 3,
        "stored": 3,
        "already_present": 0,
        "invalid": 0,
        "source": "imported",
    }
    assert "198.51.100.1" not in orjson.dumps(event.details).decode()


def test_date_added_strictly_increases_across_calls(db: Session, scene: Scene) -> None:
    for _ in range(3):
        service.add_objects(db, scene.analyst, scene.feed, [indicator(), indicator()])
    added = list(db.scalars(select(IntelObject.date_added).order_by(IntelObject.id)))
    assert len(added) == 6
    assert all(a < b for a, b in itertools.pairwise(added))


def test_importing_again_stores_nothing_twice(db: Session, scene: Scene) -> None:
    objects = [indicator(), sco("domain-name", "evil.example"), sdo("malware", is_family=False)]
    service.add_objects(db, scene.analyst, scene.feed, objects)
    again = service.add_objects(db, scene.analyst, scene.feed, objects)
    assert (again.total_count, again.success_count, again.failure_count) == (3, 0, 3)
    assert again.already_present == 3
    assert {f["message"] for f in again.failures} == {"already present"}
    newer = {**objects[0], "modified": T1, "name": "renamed"}
    update = service.add_objects(db, scene.analyst, scene.feed, [newer, newer])
    assert (update.success_count, update.already_present) == (1, 1)
    assert db.scalar(select(func.count()).select_from(IntelObject)) == 4


def test_good_and_bad_objects_are_counted_apart(db: Session, scene: Scene) -> None:
    good = [indicator(), sdo("threat-actor", name="Lazarus"), sco("url", "http://evil.example/")]
    bad_id = {**indicator(), "id": "indicator--1234"}
    bad_pattern = {**indicator(), "pattern": "[ipv4-addr:value = "}
    status = service.add_objects(
        db, scene.analyst, scene.feed, [good[0], bad_id, *good[1:], bad_pattern]
    )
    assert (status.total_count, status.success_count, status.failure_count) == (5, 3, 2)
    assert status.invalid == 2
    assert [f["id"] for f in status.failures] == ["indicator--1234", bad_pattern["id"]]
    assert "id:" in status.failures[0]["message"]
    assert status.failures[1]["message"].startswith("pattern:")
    assert [s["id"] for s in status.successes] == [g["id"] for g in good]


def test_writing_needs_write_access(db: Session, scene: Scene) -> None:
    with pytest.raises(PermissionDenied):
        service.add_objects(db, scene.officer, scene.feed, [indicator()])
    with pytest.raises(PermissionDenied):
        service.add_objects(db, scene.au_analyst, scene.feed, [indicator()])
    assert db.scalar(select(func.count()).select_from(IntelObject)) == 0


# --- TAXII reads ------------------------------------------------------------------------------


def test_pages_follow_date_added_and_refuse_changed_filters(db: Session, scene: Scene) -> None:
    objects = [indicator(f"198.51.100.{i}") for i in range(5)]
    service.add_objects(db, scene.analyst, scene.feed, objects)
    seen: list[str] = []
    page = service.query(db, scene.officer, scene.feed, limit=2)
    pages = 1
    while page.more:
        assert page.next is not None
        seen += [o["id"] for o in page.objects]
        with pytest.raises(InvalidInput, match="filters changed"):
            service.query(
                db, scene.officer, scene.feed, limit=2, next_token=page.next, match_type=["x"]
            )
        page = service.query(db, scene.officer, scene.feed, limit=2, next_token=page.next)
        pages += 1
    seen += [o["id"] for o in page.objects]
    assert (seen, pages, page.next) == ([o["id"] for o in objects], 3, None)
    assert page.first_added == page.last_added == page.manifest[0].date_added
    with pytest.raises(InvalidInput, match="next"):
        service.query(db, scene.officer, scene.feed, next_token="garbage")
    with pytest.raises(InvalidInput, match="limit"):
        service.query(db, scene.officer, scene.feed, limit=0)


def test_filters_by_id_type_version_and_added_after(db: Session, scene: Scene) -> None:
    first = indicator("198.51.100.1")
    second = {**first, "modified": T1, "name": "v2"}
    other = sdo("campaign", name="Op X")
    service.add_objects(db, scene.analyst, scene.feed, [first, other])
    service.add_objects(db, scene.analyst, scene.feed, [second])

    def names(**filters: object) -> list[str]:
        page = service.query(db, scene.officer, scene.feed, **filters)  # type: ignore[arg-type]
        return [o["name"] for o in page.objects]

    assert names() == ["Op X", "v2"]
    assert names(match_version="first") == [first["name"], "Op X"]
    assert names(match_version="all") == [first["name"], "Op X", "v2"]
    assert names(match_version=[T0]) == [first["name"], "Op X"]
    assert names(match_version=["first", "last"], match_type=["indicator"]) == [first["name"], "v2"]
    assert names(match_id=[other["id"]]) == ["Op X"]
    assert names(match_spec_version=["2.0"]) == []
    page = service.query(db, scene.officer, scene.feed, match_version="all")
    assert names(added_after=page.manifest[1].date_added, match_version="all") == ["v2"]
    with pytest.raises(InvalidInput, match="match\\[version\\]"):
        names(match_version="yesterday")
    versions = service.get_versions(db, scene.officer, scene.feed, first["id"])
    assert [m.version for m in versions.manifest] == [
        datetime(2026, 3, 1, 10, tzinfo=UTC),
        datetime(2026, 3, 2, 10, tzinfo=UTC),
    ]
    assert versions.objects == []
    with pytest.raises(NotFound):
        service.get_versions(db, scene.officer, scene.feed, indicator()["id"])


def test_reading_needs_read_access(db: Session, scene: Scene) -> None:
    with pytest.raises(PermissionDenied):
        service.query(db, scene.au_officer, scene.feed)
    with pytest.raises(PermissionDenied):
        service.query(db, scene.admin, scene.feed)


def test_delete_removes_every_version_and_is_audited(db: Session, scene: Scene) -> None:
    first = indicator("198.51.100.9")
    service.add_objects(db, scene.analyst, scene.feed, [first, {**first, "modified": T1}])
    with pytest.raises(PermissionDenied):
        service.delete_object(db, scene.officer, scene.feed, first["id"])
    assert service.delete_object(db, scene.analyst, scene.feed, first["id"]) == 2
    assert db.scalar(select(func.count()).select_from(IntelObject)) == 0
    with pytest.raises(NotFound):
        service.delete_object(db, scene.analyst, scene.feed, first["id"])
    [event] = _events(db, "intel.object_deleted")
    assert event.details == {"stix_id": first["id"], "versions": 2, "versions_left": 0}


def test_deleting_the_newest_version_reindexes_the_one_left(db: Session, scene: Scene) -> None:
    from crossborder.selectors.models import IdentOccurrence, IdentValue

    old = indicator("198.51.100.9")
    new = {**indicator("198.51.100.77"), "id": old["id"], "modified": T1}
    service.add_objects(db, scene.analyst, scene.feed, [old, new])
    scope = service.scope_id_of(scene.feed, old["id"])

    def indexed() -> set[str]:
        rows = db.scalars(
            select(IdentValue.canonical)
            .join(IdentOccurrence, IdentOccurrence.value_id == IdentValue.id)
            .where(IdentOccurrence.scope_id == scope)
        )
        return set(rows)

    assert indexed() == {"198.51.100.77"}
    with pytest.raises(InvalidInput):
        service.delete_object(db, scene.analyst, scene.feed, old["id"], match_version="newest")
    assert (
        service.delete_object(db, scene.analyst, scene.feed, old["id"], match_version="last") == 1
    )
    assert indexed() == {"198.51.100.9"}
    with pytest.raises(NotFound):
        service.delete_object(db, scene.analyst, scene.feed, old["id"], match_version=[T1])
    assert (
        service.delete_object(db, scene.analyst, scene.feed, old["id"], match_version="first") == 1
    )
    assert indexed() == set()


def test_pages_newest_first_follow_their_own_cursor(db: Session, scene: Scene) -> None:
    objects = [indicator(f"198.51.100.{i}") for i in range(1, 8)]
    for obj in objects:
        service.add_objects(db, scene.analyst, scene.feed, [obj])
    seen: list[str] = []
    token = None
    for _ in range(10):
        page = service.query(
            db, scene.officer, scene.feed, limit=3, next_token=token, newest_first=True
        )
        seen += [o["id"] for o in page.objects]
        if not page.more:
            break
        token = page.next
    assert seen == [o["id"] for o in reversed(objects)]
    oldest_first = service.query(db, scene.officer, scene.feed, limit=3)
    with pytest.raises(InvalidInput, match="filters changed"):
        service.query(
            db, scene.officer, scene.feed, next_token=oldest_first.next, newest_first=True
        )

"""Bundles in: parsing, fetching, importing in batches in one transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from crossborder.audit.models import AuditEvent
from crossborder.core.errors import InvalidInput
from crossborder.intel import bundles, service
from crossborder.intel.models import IntelObject, IntelStatus
from crossborder.selectors.models import IdentOccurrence
from tests.intel.conftest import Scene
from tests.intel.factories import bundle, indicator, new_id, sco


def _count(db: Session, model: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[]", '"type": "bundle"'),
        (b'{"type": "report"}', '"type": "bundle"'),
        (b'{"type": "bundle", "id": "bundle--1"}', "bundle--<UUID>"),
        (b'{"type": "bundle", "id": "' + new_id("bundle").encode() + b'", "objects": {}}', "list"),
    ],
)
def test_what_is_not_a_bundle_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput, match="^.*" + reason.replace("[", "\\[")):
        bundles.parse(data)


def test_a_bundle_without_objects_is_empty() -> None:
    assert bundles.parse(orjson.dumps({"type": "bundle", "id": new_id("bundle")})) == []


def test_files_and_urls(tmp_path: Path) -> None:
    data = orjson.dumps(bundle(indicator()))
    path = tmp_path / "b.json"
    path.write_bytes(data)
    assert len(bundles.read_source(str(path))) == 1
    with pytest.raises(bundles.TooLarge):
        bundles.read_file(path, limit=10)
    with pytest.raises(InvalidInput, match="no such file"):
        bundles.read_source(str(tmp_path / "missing.json"))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/feed.json":
            return httpx.Response(200, content=data)
        if request.url.path == "/huge.json":
            return httpx.Response(200, content=b"x" * 5000)
        return httpx.Response(404)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    assert bundles.fetch("https://feeds.example/feed.json", client=client) == data
    with pytest.raises(bundles.TooLarge):
        bundles.fetch("https://feeds.example/huge.json", limit=1000, client=client)
    with pytest.raises(InvalidInput, match="HTTP 404"):
        bundles.fetch("https://feeds.example/nothing", client=client)
    with pytest.raises(InvalidInput, match="http and https"):
        bundles.fetch("file:///etc/passwd", client=client)


def test_import_in_batches_with_progress_then_again(db: Session, scene: Scene) -> None:
    objects = [indicator(f"10.0.{i // 250}.{i % 250}") for i in range(2500)]
    seen: list[int] = []
    report = bundles.import_objects(db, scene.analyst, scene.feed, objects, progress=seen.append)
    assert (report.total, report.stored, report.already_present, report.invalid) == (
        2500,
        2500,
        0,
        0,
    )
    assert seen == [1000, 1000, 500]
    assert len(report.statuses) == 3
    assert _count(db, IntelObject) == 2500
    again = bundles.import_objects(db, scene.analyst, scene.feed, objects)
    assert (again.stored, again.already_present, again.invalid) == (0, 2500, 0)
    assert again.errors == []


def test_good_and_bad_objects_in_one_bundle(db: Session, scene: Scene) -> None:
    good = [
        indicator(),
        sco("ipv4-addr", "198.51.100.4"),
        indicator("evil.example", kind="domain-name"),
    ]
    bad = [
        {**indicator(), "created": "yesterday"},
        {"type": "x-unknown", "id": new_id("x-unknown"), "spec_version": "2.1"},
    ]
    objects = [*good[:2], bad[0], good[2], bad[1]]
    report = bundles.import_objects(
        db, scene.analyst, scene.feed, bundles.parse(orjson.dumps(bundle(*objects)))
    )
    assert (report.stored, report.invalid, report.already_present) == (3, 2, 0)
    assert report.errors[0].startswith(f"{bad[0]['id']}: created:")
    assert report.errors[1].startswith(f"{bad[1]['id']}: type:")
    [status] = db.scalars(select(IntelStatus))
    assert (status.success_count, status.failure_count, status.total_count) == (3, 2, 5)
    assert [f["id"] for f in status.failures] == [bad[0]["id"], bad[1]["id"]]


def test_a_database_failure_half_way_leaves_nothing(
    db: Session, scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_index = service._index
    calls = {"n": 0}

    def failing_index(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OperationalError("INSERT INTO ident_occurrences", {}, Exception("disk full"))
        real_index(*args, **kwargs)

    monkeypatch.setattr(service, "_index", failing_index)
    objects = [indicator(f"10.1.{i // 250}.{i % 250}") for i in range(1500)]
    with pytest.raises(OperationalError):
        bundles.import_objects(db, scene.analyst, scene.feed, objects)
    assert calls["n"] == 2  # the first batch was written before the failure
    assert _count(db, IntelObject) == 0
    assert _count(db, IntelStatus) == 0
    assert _count(db, IdentOccurrence) == 0
    added = db.scalar(select(func.count()).where(AuditEvent.action == "intel.objects_added"))
    assert added == 0

"""Feeds between two crossborder nodes: this node pulls from, and pushes to, another
crossborder node's TAXII 2.1 server (a live uvicorn server with its own database)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session

from crossborder.auth.permissions import Principal
from crossborder.core.clock import utc_now
from crossborder.intel import feeds, service
from crossborder.intel.markings import Tlp
from crossborder.intel.models import IntelCollection
from crossborder.settings import Settings
from tests.intel.test_feeds import (  # noqa: F401 - fixtures
    admin,
    analyst,
    factory_for,
    indicator,
    local,
    rows_of,
)
from tests.intel.test_taxii_client import Live, live  # noqa: F401 - fixture


def _feed(
    db: Session,
    admin: Principal,  # noqa: F811
    settings: Settings,
    live: Live,  # noqa: F811
    *,
    name: str,
    direction: str,
    token: str,
) -> None:
    feeds.add_feed(
        db,
        admin,
        secret_key=settings.secret_key,
        name=name,
        direction=direction,
        api_root_url=f"{live.base}/taxii2/api1/",
        remote_collection_id=live.collection_id,
        collection="partners",
        auth_kind="bearer",
        secret=token,
        interval_minutes=30,
    )


def test_a_node_pulls_what_another_node_lets_it_read_then_only_what_is_new(
    db: Session,
    admin: Principal,  # noqa: F811
    settings: Settings,
    local: IntelCollection,  # noqa: F811
    live: Live,  # noqa: F811
) -> None:
    published = {
        "clear": indicator("scam shop", "198.51.100.1", Tlp.CLEAR),
        "green": indicator("mule recruiter", "198.51.100.2", Tlp.GREEN),
        "amber": indicator("phishing kit", "198.51.100.3", Tlp.AMBER),
        "strict": indicator("undercover lead", "198.51.100.4", Tlp.AMBER_STRICT),
        "red": indicator("informant", "198.51.100.5", Tlp.RED),
    }
    remote = live.collection(live.analyst)
    assert remote.add_objects({"objects": list(published.values())}).success_count == 5
    # AU's officer reads VN's collection through AU's grant: AMBER+STRICT and RED stay home.
    _feed(db, admin, settings, live, name="vn-node", direction="pull", token=live.au_officer)
    factory: Callable[[], Session] = factory_for(db)
    stats = feeds.run_due(settings, factory)
    assert stats["intel_feeds_failed"] == 0
    assert stats["intel_pulled_stored"] == 3
    assert {r.stix_id for r in rows_of(db, local)} == {
        published[k]["id"] for k in ("clear", "green", "amber")
    }
    late = indicator("new drop server", "198.51.100.6", Tlp.GREEN)
    assert remote.add_objects({"objects": [late]}).success_count == 1
    stats = feeds.run_due(settings, factory, now=utc_now() + timedelta(minutes=31))
    assert stats["intel_pulled_stored"] == 1
    assert late["id"] in {r.stix_id for r in rows_of(db, local)}


def test_a_node_pushes_into_another_nodes_collection(
    db: Session,
    admin: Principal,  # noqa: F811
    analyst: Principal,  # noqa: F811
    settings: Settings,
    local: IntelCollection,  # noqa: F811
    live: Live,  # noqa: F811
) -> None:
    ours = [
        indicator("ours clear", "192.0.2.1", Tlp.CLEAR),
        indicator("ours strict", "192.0.2.2", Tlp.AMBER_STRICT),
    ]
    service.add_objects(db, analyst, local, ours)
    _feed(db, admin, settings, live, name="to-vn", direction="push", token=live.analyst)
    stats = feeds.run_due(settings, factory_for(db))
    assert stats["intel_feeds_failed"] == 0
    assert stats["intel_pushed"] == 1
    assert stats["intel_push_withheld"] == 1
    there = live.collection(live.analyst).get_objects(type="indicator")
    assert [o["id"] for o in there["objects"]] == [ours[0]["id"]]

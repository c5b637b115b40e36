"""Intelligence shared between two nodes through signed, encrypted federation envelopes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from crossborder.auth.permissions import Principal, Role
from crossborder.core.errors import InvalidInput
from crossborder.db.session import unit_of_work
from crossborder.directory.models import Authority
from crossborder.federation.client import LocalTransport
from crossborder.intel import exchange, service
from crossborder.intel.models import IntelCollection, IntelObject
from tests.federation.test_two_nodes import LocalNode, nodes  # noqa: F401 - fixture
from tests.intel.factories import AMBER, AMBER_STRICT, CLEAR, GREEN, RED, indicator
from tests.requests.test_federated import _directory


@pytest.fixture
def pair(nodes: Callable[[str], LocalNode]) -> dict[str, Any]:  # noqa: F811
    exchange.register()
    vn, au = nodes("vn-mps"), nodes("au-afp")
    vn.pin(au)
    au.pin(vn)
    transport = LocalTransport()
    for n in (vn, au):
        transport.add(n.url, n.settings, n.factory)
    vn_ids = _directory(vn, local="VN-A05", remote=("AU-AFP", au))
    au_ids = _directory(au, local="AU-AFP", remote=("VN-A05", vn))

    def person(authority_id: int, role: Role) -> Principal:
        return Principal(
            user_id=1, username=role.value, authority_id=authority_id, roles=frozenset({role})
        )

    return {
        "vn": vn,
        "au": au,
        "t": transport,
        "admin": person(vn_ids["local"], Role.ADMINISTRATOR),
        "hoa": person(vn_ids["local"], Role.ANALYST),
        "jack": person(au_ids["local"], Role.OFFICER),
        "vn_ids": vn_ids,
        "au_ids": au_ids,
    }


def _received(node: LocalNode) -> dict[str, str]:
    with node.session() as s:
        return {o.stix_id: o.tlp for o in s.scalars(select(IntelObject))}


def test_what_may_be_passed_on_crosses_and_nothing_else(pair: dict[str, Any]) -> None:
    vn, au, t = pair["vn"], pair["au"], pair["t"]
    clear, green, amber = (
        indicator(marked=[CLEAR]),
        indicator(marked=[GREEN]),
        indicator(marked=[AMBER]),
    )
    strict, red = indicator(marked=[AMBER_STRICT]), indicator(marked=[RED])
    with vn.session() as s, unit_of_work(s):
        feed = service.create_collection(s, pair["admin"], title="C2", alias="vn-c2")
        service.add_objects(s, pair["hoa"], feed, [clear, green, amber, strict, red])
        shared = exchange.share(s, pair["hoa"], feed, to_authority_id=pair["vn_ids"]["remote"])
    assert shared.sent == 3  # CLEAR, GREEN and AMBER (VN originated it)
    assert shared.messages == 1
    assert vn.deliver(t).delivered == 1
    got = _received(au)
    assert set(got) >= {clear["id"], green["id"], amber["id"]}
    assert strict["id"] not in got
    assert red["id"] not in got
    assert got[amber["id"]] == "amber"
    with au.session() as s:
        inbox = s.scalars(select(IntelCollection)).one()
        assert inbox.owner_authority_id == pair["au_ids"]["local"]
        row = s.scalars(select(IntelObject).where(IntelObject.stix_id == amber["id"])).one()
        vn_there = s.scalars(select(Authority).where(Authority.short_name == "VN-A05")).one()
        assert row.origin_authority_id == vn_there.id  # the sender stays the originator
        # Jack reads it; AFP may not pass VN's AMBER on to anyone.
        page = service.query(s, pair["jack"], inbox, limit=100)
        assert amber["id"] in {o["id"] for o in page.objects}
        analyst = Principal(
            user_id=2,
            username="olivia",
            authority_id=pair["au_ids"]["local"],
            roles=frozenset({Role.ANALYST}),
        )
        onward = exchange.share(s, analyst, inbox, to_authority_id=pair["au_ids"]["remote"])
        assert onward.sent == 2  # CLEAR and GREEN only
        s.rollback()


def test_a_local_authority_gets_a_grant_not_a_message(pair: dict[str, Any]) -> None:
    vn = pair["vn"]
    with vn.session() as s, unit_of_work(s):
        feed = service.create_collection(s, pair["admin"], title="C2", alias="vn-c2")
        with pytest.raises(InvalidInput):
            exchange.share(s, pair["hoa"], feed, to_authority_id=pair["vn_ids"]["local"])


def test_a_node_may_not_speak_for_an_authority_it_does_not_serve(pair: dict[str, Any]) -> None:
    vn, au, t = pair["vn"], pair["au"], pair["t"]
    with vn.session() as s, unit_of_work(s):
        feed = service.create_collection(s, pair["admin"], title="C2", alias="vn-c2")
        service.add_objects(s, pair["hoa"], feed, [indicator(marked=[CLEAR])])
        exchange.share(s, pair["hoa"], feed, to_authority_id=pair["vn_ids"]["remote"])
    # Forge the claim: the message says it comes from AU-AFP (which VN's node does not serve).
    with vn.session() as s, unit_of_work(s):
        from crossborder.federation.models import OutboxMessage

        msg = s.scalars(select(OutboxMessage)).one()
        body = dict(msg.body)
        body["from_authority"] = {"state": "AU", "short_name": "AU-AFP", "name": "AU-AFP"}
        msg.body = body
    vn.deliver(t)
    assert _received(au) == {}
    [row] = au.inbox()
    assert row.status == "failed"
    assert "does not serve" in (row.last_error or "")


def test_red_reaches_its_named_recipient_on_another_node_and_no_one_else(
    pair: dict[str, Any],
) -> None:
    from crossborder.intel import stix

    vn, au, t = pair["vn"], pair["au"], pair["t"]
    to_afp = stix.handling_marking(recipients=(pair["vn_ids"]["remote"],))
    to_vn_only = stix.handling_marking(recipients=(pair["vn_ids"]["local"],))
    for_afp = indicator("198.51.100.10", marked=[RED, to_afp["id"]])
    not_for_afp = indicator("198.51.100.11", marked=[RED, to_vn_only["id"]])
    with vn.session() as s, unit_of_work(s):
        feed = service.create_collection(s, pair["admin"], title="C2", alias="vn-c2")
        service.add_objects(s, pair["hoa"], feed, [to_afp, to_vn_only, for_afp, not_for_afp])
        shared = exchange.share(s, pair["hoa"], feed, to_authority_id=pair["vn_ids"]["remote"])
    with vn.session() as s:
        from crossborder.federation.models import OutboxMessage

        body = s.scalars(select(OutboxMessage)).one().body
    travelled = {o["id"]: o for o in body["objects"]}
    assert shared.sent == 2  # the indicator for AFP and its creator's identity
    assert not_for_afp["id"] not in travelled
    spec = travelled[to_afp["id"]]["extensions"][stix.LE_HANDLING_EXTENSION]
    assert "recipients" not in spec  # ids of VN's directory mean nothing on AU's node
    assert spec["recipient_authorities"] == [
        {"state": "AU", "short_name": "AU-AFP", "name": "AU-AFP"}
    ]
    assert vn.deliver(t).delivered == 1
    received = _received(au)
    assert received[for_afp["id"]] == "red"
    assert not_for_afp["id"] not in received
    with au.session() as s:
        inbox = s.scalars(select(IntelCollection)).one()
        page = service.query(s, pair["jack"], inbox, limit=100)
        assert for_afp["id"] in {o["id"] for o in page.objects}  # jack's AFP is named
        row = s.scalars(select(IntelObject).where(IntelObject.stix_id == for_afp["id"])).one()
        assert row.recipients == [pair["au_ids"]["local"]]
        # AFP received it: it may not pass RED on, not even to VN's other authorities.
        analyst = Principal(
            user_id=2,
            username="olivia",
            authority_id=pair["au_ids"]["local"],
            roles=frozenset({Role.ANALYST}),
        )
        onward = exchange.share(s, analyst, inbox, to_authority_id=pair["au_ids"]["remote"])
        assert onward.sent == 0
        s.rollback()


def test_numeric_recipients_from_another_node_are_never_trusted(pair: dict[str, Any]) -> None:
    from crossborder.intel import stix

    vn, au, t = pair["vn"], pair["au"], pair["t"]
    with vn.session() as s, unit_of_work(s):
        feed = service.create_collection(s, pair["admin"], title="C2", alias="vn-c2")
        service.add_objects(s, pair["hoa"], feed, [indicator(marked=[CLEAR])])
        exchange.share(s, pair["hoa"], feed, to_authority_id=pair["vn_ids"]["remote"])
    # A node that claims, in AU's own numbering, that AU's authority is a named recipient.
    forged_marking = stix.handling_marking(recipients=(pair["au_ids"]["local"],))
    red = indicator("198.51.100.12", marked=[RED, forged_marking["id"]])
    with vn.session() as s, unit_of_work(s):
        from crossborder.federation.models import OutboxMessage

        msg = s.scalars(select(OutboxMessage)).one()
        msg.body = {**msg.body, "objects": [forged_marking, red]}
    assert vn.deliver(t).delivered == 1
    with au.session() as s:
        inbox = s.scalars(select(IntelCollection)).one()
        row = s.scalars(select(IntelObject).where(IntelObject.stix_id == red["id"])).one()
        assert row.recipients == []
        page = service.query(s, pair["jack"], inbox, limit=100)
        assert red["id"] not in {o["id"] for o in page.objects}

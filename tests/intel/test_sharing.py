"""Markings on every path of the store: reads, exports, the identifier index, partners."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from stix2validator import ValidationOptions, validate_string

from crossborder.audit.models import AuditEvent
from crossborder.auth.models import ApiToken
from crossborder.auth.permissions import Principal
from crossborder.core.errors import NotFound, PermissionDenied
from crossborder.intel import markings, service, stix
from crossborder.intel.models import IntelObject
from crossborder.selectors import service as selectors
from tests.intel.conftest import Scene
from tests.intel.factories import (
    AMBER,
    AMBER_STRICT,
    CLEAR,
    GREEN,
    RED,
    T1,
    indicator,
    sco,
    sdo,
)

Partner = tuple[Principal, ApiToken, str]
PUBLIC = markings.Audience(markings.AudienceKind.PUBLIC)


def authority(scene_authority: Any) -> markings.Audience:
    return markings.Audience(markings.AudienceKind.AUTHORITY, authority_id=scene_authority.id)


def visible(db: Session, actor: Principal, scene: Scene) -> set[str]:
    return {o["id"] for o in service.query(db, actor, scene.feed, limit=1000).objects}


def exported(
    db: Session, actor: Principal, scene: Scene, audience: markings.Audience
) -> tuple[set[str], list[str]]:
    bundle, left_out = service.export_bundle(db, actor, scene.feed, audience=audience)
    return {o["id"] for o in bundle["objects"]}, left_out


@pytest.fixture
def shared(db: Session, scene: Scene) -> Scene:
    """The feed shared with AU and MA (read)."""
    for other in (scene.au, scene.ma):
        service.grant(
            db, scene.admin, scene.feed, authority_id=other.id, can_read=True, can_write=False
        )
    return scene


def test_red_reaches_its_named_recipients_only(db: Session, shared: Scene) -> None:
    scene = shared
    to_au = stix.handling_marking(recipients=(scene.au.id,))
    red = indicator("203.0.113.5", marked=[RED, to_au["id"]])
    status = service.add_objects(db, scene.analyst, scene.feed, [to_au, red])
    assert status.success_count == 2
    assert red["id"] in visible(db, scene.au_officer, scene)
    assert red["id"] not in visible(db, scene.ma_officer, scene)
    assert red["id"] in visible(db, scene.officer, scene)  # the originator's authority
    # Exports: the originator may send it to the named recipient, and to no one else.
    sent, _ = exported(db, scene.analyst, scene, authority(scene.au))
    assert red["id"] in sent
    assert to_au["id"] in sent  # the marking definition travels with it
    kept, left_out = exported(db, scene.analyst, scene, authority(scene.ma))
    assert red["id"] not in kept
    assert red["id"] in left_out
    # A recipient never passes it on, and a non-recipient does not even learn it is there.
    au_sent, au_left = exported(db, scene.au_officer, scene, authority(scene.ma))
    assert red["id"] not in au_sent
    assert red["id"] in au_left
    ma_sent, ma_left = exported(db, scene.ma_officer, scene, PUBLIC)
    assert red["id"] not in ma_sent
    assert red["id"] not in ma_left


def test_amber_strict_never_leaves_the_authority(db: Session, shared: Scene) -> None:
    scene = shared
    strict = indicator("203.0.113.6", marked=[AMBER_STRICT])
    service.add_objects(db, scene.analyst, scene.feed, [strict])
    assert strict["id"] in visible(db, scene.officer, scene)
    assert strict["id"] not in visible(db, scene.au_officer, scene)  # despite the grant
    au_sent, au_left = exported(db, scene.au_officer, scene, authority(scene.au))
    assert strict["id"] not in au_sent | set(au_left)
    vn_sent, vn_left = exported(db, scene.analyst, scene, authority(scene.au))
    assert strict["id"] not in vn_sent
    assert strict["id"] in vn_left


def test_amber_is_read_by_grantees_but_passed_on_by_its_originator_only(
    db: Session, shared: Scene
) -> None:
    scene = shared
    amber = indicator("203.0.113.7", marked=[AMBER])
    unmarked = indicator("203.0.113.8")  # no TLP: read as AMBER
    service.add_objects(db, scene.analyst, scene.feed, [amber, unmarked])
    assert {amber["id"], unmarked["id"]} <= visible(db, scene.au_officer, scene)
    for audience in (authority(scene.ma), PUBLIC):
        sent, left_out = exported(db, scene.au_officer, scene, audience)
        assert not {amber["id"], unmarked["id"]} & sent
        assert {amber["id"], unmarked["id"]} <= set(left_out)
    sent, _ = exported(db, scene.analyst, scene, authority(scene.ma))
    assert {amber["id"], unmarked["id"]} <= sent
    sent, left_out = exported(db, scene.analyst, scene, PUBLIC)
    assert amber["id"] in left_out
    [event] = [
        e
        for e in db.scalars(select(AuditEvent).where(AuditEvent.action == "intel.exported"))
        if e.actor_authority_id == scene.vn.id and e.details["audience"]["kind"] == "public"
    ]
    reasons = {i["id"]: i["reason"] for i in event.details["left_out"]}
    assert "public" in reasons[amber["id"]]


def test_h1_is_never_exported_by_a_recipient(db: Session, shared: Scene) -> None:
    scene = shared
    h1 = stix.handling_marking(codes=("H1",), source_reliability="B", information_accuracy="2")
    obj = indicator("203.0.113.9", marked=[GREEN, h1["id"]])
    service.add_objects(db, scene.analyst, scene.feed, [h1, obj])
    row = db.scalar(select(IntelObject).where(IntelObject.stix_id == obj["id"]))
    assert row is not None
    assert (row.tlp, row.handling_codes) == ("green", ["H1"])
    assert (row.source_reliability, row.information_accuracy) == ("B", "2")
    assert obj["id"] in visible(db, scene.au_officer, scene)
    sent, left_out = exported(db, scene.au_officer, scene, authority(scene.ma))
    assert obj["id"] not in sent
    assert obj["id"] in left_out
    sent, _ = exported(db, scene.analyst, scene, authority(scene.ma))
    assert obj["id"] in sent


def test_clear_goes_to_the_public_from_anyone(db: Session, shared: Scene) -> None:
    scene = shared
    clear = indicator("203.0.113.10", marked=[CLEAR])
    green = indicator("203.0.113.11", marked=[GREEN])
    service.add_objects(db, scene.analyst, scene.feed, [clear, green])
    sent, left_out = exported(db, scene.au_officer, scene, PUBLIC)
    assert clear["id"] in sent
    assert green["id"] in left_out  # the community, not the public
    sent, _ = exported(db, scene.au_officer, scene, authority(scene.ma))
    assert {clear["id"], green["id"]} <= sent


def test_markings_defined_earlier_in_the_collection_still_apply(db: Session, shared: Scene) -> None:
    scene = shared
    red_to_ma = stix.handling_marking(recipients=(scene.ma.id,))
    service.add_objects(db, scene.analyst, scene.feed, [red_to_ma])
    later = indicator("203.0.113.12", marked=[RED, red_to_ma["id"]])
    service.add_objects(db, scene.analyst, scene.feed, [later])
    assert later["id"] in visible(db, scene.ma_officer, scene)
    assert later["id"] not in visible(db, scene.au_officer, scene)


def test_strictest_tlp_wins_granular_markings_included(db: Session, shared: Scene) -> None:
    scene = shared
    mixed = indicator("203.0.113.13", marked=[CLEAR])
    mixed["granular_markings"] = [{"marking_ref": RED, "selectors": ["description"]}]
    mixed["description"] = "from a source"
    custom_strict = {
        **stix.TLP_MARKINGS[AMBER_STRICT],
        "id": "marking-definition--939a9414-1955-4a77-93a3-5a4ec65c9b6e",
    }
    other = indicator("203.0.113.14", marked=[custom_strict["id"]])
    service.add_objects(db, scene.analyst, scene.feed, [mixed, custom_strict, other])
    tlps = dict(db.execute(select(IntelObject.stix_id, IntelObject.tlp)).all())
    assert (tlps[mixed["id"]], tlps[other["id"]]) == ("red", "amber+strict")


def test_export_is_a_valid_bundle_with_what_it_needs(db: Session, scene: Scene) -> None:
    handling = stix.handling_marking(
        codes=("H2",), source_reliability="A", information_accuracy="1"
    )
    objects: list[dict[str, Any]] = [
        handling,
        indicator("198.51.100.20", marked=[GREEN, handling["id"]]),
        sco("ipv4-addr", "198.51.100.20", marked=[GREEN]),
        stix.custom_sco("phone-number", value="+84912345678"),
        stix.custom_sco(
            "crypto-wallet", chain="tron", address="TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
        ),
        sdo("threat-actor", name="Scam call centre", marked=[GREEN]),
        sdo("malware", name="LockBit", is_family=True, marked=[CLEAR]),
    ]
    actor_id = objects[5]["id"]
    objects.append(
        sdo(
            "relationship",
            relationship_type="uses",
            source_ref=actor_id,
            target_ref=objects[6]["id"],
            marked=[GREEN],
        )
    )
    service.add_objects(db, scene.analyst, scene.feed, objects)
    bundle, left_out = service.export_bundle(
        db, scene.analyst, scene.feed, audience=authority(scene.au)
    )
    assert left_out == []
    ids = [o["id"] for o in bundle["objects"]]
    assert len(ids) == len(set(ids))
    assert {o["id"] for o in objects} <= set(ids)
    assert {GREEN, CLEAR, stix.PHONE_NUMBER_EXTENSION, stix.CRYPTO_WALLET_EXTENSION} <= set(ids)
    assert {stix.LE_HANDLING_EXTENSION, stix.NODE_IDENTITY_ID} <= set(ids)
    result = validate_string(orjson.dumps(bundle).decode(), ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for r in result.object_results for e in r.errors]
    only, _ = service.export_bundle(
        db, scene.analyst, scene.feed, types=["malware"], audience=PUBLIC
    )
    assert [o["type"] for o in only["objects"]] == ["malware", "marking-definition"]


def test_identifiers_join_the_index_under_the_markings(db: Session, shared: Scene) -> None:
    scene = shared
    config = selectors.Config(warninglists=())
    ind = indicator("103.27.40.7", marked=[GREEN])
    red = stix.custom_sco("phone-number", value="+84912345678")
    red["object_marking_refs"] = [RED]
    service.add_objects(
        db, scene.analyst, scene.feed, [ind, red, sco("domain-name", "evil.example")]
    )

    def lookup(actor: Principal, kind: str, value: str) -> selectors.Correlation:
        [found] = selectors.lookup(db, actor, kind=kind, value=value, config=config).correlations
        return found

    own = lookup(scene.officer, "ip", "103.27.40.7")
    assert [(h.scope_type, h.scope_id) for h in own.hits] == [
        ("intel", service.scope_id_of(scene.feed, ind["id"]))
    ]
    assert own.hits[0].label == "indicator ipv4-addr 103.27.40.7"
    assert [h.scope_type for h in lookup(scene.au_officer, "ip", "103.27.40.7").hits] == ["intel"]
    assert [h.scope_type for h in lookup(scene.officer, "domain", "evil.example").hits] == ["intel"]
    assert len(lookup(scene.officer, "phone", "+84 91 234 5678").hits) == 1
    # TLP:RED: not shown to AFP, and not even named as "held by VN — contact them".
    hidden = lookup(scene.au_officer, "phone", "+84912345678")
    assert hidden.hits == []
    assert hidden.withheld == []
    # An AMBER+STRICT object is not named either; a GREEN one is a plain hit for a grantee.
    strict = stix.custom_sco("phone-number", value="+84987654321")
    strict["object_marking_refs"] = [markings.TLP2_IDS[markings.Tlp.AMBER_STRICT]]
    green = stix.custom_sco("phone-number", value="+84911111111")
    green["object_marking_refs"] = [GREEN]
    service.add_objects(db, scene.analyst, scene.feed, [strict, green])
    held = lookup(scene.ma_officer, "phone", "+84987654321")
    assert (held.hits, held.withheld) == ([], [])
    assert len(lookup(scene.ma_officer, "phone", "+84911111111").hits) == 1
    # A new version replaces the old one's identifiers.
    service.add_objects(
        db,
        scene.analyst,
        scene.feed,
        [{**ind, "modified": T1, "pattern": "[ipv4-addr:value = '103.27.40.8']"}],
    )
    assert lookup(scene.officer, "ip", "103.27.40.7").hits == []
    assert len(lookup(scene.officer, "ip", "103.27.40.8").hits) == 1
    service.delete_object(db, scene.analyst, scene.feed, ind["id"])
    assert lookup(scene.officer, "ip", "103.27.40.8").hits == []


def test_a_partner_reads_only_its_grants_under_the_markings(
    db: Session, scene: Scene, partner: Partner
) -> None:
    principal, token, _raw = partner
    inbox = service.create_collection(db, scene.admin, title="Acme inbox", alias="acme-inbox")
    service.grant(db, scene.admin, inbox, token_id=token.id, can_read=True, can_write=True)
    # Its own collection: it writes there.
    status = service.add_objects(db, principal, inbox, [indicator("192.0.2.1", marked=[GREEN])])
    assert status.success_count == 1
    assert service.audience_of(db, principal) == markings.Audience(
        markings.AudienceKind.PARTNER, partner=service.partner_name(token.id)
    )
    # The feed of the authority its account belongs to is not its to read...
    assert service.access(db, principal, scene.feed) == (False, False)
    with pytest.raises(NotFound):
        service.get_collection(db, principal, "vn-feed")
    assert [c.collection.alias for c in service.list_collections(db, principal)] == ["acme-inbox"]
    # ...until it is granted, to read only, and then under the markings.
    for_partner = stix.handling_marking(partner_recipients=(service.partner_name(token.id),))
    clear, amber = indicator("192.0.2.2", marked=[CLEAR]), indicator("192.0.2.3", marked=[AMBER])
    strict = indicator("192.0.2.4", marked=[AMBER_STRICT])
    red = indicator("192.0.2.5", marked=[RED])
    red_named = indicator("192.0.2.6", marked=[RED, for_partner["id"]])
    service.add_objects(
        db, scene.analyst, scene.feed, [for_partner, clear, amber, strict, red, red_named]
    )
    service.grant(db, scene.admin, scene.feed, token_id=token.id, can_read=True, can_write=False)
    assert service.access(db, principal, scene.feed) == (True, False)
    seen = visible(db, principal, scene)
    assert {clear["id"], amber["id"], red_named["id"]} <= seen
    assert not {strict["id"], red["id"]} & seen
    with pytest.raises(PermissionDenied):
        service.add_objects(db, principal, scene.feed, [indicator()])
    # It passes on nothing but CLEAR: it is nobody's originator.
    sent, left_out = exported(db, principal, scene, PUBLIC)
    assert clear["id"] in sent
    assert {amber["id"], red_named["id"]} <= set(left_out)
    # The same account without the token works for its authority as usual.
    session_principal = Principal(
        user_id=principal.user_id,
        username=principal.username,
        authority_id=principal.authority_id,
        roles=principal.roles,
    )
    assert service.access(db, session_principal, scene.feed) == (True, True)
    assert service.access(db, session_principal, inbox) == (True, True)


def test_scope_resolver_answers_for_intel_scopes(
    db: Session, shared: Scene, make_principal: Callable[..., Principal]
) -> None:
    scene = shared
    green, strict = (
        indicator("192.0.2.7", marked=[GREEN]),
        indicator("192.0.2.8", marked=[AMBER_STRICT]),
    )
    service.add_objects(db, scene.analyst, scene.feed, [green, strict])
    scopes = [service.scope_id_of(scene.feed, o["id"]) for o in (green, strict)]
    resolver = service.IntelScopes()
    assert resolver.visible(db, scene.officer, [*scopes, "junk", "9999/indicator--x"]) == set(
        scopes
    )
    assert resolver.visible(db, scene.au_officer, scopes) == {scopes[0]}
    auditor = make_principal("auditor", authority_id=scene.vn.id)
    assert resolver.visible(db, auditor, scopes) == set()
    labels = resolver.describe(db, scopes)
    assert labels[scopes[0]].label == "indicator ipv4-addr 192.0.2.7"
    assert labels[scopes[0]].url is None

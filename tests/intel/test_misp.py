"""MISP events and feeds through misp-stix into the store, and back out as a MISP event."""

from __future__ import annotations

import copy
import functools
import json
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.auth.permissions import Principal, Role
from crossborder.core.errors import InvalidInput, NotFound
from crossborder.directory.models import Authority
from crossborder.intel import markings, misp, service, stix
from crossborder.intel.markings import TLP2_IDS, Audience, AudienceKind, Tlp
from crossborder.intel.models import IntelCollection, IntelObject

DATA = Path(__file__).parent / "data"
TLP1_RED = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"


@functools.cache
def _pymisp() -> Any:
    with misp._quiet_warnings():
        import pymisp
    return pymisp


def build_event(*tags: str, info: str = "Phishing wave: lures and infrastructure") -> Any:
    """A MISP event as a MISP user builds it with pymisp: attributes, a file object, tags."""
    lib = _pymisp()
    event = lib.MISPEvent()
    event.info = info
    event.distribution = 3  # all communities: the TLP tags alone say how far it may go
    event.threat_level_id = 2
    event.analysis = 1
    for tag in tags:
        event.add_tag(tag)
    event.add_attribute("ip-dst", "203.0.113.7", comment="C2 server")
    event.add_attribute("domain", "login-bank.example")
    event.add_attribute("url", "https://login-bank.example/verify")
    event.add_attribute("md5", "5d41402abc4b2a76b9719d911017c592")
    event.add_attribute(
        "sha256", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    )
    event.add_attribute("email-src", "alerts@login-bank.example")
    event.add_attribute("phone-number", "+84912345678", to_ids=False)
    sample = lib.MISPObject("file")
    sample.add_attribute("filename", value="invoice_0312.pdf.exe")
    sample.add_attribute("md5", value="098f6bcd4621d373cade4e832627b4f6")
    sample.add_attribute("size-in-bytes", value=48213)
    event.add_object(sample)
    return event


def attribute_set(event: dict[str, Any]) -> set[tuple[str, str]]:
    return {(a["type"], str(a["value"])) for a in event.get("Attribute", [])}


def object_set(event: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    return {
        o["uuid"]: {(a["object_relation"], str(a["value"])) for a in o.get("Attribute", [])}
        for o in event.get("Object", [])
    }


def tag_names(item: dict[str, Any]) -> set[str]:
    return {t["name"] for t in item.get("Tag", [])}


@pytest.fixture
def analyst(make_principal: Callable[..., Principal]) -> Principal:
    return make_principal(Role.ANALYST)


@pytest.fixture
def collection(
    db: Session, make_principal: Callable[..., Principal], analyst: Principal
) -> IntelCollection:
    admin = make_principal(Role.ADMINISTRATOR, authority_id=analyst.authority_id)
    return service.create_collection(db, admin, title="MISP intake", alias="misp-intake")


@pytest.fixture
def other_authority(make_authority: Callable[..., Authority]) -> int:
    """A partner authority in the directory (committed: it outlives a refused call's rollback)."""
    return make_authority(None, name="Partner Cyber Police", short_name="PCP").id


def stored_rows(db: Session, collection: IntelCollection) -> list[IntelObject]:
    return list(db.scalars(select(IntelObject).where(IntelObject.collection_id == collection.id)))


# --- MISP -> STIX (pure) ---------------------------------------------------------------------


def test_event_tlp_reaches_every_object_as_tlp2() -> None:
    event = build_event("tlp:amber")
    objects = misp.misp_event_to_stix(misp.load_misp_event(event.to_json()))
    assert objects
    for obj in objects:
        assert stix.validate(obj) == [], obj
        assert obj["id"] not in markings.TLP1_IDS  # TLP definitions are the store's business
        assert obj.get("object_marking_refs") == [TLP2_IDS[Tlp.AMBER]], obj["type"]


@pytest.mark.parametrize(
    ("tag", "level"),
    [
        ("tlp:clear", Tlp.CLEAR),
        ("tlp:white", Tlp.CLEAR),
        ("TLP:GREEN", Tlp.GREEN),
        ("tlp:amber", Tlp.AMBER),
        ("tlp:amber+strict", Tlp.AMBER_STRICT),
        ("tlp:red", Tlp.RED),
    ],
)
def test_every_tlp_tag_maps_to_its_tlp2_marking(tag: str, level: Tlp) -> None:
    event = build_event(tag)
    objects = misp.misp_event_to_stix(misp.load_misp_event(event.to_json()))
    levels = {markings.tlp_of(o.get("object_marking_refs", [])) for o in objects}
    assert levels == {level}


def test_an_event_without_tlp_is_marked_amber_explicitly() -> None:
    objects = misp.misp_event_to_stix(misp.load_misp_event(build_event().to_json()))
    assert {tuple(o.get("object_marking_refs", [])) for o in objects} == {(TLP2_IDS[Tlp.AMBER],)}


@pytest.mark.parametrize(
    ("tags", "distribution", "level"),
    [
        (("tlp:clear",), 0, Tlp.AMBER_STRICT),  # your organisation only
        (("tlp:clear",), 1, Tlp.GREEN),  # this community only
        (("tlp:clear",), 2, Tlp.GREEN),  # connected communities
        (("tlp:clear",), 3, Tlp.CLEAR),  # all communities: the tag says it
        (("tlp:red",), 3, Tlp.RED),  # a distribution never widens the tag
        ((), 4, Tlp.AMBER),  # a sharing group
        ((), 1, Tlp.AMBER),  # no tag: AMBER, which a community does not widen
    ],
)
def test_the_event_distribution_is_honoured(
    tags: tuple[str, ...], distribution: int, level: Tlp
) -> None:
    event = build_event(*tags)
    event.distribution = distribution
    objects = misp.misp_event_to_stix(misp.load_misp_event(event.to_json()))
    assert {markings.tlp_of(o.get("object_marking_refs", [])) for o in objects} == {level}


def test_a_red_attribute_in_a_clear_event_keeps_its_observables_red() -> None:
    lib = _pymisp()
    event = lib.MISPEvent()
    event.info = "mixed"
    event.add_tag("tlp:clear")
    secret = event.add_attribute("domain", "informant-contact.example")
    secret.add_tag("tlp:red")
    event.add_attribute("ip-dst", "198.51.100.1", to_ids=False)
    objects = misp.misp_event_to_stix(misp.load_misp_event(event.to_json()))
    level = {o["id"]: markings.tlp_of(o["object_marking_refs"]) for o in objects}
    domain = next(o for o in objects if o["type"] == "domain-name")
    assert level[domain["id"]] is Tlp.RED  # misp-stix leaves the SCO unmarked: it must not be CLEAR
    ip = next(o for o in objects if o["type"] == "ipv4-addr")
    assert level[ip["id"]] is Tlp.CLEAR
    for rel in (o for o in objects if o["type"] == "relationship"):
        ends = {level[rel["source_ref"]], level[rel["target_ref"]]}
        assert level[rel["id"]] is misp.strictest(*ends)
    grouping = next(o for o in objects if o["type"] in ("grouping", "report"))
    assert level[grouping["id"]] is Tlp.CLEAR


def test_misp_types_stix_lacks_are_declared_by_extension() -> None:
    objects = misp.misp_event_to_stix(misp.load_misp_event(build_event().to_json()))
    custom = [o for o in objects if o["type"].startswith("x-misp-")]
    assert custom  # the phone number
    for obj in custom:
        assert obj["extensions"][misp.MISP_EXTENSION] == {"extension_type": "new-sdo"}
        assert stix.validate(obj) == []


def test_a_real_misp_export_file_converts() -> None:
    body = misp.load_misp_event((DATA / "misp_event.json").read_bytes())
    objects = misp.misp_event_to_stix(body)
    assert all(stix.validate(o) == [] for o in objects)
    report = next(o for o in objects if o["type"] == "report")  # a published event
    assert report["id"] == f"report--{body['uuid']}"
    assert 'crossborder:operation="bank-lure"' in report["labels"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a MISP event"),
        (b"{}", "not a valid MISP event"),
        (b'{"Event": {}}', "info field"),
        (b'{"Event": {"info": "x", "Attribute": [{"type": "bogus", "value": "1"}]}}', "bogus"),
        (b'{"type": "bundle", "id": "bundle--1", "objects": []}', "not a valid MISP event"),
    ],
)
def test_what_is_not_a_misp_event_is_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        misp.load_misp_event(data)
    assert message in caught.value.detail


# --- import / export through the store -------------------------------------------------------


def test_round_trip_keeps_attributes_object_and_tags(
    db: Session, analyst: Principal, collection: IntelCollection
) -> None:
    original = build_event("tlp:amber", 'crossborder:case="op-lure"')
    original_dict = json.loads(original.to_json())
    result = misp.import_misp_event(db, analyst, collection, original.to_json().encode())
    assert result.failure_count == 0
    assert result.success_count == result.total_count > 10
    assert {r.tlp for r in stored_rows(db, collection)} == {"amber"}

    exported = misp.export_misp(db, analyst, collection)
    event = exported.event
    assert exported.left_out == []
    assert event["uuid"] == original_dict["uuid"]
    assert event["info"] == original.info
    assert attribute_set(event) == attribute_set(original_dict)
    assert {a["uuid"] for a in event["Attribute"]} == {
        a["uuid"] for a in original_dict["Attribute"]
    }
    assert object_set(event) == object_set(original_dict)
    assert {o["name"] for o in event["Object"]} == {"file"}
    assert tag_names(event) == {"tlp:amber", 'crossborder:case="op-lure"'}
    assert event["distribution"] == "0"  # AMBER: the partner's MISP keeps it in-house
    # and MISP can read what we wrote
    again = misp.load_misp_event(json.dumps({"Event": event}))
    assert attribute_set(again) == attribute_set(original_dict)


def test_importing_the_same_event_twice_stores_nothing_twice(
    db: Session, analyst: Principal, collection: IntelCollection
) -> None:
    data = (DATA / "misp_event.json").read_bytes()
    first = misp.import_misp_event(db, analyst, collection, data)
    second = misp.import_misp_event(db, analyst, collection, data)
    assert first.success_count == first.total_count
    assert second.success_count == 0
    assert second.already_present == second.total_count == first.total_count


def test_a_real_misp_export_round_trips_published(
    db: Session, analyst: Principal, collection: IntelCollection
) -> None:
    original = json.loads((DATA / "misp_event.json").read_text())["Event"]
    misp.import_misp_event(db, analyst, collection, json.dumps(original))
    event = misp.export_misp_event(db, analyst, collection, event_uuid=original["uuid"])
    assert event["uuid"] == original["uuid"]
    assert attribute_set(event) == attribute_set(original)
    assert object_set(event) == object_set(original)
    assert "tlp:amber" in tag_names(event)


def test_mixed_tlp_is_kept_per_attribute_on_export(
    db: Session, analyst: Principal, collection: IntelCollection
) -> None:
    lib = _pymisp()
    event = lib.MISPEvent()
    event.info = "mixed"
    event.add_tag("tlp:green")
    event.add_attribute("domain", "shared.example")
    kept = event.add_attribute("domain", "restricted.example")
    kept.add_tag("tlp:amber+strict")
    misp.import_misp_event(db, analyst, collection, event.to_json())
    # the originator's own export for an authority keeps both, each with its level
    audience = Audience(AudienceKind.AUTHORITY, authority_id=analyst.authority_id)
    back = misp.export_misp_event(db, analyst, collection, audience=audience)
    levels = {
        a["value"]: misp.strictest(*(misp.tlp_of_tag(t) for t in tag_names(a) | tag_names(back)))
        for a in back["Attribute"]
    }
    assert levels == {"shared.example": Tlp.GREEN, "restricted.example": Tlp.AMBER_STRICT}


def test_export_withholds_what_may_not_be_passed_on(
    db: Session,
    analyst: Principal,
    collection: IntelCollection,
    other_authority: int,
    make_principal: Callable[..., Principal],
) -> None:
    mine = build_event("tlp:amber", info="ours")
    theirs = build_event("tlp:amber", info="a partner's")  # pymisp gave it fresh uuids
    misp.import_misp_event(db, analyst, collection, mine.to_json())
    misp.import_misp_event(
        db, analyst, collection, theirs.to_json(), origin_authority_id=other_authority
    )
    exported = misp.export_misp(db, analyst, collection)
    assert exported.event["uuid"] == mine.uuid
    assert attribute_set(exported.event) == attribute_set(json.loads(mine.to_json()))
    theirs_ids = {o["id"] for o in misp.misp_event_to_stix(json.loads(theirs.to_json()))}
    assert set(exported.left_out) == theirs_ids

    # RED without named recipients never leaves, not even the originator's own
    admin = make_principal(Role.ADMINISTRATOR, authority_id=analyst.authority_id)
    red_only = service.create_collection(db, admin, title="red only")
    misp.import_misp_event(db, analyst, red_only, build_event("tlp:red").to_json())
    withheld = misp.export_misp(db, analyst, red_only)
    assert withheld.event.get("Attribute", []) == []
    assert withheld.event.get("Object", []) == []
    assert len(withheld.left_out) > 10


def test_external_stix_and_own_observables_export_to_misp(
    db: Session, analyst: Principal, collection: IntelCollection
) -> None:
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--a932fcc6-e032-476c-826f-cb970a5a1ade",
        "created": "2026-01-05T10:00:00.000Z",
        "modified": "2026-01-05T10:00:00.000Z",
        "name": "scam call centre",
        "pattern": "[ipv4-addr:value = '198.51.100.3']",
        "pattern_type": "stix",
        "valid_from": "2026-01-05T10:00:00Z",
        "object_marking_refs": [TLP2_IDS[Tlp.GREEN]],
    }
    phone = {**stix.custom_sco("phone-number", value="+84987654321")}
    phone["object_marking_refs"] = [TLP2_IDS[Tlp.CLEAR]]
    wallet = {**stix.custom_sco("crypto-wallet", chain="btc", address="bc1qexampleaddress0001")}
    wallet["object_marking_refs"] = [TLP2_IDS[Tlp.GREEN]]
    iban = stix.custom_sco("bank-account", iban="DE89370400440532013000")  # unmarked: AMBER
    result = service.add_objects(db, analyst, collection, [indicator, phone, wallet, iban])
    assert result.failure_count == 0, result.failures
    event = misp.export_misp_event(db, analyst, collection, info="partner hand-over")
    assert event["info"] == "partner hand-over"
    by_value = {a["value"]: a for a in event["Attribute"]}
    assert by_value["198.51.100.3"]["type"] == "ip-dst"
    assert "tlp:green" in tag_names(by_value["198.51.100.3"])
    assert by_value["+84987654321"]["type"] == "phone-number"
    assert "tlp:clear" in tag_names(by_value["+84987654321"])
    assert by_value["DE89370400440532013000"]["type"] == "iban"
    assert "tlp:amber" in tag_names(by_value["DE89370400440532013000"])
    (coin,) = event["Object"]
    assert coin["name"] == "coin-address"
    assert {(a["object_relation"], a["value"]) for a in coin["Attribute"]} == {
        ("address", "bc1qexampleaddress0001"),
        ("symbol", "BTC"),
    }
    assert all("tlp:green" in tag_names(a) for a in coin["Attribute"])


def test_export_of_an_unknown_event_is_not_found(
    db: Session, analyst: Principal, collection: IntelCollection
) -> None:
    with pytest.raises(NotFound):
        misp.export_misp(db, analyst, collection, event_uuid="0b6d3e1a-7c9f-4e2b-8a5d-1f3c2b4a6e70")


def test_import_needs_write_access(
    db: Session, make_principal: Callable[..., Principal], collection: IntelCollection
) -> None:
    from crossborder.core.errors import PermissionDenied

    auditor = make_principal(Role.AUDITOR)
    with pytest.raises(PermissionDenied):
        misp.import_misp_event(db, auditor, collection, build_event().to_json())
    officer = make_principal(Role.OFFICER)  # reads intelligence, does not import it
    with pytest.raises(PermissionDenied):
        misp.import_misp_event(db, officer, collection, build_event().to_json())


# --- MISP feeds --------------------------------------------------------------------------------


def write_feed(directory: Path, events: list[tuple[Any, int]]) -> None:
    """A MISP feed as MISP writes one: manifest.json and <uuid>.json per event."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for event, timestamp in events:
        body = json.loads(event.to_json())
        body["timestamp"] = str(timestamp)
        (directory / f"{body['uuid']}.json").write_text(json.dumps({"Event": body}))
        manifest[body["uuid"]] = {
            "info": body["info"],
            "Orgc": {"name": "CERT-Example", "uuid": "a1a0c2f4-5b8e-4f6d-9a3c-2e7b1d9c4f10"},
            "Tag": [{"name": t["name"], "colour": "#ffffff"} for t in body.get("Tag", [])],
            "date": "2026-03-01",
            "analysis": "2",
            "threat_level_id": "2",
            "timestamp": str(timestamp),
        }
    manifest_path.write_text(json.dumps(manifest))


def fresh_event(info: str, value: str, *tags: str) -> Any:
    event = _pymisp().MISPEvent()
    event.info = info
    for tag in tags:
        event.add_tag(tag)
    event.add_attribute("domain", value)
    return event


def test_feed_import_is_incremental(
    db: Session, analyst: Principal, collection: IntelCollection, tmp_path: Path
) -> None:
    feed = tmp_path / "feed"
    write_feed(
        feed,
        [
            (fresh_event("one", "one.example", "tlp:green"), 1_772_000_000),
            (fresh_event("two", "two.example", "tlp:clear"), 1_772_000_100),
        ],
    )
    first = misp.import_misp_feed(db, analyst, collection, feed)
    assert (first.imported, first.failed, first.skipped) == (2, 0, 0)
    assert first.next_since == 1_772_000_100
    assert first.stored > 0

    write_feed(feed, [(fresh_event("three", "three.example"), 1_772_000_200)])
    second = misp.import_misp_feed(db, analyst, collection, feed, since=first.next_since)
    assert (second.imported, second.skipped) == (1, 2)
    assert [e.timestamp for e in second.events] == [1_772_000_200]
    assert second.next_since == 1_772_000_200
    values = {
        json.loads(r.body).get("value")
        for r in stored_rows(db, collection)
        if r.type == "domain-name"
    }
    assert values == {"one.example", "two.example", "three.example"}


def test_a_broken_feed_event_is_reported_and_retried_later(
    db: Session, analyst: Principal, collection: IntelCollection, tmp_path: Path
) -> None:
    feed = tmp_path / "feed"
    good, bad, later = (
        fresh_event("good", "good.example"),
        fresh_event("bad", "bad.example"),
        fresh_event("later", "later.example"),
    )
    write_feed(feed, [(good, 100), (bad, 200), (later, 300)])
    (feed / f"{bad.uuid}.json").write_text("{ not json")
    result = misp.import_misp_feed(db, analyst, collection, feed)
    assert (result.imported, result.failed) == (2, 1)
    failed = next(e for e in result.events if e.error)
    assert failed.uuid == bad.uuid
    assert "not JSON" in (failed.error or "")
    assert result.next_since == 100  # the bad one is tried again next time


def test_feed_manifest_must_be_there(
    db: Session, analyst: Principal, collection: IntelCollection, tmp_path: Path
) -> None:
    with pytest.raises(NotFound):
        misp.import_misp_feed(db, analyst, collection, tmp_path)
    with pytest.raises(InvalidInput):
        misp.import_misp_feed(db, analyst, collection, tmp_path / "missing")
    with pytest.raises(InvalidInput):
        misp.import_misp_feed(db, analyst, collection, "ftp://feeds.example/misp/")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/feed"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_feed_import_over_http(
    db: Session,
    analyst: Principal,
    collection: IntelCollection,
    served: tuple[Path, str],
) -> None:
    root, url = served
    write_feed(root / "feed", [(build_event("tlp:green"), 1_772_000_000)])
    result = misp.import_misp_feed(db, analyst, collection, url)
    assert (result.imported, result.failed) == (1, 0)
    assert {r.tlp for r in stored_rows(db, collection)} == {"green"}
    again = misp.import_misp_feed(db, analyst, collection, url + "/")
    assert again.already_present == result.stored


def test_apply_tlp_never_widens_and_keeps_other_markings() -> None:
    statement = "marking-definition--3f6a5b8e-2c1d-4e0f-9a8b-7c6d5e4f3a21"
    objects: list[dict[str, Any]] = [
        {
            "type": "observed-data",
            "id": "observed-data--11111111-1111-4111-8111-111111111111",
            "object_refs": ["ipv4-addr--22222222-2222-4222-8222-222222222222"],
            "object_marking_refs": [statement, TLP1_RED],
        },
        {
            "type": "ipv4-addr",
            "id": "ipv4-addr--22222222-2222-4222-8222-222222222222",
            "value": "192.0.2.1",
            "object_marking_refs": [TLP2_IDS[Tlp.CLEAR]],
        },
        copy.deepcopy(stix.TLP_MARKINGS[TLP1_RED]),
    ]
    out = misp.apply_tlp(objects, Tlp.GREEN)
    assert [o["type"] for o in out] == ["observed-data", "ipv4-addr"]
    assert out[0]["object_marking_refs"] == [statement, TLP2_IDS[Tlp.RED]]
    assert out[1]["object_marking_refs"] == [TLP2_IDS[Tlp.RED]]
    assert objects[1]["object_marking_refs"] == [TLP2_IDS[Tlp.CLEAR]]  # input untouched

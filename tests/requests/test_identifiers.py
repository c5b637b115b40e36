"""Requests in the identifier index: indexing, correlation and need-to-know between authorities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.audit.models import AuditEvent
from crossborder.core.errors import InvalidInput, NotFound, PermissionDenied
from crossborder.requests import identifiers, schemas, service
from crossborder.selectors import service as selectors
from crossborder.selectors import sets
from crossborder.selectors.correlate import Strength
from crossborder.selectors.models import IdentOccurrence, IdentScan, IdentValue
from crossborder.settings import Settings
from tests.requests.conftest import World, preservation_draft

CONFIG = selectors.Config()
T0 = datetime(2026, 10, 14, tzinfo=UTC)


def ip_entry(value: str, start: datetime = T0, hours: int = 48) -> dict[str, Any]:
    return {
        "kind": "ip",
        "value": value,
        "window_start": start,
        "window_end": start + timedelta(hours=hours),
        "time_zone": "Asia/Ho_Chi_Minh",
    }


def draft(db: Session, world: World, *entries: dict[str, Any], **overrides: Any) -> Any:
    data = preservation_draft(world.au, identifiers=list(entries), **overrides)
    return service.create_draft(db, data, actor=world.linh)


def mine(
    db: Session, world: World, req: Any, actor: Any = None
) -> list[selectors.RecordIdentifier]:
    return selectors.record_identifiers(
        db, actor or world.linh, "request", req.public_id, config=CONFIG
    )


def by_value(items: list[selectors.RecordIdentifier]) -> dict[str, selectors.RecordIdentifier]:
    return {i.canonical: i for i in items}


def test_a_draft_indexes_its_identifiers_and_what_its_summary_names(
    db: Session, world: World
) -> None:
    req = draft(
        db,
        world,
        ip_entry("203.0.113.45:51234"),
        {"kind": "phone", "value": "0912 345 678"},
        summary_of_facts="Victims paid to wallet TQrY8tryqsYVCYS3MFbtffiPp2ccyn4STm via Zalo.",
    )
    items = by_value(mine(db, world, req))
    assert set(items) == {"203.0.113.45", "+84912345678", "tron:TQrY8tryqsYVCYS3MFbtffiPp2ccyn4STm"}
    ip = items["203.0.113.45"]
    assert ip.port == 51234
    assert ip.seen_from == T0
    assert ip.sources == ["entered"]
    assert "documentation" in ip.flags
    assert items["tron:TQrY8tryqsYVCYS3MFbtffiPp2ccyn4STm"].sources == ["extracted"]
    assert items["tron:TQrY8tryqsYVCYS3MFbtffiPp2ccyn4STm"].locations == ["summary of facts"]
    # The phone number took the sender's region (Viet Nam) for its missing country code.
    assert items["+84912345678"].raws == ["0912 345 678"]


def test_an_invalid_identifier_refuses_the_draft_and_stores_nothing(
    db: Session, world: World
) -> None:
    before = db.scalar(select(IdentOccurrence.id).limit(1))
    with pytest.raises(InvalidInput) as caught:
        draft(db, world, ip_entry("203.0.113.45"), {"kind": "imei", "value": "490154203237519"})
    assert caught.value.field == "identifiers.1.value"
    assert "Luhn" in caught.value.detail or "check digit" in caught.value.detail.lower()
    assert db.scalar(select(IdentOccurrence.id).limit(1)) == before


def test_editing_a_draft_reindexes_it(db: Session, world: World) -> None:
    req = draft(db, world, ip_entry("203.0.113.45"))
    update = schemas.DraftUpdate.model_validate(
        {"version": req.version, "identifiers": [{"kind": "domain", "value": "evil-shop[.]vn"}]}
    )
    service.update_draft(db, req.public_id, update, actor=world.linh)
    assert set(by_value(mine(db, world, req))) == {"evil-shop.vn"}


def test_the_same_ip_in_two_requests_correlates_with_port_and_time(
    db: Session, world: World
) -> None:
    first = draft(db, world, ip_entry("103.27.12.7:40000"))
    second = draft(db, world, ip_entry("103.27.12.7:40000", T0 + timedelta(hours=1)))
    third = draft(db, world, ip_entry("103.27.12.7:40001"))  # another subscriber's port
    [found] = mine(db, world, second)
    assert found.correlation is not None
    matches = {h.scope_id: h for h in found.correlation.matches}
    assert set(matches) == {first.public_id}
    assert matches[first.public_id].strength is Strength.MATCH
    assert matches[first.public_id].url == f"/requests/{first.public_id}"
    assert [h.scope_id for h in found.correlation.mismatches] == [third.public_id]


def test_a_hit_the_user_may_not_see_names_only_the_authority_and_is_audited(
    db: Session, world: World
) -> None:
    req = draft(db, world, ip_entry("103.27.12.23"))
    kept = sets.create_set(db, world.yasmine, name="Seized laptop, Casablanca")
    selectors.index_record(
        db,
        sets.where_of(kept),
        [selectors.Entry("ip", "103.27.12.23")],
        source="imported",
    )
    # Yasmine (Morocco) may not see the Vietnamese draft: she learns who to contact, no more.
    [found] = selectors.record_identifiers(db, world.yasmine, "set", kept.public_id, config=CONFIG)
    assert found.correlation is not None
    assert found.correlation.hits == []
    assert [(w.authority_id, w.authority_name, w.scopes) for w in found.correlation.withheld] == [
        (world.vn.id, world.vn.name, 1)
    ]
    selectors.audit_disclosure(
        db,
        world.yasmine,
        [found.correlation],
        action="identifiers.viewed",
        object_type="identifier_set",
        object_id=kept.public_id,
    )
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "identifiers.viewed")).one()
    assert event.actor_user_id == world.yasmine.user_id
    assert event.details["withheld"][0]["authorities"] == [world.vn.id]
    assert "103.27.12.23" not in str(event.details)
    # Linh sees the set? No: sets are for their own authority only — a withheld hit again.
    [own] = mine(db, world, req)
    assert own.correlation is not None
    assert own.correlation.hits == []
    assert [w.authority_id for w in own.correlation.withheld] == [world.ma.id]


def test_nobody_else_may_list_a_records_identifiers(db: Session, world: World) -> None:
    req = draft(db, world, ip_entry("103.27.12.23"))
    with pytest.raises(NotFound):
        mine(db, world, req, actor=world.yasmine)
    with pytest.raises(NotFound):
        mine(db, world, req, actor=world.jack)  # a draft is not yet the receiver's
    with pytest.raises(PermissionDenied):
        mine(db, world, req, actor=world.an)  # auditors audit; they do not correlate


def test_warning_listed_values_are_not_correlated(db: Session, world: World) -> None:
    draft(db, world, ip_entry("8.8.8.8"))
    req = draft(db, world, ip_entry("8.8.8.8"))
    [found] = mine(db, world, req)
    assert found.correlation is not None
    assert found.correlation.suppressed
    assert found.correlation.warnings  # the public-resolver list names it
    assert found.correlation.hits == []
    assert found.correlation.withheld == []


def test_the_node_s_own_warning_list_applies_to_networks(db: Session, world: World) -> None:
    from crossborder.selectors.models import IdentLocalWarning

    db.add(
        IdentLocalWarning(
            kind="ip", value="103.27.12.0/24", reason="our office", added_by_label="t"
        )
    )
    db.flush()
    draft(db, world, ip_entry("103.27.12.99"))
    req = draft(db, world, ip_entry("103.27.12.99"))
    [found] = mine(db, world, req)
    assert found.correlation is not None
    assert found.correlation.warnings == ("local",)


def test_a_value_held_too_often_is_over_the_correlation_limit(db: Session, world: World) -> None:
    for _ in range(3):
        draft(db, world, ip_entry("103.27.12.50"))
    req = draft(db, world, ip_entry("103.27.12.50"))
    tight = selectors.Config(correlation_limit=2)
    [found] = selectors.record_identifiers(db, world.linh, "request", req.public_id, config=tight)
    assert found.correlation is not None
    assert found.correlation.over_limit
    assert found.correlation.scopes_total == 3
    assert found.correlation.hits == []
    [loose] = mine(db, world, req)
    assert loose.correlation is not None
    assert len(loose.correlation.hits) == 3


def test_the_same_evm_address_on_another_chain_is_flagged(db: Session, world: World) -> None:
    address = "0x52908400098527886E0F7030069857D2E4169EE7"
    first = draft(db, world, {"kind": "crypto", "value": f"bsc:{address.lower()}"})
    result = selectors.lookup(db, world.linh, kind="crypto", value=f"eth:{address}", config=CONFIG)
    [corr] = result.correlations
    [hit] = corr.hits
    assert hit.scope_id == first.public_id
    assert hit.relation == "related"
    assert hit.canonical == f"bsc:{address}"


def test_lookup_by_cidr_finds_every_address_inside(db: Session, world: World) -> None:
    draft(db, world, ip_entry("103.27.12.7"))
    draft(db, world, ip_entry("103.27.12.200"))
    draft(db, world, ip_entry("103.27.13.1"))
    result = selectors.lookup(db, world.linh, kind="ip", value="103.27.12.0/24", config=CONFIG)
    assert result.network == "103.27.12.0/24"
    assert sorted(c.canonical for c in result.correlations) == ["103.27.12.200", "103.27.12.7"]
    assert all(c.hits[0].relation == "network" for c in result.correlations)
    with pytest.raises(InvalidInput):
        selectors.lookup(db, world.linh, kind="ip", value="0.0.0.0/0", config=CONFIG)


def test_every_lookup_is_audited_without_the_value(db: Session, world: World) -> None:
    selectors.lookup(db, world.hoa, kind="phone", value="+84 912 345 678", config=CONFIG)
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "identifiers.lookup")).one()
    assert event.actor_user_id == world.hoa.user_id
    assert "912" not in str(event.details)
    assert "912" not in str(event.object_id)


def test_lookup_of_garbage_is_a_clear_error(db: Session, world: World) -> None:
    with pytest.raises(InvalidInput):
        selectors.lookup(db, world.linh, kind="phone", value="call me maybe", config=CONFIG)
    with pytest.raises(InvalidInput):
        selectors.lookup(db, world.linh, kind="warp-drive", value="x", config=CONFIG)


def test_messages_are_indexed_with_their_author_as_the_contact(db: Session, world: World) -> None:
    req = draft(db, world, ip_entry("103.27.12.7"))
    service.add_message(
        db,
        req.public_id,
        schemas.MessageIn(body="Payments also went to IBAN GB82 WEST 1234 5698 7654 32."),
        actor=world.linh,
    )
    items = by_value(mine(db, world, req))
    assert items["GB82WEST12345698765432"].locations == ["message"]


def test_attachments_are_scanned_once_by_the_worker(
    db: Session, world: World, settings: Settings
) -> None:
    import asyncio

    req = draft(db, world, ip_entry("103.27.12.7"))
    text = b"Subscriber list\nphone,+61 412 345 678\nmail,scam@example.com\n"

    async def chunks() -> Any:
        yield text

    asyncio.run(
        service.add_attachment(
            db,
            req.public_id,
            actor=world.linh,
            settings=settings,
            filename="subscribers.csv",
            media_type="text/csv",
            chunks=chunks(),
        )
    )
    assert identifiers.scan_attachments(db, settings.data_dir) == 1
    assert identifiers.scan_attachments(db, settings.data_dir) == 0
    scan = db.scalars(select(IdentScan)).one()
    assert scan.found == 2
    assert scan.error is None
    items = by_value(mine(db, world, req))
    assert items["+61412345678"].locations == ["subscribers.csv"]
    assert "scam@example.com" in items


def test_values_are_stored_once_whatever_their_spelling(db: Session, world: World) -> None:
    draft(db, world, {"kind": "domain", "value": "Evil-Shop.VN."})
    draft(db, world, {"kind": "url", "value": "hxxps://evil-shop[.]vn/pay"})
    draft(db, world, {"kind": "domain", "value": "evil-shop[.]vn"})
    rows = db.scalars(select(IdentValue).where(IdentValue.canonical == "evil-shop.vn")).all()
    assert len(rows) == 1


def test_csv_import_reaches_correlation(db: Session, world: World) -> None:
    req = draft(db, world, {"kind": "phone", "value": "+84 912 345 678"})
    kept = sets.create_set(db, world.minh, name="Call records")
    data = b"type,value\nphone,+84912345678\nphone,+84 987 654 321\n"
    report = sets.import_csv(db, world.minh, kept, sets.read_text(data))
    assert (report.rows, report.stored, report.invalid) == (2, 2, 0)
    [found] = mine(db, world, req)
    assert found.correlation is not None
    assert [h.scope_id for h in found.correlation.hits] == [kept.public_id]


def test_a_homoglyph_domain_is_refused_not_matched_to_the_latin_one(
    db: Session, world: World
) -> None:
    draft(db, world, {"kind": "domain", "value": "paypal-verify.com"})
    with pytest.raises(InvalidInput) as caught:
        draft(db, world, {"kind": "domain", "value": "p\u0430ypal-verify.com"})  # U+0430
    assert caught.value.field == "identifiers.0.value"
    stored = db.scalars(select(IdentValue.canonical).where(IdentValue.kind == "domain")).all()
    assert stored == ["paypal-verify.com"]


def test_zero_width_characters_are_removed_and_flagged(db: Session, world: World) -> None:
    req = draft(db, world, {"kind": "phone", "value": "+84\u200b912\u200d345678"})
    [item] = mine(db, world, req)
    assert item.canonical == "+84912345678"
    assert "zero_width_removed" in item.flags


def test_garbage_in_free_text_never_breaks_indexing(db: Session, world: World) -> None:
    import random

    rng = random.Random(20261129)
    alphabet = "0123456789abcdef.:@/[]-_+ xyz\u03b1\u03b2\u03b3中文বাংলাعربي\u200b\u202e\u0000\ufeff"
    for _ in range(20):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3000)))
        req = draft(db, world, summary_of_facts=text.replace("\u0000", "") or "x")
        for item in mine(db, world, req):
            assert item.sources == ["extracted"]
            assert "\u202e" not in item.canonical

"""Cooperation requests in a real database: need-to-know, policy on submit, lifecycle, clocks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crossborder.audit.models import AuditEvent
from crossborder.core.clock import utc_now
from crossborder.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from crossborder.requests import schemas, service
from crossborder.requests.catalogue import FieldErrors
from crossborder.requests.lifecycle import IllegalTransition
from crossborder.requests.models import CooperationRequest, RequestEvent
from tests.requests.conftest import World, preservation_draft


def act(db: Session, ref: str, actor: object, action: str, **kw: object) -> CooperationRequest:
    from crossborder.auth.permissions import Principal

    assert isinstance(actor, Principal)
    return service.transition(
        db, ref, schemas.TransitionIn.model_validate({"action": action, **kw}), actor=actor
    )


def last_audit(db: Session) -> AuditEvent:
    return db.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()


def submitted(db: Session, w: World) -> CooperationRequest:
    req = service.create_draft(db, preservation_draft(w.au), actor=w.linh)
    return act(db, req.public_id, w.linh, "submit")


# --------------------------------------------------------------------------- drafting


def test_draft_gets_a_numbered_reference_and_a_timeline(db: Session, world: World) -> None:
    req = service.create_draft(db, preservation_draft(world.au), actor=world.linh)
    assert req.status == "draft"
    assert req.reference.startswith("VN-A05-")
    assert req.details["custodian"] == "Example Hosting JSC"
    events = service.timeline(db, req)
    assert [e.action for e in events] == ["created"]
    assert last_audit(db).action == "request.created"


def test_missing_type_fields_are_named_and_nothing_is_stored(db: Session, world: World) -> None:
    before = db.scalars(select(CooperationRequest)).all()
    bad = preservation_draft(world.au, details={"custodian": "X", "mla_will_follow": False})
    with pytest.raises(FieldErrors) as info:
        service.create_draft(db, bad, actor=world.linh)
    fields = {e["field"] for e in info.value.extra["errors"]}
    assert {"details.data_to_preserve", "details.why_needed", "details.mla_will_follow"} <= fields
    assert db.scalars(select(CooperationRequest)).all() == before


def test_channel_not_allowed_for_the_type(db: Session, world: World) -> None:
    with pytest.raises(InvalidInput) as info:
        service.create_draft(db, preservation_draft(world.au, channel="interpol"), actor=world.linh)
    assert info.value.field == "channel"


def test_emergency_needs_a_justification(db: Session, world: World) -> None:
    with pytest.raises(InvalidInput) as info:
        service.create_draft(
            db, preservation_draft(world.au, urgency="emergency"), actor=world.linh
        )
    assert info.value.field == "urgency_justification"


def test_analysts_and_auditors_cannot_draft(db: Session, world: World) -> None:
    for reader in (world.hoa, world.an):
        with pytest.raises(PermissionDenied):
            service.create_draft(db, preservation_draft(world.au), actor=reader)


def test_second_editor_gets_a_conflict_not_a_silent_overwrite(db: Session, world: World) -> None:
    req = service.create_draft(db, preservation_draft(world.au), actor=world.linh)
    first = schemas.DraftUpdate(version=req.version, title="Edited by Linh")
    second = schemas.DraftUpdate(version=req.version, title="Edited by Minh")
    service.update_draft(db, req.public_id, first, actor=world.linh)
    with pytest.raises(Conflict):
        service.update_draft(db, req.public_id, second, actor=world.minh)
    db.expire_all()
    assert service.get_request(db, req.public_id, actor=world.linh).title == "Edited by Linh"


def test_only_drafts_are_edited(db: Session, world: World) -> None:
    req = submitted(db, world)
    with pytest.raises(Conflict):
        service.update_draft(
            db, req.public_id, schemas.DraftUpdate(version=req.version, title="x"), actor=world.linh
        )


# --------------------------------------------------------------------------- need-to-know


def test_a_draft_is_invisible_to_the_receiver(db: Session, world: World) -> None:
    req = service.create_draft(db, preservation_draft(world.au), actor=world.linh)
    with pytest.raises(NotFound):
        service.get_request(db, req.public_id, actor=world.jack)


def test_third_authority_sees_nothing_and_the_attempt_is_audited(db: Session, world: World) -> None:
    req = submitted(db, world)
    with pytest.raises(NotFound):
        service.get_request(db, req.public_id, actor=world.yasmine)
    denied = last_audit(db)
    assert (denied.action, denied.outcome) == ("request.viewed", "denied")
    assert denied.actor_user_id == world.yasmine.user_id
    page = service.list_requests(db, actor=world.yasmine, filters=service.Filters())
    assert req.public_id not in {r.public_id for r in page.items}
    with pytest.raises(NotFound):
        act(db, req.public_id, world.yasmine, "acknowledge")
    with pytest.raises(NotFound):
        service.add_message(db, req.public_id, schemas.MessageIn(body="hi"), actor=world.yasmine)


def test_unknown_and_invisible_requests_look_the_same(db: Session, world: World) -> None:
    req = submitted(db, world)
    with pytest.raises(NotFound) as hidden:
        service.get_request(db, req.public_id, actor=world.yasmine)
    with pytest.raises(NotFound) as missing:
        service.get_request(db, "no-such-request", actor=world.yasmine)
    assert hidden.value.detail == missing.value.detail


def test_both_sides_and_auditors_see_it_and_every_view_is_audited(
    db: Session, world: World
) -> None:
    req = submitted(db, world)
    for viewer in (world.linh, world.jack, world.an, world.hoa):
        seen = service.get_request(db, req.public_id, actor=viewer)
        assert seen.public_id == req.public_id
        event = last_audit(db)
        assert (event.action, event.outcome, event.actor_user_id) == (
            "request.viewed",
            "ok",
            viewer.user_id,
        )


# --------------------------------------------------------------------------- submitting


def test_submit_stores_the_legal_basis_conditions_and_clocks(db: Session, world: World) -> None:
    req = submitted(db, world)
    assert req.status == "submitted"
    assert req.legal_basis is not None
    assert req.legal_basis["instrument_code"] == "AU-VN-POLICE-MOU"
    assert req.legal_basis["article"] == "Clause 4"
    assert {
        "code": "CONFIDENTIALITY",
        "text": "Police information only.",
        "source": "AU-VN-POLICE-MOU",
    } in req.conditions
    kinds = {c.kind for c in req.clocks}
    assert "acknowledgement" in kinds
    ack = next(c for c in req.clocks if c.kind == "acknowledgement")
    # Urgent on the 24/7 channel: acknowledge within the hour.
    assert ack.due_at - req.submitted_at <= timedelta(hours=1)


def test_submit_without_a_legal_basis_keeps_the_draft_and_says_why(
    db: Session, world: World
) -> None:
    req = service.create_draft(db, preservation_draft(world.ma), actor=world.linh)
    with pytest.raises(service.NoLegalBasis) as info:
        act(db, req.public_id, world.linh, "submit")
    assert info.value.reasons
    db.expire_all()
    assert service.get_request(db, req.public_id, actor=world.linh).status == "draft"


def test_mla_types_need_a_supervisor_to_submit(
    db: Session, world: World, make_instrument: object, make_party: object
) -> None:
    draft = preservation_draft(
        world.au,
        request_type="mla_subscriber",
        channel="central_authority",
        details={
            "investigative_authority": "A05 investigation team 3",
            "domestic_legal_basis": "Criminal Procedure Code Art. 88",
            "link_to_offence": "The address controlled the ransomware server",
            "identifiers_justification": "Seen in the server logs",
        },
    )
    req = service.create_draft(db, draft, actor=world.linh)
    with pytest.raises(PermissionDenied):
        act(db, req.public_id, world.linh, "submit")


# --------------------------------------------------------------------------- lifecycle


def test_preservation_from_submission_to_its_answer(db: Session, world: World) -> None:
    req = submitted(db, world)
    ref = req.public_id
    act(db, ref, world.jack, "acknowledge")
    act(db, ref, world.jack, "start")
    until = utc_now() + timedelta(days=90)
    done = act(db, ref, world.jack, "execute", preserved_until=until.isoformat())
    assert done.status == "executed"
    assert done.outcome == "executed"
    assert done.preserved_until is not None
    assert done.preserved_until >= until - timedelta(seconds=1)
    clocks = {c.kind: c for c in done.clocks}
    assert clocks["acknowledgement"].met_at is not None
    assert "preservation_expiry" in clocks
    actions = [e.action for e in service.timeline(db, done)]
    assert actions == ["created", "submit", "acknowledge", "start", "execute"]
    closed = act(db, ref, world.linh, "close")
    assert closed.status == "closed"
    assert closed.closed_at is not None


def test_preservation_lasts_at_least_60_days(db: Session, world: World) -> None:
    req = submitted(db, world)
    act(db, req.public_id, world.jack, "acknowledge")
    act(db, req.public_id, world.jack, "start")
    short = (utc_now() + timedelta(days=10)).isoformat()
    done = act(db, req.public_id, world.jack, "execute", preserved_until=short)
    assert done.preserved_until is not None
    assert done.preserved_at is not None
    assert done.preserved_until - done.preserved_at >= timedelta(days=60)


def test_illegal_transition_is_refused_state_unchanged_and_audited(
    db: Session, world: World
) -> None:
    req = submitted(db, world)
    with pytest.raises(IllegalTransition):
        act(db, req.public_id, world.jack, "execute")
    db.expire_all()
    assert service.get_request(db, req.public_id, actor=world.jack).status == "submitted"
    refused = db.scalars(select(AuditEvent).where(AuditEvent.action == "request.execute")).all()
    assert [e.outcome for e in refused] == ["denied"]


def test_only_the_receiver_acknowledges(db: Session, world: World) -> None:
    req = submitted(db, world)
    with pytest.raises(PermissionDenied):
        act(db, req.public_id, world.linh, "acknowledge")


def test_analyst_and_auditor_cannot_act(db: Session, world: World) -> None:
    req = submitted(db, world)
    for reader in (world.hoa, world.an):
        with pytest.raises((PermissionDenied, NotFound)):
            act(db, req.public_id, reader, "withdraw", reasons="no")


def test_refusal_needs_an_allowed_ground(db: Session, world: World) -> None:
    req = submitted(db, world)
    act(db, req.public_id, world.jack, "acknowledge")
    with pytest.raises(InvalidInput):
        act(
            db,
            req.public_id,
            world.jack,
            "refuse",
            ground="death_penalty_no_assurance",
            reasons="not a preservation ground",
        )
    with pytest.raises(InvalidInput):
        act(db, req.public_id, world.jack, "refuse", reasons="no ground given")
    refused = act(
        db,
        req.public_id,
        world.jack,
        "refuse",
        ground="political_offence",
        reasons="The conduct is a political offence under our law.",
    )
    assert (refused.status, refused.refusal_ground, refused.outcome) == (
        "refused",
        "political_offence",
        "refused",
    )


def test_withdraw_needs_a_reason_once_submitted(db: Session, world: World) -> None:
    req = submitted(db, world)
    with pytest.raises(InvalidInput):
        act(db, req.public_id, world.linh, "withdraw")
    done = act(db, req.public_id, world.linh, "withdraw", reasons="Suspect arrested")
    assert done.status == "withdrawn"


def test_stale_version_on_a_transition_is_a_conflict(db: Session, world: World) -> None:
    req = submitted(db, world)
    stale = req.version
    act(db, req.public_id, world.jack, "acknowledge")
    with pytest.raises(Conflict):
        act(db, req.public_id, world.jack, "start", version=stale)


def test_messages_from_both_sides(db: Session, world: World) -> None:
    req = submitted(db, world)
    service.add_message(
        db, req.public_id, schemas.MessageIn(body="Received, working."), actor=world.jack
    )
    service.add_message(db, req.public_id, schemas.MessageIn(body="Thank you."), actor=world.linh)
    thread = service.messages(db, req)
    assert [(m.author_authority_id, m.body) for m in thread] == [
        (world.au.id, "Received, working."),
        (world.vn.id, "Thank you."),
    ]


def test_an_mla_request_follows_a_preservation(db: Session, world: World) -> None:
    pres = submitted(db, world)
    link = {"request": pres.reference, "kind": "follows_preservation"}
    draft = preservation_draft(
        world.au,
        request_type="traffic_disclosure",
        links=[link],
        details={
            "preservation_reference": pres.reference,
            "data_sought": "Traffic data showing the path",
        },
    )
    follow = service.create_draft(db, draft, actor=world.linh)
    assert service.links(db, follow)[0]["reference"] == pres.reference
    assert any(x["direction"] == "from" for x in service.links(db, pres))


def test_a_link_to_an_invisible_request_is_refused(db: Session, world: World) -> None:
    theirs = service.create_draft(db, preservation_draft(world.vn), actor=world.jack)
    link = {"request": theirs.public_id, "kind": "follows_preservation"}
    with pytest.raises(InvalidInput):
        service.create_draft(db, preservation_draft(world.au, links=[link]), actor=world.linh)


# --------------------------------------------------------------------------- clocks


def test_sweep_marks_overdue_and_the_dashboard_lists_it(db: Session, world: World) -> None:
    req = submitted(db, world)
    result = service.sweep_clocks(db, now=utc_now() + timedelta(hours=2))
    assert result.overdue >= 1
    rows = service.dashboard(db, actor=world.jack)
    assert any(r.public_id == req.public_id and c.state == "overdue" for r, c in rows)
    assert not any(
        r.public_id == req.public_id for r, _c in service.dashboard(db, actor=world.yasmine)
    )


def test_list_filters(db: Session, world: World) -> None:
    req = submitted(db, world)
    service.create_draft(db, preservation_draft(world.au, title="Another one"), actor=world.linh)
    page = service.list_requests(db, actor=world.linh, filters=service.Filters(status="submitted"))
    assert [r.public_id for r in page.items] == [req.public_id]
    partner = service.list_requests(
        db, actor=world.linh, filters=service.Filters(partner_authority_id=world.au.id)
    )
    assert partner.total == 2
    receiver_view = service.list_requests(db, actor=world.jack, filters=service.Filters())
    assert receiver_view.total == 1  # the other one is still a draft
    events = db.scalars(select(RequestEvent)).all()
    assert events


def test_extending_a_preservation_pushes_its_expiry(db: Session, world: World) -> None:
    first = submitted(db, world)
    for action in ("acknowledge", "start", "execute"):
        act(db, first.public_id, world.jack, action)
    original_until = service.get_request(db, first.public_id, actor=world.linh).preserved_until
    assert original_until is not None
    details = dict(preservation_draft(world.au).details)
    details.update({"is_extension": True, "previous_reference": first.reference})
    ext = service.create_draft(
        db,
        preservation_draft(
            world.au,
            title="Extension",
            details=details,
            links=[{"request": first.reference, "kind": "extends"}],
        ),
        actor=world.linh,
    )
    act(db, ext.public_id, world.linh, "submit")
    for action in ("acknowledge", "start"):
        act(db, ext.public_id, world.jack, action)
    later = original_until + timedelta(days=90)
    act(db, ext.public_id, world.jack, "execute", preserved_until=later.isoformat())
    db.expire_all()
    extended = service.get_request(db, first.public_id, actor=world.linh)
    assert extended.preserved_until is not None
    assert extended.preserved_until >= later - timedelta(seconds=1)
    expiry = next(c for c in extended.clocks if c.kind == "preservation_expiry")
    assert expiry.due_at >= later - timedelta(seconds=1)


def test_an_extension_must_link_the_preservation_it_extends(db: Session, world: World) -> None:
    details = dict(preservation_draft(world.au).details)
    details.update({"is_extension": True, "previous_reference": "VN-A05-2026-000001"})
    ext = service.create_draft(db, preservation_draft(world.au, details=details), actor=world.linh)
    with pytest.raises(InvalidInput) as info:
        act(db, ext.public_id, world.linh, "submit")
    assert info.value.field == "links"


def test_the_follow_up_request_stops_the_mla_follow_up_clock(db: Session, world: World) -> None:
    pres = submitted(db, world)
    for action in ("acknowledge", "start", "execute"):
        act(db, pres.public_id, world.jack, action)
    clocks = {c.kind: c for c in service.get_request(db, pres.public_id, actor=world.linh).clocks}
    assert clocks["mla_follow_up"].met_at is None
    draft = preservation_draft(
        world.au,
        request_type="traffic_disclosure",
        links=[{"request": pres.reference, "kind": "follows_preservation"}],
        details={
            "preservation_reference": pres.reference,
            "data_sought": "Traffic data showing the path",
        },
    )
    follow = service.create_draft(db, draft, actor=world.linh)
    act(db, follow.public_id, world.linh, "submit")
    db.expire_all()
    clocks = {c.kind: c for c in service.get_request(db, pres.public_id, actor=world.linh).clocks}
    assert clocks["mla_follow_up"].met_at is not None
    assert clocks["preservation_expiry"].met_at is None

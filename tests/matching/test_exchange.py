"""Hit/no-hit between two real nodes: signed, encrypted envelopes over a loopback transport."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from crossborder.audit.models import AuditEvent
from crossborder.core.errors import InvalidInput
from crossborder.db.session import unit_of_work
from crossborder.directory.models import Authority, InstrumentParty, LegalInstrument
from crossborder.federation import service as federation
from crossborder.federation.models import OutboxMessage
from crossborder.matching import protocol, responder, service
from crossborder.matching.models import MatchHit, MatchInbound, MatchQueryItem, MatchTarget
from crossborder.requests.models import CooperationRequest
from crossborder.selectors import correlate
from tests.matching.conftest import fill_set

OFFENCES = [{"code": "THEFT_FRAUD", "max_penalty_years": 10}]


def _ask(pair: dict[str, Any], rows: list[str], **kw: Any) -> service.Sent:
    vn = pair["vn"]
    entries = []
    for row in rows:
        kind, value, *rest = row.split(",")
        port = int(rest[0]) if rest and rest[0] else None
        start = datetime.fromisoformat(rest[1]) if len(rest) > 1 and rest[1] else None
        end = datetime.fromisoformat(rest[2]) if len(rest) > 2 and rest[2] else None
        entries.append(service.ItemIn(kind, value, port, start, end))
    with vn.session() as s:
        return service.send_query(
            s,
            pair["linh"],
            vn.settings.data_dir,
            purpose=kw.pop("purpose", "Investment fraud ring, who else knows these?"),
            case_reference=kw.pop("case_reference", "A05-2026-0117"),
            offences=kw.pop("offences", OFFENCES),
            identifiers=entries,
            **kw,
        )


def _round_trip(pair: dict[str, Any]) -> None:
    vn, au, t = pair["vn"], pair["au"], pair["t"]
    assert vn.deliver(t).delivered >= 1  # the query
    assert au.deliver(t).delivered >= 1  # the answer (or the refusal)


def _target(pair: dict[str, Any]) -> MatchTarget:
    with pair["vn"].session() as s:
        return s.scalars(select(MatchTarget).order_by(MatchTarget.id.desc())).first()


def _hits(pair: dict[str, Any]) -> dict[str, str]:
    with pair["vn"].session() as s:
        rows = s.execute(
            select(MatchQueryItem.canonical, MatchHit.strength).join(
                MatchHit, MatchHit.item_id == MatchQueryItem.id
            )
        )
        return {str(c): str(st) for c, st in rows.all()}


def test_a_query_finds_exactly_what_the_partner_holds(pair: dict[str, Any]) -> None:
    fill_set(
        pair["au"],
        pair["jack"],
        [
            "phone,+84 91 234 5678,,,",
            "crypto,TQrY8tryqsYVCYS3MFbtffiPp2ccyn4STm,,,",
            "email,j.doe+shop@gmail.com,,,",
            "ip,103.27.12.7,51234,2026-11-20T10:05:00+00:00,2026-11-20T10:20:00+00:00",
            "ip,203.0.113.99,,,",
        ],
    )
    sent = _ask(
        pair,
        [
            "phone,+84912345678",  # held (another spelling)
            "phone,+84 91 000 0000",  # not held
            "crypto,TQrY8tryqsYVCYS3MFbtffiPp2ccyn4STm",  # held
            "email,jdoe@gmail.com",  # a variant of what is held
            "ip,103.27.12.7,51234,2026-11-20T10:30:00+00:00,2026-11-20T10:40:00+00:00",  # same hour
            "ip,203.0.113.99,443,2026-11-21T08:00:00+00:00,2026-11-21T08:10:00+00:00",  # weak
            "domain,example.org",  # not held
        ],
    )
    assert len(sent.targets) == 1
    assert sent.targets[0].legal_basis == "AU-VN-POLICE-MOU"
    _round_trip(pair)
    target = _target(pair)
    assert target.status == "answered", target.reason
    assert target.sealed_key is None  # the query's scalar is erased once answered
    assert _hits(pair) == {
        "+84912345678": "match",
        "tron:TQrY8tryqsYVCYS3MFbtffiPp2ccyn4STm": "match",
        "jdoe@gmail.com": "variant",
        "103.27.12.7": "match",
        "203.0.113.99": "weak",
    }
    assert target.hit_count == 5
    with pair["au"].session() as s:
        row = s.scalars(select(MatchInbound)).one()
        assert (row.outcome, row.case_reference, row.legal_basis) == (
            "answered",
            "A05-2026-0117",
            "AU-VN-POLICE-MOU",
        )
        assert row.elements == target.elements


def test_both_sides_audit_without_the_values(pair: dict[str, Any]) -> None:
    fill_set(pair["au"], pair["jack"], ["phone,+84 91 234 5678,,,"])
    _ask(pair, ["phone,+84 91 234 5678"])
    _round_trip(pair)
    with pair["vn"].session() as s:
        vn_events = {e.action: e for e in s.scalars(select(AuditEvent))}
    with pair["au"].session() as s:
        au_events = {e.action: e for e in s.scalars(select(AuditEvent))}
    assert "matching.query_sent" in vn_events
    assert vn_events["matching.query_sent"].details["case_reference"] == "A05-2026-0117"
    assert vn_events["matching.answer_received"].details["hits"] == 1
    answered = au_events["matching.query_answered"]
    assert answered.details["purpose"].startswith("Investment fraud")
    assert answered.details["case_reference"] == "A05-2026-0117"
    for events in (vn_events, au_events):
        text = orjson.dumps([e.details for e in events.values()]).decode()
        assert "84912345678" not in text
        assert "234 5678" not in text


def test_what_travels_reveals_no_value_of_either_side(pair: dict[str, Any]) -> None:
    held = [f"phone,+84 91 {n:03d} {n:04d},,," for n in range(100, 140)]
    fill_set(pair["au"], pair["jack"], held)
    asked = ["phone,+84 91 100 0100", "phone,+84 92 555 0000"]
    _ask(pair, asked)
    vn, au, t = pair["vn"], pair["au"], pair["t"]
    with vn.session() as s:
        query_body = s.scalars(select(OutboxMessage)).one().body
    assert vn.deliver(t).delivered == 1
    with au.session() as s:
        answer_body = s.scalars(select(OutboxMessage)).one().body
    assert au.deliver(t).delivered == 1
    secrets_of = []
    for line in held + [a + ",,," for a in asked]:
        canonical = "+" + "".join(ch for ch in line.split(",")[1] if ch.isdigit())
        secrets_of += [canonical.encode(), canonical[1:].encode()]
        secrets_of.append(correlate.digest("phone", canonical))
    for body in (query_body, answer_body):
        wire = orjson.dumps(body)
        blobs = [wire] + [
            base64.b64decode(v)
            for k, v in body.items()
            if k in ("request", "response") and isinstance(v, str)
        ]
        blobs += [base64.b64decode(v) for v in body.get("segments", [])]
        for blob in blobs:
            for secret in secrets_of:
                assert secret not in blob
    # The answer's segments test nothing without the responder's key: a second client
    # that re-asks the responder's non-matching values, answered by another key, finds none.
    setups = [base64.b64decode(v) for v in answer_body["segments"]]
    guesses = [correlate.digest("phone", f"+849110{n}{n:04d}") for n in range(101, 140)]
    guesser = protocol.new_key()
    request = protocol.parse_request(protocol.make_request(guesser, guesses), max_elements=100)
    forged = protocol.answer_request(protocol.new_key(), request)
    assert protocol.intersect(guesser, setups, forged, len(guesses)) == set()
    assert _hits(pair) == {"+84911000100": "match"}


def test_a_partner_without_a_legal_basis_is_not_asked(pair: dict[str, Any]) -> None:
    with pair["vn"].session() as s, unit_of_work(s):
        for party in s.scalars(select(InstrumentParty)):
            s.delete(party)
        s.delete(s.scalars(select(LegalInstrument)).one())
    with pytest.raises(InvalidInput, match="no legal basis"):
        _ask(pair, ["phone,+84 91 234 5678"])
    with pair["vn"].session() as s:
        assert s.scalars(select(OutboxMessage)).all() == []
        refused = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "matching.query_refused")
        ).one()
        assert refused.outcome == "refused"


def test_the_responder_refuses_when_its_own_directory_has_no_basis(pair: dict[str, Any]) -> None:
    with pair["au"].session() as s, unit_of_work(s):
        mou = s.scalars(select(LegalInstrument)).one()
        mou.channels = ["point_of_contact_24_7"]  # AU's copy: not for police-to-police
    fill_set(pair["au"], pair["jack"], ["phone,+84 91 234 5678,,,"])
    _ask(pair, ["phone,+84 91 234 5678"])
    _round_trip(pair)
    target = _target(pair)
    assert (target.status, target.reason_code) == ("refused", "NO_LEGAL_BASIS")
    assert target.sealed_key is None
    with pair["au"].session() as s:
        row = s.scalars(select(MatchInbound)).one()
        assert (row.outcome, row.reason_code) == ("refused", "NO_LEGAL_BASIS")


def test_daily_allowance_and_size_limits_refuse_with_a_reason(pair: dict[str, Any]) -> None:
    au = pair["au"]
    with au.session() as s, unit_of_work(s):
        responder.set_policy(
            s, pair["au_admin"], pair["au_ids"]["local"], max_query_elements=3, daily_queries=1
        )
    _ask(pair, ["phone,+84 91 234 5678"])
    _round_trip(pair)
    assert _target(pair).status == "answered"
    _ask(pair, ["phone,+84 91 234 5679"])
    _round_trip(pair)
    second = _target(pair)
    assert (second.status, second.reason_code) == ("refused", "DAILY_QUERIES")
    with au.session() as s, unit_of_work(s):
        responder.set_policy(s, pair["au_admin"], pair["au_ids"]["local"], daily_queries=10)
    _ask(pair, [f"phone,+84 91 234 56{n:02d}" for n in range(4)])
    _round_trip(pair)
    third = _target(pair)
    assert (third.status, third.reason_code) == ("refused", "TOO_LARGE")
    assert "at most 3" in (third.reason or "")
    with au.session() as s:
        outcomes = [r.outcome for r in s.scalars(select(MatchInbound).order_by(MatchInbound.id))]
        assert outcomes == ["answered", "refused", "refused"]
        refusals = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "matching.query_refused")
        ).all()
        assert len(refusals) == 2


def test_a_blocked_partner_and_an_authority_that_does_not_answer(pair: dict[str, Any]) -> None:
    au = pair["au"]
    with au.session() as s, unit_of_work(s):
        responder.set_partner_rule(
            s, pair["au_admin"], pair["au_ids"]["local"], pair["au_ids"]["remote"], blocked=True
        )
    _ask(pair, ["phone,+84 91 234 5678"])
    _round_trip(pair)
    assert _target(pair).reason_code == "BLOCKED"
    with au.session() as s, unit_of_work(s):
        responder.set_policy(s, pair["au_admin"], pair["au_ids"]["local"], answers=False)
    _ask(pair, ["phone,+84 91 234 5678"])
    _round_trip(pair)
    assert _target(pair).reason_code == "NOT_ANSWERING"


def test_a_replayed_query_is_dropped_and_audited(pair: dict[str, Any]) -> None:
    vn, au, t = pair["vn"], pair["au"], pair["t"]
    fill_set(au, pair["jack"], ["phone,+84 91 234 5678,,,"])
    _ask(pair, ["phone,+84 91 234 5678"])
    with vn.session() as s:
        body = s.scalars(select(OutboxMessage)).one().body
    _round_trip(pair)
    with vn.session() as s, unit_of_work(s):  # the same query again, in a new envelope
        partner = s.get(Authority, pair["vn_ids"]["remote"])
        federation.enqueue(s, to_node_id=partner.node_id, type="match.query", body=body)
    assert vn.deliver(t).delivered == 1
    with au.session() as s:
        assert s.scalars(select(MatchInbound)).all()[0].outcome == "answered"
        assert len(s.scalars(select(MatchInbound)).all()) == 1
        replay = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "matching.query_refused")
        ).one()
        assert replay.details["code"] == "REPLAY"
        assert s.scalars(select(OutboxMessage).where(OutboxMessage.type == "match.answer")).all()


def test_a_malformed_request_is_refused_and_costs_nothing(pair: dict[str, Any]) -> None:
    vn, au = pair["vn"], pair["au"]
    _ask(pair, ["phone,+84 91 234 5678"])
    with vn.session() as s, unit_of_work(s):
        row = s.scalars(select(OutboxMessage)).one()
        body = dict(row.body)
        body["request"] = base64.b64encode(b"\x0a\x21" + b"\x07" * 33).decode()
        row.body = body
    _round_trip(pair)
    target = _target(pair)
    assert target.status == "refused"
    assert target.reason_code in ("MALFORMED", "PROTOCOL")
    with au.session() as s:
        assert s.scalars(select(MatchInbound)).one().outcome == "refused"


def test_a_hit_becomes_a_draft_request_to_the_partner(pair: dict[str, Any]) -> None:
    fill_set(pair["au"], pair["jack"], ["phone,+84 91 234 5678,,,"])
    _ask(pair, ["phone,+84 91 234 5678", "phone,+84 91 999 9999"])
    _round_trip(pair)
    vn = pair["vn"]
    with vn.session() as s:
        hit = s.scalars(select(MatchHit)).one()
    with vn.session() as s, unit_of_work(s):
        req = service.draft_from_hit(s, pair["linh"], hit.id)
        ref = req.public_id
    with vn.session() as s:
        req = s.scalars(select(CooperationRequest).where(CooperationRequest.public_id == ref)).one()
        assert req.status == "draft"
        assert req.receiver_authority_id == pair["vn_ids"]["remote"]
        assert req.request_type == "police_information"
        assert [i["value"] for i in req.identifiers] == ["+84 91 234 5678"]
        assert "A05-2026-0117" in req.summary_of_facts
        assert s.get(MatchHit, hit.id).draft_request_id == req.id
    with vn.session() as s, unit_of_work(s):  # asked twice: the same draft
        assert service.draft_from_hit(s, pair["linh"], hit.id).public_id == ref


def test_results_equal_a_plain_intersection_on_random_sets(pair: dict[str, Any]) -> None:
    rng = random.Random(7)
    pool = [f"+8491{rng.randrange(10**7):07d}" for _ in range(400)]
    held = set(rng.sample(pool, 200))
    asked = set(rng.sample(pool, 150))
    fill_set(pair["au"], pair["jack"], [f"phone,{p},,," for p in sorted(held)])
    _ask(pair, [f"phone,{p}" for p in sorted(asked)])
    _round_trip(pair)
    assert set(_hits(pair)) == held & asked
    assert held & asked  # the draw has an intersection to find
    with pair["vn"].session() as s:
        target = s.scalars(select(MatchTarget)).one()
        assert target.set_size == len(held)
    now = datetime.now(UTC)
    assert target.answered_at is not None
    assert target.answered_at <= now


def test_an_answer_in_several_parts_is_read_once_all_are_in(
    pair: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    au = pair["au"]
    phones = [f"+84 91 234 56{n:02d}" for n in range(7)]
    fill_set(au, pair["jack"], [f"phone,{p},,," for p in phones])
    with au.session() as s:
        assert responder.refresh(s, au.settings.data_dir, pair["au_ids"]["local"], capacity=3)
    monkeypatch.setattr(service, "PART_BYTES", 1)  # the response alone, then one segment each
    _ask(pair, [f"phone,{phones[0]}", f"phone,{phones[6]}", "phone,+84 91 000 0000"])
    _round_trip(pair)
    with au.session() as s:
        parts = s.scalars(select(OutboxMessage).where(OutboxMessage.type == "match.answer")).all()
        assert sorted(p.body["part"] for p in parts) == [0, 1, 2, 3]
        assert "response" in next(p.body for p in parts if p.body["part"] == 0)
        assert next(p.body for p in parts if p.body["part"] == 0)["segments"] == []
    target = _target(pair)
    assert target.status == "answered"
    assert target.segments == 3
    assert _hits(pair) == {"+84912345600": "match", "+84912345606": "match"}


def test_the_largest_allowance_fits_one_envelope(pair: dict[str, Any]) -> None:
    with pair["au"].session() as s, pytest.raises(InvalidInput, match="150,000"):
        responder.set_policy(
            s, pair["au_admin"], pair["au_ids"]["local"], max_query_elements=1_000_000
        )

"""The responder's encrypted set on a real database: built once, refreshed by segment."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crossborder.auth.permissions import Principal
from crossborder.core.errors import InvalidInput, NotFound, PermissionDenied
from crossborder.directory.models import Authority
from crossborder.matching import protocol, responder
from crossborder.matching.models import MatchElement, MatchSegment
from crossborder.selectors import correlate, sets


@pytest.fixture
def home(make_authority: Callable[..., Authority]) -> Authority:
    return make_authority("AU", name="AFP", short_name="AFP", is_local=True)


@pytest.fixture
def jack(home: Authority, make_principal: Callable[..., Principal]) -> Principal:
    return make_principal("officer", authority_id=home.id)


@pytest.fixture
def admin(home: Authority, make_principal: Callable[..., Principal]) -> Principal:
    return make_principal("administrator", authority_id=home.id)


def _set(db: Session, actor: Principal, phones: list[str], name: str = "case") -> str:
    item = sets.create_set(db, actor, name=name)
    text = "type,value\n" + "".join(f"phone,{p}\n" for p in phones)
    sets.import_csv(db, actor, item, lambda: io.StringIO(text))
    db.commit()
    return item.public_id


def _elements(db: Session, authority_id: int) -> dict[bytes, int]:
    rows = db.execute(
        select(MatchElement.element, MatchElement.segment_id).where(
            MatchElement.authority_id == authority_id
        )
    )
    return {bytes(e): s for e, s in rows}


def _phone(n: int) -> str:
    return f"+6140000{n:04d}"


def test_refresh_builds_segments_then_rebuilds_only_what_changed(
    db: Session, tmp_path: Path, home: Authority, jack: Principal
) -> None:
    _set(db, jack, [_phone(n) for n in range(7)])
    first = responder.refresh(db, tmp_path, home.id, capacity=3)
    assert (first.elements, first.added, first.segments, first.segments_built) == (7, 7, 3, 3)
    assert set(_elements(db, home.id)) == {correlate.digest("phone", _phone(n)) for n in range(7)}
    again = responder.refresh(db, tmp_path, home.id, capacity=3)
    assert (again.added, again.removed, again.segments_built) == (0, 0, 0)
    built = {s.id: s.built_at for s in db.scalars(select(MatchSegment))}
    _set(db, jack, [_phone(7)], name="more")
    grown = responder.refresh(db, tmp_path, home.id, capacity=3)
    assert (grown.added, grown.segments_built) == (1, 1)  # only the segment with room
    rebuilt = [s.id for s in db.scalars(select(MatchSegment)) if s.built_at != built.get(s.id)]
    assert len(rebuilt) == 1
    status = responder.set_status(db, home.id)
    assert (status.elements, status.segments, status.stale_segments) == (8, 3, 0)
    assert status.bytes > 0


def test_opting_a_record_out_takes_its_elements_out(
    db: Session, tmp_path: Path, home: Authority, jack: Principal, admin: Principal
) -> None:
    kept = _set(db, jack, [_phone(1), _phone(2)], name="kept")
    secret = _set(db, jack, [_phone(2), _phone(3)], name="secret")
    responder.refresh(db, tmp_path, home.id)
    responder.opt_out(db, jack, "set", secret, reason="covert operation")
    db.commit()
    result = responder.refresh(db, tmp_path, home.id)
    assert result.removed == 1  # phone 2 is still offered through the other set
    assert set(_elements(db, home.id)) == {
        correlate.digest("phone", _phone(1)),
        correlate.digest("phone", _phone(2)),
    }
    assert responder.is_opted_out(db, "set", secret)
    assert responder.opt_in(db, jack, "set", secret)
    db.commit()
    assert responder.refresh(db, tmp_path, home.id).added == 1
    assert not responder.is_opted_out(db, "set", kept)


def test_kinds_an_authority_does_not_offer(
    db: Session, tmp_path: Path, home: Authority, jack: Principal, admin: Principal
) -> None:
    item = sets.create_set(db, jack, name="mixed")
    text = "type,value\nphone,+61400001234\nemail,someone@example.org\n"
    sets.import_csv(db, jack, item, lambda: io.StringIO(text))
    db.commit()
    responder.refresh(db, tmp_path, home.id)
    responder.set_policy(db, admin, home.id, excluded_kinds=["phone"], max_query_elements=500)
    db.commit()
    result = responder.refresh(db, tmp_path, home.id)
    assert result.removed == 1
    assert result.segments_built == 1  # the filters are sized for the new largest query
    assert set(_elements(db, home.id)) == {correlate.digest("email", "someone@example.org")}
    segment = db.scalars(select(MatchSegment)).one()
    assert segment.max_query == 500


def test_policy_and_opt_out_denials(
    db: Session,
    tmp_path: Path,
    home: Authority,
    jack: Principal,
    admin: Principal,
    make_authority: Callable[..., Authority],
    make_principal: Callable[..., Principal],
) -> None:
    with pytest.raises(PermissionDenied):
        responder.set_policy(db, jack, home.id, daily_queries=1)
    with pytest.raises(InvalidInput, match="unknown identifier kinds"):
        responder.set_policy(db, admin, home.id, excluded_kinds=["shoe-size"])
    with pytest.raises(InvalidInput):
        responder.set_policy(db, admin, home.id, max_query_elements=0)
    elsewhere = make_authority("VN", name="A05")
    with pytest.raises(NotFound):  # not an authority of this node
        responder.set_policy(db, admin, elsewhere.id, daily_queries=1)
    with pytest.raises(InvalidInput, match="another node"):
        responder.set_partner_rule(db, admin, home.id, home.id, blocked=True)
    mine = _set(db, jack, [_phone(1)])
    other = make_principal("officer", authority_id=make_authority("AU", name="ACIC").id)
    with pytest.raises(NotFound):
        responder.opt_out(db, other, "set", mine)
    analyst = make_principal("analyst", authority_id=home.id)
    with pytest.raises(PermissionDenied):
        responder.opt_out(db, analyst, "set", mine)
    with pytest.raises(InvalidInput, match="can be kept out"):
        responder.opt_out(db, jack, "intel", "1/indicator--x")
    assert db.scalar(select(func.count()).select_from(MatchElement)) == 0


def test_the_responder_key_is_sealed_and_stable(
    db: Session, tmp_path: Path, home: Authority, jack: Principal
) -> None:
    _set(db, jack, [_phone(1)])
    responder.refresh(db, tmp_path, home.id)
    key = responder._responder_key(db, tmp_path, home.id)
    assert len(key) == 32
    assert responder._responder_key(db, tmp_path, home.id) == key
    from crossborder.matching.models import MatchKey

    sealed = db.scalars(select(MatchKey)).one().sealed_key
    assert key.hex() not in sealed
    assert (tmp_path / "matching.key").stat().st_mode & 0o777 == 0o600
    setup = db.scalars(select(MatchSegment)).one().setup
    client = protocol.new_key()
    asked = [correlate.digest("phone", _phone(1)), correlate.digest("phone", _phone(2))]
    request = protocol.parse_request(protocol.make_request(client, asked), max_elements=2)
    response = protocol.answer_request(key, request)
    assert protocol.intersect(client, [setup], response, 2) == {0}


def test_the_worker_refreshes_sets_that_are_due(
    db: Session, tmp_path: Path, home: Authority, jack: Principal
) -> None:
    from datetime import timedelta

    _set(db, jack, [_phone(1)])
    first = {r.authority_id: r.added for r in responder.refresh_due(db, tmp_path)}
    assert first[home.id] == 1
    _set(db, jack, [_phone(2)], name="later")
    assert responder.refresh_due(db, tmp_path) == []  # refreshed less than ten minutes ago
    due = {r.authority_id: r.added for r in responder.refresh_due(db, tmp_path, every=timedelta(0))}
    assert due[home.id] == 1


def test_an_unchanged_set_is_not_read_again_and_a_removal_is_seen(
    db: Session, tmp_path: Path, home: Authority, jack: Principal
) -> None:
    from crossborder.selectors import service as selectors

    _set(db, jack, [_phone(1), _phone(2)])
    later = _set(db, jack, [_phone(3)], name="later")
    assert responder.refresh(db, tmp_path, home.id).added == 3
    quiet = responder.refresh(db, tmp_path, home.id)
    assert (quiet.elements, quiet.added, quiet.removed, quiet.segments_built) == (3, 0, 0, 0)
    selectors.remove_record(db, "set", later)  # the newest occurrence goes
    db.commit()
    assert responder.refresh(db, tmp_path, home.id).removed == 1
    forced = responder.refresh(db, tmp_path, home.id, force=True)
    assert (forced.elements, forced.added, forced.removed) == (2, 0, 0)


def test_a_new_responder_key_rebuilds_every_segment(
    db: Session, tmp_path: Path, home: Authority, jack: Principal
) -> None:
    from sqlalchemy import delete

    from crossborder.matching.models import MatchKey

    _set(db, jack, [_phone(n) for n in range(5)])
    responder.refresh(db, tmp_path, home.id, capacity=2)
    db.execute(delete(MatchKey))  # the operator lost matching.key and started afresh
    db.commit()
    again = responder.refresh(db, tmp_path, home.id, capacity=2)
    assert again.segments_built == 3
    key = responder._responder_key(db, tmp_path, home.id)
    client = protocol.new_key()
    asked = [correlate.digest("phone", _phone(4))]
    request = protocol.parse_request(protocol.make_request(client, asked), max_elements=1)
    setups = [s.setup for s in db.scalars(select(MatchSegment)) if s.setup]
    assert protocol.intersect(client, setups, protocol.answer_request(key, request), 1) == {0}


def test_a_key_the_node_cannot_open_does_not_stop_the_worker(
    db: Session, tmp_path: Path, home: Authority, jack: Principal
) -> None:
    from datetime import timedelta

    _set(db, jack, [_phone(1)])
    responder.refresh(db, tmp_path, home.id)
    (tmp_path / "matching.key").write_text("0" * 64 + "\n")  # another master key
    _set(db, jack, [_phone(2)], name="later")
    done = responder.refresh_due(db, tmp_path, every=timedelta(0))
    assert home.id not in {r.authority_id for r in done}  # skipped, and said in the log

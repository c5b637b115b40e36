"""The directory service against a real database: rules, permissions, audit, transactions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crossborder.audit.models import AuditEvent
from crossborder.audit.service import verify_chain
from crossborder.auth.permissions import Principal, Role
from crossborder.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from crossborder.db.session import unit_of_work
from crossborder.directory import schemas, service
from crossborder.directory.models import Authority, ContactPoint, LegalInstrument, Node, State
from crossborder.directory.policy import ReasonCode


def principal(authority: Authority, role: Role, user_id: int = 1) -> Principal:
    return Principal(
        user_id=user_id, username=role.value, authority_id=authority.id, roles=frozenset({role})
    )


@pytest.fixture
def admin(local_authority: Authority) -> Principal:
    return principal(local_authority, Role.ADMINISTRATOR)


@pytest.fixture
def officer(local_authority: Authority) -> Principal:
    return principal(local_authority, Role.OFFICER, user_id=2)


@pytest.fixture
def auditor(local_authority: Authority) -> Principal:
    return principal(local_authority, Role.AUDITOR, user_id=3)


def events(db: Session, action: str) -> list[AuditEvent]:
    return list(
        db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
    )


def count(db: Session, model: type[Any]) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def new_authority(**overrides: Any) -> schemas.AuthorityCreate:
    values: dict[str, Any] = {
        "state": "AU",
        "name": "Australian Federal Police",
        "short_name": "AFP",
        "roles": ["police", "point_of_contact_24_7"],
        "languages": ["en"],
        "time_zone": "Australia/Sydney",
    }
    values.update(overrides)
    return schemas.AuthorityCreate.model_validate(values)


# -- states ---------------------------------------------------------------------------------


def test_create_state_derives_codes_and_refuses_duplicates(db: Session, admin: Principal) -> None:
    state = service.create_state(db, schemas.StateCreate(alpha2="ma"), actor=admin)
    assert (state.alpha2, state.alpha3, state.name) == ("MA", "MAR", "Morocco")
    assert [e.object_id for e in events(db, "directory.state.created")] == [str(state.id)]
    with pytest.raises(Conflict):
        service.create_state(db, schemas.StateCreate(alpha2="MA"), actor=admin)


def test_create_state_with_a_mismatched_alpha3_stores_nothing(
    db: Session, admin: Principal
) -> None:
    before = count(db, State)
    with pytest.raises(InvalidInput) as caught:
        service.create_state(db, schemas.StateCreate(alpha2="MA", alpha3="MDA"), actor=admin)
    assert caught.value.field == "alpha3"
    assert count(db, State) == before
    assert events(db, "directory.state.created") == []


# -- authorities ------------------------------------------------------------------------------


def test_create_authority_stores_it_and_audits_in_the_same_transaction(
    db: Session, admin: Principal, make_state: Callable[[str], State]
) -> None:
    make_state("AU")
    authority = service.create_authority(db, new_authority(), actor=admin)

    assert authority.id is not None
    assert authority.version == 1
    assert authority.state_code == "AU"
    [event] = events(db, "directory.authority.created")
    assert event.object_id == str(authority.id)
    assert event.actor_user_id == admin.user_id
    assert event.details == {
        "state": "AU",
        "roles": ["police", "point_of_contact_24_7"],
        "is_local": False,
    }
    assert verify_chain(db).ok


def test_change_and_audit_event_roll_back_together(
    db: Session, admin: Principal, make_state: Callable[[str], State]
) -> None:
    make_state("AU")
    db.commit()

    def create_then_fail() -> None:
        with unit_of_work(db):
            service.create_authority(db, new_authority(), actor=admin)
            raise RuntimeError("a later step of the same unit of work fails")

    with pytest.raises(RuntimeError):
        create_then_fail()
    assert db.scalar(select(Authority).where(Authority.name == "Australian Federal Police")) is None
    assert events(db, "directory.authority.created") == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"state": "BR"}, "state"), ({"node_id": 999_999}, "node_id")],
)
def test_create_authority_with_unknown_references_stores_nothing(
    db: Session,
    admin: Principal,
    make_state: Callable[[str], State],
    overrides: dict[str, Any],
    field: str,
) -> None:
    make_state("AU")
    before = count(db, Authority)
    with pytest.raises(InvalidInput) as caught:
        service.create_authority(db, new_authority(**overrides), actor=admin)
    assert caught.value.field == field
    assert caught.value.extra == {"errors": [{"field": field, "message": caught.value.detail}]}
    assert count(db, Authority) == before
    assert events(db, "directory.authority.created") == []


def test_authority_names_are_unique_per_state(
    db: Session, admin: Principal, make_state: Callable[[str], State]
) -> None:
    make_state("AU")
    make_state("NZ")
    service.create_authority(db, new_authority(), actor=admin)
    with pytest.raises(Conflict):
        service.create_authority(db, new_authority(), actor=admin)
    service.create_authority(db, new_authority(state="NZ"), actor=admin)  # another state: fine
    hub = service.create_authority(
        db,
        new_authority(state=None, name="UNODC Regional Office", roles=["regional_hub"]),
        actor=admin,
    )
    assert hub.state is None
    with pytest.raises(Conflict):
        service.create_authority(
            db,
            new_authority(state=None, name="UNODC Regional Office", roles=["regional_hub"]),
            actor=admin,
        )


@pytest.mark.parametrize("role", [Role.OFFICER, Role.AUDITOR, Role.ANALYST, Role.SUPERVISOR])
def test_only_administrators_write_the_directory(
    db: Session, local_authority: Authority, make_state: Callable[[str], State], role: Role
) -> None:
    make_state("AU")
    actor = principal(local_authority, role)
    before = count(db, Authority)
    with pytest.raises(PermissionDenied):
        service.create_authority(db, new_authority(), actor=actor)
    with pytest.raises(PermissionDenied):
        service.update_authority(
            db,
            local_authority.id,
            schemas.AuthorityChanges(name="x"),
            actor=actor,
            expected_version=1,
        )
    with pytest.raises(PermissionDenied):
        service.register_node(
            db,
            schemas.NodeCreate(name="n", base_url="https://n.example.org", fingerprint="a" * 64),
            actor=actor,
        )
    assert count(db, Authority) == before


def test_a_token_scope_narrows_write_access(
    db: Session, local_authority: Authority, make_state: Callable[[str], State]
) -> None:
    make_state("AU")
    token = Principal(
        user_id=1,
        username="admin",
        authority_id=local_authority.id,
        roles=frozenset({Role.ADMINISTRATOR}),
        via="token",
        token_id=7,
        scopes=frozenset({"directory:read"}),
    )
    with pytest.raises(PermissionDenied):
        service.create_authority(db, new_authority(), actor=token)
    assert service.search_authorities(db, actor=token).total >= 1


def test_search_by_text_state_and_role_with_paging(
    db: Session, officer: Principal, make_authority: Callable[..., Authority]
) -> None:
    make_authority(
        "AU",
        name="Australian Federal Police",
        short_name="AFP",
        roles=["police", "point_of_contact_24_7"],
    )
    make_authority(
        "AU",
        name="Attorney-General's Department",
        short_name="AGD",
        roles=["central_authority_mla"],
    )
    make_authority(
        "MA", name="Direction Générale de la Sûreté Nationale", short_name="DGSN", roles=["police"]
    )
    make_authority(
        None,
        name="UNODC Regional Office for Southeast Asia",
        short_name="ROSEAP",
        roles=["regional_hub"],
    )

    def names(**kw: Any) -> list[str]:
        return [a.name for a in service.search_authorities(db, actor=officer, **kw).items]

    assert names(q="federal") == ["Australian Federal Police"]
    assert names(q="dgsn") == ["Direction Générale de la Sûreté Nationale"]
    assert names(state="au") == ["Attorney-General's Department", "Australian Federal Police"]
    assert names(role="central_authority_mla") == ["Attorney-General's Department"]
    assert names(state="AU", role="police") == ["Australian Federal Police"]
    assert names(role="regional_hub") == ["UNODC Regional Office for Southeast Asia"]
    assert names(q="%") == []  # LIKE wildcards are literal
    first = service.search_authorities(db, actor=officer, limit=2)
    second = service.search_authorities(db, actor=officer, limit=2, offset=2)
    assert first.total == second.total == 5  # with the local authority
    assert {a.id for a in first.items}.isdisjoint({a.id for a in second.items})


def test_get_authority_not_found(db: Session, officer: Principal) -> None:
    with pytest.raises(NotFound):
        service.get_authority(db, 999_999, actor=officer)


def test_update_authority_bumps_the_version_and_audits_the_fields(
    db: Session, admin: Principal, make_authority: Callable[..., Authority]
) -> None:
    authority = make_authority("AU", name="AFP HQ", short_name="AFP")
    changes = schemas.AuthorityChanges.model_validate(
        {"short_name": "AFP-HQ", "languages": ["en", "vi"]}
    )
    updated = service.update_authority(db, authority.id, changes, actor=admin, expected_version=1)
    assert (updated.short_name, updated.languages, updated.version) == ("AFP-HQ", ["en", "vi"], 2)
    [event] = events(db, "directory.authority.updated")
    assert event.details == {"fields": ["languages", "short_name"], "version": 2}


def test_stale_version_is_a_conflict_and_changes_nothing(
    db: Session, admin: Principal, make_authority: Callable[..., Authority]
) -> None:
    authority = make_authority("AU", name="AFP HQ")
    service.update_authority(
        db, authority.id, schemas.AuthorityChanges(name="AFP"), actor=admin, expected_version=1
    )
    with pytest.raises(Conflict, match="version 2"):
        service.update_authority(
            db,
            authority.id,
            schemas.AuthorityChanges(name="Stale"),
            actor=admin,
            expected_version=1,
        )
    db.expire_all()
    reloaded = db.get(Authority, authority.id)
    assert reloaded is not None
    assert (reloaded.name, reloaded.version) == ("AFP", 2)
    assert len(events(db, "directory.authority.updated")) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": None}, "name"),
        ({"state": "BR"}, "state"),
        ({"node_id": 424242}, "node_id"),
        ({"time_zone": None}, "time_zone"),
    ],
)
def test_invalid_update_names_the_field_and_stores_nothing(
    db: Session,
    admin: Principal,
    make_authority: Callable[..., Authority],
    changes: dict[str, Any],
    field: str,
) -> None:
    authority = make_authority("AU", name="AFP HQ")
    with pytest.raises(InvalidInput) as caught:
        service.update_authority(
            db,
            authority.id,
            schemas.AuthorityChanges.model_validate(changes),
            actor=admin,
            expected_version=1,
        )
    assert caught.value.field == field
    db.expire_all()
    reloaded = db.get(Authority, authority.id)
    assert reloaded is not None
    assert (reloaded.name, reloaded.version) == ("AFP HQ", 1)


def test_moving_an_authority_to_a_state_where_its_name_is_taken_conflicts(
    db: Session, admin: Principal, make_authority: Callable[..., Authority]
) -> None:
    make_authority("NZ", name="Police")
    au = make_authority("AU", name="Police")
    with pytest.raises(Conflict):
        service.update_authority(
            db, au.id, schemas.AuthorityChanges(state="NZ"), actor=admin, expected_version=1
        )


# -- contact points ---------------------------------------------------------------------------


def test_add_contact_point_defaults_to_the_authority_time_zone(
    db: Session, admin: Principal, make_authority: Callable[..., Authority]
) -> None:
    afp = make_authority("AU", name="AFP", time_zone="Australia/Sydney")
    contact = service.add_contact_point(
        db,
        afp.id,
        schemas.ContactPointCreate.model_validate(
            {
                "name": "AFP 24/7 desk",
                "is_desk": True,
                "phone": "+61 2 6131 3000",
                "email": "desk@afp.example",
                "is_24_7": True,
                "languages": ["en"],
            }
        ),
        actor=admin,
    )
    assert contact.time_zone == "Australia/Sydney"
    assert contact.phone == "+61261313000"
    [event] = events(db, "directory.contact.created")
    assert event.details == {"authority_id": afp.id}  # no personal data in the audit trail


def test_listing_contact_points_is_an_audited_read(
    db: Session,
    officer: Principal,
    make_authority: Callable[..., Authority],
    make_contact_point: Callable[..., ContactPoint],
) -> None:
    afp = make_authority("AU", name="AFP")
    desk = make_contact_point(afp, name="Desk", is_24_7=True)
    person = make_contact_point(afp, name="Alice Officer")

    contacts = service.list_contact_points(db, afp.id, actor=officer)

    assert [c.id for c in contacts] == [desk.id, person.id]  # 24/7 desk first
    [event] = events(db, "directory.contacts.viewed")
    assert (event.object_type, event.object_id) == ("authority", str(afp.id))
    assert event.actor_user_id == officer.user_id
    assert event.details == {"contact_point_ids": [desk.id, person.id]}
    assert "Alice" not in str(event.details)


def test_auditor_may_not_read_contact_points(
    db: Session, auditor: Principal, make_authority: Callable[..., Authority]
) -> None:
    afp = make_authority("AU", name="AFP")
    with pytest.raises(PermissionDenied):
        service.list_contact_points(db, afp.id, actor=auditor)
    assert events(db, "directory.contacts.viewed") == []
    assert service.get_authority(db, afp.id, actor=auditor).name == "AFP"  # public part is fine


def test_update_contact_point(
    db: Session,
    admin: Principal,
    make_authority: Callable[..., Authority],
    make_contact_point: Callable[..., ContactPoint],
) -> None:
    afp = make_authority("AU", name="AFP")
    contact = make_contact_point(afp)
    changes = schemas.ContactPointChanges.model_validate(
        {"office_hours": {"sat": [["09:00", "12:00"]]}, "title": "Senior Sergeant"}
    )
    updated = service.update_contact_point(db, contact.id, changes, actor=admin)
    assert updated.office_hours == {"sat": [["09:00", "12:00"]]}
    assert updated.title == "Senior Sergeant"
    with pytest.raises(InvalidInput) as caught:
        service.update_contact_point(
            db, contact.id, schemas.ContactPointChanges(time_zone=None), actor=admin
        )
    assert caught.value.field == "time_zone"
    with pytest.raises(NotFound):
        service.update_contact_point(db, 999_999, changes, actor=admin)


# -- nodes ------------------------------------------------------------------------------------


def test_register_node_pins_a_unique_fingerprint(db: Session, admin: Principal) -> None:
    data = schemas.NodeCreate(
        name="au-node", base_url="https://node.afp.example/", fingerprint="AB" * 32
    )
    node = service.register_node(db, data, actor=admin)
    assert node.fingerprint == "ab" * 32
    assert node.base_url == "https://node.afp.example"
    assert events(db, "directory.node.registered")[0].details == {"fingerprint": "ab" * 32}
    with pytest.raises(Conflict, match="fingerprint"):
        service.register_node(db, data.model_copy(update={"name": "other"}), actor=admin)
    assert count(db, Node) == 1
    assert [n.name for n in service.list_nodes(db, actor=admin)] == ["au-node"]


# -- instruments and policy -------------------------------------------------------------------


UNCC = {
    "code": "UNCC",
    "title": "United Nations Convention against Cybercrime",
    "kind": "multilateral_convention",
    "offences": ["ILLEGAL_ACCESS", "DATA_INTERFERENCE", "THEFT_FRAUD"],
    "articles": {"police": "Art 47", "central_authority": "Art 40"},
    "conditions": [{"code": "NO_ONWARD_TRANSFER_WITHOUT_CONSENT", "text": "Art 36"}],
    "serious_crime_min_years": 4,
}
MOU = {
    "code": "VN-MA-TIP-MOU",
    "title": "Viet Nam-Morocco MoU on trafficking in persons",
    "kind": "mou",
    "offences": ["TRAFFICKING_IN_PERSONS"],
    "channels": ["police"],
    "conditions": [{"code": "ONLY_THIS_INVESTIGATION", "text": "Only for this investigation."}],
    "valid_from": "2024-01-01",
    "valid_until": "2029-12-31",
}


def party(state: str, status: str = "in_force", **kw: Any) -> schemas.PartySet:
    return schemas.PartySet.model_validate({"state": state, "status": status, **kw})


def fraud_query(**kw: Any) -> schemas.PolicyQuery:
    values: dict[str, Any] = {
        "sender_state": "VN",
        "receiver_state": "MA",
        "channel": "police",
        "offences": ["THEFT_FRAUD"],
        "data_categories": ["subscriber"],
        "on_date": "2026-06-01",
    }
    values.update(kw)
    return schemas.PolicyQuery.model_validate(values)


@pytest.fixture
def vn_ma(db: Session, admin: Principal, make_state: Callable[[str], State]) -> None:
    make_state("VN")
    make_state("MA")
    service.create_instrument(db, schemas.InstrumentCreate.model_validate(UNCC), actor=admin)
    service.create_instrument(db, schemas.InstrumentCreate.model_validate(MOU), actor=admin)
    service.set_party_status(db, "UNCC", party("VN"), actor=admin)
    service.set_party_status(db, "UNCC", party("MA", "signed", signed_on="2025-10-25"), actor=admin)
    for state in ("VN", "MA"):
        service.set_party_status(
            db, "VN-MA-TIP-MOU", party(state, signed_on="2024-01-01"), actor=admin
        )


@pytest.mark.usefixtures("vn_ma")
def test_fraud_between_mou_partners_finds_no_basis_until_both_have_the_convention(
    db: Session, admin: Principal, officer: Principal
) -> None:
    result = service.evaluate_policy(db, fraud_query(), actor=officer)
    assert result.bases == []
    assert {(r.instrument_code, r.code) for r in result.refusals} == {
        ("UNCC", ReasonCode.PARTY_NOT_IN_FORCE),
        ("VN-MA-TIP-MOU", ReasonCode.OFFENCE_OUT_OF_SCOPE),
    }

    service.set_party_status(db, "UNCC", party("MA", in_force_on="2026-03-01"), actor=admin)

    result = service.evaluate_policy(db, fraud_query(), actor=officer)
    [basis] = result.bases
    assert (basis.instrument_code, basis.article) == ("UNCC", "Art 47")
    assert [c.code for c in basis.conditions] == ["NO_ONWARD_TRANSFER_WITHOUT_CONSENT"]
    before = service.evaluate_policy(db, fraud_query(on_date="2026-02-01"), actor=officer)
    assert before.bases == []


@pytest.mark.usefixtures("vn_ma")
def test_trafficking_uses_the_mou_first(db: Session, officer: Principal) -> None:
    result = service.evaluate_policy(
        db,
        fraud_query(offences=[{"code": "TRAFFICKING_IN_PERSONS", "max_penalty_years": 12}]),
        actor=officer,
    )
    assert [b.instrument_code for b in result.bases] == ["VN-MA-TIP-MOU"]
    assert result.bases[0].conditions[0].code == "ONLY_THIS_INVESTIGATION"


@pytest.mark.usefixtures("vn_ma")
def test_set_party_status_updates_in_place_and_audits(db: Session, admin: Principal) -> None:
    service.set_party_status(
        db, "UNCC", party("MA", "ratified", excluded_offences=["NCII"]), actor=admin
    )
    instrument = service.get_instrument(db, "UNCC", actor=admin)
    ma = [p for p in instrument.parties if p.state and p.state.alpha2 == "MA"]
    assert len(ma) == 1
    assert (ma[0].status, ma[0].excluded_offences) == ("ratified", ["NCII"])
    assert ma[0].signed_on is None  # the whole standing is replaced
    assert events(db, "directory.instrument.party_set")[-1].details["status"] == "ratified"


@pytest.mark.usefixtures("vn_ma")
def test_instrument_codes_are_unique(db: Session, admin: Principal) -> None:
    with pytest.raises(Conflict):
        service.create_instrument(db, schemas.InstrumentCreate.model_validate(UNCC), actor=admin)
    assert count(db, LegalInstrument) == 2


def test_a_bilateral_treaty_has_two_parties(
    db: Session, admin: Principal, make_state: Callable[[str], State]
) -> None:
    for code in ("VN", "AU", "NZ"):
        make_state(code)
    service.create_instrument(
        db,
        schemas.InstrumentCreate(
            code="VN-AU-MLA", title="VN-AU MLA treaty", kind="bilateral_treaty"
        ),
        actor=admin,
    )
    service.set_party_status(db, "VN-AU-MLA", party("VN"), actor=admin)
    service.set_party_status(db, "VN-AU-MLA", party("AU"), actor=admin)
    with pytest.raises(InvalidInput) as caught:
        service.set_party_status(db, "VN-AU-MLA", party("NZ"), actor=admin)
    assert caught.value.field == "state"
    with pytest.raises(InvalidInput) as caught:
        service.set_party_status(
            db,
            "VN-AU-MLA",
            schemas.PartySet.model_validate({"authority_id": 999_999, "status": "in_force"}),
            actor=admin,
        )
    assert caught.value.field == "authority_id"
    with pytest.raises(NotFound):
        service.set_party_status(db, "NOPE", party("VN"), actor=admin)


def test_agency_mou_from_the_database(
    db: Session, admin: Principal, officer: Principal, make_authority: Callable[..., Authority]
) -> None:
    a05 = make_authority("VN", name="Cybercrime Police", short_name="A05")
    dgsn = make_authority("MA", name="Sûreté Nationale", short_name="DGSN")
    cert = make_authority("VN", name="VNCERT", roles=["cert"])
    service.create_instrument(
        db, schemas.InstrumentCreate.model_validate({**MOU, "code": "A05-DGSN"}), actor=admin
    )
    for authority in (a05, dgsn):
        service.set_party_status(
            db,
            "A05-DGSN",
            schemas.PartySet(authority_id=authority.id, status="in_force"),
            actor=admin,
        )
    trafficking = {"offences": ["TRAFFICKING_IN_PERSONS"]}

    result = service.evaluate_policy(db, fraud_query(**trafficking), actor=officer)
    assert result.bases[0].via_authorities == ("A05", "DGSN")

    from_cert = service.evaluate_policy(
        db, fraud_query(**trafficking, sender_authority_id=cert.id), actor=officer
    )
    assert from_cert.bases == []
    with pytest.raises(InvalidInput) as caught:
        service.evaluate_policy(db, fraud_query(sender_authority_id=dgsn.id), actor=officer)
    assert caught.value.field == "sender_authority_id"


def test_policy_for_an_unknown_state_names_the_field(
    db: Session, officer: Principal, make_state: Callable[[str], State]
) -> None:
    make_state("VN")
    with pytest.raises(InvalidInput) as caught:
        service.evaluate_policy(db, fraud_query(receiver_state="BR"), actor=officer)
    assert caught.value.field == "receiver_state"


def test_policy_without_instruments_explains(
    db: Session, officer: Principal, make_state: Callable[[str], State]
) -> None:
    make_state("VN")
    make_state("BR")
    result = service.evaluate_policy(db, fraud_query(receiver_state="BR"), actor=officer)
    assert result.bases == []
    assert [r.code for r in result.refusals] == [ReasonCode.NO_INSTRUMENT]
    assert result.on == date(2026, 6, 1)


def test_policy_evaluation_needs_the_permission(
    db: Session, auditor: Principal, make_state: Callable[[str], State]
) -> None:
    with pytest.raises(PermissionDenied):
        service.evaluate_policy(db, fraud_query(), actor=auditor)

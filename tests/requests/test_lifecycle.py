"""The request state machine: every transition, side, role and input rule (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any

import pytest

from crossborder.auth.permissions import Role
from crossborder.core.errors import InvalidInput, PermissionDenied
from crossborder.requests.catalogue import CATALOGUE, RefusalGround, RequestType
from crossborder.requests.lifecycle import (
    ACTION_LABELS,
    CLOSED,
    FINAL_OUTCOMES,
    OPEN_STATES,
    OUTCOME_OF,
    SIDE_LABELS,
    STATUS_LABELS,
    TRANSITIONS,
    Action,
    IllegalTransition,
    Side,
    Status,
    available_actions,
    can_extend,
    check,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=14)
CENTRAL = [
    RequestType.MLA_STORED,
    RequestType.MLA_SUBSCRIBER,
    RequestType.MLA_REALTIME,
    RequestType.MLA_INTERCEPTION,
    RequestType.MLA_GENERAL,
    RequestType.EXTRADITION,
    RequestType.FREEZE_CONFISCATION,
    RequestType.JIT_PROPOSAL,
]
ROLE_SETS: list[frozenset[Role]] = [
    frozenset(),
    *(frozenset({role}) for role in Role),
    frozenset({Role.OFFICER, Role.ANALYST}),
]
TABLE = [
    (Action.SUBMIT, Status.DRAFT, Status.SUBMITTED, Side.SENDER),
    (Action.ACKNOWLEDGE, Status.SUBMITTED, Status.ACKNOWLEDGED, Side.RECEIVER),
    (Action.START, Status.ACKNOWLEDGED, Status.IN_PROGRESS, Side.RECEIVER),
    (Action.REQUEST_INFORMATION, Status.ACKNOWLEDGED, Status.NEEDS_INFORMATION, Side.RECEIVER),
    (Action.REQUEST_INFORMATION, Status.IN_PROGRESS, Status.NEEDS_INFORMATION, Side.RECEIVER),
    (Action.PROVIDE_INFORMATION, Status.NEEDS_INFORMATION, Status.IN_PROGRESS, Side.SENDER),
    (Action.POSTPONE, Status.ACKNOWLEDGED, Status.POSTPONED, Side.RECEIVER),
    (Action.POSTPONE, Status.IN_PROGRESS, Status.POSTPONED, Side.RECEIVER),
    (Action.RESUME, Status.POSTPONED, Status.IN_PROGRESS, Side.RECEIVER),
    (Action.EXECUTE, Status.IN_PROGRESS, Status.EXECUTED, Side.RECEIVER),
    (Action.PARTIALLY_EXECUTE, Status.IN_PROGRESS, Status.PARTIALLY_EXECUTED, Side.RECEIVER),
    *(
        (Action.REFUSE, source, Status.REFUSED, Side.RECEIVER)
        for source in (
            Status.SUBMITTED,
            Status.ACKNOWLEDGED,
            Status.IN_PROGRESS,
            Status.NEEDS_INFORMATION,
            Status.POSTPONED,
        )
    ),
    *((Action.WITHDRAW, source, Status.WITHDRAWN, Side.SENDER) for source in OPEN_STATES),
    *((Action.CLOSE, source, Status.CLOSED, side) for source in FINAL_OUTCOMES for side in Side),
]
TYPES_FOR_TABLE = [RequestType.PRESERVATION, RequestType.MLA_STORED, RequestType.EXTRADITION]


def good_inputs(action: Action, request_type: RequestType) -> dict[str, Any]:
    """The inputs a correct caller passes for ``action`` (a ground, reasons, a date)."""
    inputs: dict[str, Any] = {"reasons": "Reasons given in writing.", "now": NOW}
    if action is Action.REFUSE:
        grounds = sorted(CATALOGUE[request_type].refusal_grounds)
        inputs["ground"] = grounds[0] if grounds else None
    if action is Action.POSTPONE:
        inputs["until"] = LATER
    return inputs


def run(
    action: Action,
    request_type: RequestType,
    status: Status,
    side: Side,
    roles: frozenset[Role] = frozenset({Role.SUPERVISOR}),
    **overrides: Any,
) -> Status:
    inputs = {**good_inputs(action, request_type), **overrides}
    return check(action, request_type=request_type, status=status, side=side, roles=roles, **inputs)


def other(side: Side) -> Side:
    return Side.RECEIVER if side is Side.SENDER else Side.SENDER


# -- the table -----------------------------------------------------------------------------


@pytest.mark.parametrize("request_type", TYPES_FOR_TABLE)
@pytest.mark.parametrize(("action", "source", "target", "side"), TABLE)
def test_every_transition_in_the_table(
    request_type: RequestType, action: Action, source: Status, target: Status, side: Side
) -> None:
    assert run(action, request_type, source, side) is target


def test_the_table_is_exactly_the_machine() -> None:
    expected = {(a, s) for a, s, _, _ in TABLE}
    actual = {(a, s) for a, t in TRANSITIONS.items() for s in t.sources}
    assert actual == expected


@pytest.mark.parametrize(
    ("action", "source", "side"),
    [(a, s, side) for a, s, _, side in TABLE if a is not Action.CLOSE],
)
def test_wrong_side_is_permission_denied(action: Action, source: Status, side: Side) -> None:
    with pytest.raises(PermissionDenied) as caught:
        run(action, RequestType.PRESERVATION, source, other(side))
    assert str(side) in caught.value.detail


@pytest.mark.parametrize(
    ("action", "status"),
    [(a, s) for a, s in product(Action, Status) if s not in TRANSITIONS[a].sources],
)
def test_wrong_state_is_an_illegal_transition(action: Action, status: Status) -> None:
    side = TRANSITIONS[action].side or Side.SENDER
    with pytest.raises(IllegalTransition) as caught:
        run(action, RequestType.POLICE_INFORMATION, status, side)
    assert caught.value.status == 409
    assert f"in state '{status}'" in caught.value.detail


def test_illegal_transition_message_reads_well() -> None:
    with pytest.raises(
        IllegalTransition, match="a request in state 'draft' cannot be acknowledged"
    ):
        run(Action.ACKNOWLEDGE, RequestType.PRESERVATION, Status.DRAFT, Side.RECEIVER)


@pytest.mark.parametrize("request_type", list(RequestType))
@pytest.mark.parametrize("action", list(Action))
def test_nothing_leaves_closed(request_type: RequestType, action: Action) -> None:
    for side in Side:
        with pytest.raises(IllegalTransition):
            run(action, request_type, CLOSED, side, frozenset(Role))


# -- inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "source", "side"),
    [
        (Action.REQUEST_INFORMATION, Status.IN_PROGRESS, Side.RECEIVER),
        (Action.PROVIDE_INFORMATION, Status.NEEDS_INFORMATION, Side.SENDER),
        (Action.POSTPONE, Status.IN_PROGRESS, Side.RECEIVER),
        (Action.PARTIALLY_EXECUTE, Status.IN_PROGRESS, Side.RECEIVER),
        (Action.REFUSE, Status.IN_PROGRESS, Side.RECEIVER),
        (Action.WITHDRAW, Status.SUBMITTED, Side.SENDER),
    ],
)
@pytest.mark.parametrize("reasons", [None, "", "   "])
def test_missing_reasons_are_invalid_input(
    action: Action, source: Status, side: Side, reasons: str | None
) -> None:
    with pytest.raises(InvalidInput) as caught:
        run(action, RequestType.MLA_STORED, source, side, reasons=reasons)
    assert caught.value.field == "reasons"


def test_overlong_reasons_are_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        run(Action.PARTIALLY_EXECUTE, RequestType.MLA_STORED, Status.IN_PROGRESS, Side.RECEIVER,
            reasons="x" * 4001)  # fmt: skip


def test_withdrawing_a_draft_needs_no_reason() -> None:
    assert (
        run(Action.WITHDRAW, RequestType.MLA_STORED, Status.DRAFT, Side.SENDER, reasons=None)
        is Status.WITHDRAWN
    )


SPONTANEOUS_OPEN = {Status.DRAFT, Status.SUBMITTED, Status.ACKNOWLEDGED}


@pytest.mark.parametrize(
    ("request_type", "status"),
    [
        (t, s)
        for t, s in product(RequestType, sorted(OPEN_STATES))
        if t is not RequestType.SPONTANEOUS or s in SPONTANEOUS_OPEN
    ],
)
def test_withdraw_from_every_open_state(request_type: RequestType, status: Status) -> None:
    assert run(Action.WITHDRAW, request_type, status, Side.SENDER) is Status.WITHDRAWN


def test_postponement_needs_a_future_aware_date() -> None:
    args = (Action.POSTPONE, RequestType.MLA_STORED, Status.IN_PROGRESS, Side.RECEIVER)
    with pytest.raises(InvalidInput) as caught:
        run(*args, until=None)
    assert caught.value.field == "until"
    with pytest.raises(InvalidInput):
        run(*args, until=NOW - timedelta(minutes=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        run(*args, until=datetime(2026, 4, 1))  # noqa: DTZ001 - the naive value under test
    assert run(*args, until=LATER, now=None) is Status.POSTPONED


def test_a_date_is_only_given_when_postponing() -> None:
    with pytest.raises(InvalidInput) as caught:
        run(Action.EXECUTE, RequestType.MLA_STORED, Status.IN_PROGRESS, Side.RECEIVER, until=LATER)
    assert caught.value.field == "until"


REFUSE_ARGS = (Action.REFUSE, Status.IN_PROGRESS, Side.RECEIVER)


@pytest.mark.parametrize("ground", [None, "", "not_a_ground"])
def test_refusal_needs_a_known_ground(ground: str | None) -> None:
    with pytest.raises(InvalidInput) as caught:
        run(Action.REFUSE, RequestType.MLA_STORED, Status.IN_PROGRESS, Side.RECEIVER, ground=ground)
    assert caught.value.field == "ground"


@pytest.mark.parametrize("ground", ["bank_secrecy", "FISCAL_MATTERS"])
@pytest.mark.parametrize("request_type", [RequestType.MLA_STORED, RequestType.FREEZE_CONFISCATION])
def test_forbidden_grounds_are_refused_with_their_explanation(
    request_type: RequestType, ground: str
) -> None:
    with pytest.raises(InvalidInput, match=r"not a ground|sole ground"):
        run(Action.REFUSE, request_type, Status.IN_PROGRESS, Side.RECEIVER, ground=ground)


@pytest.mark.parametrize(
    ("request_type", "ground"),
    [
        (RequestType.PRESERVATION, RefusalGround.DISCRIMINATION),
        (RequestType.PRESERVATION, RefusalGround.DOMESTIC_LAW_BARS_MEASURE),
        (RequestType.TRAFFIC_DISCLOSURE, RefusalGround.DUAL_CRIMINALITY_LACKING),
        (RequestType.MLA_STORED, RefusalGround.DEATH_PENALTY_NO_ASSURANCE),
        (RequestType.INTERPOL_NOTICE, RefusalGround.POLITICAL_OFFENCE),
    ],
)
def test_ground_not_allowed_for_the_type(request_type: RequestType, ground: RefusalGround) -> None:
    with pytest.raises(InvalidInput, match="is not a ground for refusing"):
        run(Action.REFUSE, request_type, Status.IN_PROGRESS, Side.RECEIVER, ground=ground)


@pytest.mark.parametrize(
    "request_type", [t for t in RequestType if t is not RequestType.SPONTANEOUS]
)
def test_every_allowed_ground_refuses(request_type: RequestType) -> None:
    for ground in CATALOGUE[request_type].refusal_grounds:
        assert (
            run(Action.REFUSE, request_type, Status.SUBMITTED, Side.RECEIVER, ground=ground)
            is Status.REFUSED
        )


def test_a_ground_is_only_given_when_refusing() -> None:
    with pytest.raises(InvalidInput):
        run(
            Action.EXECUTE,
            RequestType.MLA_STORED,
            Status.IN_PROGRESS,
            Side.RECEIVER,
            ground=RefusalGround.OTHER,
        )


# -- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("request_type", CENTRAL)
def test_only_a_supervisor_refuses_central_authority_types(request_type: RequestType) -> None:
    for roles in ({Role.OFFICER}, {Role.ADMINISTRATOR}, {Role.ANALYST}):
        with pytest.raises(PermissionDenied):
            run(Action.REFUSE, request_type, Status.IN_PROGRESS, Side.RECEIVER, frozenset(roles))
    assert run(Action.REFUSE, request_type, Status.IN_PROGRESS, Side.RECEIVER) is Status.REFUSED


@pytest.mark.parametrize("request_type", [RequestType.PRESERVATION, RequestType.POLICE_INFORMATION])
def test_an_officer_refuses_police_types(request_type: RequestType) -> None:
    officer = frozenset({Role.OFFICER})
    assert run(Action.REFUSE, request_type, Status.SUBMITTED, Side.RECEIVER, officer) is (
        Status.REFUSED
    )


@pytest.mark.parametrize(
    ("request_type", "roles", "allowed"),
    [
        (RequestType.PRESERVATION, {Role.OFFICER}, True),
        (RequestType.POLICE_INFORMATION, {Role.OFFICER}, True),
        (RequestType.MLA_STORED, {Role.OFFICER}, False),
        (RequestType.EXTRADITION, {Role.OFFICER}, False),
        (RequestType.MLA_STORED, {Role.SUPERVISOR}, True),
        (RequestType.MLA_STORED, {Role.ADMINISTRATOR}, True),
        (RequestType.PRESERVATION, {Role.ANALYST}, False),
        (RequestType.PRESERVATION, {Role.AUDITOR}, False),
        (RequestType.PRESERVATION, set(), False),
        (RequestType.MLA_STORED, {Role.OFFICER, Role.SUPERVISOR}, True),
    ],
)
def test_submit_roles(request_type: RequestType, roles: set[Role], allowed: bool) -> None:
    args = (Action.SUBMIT, request_type, Status.DRAFT, Side.SENDER, frozenset(roles))
    if allowed:
        assert run(*args) is Status.SUBMITTED
    else:
        with pytest.raises(PermissionDenied, match="needs one of the roles"):
            run(*args)


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR])
def test_read_only_roles_never_act(role: Role) -> None:
    with pytest.raises(PermissionDenied):
        run(
            Action.ACKNOWLEDGE,
            RequestType.POLICE_INFORMATION,
            Status.SUBMITTED,
            Side.RECEIVER,
            frozenset({role}),
        )


# -- spontaneous information ---------------------------------------------------------------


def test_spontaneous_flow() -> None:
    spontaneous = RequestType.SPONTANEOUS
    officer = frozenset({Role.OFFICER})
    status = run(Action.SUBMIT, spontaneous, Status.DRAFT, Side.SENDER, officer)
    status = run(Action.ACKNOWLEDGE, spontaneous, status, Side.RECEIVER, officer)
    assert status is Status.ACKNOWLEDGED
    for side in Side:
        assert run(Action.CLOSE, spontaneous, status, side, officer) is Status.CLOSED
    assert run(Action.CLOSE, spontaneous, Status.WITHDRAWN, Side.SENDER) is Status.CLOSED


@pytest.mark.parametrize(
    "action",
    [
        a
        for a in Action
        if a not in {Action.SUBMIT, Action.ACKNOWLEDGE, Action.WITHDRAW, Action.CLOSE}
    ],
)
def test_spontaneous_information_allows_nothing_else(action: Action) -> None:
    for status, side in product(Status, Side):
        with pytest.raises(IllegalTransition):
            run(action, RequestType.SPONTANEOUS, status, side, frozenset(Role))
    with pytest.raises(IllegalTransition, match="type 'spontaneous'"):
        run(action, RequestType.SPONTANEOUS, Status.IN_PROGRESS, Side.RECEIVER)


def test_other_types_cannot_close_from_acknowledged() -> None:
    with pytest.raises(IllegalTransition):
        run(Action.CLOSE, RequestType.POLICE_INFORMATION, Status.ACKNOWLEDGED, Side.RECEIVER)


# -- available_actions agrees with check -----------------------------------------------------


def passes(
    action: Action,
    request_type: RequestType,
    status: Status,
    side: Side,
    roles: frozenset[Role],
) -> bool:
    try:
        run(action, request_type, status, side, roles)
    except (IllegalTransition, PermissionDenied):
        return False
    return True


@pytest.mark.parametrize("request_type", list(RequestType))
def test_available_actions_match_check_everywhere(request_type: RequestType) -> None:
    for status, side, roles in product(Status, Side, ROLE_SETS):
        offered = available_actions(
            request_type=request_type, status=status, side=side, roles=roles
        )
        allowed = [a for a in Action if passes(a, request_type, status, side, roles)]
        assert offered == allowed, (status, side, sorted(roles))


def test_available_actions_examples() -> None:
    supervisor = frozenset({Role.SUPERVISOR})
    officer = frozenset({Role.OFFICER})
    mla = RequestType.MLA_STORED
    assert available_actions(
        request_type=mla, status=Status.IN_PROGRESS, side=Side.RECEIVER, roles=supervisor
    ) == [
        Action.REQUEST_INFORMATION,
        Action.POSTPONE,
        Action.EXECUTE,
        Action.PARTIALLY_EXECUTE,
        Action.REFUSE,
    ]
    assert Action.REFUSE not in available_actions(
        request_type=mla, status=Status.IN_PROGRESS, side=Side.RECEIVER, roles=officer
    )
    assert available_actions(
        request_type=mla, status=Status.DRAFT, side=Side.SENDER, roles=officer
    ) == [Action.WITHDRAW]
    assert (
        available_actions(
            request_type=mla, status=Status.CLOSED, side=Side.SENDER, roles=frozenset(Role)
        )
        == []
    )


# -- extension, labels -----------------------------------------------------------------------


@pytest.mark.parametrize(("request_type", "status"), list(product(RequestType, Status)))
def test_can_extend(request_type: RequestType, status: Status) -> None:
    expected = request_type is RequestType.PRESERVATION and status in {
        Status.EXECUTED,
        Status.PARTIALLY_EXECUTED,
    }
    assert can_extend(request_type, status) is expected


def test_labels_and_outcomes() -> None:
    assert set(STATUS_LABELS) == set(Status)
    assert set(ACTION_LABELS) == set(Action)
    assert set(SIDE_LABELS) == set(Side)
    assert OUTCOME_OF[Status.PARTIALLY_EXECUTED] == "partial"
    assert set(OUTCOME_OF) == FINAL_OUTCOMES | {Status.POSTPONED, Status.NEEDS_INFORMATION}
    assert OPEN_STATES.isdisjoint(FINAL_OUTCOMES)
    assert CLOSED not in OPEN_STATES | FINAL_OUTCOMES


def test_plain_string_codes_from_a_row_are_accepted() -> None:
    after = check(
        "refuse",  # type: ignore[arg-type]
        request_type="mla_stored",  # type: ignore[arg-type]
        status="in_progress",  # type: ignore[arg-type]
        side="receiver",  # type: ignore[arg-type]
        roles=["supervisor", "no_such_role"],
        ground="political_offence",
        reasons="Political offence under our law.",
    )
    assert after is Status.REFUSED
    with pytest.raises(PermissionDenied):
        run(Action.REFUSE, RequestType.MLA_STORED, Status.IN_PROGRESS, Side.RECEIVER,
            roles=["officer"])  # type: ignore[arg-type]  # fmt: skip
    assert available_actions(
        request_type=RequestType.SPONTANEOUS, status=Status.SUBMITTED, side=Side.RECEIVER,
        roles=["officer"],
    ) == [Action.ACKNOWLEDGE]  # fmt: skip

"""The life of a request, as a state machine both nodes agree on. Pure.

A request moves through the same states on the sending and on the receiving node; each
action belongs to one side (the sender submits, provides information and withdraws; the
receiver acknowledges, works, postpones, executes and refuses; either side closes). The
table :data:`TRANSITIONS` is the whole machine: the service calls :func:`check` before it
changes a row, and the web layer calls :func:`available_actions` to draw the buttons, so a
button is shown exactly when pressing it would be allowed (a test checks that for every
combination).

Rules beyond the table:

* SUBMIT needs a role in the type's ``submit_roles``; supervisors and administrators may
  always submit. REFUSE needs a role in the type's ``refuse_roles``: for the central-authority
  types (MLA, extradition, confiscation, joint teams) that is a supervisor only, because a
  refusal is a legal decision of the requested state.
* Analysts and auditors never act on a request (read-only here).
* A refusal needs a coded ground the type admits (``catalogue``) and written reasons (UN
  Art 40, recalled: reasons must be given). Bank secrecy and fiscal grounds are named and
  refused (``catalogue.FORBIDDEN_GROUNDS``).
* Spontaneous information expects no answer: it can only be submitted, acknowledged,
  withdrawn and closed (also straight from acknowledged).
* Extending a preservation is not a transition: it is a new request linked with
  ``LinkKind.EXTENDS``; :func:`can_extend` says when one may be created.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from crossborder.auth.permissions import Role
from crossborder.core.errors import Conflict, InvalidInput, PermissionDenied
from crossborder.directory.taxonomy import N_
from crossborder.requests.catalogue import (
    CATALOGUE,
    FORBIDDEN_GROUNDS,
    RefusalGround,
    RequestType,
)


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    NEEDS_INFORMATION = "needs_information"
    POSTPONED = "postponed"
    EXECUTED = "executed"
    PARTIALLY_EXECUTED = "partially_executed"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    CLOSED = "closed"


OPEN_STATES: frozenset[Status] = frozenset(
    {
        Status.DRAFT,
        Status.SUBMITTED,
        Status.ACKNOWLEDGED,
        Status.IN_PROGRESS,
        Status.NEEDS_INFORMATION,
        Status.POSTPONED,
    }
)
FINAL_OUTCOMES: frozenset[Status] = frozenset(
    {Status.EXECUTED, Status.PARTIALLY_EXECUTED, Status.REFUSED, Status.WITHDRAWN}
)
CLOSED = Status.CLOSED

STATUS_LABELS: dict[Status, str] = {
    Status.DRAFT: N_("Draft"),
    Status.SUBMITTED: N_("Submitted"),
    Status.ACKNOWLEDGED: N_("Acknowledged"),
    Status.IN_PROGRESS: N_("In progress"),
    Status.NEEDS_INFORMATION: N_("More information needed"),
    Status.POSTPONED: N_("Postponed"),
    Status.EXECUTED: N_("Executed"),
    Status.PARTIALLY_EXECUTED: N_("Partially executed"),
    Status.REFUSED: N_("Refused"),
    Status.WITHDRAWN: N_("Withdrawn"),
    Status.CLOSED: N_("Closed"),
}

#: Outcome codes (domain.md §7) as exchanged with partners and shown in reports.
OUTCOME_OF: dict[Status, str] = {
    Status.EXECUTED: "executed",
    Status.PARTIALLY_EXECUTED: "partial",
    Status.REFUSED: "refused",
    Status.POSTPONED: "postponed",
    Status.NEEDS_INFORMATION: "needs_information",
    Status.WITHDRAWN: "withdrawn",
}


class Action(StrEnum):
    SUBMIT = "submit"
    ACKNOWLEDGE = "acknowledge"
    START = "start"
    REQUEST_INFORMATION = "request_information"
    PROVIDE_INFORMATION = "provide_information"
    POSTPONE = "postpone"
    RESUME = "resume"
    EXECUTE = "execute"
    PARTIALLY_EXECUTE = "partially_execute"
    REFUSE = "refuse"
    WITHDRAW = "withdraw"
    CLOSE = "close"


ACTION_LABELS: dict[Action, str] = {
    Action.SUBMIT: N_("Submit"),
    Action.ACKNOWLEDGE: N_("Acknowledge receipt"),
    Action.START: N_("Start work"),
    Action.REQUEST_INFORMATION: N_("Ask for more information"),
    Action.PROVIDE_INFORMATION: N_("Provide information"),
    Action.POSTPONE: N_("Postpone"),
    Action.RESUME: N_("Resume"),
    Action.EXECUTE: N_("Mark as executed"),
    Action.PARTIALLY_EXECUTE: N_("Mark as partially executed"),
    Action.REFUSE: N_("Refuse"),
    Action.WITHDRAW: N_("Withdraw"),
    Action.CLOSE: N_("Close"),
}

# What "cannot be …" says in an IllegalTransition message.
_CANNOT_BE: dict[Action, str] = {
    Action.SUBMIT: "submitted",
    Action.ACKNOWLEDGE: "acknowledged",
    Action.START: "started",
    Action.REQUEST_INFORMATION: "sent a request for information",
    Action.PROVIDE_INFORMATION: "answered with information",
    Action.POSTPONE: "postponed",
    Action.RESUME: "resumed",
    Action.EXECUTE: "executed",
    Action.PARTIALLY_EXECUTE: "partially executed",
    Action.REFUSE: "refused",
    Action.WITHDRAW: "withdrawn",
    Action.CLOSE: "closed",
}


class Side(StrEnum):
    SENDER = "sender"
    RECEIVER = "receiver"


SIDE_LABELS: dict[Side, str] = {
    Side.SENDER: N_("Requesting side"),
    Side.RECEIVER: N_("Requested side"),
}


class IllegalTransition(Conflict):
    """The action does not apply to a request in this state (or of this type)."""

    code = "illegal-transition"
    title = "Illegal transition"


@dataclass(frozen=True)
class Transition:
    """One row of the machine. ``side`` None: either side may take the action."""

    action: Action
    sources: frozenset[Status]
    target: Status
    side: Side | None
    needs_reasons: bool = False
    needs_until: bool = False


def _from(*states: Status) -> frozenset[Status]:
    return frozenset(states)


_S = Status
TRANSITIONS: dict[Action, Transition] = {
    t.action: t
    for t in (
        Transition(Action.SUBMIT, _from(_S.DRAFT), _S.SUBMITTED, Side.SENDER),
        Transition(Action.ACKNOWLEDGE, _from(_S.SUBMITTED), _S.ACKNOWLEDGED, Side.RECEIVER),
        Transition(Action.START, _from(_S.ACKNOWLEDGED), _S.IN_PROGRESS, Side.RECEIVER),
        Transition(
            Action.REQUEST_INFORMATION,
            _from(_S.ACKNOWLEDGED, _S.IN_PROGRESS),
            _S.NEEDS_INFORMATION,
            Side.RECEIVER,
            needs_reasons=True,
        ),
        Transition(
            Action.PROVIDE_INFORMATION,
            _from(_S.NEEDS_INFORMATION),
            _S.IN_PROGRESS,
            Side.SENDER,
            needs_reasons=True,
        ),
        Transition(
            Action.POSTPONE,
            _from(_S.ACKNOWLEDGED, _S.IN_PROGRESS),
            _S.POSTPONED,
            Side.RECEIVER,
            needs_reasons=True,
            needs_until=True,
        ),
        Transition(Action.RESUME, _from(_S.POSTPONED), _S.IN_PROGRESS, Side.RECEIVER),
        Transition(Action.EXECUTE, _from(_S.IN_PROGRESS), _S.EXECUTED, Side.RECEIVER),
        Transition(
            Action.PARTIALLY_EXECUTE,
            _from(_S.IN_PROGRESS),
            _S.PARTIALLY_EXECUTED,
            Side.RECEIVER,
            needs_reasons=True,
        ),
        Transition(
            Action.REFUSE,
            _from(
                _S.SUBMITTED, _S.ACKNOWLEDGED, _S.IN_PROGRESS, _S.NEEDS_INFORMATION, _S.POSTPONED
            ),
            _S.REFUSED,
            Side.RECEIVER,
            needs_reasons=True,
        ),
        # Reasons are required except from a draft (checked in _check_inputs).
        Transition(Action.WITHDRAW, OPEN_STATES, _S.WITHDRAWN, Side.SENDER),
        Transition(Action.CLOSE, FINAL_OUTCOMES, _S.CLOSED, None),
    )
}

#: Spontaneous information expects no answer: only these actions apply to it.
SPONTANEOUS_ACTIONS: frozenset[Action] = frozenset(
    {Action.SUBMIT, Action.ACKNOWLEDGE, Action.WITHDRAW, Action.CLOSE}
)

#: Roles that may act on a request at all; analysts and auditors only read.
ACTING_ROLES: frozenset[Role] = frozenset({Role.OFFICER, Role.SUPERVISOR, Role.ADMINISTRATOR})

#: Roles that may submit a request of any type.
ALWAYS_SUBMIT: frozenset[Role] = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR})

MAX_REASONS = 4000


def _sources(action: Action, request_type: RequestType) -> frozenset[Status]:
    """States the action applies to for this type (spontaneous: acknowledged → closed too)."""
    sources = TRANSITIONS[action].sources
    if request_type is RequestType.SPONTANEOUS:
        if action not in SPONTANEOUS_ACTIONS:
            return frozenset()
        if action is Action.CLOSE:
            return sources | {Status.ACKNOWLEDGED}
    return sources


def _allowed_roles(action: Action, request_type: RequestType) -> frozenset[Role]:
    spec = CATALOGUE[request_type]
    if action is Action.SUBMIT:
        return (spec.submit_roles | ALWAYS_SUBMIT) & ACTING_ROLES
    if action is Action.REFUSE:
        return spec.refuse_roles & ACTING_ROLES
    return ACTING_ROLES


def _roles(roles: Iterable[Role | str]) -> frozenset[Role]:
    """The known roles among ``roles`` (codes or enum members); unknown codes grant nothing."""
    known = {str(role) for role in Role}
    return frozenset(Role(role) for role in roles if str(role) in known)


def _check_state(action: Action, request_type: RequestType, status: Status) -> Transition:
    if status not in _sources(action, request_type):
        if not _sources(action, request_type):
            raise IllegalTransition(
                f"a request of type '{request_type}' cannot be {_CANNOT_BE[action]}"
            )
        raise IllegalTransition(f"a request in state '{status}' cannot be {_CANNOT_BE[action]}")
    return TRANSITIONS[action]


def _check_actor(
    transition: Transition, request_type: RequestType, side: Side, roles: frozenset[Role]
) -> None:
    if transition.side is not None and side is not transition.side:
        raise PermissionDenied(
            f"only the {transition.side} side may take the action '{transition.action}'"
        )
    allowed = _allowed_roles(transition.action, request_type)
    if not roles & allowed:
        names = ", ".join(sorted(allowed)) or "nobody"
        raise PermissionDenied(
            f"the action '{transition.action}' on a request of type '{request_type}' needs "
            f"one of the roles: {names}"
        )


def _reasons(reasons: str | None) -> str:
    text = (reasons or "").strip()
    if not text:
        raise InvalidInput("give the reasons (or the message) for this action", field="reasons")
    if len(text) > MAX_REASONS:
        raise InvalidInput(f"reasons are limited to {MAX_REASONS} characters", field="reasons")
    return text


def _ground(request_type: RequestType, ground: str | None) -> RefusalGround:
    if ground is None or not ground.strip():
        raise InvalidInput("a refusal needs a ground", field="ground")
    code = ground.strip().lower()
    if code in FORBIDDEN_GROUNDS:
        raise InvalidInput(FORBIDDEN_GROUNDS[code], field="ground")
    try:
        parsed = RefusalGround(code)
    except ValueError:
        raise InvalidInput(f"unknown refusal ground '{ground}'", field="ground") from None
    if parsed not in CATALOGUE[request_type].refusal_grounds:
        raise InvalidInput(
            f"'{parsed}' is not a ground for refusing a request of type '{request_type}'",
            field="ground",
        )
    return parsed


def _until(until: datetime | None, now: datetime | None) -> None:
    if until is None:
        raise InvalidInput("say until when the request is postponed", field="until")
    for value in (until, now):
        if value is not None and value.utcoffset() is None:
            raise ValueError("datetimes must be timezone-aware")
    if now is not None and until <= now:
        raise InvalidInput("a postponement must end in the future", field="until")


def _check_inputs(
    transition: Transition,
    request_type: RequestType,
    status: Status,
    *,
    ground: str | None,
    reasons: str | None,
    until: datetime | None,
    now: datetime | None,
) -> None:
    action = transition.action
    if ground is not None and action is not Action.REFUSE:
        raise InvalidInput("a ground is given only when refusing", field="ground")
    if until is not None and not transition.needs_until:
        raise InvalidInput("a date is given only when postponing", field="until")
    if action is Action.REFUSE:
        _ground(request_type, ground)
    if transition.needs_reasons or (action is Action.WITHDRAW and status is not Status.DRAFT):
        _reasons(reasons)
    if transition.needs_until:
        _until(until, now)


def check(
    action: Action,
    *,
    request_type: RequestType,
    status: Status,
    side: Side,
    roles: Iterable[Role | str],
    ground: str | None = None,
    reasons: str | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> Status:
    """Return the status ``action`` leads to, or raise why it may not be taken.

    Raises :class:`IllegalTransition` (409) when the state or type does not allow the action,
    ``PermissionDenied`` (403) for the wrong side or role, ``InvalidInput`` (422) for a
    missing or inadmissible ground, reason or postponement date. ``now``, when given, makes
    a postponement date in the past invalid. Nothing is changed: the caller applies the result.
    Codes given as plain strings are accepted (a row's columns) and converted first.
    """
    action, request_type = Action(action), RequestType(request_type)
    status, side = Status(status), Side(side)
    transition = _check_state(action, request_type, status)
    _check_actor(transition, request_type, side, _roles(roles))
    _check_inputs(
        transition, request_type, status, ground=ground, reasons=reasons, until=until, now=now
    )
    return transition.target


def available_actions(
    *, request_type: RequestType, status: Status, side: Side, roles: Iterable[Role | str]
) -> list[Action]:
    """Actions this side and these roles may take now (the inputs are asked for afterwards)."""
    request_type, status, side = RequestType(request_type), Status(status), Side(side)
    held = _roles(roles)
    result = []
    for action, transition in TRANSITIONS.items():
        if status not in _sources(action, request_type):
            continue
        if transition.side is not None and side is not transition.side:
            continue
        if held & _allowed_roles(action, request_type):
            result.append(action)
    return result


def can_extend(request_type: RequestType, status: Status) -> bool:
    """Whether an extension (a new request linked EXTENDS) may be made for this request."""
    return CATALOGUE[RequestType(request_type)].can_extend and Status(status) in {
        Status.EXECUTED,
        Status.PARTIALLY_EXECUTED,
    }

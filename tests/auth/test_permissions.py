"""The one place where roles become permissions: every grant and every denial."""

from __future__ import annotations

import pytest

from crossborder.auth.permissions import (
    ROLE_PERMISSIONS,
    TOKEN_SCOPES,
    Permission,
    Principal,
    Role,
    require,
)
from crossborder.core.errors import PermissionDenied

P = Permission
BASE = {P.DIRECTORY_READ, P.DIRECTORY_CONTACTS_READ, P.POLICY_EVALUATE, P.TOKENS_MANAGE_OWN}
IDS = {P.IDENTIFIERS_READ, P.IDENTIFIERS_WRITE}
EXPECTED: dict[Role, set[Permission]] = {
    Role.OFFICER: BASE | {P.REQUESTS_READ, P.REQUESTS_WRITE, P.INTEL_READ, P.MATCHING_QUERY} | IDS,
    Role.SUPERVISOR: BASE
    | {P.REQUESTS_READ, P.REQUESTS_WRITE, P.INTEL_READ, P.MATCHING_QUERY}
    | IDS,
    Role.ANALYST: BASE | {P.REQUESTS_READ, P.INTEL_READ, P.INTEL_WRITE} | IDS,
    Role.AUDITOR: {P.DIRECTORY_READ, P.AUDIT_READ, P.REQUESTS_READ, P.REQUESTS_AUDIT_ALL},
    Role.ADMINISTRATOR: BASE
    | {
        P.DIRECTORY_WRITE,
        P.USERS_MANAGE,
        P.AUDIT_READ,
        P.FEDERATION_MANAGE,
        P.IDENTIFIERS_MANAGE,
        P.INTEL_MANAGE,
        P.MATCHING_MANAGE,
    },
}


def principal(*roles: Role, scopes: frozenset[str] | None = None) -> Principal:
    return Principal(
        user_id=1,
        username="u",
        authority_id=1,
        roles=frozenset(roles),
        via="token" if scopes is not None else "session",
        scopes=scopes,
    )


def test_the_matrix_is_exactly_what_the_docs_say() -> None:
    assert {role: set(perms) for role, perms in ROLE_PERMISSIONS.items()} == EXPECTED


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_each_role_is_granted_or_denied_each_permission(role: Role, permission: Permission) -> None:
    actor = principal(role)
    if permission in EXPECTED[role]:
        require(actor, permission)
    else:
        with pytest.raises(PermissionDenied, match=permission.value):
            require(actor, permission)


def test_no_role_means_no_permission() -> None:
    assert principal().permissions == frozenset()


def test_roles_add_up() -> None:
    assert principal(Role.AUDITOR, Role.OFFICER).permissions == frozenset(
        EXPECTED[Role.AUDITOR] | EXPECTED[Role.OFFICER]
    )


def test_token_scopes_narrow_and_never_widen() -> None:
    narrowed = principal(Role.ADMINISTRATOR, scopes=frozenset({"directory:read"}))
    assert narrowed.permissions == frozenset({P.DIRECTORY_READ})
    widened = principal(Role.AUDITOR, scopes=frozenset({"directory:write", "audit:read"}))
    assert widened.permissions == frozenset({P.AUDIT_READ})
    nothing = principal(Role.ADMINISTRATOR, scopes=frozenset())
    assert nothing.permissions == frozenset()


def test_every_permission_is_a_token_scope() -> None:
    assert {p.value for p in Permission} == TOKEN_SCOPES

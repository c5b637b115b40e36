"""Who may do what: the one place where roles turn into permissions (pure, no database).

Every route and service asks ``require(principal, Permission.X)``; nothing else inspects
roles. API tokens narrow a user's permissions to the token's scopes, never widen them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from crossborder.core.errors import PermissionDenied


class Role(StrEnum):
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    ANALYST = "analyst"
    AUDITOR = "auditor"
    ADMINISTRATOR = "administrator"


class Permission(StrEnum):
    DIRECTORY_READ = "directory:read"
    DIRECTORY_CONTACTS_READ = "directory:contacts:read"  # personal data of contact points
    DIRECTORY_WRITE = "directory:write"
    POLICY_EVALUATE = "policy:evaluate"
    AUDIT_READ = "audit:read"
    USERS_MANAGE = "users:manage"
    TOKENS_MANAGE_OWN = "tokens:manage-own"
    # Cooperation requests: need-to-know still limits them to the two authorities on a request.
    REQUESTS_READ = "requests:read"
    REQUESTS_WRITE = "requests:write"  # draft, act on, message, attach
    REQUESTS_AUDIT_ALL = "requests:audit-all"  # auditors see every request on the node
    FEDERATION_MANAGE = "federation:manage"  # peers, outbox and inbox of this node
    # Identifiers: correlation is still limited by need-to-know on the records holding them.
    IDENTIFIERS_READ = "identifiers:read"  # look up, see correlations, graph
    IDENTIFIERS_WRITE = "identifiers:write"  # identifier sets, bulk import
    IDENTIFIERS_MANAGE = "identifiers:manage"  # the node's own warning list, re-indexing
    # Threat intelligence: collection grants and markings (TLP, handling codes) still apply.
    INTEL_READ = "intel:read"
    INTEL_WRITE = "intel:write"  # add objects, import bundles
    INTEL_MANAGE = "intel:manage"  # collections and who may read or write them
    # Hit/no-hit with partners: asking needs a purpose and a case; answering is the node's.
    MATCHING_QUERY = "matching:query"  # ask partners which identifiers they hold
    MATCHING_MANAGE = "matching:manage"  # what this node answers: limits, opt-outs, refresh


_EVERYONE = {
    Permission.DIRECTORY_READ,
    Permission.DIRECTORY_CONTACTS_READ,
    Permission.POLICY_EVALUATE,
    Permission.TOKENS_MANAGE_OWN,
}

_CASEWORK = {
    Permission.REQUESTS_READ,
    Permission.REQUESTS_WRITE,
    Permission.IDENTIFIERS_READ,
    Permission.IDENTIFIERS_WRITE,
    Permission.INTEL_READ,
    Permission.MATCHING_QUERY,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OFFICER: frozenset(_EVERYONE | _CASEWORK),
    Role.SUPERVISOR: frozenset(_EVERYONE | _CASEWORK),
    Role.ANALYST: frozenset(
        _EVERYONE
        | {
            Permission.REQUESTS_READ,
            Permission.IDENTIFIERS_READ,
            Permission.IDENTIFIERS_WRITE,
            Permission.INTEL_READ,
            Permission.INTEL_WRITE,
        }
    ),
    Role.AUDITOR: frozenset(
        {
            Permission.DIRECTORY_READ,
            Permission.AUDIT_READ,
            Permission.REQUESTS_READ,
            Permission.REQUESTS_AUDIT_ALL,
        }
    ),
    # Administrators run the node; they do not work cases (least privilege).
    Role.ADMINISTRATOR: frozenset(
        _EVERYONE
        | {
            Permission.DIRECTORY_WRITE,
            Permission.USERS_MANAGE,
            Permission.AUDIT_READ,
            Permission.FEDERATION_MANAGE,
            Permission.IDENTIFIERS_MANAGE,
            Permission.INTEL_MANAGE,
            Permission.MATCHING_MANAGE,
        }
    ),
}

# Scopes an API token may carry: exactly the permission names.
TOKEN_SCOPES: frozenset[str] = frozenset(p.value for p in Permission)


@dataclass(frozen=True)
class Principal:
    """The acting user (through a browser session or an API token)."""

    user_id: int
    username: str
    authority_id: int
    roles: frozenset[Role]
    via: str = "session"  # "session" | "token" | "system"
    token_id: int | None = None
    scopes: frozenset[str] | None = None  # None: not narrowed (session)
    ip: str | None = field(default=None, compare=False)

    @property
    def permissions(self) -> frozenset[Permission]:
        granted: set[Permission] = set()
        for role in self.roles:
            granted |= ROLE_PERMISSIONS.get(role, frozenset())
        if self.scopes is not None:
            granted = {p for p in granted if p.value in self.scopes}
        return frozenset(granted)

    def has(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def label(self) -> str:
        return self.username if self.via != "token" else f"{self.username} (token {self.token_id})"


def require(principal: Principal, permission: Permission) -> None:
    if not principal.has(permission):
        raise PermissionDenied(f"this action needs the permission '{permission.value}'")


SYSTEM = Principal(
    user_id=0,
    username="system",
    authority_id=0,
    roles=frozenset({Role.ADMINISTRATOR}),
    via="system",
)

"""Who may see the records identifiers occur in: one resolver per kind of scope.

An occurrence belongs to a *scope* — the record whose need-to-know governs it (a request for
its own identifiers, its messages and its attachments; an identifier set; later an
intelligence object). Correlation asks the scope's resolver which of a batch of scopes the
actor may open, and how to name and link the ones they may. The capability that owns the
records provides the resolver; selectors never read another capability's tables itself.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from crossborder.auth.permissions import Principal


@dataclass(frozen=True)
class ScopeLabel:
    label: str  # shown only to those who may see the scope
    url: str | None


class ScopeResolver(Protocol):
    def visible(self, session: Session, actor: Principal, ids: Collection[str]) -> set[str]:
        """The ids among ``ids`` that ``actor`` may open."""
        ...

    def describe(self, session: Session, ids: Collection[str]) -> dict[str, ScopeLabel]:
        """Labels and links for ``ids`` (called only with ids the actor may see)."""
        ...


class DisclosingResolver(ScopeResolver, Protocol):
    def disclosable(self, session: Session, ids: Collection[str]) -> set[str]:
        """The ids whose mere existence may be told to others ("contact X"); a resolver
        without this method lets every scope be named."""
        ...


_RESOLVERS: dict[str, ScopeResolver] = {}


def register(scope_type: str, resolver: ScopeResolver) -> None:
    _install_builtin()
    _RESOLVERS[scope_type] = resolver


_INSTALLED: list[bool] = []


def _install_builtin() -> None:
    if _INSTALLED:
        return
    _INSTALLED.append(True)
    # Imported here, not at module level: those capabilities depend on selectors, not the reverse.
    from crossborder.intel.service import IntelScopes
    from crossborder.requests.identifiers import RequestScopes
    from crossborder.selectors.sets import SetScopes

    _RESOLVERS.setdefault("request", RequestScopes())
    _RESOLVERS.setdefault("set", SetScopes())
    _RESOLVERS.setdefault("intel", IntelScopes())


def resolver(scope_type: str) -> ScopeResolver | None:
    _install_builtin()
    return _RESOLVERS.get(scope_type)


def visible(
    session: Session, actor: Principal, scopes: Collection[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which (scope_type, scope_id) pairs the actor may see; unknown scope types: none."""
    by_type: dict[str, list[str]] = {}
    for scope_type, scope_id in scopes:
        by_type.setdefault(scope_type, []).append(scope_id)
    allowed: set[tuple[str, str]] = set()
    for scope_type, ids in by_type.items():
        found = resolver(scope_type)
        if found is not None:
            allowed |= {(scope_type, i) for i in found.visible(session, actor, ids)}
    return allowed


def describe(
    session: Session, scopes: Collection[tuple[str, str]]
) -> dict[tuple[str, str], ScopeLabel]:
    by_type: dict[str, list[str]] = {}
    for scope_type, scope_id in scopes:
        by_type.setdefault(scope_type, []).append(scope_id)
    labels: dict[tuple[str, str], ScopeLabel] = {}
    for scope_type, ids in by_type.items():
        found = resolver(scope_type)
        if found is not None:
            labels |= {(scope_type, i): lab for i, lab in found.describe(session, ids).items()}
    return labels


def disclosable(session: Session, scopes: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which scopes may be named to someone who may not open them (TLP:RED and
    TLP:AMBER+STRICT intelligence may not: even its existence stays with its holders)."""
    by_type: dict[str, list[str]] = {}
    for scope_type, scope_id in scopes:
        by_type.setdefault(scope_type, []).append(scope_id)
    allowed: set[tuple[str, str]] = set()
    for scope_type, ids in by_type.items():
        found = resolver(scope_type)
        if found is None:
            continue
        check = getattr(found, "disclosable", None)
        names = set(ids) if check is None else check(session, ids)
        allowed |= {(scope_type, i) for i in names}
    return allowed

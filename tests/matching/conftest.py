"""Two nodes on loopback (VN asks, AU answers) with a police MoU in both directories."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from crossborder.auth.permissions import Principal, Role
from crossborder.db.session import unit_of_work
from crossborder.federation.client import LocalTransport
from crossborder.matching import exchange
from crossborder.selectors import sets
from tests.federation.test_two_nodes import LocalNode, nodes  # noqa: F401 - fixture
from tests.requests.test_federated import _directory


def person(authority_id: int, role: Role, name: str) -> Principal:
    return Principal(user_id=1, username=name, authority_id=authority_id, roles=frozenset({role}))


def fill_set(node: LocalNode, actor: Principal, rows: Sequence[str], *, name: str = "case") -> str:
    """An identifier set of ``rows`` (CSV lines after the header) kept by the actor's authority."""
    text = "type,value,port,seen_from,seen_until\n" + "\n".join(rows) + "\n"
    with node.session() as s, unit_of_work(s):
        item = sets.create_set(s, actor, name=name)
        sets.import_csv(s, actor, item, lambda: io.StringIO(text))
        return item.public_id


@pytest.fixture
def pair(nodes: Callable[[str], LocalNode]) -> dict[str, Any]:  # noqa: F811
    exchange.register()
    vn, au = nodes("vn-mps"), nodes("au-afp")
    vn.pin(au)
    au.pin(vn)
    transport = LocalTransport()
    for n in (vn, au):
        transport.add(n.url, n.settings, n.factory)
    vn_ids = _directory(vn, local="VN-A05", remote=("AU-AFP", au))
    au_ids = _directory(au, local="AU-AFP", remote=("VN-A05", vn))
    return {
        "vn": vn,
        "au": au,
        "t": transport,
        "linh": person(vn_ids["local"], Role.OFFICER, "linh"),
        "jack": person(au_ids["local"], Role.OFFICER, "jack"),
        "au_admin": person(au_ids["local"], Role.ADMINISTRATOR, "mark"),
        "vn_ids": vn_ids,
        "au_ids": au_ids,
    }

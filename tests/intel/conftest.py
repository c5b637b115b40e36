"""Scene for the intelligence tests: three authorities, their users, a collection of VN's."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from crossborder.auth import service as auth_service
from crossborder.auth.models import ApiToken, User
from crossborder.auth.permissions import Principal
from crossborder.directory.models import Authority
from crossborder.intel import service
from crossborder.intel.models import IntelCollection
from tests.cli.conftest import node_env, run
from tests.fixtures.web import TestClient, make_client
from tests.requests.conftest import as_user

__all__ = ["as_user", "node_env", "run"]


@dataclass
class Scene:
    vn: Authority
    au: Authority
    ma: Authority
    admin: Principal  # VN administrator: manages VN's collections
    analyst: Principal  # VN analyst: reads and writes
    officer: Principal  # VN officer: reads
    au_admin: Principal
    au_analyst: Principal
    au_officer: Principal
    ma_officer: Principal
    feed: IntelCollection  # VN's collection "vn-feed"
    users: dict[int, User]


@pytest.fixture
def scene(
    db: Session, make_authority: Callable[..., Authority], make_user: Callable[..., User]
) -> Scene:
    vn = make_authority("VN", name="A05", short_name="VN-A05")
    au = make_authority("AU", name="AFP", short_name="AU-AFP", time_zone="Australia/Sydney")
    ma = make_authority("MA", name="BNPJ", short_name="MA-BNPJ", time_zone="Africa/Casablanca")
    users: dict[int, User] = {}

    def person(authority: Authority, role: str) -> Principal:
        user = make_user(roles=(role,), authority_id=authority.id)
        users[user.id] = user
        return auth_service.principal_for(user)

    admin = person(vn, "administrator")
    feed = service.create_collection(db, admin, title="VN ransomware feed", alias="vn-feed")
    return Scene(
        vn=vn,
        au=au,
        ma=ma,
        admin=admin,
        analyst=person(vn, "analyst"),
        officer=person(vn, "officer"),
        au_admin=person(au, "administrator"),
        au_analyst=person(au, "analyst"),
        au_officer=person(au, "officer"),
        ma_officer=person(ma, "officer"),
        feed=feed,
        users=users,
    )


@pytest.fixture
def partner(
    db: Session,
    scene: Scene,
    make_user: Callable[..., User],
    make_token: Callable[..., tuple[ApiToken, str]],
) -> tuple[Principal, ApiToken, str]:
    """A private partner: a VN analyst account whose API token has its own grants."""
    user = make_user(roles=("analyst",), authority_id=scene.vn.id)
    token, raw = make_token(user, name="acme feed")
    return auth_service.principal_for(user, token=token), token, raw


Client = Callable[[Principal], TestClient]


@pytest.fixture
def token_client(app: FastAPI) -> Iterator[Callable[[str], TestClient]]:
    clients: list[TestClient] = []

    def _client(raw: str) -> TestClient:
        c = make_client(app, headers={"Authorization": f"Bearer {raw}"})
        clients.append(c)
        return c

    yield _client
    for c in clients:
        c.close()


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(node_env: dict[str, str]) -> Run:
    def _run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crossborder.cli.main", *args],
            env=node_env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=300,
            check=False,
        )

    return _run

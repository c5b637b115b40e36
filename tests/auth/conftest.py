"""An application whose request sessions share the test's connection (and so its rollback)."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from crossborder.auth import deps
from crossborder.auth.models import User
from crossborder.core.clock import utc_now
from crossborder.settings import Settings
from crossborder.web import csrf
from tests.fixtures.auth import DEFAULT_PASSWORD

with warnings.catch_warnings():
    # Starlette >= 1.x prefers httpx2 and warns when it finds httpx (pyproject pins httpx).
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def _minimal_app(settings: Settings) -> FastAPI:
    """Only what auth needs, for when other capabilities are not importable yet."""
    from crossborder.audit import api as audit_api
    from crossborder.auth import api as auth_api
    from crossborder.auth import views as auth_views
    from crossborder.core import problems
    from crossborder.web.security import SecurityMiddleware

    app = FastAPI()
    app.state.settings = settings
    problems.install(app)
    app.add_middleware(SecurityMiddleware)
    app.include_router(auth_views.router)
    app.include_router(auth_api.router, prefix="/api/v1")
    app.include_router(audit_api.router, prefix="/api/v1")
    return app


def build_app(settings: Settings, db: Session) -> FastAPI:
    def session_factory() -> Session:
        return Session(
            bind=db.get_bind(), join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    try:
        from crossborder.app import create_app

        app = create_app(settings, session_factory=session_factory)  # type: ignore[arg-type]
    except ImportError:
        app = _minimal_app(settings)
        app.state.session_factory = session_factory
    deps.install(app)
    return app


@pytest.fixture
def app(settings: Settings, db: Session) -> FastAPI:
    return build_app(settings, db)


def random_ip() -> str:
    """A fresh client address per client, so per-address throttling never leaks across tests."""
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def make_client(app: FastAPI, **kwargs: object) -> TestClient:
    return TestClient(app, follow_redirects=False, client=(random_ip(), 50000), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with make_client(app) as test_client:
        yield test_client


def csrf_for(client: TestClient, settings: Settings) -> str:
    """The form token for this client's CSRF cookie (fetching a page to get one if needed)."""
    if csrf.CSRF_COOKIE not in client.cookies:
        client.get("/login")
    return csrf.token_for(settings.secret_key, client.cookies[csrf.CSRF_COOKIE])


def post_login(
    client: TestClient,
    settings: Settings,
    username: str,
    password: str = DEFAULT_PASSWORD,
    next_path: str = "",
) -> httpx.Response:
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "next": next_path,
            "csrf_token": csrf_for(client, settings),
        },
    )


def current_code(secret: str) -> str:
    from crossborder.auth import totp

    return totp.code_at_step(secret, totp.step_of(utc_now()))


@pytest.fixture
def logged_in(
    client: TestClient, settings: Settings, make_user: Callable[..., User]
) -> Callable[..., User]:
    """Log a fresh user in through the form (no second factor) and return it."""

    def _login(**kwargs: object) -> User:
        user = make_user(**kwargs)
        response = post_login(client, settings, user.username)
        assert response.status_code == 303, response.text
        return user

    return _login

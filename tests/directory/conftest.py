"""An app client for the directory's routes, with authentication replaced by a given principal.

The real login flow is tested by the auth package; here the routes' own behaviour (parsing,
status codes, rendering) is what matters, so ``api_principal``/``web_principal`` are
overridden and the app's sessions are the test's ``db`` session (rolled back after the test).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import pytest
from fastapi import Request
from sqlalchemy.orm import Session
from starlette.exceptions import StarletteDeprecationWarning

from crossborder.app import create_app
from crossborder.auth.deps import api_principal, web_principal
from crossborder.auth.permissions import Principal
from crossborder.deps import get_session
from crossborder.settings import Settings

with warnings.catch_warnings():
    # Starlette now prefers the httpx2 package and warns (an error under our pytest config)
    # when it finds httpx instead; the client works the same.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


@pytest.fixture
def api_client(db: Session, settings: Settings) -> Iterator[Callable[[Principal], TestClient]]:
    clients: list[TestClient] = []

    def make(principal: Principal) -> TestClient:
        app = create_app(settings)

        def as_principal(request: Request) -> Principal:
            request.state.principal = principal
            return principal

        def test_session() -> Iterator[Session]:
            yield db

        app.dependency_overrides[api_principal] = as_principal
        app.dependency_overrides[web_principal] = as_principal
        app.dependency_overrides[get_session] = test_session
        client = TestClient(app, raise_server_exceptions=True)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()

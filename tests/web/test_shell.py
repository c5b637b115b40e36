"""The web shell: health, OpenAPI, problem responses, security headers, languages."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.orm import Session

from crossborder.app import create_app
from crossborder.auth.models import User
from crossborder.settings import Environment, Settings
from crossborder.web import csrf
from tests.fixtures.web import TestClient, csrf_for


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_when_the_schema_is_current(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


def test_readyz_refuses_an_unmigrated_database(settings: Settings, tmp_path: object) -> None:
    empty = settings.model_copy(update={"database_url": "sqlite://"})
    with TestClient(create_app(empty)) as fresh:
        response = fresh.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "crossborder db upgrade" in response.json()["detail"]


def test_openapi_describes_the_directory_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in (
        "/api/v1/directory/authorities",
        "/api/v1/directory/policy/evaluate",
        "/healthz",
        "/readyz",
    ):
        assert path in paths


def test_unknown_api_route_is_a_problem(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404
    assert body["title"] == "Not found"
    assert body["type"].endswith("/404")


def test_unknown_page_for_a_browser_is_an_html_page(client: TestClient) -> None:
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "404" in response.text


def test_api_without_credentials_is_401_problem(client: TestClient) -> None:
    response = client.get("/api/v1/directory/authorities")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"


def test_malformed_json_body_is_422_with_the_field(
    client: TestClient,
    make_user: Callable[..., User],
    make_token: Callable[..., tuple[object, str]],
) -> None:
    _token, raw = make_token(make_user(roles=["analyst"]), ["policy:evaluate"])
    response = client.post(
        "/api/v1/directory/policy/evaluate",
        json={
            "sender_state": "VN",
            "receiver_state": "AU",
            "channel": "carrier-pigeon",
            "offences": [],
            "data_categories": ["subscriber"],
        },
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in body["errors"]}
    assert "channel" in fields
    assert "offences" in fields


def test_body_that_is_not_json_is_422(
    client: TestClient,
    make_user: Callable[..., User],
    make_token: Callable[..., tuple[object, str]],
) -> None:
    _token, raw = make_token(make_user(roles=["analyst"]), ["policy:evaluate"])
    response = client.post(
        "/api/v1/directory/policy/evaluate",
        content=b"{not json",
        headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_security_headers_on_pages_and_api(client: TestClient) -> None:
    for path in ("/login", "/healthz"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"


def test_hsts_only_in_production(settings: Settings, db: Session) -> None:
    from tests.fixtures.web import build_app

    assert (
        "strict-transport-security"
        not in TestClient(build_app(settings, db)).get("/healthz").headers
    )
    prod = settings.model_copy(
        update={"environment": Environment.PRODUCTION, "cookie_secure": True}
    )
    headers = TestClient(build_app(prod, db)).get("/healthz").headers
    assert headers["strict-transport-security"].startswith("max-age=")


def test_csrf_cookie_is_http_only_and_strict(client: TestClient) -> None:
    response = client.get("/login")
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and v.startswith(csrf.CSRF_COOKIE + "=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie


def test_cross_site_post_is_refused(client: TestClient, settings: Settings) -> None:
    token = csrf_for(client, settings)
    response = client.post(
        "/language",
        data={"lang": "vi", "next": "/", "csrf_token": token},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403
    assert csrf.CSRF_COOKIE in client.cookies


def test_oversized_body_is_413(client: TestClient) -> None:
    response = client.post(
        "/api/v1/directory/policy/evaluate",
        content=b"x" * 1_100_000,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_language_switch_translates_the_login_page(client: TestClient, settings: Settings) -> None:
    english = client.get("/login")
    assert '<html lang="en"' in english.text
    response = client.post(
        "/language", data={"lang": "vi", "next": "/login", "csrf_token": csrf_for(client, settings)}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    page = client.get("/login")
    assert '<html lang="vi"' in page.text
    assert "Đăng nhập" in page.text
    client.post(
        "/language", data={"lang": "bn", "next": "/login", "csrf_token": csrf_for(client, settings)}
    )
    assert "লগ ইন" in client.get("/login").text


def test_unknown_language_is_refused_or_ignored(client: TestClient, settings: Settings) -> None:
    client.post(
        "/language", data={"lang": "xx", "next": "/login", "csrf_token": csrf_for(client, settings)}
    )
    assert '<html lang="en"' in client.get("/login").text


@pytest.mark.parametrize(
    ("accept", "lang"), [("vi-VN,vi;q=0.9,en;q=0.5", "vi"), ("bn-BD", "bn"), ("de-DE", "en")]
)
def test_browser_language_is_negotiated(client: TestClient, accept: str, lang: str) -> None:
    page = client.get("/login", headers={"Accept-Language": accept})
    assert f'<html lang="{lang}"' in page.text


def test_home_needs_login_then_shows_the_start_page(
    client: TestClient, logged_in: Callable[..., User]
) -> None:
    response = client.get("/")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    user = logged_in()
    page = client.get("/")
    assert page.status_code == 200
    assert user.username in page.text


def test_oversized_chunked_body_is_413_without_content_length(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 32_768  # 1.3 MB in all, more than the 1 MB limit

    response = client.post(
        "/api/v1/directory/policy/evaluate",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"

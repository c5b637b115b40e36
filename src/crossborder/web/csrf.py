"""CSRF protection for the browser interface: a signed double-submit token.

A random value lives in the ``cb_csrf`` cookie (HttpOnly, SameSite=Strict); every form
carries ``HMAC(secret, value)``. An attacker on another site can neither read the cookie
nor forge the HMAC. Unsafe requests are also refused when ``Sec-Fetch-Site`` or ``Origin``
shows another site (see ``security.SecurityMiddleware``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Form, Request

from crossborder.core.errors import PermissionDenied

CSRF_COOKIE = "cb_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def new_cookie_value() -> str:
    return secrets.token_urlsafe(32)


def token_for(secret_key: str, cookie_value: str) -> str:
    return hmac.new(
        secret_key.encode(), b"csrf:" + cookie_value.encode(), hashlib.sha256
    ).hexdigest()


def cookie_value(request: Request) -> str:
    """The cookie value for this request (set by the middleware when the browser had none)."""
    value: str | None = getattr(request.state, "csrf_cookie", None)
    return value or request.cookies.get(CSRF_COOKIE, "")


def current_token(request: Request) -> str:
    return token_for(request.app.state.settings.secret_key, cookie_value(request))


def check(request: Request, submitted: str | None) -> None:
    value = request.cookies.get(CSRF_COOKIE)
    if not value or not submitted:
        raise PermissionDenied("missing CSRF token: reload the page and try again")
    expected = token_for(request.app.state.settings.secret_key, value)
    if not hmac.compare_digest(expected, submitted):
        raise PermissionDenied("invalid CSRF token: reload the page and try again")


def require_form_token(request: Request, csrf_token: str = Form("")) -> None:
    """Dependency for every HTML form handler."""
    check(request, csrf_token)


def require_header_token(request: Request) -> None:
    """Dependency for JSON calls made with the browser session (header ``X-CSRF-Token``)."""
    check(request, request.headers.get(CSRF_HEADER))

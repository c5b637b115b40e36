"""Security headers, the CSRF cookie and cross-site request refusal (body limits: limits.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response
from starlette.middleware.base import BaseHTTPMiddleware

from crossborder.core.problems import problem
from crossborder.web import csrf

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class SecurityMiddleware(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        settings = request.app.state.settings
        if request.method not in SAFE_METHODS and request.cookies and _cross_site(request):
            return problem(403, code="cross-site", detail="cross-site request refused")

        new_csrf = None
        if not request.cookies.get(csrf.CSRF_COOKIE):
            new_csrf = csrf.new_cookie_value()
            request.state.csrf_cookie = new_csrf

        response = await call_next(request)

        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if settings.is_production:
            headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        if not request.url.path.startswith("/static/"):
            headers.setdefault("Cache-Control", "no-store")
        if new_csrf:
            response.set_cookie(
                csrf.CSRF_COOKIE,
                new_csrf,
                httponly=True,
                samesite="strict",
                secure=settings.cookie_secure,
                path="/",
            )
        return response


def _cross_site(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site in {"cross-site", "same-site"}:
        return True
    origin = request.headers.get("origin")
    if origin and origin != "null":
        own = f"{request.url.scheme}://{request.url.netloc}"
        parsed = urlsplit(origin)
        return f"{parsed.scheme}://{parsed.netloc}" != own
    return False

"""FastAPI dependencies that turn a request into a ``Principal`` (or refuse it).

- ``api_principal`` (JSON API): ``Authorization: Bearer cbt_...`` first; otherwise the browser
  session cookie, and then unsafe methods must carry the ``X-CSRF-Token`` header. Anything
  else is a 401 problem.
- ``web_principal`` (HTML): the session cookie only; without a usable session the browser is
  redirected (303) to ``/login?next=<path>``, or to the second-factor / enrolment page when
  the password step is done but the second factor is not.
- ``optional_web_principal``: the same, but ``None`` instead of a redirect.

All of them set ``request.state.principal`` (the templates read it to show the navigation).
The 303 redirect needs ``install(app)`` to be called once: the generic HTTP-error handler of
``core.problems`` renders an error page and would drop the ``Location`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from crossborder.auth import service
from crossborder.auth.models import User, WebSession
from crossborder.auth.permissions import Principal
from crossborder.core.errors import AuthenticationRequired
from crossborder.deps import client_ip, get_session, get_settings
from crossborder.web import csrf

SESSION_COOKIE = "cb_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATH = "/login"
TOTP_PATH = "/login/totp"
ENROL_PATH = "/account/totp"


class LoginRequired(StarletteHTTPException):
    """Send the browser elsewhere (303). A subclass of HTTPException so that, even without
    ``install``, it still ends the request with status 303 rather than being ignored."""

    def __init__(self, location: str) -> None:
        super().__init__(status_code=303, headers={"Location": location})
        self.location = location


async def _login_required_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(exc.location, status_code=303)


def install(app: FastAPI) -> None:
    """Register the redirect handler; call once from ``create_app`` (after problems.install)."""
    app.add_exception_handler(LoginRequired, _login_required_handler)


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go to after login, or ``default``: never another site (open redirect)."""
    if not value or len(value) > 2000:
        return default
    if any(ch in value for ch in "\\\r\n\t") or not value.startswith("/") or value.startswith("//"):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def _here(request: Request) -> str:
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return path


def login_url(next_path: str | None) -> str:
    target = safe_next(next_path, default="")
    return f"{LOGIN_PATH}?next={quote(target, safe='')}" if target else LOGIN_PATH


@dataclass(frozen=True)
class BrowserSession:
    """A resolved session cookie, whatever its state (used by the login and enrolment pages)."""

    user: User
    web_session: WebSession
    state: service.SessionState
    raw_token: str


def browser_session(
    request: Request, session: Session = Depends(get_session)
) -> BrowserSession | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    settings = get_settings(request)
    resolved = service.resolve_session(session, settings=settings, raw_token=raw)
    if resolved is None:
        return None
    user, web_session = resolved
    state = service.session_state(user, web_session, settings=settings)
    return BrowserSession(user=user, web_session=web_session, state=state, raw_token=raw)


def _session_principal(request: Request, current: BrowserSession | None) -> Principal | None:
    if current is None or current.state is not service.SessionState.ACTIVE:
        return None
    principal = service.principal_for(current.user, ip=client_ip(request))
    request.state.principal = principal
    return principal


def api_principal(request: Request, session: Session = Depends(get_session)) -> Principal:
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise AuthenticationRequired("use 'Authorization: Bearer <API token>'")
        principal = service.authenticate_token(
            session, raw=credentials.strip(), ip=client_ip(request)
        )
        request.state.principal = principal
        return principal
    if request.cookies.get(SESSION_COOKIE):
        if request.method not in SAFE_METHODS:
            csrf.require_header_token(request)
        found = _session_principal(request, browser_session(request, session))
        if found is not None:
            return found
    raise AuthenticationRequired("log in or present an API token")


def web_principal(
    request: Request, current: BrowserSession | None = Depends(browser_session)
) -> Principal:
    principal = _session_principal(request, current)
    if principal is not None:
        return principal
    if current is not None and current.state is service.SessionState.NEEDS_TOTP:
        raise LoginRequired(f"{TOTP_PATH}?next={quote(_here(request), safe='')}")
    if current is not None and current.state is service.SessionState.NEEDS_ENROLMENT:
        raise LoginRequired(ENROL_PATH)
    raise LoginRequired(login_url(_here(request)))


def optional_web_principal(
    request: Request, current: BrowserSession | None = Depends(browser_session)
) -> Principal | None:
    return _session_principal(request, current)

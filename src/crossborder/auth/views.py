"""HTML routes: login (password, then second factor), logout, account, TOTP enrolment, API
tokens, and the language switch.

Every form is CSRF-protected (``require_form_token``), including the login form (login CSRF)
and the language switch. ``next`` is only ever followed to a local path. The session cookie is
replaced on login and again when the second factor is passed.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from crossborder.auth import service
from crossborder.auth.deps import (
    ENROL_PATH,
    LOGIN_PATH,
    SESSION_COOKIE,
    TOTP_PATH,
    BrowserSession,
    LoginRequired,
    browser_session,
    login_url,
    optional_web_principal,
    safe_next,
    web_principal,
)
from crossborder.auth.permissions import Permission, Principal
from crossborder.core.errors import InvalidInput, PermissionDenied, TooManyRequests
from crossborder.deps import client_ip, get_session, get_settings
from crossborder.settings import Settings
from crossborder.web import i18n
from crossborder.web.csrf import require_form_token
from crossborder.web.templating import render

router = APIRouter()

LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
DONE_KEYS = frozenset({"totp-enabled", "totp-disabled", "token-revoked"})
TOKEN_EXPIRY_CHOICES = (7, 30, 90, 180, 365)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _set_session_cookie(response: Response, settings: Settings, raw: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=settings.session_lifetime_minutes * 60,
        path="/",
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
    )


def _clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, secure=settings.cookie_secure, samesite="lax"
    )


def _with_next(path: str, next_path: str) -> str:
    return f"{path}?next={quote(next_path, safe='')}" if next_path != "/" else path


def _throttled_page(
    request: Request, template: str, exc: TooManyRequests, **ctx: object
) -> Response:
    retry_after = int(exc.extra.get("retry_after", 60))
    response = render(
        request,
        template,
        {"error": "throttled", "retry_minutes": max(1, (retry_after + 59) // 60), **ctx},
        status=429,
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


# --------------------------------------------------------------------------- login


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request,
    next_path: str = Query("", alias="next"),
    principal: Principal | None = Depends(optional_web_principal),
) -> Response:
    target = safe_next(next_path)
    if principal is not None:
        return _redirect(target)
    return render(request, "auth/login.html", {"next": target, "username": ""})


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(require_form_token)])
def login_submit(
    request: Request,
    username: str = Form("", max_length=200),
    password: str = Form("", max_length=4096),
    next_path: str = Form("", alias="next"),
    session: Session = Depends(get_session),
) -> Response:
    settings = get_settings(request)
    target = safe_next(next_path)
    ctx = {"next": target, "username": username[:64]}
    try:
        user = service.authenticate(
            session,
            settings=settings,
            username=username,
            password=password,
            ip=client_ip(request),
        )
    except TooManyRequests as exc:
        return _throttled_page(request, "auth/login.html", exc, **ctx)
    except service.InvalidCredentials:
        return render(request, "auth/login.html", {**ctx, "error": "invalid"}, status=401)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        service.revoke_session(session, raw_token=old, ip=client_ip(request))
    web_session, raw = service.create_session(
        session,
        settings=settings,
        user=user,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    state = service.session_state(user, web_session, settings=settings)
    if state is service.SessionState.NEEDS_TOTP:
        response = _redirect(_with_next(TOTP_PATH, target))
    elif state is service.SessionState.NEEDS_ENROLMENT:
        response = _redirect(ENROL_PATH)
    else:
        response = _redirect(target)
    _set_session_cookie(response, settings, raw)
    return response


@router.get("/login/totp", response_class=HTMLResponse)
def totp_form(
    request: Request,
    next_path: str = Query("", alias="next"),
    current: BrowserSession | None = Depends(browser_session),
) -> Response:
    target = safe_next(next_path)
    redirect = _totp_step_redirect(current, target)
    if redirect is not None:
        return redirect
    return render(request, "auth/totp.html", {"next": target})


def _totp_step_redirect(current: BrowserSession | None, target: str) -> Response | None:
    if current is None:
        return _redirect(_with_next(LOGIN_PATH, target))
    if current.state is service.SessionState.NEEDS_ENROLMENT:
        return _redirect(ENROL_PATH)
    if current.state is service.SessionState.ACTIVE:
        return _redirect(target)
    return None


@router.post("/login/totp", response_class=HTMLResponse, dependencies=[Depends(require_form_token)])
def totp_submit(
    request: Request,
    code: str = Form("", max_length=20),
    next_path: str = Form("", alias="next"),
    current: BrowserSession | None = Depends(browser_session),
    session: Session = Depends(get_session),
) -> Response:
    settings = get_settings(request)
    target = safe_next(next_path)
    redirect = _totp_step_redirect(current, target)
    if redirect is not None:
        return redirect
    assert current is not None
    try:
        raw = service.complete_totp_login(
            session,
            settings=settings,
            web_session=current.web_session,
            code=code,
            ip=client_ip(request),
        )
    except TooManyRequests as exc:
        return _throttled_page(request, "auth/totp.html", exc, next=target)
    except service.InvalidCredentials:
        return render(request, "auth/totp.html", {"next": target, "error": "code"}, status=401)
    response = _redirect(target)
    _set_session_cookie(response, settings, raw)
    return response


@router.post("/logout", dependencies=[Depends(require_form_token)])
def logout(request: Request, session: Session = Depends(get_session)) -> Response:
    settings = get_settings(request)
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        service.revoke_session(session, raw_token=raw, ip=client_ip(request))
    response = _redirect(LOGIN_PATH)
    _clear_session_cookie(response, settings)
    return response


# --------------------------------------------------------------------------- account


def _account_context(session: Session, principal: Principal) -> dict[str, object]:
    from crossborder.directory.models import Authority  # web layer: reading a name to show

    user = service.get_user(session, principal.user_id)
    can_tokens = principal.has(Permission.TOKENS_MANAGE_OWN)
    return {
        "user": user,
        "authority": session.get(Authority, principal.authority_id),
        "roles": sorted(r.value for r in principal.roles),
        "tokens": service.list_tokens(session, actor=principal) if can_tokens else [],
        "can_tokens": can_tokens,
        "available_scopes": sorted(p.value for p in principal.permissions),
        "expiry_choices": TOKEN_EXPIRY_CHOICES,
    }


@router.get("/account", response_class=HTMLResponse)
def account(
    request: Request,
    done: str = Query(""),
    principal: Principal = Depends(web_principal),
    session: Session = Depends(get_session),
) -> Response:
    ctx = _account_context(session, principal)
    ctx["done"] = done if done in DONE_KEYS else None
    return render(request, "account/index.html", ctx)


def _enrolment_session(request: Request, current: BrowserSession | None) -> BrowserSession:
    """The second-factor page is for logged-in users and for those who must enrol first."""
    if current is None:
        raise LoginRequired(login_url(ENROL_PATH))
    if current.state is service.SessionState.NEEDS_TOTP:
        raise LoginRequired(TOTP_PATH)
    if current.state is service.SessionState.ACTIVE:
        request.state.principal = service.principal_for(current.user, ip=client_ip(request))
    return current


@router.get("/account/totp", response_class=HTMLResponse)
def totp_enrolment(
    request: Request,
    current: BrowserSession | None = Depends(browser_session),
    session: Session = Depends(get_session),
) -> Response:
    found = _enrolment_session(request, current)
    return _enrolment_page(request, session, found)


def _enrolment_page(
    request: Request,
    session: Session,
    current: BrowserSession,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    ctx: dict[str, object] = {
        "user": current.user,
        "forced": current.state is service.SessionState.NEEDS_ENROLMENT,
        "error": error,
    }
    if not current.user.totp_enabled:
        actor = service.principal_for(current.user, ip=client_ip(request))
        enrolment = service.begin_totp_enrolment(
            session, settings=get_settings(request), actor=actor
        )
        ctx.update(secret=enrolment.secret, uri=enrolment.uri)
    return render(request, "account/totp.html", ctx, status=status)


@router.post(
    "/account/totp", response_class=HTMLResponse, dependencies=[Depends(require_form_token)]
)
def totp_confirm(
    request: Request,
    code: str = Form("", max_length=20),
    current: BrowserSession | None = Depends(browser_session),
    session: Session = Depends(get_session),
) -> Response:
    found = _enrolment_session(request, current)
    settings = get_settings(request)
    actor = service.principal_for(found.user, ip=client_ip(request))
    try:
        service.confirm_totp(session, settings=settings, actor=actor, code=code)
    except InvalidInput:
        return _enrolment_page(request, session, found, error="code", status=422)
    _, raw = service.mark_session_verified(
        session, settings=settings, web_session=found.web_session
    )
    response = _redirect("/account?done=totp-enabled")
    _set_session_cookie(response, settings, raw)
    return response


@router.post("/account/totp/disable", dependencies=[Depends(require_form_token)])
def totp_disable(
    request: Request,
    code: str = Form("", max_length=20),
    principal: Principal = Depends(web_principal),
    session: Session = Depends(get_session),
) -> Response:
    settings = get_settings(request)
    try:
        service.disable_totp(
            session, settings=settings, actor=principal, user_id=principal.user_id, code=code
        )
    except InvalidInput:
        current = browser_session(request, session)
        assert current is not None
        return _enrolment_page(request, session, current, error="code", status=422)
    return _redirect("/account?done=totp-disabled")


@router.post(
    "/account/tokens", response_class=HTMLResponse, dependencies=[Depends(require_form_token)]
)
def token_create(
    request: Request,
    name: str = Form("", max_length=200),
    scopes: list[str] = Form([]),
    expires_in_days: int = Form(90),
    principal: Principal = Depends(web_principal),
    session: Session = Depends(get_session),
) -> Response:
    try:
        token, raw = service.create_token(
            session, actor=principal, name=name, scopes=scopes, expires_in_days=expires_in_days
        )
    except (InvalidInput, PermissionDenied) as exc:
        ctx = _account_context(session, principal)
        ctx["token_error"] = exc.detail
        return render(request, "account/index.html", ctx, status=exc.status)
    return render(request, "account/token_created.html", {"token": token, "raw_token": raw})


@router.post("/account/tokens/{token_id}/revoke", dependencies=[Depends(require_form_token)])
def token_revoke(
    token_id: int,
    principal: Principal = Depends(web_principal),
    session: Session = Depends(get_session),
) -> Response:
    service.revoke_token(session, actor=principal, token_id=token_id)
    return _redirect("/account?done=token-revoked")


# --------------------------------------------------------------------------- language


@router.post("/language", dependencies=[Depends(require_form_token)])
def set_language(
    request: Request,
    lang: str = Form("", max_length=16),
    next_path: str = Form("", alias="next"),
) -> Response:
    response = _redirect(safe_next(next_path))
    if lang in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANG_COOKIE,
            lang,
            max_age=LANG_COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            secure=get_settings(request).cookie_secure,
            samesite="lax",
        )
    return response

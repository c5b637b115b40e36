"""Jinja2 rendering with per-request language, CSRF token, principal and demo banner."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context

from crossborder.web import csrf, i18n

TEMPLATES_DIR = Path(__file__).parent / "templates"


@pass_context
def _gettext(ctx: Context, message: str) -> str:
    return str(ctx["translations"].gettext(message))


@pass_context
def _ngettext(ctx: Context, singular: str, plural: str, n: int) -> str:
    return str(ctx["translations"].ngettext(singular, plural, n))


def _build_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    return env


ENV = _build_env()


def language(request: Request) -> str:
    lang: str | None = getattr(request.state, "lang", None)
    if lang:
        return lang
    return i18n.negotiate(
        request.cookies.get(i18n.LANG_COOKIE),
        request.headers.get("accept-language"),
        request.app.state.settings.default_language,
    )


def gettext(request: Request, message: str) -> str:
    """Translate a message produced in Python code (flash messages, form errors)."""
    return str(i18n.translations(language(request)).gettext(message))


def format_local(value: datetime, tz: str, lang: str) -> str:
    return format_datetime(value, "EEE d MMM y HH:mm zzz", tzinfo=ZoneInfo(tz), locale=lang)


def country_name(alpha2: str, fallback: str, lang: str) -> str:
    """A state's name in the interface language, from CLDR through Babel."""
    name = i18n.babel_locale(lang).territories.get(alpha2.upper())
    return str(name) if name else fallback


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    lang = language(request)
    settings = request.app.state.settings
    ctx: dict[str, Any] = {
        "request": request,
        "lang": lang,
        "dir": "rtl" if i18n.LANGUAGES[lang].rtl else "ltr",
        "languages": i18n.LANGUAGES,
        "translations": i18n.translations(lang),
        "csrf_token": csrf.current_token(request),
        "principal": getattr(request.state, "principal", None),
        "demo_mode": settings.demo_mode,
        "node_name": settings.node_name,
        "format_local": lambda value, tz: format_local(value, tz, lang),
        "country": lambda alpha2, fallback="": country_name(alpha2, fallback, lang),
    }
    ctx.update(context or {})
    html = ENV.get_template(name).render(ctx)
    return HTMLResponse(html, status_code=status)


def render_error(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return render(
        request, "error.html", {"status": status, "title": title, "detail": detail}, status=status
    )

"""Build the ASGI application: mount routers and middleware, nothing else."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker

from crossborder import __version__
from crossborder.core import problems
from crossborder.db.session import make_engine, make_session_factory
from crossborder.settings import Settings
from crossborder.web.limits import BodyLimitMiddleware
from crossborder.web.security import SecurityMiddleware
from crossborder.web.templating import TEMPLATES_DIR

STATIC_DIR = TEMPLATES_DIR.parent / "static"


MATCHING_QUERY_BODY_BYTES = 32 * 1024 * 1024


def body_limit(settings: Settings, path: str) -> int | None:
    """The generic body limit, except on upload routes, whose service streams and limits."""
    if path.endswith("/attachments") or path == "/federation/v1/inbox":
        return None  # these routes stream and enforce (and audit) their own limits
    if path.startswith("/api/v1/identifier-sets/") and path.endswith("/import"):
        return None  # bulk import reads and limits its own body
    if path.startswith("/api/v1/intel/collections/") and path.endswith("/bundles"):
        return None  # bundle import reads and limits (100 MiB) its own body
    if path.startswith("/taxii2/"):
        return None  # TAXII answers 413 itself, with a TAXII error body, above max_content_length
    if path == "/api/v1/matching/queries":
        return max(settings.max_body_bytes, MATCHING_QUERY_BODY_BYTES)  # up to 100,000 identifiers
    return settings.max_body_bytes


def install_message_handlers() -> None:
    """Route federation message types to their capabilities (idempotent)."""
    from crossborder.federation import service as federation_service
    from crossborder.intel import exchange as intel_exchange
    from crossborder.matching import exchange as matching_exchange
    from crossborder.requests import exchange

    federation_service.install_builtin_handlers()
    exchange.register()
    intel_exchange.register()
    matching_exchange.register()


def create_app(
    settings: Settings, *, session_factory: sessionmaker[Session] | None = None
) -> FastAPI:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    app = FastAPI(
        title="crossborder",
        version=__version__,
        description="Node API for cross-border cooperation against cybercrime.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    if session_factory is None:
        engine = make_engine(settings.resolved_database_url)
        app.state.engine = engine
        session_factory = make_session_factory(engine, data_dir=settings.data_dir)
    app.state.session_factory = session_factory

    from crossborder.audit import api as audit_api
    from crossborder.auth import api as auth_api
    from crossborder.auth import views as auth_views
    from crossborder.auth.deps import install as install_auth
    from crossborder.directory import api as directory_api
    from crossborder.directory import views as directory_views
    from crossborder.federation import api as federation_api
    from crossborder.federation import views as federation_views
    from crossborder.intel import api as intel_api
    from crossborder.intel import taxii
    from crossborder.intel import views as intel_views
    from crossborder.matching import api as matching_api
    from crossborder.matching import views as matching_views
    from crossborder.requests import api as requests_api
    from crossborder.requests import views as requests_views
    from crossborder.selectors import api as selectors_api
    from crossborder.selectors import views as selectors_views
    from crossborder.web import views as web_views

    install_message_handlers()
    problems.install(app)
    install_auth(app)
    app.add_middleware(SecurityMiddleware)
    # Outermost: refuse oversized bodies before anything reads them.
    app.add_middleware(BodyLimitMiddleware, limit_for=lambda path: body_limit(settings, path))

    app.include_router(web_views.router)
    app.include_router(auth_views.router)
    app.include_router(directory_views.router)
    app.include_router(requests_views.router)
    app.include_router(selectors_views.router)
    app.include_router(intel_views.router)
    app.include_router(matching_views.router)
    app.include_router(federation_views.router)
    app.include_router(federation_api.router)
    app.include_router(taxii.router)
    app.include_router(auth_api.router, prefix="/api/v1")
    app.include_router(directory_api.router, prefix="/api/v1")
    app.include_router(audit_api.router, prefix="/api/v1")
    app.include_router(requests_api.router, prefix="/api/v1")
    app.include_router(selectors_api.router, prefix="/api/v1")
    app.include_router(intel_api.router, prefix="/api/v1")
    app.include_router(matching_api.router, prefix="/api/v1")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app

"""The start page and the health endpoints."""

from __future__ import annotations

from typing import Any

from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from crossborder import __version__
from crossborder.auth.deps import optional_web_principal
from crossborder.auth.permissions import Principal
from crossborder.core.problems import problem
from crossborder.db.migrate import head_revision
from crossborder.deps import get_session
from crossborder.web.templating import render

router = APIRouter()


@router.get("/", include_in_schema=False)
def home(
    request: Request, principal: Principal | None = Depends(optional_web_principal)
) -> Response:
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    return render(request, "home.html")


@router.get("/healthz", tags=["health"])
def healthz() -> dict[str, Any]:
    """Liveness: the process answers."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz", tags=["health"], response_model=None)
def readyz(request: Request, session: Session = Depends(get_session)) -> Response:
    """Readiness: the database answers and its schema is at the latest migration."""
    try:
        session.execute(text("SELECT 1"))
        current = MigrationContext.configure(session.connection()).get_current_revision()
    except SQLAlchemyError:
        return problem(503, detail="database unavailable", code="not-ready")
    head = head_revision(request.app.state.settings.resolved_database_url)
    if current != head:
        return problem(
            503,
            detail=f"database schema at {current}, expected {head}: run `crossborder db upgrade`",
            code="not-ready",
        )
    return JSONResponse({"status": "ready", "schema": current})

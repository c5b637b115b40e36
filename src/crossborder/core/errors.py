"""Typed domain exceptions. They are mapped to RFC 9457 problems in one place (core.problems)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    status = 400
    code = "domain-error"
    title = "Request could not be processed"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}


class NotFound(DomainError):
    status = 404
    code = "not-found"
    title = "Not found"


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class AuthenticationRequired(DomainError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class InvalidInput(DomainError):
    """Input that passed the schema but breaks a domain rule; ``field`` names the culprit."""

    status = 422
    code = "invalid-input"
    title = "Invalid input"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        errors = [{"field": field, "message": detail}] if field else []
        super().__init__(detail, extra={"errors": errors} if errors else None)
        self.field = field


class TooManyRequests(DomainError):
    status = 429
    code = "too-many-requests"
    title = "Too many requests"

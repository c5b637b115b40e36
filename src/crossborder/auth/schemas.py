"""JSON shapes of the auth API. Secrets appear in exactly one: ``TokenCreated`` (once)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from crossborder.auth.service import TOKEN_MAX_DAYS, TOKEN_NAME_MAX


class Me(BaseModel):
    user_id: int
    username: str
    display_name: str
    authority_id: int
    roles: list[str]
    permissions: list[str]
    via: str
    token_id: int | None = None
    scopes: list[str] | None = None
    totp_enabled: bool


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=TOKEN_NAME_MAX)
    scopes: list[str] = Field(min_length=1, max_length=50)
    expires_in_days: int = Field(default=90, ge=1, le=TOKEN_MAX_DAYS)


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    public_id: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The raw token. It is shown once and cannot be retrieved.")

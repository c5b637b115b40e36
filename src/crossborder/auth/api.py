"""JSON routes for the acting user: who am I, and my API tokens (mounted at /api/v1)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status
from sqlalchemy.orm import Session

from crossborder.auth import service
from crossborder.auth.deps import api_principal
from crossborder.auth.permissions import Principal
from crossborder.auth.schemas import Me, TokenCreate, TokenCreated, TokenOut
from crossborder.core.errors import AuthenticationRequired
from crossborder.deps import get_session

router = APIRouter(tags=["auth"])


@router.get("/me", response_model=Me)
def me(
    principal: Principal = Depends(api_principal), session: Session = Depends(get_session)
) -> Me:
    user = service.get_user(session, principal.user_id)
    if user is None:
        raise AuthenticationRequired("log in again")
    return Me(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        authority_id=user.authority_id,
        roles=sorted(r.value for r in principal.roles),
        permissions=sorted(p.value for p in principal.permissions),
        via=principal.via,
        token_id=principal.token_id,
        scopes=sorted(principal.scopes) if principal.scopes is not None else None,
        totp_enabled=user.totp_enabled,
    )


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(
    body: TokenCreate,
    principal: Principal = Depends(api_principal),
    session: Session = Depends(get_session),
) -> TokenCreated:
    token, raw = service.create_token(
        session,
        actor=principal,
        name=body.name,
        scopes=body.scopes,
        expires_in_days=body.expires_in_days,
    )
    return TokenCreated(**TokenOut.model_validate(token).model_dump(), token=raw)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(
    principal: Principal = Depends(api_principal), session: Session = Depends(get_session)
) -> list[TokenOut]:
    return [TokenOut.model_validate(t) for t in service.list_tokens(session, actor=principal)]


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(
    token_id: int,
    principal: Principal = Depends(api_principal),
    session: Session = Depends(get_session),
) -> Response:
    service.revoke_token(session, actor=principal, token_id=token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""The federation endpoints peers call: the inbox and this node's public identity.

They are not behind user authentication: an envelope authenticates itself by its signature,
and the identity document holds public keys only. Include with no prefix::

    app.include_router(federation_api.router)

The inbox reads the body itself, refusing more than ``MAX_ENVELOPE_BYTES`` while it streams
(the generic body limit is lower; the lead's ``body_limit`` should exempt this path). Answers:

- ``200`` + ``application/jose``: a signed receipt, ``accepted`` or ``duplicate``;
- ``422`` + ``application/jose``: a signed ``rejected`` receipt (authenticated sender, type
  this node does not handle): the sender must not retry;
- ``4xx`` + ``application/problem+json`` with ``code`` (a :class:`Reason`): refused before the
  sender could be trusted; the sender may retry (the refusal is stored and audited).
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from crossborder.core.problems import PROBLEM_MEDIA_TYPE, problem
from crossborder.deps import client_ip
from crossborder.federation import envelope as env
from crossborder.federation import service
from crossborder.federation.envelope import EnvelopeError, Reason
from crossborder.settings import Settings

router = APIRouter(tags=["federation"])

STATUS_FOR: dict[Reason, int] = {
    Reason.MALFORMED: 400,
    Reason.TOO_LARGE: 413,
    Reason.NOT_FOR_ME: 421,
    Reason.UNDECRYPTABLE: 400,
    Reason.UNKNOWN_SENDER: 403,
    Reason.BAD_SIGNATURE: 403,
    Reason.SENDER_MISMATCH: 403,
    Reason.STALE: 400,
    Reason.FROM_FUTURE: 400,
    Reason.UNSUPPORTED_VERSION: 400,
    Reason.BAD_TYPE: 400,
    Reason.UNKNOWN_TYPE: 422,
}
TITLES: dict[Reason, str] = {
    Reason.MALFORMED: "Malformed envelope",
    Reason.TOO_LARGE: "Envelope too large",
    Reason.NOT_FOR_ME: "Envelope addressed to another node",
    Reason.UNDECRYPTABLE: "Envelope cannot be decrypted",
    Reason.UNKNOWN_SENDER: "Unknown sender",
    Reason.BAD_SIGNATURE: "Bad signature",
    Reason.SENDER_MISMATCH: "Sender does not match the signature",
    Reason.STALE: "Envelope too old",
    Reason.FROM_FUTURE: "Envelope from the future",
    Reason.UNSUPPORTED_VERSION: "Unsupported envelope version",
    Reason.BAD_TYPE: "Invalid message type",
    Reason.UNKNOWN_TYPE: "Unknown message type",
}


def problem_body(error: EnvelopeError) -> tuple[int, bytes]:
    status = STATUS_FOR[error.reason]
    body = {
        "type": f"https://crossborder.invalid/problems/federation/{error.reason.value.lower()}",
        "title": TITLES[error.reason],
        "status": status,
        "code": error.reason.value,
        "detail": error.detail,
    }
    return status, json.dumps(body).encode("utf-8")


def answer(
    session: Session, token: str | bytes, *, settings: Settings, remote_addr: str | None
) -> tuple[int, str, bytes]:
    """The inbox's answer to one token: (HTTP status, content type, body). Shared by the
    HTTP route and the in-process transport, so both behave identically."""
    try:
        ack = service.receive(session, token, settings=settings, remote_addr=remote_addr)
    except EnvelopeError as error:
        status, body = problem_body(error)
        return status, PROBLEM_MEDIA_TYPE, body
    status = 422 if ack.status == "rejected" else 200
    return status, env.MEDIA_TYPE, ack.token.encode("ascii")


def _refuse(request: Request, error: EnvelopeError, raw: bytes, size: int) -> Response:
    session: Session = request.app.state.session_factory()
    try:
        service.record_refusal(session, error, raw=raw, remote_addr=client_ip(request), size=size)
    finally:
        session.close()
    status, body = problem_body(error)
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE)


@router.post(
    "/federation/v1/inbox",
    summary="Deliver an envelope (compact JWE, application/jose)",
    responses={200: {"content": {"application/jose": {}}}},
)
async def inbox(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    limit = env.MAX_ENVELOPE_BYTES
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != env.MEDIA_TYPE:
        return problem(415, detail="send the envelope as application/jose", code="federation/media")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        error = EnvelopeError(Reason.TOO_LARGE, f"envelope larger than {limit} bytes")
        return await run_in_threadpool(_refuse, request, error, b"", int(declared))
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            error = EnvelopeError(Reason.TOO_LARGE, f"envelope larger than {limit} bytes")
            return await run_in_threadpool(_refuse, request, error, bytes(body[:1024]), len(body))
    raw = bytes(body)

    def run() -> tuple[int, str, bytes]:
        session: Session = request.app.state.session_factory()
        try:
            return answer(session, raw, settings=settings, remote_addr=client_ip(request))
        finally:
            session.close()

    status, media_type, payload = await run_in_threadpool(run)
    return Response(payload, status_code=status, media_type=media_type)


@router.get("/federation/v1/identity", summary="This node's public keys (JWK Set) and fingerprint")
def identity_document(request: Request) -> JSONResponse:
    return JSONResponse(service.identity_document(request.app.state.settings))

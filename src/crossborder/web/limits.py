"""Request-body limits, enforced while the body streams in (not only on Content-Length).

Starlette's ``RequestBodyLimitMiddleware`` does the counting; this wrapper only picks the limit
for a path. Upload routes (attachments) get none here: the evidence store enforces their own,
larger limit while it hashes the stream.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from crossborder.core.problems import problem


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int | None]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            # Refuse at once, as problem JSON, without reading a byte of the body.
            response = problem(413, detail=f"body larger than {limit} bytes")
            await response(scope, receive, send)
            return
        await RequestBodyLimitMiddleware(self.app, max_body_size=limit)(scope, receive, send)

"""Transports that carry a sealed envelope to a peer's inbox and bring its answer back.

The worker only needs ``post(base_url, token) -> TransportResponse``; anything that raises
:class:`~crossborder.federation.service.TransportError` counts as "unreachable" and is retried.

- :class:`HttpTransport`: HTTPS (httpx) to ``{base_url}/federation/v1/inbox`` with
  ``Content-Type: application/jose``. The answer is read up to a small limit: a receipt or a
  problem is a few hundred bytes, and a hostile peer must not make the worker buffer
  gigabytes. An ``httpx.Client`` may be injected (Starlette's ``TestClient`` is one).
- :class:`LocalTransport`: hands the token straight to another node's service in the same
  process (tests and the benchmark's in-process mode), answering exactly as the HTTP route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.orm import Session

from crossborder.federation import envelope as env
from crossborder.federation.service import TransportError, TransportResponse
from crossborder.settings import Settings

INBOX_PATH = "/federation/v1/inbox"
IDENTITY_PATH = "/federation/v1/identity"
MAX_ANSWER_BYTES = 256 * 1024


class HttpTransport:
    def __init__(
        self,
        timeout: float = 30.0,
        *,
        client: httpx.Client | None = None,
        verify: bool | str = True,
    ) -> None:
        self._own = client is None
        self._client = client or httpx.Client(
            timeout=timeout, verify=verify, follow_redirects=False
        )

    def post(self, base_url: str, token: str) -> TransportResponse:
        url = base_url.rstrip("/") + INBOX_PATH
        try:
            with self._client.stream(
                "POST",
                url,
                content=token.encode("ascii"),
                headers={"Content-Type": env.MEDIA_TYPE, "Accept": env.MEDIA_TYPE},
            ) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_ANSWER_BYTES:
                        raise TransportError("the peer's answer is too large")
                return TransportResponse(
                    status=response.status_code,
                    content_type=response.headers.get("content-type", ""),
                    body=bytes(body),
                )
        except httpx.HTTPError as exc:
            raise TransportError(type(exc).__name__) from None

    def close(self) -> None:
        if self._own:
            self._client.close()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def fetch_identity(base_url: str, *, timeout: float = 10.0, verify: bool | str = True) -> Any:
    """GET a peer's public identity document (its JWK Set and fingerprint)."""
    try:
        response = httpx.get(
            base_url.rstrip("/") + IDENTITY_PATH,
            timeout=timeout,
            verify=verify,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        raise TransportError(f"cannot reach {base_url}: {type(exc).__name__}") from None
    if response.status_code != 200 or len(response.content) > MAX_ANSWER_BYTES:
        raise TransportError(f"{base_url} answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise TransportError(f"{base_url} did not answer JSON") from None


class LocalTransport:
    """Deliver to nodes living in this process: ``{base_url: (settings, session_factory)}``."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[Settings, Callable[[], Session]]] = {}
        self.down: set[str] = set()  # base URLs that behave as unreachable
        self.posted: list[tuple[str, str]] = []

    def add(
        self, base_url: str, settings: Settings, session_factory: Callable[[], Session]
    ) -> None:
        self.nodes[base_url.rstrip("/")] = (settings, session_factory)

    def post(self, base_url: str, token: str) -> TransportResponse:
        from crossborder.federation.api import answer

        key = base_url.rstrip("/")
        self.posted.append((key, token))
        if key in self.down or key not in self.nodes:
            raise TransportError("ConnectError")
        settings, factory = self.nodes[key]
        session = factory()
        try:
            status, content_type, body = answer(session, token, settings=settings, remote_addr=None)
        finally:
            session.close()
        return TransportResponse(status=status, content_type=content_type, body=body)

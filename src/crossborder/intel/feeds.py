"""TAXII 2.1 feeds: partners' and vendors' collections this node pulls from or pushes to.

A feed (:class:`IntelFeed`) ties a remote TAXII collection (API root URL + collection id,
credentials) to one of the node's collections, in one direction, on a schedule. The worker
calls :func:`run_due`; ``crossborder intel feed run`` calls :func:`run_feeds`.

**Credentials** (HTTP basic ``user:password`` or a bearer token) are stored encrypted with
Fernet under a key derived from the node's secret key by HKDF (as the TOTP secrets are);
they are never logged nor audited, and a URL carrying credentials is refused. Rotating the
node's secret key makes them unreadable: such a feed fails with a clear outcome until its
credentials are entered again.

**Who acts.** A run acts as a principal of its own, ``feed <name>``, ``via="system"`` (so the
audit chain shows the feed, not a user), of the authority that owns the local collection, with
the analyst role (``intel:read`` and ``intel:write``, nothing else): it may only do what an
analyst of that authority could do with that collection.

**Pull** (incremental): ``GET objects`` with ``added_after`` = the feed's cursor (the last
``X-TAXII-Date-Added-Last`` the server sent; taxii2-client hides response headers, so a
response hook on its ``requests`` session reads them; if a server sends none, the newest
``date_added`` of its manifest is used), page by page following ``next``; each page is stored
with :func:`service.add_objects` and the cursor saved in the same transaction, so a failure
half-way keeps what was stored. Objects from the feed are **not the node's own**: their origin
is the feed's ``origin_authority_id`` (the partner authority, if it is in the directory), else
:data:`OUTSIDE_SOURCE` — never the holding authority, which would then count as their
originator and could pass AMBER and RED on. Invalid objects are counted, not stored.

**Push** (incremental): the versions added to the local collection since the cursor, each
decided by :func:`markings.may_pass_on` with the holding authority (the collection's owner) as
holder and the feed's audience as recipient: a partner ``feed:<name>`` (a TLP:RED object goes
only if its LE-handling marking names that partner), or, when the feed has an
``origin_authority_id``, that authority. What may go is exported with
:func:`service.export_bundle` (which checks again, adds the marking and extension
definitions the objects need, and audits) and sent in envelopes of :data:`ENVELOPE_SIZE`;
what was withheld is counted by reason in ``last_outcome``.

Each feed's run is independent: a network error, a 401, an unreadable secret, or anything
else is recorded in that feed's ``last_outcome`` (and the audit chain) and the next feed runs.
"""

from __future__ import annotations

import base64
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from requests.adapters import HTTPAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

import requests
from crossborder.audit.service import record
from crossborder.auth.permissions import Permission, Principal, Role, require
from crossborder.core.clock import ensure_utc, utc_now
from crossborder.core.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from crossborder.db.session import atomic, unit_of_work
from crossborder.directory.models import Authority
from crossborder.intel import markings, service, stix
from crossborder.intel.models import IntelCollection, IntelFeed, IntelObject
from crossborder.settings import Settings

log = logging.getLogger(__name__)

DIRECTIONS: Final = ("pull", "push")
AUTH_KINDS: Final = ("none", "basic", "bearer")
PAGE_SIZE: Final = 100
ENVELOPE_SIZE: Final = 100
HTTP_TIMEOUT: Final = 60.0
MAX_INTERVAL_MINUTES: Final = 30 * 24 * 60
OUTCOME_MAX: Final = 300
# The origin of pulled objects when the feed names no authority of the directory: no authority
# here is their originator, so nobody here may pass on more than CLEAR and GREEN of them.
OUTSIDE_SOURCE: Final = -1
_HKDF_INFO: Final = b"crossborder/intel/feed-secret/v1"
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,199}")
_REMOTE_ID_RE: Final = re.compile(r"[A-Za-z0-9._~-]{1,100}")
_PUSH_BATCH: Final = 500


class FeedSecretUnreadableError(Exception):
    """The stored credentials cannot be decrypted (the node's secret key changed)."""


# --- credentials ------------------------------------------------------------------------------


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(secret_key: str, secret: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode()).decode("ascii")


def decrypt_secret(secret_key: str, token: str) -> str:
    try:
        return _fernet(secret_key).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise FeedSecretUnreadableError(
            "the feed's credentials cannot be decrypted with this node's secret key"
        ) from exc


@dataclass(frozen=True)
class Credentials:
    kind: str  # none | basic | bearer
    user: str | None = None
    secret: str | None = None  # the password or the token

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(kind={self.kind!r}, user={self.user!r})"


def credentials_of(secret_key: str, feed: IntelFeed) -> Credentials:
    """The feed's credentials in clear (for the TAXII client only)."""
    if feed.auth_kind == "none" or not feed.secret:
        return Credentials("none")
    clear = decrypt_secret(secret_key, feed.secret)
    if feed.auth_kind == "basic":
        user, _, password = clear.partition(":")
        return Credentials("basic", user=user, secret=password)
    return Credentials("bearer", secret=clear)


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>`` (taxii2-client's TokenAuth sends ``Token <key>``)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "BearerAuth(…)"


# --- managing feeds ---------------------------------------------------------------------------


def normalise_api_root(url: str) -> str:
    """An http(s) API root URL without credentials, query or fragment, ending in ``/``."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("the API root is an http:// or https:// URL", field="api_root_url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            "put no credentials in the URL: give them as the feed's credentials",
            field="api_root_url",
        )
    if parts.query or parts.fragment:
        raise InvalidInput("the API root URL has no query or fragment", field="api_root_url")
    if not text.endswith("/"):
        text += "/"
    if len(text) > 500:
        raise InvalidInput("the API root URL is longer than 500 characters", field="api_root_url")
    return text


def _owned_collection(
    session: Session, actor: Principal, collection: IntelCollection | str
) -> IntelCollection:
    item = (
        service.get_collection(session, actor, collection)
        if isinstance(collection, str)
        else collection
    )
    if item.owner_authority_id != actor.authority_id:
        raise PermissionDenied("only the administrators of the owning authority manage its feeds")
    return item


@atomic
def add_feed(
    session: Session,
    actor: Principal,
    *,
    secret_key: str,
    name: str,
    direction: str,
    api_root_url: str,
    remote_collection_id: str,
    collection: IntelCollection | str,
    auth_kind: str = "none",
    user: str | None = None,
    secret: str | None = None,
    interval_minutes: int = 60,
    origin_authority_id: int | None = None,
    enabled: bool = True,
) -> IntelFeed:
    """Register a feed (``intel:manage``, on a collection of the actor's authority).

    ``secret`` is the password (basic, with ``user``) or the token (bearer); it is stored
    encrypted. ``origin_authority_id``: the partner authority behind the remote collection,
    if it is in the directory (the originator of what is pulled, the recipient of what is
    pushed). The feed is due at once.
    """
    require(actor, Permission.INTEL_MANAGE)
    local = _owned_collection(session, actor, collection)
    name = name.strip()
    if not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            "a feed name is 1-200 letters, digits, spaces, '.', '_' or '-'", field="name"
        )
    if session.scalar(select(IntelFeed.id).where(IntelFeed.name == name)) is not None:
        raise Conflict(f"there is already a feed named '{name}'")
    if direction not in DIRECTIONS:
        raise InvalidInput("the direction is pull or push", field="direction")
    url = normalise_api_root(api_root_url)
    remote_collection_id = remote_collection_id.strip()
    if not _REMOTE_ID_RE.fullmatch(remote_collection_id):
        raise InvalidInput(
            "a TAXII collection id is 1-100 letters, digits, '.', '_', '~' or '-'",
            field="remote_collection_id",
        )
    if not 1 <= interval_minutes <= MAX_INTERVAL_MINUTES:
        raise InvalidInput(
            f"the interval is 1 to {MAX_INTERVAL_MINUTES} minutes", field="interval_minutes"
        )
    if origin_authority_id is not None and session.get(Authority, origin_authority_id) is None:
        raise NotFound("no such authority")
    stored = _stored_secret(secret_key, auth_kind, user, secret)
    feed = IntelFeed(
        name=name,
        direction=direction,
        api_root_url=url,
        remote_collection_id=remote_collection_id,
        auth_kind=auth_kind,
        secret=stored,
        collection_id=local.id,
        origin_authority_id=origin_authority_id,
        interval_minutes=interval_minutes,
        enabled=enabled,
        next_run_at=utc_now(),
    )
    session.add(feed)
    session.flush()
    record(
        session,
        actor=actor,
        action="intel.feed_added",
        object_type="intel_feed",
        object_id=feed.id,
        details={
            "name": name,
            "direction": direction,
            "api_root_url": url,
            "remote_collection_id": remote_collection_id,
            "collection": local.public_id,
            "auth_kind": auth_kind,
            "interval_minutes": interval_minutes,
            "origin_authority_id": origin_authority_id,
        },
    )
    return feed


def _stored_secret(
    secret_key: str, auth_kind: str, user: str | None, secret: str | None
) -> str | None:
    if auth_kind == "none":
        if user or secret:
            raise InvalidInput("credentials given for a feed without authentication", field="auth")
        return None
    if auth_kind == "basic":
        if not user or ":" in user or len(user) > 200:
            raise InvalidInput("basic authentication needs a user name without ':'", field="user")
        if not secret:
            raise InvalidInput("basic authentication needs a password", field="secret")
        return encrypt_secret(secret_key, f"{user}:{secret}")
    if auth_kind == "bearer":
        if user:
            raise InvalidInput("a bearer token goes without a user name", field="user")
        if not secret or any(c.isspace() for c in secret):
            raise InvalidInput("a bearer token is one word", field="secret")
        return encrypt_secret(secret_key, secret)
    raise InvalidInput("authentication is none, basic or bearer", field="auth_kind")


def list_feeds(session: Session, actor: Principal) -> list[IntelFeed]:
    """The feeds of the collections the actor's authority owns (``intel:manage``)."""
    require(actor, Permission.INTEL_MANAGE)
    return list(
        session.scalars(
            select(IntelFeed)
            .join(IntelCollection, IntelCollection.id == IntelFeed.collection_id)
            .where(IntelCollection.owner_authority_id == actor.authority_id)
            .order_by(IntelFeed.name)
        )
    )


def get_feed(session: Session, actor: Principal, name: str) -> IntelFeed:
    for feed in list_feeds(session, actor):
        if feed.name == name.strip():
            return feed
    raise NotFound(f"no feed named '{name}'")


@atomic
def set_enabled(session: Session, actor: Principal, name: str, *, enabled: bool) -> IntelFeed:
    feed = get_feed(session, actor, name)
    feed.enabled = enabled
    if enabled:
        feed.next_run_at = utc_now()
    record(
        session,
        actor=actor,
        action="intel.feed_enabled" if enabled else "intel.feed_disabled",
        object_type="intel_feed",
        object_id=feed.id,
        details={"name": feed.name},
    )
    return feed


# --- the remote side ----------------------------------------------------------------------


class _TimeoutAdapter(HTTPAdapter):
    """requests has no session-wide timeout, and taxii2-client passes none: a worker must not
    hang on a silent server."""

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        return super().send(
            request,
            stream=stream,
            timeout=HTTP_TIMEOUT if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


class Remote:
    """A taxii2-client ``Collection`` with the credentials, a timeout, and the last response's
    headers (``X-TAXII-Date-Added-Last``) kept."""

    def __init__(self, feed: IntelFeed, credentials: Credentials) -> None:
        from taxii2client.v21 import Collection

        url = f"{feed.api_root_url}collections/{feed.remote_collection_id}/"
        if credentials.kind == "basic":
            self.collection = Collection(url, user=credentials.user, password=credentials.secret)
        elif credentials.kind == "bearer":
            self.collection = Collection(url, auth=BearerAuth(credentials.secret or ""))
        else:
            self.collection = Collection(url)
        http: requests.Session = self.collection._conn.session
        http.mount("http://", _TimeoutAdapter())
        http.mount("https://", _TimeoutAdapter())
        http.hooks["response"].append(self._keep_headers)
        self.headers: Mapping[str, str] = {}

    def _keep_headers(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.headers = dict(response.headers)

    def pages(self, added_after: str | None) -> Iterator[tuple[list[Any], str | None]]:
        """(objects, X-TAXII-Date-Added-Last) per page, following ``next``."""
        from taxii2client.v21 import as_pages

        filters = {"added_after": added_after} if added_after else {}
        for envelope in as_pages(self.collection.get_objects, per_request=PAGE_SIZE, **filters):
            objects = envelope.get("objects") if isinstance(envelope, dict) else None
            last = {k.lower(): v for k, v in self.headers.items()}.get("x-taxii-date-added-last")
            yield (objects if isinstance(objects, list) else []), last

    def newest_in_manifest(self, added_after: str | None) -> str | None:
        from taxii2client.v21 import as_pages

        filters = {"added_after": added_after} if added_after else {}
        newest: tuple[datetime, str] | None = None
        for envelope in as_pages(self.collection.get_manifest, per_request=PAGE_SIZE, **filters):
            for entry in envelope.get("objects") or []:
                text = entry.get("date_added") if isinstance(entry, dict) else None
                when = stix.parse_timestamp(text)
                if (
                    when is not None
                    and isinstance(text, str)
                    and (newest is None or when > newest[0])
                ):
                    newest = (when, text)
        return newest[1] if newest else None

    def send(self, objects: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
        """Add one envelope; the ids the remote status lists as stored, and as refused."""
        status = self.collection.add_objects({"objects": objects})

        def ids(items: object) -> list[str]:
            found = items if isinstance(items, list) else []
            return [str(i.get("id")) for i in found if isinstance(i, dict)]

        return ids(status.successes), ids(status.failures)

    def close(self) -> None:
        self.collection.close()


# --- running feeds ----------------------------------------------------------------------------


@dataclass
class FeedRun:
    name: str
    direction: str
    ok: bool = True
    error: str | None = None
    received: int = 0
    stored: int = 0
    already_present: int = 0
    invalid: int = 0
    considered: int = 0
    sent: int = 0
    refused: int = 0
    withheld: Counter[str] = field(default_factory=Counter)

    @property
    def withheld_count(self) -> int:
        return sum(self.withheld.values())

    def summary(self) -> str:
        if self.direction == "pull":
            text = (
                f"pulled {self.received}: stored {self.stored}, "
                f"already present {self.already_present}, invalid {self.invalid}"
            )
        else:
            text = (
                f"pushed {self.sent} of {self.considered} new"
                + (f" (refused by the partner {self.refused})" if self.refused else "")
                + f"; withheld {self.withheld_count}"
            )
            if self.withheld:
                text += " (" + "; ".join(f"{r}: {n}" for r, n in self.withheld.most_common()) + ")"
        text = ("ok: " if self.ok else f"failed: {self.error}; ") + text
        return text if len(text) <= OUTCOME_MAX else text[: OUTCOME_MAX - 1] + "…"


def feed_actor(feed: IntelFeed, collection: IntelCollection) -> Principal:
    """The principal a feed acts as: an analyst of the authority owning the local collection."""
    return Principal(
        user_id=0,
        username=f"feed {feed.name}"[:200],
        authority_id=collection.owner_authority_id,
        roles=frozenset({Role.ANALYST}),
        via="system",
    )


def audience_of_feed(feed: IntelFeed) -> markings.Audience:
    """Whom a push sends to: the partner authority, or a partner named ``feed:<name>``."""
    if feed.origin_authority_id is not None:
        return markings.Audience(
            markings.AudienceKind.AUTHORITY, authority_id=feed.origin_authority_id
        )
    return markings.Audience(markings.AudienceKind.PARTNER, partner=f"feed:{feed.name}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        hint = {401: "credentials refused", 403: "access refused", 404: "no such collection"}
        return f"HTTP {code}" + (f" ({hint[code]})" if code in hint else "")
    if isinstance(exc, requests.ConnectionError):
        return "the server could not be reached"
    if isinstance(exc, requests.Timeout):
        return "the server did not answer in time"
    if isinstance(exc, DomainError):
        return exc.detail
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


def _pull(
    session: Session, feed: IntelFeed, collection: IntelCollection, remote: Remote, run: FeedRun
) -> None:
    actor = feed_actor(feed, collection)
    origin = feed.origin_authority_id if feed.origin_authority_id is not None else OUTSIDE_SOURCE
    cursor = feed.cursor
    missing_header = False
    for objects, last in remote.pages(cursor):
        with unit_of_work(session):
            if objects:
                result = service.add_objects(
                    session,
                    actor,
                    collection,
                    objects,
                    origin_authority_id=origin,
                    source="received",
                )
                run.received += result.total_count
                run.stored += result.success_count
                run.already_present += result.already_present
                run.invalid += result.invalid
            if last:
                feed.cursor = last[:40]
            elif objects:
                missing_header = True
    if missing_header:
        newest = remote.newest_in_manifest(cursor)
        if newest:
            with unit_of_work(session):
                feed.cursor = newest[:40]


def _new_rows(
    session: Session, collection: IntelCollection, after: datetime | None
) -> Iterator[list[IntelObject]]:
    """The versions added to ``collection`` after ``after``, in order, in batches."""
    while True:
        stmt = (
            select(IntelObject)
            .where(IntelObject.collection_id == collection.id)
            .order_by(IntelObject.date_added, IntelObject.id)
            .limit(_PUSH_BATCH)
        )
        if after is not None:
            stmt = stmt.where(IntelObject.date_added > after)
        rows = list(session.scalars(stmt))
        if not rows:
            return
        yield rows
        after = ensure_utc(rows[-1].date_added)
        if len(rows) < _PUSH_BATCH:
            return


def _push(
    session: Session, feed: IntelFeed, collection: IntelCollection, remote: Remote, run: FeedRun
) -> None:
    actor = feed_actor(feed, collection)
    audience = audience_of_feed(feed)
    holder = collection.owner_authority_id
    after = stix.parse_timestamp(feed.cursor) if feed.cursor else None
    for rows in _new_rows(session, collection, after):
        passable: list[str] = []
        for row in rows:
            run.considered += 1
            decision = markings.may_pass_on(
                service.handling_of_row(row), row.origin_authority_id, holder, audience
            )
            if decision:
                passable.append(row.stix_id)
            else:
                run.withheld[decision.reason or "may not be passed on"] += 1
        objects: list[dict[str, Any]] = []
        if passable:
            with unit_of_work(session):  # the export is audited: commit before the network
                bundle, left_out = service.export_bundle(
                    session, actor, collection, ids=list(dict.fromkeys(passable)), audience=audience
                )
            if left_out:  # decided again at export (a newer version's markings)
                run.withheld["withheld at export"] += len(left_out)
            objects = [o for o in bundle["objects"] if isinstance(o, dict)]
        else:
            session.commit()  # no transaction stays open while the network is waited for
        wanted = set(passable)  # not the definitions that come along with them
        for start in range(0, len(objects), ENVELOPE_SIZE):
            stored, refused = remote.send(objects[start : start + ENVELOPE_SIZE])
            run.sent += sum(1 for i in stored if i in wanted)
            run.refused += sum(1 for i in refused if i in wanted)
        with unit_of_work(session):
            feed.cursor = stix.format_timestamp(ensure_utc(rows[-1].date_added))


def _run_one(
    settings: Settings, session_factory: Callable[[], Session], feed_id: int, now: datetime
) -> FeedRun:
    session = session_factory()
    try:
        feed = session.get(IntelFeed, feed_id)
        if feed is None:
            return FeedRun(name=f"#{feed_id}", direction="?", ok=False, error="gone")
        run = FeedRun(name=feed.name, direction=feed.direction)
        remote: Remote | None = None
        try:
            collection = session.get(IntelCollection, feed.collection_id)
            if collection is None:
                raise NotFound("the feed's collection is gone")
            remote = Remote(feed, credentials_of(settings.secret_key, feed))
            session.commit()  # end the read: nothing is held while the partner answers
            if feed.direction == "pull":
                _pull(session, feed, collection, remote, run)
            else:
                _push(session, feed, collection, remote, run)
        except Exception as exc:  # one feed's failure never stops the others
            session.rollback()
            run.ok = False
            run.error = _describe(exc)
            log.warning("intel feed %s failed: %s", run.name, run.error)
            log.debug("intel feed %s failure", run.name, exc_info=True)
        finally:
            if remote is not None:
                remote.close()
        with unit_of_work(session):
            feed = session.get(IntelFeed, feed_id, populate_existing=True)
            if feed is None:
                return run
            feed.last_run_at = now
            feed.next_run_at = max(now, utc_now()) + timedelta(minutes=feed.interval_minutes)
            feed.last_outcome = run.summary()
            record(
                session,
                actor=_audit_actor(session, feed),
                action="intel.feed_run",
                object_type="intel_feed",
                object_id=feed.id,
                outcome="ok" if run.ok else "failed",
                reason=run.error,
                details=_run_details(run),
            )
        return run
    finally:
        session.close()


def _audit_actor(session: Session, feed: IntelFeed) -> Principal | None:
    collection = session.get(IntelCollection, feed.collection_id)
    return feed_actor(feed, collection) if collection is not None else None


def _run_details(run: FeedRun) -> dict[str, Any]:
    details: dict[str, Any] = {"name": run.name, "direction": run.direction}
    if run.direction == "pull":
        details |= {
            "received": run.received,
            "stored": run.stored,
            "already_present": run.already_present,
            "invalid": run.invalid,
        }
    else:
        details |= {
            "considered": run.considered,
            "sent": run.sent,
            "refused": run.refused,
            "withheld": dict(run.withheld),
        }
    return details


def _claim(
    session_factory: Callable[[], Session],
    now: datetime,
    *,
    names: Iterable[str] | None,
    due_only: bool,
) -> list[int]:
    """The feeds to run now; their next run is pushed back first, so that two workers do not
    run the same feed at once (row locks on PostgreSQL, the database lock on SQLite)."""
    session = session_factory()
    try:
        with unit_of_work(session):
            stmt = select(IntelFeed).where(IntelFeed.enabled.is_(True)).order_by(IntelFeed.id)
            if due_only:
                stmt = stmt.where(
                    (IntelFeed.next_run_at.is_(None)) | (IntelFeed.next_run_at <= now)
                )
            if names is not None:
                stmt = stmt.where(IntelFeed.name.in_(list(names)))
            feeds = list(session.scalars(stmt.with_for_update(skip_locked=True)))
            for feed in feeds:
                feed.next_run_at = now + timedelta(minutes=feed.interval_minutes)
            return [feed.id for feed in feeds]
    finally:
        session.close()


def run_feeds(
    settings: Settings,
    session_factory: Callable[[], Session],
    *,
    names: Iterable[str] | None = None,
    due_only: bool = True,
    now: datetime | None = None,
) -> list[FeedRun]:
    """Run the enabled feeds (those due, or all; or those named), one after the other."""
    at = now or utc_now()
    wanted = list(names) if names is not None else None
    return [
        _run_one(settings, session_factory, feed_id, at)
        for feed_id in _claim(session_factory, at, names=wanted, due_only=due_only)
    ]


def run_due(
    settings: Settings, session_factory: Callable[[], Session], *, now: datetime | None = None
) -> dict[str, int]:
    """One pass for ``crossborder worker``: run the feeds that are due; counts for its log."""
    runs = run_feeds(settings, session_factory, now=now)
    return {
        "intel_feeds_run": len(runs),
        "intel_feeds_failed": sum(1 for r in runs if not r.ok),
        "intel_pulled_stored": sum(r.stored for r in runs),
        "intel_pushed": sum(r.sent for r in runs),
        "intel_push_withheld": sum(r.withheld_count for r in runs),
    }

"""`crossborder … feed|misp …`: TAXII feeds of a collection, and MISP events in and out.

Two Typer apps, thin over :mod:`crossborder.intel.feeds` and :mod:`crossborder.intel.misp`:

* ``feeds_app``: ``add``, ``list``, ``run``, ``enable``, ``disable`` (administrators of the
  authority owning the collection, ``--as``). Credentials come from standard input only
  (``--password-stdin``, ``--token-stdin``), never from the command line;
* ``misp_app``: ``import``, ``import-feed``, ``export`` (``--as`` a user who may write, or
  read, the collection).

Until they are registered in :mod:`crossborder.cli.main`, ``python -m
crossborder.cli.intel_feeds feed …`` / ``misp …`` runs them with the main command's error
handling.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from crossborder.cli import context
from crossborder.core.errors import InvalidInput
from crossborder.db.session import make_engine, make_session_factory, unit_of_work
from crossborder.intel import feeds, markings, misp, service
from crossborder.intel.models import IntelCollection

feeds_app = typer.Typer(
    help="TAXII feeds: partners' and vendors' collections pulled or pushed on a schedule.",
    no_args_is_help=True,
)
misp_app = typer.Typer(
    help="MISP events and feeds into a collection, and a collection out as a MISP event.",
    no_args_is_help=True,
)

AsUser = Annotated[str, typer.Option("--as", help="Act as this user (their authority and roles).")]
CollectionRef = Annotated[
    str, typer.Option("--collection", help="The local collection: its alias or id.")
]


class Direction(StrEnum):
    PULL = "pull"
    PUSH = "push"


class ExportAudience(StrEnum):
    PARTNER = "partner"
    PUBLIC = "public"


def _read_secret(label: str) -> str:
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise InvalidInput(f"no {label} on standard input", field=label)
    return value


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value is not None else "-"


# --- feeds -------------------------------------------------------------------------------------


@feeds_app.command("add")
def feed_add(
    name: Annotated[str, typer.Argument(help="A name for the feed (unique on this node).")],
    as_user: AsUser,
    url: Annotated[str, typer.Option("--url", help="The partner's TAXII 2.1 API root URL.")],
    remote_collection: Annotated[
        str, typer.Option("--remote-collection", help="The collection id at the partner.")
    ],
    collection: CollectionRef,
    direction: Annotated[
        Direction, typer.Option(help="pull: bring their objects in; push: send ours.")
    ] = Direction.PULL,
    user: Annotated[
        str | None, typer.Option("--user", help="HTTP basic user (password on stdin).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the basic password from stdin.")
    ] = False,
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read a bearer token from stdin.")
    ] = False,
    every: Annotated[
        int,
        typer.Option(
            "--every", min=1, max=feeds.MAX_INTERVAL_MINUTES, help="Minutes between runs."
        ),
    ] = 60,
    authority: Annotated[
        int | None,
        typer.Option(
            "--authority",
            help="Id of the partner authority in the directory (origin of what is pulled, "
            "recipient of what is pushed).",
        ),
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
) -> None:
    """Register a feed of a collection your authority owns; it runs at once, then every N min."""
    if password_stdin and token_stdin:
        raise InvalidInput("give --password-stdin or --token-stdin, not both", field="auth")
    if user is not None and not password_stdin:
        raise InvalidInput("--user needs --password-stdin", field="auth")
    if password_stdin and user is None:
        raise InvalidInput("--password-stdin needs --user", field="auth")
    auth_kind, secret = "none", None
    if password_stdin:
        auth_kind, secret = "basic", _read_secret("password")
    elif token_stdin:
        auth_kind, secret = "bearer", _read_secret("token")
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session, unit_of_work(session):
        actor = context.act_as(session, as_user)
        feed = feeds.add_feed(
            session,
            actor,
            secret_key=settings.secret_key,
            name=name,
            direction=direction.value,
            api_root_url=url,
            remote_collection_id=remote_collection,
            collection=collection,
            auth_kind=auth_kind,
            user=user,
            secret=secret,
            interval_minutes=every,
            origin_authority_id=authority,
            enabled=not disabled,
        )
        feed_id, feed_name = feed.id, feed.name
    typer.echo(f"feed {feed_name} added (id {feed_id}, {direction.value}, every {every} min)")


@feeds_app.command("list")
def feed_list(
    as_user: AsUser,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per feed.")] = False,
) -> None:
    """The feeds of your authority's collections (credentials are never shown)."""
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session, unit_of_work(session):
        actor = context.act_as(session, as_user)
        rows = []
        for feed in feeds.list_feeds(session, actor):
            local = session.get(IntelCollection, feed.collection_id)
            rows.append(
                {
                    "name": feed.name,
                    "direction": feed.direction,
                    "api_root_url": feed.api_root_url,
                    "remote_collection": feed.remote_collection_id,
                    "collection": (local.alias or local.public_id) if local else None,
                    "auth": feed.auth_kind,
                    "every_minutes": feed.interval_minutes,
                    "enabled": feed.enabled,
                    "cursor": feed.cursor,
                    "last_run_at": _when(feed.last_run_at),
                    "next_run_at": _when(feed.next_run_at),
                    "last_outcome": feed.last_outcome,
                }
            )
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        typer.echo("no feeds")
        return
    for row in rows:
        state = "on" if row["enabled"] else "off"
        typer.echo(
            f"{row['name']}\t{row['direction']}\t{state}\tevery {row['every_minutes']} min\t"
            f"{row['api_root_url']}collections/{row['remote_collection']}/ <-> "
            f"{row['collection']}\tauth {row['auth']}\tlast {row['last_run_at']}\t"
            f"next {row['next_run_at']}\t{row['last_outcome'] or '-'}"
        )


@feeds_app.command("run")
def feed_run(
    as_user: AsUser,
    name: Annotated[
        str | None, typer.Argument(help="Run this feed only (default: all your enabled feeds).")
    ] = None,
) -> None:
    """Run feeds now, due or not; exits 1 if one of them failed."""
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session, unit_of_work(session):
        actor = context.act_as(session, as_user)
        names = (
            [feeds.get_feed(session, actor, name).name]
            if name is not None
            else [f.name for f in feeds.list_feeds(session, actor) if f.enabled]
        )
    if not names:
        typer.echo("no enabled feeds")
        return
    engine = make_engine(settings.resolved_database_url)
    try:
        factory = make_session_factory(engine, data_dir=settings.data_dir)
        runs = feeds.run_feeds(settings, factory, names=names, due_only=False)
    finally:
        engine.dispose()
    if name is not None and not runs:
        typer.echo(f"feed {name} is disabled", err=True)
        raise typer.Exit(1)
    for run in runs:
        typer.echo(f"{run.name} ({run.direction}): {run.summary()}")
    if any(not run.ok for run in runs):
        raise typer.Exit(1)


def _switch(name: str, as_user: str, *, enabled: bool) -> None:
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session, unit_of_work(session):
        feeds.set_enabled(session, context.act_as(session, as_user), name, enabled=enabled)
    typer.echo(f"feed {name} {'enabled' if enabled else 'disabled'}")


@feeds_app.command("enable")
def feed_enable(name: Annotated[str, typer.Argument(help="The feed.")], as_user: AsUser) -> None:
    """Switch a feed on (it runs at the next worker sweep)."""
    _switch(name, as_user, enabled=True)


@feeds_app.command("disable")
def feed_disable(name: Annotated[str, typer.Argument(help="The feed.")], as_user: AsUser) -> None:
    """Switch a feed off."""
    _switch(name, as_user, enabled=False)


# --- MISP ----------------------------------------------------------------------------------


def _read_event(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        import httpx

        try:
            with (
                httpx.Client(timeout=misp.HTTP_TIMEOUT, follow_redirects=True) as client,
                client.stream("GET", source) as response,
            ):
                if response.status_code >= 400:
                    raise InvalidInput(f"HTTP {response.status_code} from {source}")
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > misp.MAX_EVENT_BYTES:
                        raise InvalidInput("the MISP event is larger than 50 MB")
                return bytes(data)
        except httpx.HTTPError as exc:
            raise InvalidInput(f"{source} could not be read: {exc}") from None
    path = Path(source)
    if not path.is_file():
        raise InvalidInput(f"no such file: {source}", field="file")
    if path.stat().st_size > misp.MAX_EVENT_BYTES:
        raise InvalidInput("the MISP event is larger than 50 MB", field="file")
    return path.read_bytes()


@misp_app.command("import")
def misp_import(
    source: Annotated[str, typer.Argument(metavar="FILE|URL", help="A MISP event (JSON).")],
    collection: CollectionRef,
    as_user: AsUser,
) -> None:
    """Import one MISP event into a collection (its TLP tags become TLP 2.0 markings)."""
    data = _read_event(source)
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session, unit_of_work(session):
        actor = context.act_as(session, as_user)
        target = service.get_collection(session, actor, collection)
        result = misp.import_misp_event(session, actor, target, data)
    typer.echo(
        f"{result.success_count} objects stored, {result.already_present} already present, "
        f"{result.invalid} invalid (status {result.id})"
    )
    for failure in result.failures:
        if failure.get("message") != service.ALREADY_PRESENT:
            typer.echo(f"{failure.get('id')}: {failure.get('message')}", err=True)


@misp_app.command("import-feed")
def misp_import_feed(
    source: Annotated[
        str, typer.Argument(metavar="DIR|URL", help="A MISP feed (manifest.json + events).")
    ],
    collection: CollectionRef,
    as_user: AsUser,
    since: Annotated[
        int, typer.Option(min=0, help="Only events newer than this timestamp (from last run).")
    ] = 0,
) -> None:
    """Import the events of a MISP feed newer than --since; prints the next --since."""
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session:
        with unit_of_work(session):
            actor = context.act_as(session, as_user)
            target = service.get_collection(session, actor, collection)
        result = misp.import_misp_feed(session, actor, target, source, since=since)
    for event in result.events:
        if event.error is not None:
            typer.echo(f"event {event.uuid}: {event.error}", err=True)
    typer.echo(
        f"{result.imported} events imported, {result.failed} failed, {result.skipped} not "
        f"newer; {result.stored} objects stored, {result.already_present} already present, "
        f"{result.invalid} invalid; next --since {result.next_since}"
    )
    if result.failed:
        raise typer.Exit(1)


@misp_app.command("export")
def misp_export(
    collection: CollectionRef,
    as_user: AsUser,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here (default: stdout).")
    ] = None,
    event: Annotated[
        str | None, typer.Option("--event", help="Only this MISP event (its uuid).")
    ] = None,
    info: Annotated[str | None, typer.Option(help="The event's title.")] = None,
    audience: Annotated[
        ExportAudience,
        typer.Option(help="Who receives it: partner (default) or public (TLP:CLEAR only)."),
    ] = ExportAudience.PARTNER,
) -> None:
    """A collection (what you may pass on) as one MISP event, {"Event": {...}} JSON."""
    settings = context.settings()
    context.require_migrated(settings)
    kind = (
        markings.AudienceKind.PUBLIC
        if audience is ExportAudience.PUBLIC
        else markings.AudienceKind.PARTNER
    )
    with context.session_scope(settings) as session, unit_of_work(session):
        actor = context.act_as(session, as_user)
        source = service.get_collection(session, actor, collection)
        result = misp.export_misp(
            session,
            actor,
            source,
            event_uuid=event,
            info=info,
            audience=markings.Audience(kind),
        )
    text = json.dumps({"Event": result.event}, ensure_ascii=False, indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
    event_data: dict[str, Any] = result.event
    typer.echo(
        f"{len(event_data.get('Attribute', []))} attributes, "
        f"{len(event_data.get('Object', []))} objects exported; "
        f"{len(result.left_out)} objects withheld by their markings",
        err=True,
    )
    for message in result.messages[:20]:
        typer.echo(f"converter: {message}", err=True)


def _standalone() -> None:  # pragma: no cover - exercised as a process by the tests
    from crossborder.cli import main as cli

    cli.app.add_typer(feeds_app, name="feed")
    cli.app.add_typer(misp_app, name="misp")
    cli.main()


if __name__ == "__main__":
    _standalone()

"""`crossborder intel`: intelligence collections, bundle import (with a progress bar), export."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from crossborder.cli import context
from crossborder.cli.intel_feeds import feeds_app, misp_app
from crossborder.core.errors import InvalidInput
from crossborder.db.session import unit_of_work
from crossborder.intel import bundles, service

intel_app = typer.Typer(
    help="Threat intelligence: STIX 2.1 collections, bundle import and export.",
    no_args_is_help=True,
)
collection_app = typer.Typer(
    help="Collections and who may read or write them.", no_args_is_help=True
)
intel_app.add_typer(collection_app, name="collection")
intel_app.add_typer(feeds_app, name="feed")
intel_app.add_typer(misp_app, name="misp")

AsUser = Annotated[str, typer.Option("--as", help="Act as this user (their authority and roles).")]
CollectionRef = Annotated[
    str, typer.Option("--collection", help="The collection's alias or id.", show_default=False)
]


@collection_app.command("create")
def create_command(
    title: Annotated[str, typer.Argument(help="The collection's title.")],
    as_user: AsUser,
    alias: Annotated[str | None, typer.Option(help="A short name, e.g. vn-ransomware.")] = None,
    description: Annotated[str, typer.Option(help="What the collection holds.")] = "",
) -> None:
    """Create a collection owned by your authority; prints its id."""
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session, unit_of_work(session):
        actor = context.act_as(session, as_user)
        item = service.create_collection(
            session, actor, title=title, description=description, alias=alias
        )
        public_id = item.public_id
    typer.echo(public_id)


@collection_app.command("grant")
def grant_command(
    ref: Annotated[str, typer.Argument(metavar="ALIAS", help="The collection's alias or id.")],
    as_user: AsUser,
    authority: Annotated[
        str | None, typer.Option(help="The authority's short name (or id), e.g. AU-AFP.")
    ] = None,
    token_id: Annotated[
        int | None, typer.Option("--token-id", help="An API token (a private partner).")
    ] = None,
    read: Annotated[bool, typer.Option("--read/--no-read", help="May read.")] = True,
    write: Annotated[bool, typer.Option("--write/--no-write", help="May write.")] = False,
) -> None:
    """Let an authority or an API token read (and --write) a collection.

    --no-read without --write takes the access away.
    """
    if (authority is None) == (token_id is None):
        raise InvalidInput("give exactly one of --authority or --token-id", field="grantee")
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session, unit_of_work(session):
        actor = context.act_as(session, as_user)
        item = service.get_collection(session, actor, ref)
        authority_id = service.find_authority(session, authority).id if authority else None
        service.grant(
            session,
            actor,
            item,
            authority_id=authority_id,
            token_id=token_id,
            can_read=read,
            can_write=write,
        )
    grantee = f"authority {authority}" if authority else f"token {token_id}"
    rights = "/".join(r for r, on in (("read", read), ("write", write)) if on) or "no access"
    typer.echo(f"{grantee}: {rights}")


@collection_app.command("list")
def list_command(as_user: AsUser) -> None:
    """The collections you may read or write: alias, id, access, title."""
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session:
        actor = context.act_as(session, as_user)
        found = service.list_collections(session, actor)
        for item in found:
            rights = ("r" if item.can_read else "-") + ("w" if item.can_write else "-")
            c = item.collection
            typer.echo(f"{c.alias or '-'}\t{c.public_id}\t{rights}\t{c.title}")


@intel_app.command("import")
def import_command(
    source: Annotated[str, typer.Argument(metavar="FILE|URL", help="A STIX 2.1 bundle.")],
    collection: CollectionRef,
    as_user: AsUser,
) -> None:
    """Import a STIX 2.1 bundle into a collection, with a progress bar on standard error.

    Invalid objects and objects already present are counted and skipped; the rest is stored
    in one transaction.
    """
    settings = context.settings()
    context.require_migrated(settings)
    objects = bundles.read_source(source)
    with context.session_scope(settings) as session:
        actor = context.act_as(session, as_user)
        item = service.get_collection(session, actor, collection)
        service.require_write(session, actor, item)
        with typer.progressbar(length=len(objects), label="importing", file=sys.stderr) as bar:
            report = bundles.import_objects(session, actor, item, objects, progress=bar.update)
        name = item.alias or item.public_id
    typer.echo(f"{name}: {report.summary()}")
    for line in report.errors:
        typer.echo(line, err=True)


@intel_app.command("export")
def export_command(
    collection: CollectionRef,
    as_user: AsUser,
    types: Annotated[
        list[str] | None, typer.Option("--type", help="Only objects of this type (repeatable).")
    ] = None,
    ids: Annotated[
        list[str] | None, typer.Option("--id", help="Only this object (repeatable).")
    ] = None,
    audience: Annotated[
        str,
        typer.Option(help="Who receives it: public, authority:<short name> or partner:<name>."),
    ] = "public",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here, not to standard output.")
    ] = None,
) -> None:
    """Export what you may pass on to AUDIENCE as a STIX 2.1 bundle (audited)."""
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session, unit_of_work(session):
        actor = context.act_as(session, as_user)
        item = service.get_collection(session, actor, collection)
        bundle, left_out = service.export_bundle(
            session,
            actor,
            item,
            types=types or (),
            ids=ids or (),
            audience=service.parse_audience(session, audience),
        )
    data = orjson.dumps(bundle, option=orjson.OPT_INDENT_2) + b"\n"
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
    typer.echo(
        f"{len(bundle['objects'])} objects exported"
        + (f", {len(left_out)} left out (markings)" if left_out else ""),
        err=True,
    )

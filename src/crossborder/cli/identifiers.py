"""`crossborder identifiers`: canonical forms of identifiers, and finding them in text."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from crossborder.auth.permissions import Principal
from crossborder.cli import context
from crossborder.core.errors import InvalidInput
from crossborder.db.session import unit_of_work
from crossborder.requests.identifiers import region_of, scan_attachments
from crossborder.requests.schemas import IdentifierKind
from crossborder.selectors import present, service, sets
from crossborder.selectors.extract import MAX_BYTES, extract, extract_from_file
from crossborder.selectors.normalize import normalize
from crossborder.selectors.warninglists import available_lists

identifiers_app = typer.Typer(
    help="Normalise, find, import and correlate identifiers.", no_args_is_help=True
)


@identifiers_app.command("normalize")
def normalize_command(
    kind: Annotated[IdentifierKind, typer.Argument(metavar="TYPE", help="Identifier type.")],
    value: Annotated[str, typer.Argument(help="The value to normalise.")],
    region: Annotated[
        str | None, typer.Option(help="Region for phone numbers without +, e.g. VN.")
    ] = None,
    chain: Annotated[str | None, typer.Option(help="Chain of a crypto address, e.g. eth.")] = None,
    platform: Annotated[
        str | None, typer.Option(help="Platform of a social-media id, e.g. facebook.")
    ] = None,
) -> None:
    """Print the canonical form of VALUE (and its flags, if any, on a second line)."""
    result = normalize(kind.value, value, default_region=region, chain=chain, platform=platform)
    typer.echo(result.canonical)
    if result.flags:
        typer.echo("flags: " + ", ".join(sorted(result.flags)))


@identifiers_app.command("extract")
def extract_command(
    file: Annotated[
        Path | None, typer.Argument(help="Text, CSV, JSON or PDF file; standard input if absent.")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="Region for phone numbers without +, e.g. VN.")
    ] = None,
) -> None:
    """Print one JSON object per identifier found: type, raw, canonical, start, end, flags."""
    if file is None:
        text = sys.stdin.read(MAX_BYTES + 1)
        if len(text) > MAX_BYTES:
            raise InvalidInput("standard input is larger than 20 MB", field="file")
        found = extract(text, default_region=region)
    else:
        found = extract_from_file(file, default_region=region)
    for item in found:
        typer.echo(json.dumps(item.as_json(), ensure_ascii=False))


# --- the index: sets, bulk import, lookups, warning lists -------------------------------------


def _region(session: Session, actor: Principal, region: str | None) -> str | None:
    return region or region_of(session, actor.authority_id)


AsUser = Annotated[str, typer.Option("--as", help="Act as this user (their authority and roles).")]


@identifiers_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="CSV file with a header: type,value[,port,…].")],
    as_user: AsUser,
    set_name: Annotated[
        str | None, typer.Option("--set", help="Create a new identifier set with this name.")
    ] = None,
    set_id: Annotated[
        str | None, typer.Option("--set-id", help="Append to this existing set (its id).")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="Region for phone numbers without + (default: yours).")
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Store the valid rows even if some are invalid.")
    ] = False,
) -> None:
    """Bulk-import identifiers from a CSV file into an identifier set, with a progress bar.

    Every row is checked first; if any is invalid nothing is stored (unless --skip-invalid).
    """
    if (set_name is None) == (set_id is None):
        raise InvalidInput("give exactly one of --set NAME or --set-id ID", field="set")
    if not file.is_file():
        raise InvalidInput(f"no such file: {file}", field="file")
    total = _count_lines(file)
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session, unit_of_work(session):
        actor = context.act_as(session, as_user)
        kept = (
            sets.create_set(session, actor, name=set_name)
            if set_name is not None
            else sets.get_set(session, actor, str(set_id))
        )
        with typer.progressbar(
            length=2 * total, label="checking, then storing", file=sys.stderr
        ) as bar:
            report = sets.import_csv(
                session,
                actor,
                kept,
                lambda: file.open(encoding="utf-8-sig", newline=""),
                default_region=_region(session, actor, region),
                skip_invalid=skip_invalid,
                progress=bar.update,
            )
        public_id = kept.public_id
    typer.echo(
        f"set {public_id}: {report.stored} identifiers stored from {report.rows} rows"
        + (f", {report.invalid} invalid rows skipped" if report.invalid else "")
        + f"; {report.known_elsewhere} already held in other records"
    )
    for line in report.errors:
        typer.echo(line, err=True)


def _count_lines(file: Path) -> int:
    with file.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


@identifiers_app.command("where")
def where_command(
    kind: Annotated[IdentifierKind, typer.Argument(metavar="TYPE", help="Identifier type.")],
    value: Annotated[str, typer.Argument(help="The value, or for ip a CIDR network.")],
    as_user: AsUser,
    port: Annotated[int | None, typer.Option(help="Source port of an IP address.")] = None,
    at: Annotated[
        str | None, typer.Option(help="When the IP was seen, ISO 8601 with an offset.")
    ] = None,
    region: Annotated[str | None, typer.Option(help="Region for phone numbers without +.")] = None,
) -> None:
    """Where else does VALUE appear? Prints one JSON object per value (audited)."""
    seen = _when(at)
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session, unit_of_work(session):
        actor = context.act_as(session, as_user)
        result = service.lookup(
            session,
            actor,
            kind=kind.value,
            value=value,
            config=service.Config.from_settings(settings),
            port=port,
            seen_from=seen,
            seen_until=seen,
            default_region=_region(session, actor, region),
        )
    for item in present.correlation_json(result.correlations):
        typer.echo(json.dumps(item, ensure_ascii=False))
    if result.truncated:
        typer.echo("(more addresses in the network than shown; narrow it)", err=True)


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("--at is not an ISO 8601 time", field="at") from None
    if value.tzinfo is None:
        raise InvalidInput("--at needs a UTC offset, e.g. 2026-03-01T10:00:00+07:00", field="at")
    return value


@identifiers_app.command("scan")
def scan_command(
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many.")] = 1000,
) -> None:
    """Extract identifiers from attachments not yet scanned (the worker does this too)."""
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session:
        done = scan_attachments(session, settings.data_dir, limit=limit)
    typer.echo(f"{done} attachments scanned")


@identifiers_app.command("warninglists")
def warninglists_command(
    every: Annotated[
        bool, typer.Option("--all", help="Every list shipped, not only active.")
    ] = False,
) -> None:
    """The warning lists that keep noise out of correlation (slug, entries, name)."""
    settings = context.settings()
    config = service.Config.from_settings(settings)
    if every:
        lists = available_lists()
    else:
        index = config.warning_index()
        lists = index.lists if index is not None else ()
    for info in lists:
        typer.echo(f"{info.slug}\t{info.size}\t{info.name}")


@identifiers_app.command("warn")
def warn_command(
    kind: Annotated[IdentifierKind, typer.Argument(metavar="TYPE", help="Identifier type.")],
    value: Annotated[str, typer.Argument(help="The value, or for ip a CIDR network.")],
    as_user: AsUser,
    reason: Annotated[str, typer.Option(help="Why this is noise (shown to officers).")],
    remove: Annotated[bool, typer.Option(help="Take the value off the list instead.")] = False,
) -> None:
    """Add a value to (or --remove it from) the node's own warning list."""
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session, unit_of_work(session):
        actor = context.act_as(session, as_user)
        if remove:
            service.remove_local_warning(session, actor, kind=kind.value, value=value)
            typer.echo("removed")
        else:
            entry = service.add_local_warning(
                session, actor, kind=kind.value, value=value, reason=reason
            )
            typer.echo(f"{entry.kind} {entry.value}: on the node's warning list")

"""`crossborder matching`: ask partners hit/no-hit, read the answers, and run what the node
answers (refresh the encrypted sets, policy, blocks, records kept out)."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Annotated, Final

import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crossborder.auth.permissions import Permission, Principal, require
from crossborder.cli import context
from crossborder.core.errors import InvalidInput, NotFound
from crossborder.directory.models import Authority
from crossborder.directory.taxonomy import Offence
from crossborder.matching import responder, schemas, service
from crossborder.selectors.normalize import KINDS

matching_app = typer.Typer(
    help="Hit/no-hit with partner authorities: ask, read answers, run what this node answers.",
    no_args_is_help=True,
)

AsUser = Annotated[str, typer.Option("--as", help="Act as this user (their authority and roles).")]
_CSV_COLUMNS: Final = frozenset(
    {"type", "kind", "value", "port", "seen_from", "seen_until", "time_zone", "chain"}
    | {"platform", "note"}
)


def _authority(session: Session, ref: str) -> Authority:
    """An authority by id or short name (case-insensitive)."""
    ref = ref.strip()
    found = (
        session.get(Authority, int(ref))
        if ref.isdigit()
        else session.scalars(
            select(Authority).where(func.lower(Authority.short_name) == ref.lower())
        ).first()
    )
    if found is None:
        raise NotFound(f"no authority '{ref}'")
    return found


def _local(session: Session, actor: Principal | None, ref: str) -> Authority:
    if actor is not None:
        require(actor, Permission.MATCHING_MANAGE)
    authority = _authority(session, ref)
    if not authority.is_local:
        raise NotFound(f"authority '{ref}' is not served by this node")
    return authority


def _name(authority: Authority) -> str:
    return authority.short_name or authority.name


def _offences(values: list[str]) -> list[dict[str, object]]:
    """``CODE`` or ``CODE:YEARS`` (the maximum penalty), each a known offence code."""
    known = {o.value for o in Offence}
    out: list[dict[str, object]] = []
    for value in values:
        code, _, years = value.strip().partition(":")
        code = code.strip().upper()
        if code not in known:
            raise typer.BadParameter(
                f"unknown offence code {code!r}; known: {', '.join(sorted(known))}",
                param_hint="--offence",
            )
        penalty: float | None = None
        if years.strip():
            try:
                penalty = float(years)
            except ValueError:
                raise typer.BadParameter(
                    f"{value!r}: write CODE or CODE:YEARS", param_hint="--offence"
                ) from None
        out.append({"code": code, "max_penalty_years": penalty})
    return out


def _identifier(text: str) -> service.ItemIn:
    kind, sep, value = text.partition(":")
    kind = kind.strip().lower()
    if not sep or not value.strip():
        raise typer.BadParameter(f"{text!r}: write kind:value", param_hint="--identifier")
    if kind not in KINDS:
        raise typer.BadParameter(
            f"unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}", param_hint="--identifier"
        )
    return service.ItemIn(kind, value.strip())


def _time(text: str, column: str, line: int) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"line {line}: {column} is not an ISO 8601 time", field="file") from None
    if value.tzinfo is None:
        raise InvalidInput(f"line {line}: {column} has no UTC offset (write e.g. +07:00)")
    return value


def read_csv(path: Path) -> list[service.ItemIn]:
    """Identifiers of a CSV file in the format of `crossborder identifiers import`."""
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", field="file")
    items: list[service.ItemIn] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            if "value" not in header or not ({"type", "kind"} & set(header)):
                raise InvalidInput(
                    "the first line must name the columns 'type' and 'value'", field="file"
                )
            unknown = set(header) - _CSV_COLUMNS
            if unknown:
                raise InvalidInput(f"unknown column(s): {', '.join(sorted(unknown))}")
            reader.fieldnames = header
            for row in reader:
                line = reader.line_num
                if len(items) >= service.MAX_QUERY_ITEMS:
                    raise InvalidInput(f"more than {service.MAX_QUERY_ITEMS:,} identifiers")
                if None in row:
                    raise InvalidInput(f"line {line}: more fields than columns", field="file")
                get = {k: (v or "").strip() for k, v in row.items() if k is not None}
                if not any(get.values()):
                    continue
                port = get.get("port", "")
                if port and not (port.isascii() and port.isdigit()):
                    raise InvalidInput(f"line {line}: port is not a number", field="file")
                items.append(
                    service.ItemIn(
                        kind=(get.get("type") or get.get("kind", "")).lower(),
                        value=get.get("value", ""),
                        port=int(port) if port else None,
                        seen_from=_time(get.get("seen_from", ""), "seen_from", line),
                        seen_until=_time(get.get("seen_until", ""), "seen_until", line),
                    )
                )
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", field="file") from None
    except csv.Error as exc:
        raise InvalidInput(f"not a CSV file: {exc}", field="file") from None
    return items


# -- asking partners -----------------------------------------------------------------------------


@matching_app.command("ask")
def ask_command(
    as_user: AsUser,
    purpose: Annotated[str, typer.Option(help="Why you ask (the partner reads it).")],
    case: Annotated[str, typer.Option("--case", help="Your case reference.")],
    offence: Annotated[
        list[str], typer.Option(help="Offence code, or CODE:YEARS of maximum penalty (repeat).")
    ],
    file: Annotated[
        Path | None, typer.Option(help="CSV file: type,value[,port,seen_from,seen_until].")
    ] = None,
    request: Annotated[
        str | None, typer.Option(help="Ask the identifiers of this request (reference).")
    ] = None,
    set_id: Annotated[
        str | None, typer.Option("--set", help="Ask the identifiers of this identifier set.")
    ] = None,
    identifier: Annotated[
        list[str] | None, typer.Option(help="kind:value, e.g. phone:+84912345678 (repeat).")
    ] = None,
    partner: Annotated[
        list[str] | None,
        typer.Option(help="Only this partner authority, id or short name (repeat)."),
    ] = None,
    slack: Annotated[
        int, typer.Option(min=0, max=3600, help="Seconds of clock slack on IP time windows.")
    ] = 0,
) -> None:
    """Ask partner authorities which of these identifiers they hold.

    Prints the query's id, then one line per partner asked (with the legal basis) and per
    partner not asked (with the reason).
    """
    offences = _offences(offence)
    items = [_identifier(i) for i in identifier or []]
    if file is None and request is None and set_id is None and not items:
        raise typer.BadParameter(
            "give --file, --request, --set or --identifier", param_hint="identifiers"
        )
    if file is not None:
        items += read_csv(file)
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session:
        actor = context.act_as(session, as_user)
        partner_ids = [_authority(session, p).id for p in partner] if partner else None
        sent = service.send_query(
            session,
            actor,
            settings.data_dir,
            purpose=purpose,
            case_reference=case,
            offences=offences,
            identifiers=items,
            request_ref=request,
            set_id=set_id,
            partner_ids=partner_ids,
            slack_seconds=slack,
        )
        created = schemas.created_out(session, sent)
    typer.echo(
        f"query {created.id}: {created.identifiers} identifiers, {created.elements} elements"
    )
    for t in created.targets:
        typer.echo(f"asked\t{t.partner.short_name or t.partner.name}\t{t.legal_basis}")
    for c in created.not_asked:
        typer.echo(f"not asked\t{c.partner.short_name or c.partner.name}\t{c.reason}")


@matching_app.command("queries")
def queries_command(as_user: AsUser) -> None:
    """Your authority's queries, newest first: id, created, case, outcomes, hits."""
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session:
        actor = context.act_as(session, as_user)
        found = schemas.summaries(session, service.list_queries(session, actor))
    for q in found:
        typer.echo(
            f"{q.id}\t{q.created_at:%Y-%m-%d %H:%M}\t{q.case_reference}\t"
            f"{q.partners} partners: {q.answered} answered, {q.refused} refused, "
            f"{q.waiting} waiting\t{q.hit_count} hits"
        )


@matching_app.command("show")
def show_command(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="The query's id.")],
    as_user: AsUser,
) -> None:
    """One query: each partner's outcome, then the hits."""
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session:
        actor = context.act_as(session, as_user)
        detail = schemas.detail_out(session, service.get_query(session, actor, query))
    typer.echo(f"query {detail.id}\tcase {detail.case_reference}")
    typer.echo(f"purpose: {detail.purpose}")
    for t in detail.targets:
        status = "waiting" if t.status == "sent" else t.status
        note = t.reason_code or ""
        if t.reason:
            note = f"{note} {t.reason}".strip()
        if t.not_offered:
            note = f"does not offer: {', '.join(t.not_offered)}"
        typer.echo(
            f"partner\t{t.partner.short_name or t.partner.name}\t{status}\t"
            f"{t.legal_basis or '-'}\t{t.hit_count} hits\t{note}".rstrip()
        )
    for h in detail.hits:
        hours = ",".join(h.hours) or "-"
        draft = h.draft_request or "-"
        typer.echo(
            f"hit\t{h.id}\t{h.identifier.kind}\t{h.identifier.canonical}\t"
            f"{h.partner.short_name or h.partner.name}\t{h.strength}\t{hours}\t{draft}"
        )


# -- what this node answers ----------------------------------------------------------------------


@matching_app.command("refresh")
def refresh_command(
    authority: Annotated[
        str | None, typer.Option(help="Only this local authority (id or short name).")
    ] = None,
) -> None:
    """Bring the encrypted sets up to date (every local authority by default)."""
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session:
        ids = (
            [_local(session, None, authority).id]
            if authority is not None
            else responder.local_authority_ids(session)
        )
        lines = []
        for authority_id in ids:
            result = responder.refresh(session, settings.data_dir, authority_id)
            name = _name(_authority(session, str(authority_id)))
            lines.append(
                f"{name}: {result.elements} elements, {result.added} added, "
                f"{result.removed} removed, {result.segments_built} segments built "
                f"({result.segments} in all), {result.seconds:.2f} s"
            )
    for line in lines:
        typer.echo(line)


@matching_app.command("policy")
def policy_command(
    authority: Annotated[str, typer.Argument(metavar="AUTHORITY_ID", help="Id or short name.")],
    as_user: AsUser,
    answers: Annotated[
        bool | None, typer.Option("--answers/--no-answers", help="Answer partners' queries.")
    ] = None,
    exclude_kind: Annotated[
        list[str] | None,
        typer.Option(help="Never offer identifiers of this kind (repeat; replaces the list)."),
    ] = None,
    offer_all_kinds: Annotated[
        bool, typer.Option("--offer-all-kinds", help="Offer every kind again.")
    ] = False,
    max_query: Annotated[
        int | None, typer.Option(min=1, max=1_000_000, help="Largest query, in elements.")
    ] = None,
    daily_queries: Annotated[
        int | None, typer.Option(min=0, help="Queries per partner in 24 hours.")
    ] = None,
    daily_elements: Annotated[
        int | None, typer.Option(min=0, help="Elements per partner in 24 hours.")
    ] = None,
) -> None:
    """Show, or change, what a local authority answers (options left out stay as they are)."""
    if exclude_kind and offer_all_kinds:
        raise typer.BadParameter("give --exclude-kind or --offer-all-kinds, not both")
    for kind in exclude_kind or []:
        if kind not in KINDS:
            raise typer.BadParameter(
                f"unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}",
                param_hint="--exclude-kind",
            )
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session:
        actor = context.act_as(session, as_user)
        local = _local(session, actor, authority)
        changes = (answers, exclude_kind, max_query, daily_queries, daily_elements)
        if offer_all_kinds or any(c is not None for c in changes):
            policy = responder.set_policy(
                session,
                actor,
                local.id,
                answers=answers,
                excluded_kinds=[] if offer_all_kinds else exclude_kind,
                max_query_elements=max_query,
                daily_queries=daily_queries,
                daily_elements=daily_elements,
            )
        else:
            policy = responder.policy_of(session, local.id)
        shown = schemas.policy_out(policy)
        name = _name(local)
    typer.echo(
        f"{name}: answers {'yes' if shown.answers else 'no'}; never offers: "
        f"{', '.join(shown.excluded_kinds) or 'nothing'}; largest query "
        f"{shown.max_query_elements} elements; per partner in 24 h: "
        f"{shown.daily_queries} queries, {shown.daily_elements} elements"
    )


@matching_app.command("block")
def block_command(
    authority: Annotated[str, typer.Argument(metavar="AUTHORITY_ID", help="Id or short name.")],
    partner: Annotated[str, typer.Argument(metavar="PARTNER_ID", help="Id or short name.")],
    as_user: AsUser,
    unblock: Annotated[bool, typer.Option("--unblock", help="Answer this partner again.")] = False,
) -> None:
    """Stop answering one partner authority's queries (its daily overrides are kept)."""
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session:
        actor = context.act_as(session, as_user)
        local = _local(session, actor, authority)
        other = _authority(session, partner)
        current = {r.partner_authority_id: r for r in responder.partner_rules(session, local.id)}
        rule = current.get(other.id)
        responder.set_partner_rule(
            session,
            actor,
            local.id,
            other.id,
            blocked=not unblock,
            daily_queries=rule.daily_queries if rule else None,
            daily_elements=rule.daily_elements if rule else None,
        )
        names = (_name(local), _name(other))
    verb = "answers" if unblock else "blocks"
    typer.echo(f"{names[0]} {verb} {names[1]}")


@matching_app.command("optout")
def optout_command(
    scope_type: Annotated[str, typer.Argument(metavar="SCOPE_TYPE", help="request or set.")],
    scope_id: Annotated[
        str, typer.Argument(metavar="SCOPE_ID", help="The request's reference, or the set's id.")
    ],
    as_user: AsUser,
    reason: Annotated[str, typer.Option(help="Why it is kept out.")] = "",
    remove: Annotated[bool, typer.Option("--remove", help="Offer it again.")] = False,
) -> None:
    """Keep a record's identifiers out of what partners can match (from the next refresh)."""
    if scope_type not in responder.OPT_OUT_SCOPES:
        raise typer.BadParameter(
            f"{scope_type!r}: one of {', '.join(responder.OPT_OUT_SCOPES)}", param_hint="SCOPE_TYPE"
        )
    settings = context.settings()
    context.require_migrated(settings)
    with context.session_scope(settings) as session:
        actor = context.act_as(session, as_user)
        if remove:
            responder.opt_in(session, actor, scope_type, scope_id)
            typer.echo(f"offered again: {scope_type} {scope_id}")
            return
        responder.opt_out(session, actor, scope_type, scope_id, reason=reason)
    typer.echo(f"kept out: {scope_type} {scope_id} (from the next refresh)")

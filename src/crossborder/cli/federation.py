"""`crossborder peer|outbox|inbox ...`: the operator's view of federation, thin over the service.

Peers are pinned by fingerprint, which the operator gets out of band (a phone call, a signed
letter, the regional hub's directory): ``peer add`` fetches the peer's public keys from its
``/federation/v1/identity`` (or takes them from ``--public-jwk``) and refuses them unless they
hash to that fingerprint. Commands act as the system principal and are audited.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer

peer_app = typer.Typer(help="Peer nodes and their pinned keys.", no_args_is_help=True)
outbox_app = typer.Typer(help="Messages queued for peers.", no_args_is_help=True)
inbox_app = typer.Typer(help="Messages received from peers.", no_args_is_help=True)

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def _fingerprint(value: str) -> str:
    normalised = value.strip().lower().replace(":", "")
    if _FINGERPRINT.fullmatch(normalised) is None:
        raise typer.BadParameter("a fingerprint is 64 hexadecimal digits (SHA-256)")
    return normalised


def _when(value: object) -> str:
    from datetime import datetime

    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return "-"


def _load_jwks(value: str) -> object:
    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value)
        if not path.is_file():
            raise typer.BadParameter(f"{value} is neither JSON nor a readable file")
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError:
        raise typer.BadParameter("the public JWK Set is not valid JSON") from None


def _peer_by_name(session: object, name: str) -> int:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from crossborder.core.errors import NotFound
    from crossborder.directory.models import Node
    from crossborder.federation.models import FedPeer

    assert isinstance(session, Session)
    peer_id = session.scalar(
        select(FedPeer.id).join(Node, FedPeer.node_id == Node.id).where(Node.name == name)
    )
    if peer_id is None:
        raise NotFound(f"no peer named {name!r} (see `crossborder peer list`)")
    return peer_id


@peer_app.command("add")
def peer_add(
    name: Annotated[str, typer.Argument(help="The peer's name in the directory.")],
    url: Annotated[str, typer.Argument(help="Base URL, e.g. https://node.example.org")],
    fingerprint: Annotated[
        str,
        typer.Option(callback=_fingerprint, help="The peer's key fingerprint, from out of band."),
    ],
    public_jwk: Annotated[
        str | None,
        typer.Option(help="The peer's public JWK Set (JSON or a file); default: fetch it."),
    ] = None,
    via: Annotated[
        str | None, typer.Option(help="Reach this peer through this hub (a peer's name).")
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not verify TLS when fetching (tests only).")
    ] = False,
) -> None:
    """Pin a peer's keys (checked against FINGERPRINT) and record where it listens."""
    from sqlalchemy import select

    from crossborder.auth.permissions import SYSTEM
    from crossborder.cli import context
    from crossborder.directory.models import Node
    from crossborder.federation import service
    from crossborder.federation.client import fetch_identity
    from crossborder.federation.service import TransportError

    if public_jwk is not None:
        jwks = _load_jwks(public_jwk)
    else:
        try:
            jwks = fetch_identity(url, verify=not insecure)
        except TransportError as exc:
            raise typer.BadParameter(f"{exc}; pass --public-jwk instead") from None
    signing, encryption = service.keys_from_jwks(jwks)
    settings = context.settings()
    with context.session_scope(settings) as session:
        via_node_id = None
        if via is not None:
            via_node_id = session.scalar(select(Node.id).where(Node.name == via))
            if via_node_id is None:
                raise typer.BadParameter(f"no node named {via!r}")
        peer = service.add_peer(
            session,
            actor=SYSTEM,
            name=name,
            base_url=url,
            fingerprint=fingerprint,
            signing_key=signing,
            encryption_key=encryption,
            via_node_id=via_node_id,
        )
        typer.echo(f"peer {name} pinned (node {peer.node_id}, fingerprint {fingerprint})")


@peer_app.command("list")
def peer_list() -> None:
    """Peers with their status, route and last contact."""
    from crossborder.auth.permissions import SYSTEM
    from crossborder.cli import context
    from crossborder.federation import service

    with context.session_scope(context.settings()) as session:
        peers = service.list_peers(session, actor=SYSTEM)
        if not peers:
            typer.echo("no peers (add one with `crossborder peer add`)")
        for peer in peers:
            route = f" via {peer.via.name}" if peer.via else ""
            error = f"  last error: {peer.last_error}" if peer.last_error else ""
            typer.echo(
                f"{peer.node.name}\t{peer.status}\t{peer.node.base_url}{route}\t"
                f"{peer.node.fingerprint}\tlast contact {_when(peer.last_contact_at)}{error}"
            )


def _set_status(name: str, status: str) -> None:
    from crossborder.auth.permissions import SYSTEM
    from crossborder.cli import context
    from crossborder.federation import service

    with context.session_scope(context.settings()) as session:
        service.set_peer_status(session, _peer_by_name(session, name), status, actor=SYSTEM)
    typer.echo(f"peer {name} {status}")


@peer_app.command("suspend")
def peer_suspend(name: Annotated[str, typer.Argument(help="Peer name.")]) -> None:
    """Stop accepting from and delivering to a peer (keys stay pinned)."""
    _set_status(name, "suspended")


@peer_app.command("activate")
def peer_activate(name: Annotated[str, typer.Argument(help="Peer name.")]) -> None:
    """Accept from and deliver to a suspended peer again."""
    _set_status(name, "active")


@peer_app.command("ping")
def peer_ping(name: Annotated[str, typer.Argument(help="Peer name.")]) -> None:
    """Queue a federation.ping to a peer (delivered by the worker): tests the whole path."""
    from crossborder.auth.permissions import SYSTEM
    from crossborder.cli import context
    from crossborder.db.session import unit_of_work
    from crossborder.federation import service
    from crossborder.federation.models import FedPeer

    with context.session_scope(context.settings()) as session:
        peer = session.get(FedPeer, _peer_by_name(session, name))
        assert peer is not None
        service.list_peers(session, actor=SYSTEM)  # permission check, as for every command
        with unit_of_work(session):
            row = service.enqueue(session, to_node_id=peer.node_id, type=service.TYPE_PING, body={})
        typer.echo(f"queued ping {row.message_id} to {name}")


@outbox_app.command("list")
def outbox_list(
    status: Annotated[
        str | None, typer.Option(help="pending, in_flight, failed, delivered or dead.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """Recent outbound messages, newest first, with attempts and the last failure."""
    from crossborder.auth.permissions import SYSTEM
    from crossborder.cli import context
    from crossborder.federation import service

    with context.session_scope(context.settings()) as session:
        for row in service.list_outbox(session, actor=SYSTEM, status=status, limit=limit):
            error = f"\t{row.last_error}" if row.last_error else ""
            typer.echo(
                f"{row.id}\t{row.message_id}\t{row.type}\tto {row.to_node.name}\t{row.status}\t"
                f"attempts {row.attempts}\tnext {_when(row.next_attempt_at)}{error}"
            )


@outbox_app.command("retry")
def outbox_retry(outbox_id: Annotated[int, typer.Argument(help="Outbox row id.")]) -> None:
    """Make a failed or dead message due now."""
    from crossborder.auth.permissions import SYSTEM
    from crossborder.cli import context
    from crossborder.federation import service

    with context.session_scope(context.settings()) as session:
        row = service.retry_outbox(session, outbox_id, actor=SYSTEM)
        typer.echo(f"outbox {row.id} ({row.message_id}) is due again")


@outbox_app.command("deliver")
def outbox_deliver(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not verify TLS (tests only).")
    ] = False,
) -> None:
    """Deliver what is due now, once (the worker does this on every cycle)."""
    from crossborder.cli import context
    from crossborder.db.session import make_engine, make_session_factory
    from crossborder.federation import service
    from crossborder.federation.client import HttpTransport

    settings = context.settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        with HttpTransport(verify=not insecure) as transport:
            stats = service.deliver_due(
                make_session_factory(engine, data_dir=settings.data_dir),
                settings=settings,
                transport=transport,
                limit=limit,
            )
    finally:
        engine.dispose()
    typer.echo(
        f"claimed={stats.claimed} delivered={stats.delivered} failed={stats.failed} "
        f"dead={stats.dead}"
    )


@inbox_app.command("list")
def inbox_list(
    status: Annotated[
        str | None, typer.Option(help="received, processed, failed or rejected.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """Recent inbound messages, newest first, with the last processing failure."""
    from crossborder.auth.permissions import SYSTEM
    from crossborder.cli import context
    from crossborder.federation import service

    with context.session_scope(context.settings()) as session:
        for row in service.list_inbox(session, actor=SYSTEM, status=status, limit=limit):
            sender = row.from_node.name if row.from_node else row.from_fingerprint[:16]
            error = f"\t{row.last_error}" if row.last_error else ""
            typer.echo(
                f"{row.id}\t{row.message_id}\t{row.type}\tfrom {sender}\t{row.status}\t"
                f"attempts {row.attempts}\treceived {_when(row.received_at)}{error}"
            )


@inbox_app.command("retry")
def inbox_retry(inbox_id: Annotated[int, typer.Argument(help="Inbox row id.")]) -> None:
    """Process a failed (or rejected, once its handler exists) message again, now."""
    from crossborder.auth.permissions import SYSTEM
    from crossborder.cli import context
    from crossborder.federation import service

    with context.session_scope(context.settings()) as session:
        outcome = service.retry_inbox(session, inbox_id, actor=SYSTEM)
    typer.echo(f"inbox {inbox_id}: {outcome}")
    if outcome == "failed":
        raise typer.Exit(1)


@inbox_app.command("refused")
def inbox_refused(limit: Annotated[int, typer.Option(min=1, max=500)] = 50) -> None:
    """Envelopes refused before they were trusted: reason code, source, size (no content)."""
    from crossborder.auth.permissions import SYSTEM
    from crossborder.cli import context
    from crossborder.federation import service

    with context.session_scope(context.settings()) as session:
        for row in service.list_rejections(session, actor=SYSTEM, limit=limit):
            typer.echo(
                f"{_when(row.at)}\t{row.reason}\tfrom {row.remote_addr or '-'}\t"
                f"{row.size} bytes\tsha256 {row.sha256[:16]}…\t{row.detail}"
            )


def rotate_keys(
    grace_days: Annotated[
        int, typer.Option(min=1, max=30, help="Days the old keys stay valid.")
    ] = 7,
) -> None:
    """Generate new node keys and announce them to every peer (signed by the old key)."""
    from datetime import timedelta

    from crossborder.auth.permissions import SYSTEM
    from crossborder.cli import context
    from crossborder.federation import service

    settings = context.settings()
    with context.session_scope(settings) as session:
        rotation = service.rotate_keys(
            session, settings=settings, actor=SYSTEM, grace=timedelta(days=grace_days)
        )
    typer.echo(f"old fingerprint: {rotation.old_fingerprint}")
    typer.echo(f"new fingerprint: {rotation.new_fingerprint}")
    typer.echo(f"announced to {rotation.announced_to} peer(s); the worker delivers it")


# Standalone entry point (`python -m crossborder.cli.federation`), for use before (or
# without) the main command registering these groups.
standalone = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None)
standalone.add_typer(peer_app, name="peer")
standalone.add_typer(outbox_app, name="outbox")
standalone.add_typer(inbox_app, name="inbox")
standalone.command("rotate-keys")(rotate_keys)


if __name__ == "__main__":
    standalone()

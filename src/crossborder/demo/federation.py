"""`crossborder demo federation`: three nodes on loopback walk a preservation request.

Viet Nam's, Australia's and Morocco's nodes each get their own data directory, keys, SQLite
database and port. They fetch each other's public keys over HTTP and pin them against the
fingerprints read from the data directories (the out-of-band step). Then a preservation
request goes from Viet Nam's 24/7 desk to the Australian Federal Police, is acknowledged,
started and executed there, a message comes back, and Viet Nam closes it — every step
delivered by the same outbox/worker code a production node runs. The run ends by comparing
both nodes' copies and exits non-zero if they disagree.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crossborder.auth import service as auth_service
from crossborder.auth.permissions import SYSTEM, Principal
from crossborder.core.clock import utc_now
from crossborder.db.migrate import upgrade
from crossborder.db.session import make_engine, make_session_factory, unit_of_work
from crossborder.demo import data
from crossborder.demo.loader import _load_all
from crossborder.directory.models import Authority
from crossborder.federation import client
from crossborder.federation import service as federation
from crossborder.federation.identity import ensure_identity
from crossborder.requests import schemas, service
from crossborder.settings import Environment, Settings, ensure_data_dir

NODES = (("vn-mps", "Viet Nam MPS"), ("au-afp", "Australia AFP"), ("ma-dgsn", "Morocco DGSN"))
Echo = Callable[[str], None]


@dataclass
class DemoNode:
    name: str
    title: str
    port: int
    settings: Settings
    engine: Engine
    factory: Callable[[], Session]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBORDER_")}
        env.update(
            {
                "CROSSBORDER_DATA_DIR": str(self.settings.data_dir),
                "CROSSBORDER_DATABASE_URL": self.settings.resolved_database_url,
                "CROSSBORDER_DEMO_MODE": "true",
                "CROSSBORDER_NODE_NAME": self.title,
            }
        )
        return env

    def principal(self, username: str) -> Principal:
        with self.factory() as session:
            user = auth_service.find_user(session, username)
            assert user is not None, username
            return auth_service.principal_for(user)

    def authority_id(self, short_name: str) -> int:
        with self.factory() as session:
            found = session.scalar(select(Authority.id).where(Authority.short_name == short_name))
            assert found is not None, short_name
            return found

    def deliver(self) -> dict[str, int]:
        return federation.run_cycle(self.settings, self.factory)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(base_dir: Path, name: str, title: str) -> DemoNode:
    data_dir = base_dir / name
    settings = Settings(
        environment=Environment.DEVELOPMENT,
        data_dir=data_dir,
        demo_mode=True,
        node_name=title,
        database_url=f"sqlite:///{(data_dir / 'crossborder.sqlite3').resolve()}",
    )
    ensure_data_dir(settings)
    upgrade(settings.resolved_database_url)
    ensure_identity(data_dir)
    engine = make_engine(settings.resolved_database_url)
    return DemoNode(
        name, title, _free_port(), settings, engine, make_session_factory(engine, data_dir=data_dir)
    )


@contextmanager
def _servers(nodes: list[DemoNode], echo: Echo) -> Iterator[None]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for node in nodes:
            log = (node.settings.data_dir / "server.log").open("wb")
            procs.append(
                subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                    [
                        sys.executable,
                        "-m",
                        "crossborder.cli.main",
                        "serve",
                        "--port",
                        str(node.port),
                    ],
                    env=node.env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for node, proc in zip(nodes, procs, strict=True):
            _wait_healthy(node, proc)
            echo(f"  {node.title:<14} serving on {node.url}  (data: {node.settings.data_dir})")
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)


def _wait_healthy(node: DemoNode, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{node.name} stopped: see {node.settings.data_dir}/server.log")
        try:
            if httpx.get(node.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{node.name} did not start within 30 s")


def _peer_and_load(nodes: list[DemoNode], echo: Echo) -> None:
    for node in nodes:
        peers: dict[str, int] = {}
        with node.factory() as session:
            for other in nodes:
                if other is node:
                    continue
                # Out of band: the fingerprint, as the partner's operators would read it out.
                fingerprint = ensure_identity(other.settings.data_dir).fingerprint
                signing, encryption = federation.keys_from_jwks(client.fetch_identity(other.url))
                peer = federation.add_peer(
                    session,
                    actor=SYSTEM,
                    name=other.name,
                    base_url=other.url,
                    fingerprint=fingerprint,
                    signing_key=signing,
                    encryption_key=encryption,
                )
                peers[other.name] = peer.node_id
            with unit_of_work(session):
                _load_all(session, here=node.name, peers=peers)
        echo(f"  {node.title:<14} pinned {', '.join(sorted(peers))}; directory and users loaded")


def _act(node: DemoNode, ref: str, who: str, action: str, echo: Echo, **kw: Any) -> None:
    with node.factory() as session:
        req = service.transition(
            session,
            ref,
            schemas.TransitionIn.model_validate({"action": action, **kw}),
            actor=node.principal(who),
        )
        echo(f"  {node.title:<14} {who} → {action}: now {req.status}")


def _deliver(node: DemoNode, echo: Echo) -> None:
    counts = node.deliver()
    echo(
        f"  {node.title:<14} worker: delivered {counts['outbox_delivered']}, "
        f"failed {counts['outbox_failed']}"
    )


def _copy(node: DemoNode, ref: str, who: str) -> dict[str, Any]:
    with node.factory() as session:
        req = service.get_request(session, ref, actor=node.principal(who))
        return {
            "status": req.status,
            "reference": req.reference,
            "legal basis": (req.legal_basis or {}).get("instrument_code"),
            "preserved until": req.preserved_until,
            "timeline": [
                (e.action, e.to_status)
                for e in service.timeline(session, req)
                if e.action not in {"created", "edited"}
            ],
            "messages": [m.body for m in service.messages(session, req)],
            "clocks": sorted((c.kind, c.due_at) for c in req.clocks),
        }


def _walk(vn: DemoNode, au: DemoNode, echo: Echo) -> str:
    echo("Walking a preservation request from Viet Nam to Australia:")
    receiver = vn.authority_id("AU-AFP")
    draft = schemas.DraftCreate.model_validate(
        {
            "request_type": "preservation",
            "receiver_authority_id": receiver,
            "channel": "point_of_contact_24_7",
            "urgency": "urgent",
            "title": "Ransomware command server 203.0.113.45",
            "summary_of_facts": "A ransomware group's command server is hosted by a provider "
            "in Australia; its logs identify the operators.",
            "offences": [
                {
                    "code": "DATA_INTERFERENCE",
                    "national_provision": "Penal Code Art. 287",
                    "max_penalty_years": 12,
                }
            ],
            "identifiers": [
                {
                    "kind": "ip",
                    "value": "203.0.113.45",
                    "time_zone": "Asia/Ho_Chi_Minh",
                    "window_start": "2026-10-14T00:00:00+07:00",
                    "window_end": "2026-10-16T23:59:59+07:00",
                }
            ],
            "data_categories": ["traffic", "subscriber"],
            "details": {
                "data_to_preserve": "Traffic and subscriber data of 203.0.113.45, 14-16 Oct",
                "link_to_offence": "The server issued the encryption commands",
                "custodian": "Example Hosting Pty Ltd",
                "custodian_country": "AU",
                "why_needed": "The provider keeps logs for 90 days only",
                "mla_will_follow": True,
            },
        }
    )
    with vn.factory() as session:
        req = service.create_draft(session, draft, actor=vn.principal("linh"))
        ref = req.reference
    echo(f"  {vn.title:<14} linh drafted {ref}")
    _act(vn, ref, "linh", "submit", echo)
    _deliver(vn, echo)
    _act(au, ref, "jack", "acknowledge", echo)
    _act(au, ref, "jack", "start", echo)
    until = (utc_now() + timedelta(days=90)).isoformat()
    _act(au, ref, "jack", "execute", echo, preserved_until=until)
    with au.factory() as session:
        service.add_message(
            session,
            ref,
            schemas.MessageIn(
                body="Preserved. The provider keeps logs 90 days; send the MLA request before then."
            ),
            actor=au.principal("jack"),
        )
    echo(f"  {au.title:<14} jack sent a message")
    _deliver(au, echo)
    _act(vn, ref, "linh", "close", echo)
    _deliver(vn, echo)
    return ref


def _hit_no_hit(vn: DemoNode, au: DemoNode, echo: Echo) -> int:
    """Viet Nam asks Australia which of three identifiers it holds; Australia holds one."""
    from crossborder.matching import responder
    from crossborder.matching import service as matching
    from crossborder.selectors import sets

    echo("Hit/no-hit from Viet Nam to Australia (private set intersection):")
    with au.factory() as session, unit_of_work(session):
        jack = au.principal("jack")
        seized = sets.create_set(session, jack, name="Seized phone, operation Coral")
        rows = "type,value\nphone,+84 91 234 5678\ncrypto,TQrY8tryqsYVCYS3MFbtffiPp2ccyn4STm\n"
        sets.import_csv(session, jack, seized, lambda: io.StringIO(rows))
    with au.factory() as session:
        built = responder.refresh(session, au.settings.data_dir, au.authority_id("AU-AFP"))
    echo(f"  {au.title:<14} encrypted set ready: {built.elements} elements")
    asked = [("phone", "0912 345 678"), ("phone", "+84 90 000 0001"), ("domain", "example.org")]
    with vn.factory() as session:
        sent = matching.send_query(
            session,
            vn.principal("linh"),
            vn.settings.data_dir,
            purpose="Investment fraud ring: who else has met these identifiers?",
            case_reference="A05-2026-0117",
            offences=[{"code": "THEFT_FRAUD", "max_penalty_years": 12}],
            identifiers=[matching.ItemIn(kind, value) for kind, value in asked],
        )
        query_id = sent.query.public_id
    echo(
        f"  {vn.title:<14} linh asked {len(sent.targets)} partner(s) about {len(asked)} identifiers"
    )
    _deliver(vn, echo)
    _deliver(au, echo)
    with vn.factory() as session:
        view = matching.get_query(session, vn.principal("linh"), query_id)
        hits = [(h.item.raw, h.partner.short_name, h.hit.strength) for h in view.hits]
    for raw, partner, strength in hits:
        echo(f"  {vn.title:<14} hit: {raw} is held by {partner} ({strength})")
    expected = [("0912 345 678", "AU-AFP", "match")]
    echo("The hit is the one expected." if hits == expected else f"Unexpected hits: {hits}")
    return 0 if hits == expected else 1


def _compare(vn: DemoNode, au: DemoNode, ref: str, echo: Echo) -> int:
    here, there = _copy(vn, ref, "linh"), _copy(au, ref, "jack")
    echo("Both copies:")
    problems = 0
    for key in here:
        same = here[key] == there[key]
        problems += 0 if same else 1
        shown = here[key] if key not in {"timeline", "clocks"} else f"{len(here[key])} entries"
        echo(
            f"  {'same' if same else 'DIFFERENT':<9} {key}: {shown}"
            + ("" if same else f"  (Australia: {there[key]})")
        )
    echo("The two nodes agree." if problems == 0 else f"{problems} difference(s).")
    return 0 if problems == 0 else 1


def run(base_dir: Path, *, echo: Echo, keep_running: bool = False) -> int:
    if base_dir.exists():
        shutil.rmtree(base_dir)
    base_dir.mkdir(parents=True)
    echo(f"Three nodes under {base_dir}:")
    nodes = [_prepare(base_dir, name, title) for name, title in NODES]
    try:
        with _servers(nodes, echo):
            _peer_and_load(nodes, echo)
            ref = _walk(nodes[0], nodes[1], echo)
            outcome = _compare(nodes[0], nodes[1], ref, echo)
            outcome |= _hit_no_hit(nodes[0], nodes[1], echo)
            if keep_running:
                echo(
                    f"Log in as linh (Viet Nam) or jack (Australia), password "
                    f"{data.DEMO_PASSWORD}. Ctrl-C stops the three nodes."
                )
                _wait_forever()
            return outcome
    finally:
        for node in nodes:
            node.engine.dispose()


def _wait_forever() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return

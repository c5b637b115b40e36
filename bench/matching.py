"""Benchmark: hit/no-hit between two nodes on loopback, against raw ``openmined-psi`` calls.

Two nodes, Viet Nam's (VN, asks) and Australia's (AU, answers), each a real HTTP server
(uvicorn in a subprocess, started from ``bench/federation.py``'s ``serve``) with its own data
directory, keys and SQLite database, pinned to each other, with a police MoU in both
directories. This process plays both nodes' workers (``deliver_due``), like
``bench/federation.py`` plays node A's. Per scenario, on a fresh pair of nodes:

1. AU's identifier set is filled in bulk (``ident_values`` + ``ident_occurrences`` rows of one
   identifier set; "load", not part of the protocol) and its encrypted set is built with
   ``responder.refresh`` ("precompute": elements, segments of ``SEGMENT_CAPACITY``, GCS setups);
2. VN asks with ``service.send_query`` (normalisation, one PSI request, the ``match.query``
   envelope queued); a known share of VN's identifiers (10 %) is planted in AU's set;
3. VN's outbox is delivered over HTTP: AU opens the envelope and answers inside its handler
   (``ProcessRequest``), queuing the ``match.answer`` part(s) with its segments;
4. AU's outbox is delivered over HTTP: VN stores the parts and, on the last, intersects and
   stores the hits inside its handler. The run stops with an error unless the hits are
   exactly the planted identifiers;
5. the same sets go through the raw library in this process: ``CreateSetupMessage`` (GCS,
   ``protocol.FPR``, the same largest query), ``CreateRequest``, ``ProcessRequest``,
   ``GetIntersection``;
6. an incremental refresh: new identifiers are added to AU's set and ``refresh`` timed again
   (only the segment(s) they join are rebuilt).

Run (from the repository root):

    .venv/bin/python bench/matching.py                     # 100k x 100k and 1k x 1M (5-10 min)
    .venv/bin/python bench/matching.py --scenario 1m
    .venv/bin/python bench/matching.py --small             # 2k x 2k and 100 x 20k (smoke)

What the figures mean:

- *precompute*: ``responder.refresh`` end to end (reading the records, storing the elements,
  building and storing every segment), and the EC/GCS part alone (the segments'
  ``build_seconds``); raw: one ``CreateSetupMessage`` over the whole set.
- *online*: from ``send_query`` to the hits committed on VN: client encryption, the query's
  delivery (seal, HTTP, open, AU's handler and commit, signed receipt), the answer's
  delivery (the same, VN's handler intersecting). "inside the handler" figures are timed in
  the servers themselves: the bench wraps ``protocol.answer_request``, ``protocol.intersect``,
  ``service.answer`` and ``service.receive_answer`` with a timer (a file in the data dir),
  nothing else. Raw: ``CreateRequest`` + ``ProcessRequest`` + ``GetIntersection``.
- *bytes*: PSI bytes (the serialised request; the response plus every segment), and what
  crossed the loopback: the sealed envelopes (compact JWE: base64 JSON bodies, signed, then
  encrypted). Raw: ``ByteSize()`` of the request, and of the response plus the setup.
- *ratio*: crossborder / raw. The machine's load is printed: figures on a busy host are noisy.

Loops are bounded; servers listen on 127.0.0.1 only and are stopped at the end.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import private_set_intersection.python as psi
from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

# bench/ is not a package: this script's directory is on sys.path when it runs.
import federation as fed_bench  # bench/federation.py: node directories, pinning, serving
from crossborder.auth.permissions import Principal, Role
from crossborder.core.clock import utc_now
from crossborder.db.session import make_engine, make_session_factory, unit_of_work
from crossborder.directory.models import Authority, InstrumentParty, LegalInstrument, State
from crossborder.directory.models import Node as DirectoryNode
from crossborder.federation import service as federation
from crossborder.federation.client import HttpTransport
from crossborder.federation.models import InboxMessage, OutboxMessage
from crossborder.federation.service import TransportResponse
from crossborder.matching import protocol, responder, service
from crossborder.matching.models import (
    MatchHit,
    MatchInbound,
    MatchQueryItem,
    MatchSegment,
    MatchTarget,
)
from crossborder.selectors import correlate, sets
from crossborder.selectors.models import IdentOccurrence, IdentSet, IdentValue
from crossborder.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = "bench-timings.jsonl"
PURPOSE = "Benchmark: investment fraud ring, who else knows these numbers?"
OFFENCES = [{"code": "THEFT_FRAUD", "max_penalty_years": 10}]
MAX_QUERY = protocol.MAX_QUERY_ELEMENTS  # the largest query; the raw setup's num_client_inputs
DAILY_ELEMENTS = 10_000_000
CHUNK = 50_000  # rows per INSERT batch when filling the responder's set
MAX_ANSWER_ROUNDS = 70  # delivery passes for the answer (at most 64 parts, and slack)
HTTP_TIMEOUT = 900.0  # the responder answers a 100k query inside the HTTP request


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    asked: int  # identifiers in the querier's query
    held: int  # identifiers the responder holds
    overlap: int  # of the asked, how many the responder holds (planted)
    added: int  # identifiers added before the incremental refresh


FULL = {
    "100k": Scenario("100k", "100k x 100k", 100_000, 100_000, 10_000, 1_000),
    "1m": Scenario("1m", "1k x 1M", 1_000, 1_000_000, 100, 1_000),
}
SMALL = {
    "100k": Scenario("100k", "2k x 2k (--small)", 2_000, 2_000, 200, 100),
    "1m": Scenario("1m", "100 x 20k (--small)", 100, 20_000, 10, 100),
}


# -- server side: one node, with timers around the matching work --------------------------------


def _instrument(path: Path) -> None:
    """Time the matching calls inside this server (JSON lines appended to ``path``)."""

    def timed(module: Any, name: str) -> None:
        inner = getattr(module, name)

        @functools.wraps(inner)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                line = {"what": name, "seconds": time.perf_counter() - started}
                with path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(line) + "\n")

        setattr(module, name, wrapper)

    timed(protocol, "answer_request")  # ProcessRequest (responder)
    timed(protocol, "intersect")  # GetIntersection over every segment (querier)
    timed(service, "answer")  # the whole match.query handler, before its commit
    timed(service, "receive_answer")  # the whole match.answer handler, per part


def serve(data_dir: Path, port: int) -> None:
    """Subprocess mode: one node's HTTP server (bench/federation.py's), timers installed."""
    _instrument(data_dir / TIMINGS)
    fed_bench.serve(data_dir, port)


def _timings(data_dir: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    path = data_dir / TIMINGS
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            out.setdefault(row["what"], []).append(float(row["seconds"]))
    return out


# -- this process: two nodes, their directories, their data --------------------------------------


@dataclass
class Node:
    name: str
    data_dir: Path
    port: int
    settings: Settings
    factory: Callable[[], Session]
    dispose: Callable[[], None]
    ids: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def principal(self, role: Role, name: str) -> Principal:
        return Principal(
            user_id=1, username=name, authority_id=self.ids["local"], roles=frozenset({role})
        )


def _node(base: Path, name: str) -> Node:
    data_dir = base / name
    fed_bench._prepare(data_dir)
    settings = fed_bench._settings(data_dir, name)
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine, data_dir=data_dir)
    return Node(name, data_dir, fed_bench._free_port(), settings, factory, engine.dispose)


def _directory(node: Node, *, local: str, remote: str, partner: Node) -> None:
    """States, the local authority, the partner's (served by its node) and a police MoU
    binding both: the rows of ``tests/requests/test_federated.py::_directory``."""
    with node.factory() as s, unit_of_work(s):
        vn = State(alpha2="VN", alpha3="VNM", name="Viet Nam")
        au = State(alpha2="AU", alpha3="AUS", name="Australia")
        s.add_all([vn, au])
        partner_node = s.scalar(select(DirectoryNode.id).where(DirectoryNode.name == partner.name))
        assert partner_node is not None, "pin the partner first"
        states = {"VN-A05": vn, "AU-AFP": au}
        zones = {"VN-A05": "Asia/Ho_Chi_Minh", "AU-AFP": "Australia/Sydney"}
        mine = Authority(
            state=states[local],
            name=local,
            short_name=local,
            roles=["police"],
            time_zone=zones[local],
            is_local=True,
        )
        theirs = Authority(
            state=states[remote],
            name=remote,
            short_name=remote,
            roles=["police"],
            time_zone=zones[remote],
            node_id=partner_node,
        )
        mou = LegalInstrument(
            code="AU-VN-POLICE-MOU",
            title="MoU",
            kind="mou",
            offences=["*"],
            channels=["point_of_contact_24_7", "police"],
            data_categories=["*"],
            conditions=[{"code": "CONFIDENTIALITY", "text": "Police only."}],
        )
        s.add_all([mine, theirs, mou])
        s.flush()
        s.add_all(
            [
                InstrumentParty(instrument=mou, state=vn, status="in_force"),
                InstrumentParty(instrument=mou, state=au, status="in_force"),
            ]
        )
        s.flush()
        node.ids = {"local": mine.id, "remote": theirs.id}


@contextmanager
def _servers(nodes: Sequence[Node]) -> Iterator[None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBORDER_")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for node in nodes:
            with (node.data_dir / "server.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(  # noqa: S603 - this interpreter, this script, fixed args
                        [sys.executable, __file__, "--serve", str(node.data_dir), str(node.port)],
                        env=env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        for node, proc in zip(nodes, procs, strict=True):
            try:
                fed_bench._wait(node.url, proc)
            except SystemExit as exc:
                log = (node.data_dir / "server.log").read_text(encoding="utf-8", errors="replace")
                raise SystemExit(f"{node.name}: {exc}\n{log[-3000:]}") from None
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def _numbers(rng: random.Random, count: int) -> list[str]:
    """Distinct valid Vietnamese mobile numbers, already in E.164 (their canonical form)."""
    return [f"+8490{n:07d}" for n in rng.sample(range(10**7), count)]


def _new_set(node: Node, actor: Principal) -> str:
    with node.factory() as s, unit_of_work(s):
        return str(sets.create_set(s, actor, name="bench: numbers held").public_id)


def _fill(node: Node, set_id: str, numbers: Sequence[str]) -> float:
    """Store ``numbers`` in the set as a CSV import would (a value and an occurrence each),
    with bulk INSERTs of ``CHUNK`` rows: the import's parsing is not what is measured."""
    started = time.perf_counter()
    with node.factory() as s:
        item = s.scalar(select(IdentSet).where(IdentSet.public_id == set_id))
        assert item is not None
        where = sets.where_of(item)
        next_id = int(s.scalar(select(func.max(IdentValue.id))) or 0) + 1
        s.rollback()
        for start in range(0, len(numbers), CHUNK):
            now = utc_now()
            values: list[dict[str, Any]] = []
            occurrences: list[dict[str, Any]] = []
            for offset, number in enumerate(numbers[start : start + CHUNK]):
                value_id = next_id + start + offset
                values.append(
                    {
                        "id": value_id,
                        "digest": correlate.digest("phone", number),
                        "kind": "phone",
                        "canonical": number,
                        "related_key": correlate.related_key("phone", number),
                        "ip_key": None,
                        "flags": [],
                        "first_seen": now,
                    }
                )
                occurrences.append(
                    {
                        "value_id": value_id,
                        "record_type": where.record_type,
                        "record_id": where.record_id,
                        "scope_type": where.scope_type,
                        "scope_id": where.scope_id,
                        "owner_authority_id": where.owner_authority_id,
                        "raw": number,
                        "source": "imported",
                        "location": None,
                        "port": None,
                        "seen_from": None,
                        "seen_until": None,
                        "time_zone": None,
                        "created_at": now,
                    }
                )
            with unit_of_work(s):
                s.execute(insert(cast(Table, IdentValue.__table__)), values)
                s.execute(insert(cast(Table, IdentOccurrence.__table__)), occurrences)
    return time.perf_counter() - started


@dataclass
class Refresh:
    seconds: float  # responder.refresh, end to end (committed)
    ec_seconds: float  # the rebuilt segments' build_seconds (CreateSetupMessage + serialise)
    built: int
    segments: int
    elements: int
    set_bytes: int


def _refresh(node: Node) -> Refresh:
    authority = node.ids["local"]
    segments = select(MatchSegment.id, MatchSegment.built_at, MatchSegment.build_seconds).where(
        MatchSegment.authority_id == authority
    )
    with node.factory() as s:
        before = {row.id: row.built_at for row in s.execute(segments)}
    with node.factory() as s:
        started = time.perf_counter()
        result = responder.refresh(s, node.data_dir, authority)  # @atomic: committed on return
        seconds = time.perf_counter() - started
    with node.factory() as s:
        ec = sum(
            row.build_seconds or 0.0
            for row in s.execute(segments)
            if row.id not in before or before[row.id] != row.built_at
        )
        status = responder.set_status(s, authority)
    return Refresh(
        seconds, ec, result.segments_built, result.segments, result.elements, status.bytes
    )


class CountingTransport(HttpTransport):
    """HTTP to the peer's inbox, counting the sealed envelopes' bytes per destination."""

    def __init__(self) -> None:
        super().__init__(timeout=HTTP_TIMEOUT)
        self.sent: dict[str, list[int]] = {}

    def post(self, base_url: str, token: str) -> TransportResponse:
        self.sent.setdefault(base_url.rstrip("/"), []).append(len(token))
        return super().post(base_url, token)


def _diagnose(*nodes: Node) -> str:
    """What went wrong, from the nodes' outboxes, inboxes and server logs."""
    lines = []
    for node in nodes:
        with node.factory() as s:
            for row in s.scalars(
                select(OutboxMessage).where(OutboxMessage.last_error.is_not(None))
            ):
                lines.append(f"{node.name} outbox {row.type}: {row.status}: {row.last_error}")
            for got in s.scalars(select(InboxMessage).where(InboxMessage.last_error.is_not(None))):
                lines.append(f"{node.name} inbox {got.type}: {got.status}: {got.last_error}")
        log = (node.data_dir / "server.log").read_text(encoding="utf-8", errors="replace")
        lines += [f"{node.name} log: {t}" for t in log.splitlines()[-15:]]
    return "\n".join(lines)


# -- one scenario ----------------------------------------------------------------------------------


@dataclass
class Figures:
    scenario: Scenario
    load_s: float = 0.0
    precompute: Refresh | None = None
    incremental: Refresh | None = None
    incremental_load_s: float = 0.0
    send_s: float = 0.0
    query_delivery_s: float = 0.0
    answer_delivery_s: float = 0.0
    total_s: float = 0.0
    process_request_s: float = 0.0
    answer_handler_s: float = 0.0
    intersect_s: float = 0.0
    receive_handler_s: float = 0.0
    elements: int = 0
    request_psi: int = 0
    answer_psi: int = 0
    answer_json: int = 0
    query_wire: int = 0
    answer_wire: int = 0
    answer_envelopes: int = 0
    segments: int = 0
    set_size: int = 0
    hits: int = 0
    raw: dict[str, float] = field(default_factory=dict)


def _query(vn: Node, au: Node, asked: Sequence[str], figures: Figures) -> set[str]:
    """send_query → deliver the query → deliver the answer; the canonical forms hit."""
    linh = vn.principal(Role.OFFICER, "linh")
    transport = CountingTransport()
    try:
        started = time.perf_counter()
        with vn.factory() as s:
            sent = service.send_query(
                s,
                linh,
                vn.data_dir,
                purpose=PURPOSE,
                case_reference="BENCH-0001",
                offences=OFFENCES,
                identifiers=[service.ItemIn("phone", p) for p in asked],
            )
        after_send = time.perf_counter()
        if len(sent.targets) != 1:
            raise SystemExit(f"expected one partner asked, got {len(sent.targets)}")
        target_ref = sent.targets[0].public_id
        stats = federation.deliver_due(vn.factory, settings=vn.settings, transport=transport)
        after_query = time.perf_counter()
        if stats.delivered != 1:
            raise SystemExit("the query was not delivered:\n" + _diagnose(vn, au))
        delivered = 0
        for _ in range(MAX_ANSWER_ROUNDS):  # bounded: one pass per part at worst
            stats = federation.deliver_due(au.factory, settings=au.settings, transport=transport)
            delivered += stats.delivered
            if stats.failed or stats.dead:
                raise SystemExit("an answer part was not delivered:\n" + _diagnose(vn, au))
            if stats.claimed == 0:
                break
        finished = time.perf_counter()
    finally:
        transport.close()
    figures.send_s = after_send - started
    figures.query_delivery_s = after_query - after_send
    figures.answer_delivery_s = finished - after_query
    figures.total_s = finished - started
    figures.query_wire = sum(transport.sent.get(au.url, []))
    figures.answer_wire = sum(transport.sent.get(vn.url, []))
    figures.answer_envelopes = len(transport.sent.get(vn.url, []))
    with au.factory() as s:
        inbound = s.scalars(select(MatchInbound)).one()
        if inbound.outcome != "answered":
            raise SystemExit(f"AU refused: {inbound.reason_code}: {inbound.reason}")
        figures.answer_psi = inbound.bytes_sent
    with vn.factory() as s:
        target = s.scalars(select(MatchTarget).where(MatchTarget.public_id == target_ref)).one()
        if target.status != "answered":
            raise SystemExit(
                f"the query ended {target.status}: {target.reason_code}: {target.reason}\n"
                + _diagnose(vn, au)
            )
        figures.elements = target.elements
        figures.request_psi = target.bytes_sent
        figures.answer_json = target.bytes_received
        figures.segments = target.segments
        figures.set_size = target.set_size or 0
        figures.hits = target.hit_count
        hit = s.scalars(
            select(MatchQueryItem.canonical)
            .join(MatchHit, MatchHit.item_id == MatchQueryItem.id)
            .where(MatchHit.target_id == target.id)
        ).all()
    au_times, vn_times = _timings(au.data_dir), _timings(vn.data_dir)
    figures.process_request_s = sum(au_times.get("answer_request", []))
    figures.answer_handler_s = sum(au_times.get("answer", []))
    figures.intersect_s = sum(vn_times.get("intersect", []))
    figures.receive_handler_s = sum(vn_times.get("receive_answer", []))
    return set(hit)


def _raw(held: Sequence[str], asked: Sequence[str]) -> tuple[dict[str, float], int]:
    """The same sets through openmined-psi directly, in this process: times and bytes."""
    server_elements = [correlate.digest("phone", p) for p in held]
    client_elements = [correlate.digest("phone", p) for p in asked]
    server = psi.server.CreateWithNewKey(True)
    client = psi.client.CreateWithNewKey(True)
    t0 = time.perf_counter()
    setup = server.CreateSetupMessage(
        protocol.FPR, MAX_QUERY, server_elements, psi.DataStructure.GCS
    )
    t1 = time.perf_counter()
    request = client.CreateRequest(client_elements)
    t2 = time.perf_counter()
    response = server.ProcessRequest(request)
    t3 = time.perf_counter()
    found = client.GetIntersection(setup, response)
    t4 = time.perf_counter()
    out = {
        "setup_s": t1 - t0,
        "request_s": t2 - t1,
        "process_s": t3 - t2,
        "intersect_s": t4 - t3,
        "online_s": t4 - t1,
        "setup_bytes": float(setup.ByteSize()),
        "request_bytes": float(request.ByteSize()),
        "response_bytes": float(response.ByteSize()),
    }
    return out, len(found)


def run(scenario: Scenario, seed: int, out: Callable[[str], None]) -> Figures:
    figures = Figures(scenario)
    rng = random.Random(seed)
    pool = _numbers(rng, scenario.held + scenario.asked - scenario.overlap + scenario.added)
    held = pool[: scenario.held]
    planted = rng.sample(held, scenario.overlap)
    fresh = pool[scenario.held : scenario.held + scenario.asked - scenario.overlap]
    added = pool[scenario.held + scenario.asked - scenario.overlap :]
    asked = planted + fresh
    rng.shuffle(asked)
    out(
        f"  {scenario.title}: VN asks {scenario.asked:,} phone numbers, AU holds "
        f"{scenario.held:,}; {scenario.overlap:,} of VN's planted in AU's set"
    )
    with tempfile.TemporaryDirectory(prefix="cb-bench-matching-") as tmp:
        vn, au = _node(Path(tmp), "vn-mps"), _node(Path(tmp), "au-afp")
        try:
            fed_bench._pin(vn.data_dir, au.data_dir, au.url)
            fed_bench._pin(au.data_dir, vn.data_dir, vn.url)
            _directory(vn, local="VN-A05", remote="AU-AFP", partner=au)
            _directory(au, local="AU-AFP", remote="VN-A05", partner=vn)
            with _servers([vn, au]):
                with au.factory() as s:
                    responder.set_policy(
                        s,
                        au.principal(Role.ADMINISTRATOR, "mark"),
                        au.ids["local"],
                        max_query_elements=MAX_QUERY,
                        daily_elements=DAILY_ELEMENTS,
                    )
                set_id = _new_set(au, au.principal(Role.OFFICER, "jack"))
                figures.load_s = _fill(au, set_id, held)
                out(f"    AU loaded {len(held):,} identifiers in {figures.load_s:.1f} s")
                figures.precompute = _refresh(au)
                out(
                    f"    AU precomputed {figures.precompute.elements:,} elements in "
                    f"{figures.precompute.seconds:.1f} s"
                )
                hits = _query(vn, au, asked, figures)
                if hits != set(planted) or figures.hits != len(planted):
                    raise SystemExit(
                        f"{scenario.title}: {figures.hits} hits ({len(hits & set(planted))} "
                        f"planted), expected exactly the {len(planted)} planted"
                    )
                out(f"    VN found its {figures.hits:,} planted numbers in {figures.total_s:.1f} s")
                figures.incremental_load_s = _fill(au, set_id, added)
                figures.incremental = _refresh(au)
                if figures.incremental.elements != len(held) + len(added):
                    raise SystemExit("the incremental refresh did not take the new identifiers")
        finally:
            vn.dispose()
            au.dispose()
    figures.raw, raw_hits = _raw(held, asked)
    if raw_hits != len(planted):
        raise SystemExit(f"raw PSI found {raw_hits}, expected {len(planted)}")
    out(f"    raw openmined-psi done (setup {figures.raw['setup_s']:.1f} s)")
    return figures


# -- the report ------------------------------------------------------------------------------------


def _code_digest() -> str:
    git = shutil.which("git")
    head, diff = "?", "?"
    if git is not None:
        try:
            head = subprocess.run(  # noqa: S603 - git, read-only, fixed arguments
                [git, "rev-parse", "--short", "HEAD"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout.strip()
            stat = subprocess.run(  # noqa: S603 - git, read-only, fixed arguments
                [git, "diff", "--stat"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout.strip()
            diff = stat.splitlines()[-1].strip() if stat else "no uncommitted changes"
        except (OSError, subprocess.SubprocessError):
            pass
    sources = sorted((ROOT / "src" / "crossborder" / "matching").glob("*.py"))
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return (
        f"HEAD {head}; working tree: {diff}; "
        f"sha256(src/crossborder/matching/*.py) {digest.hexdigest()[:12]}"
    )


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def _row(label: str, ours: str, raw: str = "", ratio: str = "") -> str:
    return f"  {label:<50}{ours:>15}{raw:>15}{ratio:>9}"


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s"


def _b(count: float) -> str:
    return f"{int(count):,} B"


def report(f: Figures) -> list[str]:
    r = f.raw
    pre, inc = f.precompute, f.incremental
    assert pre is not None
    assert inc is not None
    raw_answer = r["response_bytes"] + r["setup_bytes"]
    sc = f.scenario
    return [
        f"== {sc.title}: querier {sc.asked:,} identifiers ({f.elements:,} elements), "
        f"responder {sc.held:,} ==",
        _row("", "crossborder", "raw PSI", "ratio"),
        _row(
            "precompute: responder.refresh / CreateSetupMessage",
            _s(pre.seconds),
            _s(r["setup_s"]),
            _ratio(pre.seconds, r["setup_s"]),
        ),
        _row(
            f"  of which EC + GCS ({pre.built} segment(s) built)",
            _s(pre.ec_seconds),
            "",
            _ratio(pre.ec_seconds, r["setup_s"]),
        ),
        _row(
            "online: send_query -> hits stored",
            _s(f.total_s),
            _s(r["online_s"]),
            _ratio(f.total_s, r["online_s"]),
        ),
        _row(
            "  send_query (normalise, CreateRequest, queue)",
            _s(f.send_s),
            _s(r["request_s"]),
            _ratio(f.send_s, r["request_s"]),
        ),
        _row("  query delivery (HTTP; AU answers in its handler)", _s(f.query_delivery_s)),
        _row("    AU handler service.answer", _s(f.answer_handler_s)),
        _row(
            "    of which ProcessRequest",
            _s(f.process_request_s),
            _s(r["process_s"]),
            _ratio(f.process_request_s, r["process_s"]),
        ),
        _row(
            f"  answer delivery (HTTP, {f.answer_envelopes} part(s); VN intersects)",
            _s(f.answer_delivery_s),
        ),
        _row("    VN handler service.receive_answer (all parts)", _s(f.receive_handler_s)),
        _row(
            f"    of which GetIntersection ({f.segments} segment(s))",
            _s(f.intersect_s),
            _s(r["intersect_s"]),
            _ratio(f.intersect_s, r["intersect_s"]),
        ),
        _row(
            "bytes VN -> AU: PSI request",
            _b(f.request_psi),
            _b(r["request_bytes"]),
            _ratio(f.request_psi, r["request_bytes"]),
        ),
        _row(
            "bytes VN -> AU: sealed envelope on the wire",
            _b(f.query_wire),
            "",
            _ratio(f.query_wire, r["request_bytes"]),
        ),
        _row(
            "bytes AU -> VN: PSI response + segments / + setup",
            _b(f.answer_psi),
            _b(raw_answer),
            _ratio(f.answer_psi, raw_answer),
        ),
        _row(
            "bytes AU -> VN: answer bodies (JSON, base64)",
            _b(f.answer_json),
            "",
            _ratio(f.answer_json, raw_answer),
        ),
        _row(
            f"bytes AU -> VN: {f.answer_envelopes} sealed envelope(s) on the wire",
            _b(f.answer_wire),
            "",
            _ratio(f.answer_wire, raw_answer),
        ),
        _row(f"hits (planted: {sc.overlap:,})", f"{f.hits:,}", f"{sc.overlap:,}"),
        _row(
            f"responder's set: {pre.elements:,} elements",
            f"{pre.segments} segment(s)",
            _b(pre.set_bytes),
        ),
        _row("responder load (bulk INSERT; not precompute)", _s(f.load_s)),
        _row(f"incremental refresh (+{sc.added:,} identifiers)", _s(inc.seconds)),
        _row(
            f"  of which EC + GCS ({inc.built} of {inc.segments} segment(s) rebuilt)",
            _s(inc.ec_seconds),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", choices=("100k", "1m", "both"), default="both")
    parser.add_argument("--small", action="store_true", help="2k x 2k and 100 x 20k (smoke)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serve", nargs=2, metavar=("DATA_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return
    table = SMALL if args.small else FULL
    chosen = [table[k] for k in (("100k", "1m") if args.scenario == "both" else (args.scenario,))]

    def out(text: str) -> None:
        print(text, flush=True)

    started = time.perf_counter()
    load = os.getloadavg()
    out(
        f"crossborder hit/no-hit benchmark: 2 nodes (uvicorn + SQLite) on 127.0.0.1; "
        f"{protocol.PROTOCOL}; FPR {protocol.FPR:g}; segments of {protocol.SEGMENT_CAPACITY:,}; "
        f"largest query {MAX_QUERY:,}"
    )
    out(f"code: {_code_digest()}")
    out(
        f"host: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPU(s), load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"seed {args.seed}"
    )
    results = [run(sc, args.seed, out) for sc in chosen]
    out("")
    for figures in results:
        for line in report(figures):
            out(line)
        out("")
    load = os.getloadavg()
    out(
        f"all checks passed (hits == planted overlap, raw PSI agrees); "
        f"{time.perf_counter() - started:.0f} s in all; load average at the end "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


if __name__ == "__main__":
    main()

"""Benchmark: our TAXII 2.1 server beside medallion, at scale alone, and bundle import vs parse.

Every object is a realistic STIX 2.1 indicator built as a plain dict (deterministic seed):
a pattern on an IPv4 address, a domain name or a file's SHA-256, valid ids and timestamps,
``created_by_ref`` an identity, TLP:CLEAR so that every reader sees it. All HTTP goes through
``taxii2-client`` (one keep-alive connection), envelopes are sent as orjson bytes.

1. Side by side at ``--small`` objects (default 2,000): the OASIS reference server medallion
   (its Werkzeug server in a subprocess, memory backend, one empty read/write collection,
   HTTP Basic) and crossborder (``crossborder serve`` in a subprocess on a fresh SQLite data
   directory: an authority, an administrator who creates the collection, an analyst whose API
   token carries ``intel:read`` and ``intel:write``, sent as ``Authorization: Token``). Same
   workload on both: POST in envelopes of ``--envelope`` (100); then page through with
   ``as_pages(get_objects, per_request=100, type="indicator")``, and again with ``added_after``
   set to a client clock reading taken between the POST of the middle object and the next
   one (it selects the second half). Timed: the POSTs (objects/s; envelope latencies), the first
   page, the whole paging. Object counts are checked.
2. crossborder alone at each ``--large`` size (default 100,000 and 1,000,000), each on a fresh
   node: ingest through TAXII POSTs in envelopes of ``--large-envelope`` (1,000; checked against
   the API root's ``max_content_length``); the rate counts the POST round trips only (the
   envelopes are built between them, untimed). Then the first page (``limit=100``) without
   filters, with ``match[type]``, with ``added_after`` (the middle object, as above) and with
   both, and with a type that is not there: one warm-up and the median of ``--repeat`` (5).
   ``--explain`` prints the database's plan of the first page's query (captured from
   ``service.query`` run in this process). Then the same first pages again after ``ANALYZE``
   (unless ``--no-analyze``): nothing in the project analyses the database, and the
   PostgreSQL server may run without autovacuum (the header says).
   On SQLite (a file in a temporary directory) by default; ``--postgres`` runs parts 2 and 3
   on a throwaway PostgreSQL database ``bench_taxii_<pid>`` instead (created from
   ``--database-url``, dropped after every size), ``--backends sqlite,postgresql`` on both.
3. Bundle import against a bare parse: one bundle of ``--bundle`` objects (100,000) written to a
   temporary file; ``orjson.loads`` of its bytes (the floor, median of 5) against
   ``crossborder.intel.bundles`` reading and importing the same file in this process into a
   fresh collection of a fresh database (the service path: validation, markings, identifier
   index, one transaction), on the same backends as part 2. Part 1 is always on SQLite.

Run: ``.venv/bin/python bench/taxii.py [--small 2000] [--large 100000,1000000] [--bundle 100000]
[--postgres] [--parts small,large,bundle] [--explain]``; ``--quick`` (500 / 5,000 / 5,000)
to try it out.
Servers listen on 127.0.0.1 only and are stopped at the end; temporary directories and
databases are removed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import ipaddress
import json
import os
import platform
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG_URL = os.environ.get(
    "CROSSBORDER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SEED = 20261206
TAXII_ACCEPT = "application/taxii+json;version=2.1"
TLP_CLEAR = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
MEDALLION_USER, MEDALLION_PASSWORD = "bench", "bench-password-0"
PASSWORD = "bench-password-2026-long"  # noqa: S105 - throwaway users of a throwaway node
START_TIMEOUT = 60.0

# --- realistic indicators --------------------------------------------------------------------

_SYLLABLES = [
    "an", "ba", "co", "da", "el", "fi", "go", "ha", "in", "jo", "ka", "lu", "ma", "ne", "or",
    "pa", "ro", "sa", "ta", "un", "vi", "wa", "xe", "yo", "zu", "tran", "pay", "shop", "bank",
    "secure", "login", "mail", "cloud", "crypto", "coin", "trade", "bet", "update", "cdn",
    "verify", "account", "support", "wallet", "portal", "invoice", "track", "parcel",
]  # fmt: skip
_TLDS = [
    "com", "com", "com", "net", "org", "xyz", "top", "online", "shop", "info", "ru", "vn",
    "com.vn", "co", "io", "cc", "biz", "site", "live", "click",
]  # fmt: skip
_FAMILIES = [
    "LockBit", "BlackCat", "Qakbot", "Emotet", "AgentTesla", "RedLine", "Cobalt Strike",
    "AsyncRAT", "Remcos", "IcedID", "Raccoon", "Vidar", "FormBook", "SmokeLoader", "Akira",
]  # fmt: skip
_SOURCES = ["sandbox detonation", "honeypot", "partner report", "incident response", "OSINT"]
_IDENTITY = "identity--6f0b8a7e-2c64-4d0e-9a57-1f1d2b3c4d5e"
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _public_ipv4(rng: random.Random) -> str:
    while True:
        address = ipaddress.IPv4Address(rng.randint(0x01000000, 0xDFFFFFFF))
        if address.is_global:
            return str(address)


def _domain(rng: random.Random) -> str:
    name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
    if rng.random() < 0.5:
        name += str(rng.randint(1, 999))
    if rng.random() < 0.3:
        name = rng.choice(["www.", "login.", "secure-", "m.", "api."]) + name
    return f"{name}.{rng.choice(_TLDS)}".replace("-.", ".")


def indicators(count: int, seed: int) -> Iterator[dict[str, Any]]:
    """``count`` STIX 2.1 indicators, the same for the same seed (40% IPv4, 35% domain, 25%
    SHA-256), created over 2025, TLP:CLEAR."""
    rng = random.Random(seed)
    for _ in range(count):
        created = _EPOCH + timedelta(
            seconds=rng.randrange(365 * 86400), milliseconds=rng.randrange(1000)
        )
        modified = created + timedelta(hours=rng.randrange(0, 72))
        family = rng.choice(_FAMILIES)
        roll = rng.random()
        if roll < 0.40:
            value = _public_ipv4(rng)
            pattern = f"[ipv4-addr:value = '{value}']"
            name = f"{family} C2 server {value}"
        elif roll < 0.75:
            value = _domain(rng)
            pattern = f"[domain-name:value = '{value}']"
            name = f"{family} distribution domain {value}"
        else:
            value = f"{rng.getrandbits(256):064x}"
            pattern = f"[file:hashes.'SHA-256' = '{value}']"
            name = f"{family} payload {value[:12]}"
        yield {
            "type": "indicator",
            "spec_version": "2.1",
            "id": f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
            "created_by_ref": _IDENTITY,
            "created": _stamp(created),
            "modified": _stamp(modified),
            "name": name,
            "description": f"Seen by {rng.choice(_SOURCES)}; associated with {family}.",
            "indicator_types": ["malicious-activity"],
            "pattern": pattern,
            "pattern_type": "stix",
            "pattern_version": "2.1",
            "valid_from": _stamp(created),
            "confidence": rng.choice([30, 50, 70, 85, 95]),
            "labels": [family.lower().replace(" ", "-")],
            "object_marking_refs": [TLP_CLEAR],
        }


def envelopes(count: int, size: int, seed: int) -> Iterator[tuple[int, bytes]]:
    """(number of objects, envelope as bytes) for ``count`` indicators, ``size`` per envelope."""
    source = indicators(count, seed)
    for start in range(0, count, size):
        part = [next(source) for _ in range(min(size, count - start))]
        yield len(part), orjson.dumps({"objects": part})


# --- small helpers ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} obj/s" if seconds > 0 else "-"


def _taxii_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBORDER_")}
    env.update(extra)
    return env


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, **request: Any) -> None:
    """Poll the discovery URL until it answers 200 (``request``: httpx auth or headers)."""
    headers = {"Accept": TAXII_ACCEPT, **request.pop("headers", {})}
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"the server at {url} exited ({proc.returncode}):\n{tail}")
        try:
            if httpx.get(url, headers=headers, timeout=2, **request).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server at {url} did not answer within {START_TIMEOUT:.0f} s")


@contextlib.contextmanager
def _process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - this interpreter or a venv script, fixed args
            cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


# --- servers ---------------------------------------------------------------------------------


@dataclass
class Server:
    """A running TAXII server: the collection's URL, how to authenticate, a label."""

    label: str
    collection_url: str
    api_root_url: str
    auth: dict[str, Any]  # keyword arguments of taxii2client endpoints
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def medallion(tmp: Path) -> Iterator[Server]:
    """medallion 3.0.0, memory backend, one empty read/write collection, HTTP Basic."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    collection_id = str(uuid.UUID(int=random.Random(SEED).getrandbits(128), version=4))
    data = {
        "/discovery": {
            "title": "medallion (bench)",
            "description": "benchmark",
            "contact": "nobody",
            "default": f"{base}/api1/",
            "api_roots": [f"{base}/api1/"],
        },
        "api1": {
            "information": {
                "title": "bench API root",
                "description": "benchmark",
                "versions": [TAXII_ACCEPT],
                "max_content_length": 10 * 1024 * 1024,
            },
            "status": [],
            "collections": [
                {
                    "id": collection_id,
                    "title": "bench",
                    "description": "empty read/write collection",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": [],
                    "manifest": [],
                }
            ],
        },
    }
    data_file, config_file = tmp / "medallion_data.json", tmp / "medallion_config.json"
    data_file.write_text(json.dumps(data))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(data_file),
        },
        "users": {MEDALLION_USER: MEDALLION_PASSWORD},
        "taxii": {"max_page_size": 100},
    }
    config_file.write_text(json.dumps(config))
    script = Path(sys.executable).with_name("medallion")
    cmd = [str(script), "--host", "127.0.0.1", "--port", str(port), str(config_file)]
    log = tmp / "medallion.log"
    with _process(cmd, _child_env(), log) as proc:
        basic = (MEDALLION_USER, MEDALLION_PASSWORD)
        _wait_ready(f"{base}/taxii2/", proc, log, auth=basic)
        yield Server(
            label=f"medallion {_version('medallion')} (memory)",
            collection_url=f"{base}/api1/collections/{collection_id}/",
            api_root_url=f"{base}/api1/",
            auth={"user": MEDALLION_USER, "password": MEDALLION_PASSWORD},
        )


@dataclass
class Node:
    data_dir: Path
    url: str
    token: str
    collection_id: str


def prepare_node(data_dir: Path, url: str) -> Node:
    """A fresh node: migrated database, an authority, an administrator who creates the
    collection, an analyst with an API token (``intel:read``, ``intel:write``)."""
    from crossborder.auth import service as auth_service
    from crossborder.auth.permissions import SYSTEM
    from crossborder.cli import context
    from crossborder.db.session import make_engine, make_session_factory, unit_of_work
    from crossborder.directory import schemas
    from crossborder.directory import service as directory
    from crossborder.intel import service
    from crossborder.settings import load_settings

    settings = load_settings(data_dir=data_dir, database_url=url, log_level="WARNING")
    context.init_node(settings)  # what `crossborder init` does
    engine = make_engine(url)
    try:
        with make_session_factory(engine, data_dir=data_dir)() as session:
            directory.create_state(session, schemas.StateCreate(alpha2="VN"), actor=SYSTEM)
            authority = directory.create_authority(
                session,
                schemas.AuthorityCreate(
                    state="VN",
                    name="Bench cyber police",
                    short_name="VN-BENCH",
                    roles=["police"],
                    languages=["en"],
                    time_zone="Asia/Ho_Chi_Minh",
                    is_local=True,
                ),
                actor=SYSTEM,
            )
            users = {}
            for name, role in (("admin", "administrator"), ("analyst", "analyst")):
                users[name] = auth_service.create_user(
                    session,
                    actor=SYSTEM,
                    username=name,
                    password=PASSWORD,
                    authority_id=authority.id,
                    roles=[role],
                    display_name=name,
                    bootstrap=True,
                )
            admin = auth_service.principal_for(users["admin"], via="cli")
            collection = service.create_collection(
                session, admin, title="Bench feed", alias="bench-feed"
            )
            analyst = auth_service.principal_for(users["analyst"], via="cli")
            with unit_of_work(session):
                _token, raw = auth_service.create_token(
                    session,
                    actor=analyst,
                    name="TAXII bench",
                    scopes=["intel:read", "intel:write"],
                    expires_in_days=30,
                )
            return Node(data_dir, url, raw, collection.public_id)
    finally:
        engine.dispose()


@contextlib.contextmanager
def crossborder(node: Node, label: str) -> Iterator[Server]:
    """``crossborder serve`` on a free loopback port, for the prepared node."""
    from taxii2client.common import TokenAuth

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = _child_env(
        CROSSBORDER_DATA_DIR=str(node.data_dir),
        CROSSBORDER_DATABASE_URL=node.url,
        CROSSBORDER_LOG_LEVEL="WARNING",
    )
    cmd = [sys.executable, "-m", "crossborder.cli.main", "serve"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    log = node.data_dir.parent / f"{node.data_dir.name}.log"
    with _process(cmd, env, log) as proc:
        bearer = {"Authorization": f"Bearer {node.token}"}
        _wait_ready(f"{base}/taxii2/", proc, log, headers=bearer)
        yield Server(
            label=label,
            collection_url=f"{base}/taxii2/api1/collections/{node.collection_id}/",
            api_root_url=f"{base}/taxii2/api1/",
            auth={"auth": TokenAuth(node.token)},
        )


# --- the client workload ---------------------------------------------------------------------


@dataclass
class Ingest:
    count: int
    seconds: float  # sum of the POST round trips
    latencies: list[float]
    middle: str  # added_after selecting the objects posted after the middle envelope
    after_middle: int  # how many objects that is


def ingest(server: Server, count: int, size: int, seed: int) -> Ingest:
    """POST ``count`` indicators in envelopes of ``size``; every object must be a success."""
    from taxii2client.v21 import ApiRoot, Collection

    root = ApiRoot(server.api_root_url, **server.auth)
    limit = int(root.max_content_length)
    collection = Collection(server.collection_url, **server.auth)
    if not (collection.can_read and collection.can_write):
        raise SystemExit(f"{server.label}: the collection is not read/write")
    latencies: list[float] = []
    sent = 0
    middle = ""
    after_middle = 0
    biggest = 0
    for part, data in envelopes(count, size, seed):
        biggest = max(biggest, len(data))
        if len(data) > limit:
            raise SystemExit(f"an envelope of {len(data):,} B exceeds max_content_length {limit:,}")
        started = time.perf_counter()
        status = collection.add_objects(data)
        latencies.append(time.perf_counter() - started)
        if status.status != "complete" or status.success_count != part:
            raise SystemExit(
                f"{server.label}: {status.success_count}/{part} stored, "
                f"failures {status.failures[:2]}"
            )
        sent += part
        if not middle and sent >= count // 2:
            time.sleep(0.005)
            middle = _taxii_time(datetime.now(UTC))
            after_middle = count - sent
            time.sleep(0.005)
    collection.close()
    root.close()
    server.notes.append(
        f"envelopes of {size:,} objects, at most {biggest:,} B; max_content_length {limit:,} B"
    )
    return Ingest(count, sum(latencies), latencies, middle, after_middle)


@dataclass
class Paging:
    first: float
    total: float
    pages: int
    objects: int


def page_through(server: Server, per_request: int, **filters: Any) -> Paging:
    from taxii2client.v21 import Collection, as_pages

    collection = Collection(server.collection_url, **server.auth)
    collection.can_read  # noqa: B018 - load the collection resource before the clock starts
    first = 0.0
    pages = objects = 0
    started = time.perf_counter()
    for envelope in as_pages(collection.get_objects, per_request=per_request, **filters):
        if pages == 0:
            first = time.perf_counter() - started
        pages += 1
        objects += len(envelope.get("objects", []))
    total = time.perf_counter() - started
    collection.close()
    return Paging(first, total, pages, objects)


def first_pages(server: Server, repeat: int, **filters: Any) -> tuple[list[float], int]:
    """One warm-up, then ``repeat`` timed ``get_objects(limit=100)``; the page's size."""
    from taxii2client.v21 import Collection

    collection = Collection(server.collection_url, **server.auth)
    collection.can_read  # noqa: B018
    size = len(collection.get_objects(limit=100, **filters).get("objects", []))
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        collection.get_objects(limit=100, **filters)
        timings.append(time.perf_counter() - started)
    collection.close()
    return timings, size


# --- part 1: side by side --------------------------------------------------------------------


def _spread(latencies: list[float]) -> str:
    return (
        f"{latencies[0] * 1000:.0f} / {_median(latencies) * 1000:.0f} / "
        f"{latencies[-1] * 1000:.0f} ms"
    )


def part_small(args: argparse.Namespace, tmp: Path) -> None:
    n = args.small
    who = "crossborder only" if args.no_medallion else "medallion and crossborder"
    print(
        f"== 1. side by side: {n:,} indicators in one collection, envelopes of "
        f"{args.envelope}, pages of 100 ({who}) =="
    )
    results: dict[str, dict[str, Any]] = {}
    runs: list[tuple[str, Callable[[], contextlib.AbstractContextManager[Server]]]] = []
    if not args.no_medallion:
        runs.append(("medallion", lambda: medallion(tmp)))

    def _ours() -> contextlib.AbstractContextManager[Server]:
        data_dir = tmp / "small-node"
        node = prepare_node(data_dir, f"sqlite:///{data_dir / 'crossborder.sqlite3'}")
        return crossborder(node, "crossborder (SQLite)")

    runs.append(("crossborder", _ours))
    for key, start in runs:
        with start() as server:
            done = ingest(server, n, args.envelope, args.seed)
            by_type = page_through(server, 100, type="indicator")
            after = page_through(server, 100, type="indicator", added_after=done.middle)
            for name, paging, expected in (
                ("type", by_type, n),
                ("after", after, done.after_middle),
            ):
                if paging.objects != expected:
                    server.notes.append(
                        f"paging {name}: {paging.objects:,} objects, expected {expected:,}"
                    )
            results[key] = {"server": server, "ingest": done, "type": by_type, "after": after}
    labels = [r["server"].label for r in results.values()]
    width = 48
    print(f"  {'':{width}}" + "".join(f"{label:>30}" for label in labels))

    def row(title: str, cells: list[str]) -> None:
        print(f"  {title:{width}}" + "".join(f"{cell:>30}" for cell in cells))

    ingests: list[Ingest] = [r["ingest"] for r in results.values()]
    envs = -(-n // args.envelope)
    row(f"POST {n:,} ({envs} envelopes)", [f"{d.seconds:.2f} s" for d in ingests])
    row("  ingest rate", [_rate(n, d.seconds) for d in ingests])
    row("  envelope first / median / last", [_spread(d.latencies) for d in ingests])
    for key, title in (("type", "type=indicator"), ("after", "type=indicator + added_after")):
        pagings: list[Paging] = [r[key] for r in results.values()]
        row(f"paging {title}: first page", [_ms(p.first) for p in pagings])
        row(
            "  whole paging",
            [f"{p.total:.2f} s, {p.pages} pages, {p.objects:,} obj" for p in pagings],
        )
        row("  paging rate", [_rate(p.objects, p.total) for p in pagings])
    for r in results.values():
        for note in r["server"].notes:
            print(f"  {r['server'].label}: {note}")
    if len(results) == 2:
        m, c = results["medallion"], results["crossborder"]
        print(
            "  time medallion / time crossborder (>1: crossborder faster): POST "
            f"{m['ingest'].seconds / c['ingest'].seconds:.2f}; first page (type) "
            f"{m['type'].first / c['type'].first:.0f}, (type + added_after) "
            f"{m['after'].first / c['after'].first:.0f}; whole paging (type) "
            f"{m['type'].total / c['type'].total:.0f}, (type + added_after) "
            f"{m['after'].total / c['after'].total:.0f}"
        )


# --- part 2: crossborder alone at scale ------------------------------------------------------


@contextlib.contextmanager
def database(backend: str, tmp: Path, args: argparse.Namespace, tag: str) -> Iterator[str]:
    """A fresh database URL: a SQLite file in ``tmp``, or a throwaway PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / tag / 'crossborder.sqlite3'}"
        return
    from sqlalchemy.engine import make_url

    name = f"bench_taxii_{os.getpid()}"
    with _pg_connect(args.database_url) as conn:
        conn.autocommit = True
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with _pg_connect(args.database_url) as conn:
            conn.autocommit = True
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_connect(url: str) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        dbname=parsed.database or "postgres",
        connect_timeout=5,
    )


def _db_size(url: str) -> str:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    else:
        with _pg_connect(url) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            total = row[0]
    return f"{total / 2**20:,.0f} MiB"


_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("no filter", {}),
    ("match[type]=indicator", {"type": "indicator"}),
    ("added_after=<middle>", {"added_after": None}),
    ("match[type] + added_after", {"type": "indicator", "added_after": None}),
    ("match[type]=malware (none)", {"type": "malware"}),  # worst case: nothing matches
]


def _filters(template: dict[str, Any], middle: str) -> dict[str, Any]:
    return {k: (middle if k == "added_after" else v) for k, v in template.items()}


def part_large(args: argparse.Namespace, tmp: Path, backend: str, n: int) -> None:
    label = "PostgreSQL" if backend == "postgresql" else "SQLite"
    print(
        f"== 2. crossborder alone ({label}): {n:,} indicators, TAXII POST in envelopes of "
        f"{args.large_envelope:,} =="
    )
    tag = f"large-{backend}-{n}"
    with database(backend, tmp, args, tag) as url:
        data_dir = tmp / tag
        node = prepare_node(data_dir, url)
        with crossborder(node, f"crossborder ({label})") as server:
            wall = time.perf_counter()
            done = ingest(server, n, args.large_envelope, args.seed)
            wall = time.perf_counter() - wall
            lat = done.latencies
            tenth = max(1, len(lat) // 10)
            print(
                f"  ingest: {_rate(n, done.seconds)} — {done.seconds:,.1f} s in POSTs "
                f"({wall:,.1f} s wall, envelopes built in between); envelope median "
                f"{_median(lat[:tenth]) * 1000:,.0f} ms in the first tenth, "
                f"{_median(lat[-tenth:]) * 1000:,.0f} ms in the last tenth"
            )
            print(f"  {server.notes[-1]}; database {_db_size(url)}")
            first_page_table(server, args.repeat, done.middle, "")
            if args.explain:
                explain(url, node, done.middle)
            if not args.no_analyze:
                started = time.perf_counter()
                analyze(url)
                print(f"  ANALYZE of the whole database: {time.perf_counter() - started:.1f} s")
                first_page_table(server, args.repeat, done.middle, "after ANALYZE, ")


def first_page_table(server: Server, repeat: int, middle: str, prefix: str) -> None:
    for title, template in _VARIANTS:
        timings, size = first_pages(server, repeat, **_filters(template, middle))
        spread = ", ".join(f"{t * 1000:.0f}" for t in timings)
        print(
            f"  {prefix}first page limit=100, {title:27} {_ms(_median(timings)):>10} "
            f"(median of {len(timings)}: {spread} ms; {size} objects)"
        )


def analyze(url: str) -> None:
    """What autovacuum would do on PostgreSQL (it is off on some servers); sqlite_stat1 on
    SQLite, which nothing in the project writes."""
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            conn.execute("ANALYZE")
            conn.commit()
        return
    with _pg_connect(url) as conn:
        conn.autocommit = True
        conn.execute("ANALYZE")


def explain(url: str, node: Node, middle: str) -> None:
    """The plan of the first page's query, as ``service.query`` sends it, per variant."""
    from sqlalchemy import event, select

    from crossborder.auth import service as auth_service
    from crossborder.auth.models import User
    from crossborder.db.session import make_engine, make_session_factory
    from crossborder.intel import service, stix

    engine = make_engine(url)
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        if "FROM intel_objects" in statement and "ORDER BY" in statement:
            captured.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with make_session_factory(engine)() as session:
            user = session.scalar(select(User).where(User.username == "analyst"))
            assert user is not None
            actor = auth_service.principal_for(user, via="cli")
            collection = service.get_collection(session, actor, node.collection_id)
            shown = ""
            for title, template in _VARIANTS:
                filters = _filters(template, middle)
                captured.clear()
                after = filters.get("added_after")
                service.query(
                    session,
                    actor,
                    collection,
                    added_after=stix.parse_timestamp(after) if after else None,
                    match_type=[filters["type"]] if "type" in filters else (),
                    limit=100,
                )
                if not captured:
                    continue
                statement, params = captured[0]
                if "added_after" in filters and "type" in filters:
                    shown = " ".join(statement.split())
                print(f"  plan, {title}:")
                if url.startswith("sqlite"):
                    prefix = "EXPLAIN QUERY PLAN "
                else:
                    prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
                conn = session.connection()
                rows = conn.exec_driver_sql(prefix + statement, params).all()
                for r in rows:
                    print("    " + (str(r[-1]) if url.startswith("sqlite") else str(r[0])))
                session.rollback()
            print(f"  the query (match[type] + added_after): {shown}")
    finally:
        engine.dispose()


# --- part 3: bundle import against orjson ----------------------------------------------------


def part_bundle(args: argparse.Namespace, tmp: Path, backend: str) -> None:
    from sqlalchemy import select

    from crossborder.auth import service as auth_service
    from crossborder.auth.models import User
    from crossborder.db.session import make_engine, make_session_factory
    from crossborder.intel import bundles, service, stix

    n = args.bundle
    label = "PostgreSQL" if backend == "postgresql" else "SQLite"
    path = tmp / "bundle.json"
    if not path.exists():
        bundle = {
            "type": "bundle",
            "id": f"bundle--{uuid.UUID(int=random.Random(SEED + 2).getrandbits(128), version=4)}",
            "objects": list(indicators(n, args.seed + 1)),
        }
        path.write_bytes(orjson.dumps(bundle))
    data = path.read_bytes()
    print(
        f"== 3. bundle import vs parse ({label}): {n:,} indicators, "
        f"{len(data) / 2**20:,.1f} MiB bundle file =="
    )
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        parsed = orjson.loads(data)
        timings.append(time.perf_counter() - started)
        del parsed
    floor = _median(timings)
    tag = f"bundle-{backend}"
    with database(backend, tmp, args, tag) as url:
        node = prepare_node(tmp / tag, url)
        engine = make_engine(url)
        try:
            with make_session_factory(engine, data_dir=node.data_dir)() as session:
                user = session.scalar(select(User).where(User.username == "analyst"))
                assert user is not None
                actor = auth_service.principal_for(user, via="cli")
                collection = service.get_collection(session, actor, node.collection_id)
                session.commit()
                # a second backend in this process must not find the patterns already parsed
                for cached in vars(stix).values():
                    if callable(getattr(cached, "cache_clear", None)):
                        cached.cache_clear()
                started = time.perf_counter()
                objects = bundles.read_file(path)
                read = time.perf_counter() - started
                report = bundles.import_objects(session, actor, collection, objects)
                total = time.perf_counter() - started
        finally:
            engine.dispose()
        size = _db_size(url)
    if report.stored != n:
        print(f"  !! import: {report.summary()}; first errors: {report.errors[:3]}")
    print(
        f"  orjson.loads (floor):        {_rate(n, floor):>14} — {_ms(floor)} "
        f"(median of 5: {', '.join(f'{t * 1000:.0f}' for t in timings)} ms)"
    )
    print(
        f"  bundles.read_file + import:  {_rate(n, total):>14} — {total:,.1f} s "
        f"(read + parse {_ms(read)}, import {total - read:,.1f} s in "
        f"{-(-n // bundles.BATCH)} batches of {bundles.BATCH:,}); {report.summary()}; "
        f"database {size}"
    )
    print(f"  ratio: the import takes {total / floor:,.0f}x the time of the bare parse")


# --- main ------------------------------------------------------------------------------------


def _pg_version(url: str) -> str | None:
    try:
        with _pg_connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            autovacuum = conn.execute("SHOW autovacuum").fetchone()
    except Exception:  # any failure means "not here"
        return None
    return f"{version[0]} (autovacuum {autovacuum[0]})"


def _code_digest() -> str:
    """Which code was measured: a digest of ``src/crossborder/**/*.py`` (others edit it)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src" / "crossborder").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated positive integers") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("comma-separated positive integers")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="side by side: objects")
    parser.add_argument("--envelope", type=int, default=100, help="side by side: per POST")
    parser.add_argument("--large", type=_sizes, default=[100_000, 1_000_000], help="e.g. 1e5,1e6")
    parser.add_argument("--large-envelope", type=int, default=1000, help="at scale: per POST")
    parser.add_argument("--bundle", type=int, default=100_000, help="bundle import: objects")
    parser.add_argument("--repeat", type=int, default=5, help="first page: timed requests")
    parser.add_argument("--parts", default="small,large,bundle", help="which parts to run")
    parser.add_argument("--postgres", action="store_true", help="= --backends postgresql")
    parser.add_argument("--backends", default="sqlite", help="parts 2 and 3: sqlite,postgresql")
    parser.add_argument("--database-url", default=DEFAULT_PG_URL, help="PostgreSQL maintenance URL")
    parser.add_argument("--no-medallion", action="store_true", help="part 1 without medallion")
    parser.add_argument("--explain", action="store_true", help="part 2: print query plans")
    parser.add_argument(
        "--no-analyze", action="store_true", help="part 2: no second round after ANALYZE"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--quick", action="store_true", help="500 / 5,000 / 5,000, to try it out")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # nohup > file
    if args.quick:
        args.small, args.large, args.bundle = 500, [5000], 5000
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts <= {"small", "large", "bundle"}:
        raise SystemExit("--parts: small, large, bundle")
    if min(args.small, args.envelope, args.large_envelope, args.bundle, args.repeat) < 1:
        raise SystemExit("sizes and --repeat must be positive")
    listed = "postgresql" if args.postgres else args.backends
    backends = [b.strip() for b in listed.split(",") if b.strip()]
    if not set(backends) <= {"sqlite", "postgresql"}:
        raise SystemExit("--backends: sqlite, postgresql or both")
    pg = _pg_version(args.database_url) if "postgresql" in backends else None
    if "postgresql" in backends and pg is None:
        raise SystemExit(f"PostgreSQL not reachable at {args.database_url}")
    print(
        f"bench/taxii.py — python {platform.python_version()}, medallion "
        f"{_version('medallion')}, taxii2-client {_version('taxii2-client')}, stix2-patterns "
        f"{_version('stix2-patterns')}, orjson {_version('orjson')}, SQLite "
        f"{sqlite3.sqlite_version}"
        + (f", PostgreSQL {pg}" if pg else "")
        + f"; code {_code_digest()}"
    )
    print(
        f"  {os.cpu_count()} CPUs; seed {args.seed}; parts {','.join(sorted(parts))}; "
        f"small {args.small:,} (envelopes of {args.envelope}); large "
        f"{', '.join(f'{n:,}' for n in args.large)} (envelopes of {args.large_envelope:,}); "
        f"bundle {args.bundle:,}; parts 2-3 on {', '.join(backends)}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    with tempfile.TemporaryDirectory(prefix="cb-bench-taxii-") as name:
        tmp = Path(name)
        if "small" in parts:
            part_small(args, tmp)
        if "large" in parts:
            for backend in backends:
                for n in args.large:
                    part_large(args, tmp, backend, n)
        if "bundle" in parts:
            for backend in backends:
                part_bundle(args, tmp, backend)


if __name__ == "__main__":
    main()

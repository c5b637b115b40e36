"""Benchmark: envelopes per second between two nodes on loopback, and delivery latency.

Two nodes, each a real HTTP server (uvicorn in a subprocess) with its own keys and SQLite
database, peer with each other. This process plays node A's worker:

1. throughput: queue N ``federation.ping`` messages in A's outbox, then deliver them all
   (``deliver_due`` in a loop over one keep-alive HTTP connection) and divide by the time;
   every message is sealed (sign + encrypt), posted, opened and checked by B (decrypt, verify,
   freshness, replay), stored in B's inbox, processed, and its signed receipt verified by A;
2. latency: M times, queue one message and deliver it at once; report p50 and p99 of
   enqueue-commit → receipt-verified-and-recorded.

Run: ``.venv/bin/python bench/federation.py [--messages 500] [--latency-samples 200]``.
Loops are bounded; servers listen on 127.0.0.1 only and are stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def _settings(data_dir: Path, name: str):  # type: ignore[no-untyped-def]
    from crossborder.settings import Settings

    return Settings(
        environment="test",  # type: ignore[arg-type]
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'node.sqlite3'}",
        secret_key="bench-secret-key-" + "x" * 40,
        cookie_secure=False,
        node_name=name,
        log_level="WARNING",
    )


def serve(data_dir: Path, port: int) -> None:
    """Subprocess mode: one node's HTTP server."""
    import uvicorn

    from crossborder.app import create_app
    from crossborder.federation import api

    app = create_app(_settings(data_dir, data_dir.name))
    if not any(getattr(r, "path", "") == "/federation/v1/inbox" for r in app.routes):
        app.include_router(api.router)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(data_dir: Path) -> None:
    import crossborder.models  # noqa: F401
    from crossborder.db.base import Base
    from crossborder.db.migrate import upgrade
    from crossborder.db.session import make_engine
    from crossborder.federation.identity import ensure_identity

    data_dir.mkdir(mode=0o700)
    ensure_identity(data_dir)
    url = f"sqlite:///{data_dir / 'node.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    Base.metadata.create_all(engine)  # federation tables, until their migration exists
    engine.dispose()


def _pin(data_dir: Path, other: Path, url: str) -> int:
    from crossborder.auth.permissions import SYSTEM
    from crossborder.db.session import make_engine, make_session_factory
    from crossborder.federation import service
    from crossborder.federation.identity import load_identity

    ident = load_identity(other)
    engine = make_engine(f"sqlite:///{data_dir / 'node.sqlite3'}")
    try:
        with make_session_factory(engine)() as session:
            peer = service.add_peer(
                session,
                actor=SYSTEM,
                name=other.name,
                base_url=url,
                fingerprint=ident.fingerprint,
                signing_key=ident.signing_public_key,
                encryption_key=ident.encryption_public_key,
            )
            return peer.node_id
    finally:
        engine.dispose()


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("a node failed to start")
        try:
            if httpx.get(url + "/federation/v1/identity", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("a node did not start within 30 s")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def run(messages: int, samples: int, body_bytes: int) -> dict[str, float]:
    from crossborder.db.session import make_engine, make_session_factory, unit_of_work
    from crossborder.federation import service
    from crossborder.federation.client import HttpTransport

    with tempfile.TemporaryDirectory(prefix="cb-bench-") as tmp:
        a_dir, b_dir = Path(tmp) / "alpha", Path(tmp) / "bravo"
        for d in (a_dir, b_dir):
            _prepare(d)
        ports = {"alpha": _free_port(), "bravo": _free_port()}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        to_b = _pin(a_dir, b_dir, urls["bravo"])
        _pin(b_dir, a_dir, urls["alpha"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBORDER_")}
        procs = [
            subprocess.Popen(  # noqa: S603 - this interpreter, this script, fixed arguments
                [sys.executable, __file__, "--serve", str(d), str(ports[d.name])],
                env=env,
                cwd=ROOT,
            )
            for d in (a_dir, b_dir)
        ]
        try:
            for name, proc in zip(("alpha", "bravo"), procs, strict=True):
                _wait(urls[name], proc)
            settings = _settings(a_dir, "alpha")
            engine = make_engine(settings.resolved_database_url)
            factory = make_session_factory(engine)
            body = {"pad": "x" * body_bytes} if body_bytes else {}
            with HttpTransport(timeout=30) as transport:
                # warm up (connection, caches)
                with factory() as s, unit_of_work(s):
                    for _ in range(10):
                        service.enqueue(s, to_node_id=to_b, type="federation.ping", body=body)
                service.deliver_due(factory, settings=settings, transport=transport)

                with factory() as s, unit_of_work(s):
                    for _ in range(messages):
                        service.enqueue(s, to_node_id=to_b, type="federation.ping", body=body)
                delivered = 0
                started = time.perf_counter()
                for _ in range(messages):  # bounded: at most one pass per message
                    stats = service.deliver_due(
                        factory, settings=settings, transport=transport, limit=100
                    )
                    delivered += stats.delivered
                    if stats.claimed == 0:
                        break
                elapsed = time.perf_counter() - started
                if delivered != messages:
                    raise SystemExit(f"only {delivered}/{messages} delivered")

                latencies = []
                for _ in range(samples):
                    t0 = time.perf_counter()
                    with factory() as s, unit_of_work(s):
                        service.enqueue(s, to_node_id=to_b, type="federation.ping", body=body)
                    stats = service.deliver_due(factory, settings=settings, transport=transport)
                    latencies.append((time.perf_counter() - t0) * 1000)
                    if stats.delivered != 1:
                        raise SystemExit("a latency sample was not delivered")
            engine.dispose()
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)
    return {
        "envelopes_per_second": messages / elapsed,
        "latency_p50_ms": statistics.median(latencies),
        "latency_p99_ms": _percentile(latencies, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--body-bytes", type=int, default=0, help="padding in each body")
    parser.add_argument("--serve", nargs=2, metavar=("DATA_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return
    if not 1 <= args.messages <= 100_000 or not 1 <= args.latency_samples <= 10_000:
        raise SystemExit("--messages 1..100000, --latency-samples 1..10000")
    result = run(args.messages, args.latency_samples, args.body_bytes)
    print(
        f"federation loopback, 2 nodes (SQLite), 1 worker, body {args.body_bytes} B: "
        f"{result['envelopes_per_second']:.1f} envelopes/s over {args.messages}; "
        f"latency p50 {result['latency_p50_ms']:.1f} ms, p99 {result['latency_p99_ms']:.1f} ms "
        f"over {args.latency_samples}"
    )


if __name__ == "__main__":
    main()

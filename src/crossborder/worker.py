"""`crossborder worker`: periodic sweeps — expired sessions and login attempts, request
deadline clocks (overdue / due soon), identifiers in new attachments, stale partial uploads,
federation outbox delivery and inbox retries, intelligence feeds that are due, planner
statistics of the tables that changed enough (``db.maintenance``), hit/no-hit sets not
refreshed for ten minutes and queries no partner answered in a week. Each sweep calls services
only and runs in its own transactions."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from crossborder.app import install_message_handlers
from crossborder.auth import service as auth_service
from crossborder.db import maintenance
from crossborder.db.session import make_engine, make_session_factory, unit_of_work
from crossborder.evidence import storage
from crossborder.federation import service as federation_service
from crossborder.intel import feeds as intel_feeds
from crossborder.matching import responder
from crossborder.matching import service as matching
from crossborder.requests import identifiers as request_identifiers
from crossborder.requests import service as requests_service
from crossborder.settings import Settings

log = logging.getLogger("crossborder.worker")


def sweep_once(settings: Settings, session_factory: Callable[[], object]) -> dict[str, int]:
    from sqlalchemy.orm import Session

    session = session_factory()
    assert isinstance(session, Session)
    try:
        purged = auth_service.purge_expired(session, settings=settings)
        clocks = requests_service.sweep_clocks(session)
        scanned = request_identifiers.scan_attachments(session, settings.data_dir)
        with unit_of_work(session):
            analyzed = maintenance.analyze_stale(session)
        refreshed = responder.refresh_due(session, settings.data_dir)
        with unit_of_work(session):
            expired = matching.expire_unanswered(session)
    finally:
        session.close()
    stale = storage.remove_stale_temp_files(storage.evidence_root(settings.data_dir))
    install_message_handlers()
    delivered = federation_service.run_cycle(settings, session_factory)  # type: ignore[arg-type]
    pulled = intel_feeds.run_due(settings, session_factory)  # type: ignore[arg-type]
    return {
        **delivered,
        **pulled,
        "expired_sessions": purged.sessions,
        "old_login_attempts": purged.login_attempts,
        "clocks_checked": clocks.checked,
        "clocks_changed": clocks.changed,
        "clocks_overdue": clocks.overdue,
        "clocks_due_soon": clocks.due_soon,
        "stale_upload_files": stale,
        "attachments_scanned": scanned,
        "tables_analyzed": len(analyzed),
        "matching_sets_refreshed": sum(1 for r in refreshed if r.added or r.removed),
        "matching_queries_expired": expired,
    }


def run(settings: Settings, *, once: bool, interval: float, echo: Callable[[str], None]) -> None:
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine, data_dir=settings.data_dir)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while True:
            counts = sweep_once(settings, factory)
            echo("sweep: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
            if once or stop.wait(interval):
                break
    finally:
        engine.dispose()

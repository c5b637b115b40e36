"""Planner statistics that do not depend on autovacuum.

PostgreSQL plans from the statistics ``ANALYZE`` gathers. Autovacuum gathers them on a timer,
but it may be off, and a large import finishes before its next cycle: without statistics the
first TAXII page sorted a whole collection (4.7 s at a million objects instead of 18 ms) and
the "already stored?" lookup of each import batch read the whole collection (quadratic
import). :func:`analyze_stale` applies autovacuum's own rule — analyse a table once more rows
changed than :data:`ANALYZE_BASE_THRESHOLD` + :data:`ANALYZE_SCALE_FACTOR` x its rows — after
large writes (``intel.service.add_objects``) and on every worker sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Final

from sqlalchemy import bindparam, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

ANALYZE_BASE_THRESHOLD: Final = 50
"""Rows changed that always justify an ANALYZE (``autovacuum_analyze_threshold``'s default)."""
ANALYZE_SCALE_FACTOR: Final = 0.1
"""Share of a table's rows that, changed, justify an ANALYZE
(``autovacuum_analyze_scale_factor``'s default)."""
LOCK_TIMEOUT: Final = "200ms"
"""How long an ANALYZE waits for its lock before it gives way (to a concurrent ANALYZE)."""
LOCK_NOT_AVAILABLE: Final = "55P03"
"""PostgreSQL's SQLSTATE for a lock that ``lock_timeout`` gave up on."""

_SET_LOCK_TIMEOUT = text("SELECT set_config('lock_timeout', :value, true)")  # = SET LOCAL
_STATS = text(
    """
    SELECT c.relname, c.reltuples, COALESCE(s.n_mod_since_analyze, 0), n.nspname
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname IN :names
    """
).bindparams(bindparam("names", expanding=True))


def _all_tables() -> list[str]:
    import crossborder.models  # noqa: F401 - registers every table
    from crossborder.db.base import Base

    return [t.name for t in Base.metadata.sorted_tables]


def is_stale(changed: int, reltuples: float) -> bool:
    """Autovacuum's rule: more changes than the base threshold plus a share of the rows.

    ``reltuples`` is -1 for a table never analysed or vacuumed (PostgreSQL 14+): no rows known.
    """
    return changed > ANALYZE_BASE_THRESHOLD + ANALYZE_SCALE_FACTOR * max(reltuples, 0.0)


def analyze_stale(
    session: Session,
    tables: Sequence[str] | None = None,
    *,
    pending: Mapping[str, int] | None = None,
) -> list[str]:
    """``ANALYZE`` those of ``tables`` (all crossborder tables when None) that changed enough.

    Runs in the session's transaction. The changes of a table are PostgreSQL's count since its
    last analysis (``pg_stat_user_tables.n_mod_since_analyze``, which counts committed
    transactions only) plus ``pending[table]``, the rows this transaction changed; a table of
    the current schema only (``current_schema()``), never one of the same name elsewhere.

    Each ANALYZE runs in a SAVEPOINT with ``lock_timeout`` at :data:`LOCK_TIMEOUT`: when
    another session holds a conflicting lock (a concurrent ANALYZE of the same table, which
    makes this one needless) the table is skipped rather than waited for. The transaction's
    previous ``lock_timeout`` is restored after each table. Note that the ANALYZE's lock
    (SHARE UPDATE EXCLUSIVE: it does not block reads or writes) is held until the
    transaction ends.

    On SQLite this does nothing and returns ``[]``: its planner picks the intelligence store's
    indexes without statistics (``EXPLAIN QUERY PLAN`` of the first TAXII page shows a scan of
    ``ix_intel_objects_added`` with no temporary B-tree for the ORDER BY, and the import's
    lookup uses the unique index), and ``ANALYZE`` there would only be a full read to pay.

    Returns the names of the tables analysed.
    """
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return []
    names = list(tables) if tables is not None else _all_tables()
    if not names:
        return []
    pending = pending or {}
    preparer = bind.dialect.identifier_preparer
    # Statistics are cached for the whole transaction (stats_fetch_consistency): read fresh.
    session.execute(text("SELECT pg_stat_clear_snapshot()"))
    stale: dict[str, str] = {}
    for name, reltuples, changed, schema in session.execute(_STATS, {"names": names}):
        if is_stale(int(changed) + pending.get(name, 0), float(reltuples)):
            stale[str(name)] = str(schema)
    if not stale:
        return []
    previous = session.execute(text("SELECT current_setting('lock_timeout')")).scalar_one()
    analysed: list[str] = []
    for name in (n for n in dict.fromkeys(names) if n in stale):
        qualified = f"{preparer.quote_schema(stale[name])}.{preparer.quote(name)}"
        try:
            with session.begin_nested():
                session.execute(_SET_LOCK_TIMEOUT, {"value": LOCK_TIMEOUT})
                session.execute(text(f"ANALYZE {qualified}"))
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            log.debug("ANALYZE %s skipped: its table is locked by another session", name)
        else:
            analysed.append(name)
        session.execute(_SET_LOCK_TIMEOUT, {"value": previous})
    return analysed

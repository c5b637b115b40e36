"""Indexing identifiers where they occur, and correlating them under need-to-know.

* :func:`index_record` normalises a record's identifiers and replaces its occurrences in one
  transaction: the global value rows are created on first sight (race-safe upsert), the
  record's previous occurrences of the same source are removed, the new ones inserted.
* :func:`correlate` answers "where else?" for a batch of probes: the same value, its variants
  (:func:`~crossborder.selectors.correlate.related_form`), the same IPv6 /64, or every value in
  a CIDR network; IP sightings are compared on port and time window. A value on a warning list
  or held in more scopes than the correlation limit is not correlated, and says so.
* Need-to-know: a hit inside a scope the actor may not open is never shown; it becomes "another
  authority holds this — contact X", and :func:`audit_disclosure` records that X was named.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, func, insert, select, tuple_
from sqlalchemy.orm import Session

from crossborder.audit.service import record
from crossborder.auth.permissions import Permission, Principal, require
from crossborder.core.errors import InvalidInput, NotFound
from crossborder.directory.models import Authority
from crossborder.selectors import correlate as rules
from crossborder.selectors import scopes
from crossborder.selectors.models import (
    RAW_MAX,
    IdentLocalWarning,
    IdentOccurrence,
    IdentValue,
)
from crossborder.selectors.normalize import InvalidIdentifier, Normalized, normalize
from crossborder.selectors.warninglists import DEFAULT_LISTS, WarningIndex, get_index

CHUNK: Final = 500
NETWORK_LOOKUP_MAX: Final = 500
PREFIX_NEIGHBOURS_MAX: Final = 200
SOURCES: Final = ("entered", "extracted", "imported", "received")
_STRENGTH_ORDER: Final = {
    rules.Strength.MATCH: 0,
    rules.Strength.WEAK: 1,
    rules.Strength.MISMATCH: 2,
}
_RELATION_ORDER: Final = {"same": 0, "related": 1, "network": 2, "prefix": 3}


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    correlation_limit: int = 50
    warninglists: tuple[str, ...] | None = None  # None: the default lists; (): none
    slack: timedelta = timedelta(0)

    @classmethod
    def from_settings(cls, settings: Any) -> Config:
        names = str(getattr(settings, "identifiers_warninglists", "default")).strip().lower()
        lists: tuple[str, ...] | None
        if names in ("", "default"):
            lists = None
        elif names == "none":
            lists = ()
        else:
            lists = tuple(sorted({n.strip() for n in names.split(",") if n.strip()}))
        return cls(
            correlation_limit=int(getattr(settings, "identifiers_correlation_limit", 50)),
            warninglists=lists,
            slack=timedelta(seconds=int(getattr(settings, "identifiers_time_slack_seconds", 0))),
        )

    def warning_index(self) -> WarningIndex | None:
        if self.warninglists == ():
            return None
        return get_index(self.warninglists)

    @property
    def list_slugs(self) -> tuple[str, ...]:
        return DEFAULT_LISTS if self.warninglists is None else self.warninglists


class LocalWarnings:
    """The node's own warning list, loaded once per correlation."""

    def __init__(self, rows: Iterable[tuple[str, str]]) -> None:
        self.exact: set[tuple[str, str]] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for kind, value in rows:
            net = rules.parse_network(value) if kind == "ip" else None
            if net is not None:
                self.networks.append(net)
            else:
                self.exact.add((kind, value))

    def match(self, kind: str, canonical: str) -> bool:
        if (kind, canonical) in self.exact:
            return True
        if kind == "ip" and self.networks:
            try:
                addr = ipaddress.ip_address(canonical)
            except ValueError:
                return False
            return any(addr.version == n.version and addr in n for n in self.networks)
        return False


def local_warnings(session: Session) -> LocalWarnings:
    rows = session.execute(select(IdentLocalWarning.kind, IdentLocalWarning.value)).all()
    return LocalWarnings((r[0], r[1]) for r in rows)


def warnings_for(
    kind: str, canonical: str, index: WarningIndex | None, local: LocalWarnings
) -> tuple[str, ...]:
    found = list(index.match(kind, canonical)) if index is not None else []
    if local.match(kind, canonical):
        found.append("local")
    return tuple(found)


# --- indexing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """The record an identifier was found in, and the scope whose need-to-know governs it."""

    record_type: str
    record_id: str
    scope_type: str
    scope_id: str
    owner_authority_id: int | None


@dataclass(frozen=True)
class Entry:
    kind: str
    value: str
    port: int | None = None
    seen_from: datetime | None = None
    seen_until: datetime | None = None
    time_zone: str | None = None
    chain: str | None = None
    platform: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class Prepared:
    entry: Entry
    normalized: Normalized
    port: int | None


@dataclass
class IndexResult:
    stored: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (position, raw, error)


def prepare(entry: Entry, *, default_region: str | None = None) -> Prepared:
    """Normalise one entry; raises :class:`InvalidIdentifier`."""
    norm = normalize(
        entry.kind,
        entry.value,
        default_region=default_region,
        chain=entry.chain,
        platform=entry.platform,
    )
    port = entry.port
    if norm.kind == "ip" and "port" in norm.details:
        written = int(norm.details["port"])
        if port is not None and port != written:
            raise InvalidIdentifier(
                f"the port {port} contradicts the port {written} written in the value",
                field="port",
            )
        port = written
    if port is not None and not 0 < port <= 65535:
        raise InvalidIdentifier(f"not a valid port: {port}", field="port")
    if port is not None and norm.kind != "ip":
        raise InvalidIdentifier("only an IP address has a source port", field="port")
    if entry.seen_from and entry.seen_until and entry.seen_until < entry.seen_from:
        raise InvalidIdentifier(
            "the end of the time window is before its start", field="seen_until"
        )
    return Prepared(entry, norm, port)


def value_rows(norms: Iterable[Normalized]) -> list[dict[str, Any]]:
    rows: dict[bytes, dict[str, Any]] = {}
    for n in norms:
        key = rules.digest(n.kind, n.canonical)
        if key not in rows:
            rows[key] = {
                "digest": key,
                "kind": n.kind,
                "canonical": n.canonical,
                "related_key": rules.related_key(n.kind, n.canonical),
                "ip_key": rules.ip_key(n.canonical) if n.kind == "ip" else None,
                "flags": sorted(n.flags),
            }
    return list(rows.values())


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def existing_ids(session: Session, digests: Collection[bytes]) -> dict[bytes, int]:
    found: dict[bytes, int] = {}
    for part in _chunks(list(digests)):
        rows = session.execute(
            select(IdentValue.digest, IdentValue.id).where(IdentValue.digest.in_(part))
        ).all()
        found.update({bytes(r[0]): int(r[1]) for r in rows})
    return found


def ensure_values(session: Session, norms: Iterable[Normalized]) -> dict[bytes, int]:
    """The ids of these values in the global index, creating the missing ones (race-safe)."""
    rows = value_rows(norms)
    ids = existing_ids(session, [r["digest"] for r in rows])
    missing = [r for r in rows if r["digest"] not in ids]
    if missing:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
        for part in _chunks(missing):
            stmt = dialect_insert(IdentValue).on_conflict_do_nothing(index_elements=["digest"])
            session.execute(stmt, list(part))
        ids.update(existing_ids(session, [r["digest"] for r in missing]))
    return ids


def index_record(
    session: Session,
    where: Where,
    entries: Iterable[Entry],
    *,
    source: str,
    default_region: str | None = None,
    replace_sources: Collection[str] | None = None,
    strict: bool = False,
) -> IndexResult:
    """Store the occurrences of ``entries`` in ``where`` (in the caller's transaction).

    The record's previous occurrences from ``replace_sources`` (default: ``source``) are
    removed first, so re-indexing a record is idempotent. An invalid entry is reported in the
    result — or, with ``strict``, raises before anything is written.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    result = IndexResult()
    prepared: list[Prepared] = []
    for position, entry in enumerate(entries):
        try:
            prepared.append(prepare(entry, default_region=default_region))
        except InvalidInput as exc:
            if strict:
                raise
            result.rejected.append((position, entry.value[:RAW_MAX], exc.detail))
    session.execute(
        delete(IdentOccurrence).where(
            IdentOccurrence.record_type == where.record_type,
            IdentOccurrence.record_id == where.record_id,
            IdentOccurrence.source.in_(tuple(replace_sources or (source,))),
        )
    )
    result.stored = append_occurrences(session, where, prepared, source=source)
    return result


def append_occurrences(
    session: Session, where: Where, prepared: Sequence[Prepared], *, source: str
) -> int:
    """Insert occurrences of already-normalised entries (no removal); returns how many."""
    return append_many(session, [(where, prepared)], source=source)


def append_many(
    session: Session, batches: Sequence[tuple[Where, Sequence[Prepared]]], *, source: str
) -> int:
    """Insert the occurrences of many records at once: one value upsert, chunked inserts."""
    ids = ensure_values(session, (p.normalized for _w, items in batches for p in items))
    rows: list[dict[str, Any]] = []
    for where, prepared in batches:
        rows += _occurrence_rows(where, prepared, ids, source)
    for part in _chunks(rows):
        session.execute(insert(IdentOccurrence), list(part))
    return len(rows)


def _occurrence_rows(
    where: Where, prepared: Sequence[Prepared], ids: dict[bytes, int], source: str
) -> list[dict[str, Any]]:
    seen: set[tuple[Any, ...]] = set()
    rows: list[dict[str, Any]] = []
    for p in prepared:
        value_id = ids[rules.digest(p.normalized.kind, p.normalized.canonical)]
        key = (value_id, p.port, p.entry.seen_from, p.entry.seen_until, p.entry.location)
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "value_id": value_id,
                "record_type": where.record_type,
                "record_id": where.record_id,
                "scope_type": where.scope_type,
                "scope_id": where.scope_id,
                "owner_authority_id": where.owner_authority_id,
                "raw": p.entry.value.strip()[:RAW_MAX],
                "source": source,
                "location": (p.entry.location or None) and p.entry.location[:200],
                "port": p.port,
                "seen_from": p.entry.seen_from,
                "seen_until": p.entry.seen_until,
                "time_zone": p.entry.time_zone,
            }
        )
    return rows


def remove_record(session: Session, record_type: str, record_id: str) -> int:
    """Forget every occurrence in one record (the global values stay)."""
    done = session.execute(
        delete(IdentOccurrence).where(
            IdentOccurrence.record_type == record_type, IdentOccurrence.record_id == record_id
        )
    )
    return int(getattr(done, "rowcount", 0) or 0)


# --- correlation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A value to correlate, with the sighting it was seen in (IP port and time), if any."""

    kind: str
    canonical: str
    flags: frozenset[str] = frozenset()
    sighting: rules.Sighting = field(default_factory=rules.Sighting)
    relation: str = "same"  # for values found in a network: "network"

    @classmethod
    def of(cls, norm: Normalized, sighting: rules.Sighting | None = None) -> Probe:
        return cls(norm.kind, norm.canonical, norm.flags, sighting or rules.Sighting())


@dataclass(frozen=True)
class Hit:
    scope_type: str
    scope_id: str
    label: str
    url: str | None
    relation: str  # same | related | network | prefix
    canonical: str  # the value found there (differs from the probe's for related values)
    strength: rules.Strength
    records: int  # how many records inside the scope hold it (messages, attachments …)


@dataclass(frozen=True)
class Withheld:
    authority_id: int | None
    authority_name: str
    scopes: int


@dataclass
class Correlation:
    kind: str
    canonical: str
    flags: frozenset[str]
    warnings: tuple[str, ...] = ()
    scopes_total: int = 0
    over_limit: bool = False
    hits: list[Hit] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)

    @property
    def suppressed(self) -> bool:
        return bool(self.warnings) or self.over_limit

    @property
    def matches(self) -> list[Hit]:
        return [h for h in self.hits if h.strength is not rules.Strength.MISMATCH]

    @property
    def mismatches(self) -> list[Hit]:
        return [h for h in self.hits if h.strength is rules.Strength.MISMATCH]

    @property
    def digest_hex(self) -> str:
        return rules.digest(self.kind, self.canonical).hex()


@dataclass(frozen=True)
class _Occ:
    value_id: int
    scope: tuple[str, str]
    record: tuple[str, str]
    owner: int | None
    sighting: rules.Sighting


def _candidates(session: Session, probes: Sequence[Probe]) -> list[dict[int, tuple[str, str]]]:
    """For each probe, the value ids to look at: {value_id: (relation, canonical)}."""
    digests = {rules.digest(p.kind, p.canonical) for p in probes}
    related = {k for p in probes if (k := rules.related_key(p.kind, p.canonical)) is not None}
    by_digest: dict[bytes, tuple[int, str]] = {}
    by_related: dict[bytes, list[tuple[int, str]]] = {}
    for part in _chunks(list(digests)):
        for d, i, c in session.execute(
            select(IdentValue.digest, IdentValue.id, IdentValue.canonical).where(
                IdentValue.digest.in_(part)
            )
        ):
            by_digest[bytes(d)] = (int(i), c)
    for part in _chunks(list(related)):
        for rk, i, c in session.execute(
            select(IdentValue.related_key, IdentValue.id, IdentValue.canonical).where(
                IdentValue.related_key.in_(part)
            )
        ):
            if rk is not None:
                by_related.setdefault(bytes(rk), []).append((int(i), c))
    out: list[dict[int, tuple[str, str]]] = []
    for p in probes:
        cands: dict[int, tuple[str, str]] = {}
        own = by_digest.get(rules.digest(p.kind, p.canonical))
        if own is not None:
            cands[own[0]] = (p.relation, own[1])
        rk = rules.related_key(p.kind, p.canonical)
        for i, c in by_related.get(rk, []) if rk is not None else []:
            cands.setdefault(i, ("related", c))
        if p.kind == "ip" and p.relation == "same":
            span = rules.subscriber_range(p.canonical)
            if span is not None:
                rows = session.execute(
                    select(IdentValue.id, IdentValue.canonical)
                    .where(IdentValue.kind == "ip", IdentValue.ip_key.between(*span))
                    .limit(PREFIX_NEIGHBOURS_MAX)
                )
                for i, c in rows:
                    cands.setdefault(int(i), ("prefix", c))
        out.append(cands)
    return out


def _occurrences(
    session: Session, value_ids: Collection[int], exclude: tuple[str, str] | None
) -> list[_Occ]:
    found: list[_Occ] = []
    for part in _chunks(list(value_ids)):
        stmt = select(
            IdentOccurrence.value_id,
            IdentOccurrence.scope_type,
            IdentOccurrence.scope_id,
            IdentOccurrence.record_type,
            IdentOccurrence.record_id,
            IdentOccurrence.owner_authority_id,
            IdentOccurrence.port,
            IdentOccurrence.seen_from,
            IdentOccurrence.seen_until,
        ).where(IdentOccurrence.value_id.in_(part))
        if exclude is not None:
            stmt = stmt.where(
                tuple_(IdentOccurrence.scope_type, IdentOccurrence.scope_id) != tuple_(*exclude)
            )
        for row in session.execute(stmt):
            found.append(
                _Occ(
                    int(row[0]),
                    (row[1], row[2]),
                    (row[3], row[4]),
                    row[5],
                    rules.Sighting(row[6], row[7], row[8]),
                )
            )
    return found


def _scope_counts(
    session: Session, value_ids: Collection[int], exclude: tuple[str, str] | None
) -> dict[int, set[tuple[str, str]]]:
    """Distinct scopes per value — bounded: values with very many occurrences are cut short."""
    scopes_of: dict[int, set[tuple[str, str]]] = {}
    for part in _chunks(list(value_ids)):
        stmt = (
            select(IdentOccurrence.value_id, IdentOccurrence.scope_type, IdentOccurrence.scope_id)
            .where(IdentOccurrence.value_id.in_(part))
            .group_by(
                IdentOccurrence.value_id, IdentOccurrence.scope_type, IdentOccurrence.scope_id
            )
        )
        for v, st, si in session.execute(stmt):
            if exclude is not None and (st, si) == exclude:
                continue
            scopes_of.setdefault(int(v), set()).add((st, si))
    return scopes_of


def _occurrence_totals(session: Session, value_ids: Collection[int]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for part in _chunks(list(value_ids)):
        stmt = (
            select(IdentOccurrence.value_id, func.count())
            .where(IdentOccurrence.value_id.in_(part))
            .group_by(IdentOccurrence.value_id)
        )
        totals.update({int(v): int(n) for v, n in session.execute(stmt)})
    return totals


def _authority_names(session: Session, ids: Collection[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Authority.id, Authority.name).where(Authority.id.in_(ids)))
    return {int(i): n for i, n in rows}


def correlate(
    session: Session,
    actor: Principal,
    probes: Sequence[Probe],
    *,
    config: Config,
    exclude: tuple[str, str] | None = None,
) -> list[Correlation]:
    """Where else each probe appears, as far as the actor may know (no audit here)."""
    require(actor, Permission.IDENTIFIERS_READ)
    index = config.warning_index()
    local = local_warnings(session)
    results = [
        Correlation(p.kind, p.canonical, p.flags, warnings_for(p.kind, p.canonical, index, local))
        for p in probes
    ]
    cands = _candidates(session, probes)
    every_id = {i for c in cands for i in c}
    totals = _occurrence_totals(session, every_id)
    # A value whose occurrences alone exceed the limit many times over is not enumerated.
    huge = {i for i, n in totals.items() if n > config.correlation_limit * 20}
    scopes_of = _scope_counts(session, every_id - huge, exclude)
    open_ids: set[int] = set()
    for result, cand in zip(results, cands, strict=True):
        ids = set(cand)
        in_scopes = set().union(*(scopes_of.get(i, set()) for i in ids)) if ids else set()
        result.scopes_total = len(in_scopes) + sum(totals.get(i, 0) for i in ids & huge)
        result.over_limit = bool(ids & huge) or result.scopes_total > config.correlation_limit
        if not result.suppressed:
            open_ids |= ids
    occs = _occurrences(session, open_ids, exclude)
    by_value: dict[int, list[_Occ]] = {}
    for occ in occs:
        by_value.setdefault(occ.value_id, []).append(occ)
    allowed = scopes.visible(session, actor, {o.scope for o in occs})
    nameable = scopes.disclosable(session, {o.scope for o in occs} - allowed)
    labels = scopes.describe(session, allowed)
    owners: set[int] = set()
    pending: list[tuple[Correlation, dict[int | None, set[tuple[str, str]]]]] = []
    for probe, result, cand in zip(probes, results, cands, strict=True):
        if result.suppressed:
            continue
        best: dict[tuple[str, str], tuple[rules.Strength, str, str, set[tuple[str, str]]]] = {}
        hidden: dict[int | None, set[tuple[str, str]]] = {}
        for value_id, (relation, canonical) in cand.items():
            for occ in by_value.get(value_id, []):
                strength = (
                    rules.ip_match(canonical, probe.sighting, occ.sighting, slack=config.slack)
                    if probe.kind == "ip"
                    else rules.Strength.MATCH
                )
                if relation == "prefix" and strength is rules.Strength.MATCH:
                    strength = rules.Strength.WEAK
                if occ.scope not in allowed:
                    if strength is not rules.Strength.MISMATCH and occ.scope in nameable:
                        hidden.setdefault(occ.owner, set()).add(occ.scope)
                    continue
                current = best.get(occ.scope)
                rank = (_STRENGTH_ORDER[strength], _RELATION_ORDER[relation])
                if current is None or rank < (
                    _STRENGTH_ORDER[current[0]],
                    _RELATION_ORDER[current[1]],
                ):
                    records = current[3] if current else set()
                    best[occ.scope] = (strength, relation, canonical, records)
                best[occ.scope][3].add(occ.record)
        for scope, (strength, relation, canonical, records) in best.items():
            label = labels.get(scope) or scopes.ScopeLabel(f"{scope[0]} {scope[1]}", None)
            result.hits.append(
                Hit(
                    scope[0],
                    scope[1],
                    label.label,
                    label.url,
                    relation,
                    canonical,
                    strength,
                    len(records),
                )
            )
        result.hits.sort(
            key=lambda h: (_STRENGTH_ORDER[h.strength], _RELATION_ORDER[h.relation], h.label)
        )
        owners |= {o for o in hidden if o is not None}
        pending.append((result, hidden))
    names = _authority_names(session, owners)
    for result, hidden in pending:
        result.withheld = sorted(
            (
                Withheld(owner, names.get(owner, "") if owner is not None else "", len(held))
                for owner, held in hidden.items()
            ),
            key=lambda w: w.authority_name,
        )
    return results


def audit_disclosure(
    session: Session,
    actor: Principal,
    correlations: Sequence[Correlation],
    *,
    action: str,
    object_type: str,
    object_id: str,
    always: bool = False,
) -> None:
    """Record (in the caller's transaction) that withheld hits named authorities to the actor.

    Only digests and authority ids go into the audit trail, never the identifier itself.
    With ``always`` the event is written even when nothing was withheld (searches).
    """
    named = [c for c in correlations if c.withheld]
    if not named and not always:
        return
    record(
        session,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        details={
            "values": len(correlations),
            "hits": sum(len(c.matches) for c in correlations),
            "withheld": [
                {
                    "digest": c.digest_hex,
                    "authorities": sorted(w.authority_id for w in c.withheld if w.authority_id),
                }
                for c in named
            ],
        },
    )


# --- "where else does this appear?" ---------------------------------------------------------


@dataclass
class Lookup:
    kind: str
    query: str
    network: str | None
    correlations: list[Correlation]
    truncated: bool = False


def parse_probe(
    kind: str,
    value: str,
    *,
    port: int | None = None,
    seen_from: datetime | None = None,
    seen_until: datetime | None = None,
    default_region: str | None = None,
    chain: str | None = None,
    platform: str | None = None,
) -> Probe:
    prepared = prepare(
        Entry(kind, value, port, seen_from, seen_until, chain=chain, platform=platform),
        default_region=default_region,
    )
    return Probe.of(prepared.normalized, rules.Sighting(prepared.port, seen_from, seen_until))


def lookup(
    session: Session,
    actor: Principal,
    *,
    kind: str,
    value: str,
    config: Config,
    port: int | None = None,
    seen_from: datetime | None = None,
    seen_until: datetime | None = None,
    default_region: str | None = None,
    chain: str | None = None,
) -> Lookup:
    """Where else ``value`` (or, for ``ip``, every address in a CIDR network) appears.

    Every lookup is audited — the digest of what was searched, how many hits, and which
    authorities were named for hits the actor may not see. Call inside a unit of work.
    """
    require(actor, Permission.IDENTIFIERS_READ)
    network = rules.parse_network(value) if kind == "ip" else None
    truncated = False
    if network is not None:
        if network.prefixlen < (8 if network.version == 4 else 32):
            raise InvalidInput("the network is too wide to search; use /8 or narrower (IPv6 /32)")
        lo, hi = rules.network_range(network)
        rows = session.execute(
            select(IdentValue.canonical, IdentValue.flags)
            .where(IdentValue.kind == "ip", IdentValue.ip_key.between(lo, hi))
            .order_by(IdentValue.ip_key)
            .limit(NETWORK_LOOKUP_MAX + 1)
        ).all()
        truncated = len(rows) > NETWORK_LOOKUP_MAX
        sighting = rules.Sighting(port, seen_from, seen_until)
        probes = [
            Probe("ip", c, frozenset(f or ()), sighting, relation="network")
            for c, f in rows[:NETWORK_LOOKUP_MAX]
        ]
        query = str(network)
    else:
        probe = parse_probe(
            kind,
            value,
            port=port,
            seen_from=seen_from,
            seen_until=seen_until,
            default_region=default_region,
            chain=chain,
        )
        probes = [probe]
        query = probe.canonical
    found = correlate(session, actor, probes, config=config)
    if network is not None:
        found = [c for c in found if c.hits or c.withheld or c.suppressed]
    audit_disclosure(
        session,
        actor,
        found,
        action="identifiers.lookup",
        object_type="identifier",
        object_id=rules.digest(kind, query).hex(),
        always=True,
    )
    return Lookup(kind, query, str(network) if network else None, found, truncated)


# --- a record's own identifiers --------------------------------------------------------------


@dataclass
class RecordIdentifier:
    value_id: int
    kind: str
    canonical: str
    flags: frozenset[str]
    raws: list[str]
    sources: list[str]
    locations: list[str]
    port: int | None
    seen_from: datetime | None
    seen_until: datetime | None
    time_zone: str | None
    correlation: Correlation | None = None


def record_identifiers(
    session: Session,
    actor: Principal,
    scope_type: str,
    scope_id: str,
    *,
    config: Config,
    correlate_them: bool = True,
) -> list[RecordIdentifier]:
    """Every identifier held in a scope (the record and what hangs off it), with correlations.

    The caller audits with :func:`audit_disclosure` when it shows the result.
    """
    require(actor, Permission.IDENTIFIERS_READ)
    if (scope_type, scope_id) not in scopes.visible(session, actor, [(scope_type, scope_id)]):
        raise NotFound("no such record, or not visible to your authority")
    rows = session.execute(
        select(IdentOccurrence, IdentValue)
        .join(IdentValue, IdentValue.id == IdentOccurrence.value_id)
        .where(IdentOccurrence.scope_type == scope_type, IdentOccurrence.scope_id == scope_id)
        .order_by(IdentValue.kind, IdentValue.canonical, IdentOccurrence.id)
    ).all()
    grouped: dict[tuple[Any, ...], RecordIdentifier] = {}
    for occ, value in rows:
        key = (value.id, occ.port, occ.seen_from, occ.seen_until)
        item = grouped.get(key)
        if item is None:
            item = RecordIdentifier(
                value.id,
                value.kind,
                value.canonical,
                frozenset(value.flags or ()),
                [],
                [],
                [],
                occ.port,
                occ.seen_from,
                occ.seen_until,
                occ.time_zone,
            )
            grouped[key] = item
        if occ.raw not in item.raws:
            item.raws.append(occ.raw)
        if occ.source not in item.sources:
            item.sources.append(occ.source)
        where = occ.location or (occ.record_type if occ.record_type != scope_type else "")
        if where and where not in item.locations:
            item.locations.append(where)
    items = list(grouped.values())
    if correlate_them and items:
        probes = [
            Probe(
                i.kind,
                i.canonical,
                i.flags,
                rules.Sighting(i.port, i.seen_from, i.seen_until),
            )
            for i in items
        ]
        found = correlate(session, actor, probes, config=config, exclude=(scope_type, scope_id))
        items = [replace(i, correlation=c) for i, c in zip(items, found, strict=True)]
    return items


# --- the node's own warning list -------------------------------------------------------------


def _local_value(kind: str, value: str) -> str:
    if kind == "ip":
        net = rules.parse_network(value)
        if net is not None:
            return str(net)
        if "/" in value:
            raise InvalidInput("not a CIDR network (host bits must be zero)", field="value")
    return normalize(kind, value).canonical


def add_local_warning(
    session: Session, actor: Principal, *, kind: str, value: str, reason: str
) -> IdentLocalWarning:
    require(actor, Permission.IDENTIFIERS_MANAGE)
    reason = reason.strip()
    if not reason or len(reason) > 300:
        raise InvalidInput("give a reason of 1 to 300 characters", field="reason")
    canonical = _local_value(kind, value)
    existing = session.scalar(
        select(IdentLocalWarning).where(
            IdentLocalWarning.kind == kind, IdentLocalWarning.value == canonical
        )
    )
    if existing is not None:
        return existing
    entry = IdentLocalWarning(kind=kind, value=canonical, reason=reason, added_by_label=actor.label)
    session.add(entry)
    session.flush()
    record(
        session,
        actor=actor,
        action="identifiers.warning_added",
        object_type="identifier_warning",
        object_id=entry.id,
        details={"kind": kind},
    )
    return entry


def remove_local_warning(session: Session, actor: Principal, *, kind: str, value: str) -> None:
    require(actor, Permission.IDENTIFIERS_MANAGE)
    canonical = _local_value(kind, value)
    entry = session.scalar(
        select(IdentLocalWarning).where(
            IdentLocalWarning.kind == kind, IdentLocalWarning.value == canonical
        )
    )
    if entry is None:
        raise NotFound("that value is not on the node's warning list")
    record(
        session,
        actor=actor,
        action="identifiers.warning_removed",
        object_type="identifier_warning",
        object_id=entry.id,
        details={"kind": kind},
    )
    session.delete(entry)
    session.flush()


def list_local_warnings(session: Session, actor: Principal) -> list[IdentLocalWarning]:
    if not actor.has(Permission.IDENTIFIERS_MANAGE):
        require(actor, Permission.IDENTIFIERS_READ)
    return list(
        session.scalars(
            select(IdentLocalWarning).order_by(IdentLocalWarning.kind, IdentLocalWarning.value)
        )
    )

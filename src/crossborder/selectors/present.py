"""Identifiers and correlations as JSON (API, CLI) — what each audience may read, no more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crossborder.selectors.service import Correlation, Hit, RecordIdentifier


def hit_json(hit: Hit) -> dict[str, Any]:
    return {
        "scope_type": hit.scope_type,
        "scope_id": hit.scope_id,
        "label": hit.label,
        "url": hit.url,
        "relation": hit.relation,
        "value": hit.canonical,
        "strength": hit.strength.value,
        "records": hit.records,
    }


def correlation_json(correlations: Sequence[Correlation]) -> list[dict[str, Any]]:
    return [one_correlation(c) for c in correlations]


def one_correlation(c: Correlation) -> dict[str, Any]:
    return {
        "type": c.kind,
        "canonical": c.canonical,
        "flags": sorted(c.flags),
        "warnings": list(c.warnings),
        "over_limit": c.over_limit,
        "held_in": c.scopes_total,
        "hits": [hit_json(h) for h in c.matches],
        "other_sightings": [hit_json(h) for h in c.mismatches],
        "held_elsewhere": [
            {
                "authority_id": w.authority_id,
                "authority": w.authority_name,
                "records": w.scopes,
                "message": "another authority holds this — contact them",
            }
            for w in c.withheld
        ],
    }


def record_identifier_json(item: RecordIdentifier) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": item.kind,
        "canonical": item.canonical,
        "flags": sorted(item.flags),
        "raw": item.raws,
        "sources": item.sources,
        "locations": item.locations,
        "port": item.port,
        "seen_from": item.seen_from.isoformat() if item.seen_from else None,
        "seen_until": item.seen_until.isoformat() if item.seen_until else None,
        "time_zone": item.time_zone,
    }
    if item.correlation is not None:
        data["correlation"] = one_correlation(item.correlation)
    return data

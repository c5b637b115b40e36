"""Collections, grants and statuses as JSON (API, CLI)."""

from __future__ import annotations

from typing import Any

from crossborder.intel import stix
from crossborder.intel.models import IntelCollection, IntelGrant
from crossborder.intel.service import CollectionAccess, StatusResult


def collection_json(item: IntelCollection, *, can_read: bool, can_write: bool) -> dict[str, Any]:
    return {
        "id": item.public_id,
        "alias": item.alias,
        "title": item.title,
        "description": item.description,
        "owner_authority_id": item.owner_authority_id,
        "can_read": can_read,
        "can_write": can_write,
        "created_at": item.created_at.isoformat(),
    }


def access_json(found: CollectionAccess) -> dict[str, Any]:
    return collection_json(found.collection, can_read=found.can_read, can_write=found.can_write)


def grant_json(grant: IntelGrant) -> dict[str, Any]:
    return {
        "authority_id": grant.authority_id,
        "token_id": grant.token_id,
        "can_read": grant.can_read,
        "can_write": grant.can_write,
    }


def status_json(status: StatusResult) -> dict[str, Any]:
    """A TAXII 2.1 status resource."""
    return {
        "id": status.id,
        "status": status.status,
        "request_timestamp": stix.format_timestamp(status.request_timestamp),
        "total_count": status.total_count,
        "success_count": status.success_count,
        "failure_count": status.failure_count,
        "pending_count": status.pending_count,
        "successes": status.successes,
        "failures": status.failures,
        "pendings": status.pendings,
    }

"""API token format: ``cbt_<public id>_<secret>``.

The public id finds the row (and may appear in logs and audit events); the secret carries
256 random bits and is stored only as its SHA-256, compared in constant time. The fixed
``cbt_`` prefix lets secret scanners recognise a leaked token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "cbt"
_PUBLIC_ID = re.compile(r"^[0-9a-f]{16}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class ParsedToken:
    public_id: str
    secret: str


def new_token() -> tuple[str, str, str]:
    """Return (raw token, public id, secret hash). Show the raw token once; store the rest."""
    public_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{PREFIX}_{public_id}_{secret}", public_id, hash_secret(secret)


def parse(raw: str) -> ParsedToken | None:
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    _, public_id, secret = parts
    if not _PUBLIC_ID.fullmatch(public_id) or not _SECRET.fullmatch(secret):
        return None
    return ParsedToken(public_id, secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)

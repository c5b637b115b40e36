"""Secrets kept in the database, sealed under the node's secret key.

Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from ``CROSSBORDER_SECRET_KEY`` with
HKDF-SHA256 and a per-purpose ``info`` label, so a key sealed for one purpose never opens
another's. Changing the node's secret key makes every sealed value unreadable
(:class:`Unsealable`): the owner of each value says what that means for it.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class Unsealable(ValueError):
    """A sealed value that this node's secret key does not open."""


def _fernet(secret_key: str, info: bytes) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, info: bytes, data: bytes) -> str:
    return _fernet(secret_key, info).encrypt(data).decode("ascii")


def unseal(secret_key: str, info: bytes, token: str) -> bytes:
    try:
        return _fernet(secret_key, info).decrypt(token.encode("ascii"))
    except (InvalidToken, ValueError):
        raise Unsealable("sealed with another secret key") from None

"""Time-based one-time passwords (RFC 6238) and the encryption of their secrets at rest.

``match_step`` returns the 30-second step whose code matched (one step of clock drift either
way is tolerated), so the service can refuse any step not later than the last one accepted:
a code observed over a shoulder or in a proxy log cannot be replayed.

Secrets are stored as Fernet tokens under a key derived from the node's secret key with
HKDF; rotating the secret key therefore requires re-enrolling second factors.
"""

from __future__ import annotations

import base64
import hmac
from datetime import datetime

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ISSUER = "crossborder"
STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1
_HKDF_INFO = b"crossborder/auth/totp-secret/v1"


class SecretUnreadableError(Exception):
    """The stored secret cannot be decrypted (the node's secret key changed)."""


def new_secret() -> str:
    """160 random bits, base32, as authenticator apps expect."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, *, username: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=username, issuer_name=ISSUER
    )


def step_of(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP_SECONDS


def code_at_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(step * STEP_SECONDS)


def normalise_code(code: str) -> str | None:
    """Accept ``123456`` or ``123 456``; anything else is not a code."""
    cleaned = code.replace(" ", "").replace("-", "").strip()
    if len(cleaned) != DIGITS or not cleaned.isascii() or not cleaned.isdigit():
        return None
    return cleaned


def match_step(secret: str, code: str, *, now: datetime) -> int | None:
    """The step (within ±WINDOW of ``now``) whose code equals ``code``, else None."""
    cleaned = normalise_code(code)
    if cleaned is None:
        return None
    current = step_of(now)
    matched: int | None = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        # Compare every candidate (no early exit) in constant time.
        if hmac.compare_digest(code_at_step(secret, step), cleaned):
            matched = step
    return matched


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(secret_key: str, secret: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode()).decode("ascii")


def decrypt_secret(secret_key: str, token: str) -> str:
    try:
        return _fernet(secret_key).decrypt(token.encode("ascii")).decode()
    except InvalidToken as exc:
        raise SecretUnreadableError("the TOTP secret cannot be decrypted with this key") from exc

"""Password hashing (argon2id) and the password policy.

``HASHER`` is module-level so that the cost parameters live in one place; when they are raised,
``needs_rehash`` tells the login path to re-hash the password it just verified, so stored
hashes follow the new parameters without anyone resetting a password.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from crossborder.core.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 1024

# argon2-cffi's defaults are RFC 9106's "low memory" argon2id profile (64 MiB, t=3, p=4).
HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches; False on mismatch or on a hash that cannot be read."""
    try:
        return HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def _dummy_hash(parameters: tuple[int, int, int]) -> str:
    return HASHER.hash("crossborder-dummy-password-for-timing")


def burn_time(password: str) -> None:
    """Spend what a real verification costs, so unknown user names are not faster to refuse."""
    key = (HASHER.time_cost, HASHER.memory_cost, HASHER.parallelism)
    verify_password(_dummy_hash(key), password)


def check_policy(password: str, *, username: str) -> None:
    """Raise ``InvalidInput`` (field ``password``) if the password breaks the policy."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            f"the password must have at least {MIN_LENGTH} characters", field="password"
        )
    if len(password) > MAX_LENGTH:
        raise InvalidInput(
            f"the password must have at most {MAX_LENGTH} characters", field="password"
        )
    if password.strip().casefold() == username.strip().casefold():
        raise InvalidInput("the password must not be the user name", field="password")
    if not password.strip():
        raise InvalidInput("the password must not be blank", field="password")

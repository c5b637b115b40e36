"""Pure pieces: password hashing and policy, TOTP steps and secret encryption, token format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher

from crossborder.auth import passwords, tokens, totp
from crossborder.auth.deps import safe_next
from crossborder.core.errors import InvalidInput

NOW = datetime(2025, 3, 1, 12, 0, 10, tzinfo=UTC)


def test_password_hash_is_argon2id_and_never_the_password() -> None:
    hashed = passwords.hash_password("a long enough password")
    assert hashed.startswith("$argon2id$")
    assert "a long enough password" not in hashed
    assert passwords.verify_password(hashed, "a long enough password")
    assert not passwords.verify_password(hashed, "a long enough passworD")
    assert not passwords.verify_password("not a hash", "a long enough password")


def test_production_parameters_are_not_weaker_than_rfc9106_low_memory() -> None:
    assert passwords.HASHER.memory_cost >= 64 * 1024
    assert passwords.HASHER.time_cost >= 3


def test_needs_rehash_when_parameters_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024))
    old = passwords.hash_password("a long enough password")
    assert not passwords.needs_rehash(old)
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=2, memory_cost=2048))
    assert passwords.needs_rehash(old)
    assert passwords.verify_password(old, "a long enough password")  # old hashes still verify


@pytest.mark.parametrize(
    ("password", "username"),
    [
        ("short", "alice"),
        ("x" * 1025, "alice"),
        ("Alice.Example1", "alice.example1"),
        (" " * 12, "alice"),
    ],
)
def test_password_policy_refuses(password: str, username: str) -> None:
    with pytest.raises(InvalidInput) as err:
        passwords.check_policy(password, username=username)
    assert err.value.field == "password"


def test_password_policy_accepts_a_passphrase() -> None:
    passwords.check_policy("correct horse battery staple", username="alice")


def test_totp_matches_current_and_adjacent_steps_only() -> None:
    secret = totp.new_secret()
    step = totp.step_of(NOW)
    for offset in (-1, 0, 1):
        assert totp.match_step(secret, totp.code_at_step(secret, step + offset), now=NOW) == (
            step + offset
        )
    for offset in (-3, -2, 2, 3):
        code = totp.code_at_step(secret, step + offset)
        if code not in {totp.code_at_step(secret, step + o) for o in (-1, 0, 1)}:
            assert totp.match_step(secret, code, now=NOW) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34 5"])
def test_totp_refuses_malformed_codes(code: str) -> None:
    assert totp.match_step(totp.new_secret(), code, now=NOW) is None


def test_totp_accepts_a_spaced_code() -> None:
    secret = totp.new_secret()
    code = totp.code_at_step(secret, totp.step_of(NOW))
    assert totp.match_step(secret, f"{code[:3]} {code[3:]}", now=NOW) == totp.step_of(NOW)


def test_totp_provisioning_uri_names_issuer_and_user() -> None:
    uri = totp.provisioning_uri(totp.new_secret(), username="alice")
    assert uri.startswith("otpauth://totp/crossborder:alice?")
    assert "issuer=crossborder" in uri


def test_totp_secret_encryption_round_trip_and_wrong_key() -> None:
    secret = totp.new_secret()
    sealed = totp.encrypt_secret("key-one-" + "k" * 40, secret)
    assert secret not in sealed
    assert totp.decrypt_secret("key-one-" + "k" * 40, sealed) == secret
    with pytest.raises(totp.SecretUnreadableError):
        totp.decrypt_secret("key-two-" + "k" * 40, sealed)


def test_token_format_round_trip() -> None:
    raw, public_id, secret_hash = tokens.new_token()
    assert raw.startswith(f"cbt_{public_id}_")
    parsed = tokens.parse(raw)
    assert parsed is not None
    assert parsed.public_id == public_id
    assert tokens.secret_matches(parsed.secret, secret_hash)
    assert parsed.secret not in secret_hash


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "cbt_",
        "cbt_abc_def",
        "xyz_0123456789abcdef_" + "a" * 43,
        "cbt_0123456789ABCDEF_" + "a" * 43,
        "cbt_0123456789abcdef_" + "a" * 42,
        "cbt_0123456789abcdef_" + "a" * 42 + "!",
    ],
)
def test_token_parse_refuses_malformed(raw: str) -> None:
    assert tokens.parse(raw) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/account", "/account"),
        ("/directory?q=x", "/directory?q=x"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x=y", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_safe_next_only_local_paths(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_clock_sanity_for_steps() -> None:
    assert totp.step_of(NOW + timedelta(seconds=30)) == totp.step_of(NOW) + 1

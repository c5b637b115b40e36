"""The node's keys: generated once, kept private on disk, refused when they are not."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crossborder.federation import identity
from crossborder.federation.identity import IdentityError, ensure_identity, load_identity
from crossborder.settings import ConfigError


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_keys_are_generated_once_and_reused(tmp_path: Path) -> None:
    first = ensure_identity(tmp_path)
    key_file = tmp_path / "keys" / identity.SIGNING_KEY_FILE
    pem = key_file.read_bytes()
    second = ensure_identity(tmp_path)
    third = load_identity(tmp_path)
    assert first.fingerprint == second.fingerprint == third.fingerprint
    assert first.encryption_public_key == third.encryption_public_key
    assert key_file.read_bytes() == pem
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == [
        identity.ENCRYPTION_KEY_FILE,
        identity.SIGNING_KEY_FILE,
    ]


def test_key_files_are_owner_only(tmp_path: Path) -> None:
    ensure_identity(tmp_path)
    assert _mode(tmp_path / "keys") == 0o700
    for name in (identity.SIGNING_KEY_FILE, identity.ENCRYPTION_KEY_FILE):
        assert _mode(tmp_path / "keys" / name) == 0o600


@pytest.mark.parametrize("name", [identity.SIGNING_KEY_FILE, identity.ENCRYPTION_KEY_FILE])
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_readable_key_files_are_refused(tmp_path: Path, name: str, mode: int) -> None:
    ensure_identity(tmp_path)
    (tmp_path / "keys" / name).chmod(mode)
    with pytest.raises(IdentityError, match="accessible to other users"):
        load_identity(tmp_path)
    with pytest.raises(IdentityError):
        ensure_identity(tmp_path)


def test_open_key_directory_is_refused(tmp_path: Path) -> None:
    ensure_identity(tmp_path)
    (tmp_path / "keys").chmod(0o755)
    with pytest.raises(IdentityError, match="chmod 700"):
        load_identity(tmp_path)


def test_missing_identity_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="crossborder init") as info:
        load_identity(tmp_path)
    assert isinstance(info.value, ConfigError)


def test_symlinked_key_is_refused(tmp_path: Path) -> None:
    ensure_identity(tmp_path)
    key = tmp_path / "keys" / identity.SIGNING_KEY_FILE
    elsewhere = tmp_path / "elsewhere.pem"
    key.rename(elsewhere)
    key.symlink_to(elsewhere)
    with pytest.raises(IdentityError, match="symbolic link"):
        load_identity(tmp_path)


def test_wrong_key_type_is_refused(tmp_path: Path) -> None:
    ensure_identity(tmp_path)
    signing = (tmp_path / "keys" / identity.SIGNING_KEY_FILE).read_bytes()
    (tmp_path / "keys" / identity.ENCRYPTION_KEY_FILE).write_bytes(signing)
    with pytest.raises(IdentityError, match="X25519"):
        load_identity(tmp_path)


def test_signature_verifies_and_tampering_fails(tmp_path: Path) -> None:
    node = ensure_identity(tmp_path)
    message = b"preservation request 2025/17"
    signature = node.sign(message)
    assert len(signature) == 64
    assert identity.verify_signature(node.signing_public_key, message, signature)
    assert not identity.verify_signature(node.signing_public_key, message + b"!", signature)
    forged = bytes([signature[0] ^ 1]) + signature[1:]
    assert not identity.verify_signature(node.signing_public_key, message, forged)
    other = Ed25519PrivateKey.generate().sign(message)
    assert not identity.verify_signature(node.signing_public_key, message, other)
    assert not identity.verify_signature(b"short", message, signature)


def test_fingerprint_format(tmp_path: Path) -> None:
    node = ensure_identity(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{64}", node.fingerprint)
    assert node.fingerprint == hashlib.sha256(node.signing_public_key).hexdigest()
    assert len(node.signing_public_key) == 32


def test_public_jwk_is_rfc8037(tmp_path: Path) -> None:
    node = ensure_identity(tmp_path)
    sig, enc = node.public_jwk()["keys"]
    assert sig["kty"] == enc["kty"] == "OKP"
    assert (sig["crv"], enc["crv"]) == ("Ed25519", "X25519")
    assert identity.b64url_decode(sig["x"]) == node.signing_public_key
    assert identity.b64url_decode(enc["x"]) == node.encryption_public_key
    assert "=" not in sig["x"]
    for jwk in (sig, enc):
        assert "d" not in jwk  # no private component


def test_exchange_agrees_between_two_nodes(tmp_path: Path) -> None:
    a = ensure_identity(tmp_path / "a")
    b = ensure_identity(tmp_path / "b")
    assert a.fingerprint != b.fingerprint
    assert a.exchange(b.encryption_public_key) == b.exchange(a.encryption_public_key)


def test_repr_shows_no_private_key(tmp_path: Path) -> None:
    node = ensure_identity(tmp_path)
    assert "PrivateKey" not in repr(node)


def test_node_info_prints_public_keys_only(tmp_path: Path) -> None:
    node = ensure_identity(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBORDER_")}
    env["CROSSBORDER_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "crossborder.cli.main", "node", "info"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert node.fingerprint in result.stdout
    assert identity.b64url(node.signing_public_key) in result.stdout
    assert identity.b64url(node.encryption_public_key) in result.stdout
    pem = (tmp_path / "keys" / identity.SIGNING_KEY_FILE).read_text()
    body = "".join(pem.strip().splitlines()[1:-1])
    assert body not in result.stdout
    private_raw = base64.b64decode(body)[-32:]
    assert identity.b64url(private_raw) not in result.stdout
    assert "PRIVATE" not in result.stdout


def test_node_info_without_keys_fails_with_a_hint(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBORDER_")}
    env["CROSSBORDER_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "crossborder.cli.main", "node", "info"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 78
    assert "crossborder init" in result.stderr


def test_concurrent_first_start_agrees_on_one_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        nodes = list(pool.map(lambda _: ensure_identity(tmp_path), range(16)))
    assert len({n.fingerprint for n in nodes}) == 1
    assert len({n.encryption_public_key for n in nodes}) == 1
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == [
        identity.ENCRYPTION_KEY_FILE,
        identity.SIGNING_KEY_FILE,
    ]


def test_init_creates_the_identity(tmp_path: Path, fresh_database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBORDER_")}
    env["CROSSBORDER_DATA_DIR"] = str(tmp_path / "node")
    env["CROSSBORDER_DATABASE_URL"] = fresh_database_url
    for args in (["init"], ["init"]):  # a second init keeps the keys
        result = subprocess.run(
            [sys.executable, "-m", "crossborder.cli.main", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        if not (tmp_path / "fp").exists():
            (tmp_path / "fp").write_text(load_identity(tmp_path / "node").fingerprint)
    assert _mode(tmp_path / "node" / "keys") == 0o700
    assert load_identity(tmp_path / "node").fingerprint == (tmp_path / "fp").read_text()


def test_lost_signing_key_is_not_silently_replaced(tmp_path: Path) -> None:
    ensure_identity(tmp_path)
    (tmp_path / "keys" / identity.SIGNING_KEY_FILE).unlink()
    with pytest.raises(IdentityError, match="restore it from a backup"):
        ensure_identity(tmp_path)
    assert not (tmp_path / "keys" / identity.SIGNING_KEY_FILE).exists()


def test_interrupted_first_start_is_completed(tmp_path: Path) -> None:
    first = ensure_identity(tmp_path)
    (tmp_path / "keys" / identity.ENCRYPTION_KEY_FILE).unlink()
    again = ensure_identity(tmp_path)
    assert again.fingerprint == first.fingerprint

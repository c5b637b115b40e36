"""The node's signing and encryption keys, kept as files under ``<data_dir>/keys``.

Why files and not the database: a copy of the database (a backup, a replica, a support dump)
must not let anyone sign as this node, and the keys must exist before any database does
(``crossborder init``). The files are PKCS#8 PEM, unencrypted — the node has to sign without an
operator typing a passphrase at 3 a.m. — so the file system is the protection: the directory is
0700, each file 0600, and a key whose file is readable by the group or the world is refused
rather than used (the key may already have leaked; the operator must decide, not the node).

- ``signing.pem``: Ed25519. Signs evidence packages and federation envelopes and receipts. Its
  fingerprint — SHA-256 of the 32 raw public-key bytes, lower-case hex — is what the directory
  pins for each node and what a court expert compares when verifying a package.
- ``encryption.pem``: X25519. Peers encrypt envelopes to it.

Keys are generated once, on the first ``ensure_identity`` call, and never rotated silently:
``rotate_identity`` (run by an operator, announced to peers by the federation service) keeps the
retired pair under ``keys/retired/<fingerprint>/`` for a grace period (``load_keyring``).
Two processes starting together (web and worker) cannot end up with different keys: each file
is first written under a temporary name and then hard-linked into place, which fails if the
other process won; both then load what is on disk.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from crossborder.settings import ConfigError

KEYS_DIR = "keys"
SIGNING_KEY_FILE = "signing.pem"
ENCRYPTION_KEY_FILE = "encryption.pem"
_LOOSE_BITS = stat.S_IRWXG | stat.S_IRWXO  # any group/world permission


class IdentityError(ConfigError):
    """The node's keys are missing, unsafe or unreadable; the message says what to fix."""


def b64url(raw: bytes) -> str:
    """Base64url without padding (RFC 7515 §2), as JWK and the CLI print keys."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fingerprint_of(public_key_raw: bytes) -> str:
    """SHA-256 of the raw Ed25519 public key, lower-case hex (64 characters)."""
    return hashlib.sha256(public_key_raw).hexdigest()


def _raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class NodeIdentity:
    """This node's key pair(s). Private keys never leave the object (no repr, no export)."""

    signing_public_key: bytes
    encryption_public_key: bytes
    _signing_key: Ed25519PrivateKey = field(repr=False, compare=False)
    _encryption_key: X25519PrivateKey = field(repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.signing_public_key)

    def sign(self, data: bytes) -> bytes:
        """An Ed25519 signature (64 bytes) over ``data``."""
        return self._signing_key.sign(data)

    def exchange(self, peer_public_key_raw: bytes) -> bytes:
        """X25519 shared secret with a peer's public key (for envelope encryption, later)."""
        peer = X25519PublicKey.from_public_bytes(peer_public_key_raw)
        return self._encryption_key.exchange(peer)

    def public_jwk(self) -> dict[str, Any]:
        """Both public keys as a JWK Set (RFC 7517) of OKP keys (RFC 8037)."""
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": b64url(self.signing_public_key),
                    "use": "sig",
                    "alg": "EdDSA",
                    "kid": self.fingerprint,
                },
                {
                    "kty": "OKP",
                    "crv": "X25519",
                    "x": b64url(self.encryption_public_key),
                    "use": "enc",
                    "alg": "ECDH-ES",
                    "kid": f"{self.fingerprint}-enc",
                },
            ]
        }


def verify_signature(public_key_raw: bytes, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``data`` by that key."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key_raw).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def keys_dir(data_dir: Path) -> Path:
    return data_dir / KEYS_DIR


def _check_private(path: Path, *, directory: bool) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise IdentityError(
            f"no node identity at {path}: run `crossborder init` to create the node's keys"
        ) from None
    kind = "directory" if directory else "file"
    if stat.S_ISLNK(st.st_mode):
        raise IdentityError(f"the key {kind} {path} is a symbolic link; refusing to use it")
    if directory and not stat.S_ISDIR(st.st_mode):
        raise IdentityError(f"{path} should be a directory holding the node's keys")
    if not directory and not stat.S_ISREG(st.st_mode):
        raise IdentityError(f"the key file {path} is not a regular file")
    if st.st_mode & _LOOSE_BITS:
        wanted = "700" if directory else "600"
        raise IdentityError(
            f"the key {kind} {path} is accessible to other users "
            f"(mode {stat.S_IMODE(st.st_mode):o}); the key may have leaked. "
            f"Check it, then `chmod {wanted} {path}` (or replace the keys) and start again"
        )


def _write_new_key(path: Path, pem: bytes) -> None:
    """Create ``path`` with ``pem`` unless it exists (then keep the existing one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # the other process won: keep its key
            os.link(tmp, path)  # atomic, never overwrites
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_identity(data_dir: Path) -> NodeIdentity:
    """Load the node's keys, generating them on the very first call."""
    directory = keys_dir(data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(directory, directory=True)
    signing_path = directory / SIGNING_KEY_FILE
    if not signing_path.exists() and (directory / ENCRYPTION_KEY_FILE).exists():
        # The signing key is written first, so this is not an interrupted first start: the
        # key was lost. A new one would silently change the identity peers pin.
        raise IdentityError(
            f"{signing_path} is missing but the node already has keys: restore it from a "
            "backup, or move the keys directory away to start a new identity (peers must then "
            "pin the new fingerprint)"
        )
    created = False
    for name, new_key in (
        (SIGNING_KEY_FILE, Ed25519PrivateKey.generate),
        (ENCRYPTION_KEY_FILE, X25519PrivateKey.generate),
    ):
        path = directory / name
        if not path.exists() and not path.is_symlink():
            pem = new_key().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write_new_key(path, pem)
            created = True
    if created:
        _fsync_dir(directory)
    return load_identity(data_dir)


def _load_private(path: Path) -> object:
    _check_private(path, directory=False)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        pem = fh.read()
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise IdentityError(f"the key file {path} cannot be read as a PKCS#8 PEM key") from exc


def load_identity(data_dir: Path) -> NodeIdentity:
    """Load existing keys; refuse missing keys and keys other users could read."""
    directory = keys_dir(data_dir)
    _check_private(directory, directory=True)
    signing = _load_private(directory / SIGNING_KEY_FILE)
    encryption = _load_private(directory / ENCRYPTION_KEY_FILE)
    if not isinstance(signing, Ed25519PrivateKey):
        raise IdentityError(f"{directory / SIGNING_KEY_FILE} does not hold an Ed25519 key")
    if not isinstance(encryption, X25519PrivateKey):
        raise IdentityError(f"{directory / ENCRYPTION_KEY_FILE} does not hold an X25519 key")
    return NodeIdentity(
        signing_public_key=_raw_public(signing.public_key()),
        encryption_public_key=_raw_public(encryption.public_key()),
        _signing_key=signing,
        _encryption_key=encryption,
    )


# -- JOSE keys and rotation (federation envelopes) --------------------------------------------
#
# Rotation keeps the retired pair under ``keys/retired/<old fingerprint>/`` with a
# ``valid_until`` file: until then the node still opens envelopes addressed to the old
# fingerprint (peers that have not yet processed the announcement) and can sign the
# announcement itself with the old key, which is the one its peers have pinned.

RETIRED_DIR = "retired"
VALID_UNTIL_FILE = "valid_until"


def jose_signing_key(identity: NodeIdentity) -> Any:
    """The private signing key as a joserfc ``OKPKey`` (stays in this process)."""
    from joserfc.jwk import OKPKey

    return OKPKey(identity._signing_key, identity._signing_key)


def jose_encryption_key(identity: NodeIdentity) -> Any:
    """The private X25519 key as a joserfc ``OKPKey`` (stays in this process)."""
    from joserfc.jwk import OKPKey

    return OKPKey(identity._encryption_key, identity._encryption_key)


@dataclass(frozen=True)
class KeyRing:
    """The current identity and the retired ones still inside their grace period."""

    current: NodeIdentity
    retired: tuple[NodeIdentity, ...] = ()

    def by_fingerprint(self, fingerprint: str) -> NodeIdentity | None:
        for candidate in (self.current, *self.retired):
            if candidate.fingerprint == fingerprint:
                return candidate
        return None


def _load_pair(directory: Path) -> NodeIdentity:
    signing = _load_private(directory / SIGNING_KEY_FILE)
    encryption = _load_private(directory / ENCRYPTION_KEY_FILE)
    if not isinstance(signing, Ed25519PrivateKey) or not isinstance(encryption, X25519PrivateKey):
        raise IdentityError(f"{directory} does not hold an Ed25519 and an X25519 key")
    return NodeIdentity(
        signing_public_key=_raw_public(signing.public_key()),
        encryption_public_key=_raw_public(encryption.public_key()),
        _signing_key=signing,
        _encryption_key=encryption,
    )


def load_keyring(data_dir: Path, now: datetime) -> KeyRing:
    """Current keys plus retired keys whose grace period has not ended at ``now``."""
    current = load_identity(data_dir)
    retired_root = keys_dir(data_dir) / RETIRED_DIR
    retired: list[NodeIdentity] = []
    if retired_root.is_dir():
        _check_private(retired_root, directory=True)
        for entry in sorted(retired_root.iterdir()):
            try:
                until = datetime.fromisoformat(
                    (entry / VALID_UNTIL_FILE).read_text(encoding="ascii").strip()
                )
            except (OSError, ValueError):
                continue  # unreadable grace: treat the pair as expired
            if until.tzinfo is None or until <= now:
                continue
            retired.append(_load_pair(entry))
    return KeyRing(current=current, retired=tuple(retired))


def _replace_key(path: Path, pem: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def rotate_identity(
    data_dir: Path, *, grace: timedelta, now: datetime
) -> tuple[NodeIdentity, NodeIdentity]:
    """Retire the current key pair (kept for ``grace``) and generate a new one.

    The old files are hard-linked into ``retired/<fingerprint>/`` before the new keys replace
    them, so a crash at any point leaves every key that peers may still use on disk.
    Returns ``(old, new)``. One operator runs this at a time (it is not locked).
    """
    old = load_identity(data_dir)
    directory = keys_dir(data_dir)
    retired_root = directory / RETIRED_DIR
    retired_root.mkdir(mode=0o700, exist_ok=True)
    target = retired_root / old.fingerprint
    target.mkdir(mode=0o700, exist_ok=True)
    for name in (SIGNING_KEY_FILE, ENCRYPTION_KEY_FILE):
        with contextlib.suppress(FileExistsError):
            os.link(directory / name, target / name)
    _replace_key(target / VALID_UNTIL_FILE, (now + grace).isoformat().encode("ascii"))
    for name, new_key in (
        (ENCRYPTION_KEY_FILE, X25519PrivateKey.generate),
        (SIGNING_KEY_FILE, Ed25519PrivateKey.generate),
    ):
        pem = new_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _replace_key(directory / name, pem)
    _fsync_dir(target)
    _fsync_dir(directory)
    return old, load_identity(data_dir)

"""The node's matching master key: a file in the data directory, like its federation keys.

Responder scalars (one per local authority) and each query's own scalar live in the database
sealed under this key (``core.sealing``), so a copy of the database alone opens neither. The
file is created on first use, readable by the node's user only.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

from crossborder.core import sealing

KEY_FILE: Final = "matching.key"
RESPONDER_INFO: Final = b"crossborder/matching/responder-key/v1"
QUERY_INFO: Final = b"crossborder/matching/query-key/v1"


def master(data_dir: Path) -> str:
    path = data_dir / KEY_FILE
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
    return value


def seal(data_dir: Path, info: bytes, key: bytes) -> str:
    return sealing.seal(master(data_dir), info, key)


def unseal(data_dir: Path, info: bytes, token: str) -> bytes:
    return sealing.unseal(master(data_dir), info, token)

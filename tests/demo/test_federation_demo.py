"""`crossborder demo federation`, run as an operator would: three real nodes on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_three_nodes_walk_a_preservation_request_and_agree(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBORDER_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "crossborder.cli.main",
            "demo",
            "federation",
            "--base-dir",
            str(tmp_path / "fed"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Viet Nam MPS   worker: delivered 1, failed 0" in out
    assert "Australia AFP  worker: delivered 4, failed 0" in out
    assert "DIFFERENT" not in out
    assert "The two nodes agree." in out
    assert "Viet Nam MPS   hit: 0912 345 678 is held by AU-AFP (match)" in out
    assert out.rstrip().endswith("The hit is the one expected.")
    for node in ("vn-mps", "au-afp", "ma-dgsn"):
        keys = tmp_path / "fed" / node / "keys"
        assert keys.stat().st_mode & 0o777 == 0o700

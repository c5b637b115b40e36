#!/usr/bin/env python3
"""Vendor the web interface's fonts from the npm registry into the package's static folder.

The node serves every script, style and font itself (it must work offline, and a bare
Debian machine has no Bengali fonts). Run by `make install`; needs `npm` at build time only.
Versions are pinned here; `npm pack` checks the registry's integrity hash for us.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGES = {
    "@fontsource/noto-sans@5.3.0": ["latin", "latin-ext", "vietnamese"],
    "@fontsource/noto-sans-bengali@5.3.0": ["bengali"],
}
WEIGHTS = ["400", "700"]
DEST = Path(__file__).resolve().parent.parent / "src/crossborder/web/static/vendor/fonts"


def wanted(member: str, family: str, subsets: list[str]) -> bool:
    name = Path(member).name
    return any(
        name == f"{family}-{subset}-{weight}-normal.woff2"
        for subset in subsets
        for weight in WEIGHTS
    )


def vendor() -> int:
    npm = shutil.which("npm")
    if npm is None:
        print("vendor_assets: npm not found; the interface will use system fonts", file=sys.stderr)
        return 0
    stamp = DEST / ".stamp"
    expected = "\n".join(sorted(PACKAGES))
    if stamp.exists() and stamp.read_text() == expected:
        return 0
    DEST.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for spec, subsets in PACKAGES.items():
            family = spec.split("/")[1].rsplit("@", 1)[0]
            out = (
                subprocess.run(
                    [npm, "pack", spec, "--silent", "--pack-destination", tmp],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            with tarfile.open(Path(tmp) / out) as tar:
                for member in tar.getmembers():
                    if member.isfile() and wanted(member.name, family, subsets):
                        data = tar.extractfile(member)
                        assert data is not None
                        (DEST / Path(member.name).name).write_bytes(data.read())
            (DEST / f"{family}.LICENSE").write_text("SIL Open Font License 1.1 (fontsource)\n")
    stamp.write_text(expected)
    print(f"vendor_assets: fonts in {DEST}")
    return 0


if __name__ == "__main__":
    sys.exit(vendor())

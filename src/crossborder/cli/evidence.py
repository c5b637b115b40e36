"""`crossborder evidence ...` and `crossborder node ...`: thin commands over the services.

``evidence verify`` works offline on any machine with crossborder installed: it needs no
settings, database or node keys — only the package (and, ideally, the sending node's
fingerprint as pinned in the directory).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

evidence_app = typer.Typer(help="Evidence files and signed export packages.", no_args_is_help=True)
node_app = typer.Typer(help="This node's identity.", no_args_is_help=True)

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def _fingerprint(value: str | None) -> str | None:
    if value is None:
        return None
    normalised = value.strip().lower().replace(":", "")
    if _FINGERPRINT.fullmatch(normalised) is None:
        raise typer.BadParameter("a fingerprint is 64 hexadecimal digits (SHA-256)")
    return normalised


@evidence_app.command("verify")
def verify(
    package: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=True, dir_okay=False, readable=True, help="The package (ZIP)."
        ),
    ],
    fingerprint: Annotated[
        str | None,
        typer.Option(
            callback=_fingerprint,
            help="The signing node's fingerprint as pinned in the directory (64 hex digits).",
        ),
    ] = None,
) -> None:
    """Check a signed evidence package: signature, signer, every file's size and SHA-256."""
    from crossborder.evidence.package import verify_package

    report = verify_package(package, expected_fingerprint=fingerprint)
    for line in report.summary_lines():
        typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)
    if not report.fingerprint_checked:
        typer.echo(
            "the signer was not checked: compare this fingerprint with the one the directory "
            "pins for the sending node, or pass --fingerprint"
        )


@node_app.command("info")
def info() -> None:
    """Print this node's fingerprint and public keys (never private material)."""
    from crossborder.cli import context
    from crossborder.federation.identity import b64url, load_identity

    identity = load_identity(context.settings().data_dir)
    typer.echo(f"fingerprint: {identity.fingerprint}")
    typer.echo(f"signing key (Ed25519, base64url): {b64url(identity.signing_public_key)}")
    typer.echo(f"encryption key (X25519, base64url): {b64url(identity.encryption_public_key)}")

"""`crossborder identifiers`: canonical forms of identifiers, and finding them in text."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from crossborder.core.errors import InvalidInput
from crossborder.requests.schemas import IdentifierKind
from crossborder.selectors.extract import MAX_BYTES, extract, extract_from_file
from crossborder.selectors.normalize import normalize

identifiers_app = typer.Typer(
    help="Normalise identifiers and find them in text.", no_args_is_help=True
)


@identifiers_app.command("normalize")
def normalize_command(
    kind: Annotated[IdentifierKind, typer.Argument(metavar="TYPE", help="Identifier type.")],
    value: Annotated[str, typer.Argument(help="The value to normalise.")],
    region: Annotated[
        str | None, typer.Option(help="Region for phone numbers without +, e.g. VN.")
    ] = None,
    chain: Annotated[str | None, typer.Option(help="Chain of a crypto address, e.g. eth.")] = None,
    platform: Annotated[
        str | None, typer.Option(help="Platform of a social-media id, e.g. facebook.")
    ] = None,
) -> None:
    """Print the canonical form of VALUE (and its flags, if any, on a second line)."""
    result = normalize(kind.value, value, default_region=region, chain=chain, platform=platform)
    typer.echo(result.canonical)
    if result.flags:
        typer.echo("flags: " + ", ".join(sorted(result.flags)))


@identifiers_app.command("extract")
def extract_command(
    file: Annotated[
        Path | None, typer.Argument(help="Text, CSV, JSON or PDF file; standard input if absent.")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="Region for phone numbers without +, e.g. VN.")
    ] = None,
) -> None:
    """Print one JSON object per identifier found: type, raw, canonical, start, end, flags."""
    if file is None:
        text = sys.stdin.read(MAX_BYTES + 1)
        if len(text) > MAX_BYTES:
            raise InvalidInput("standard input is larger than 20 MB", field="file")
        found = extract(text, default_region=region)
    else:
        found = extract_from_file(file, default_region=region)
    for item in found:
        typer.echo(json.dumps(item.as_json(), ensure_ascii=False))

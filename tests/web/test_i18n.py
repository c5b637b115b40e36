"""The message catalogs are complete, current, and their placeholders match."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from crossborder.web import i18n

ROOT = Path(__file__).resolve().parents[2]


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def _ids(catalog: Catalog) -> set[object]:
    return {m.id for m in catalog if m.id}


def test_template_is_current_with_the_sources(tmp_path: Path) -> None:
    out = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "--no-location",
            "--sort-output",
            "-k",
            "N_",
            "-k",
            "gettext:2",
            "-o",
            str(out),
            "src",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    committed = _read(i18n.TRANSLATIONS_DIR / "messages.pot")
    assert _ids(_read(out)) == _ids(committed), "run `make i18n-update` and translate"


@pytest.mark.parametrize("lang", [code for code in i18n.LANGUAGES if code != "en"])
def test_every_language_translates_every_message(lang: str) -> None:
    template = _read(i18n.TRANSLATIONS_DIR / "messages.pot")
    catalog = _read(i18n.TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po", lang)
    assert _ids(catalog) == _ids(template)
    empty = [
        m.id
        for m in catalog
        if m.id and not all(m.string if isinstance(m.string, tuple) else (m.string,))
    ]
    assert empty == []
    problems = [(m.id, errors) for m, errors in catalog.check()]
    assert problems == []

"""Languages of the interface, through Babel message catalogs.

Catalogs live in ``web/translations/<lang>/LC_MESSAGES/messages.po``; they are compiled in
memory when first used, so there is no generated file to keep in sync. Adding a language is
adding a catalog and a line in ``LANGUAGES``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from babel import Locale, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
LANG_COOKIE = "cb_lang"


@dataclass(frozen=True)
class Language:
    code: str
    native_name: str
    rtl: bool = False


LANGUAGES: dict[str, Language] = {
    "en": Language("en", "English"),
    "vi": Language("vi", "Tiếng Việt"),
    "bn": Language("bn", "বাংলা"),
}
DEFAULT_LANGUAGE = "en"


@cache
def translations(code: str) -> NullTranslations:
    po_path = TRANSLATIONS_DIR / code / "LC_MESSAGES" / "messages.po"
    if code == DEFAULT_LANGUAGE or not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=code)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def negotiate(cookie_value: str | None, accept_language: str | None, default: str) -> str:
    if cookie_value in LANGUAGES:
        return str(cookie_value)
    if accept_language:
        preferred = [
            part.split(";")[0].strip().replace("-", "_")
            for part in accept_language.split(",")
            if part.strip()
        ]
        found = negotiate_locale(preferred, list(LANGUAGES), sep="_")
        if found:
            return found
    return default if default in LANGUAGES else DEFAULT_LANGUAGE


def babel_locale(code: str) -> Locale:
    return Locale.parse(code)

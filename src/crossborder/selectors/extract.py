"""Finding identifiers in free text, in any language or script.

Candidates come from one regular expression per kind (phone numbers from ``phonenumbers``'
own matcher); each candidate is kept only if :func:`normalize` accepts it. When candidates
overlap, the more specific kind wins (URL over e-mail over crypto, IBAN, hash, IP, IMEI/IMSI,
phone, and domain last), and a span is reported once. Offsets are Python string indices into
the text given.

Candidate patterns use ASCII (plus Latin-extended, Greek and Cyrillic letters for domain
labels, so homoglyph domains are seen and refused) so that identifiers written against
Chinese, Arabic, Bengali or Vietnamese words with no space in between are still found. Not
extracted on purpose (too ambiguous in free text): social-media handles, national bank
account numbers, vehicle plates and passport numbers. IMEI and IMSI are only taken when the
word "IMEI" / "IMSI" stands within 24 characters before the number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import phonenumbers

from crossborder.core.errors import InvalidInput
from crossborder.selectors.normalize import InvalidIdentifier, normalize

MAX_BYTES: Final = 20 * 1024 * 1024

_LABEL_CHARS: Final = r"A-Za-z0-9\u00c0-\u024f\u1e00-\u1eff\u0370-\u03ff\u0400-\u04ff-"
_DOT: Final = r"(?:\.|\[\.\]|\(\.\)|\{\.\})"
_LABEL: Final = rf"[{_LABEL_CHARS}]{{1,63}}"
_HOST: Final = rf"{_LABEL}(?:{_DOT}{_LABEL})+"
_URL_TAIL: Final = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*"

_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (
        "url",
        re.compile(
            r"(?<![A-Za-z0-9])(?:https?|hxxps?|ftps?|fxp|wss?)(?:://|\[:\]//|\[://\])"
            rf"{_URL_TAIL}",
            re.IGNORECASE,
        ),
    ),
    (
        "email",
        re.compile(
            r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}(?:@|\[@\]|\(@\))"
            rf"{_HOST}(?![{_LABEL_CHARS}])"
        ),
    ),
    ("crypto", re.compile(r"(?<![A-Za-z0-9])0x[0-9a-fA-F]{40}(?![0-9A-Za-z])")),
    (
        "crypto",
        re.compile(r"(?<![A-Za-z0-9])(?:bc1|BC1)[02-9ac-hj-np-zAC-HJ-NP-Z]{6,87}(?![A-Za-z0-9])"),
    ),
    ("crypto", re.compile(r"(?<![A-Za-z0-9])[13T][1-9A-HJ-NP-Za-km-z]{25,34}(?![A-Za-z0-9])")),
    ("bank_account", re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}")),
    (
        "file_hash",
        re.compile(
            r"(?<![0-9A-Za-z])(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{40}|[0-9a-fA-F]{32})(?![0-9A-Za-z])"
        ),
    ),
    (
        "ip",
        re.compile(
            rf"(?<![0-9.])[0-9]{{1,3}}(?:{_DOT}[0-9]{{1,3}}){{3}}(?::[0-9]{{1,5}})?(?!\.?[0-9])"
        ),
    ),
    (
        "ip",
        re.compile(
            r"\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?"
            r"|(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Za-z:])"
        ),
    ),
    ("imei", re.compile(r"(?i:imei)\D{0,24}?([0-9](?:[ \-]?[0-9]){14})(?![0-9])")),
    ("imsi", re.compile(r"(?i:imsi)\D{0,24}?([0-9]{14,15})(?![0-9])")),
    (
        "domain",
        re.compile(rf"(?<![{_LABEL_CHARS}.@/]){_HOST}(?![{_LABEL_CHARS}])"),
    ),
)
_ORDER: Final = {
    kind: rank
    for rank, kind in enumerate(
        ("url", "email", "crypto", "bank_account", "file_hash", "ip", "imei", "imsi", "phone")
    )
}
_TRAILING: Final = ".,;:!?'\")]}>"


@dataclass(frozen=True)
class Found:
    kind: str
    raw: str
    canonical: str
    start: int
    end: int
    flags: frozenset[str]
    location: str = ""

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.kind,
            "raw": self.raw,
            "canonical": self.canonical,
            "start": self.start,
            "end": self.end,
            "flags": sorted(self.flags),
        }
        if self.location:
            data["location"] = self.location
        return data


def _trim_url(candidate: str) -> str:
    """Drop sentence punctuation after a URL; keep a ')' that closes one in the URL."""
    while candidate and candidate[-1] in _TRAILING:
        if candidate[-1] == ")" and candidate.count("(") >= candidate.count(")"):
            break
        if candidate[-1] == "]" and candidate.count("[") >= candidate.count("]"):
            break
        candidate = candidate[:-1]
    return candidate


def _candidates(text: str, region: str | None) -> Iterator[tuple[str, int, int]]:
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            group = 1 if pattern.groups else 0
            start, end = match.span(group)
            if kind == "url":
                end = start + len(_trim_url(text[start:end]))
            yield kind, start, end
    try:
        matcher = phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.VALID
        )
        for phone in matcher:
            yield "phone", phone.start, phone.end
    except phonenumbers.NumberParseException:  # pragma: no cover - defensive
        return


def _accept(kind: str, raw: str, region: str | None) -> tuple[str, frozenset[str]] | None:
    try:
        result = normalize(kind, raw, default_region=region)
    except InvalidIdentifier:
        return None
    if "unknown_tld" in result.flags and kind in ("domain", "email", "url"):
        return None
    return result.canonical, result.flags


def extract(text: str, *, default_region: str | None = None) -> list[Found]:
    """Identifiers found in ``text``, in order of position."""
    if len(text) > MAX_BYTES:
        raise InvalidInput(f"the text is longer than {MAX_BYTES} characters", field="text")
    region = default_region.upper() if default_region else None
    if region not in phonenumbers.SUPPORTED_REGIONS:
        region = None  # an unknown region still finds numbers written with +
    ranked = sorted(
        set(_candidates(text, region)),
        key=lambda c: (_ORDER.get(c[0], len(_ORDER)), c[1], -(c[2] - c[1])),
    )
    taken: list[tuple[int, int]] = []
    found: list[Found] = []
    for kind, start, end in ranked:
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            continue
        spans = [(start, end)]
        if kind == "bank_account":  # a greedy IBAN match may run into the next word
            spans = [(start, e) for e in range(end, start + 14, -1) if text[e - 1] != " "]
        for s, e in spans:
            accepted = _accept(kind, text[s:e], region)
            if accepted is not None:
                canonical, flags = accepted
                taken.append((s, e))
                found.append(Found(kind, text[s:e], canonical, s, e, flags))
                break
    return sorted(found, key=lambda f: (f.start, f.end))


def _walk_json(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield pointer, value
    elif isinstance(value, dict):
        for key, item in value.items():
            escaped = str(key).replace("~", "~0").replace("/", "~1")
            yield from _walk_json(item, f"{pointer}/{escaped}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_json(item, f"{pointer}/{index}")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            try:
                return data.decode("utf-16")
            except UnicodeDecodeError:
                pass
    raise InvalidInput("the file is not UTF-8 (or UTF-16) text", field="file")


def _pdf_pages(path: Path) -> Iterator[str]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        for page in reader.pages:
            yield page.extract_text() or ""
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"cannot read the PDF: {exc}", field="file") from None


def extract_from_file(
    path: Path | str, *, default_region: str | None = None, name: str | None = None
) -> list[Found]:
    """Identifiers in a text, CSV, JSON or PDF file (at most 20 MB).

    For text and CSV the offsets are into the decoded file; for JSON they are into the string
    value named by ``location`` (a JSON pointer); for PDF into the text of page ``location``.
    ``name`` is the file's real name when ``path`` is a blob without one (its suffix tells
    JSON from text).
    """
    file = Path(path)
    suffix = Path(name).suffix.lower() if name else file.suffix.lower()
    try:
        size = file.stat().st_size
        if size > MAX_BYTES:
            raise InvalidInput(
                f"{file.name} is larger than {MAX_BYTES // (1024 * 1024)} MB", field="file"
            )
        with file.open("rb") as handle:
            head = handle.read(5)
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}", field="file") from None
    if head == b"%PDF-" or suffix == ".pdf":
        found: list[Found] = []
        for number, page in enumerate(_pdf_pages(file), start=1):
            found += [
                _located(f, f"page {number}") for f in extract(page, default_region=default_region)
            ]
        return found
    text = _decode(file.read_bytes())
    if suffix == ".json":
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"{file.name} is not valid JSON: {exc}", field="file") from None
        found = []
        for pointer, value in _walk_json(document, ""):
            found += [
                _located(f, pointer or "/") for f in extract(value, default_region=default_region)
            ]
        return found
    return extract(text, default_region=default_region)


def _located(found: Found, location: str) -> Found:
    return Found(
        found.kind, found.raw, found.canonical, found.start, found.end, found.flags, location
    )

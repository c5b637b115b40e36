"""MISP events and feeds in and out of the STIX store, through ``pymisp`` and ``misp-stix``.

Import: a MISP event (JSON, as MISP exports it, with or without the ``{"Event": …}`` wrapper)
is checked by loading it with ``pymisp`` and converted by ``misp-stix``
(``MISPtoSTIX21Parser``). Then, before the objects are stored:

* **TLP.** ``misp-stix`` marks only the grouping (the event) with the event's TLP tag and the
  objects of an attribute with that attribute's own TLP tag; the SCOs inside observed data and
  the relationships carry nothing. Left like that, they would be read as AMBER whatever the
  event said — wider than a ``tlp:red`` event. So every object gets exactly one TLP 2.0 marking
  (:data:`markings.TLP2_IDS`): the strictest of the event's tag and its own, then the strictest
  along references (the SCOs an observed data or an SCO points to take its level; a
  relationship, sighting, note or opinion takes the level of what it links). An event without
  any TLP tag is AMBER (:data:`markings.DEFAULT_TLP`), written out. The event's
  ``distribution`` can only make that stricter (:data:`DISTRIBUTION_TLP`: "your
  organisation only" is AMBER+STRICT, a sharing group AMBER). The TLP marking
  definitions ``misp-stix`` emits (1.0 and 2.0 ids) are dropped: the store knows them.
* **MISP types STIX lacks** (``x-misp-attribute``, ``x-misp-object``: a phone number, say)
  declare the ``new-sdo`` extension :data:`MISP_EXTENSION`, since the store accepts a custom
  type only with one; ``misp-stix`` reads them back unchanged.

A MISP feed (a directory or URL holding ``manifest.json`` and one ``<uuid>.json`` per event)
is imported event by event, oldest first, from a ``since`` timestamp on; the result says up to
which timestamp every event is in, for the next run.

Export: the newest versions the actor may read and may pass on to the audience (by default an
outside partner; :func:`service.export_bundle` applies the markings and audits), turned into
one MISP event: objects that came from MISP through ``InternalSTIX2toMISPParser`` (so the
attributes, objects, event tags and uuids come back as they were), the others through
``ExternalSTIX2toMISPParser``, and the node's own observables (phone number, bank account,
crypto wallet) as MISP attributes or a ``coin-address`` object. TLP markings become
``tlp:…`` tags, and the event's ``distribution`` is the widest its strictest TLP allows
(:data:`TLP_DISTRIBUTION`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import sys
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import httpx
import orjson
from sqlalchemy.orm import Session

from crossborder.audit.service import record
from crossborder.auth.permissions import Permission, Principal, require
from crossborder.core.errors import InvalidInput, NotFound
from crossborder.db.session import atomic, unit_of_work
from crossborder.intel import markings, service, stix
from crossborder.intel.models import IntelCollection

log = logging.getLogger(__name__)

MISP_EXTENSION: Final = "extension-definition--687e9f75-fbfa-4f68-912a-8d805785a7cb"
MAX_EVENT_BYTES: Final = 50 * 1024 * 1024
MAX_MANIFEST_BYTES: Final = 20 * 1024 * 1024
HTTP_TIMEOUT: Final = 30.0
# What misp-stix adds to a grouping's labels (and so, on the way back, to the event's tags).
CONVERTER_TAGS: Final = frozenset({'misp:tool="MISP-STIX-Converter"', "Threat-Report"})
MISP_LABEL_PREFIXES: Final = ("misp:type=", "misp:name=", "misp:category=", "misp:tool=")
_TLP_TAGS: Final[dict[str, markings.Tlp]] = {
    "tlp:clear": markings.Tlp.CLEAR,
    "tlp:white": markings.Tlp.CLEAR,
    "tlp:green": markings.Tlp.GREEN,
    "tlp:amber": markings.Tlp.AMBER,
    "tlp:amber+strict": markings.Tlp.AMBER_STRICT,
    "tlp:red": markings.Tlp.RED,
}
_STRICTNESS: Final = {
    markings.Tlp.CLEAR: 0,
    markings.Tlp.GREEN: 1,
    markings.Tlp.AMBER: 2,
    markings.Tlp.AMBER_STRICT: 3,
    markings.Tlp.RED: 4,
}
# Objects whose level flows to what they reference (observables are what they observed)…
_MARKS_REFERENCED: Final = frozenset({"observed-data"})
# …and objects that take the level of what they reference (a link is as sensitive as its ends).
_TAKES_FROM_REFERENCED: Final = frozenset({"relationship", "sighting", "note", "opinion"})
_CONTAINERS: Final = frozenset({"grouping", "report"})
_SUPPORT_TYPES: Final = frozenset({"marking-definition", "extension-definition"})


def _modernise_six_importers() -> None:
    """Give the old ``six`` that ``mixbox`` (a STIX 1 dependency of misp-stix) vendors the
    ``find_spec`` protocol of six 1.16: without it, once that copy is on ``sys.meta_path``,
    every failed import anywhere in the process (``try: import ctags``) raises ImportWarning,
    which a test run with warnings as errors turns into failures far from here."""

    def find_spec(self: Any, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname in self.known_modules:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self: Any, spec: Any) -> Any:
        return self.load_module(spec.name)

    def exec_module(self: Any, module: Any) -> None:
        return None

    for finder in sys.meta_path:
        kind = type(finder)
        if kind.__name__ == "_SixMetaPathImporter" and "find_spec" not in vars(kind):
            methods = {
                "find_spec": find_spec,
                "create_module": create_module,
                "exec_module": exec_module,
            }
            for method_name, method in methods.items():
                setattr(kind, method_name, method)


@functools.cache
def _libraries() -> SimpleNamespace:
    """pymisp and misp-stix, imported on first use (slow: misp-stix pulls STIX 1 and lxml) and
    without the import-time warnings of their dependencies (six, mixbox)."""
    try:
        with _quiet_warnings():
            return _import_libraries()
    finally:
        _modernise_six_importers()


def _import_libraries() -> SimpleNamespace:
    from misp_stix_converter import MISPtoSTIX21Parser
    from misp_stix_converter.stix2misp.importparser import MISP_org_uuid
    from misp_stix_converter.tools.stix2_loading_helpers import load_stix2_content
    from misp_stix_converter.tools.stix2_to_misp_helpers import get_stix2_parser
    from pymisp import MISPAttribute, MISPEvent, MISPObject
    from pymisp.exceptions import PyMISPError

    return SimpleNamespace(
        MISPtoSTIX21Parser=MISPtoSTIX21Parser,
        MISP_org_uuid=MISP_org_uuid,
        load_stix2_content=load_stix2_content,
        get_stix2_parser=get_stix2_parser,
        MISPAttribute=MISPAttribute,
        MISPEvent=MISPEvent,
        MISPObject=MISPObject,
        PyMISPError=PyMISPError,
    )


@contextlib.contextmanager
def _quiet_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --- TLP ----------------------------------------------------------------------------------------


def tlp_of_tag(name: object) -> markings.Tlp | None:
    """The TLP level a MISP tag names (``tlp:amber``, ``TLP:WHITE``…), else None."""
    if not isinstance(name, str):
        return None
    return _TLP_TAGS.get(name.strip().lower().replace(" ", ""))


def tlp_tag(level: markings.Tlp) -> str:
    return f"tlp:{level.value}"


def strictest(*levels: markings.Tlp | None) -> markings.Tlp | None:
    found = [level for level in levels if level is not None]
    return max(found, key=_STRICTNESS.__getitem__) if found else None


def _tags_tlp(tags: object) -> markings.Tlp | None:
    if not isinstance(tags, list):
        return None
    names = [t.get("name") if isinstance(t, Mapping) else t for t in tags]
    return strictest(*(tlp_of_tag(n) for n in names))


def _references(obj: Mapping[str, Any], *, creator: bool = False) -> Iterator[str]:
    """The STIX ids an object points to: ``*_ref``, ``*_refs``, also inside extensions (its
    ``created_by_ref`` too if ``creator``; never its markings)."""
    for key, value in obj.items():
        if key == "object_marking_refs" or (key == "created_by_ref" and not creator):
            continue
        if key.endswith("_ref") and isinstance(value, str):
            yield value
        elif key.endswith("_refs") and isinstance(value, list):
            yield from (v for v in value if isinstance(v, str))
        elif key == "extensions" and isinstance(value, Mapping):
            for ext in value.values():
                if isinstance(ext, Mapping):
                    yield from _references(ext)


def _is_sco(obj: Mapping[str, Any]) -> bool:
    return stix.category(obj) == "sco"


def _tlp_refs(obj: Mapping[str, Any], custom: Mapping[str, markings.Tlp]) -> list[markings.Tlp]:
    found = []
    for ref in obj.get("object_marking_refs") or []:
        if ref in markings.TLP_BY_ID:
            found.append(markings.TLP_BY_ID[ref])
        elif ref in custom:
            found.append(custom[ref])
    return found


def apply_tlp(
    objects: Sequence[Mapping[str, Any]],
    event_level: markings.Tlp | None,
    floor: markings.Tlp | None = None,
) -> list[dict[str, Any]]:
    """Give every object one TLP 2.0 marking (see the module docstring); drop TLP definitions."""
    custom = {
        str(o["id"]): defined
        for o in objects
        if o.get("type") == "marking-definition"
        and (defined := stix.tlp_of_definition(o)) is not None
    }
    kept = [dict(o) for o in objects if str(o.get("id")) not in custom]
    by_id = {str(o.get("id")): o for o in kept}
    level: dict[str, markings.Tlp] = {}
    for obj in kept:
        if obj.get("type") in _SUPPORT_TYPES:
            continue
        own = strictest(*_tlp_refs(obj, custom))
        level[str(obj["id"])] = (
            strictest(strictest(event_level, own) or markings.DEFAULT_TLP, floor)
            or markings.DEFAULT_TLP
        )
    changed = True
    while changed:  # monotonic: every pass only raises levels, so this ends
        changed = False
        for obj in kept:
            oid = str(obj.get("id"))
            if oid not in level or obj.get("type") in _CONTAINERS:
                continue
            refs = [r for r in _references(obj) if r in level]
            if obj.get("type") in _MARKS_REFERENCED or _is_sco(obj):
                for ref in refs:
                    target = by_id.get(ref)
                    if target is None or not (
                        _is_sco(target) or obj.get("type") in _MARKS_REFERENCED
                    ):
                        continue
                    raised = strictest(level[ref], level[oid])
                    if raised is not level[ref]:
                        level[ref] = raised or level[ref]
                        changed = True
            if obj.get("type") in _TAKES_FROM_REFERENCED:
                raised = strictest(level[oid], *(level[r] for r in refs))
                if raised is not None and raised is not level[oid]:
                    level[oid] = raised
                    changed = True
    for obj in kept:
        oid = str(obj.get("id"))
        if oid in level:
            others = [
                r
                for r in obj.get("object_marking_refs") or []
                if r not in markings.TLP_BY_ID and r not in custom
            ]
            obj["object_marking_refs"] = [*others, markings.TLP2_IDS[level[oid]]]
    return kept


# --- MISP -> STIX ---------------------------------------------------------------------------


def _declare_custom(obj: dict[str, Any]) -> dict[str, Any]:
    kind = str(obj.get("type", ""))
    if kind.startswith("x-misp-") and stix.category(obj) is None:
        extensions = dict(obj.get("extensions") or {})
        extensions[MISP_EXTENSION] = {"extension_type": "new-sdo"}
        obj["extensions"] = extensions
    return obj


def _event_body(event: Mapping[str, Any]) -> dict[str, Any]:
    inner = event.get("Event")
    return dict(inner) if isinstance(inner, Mapping) else dict(event)


def _with_timestamps(body: dict[str, Any]) -> dict[str, Any]:
    """Attributes and objects without a timestamp take the event's: misp-stix would stamp them
    with the time of conversion, and the same event imported twice would make new versions."""
    stamp = body.get("timestamp")
    if stamp in (None, ""):
        return body
    body = dict(body)

    def stamped(items: object) -> object:
        if not isinstance(items, list):
            return items
        return [
            {**item, "timestamp": stamp}
            if isinstance(item, dict) and item.get("timestamp") in (None, "")
            else item
            for item in items
        ]

    body["Attribute"] = stamped(body.get("Attribute", []))
    objects = stamped(body.get("Object", []))
    if isinstance(objects, list):
        body["Object"] = [
            {**o, "Attribute": stamped(o.get("Attribute", []))} if isinstance(o, dict) else o
            for o in objects
        ]
    return body


def misp_event_to_stix(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A MISP event (a dict, as ``MISPEvent.to_dict()`` or MISP's JSON export gives it) as
    STIX 2.1 objects ready for the store: converted by ``misp-stix``, one TLP 2.0 marking on
    every object, MISP-only types declared by :data:`MISP_EXTENSION`."""
    body = _with_timestamps(_event_body(event))
    parser = _libraries().MISPtoSTIX21Parser()
    parser.parse_misp_event(body)
    bundle = orjson.loads(parser.bundle.serialize())
    objects = [o for o in bundle.get("objects", []) if isinstance(o, dict)]
    event_level = _tags_tlp(body.get("Tag"))
    floor = distribution_tlp(body.get("distribution"))  # only ever stricter
    return [_declare_custom(o) for o in apply_tlp(objects, event_level, floor)]


#: What a MISP event's ``distribution`` allows, as the TLP level that allows no more:
#: 0 "your organisation only" is AMBER+STRICT; 1 "this community only" and 2 "connected
#: communities" are a community (GREEN); 4 a sharing group, named organisations, is AMBER;
#: 3 (all communities) and 5 (inherit) add nothing to the event's TLP tag.
DISTRIBUTION_TLP: Final[dict[int, markings.Tlp]] = {
    0: markings.Tlp.AMBER_STRICT,
    1: markings.Tlp.GREEN,
    2: markings.Tlp.GREEN,
    4: markings.Tlp.AMBER,
}
#: And back, for an exported event: the widest distribution its strictest TLP allows (the
#: receiving MISP must not sync AMBER or RED on to other organisations).
TLP_DISTRIBUTION: Final[dict[markings.Tlp, int]] = {
    markings.Tlp.CLEAR: 3,
    markings.Tlp.GREEN: 1,
    markings.Tlp.AMBER: 0,
    markings.Tlp.AMBER_STRICT: 0,
    markings.Tlp.RED: 0,
}


def distribution_tlp(value: object) -> markings.Tlp | None:
    """The TLP level a MISP ``distribution`` (0-5, as a number or text) implies, if any."""
    text = str(value).strip() if isinstance(value, int | str) else ""
    return DISTRIBUTION_TLP.get(int(text)) if text.isdigit() else None


def load_misp_event(data: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """Check that ``data`` is one MISP event (``pymisp`` loads it); its normalised JSON."""
    libraries = _libraries()
    if isinstance(data, bytes | str):
        if len(data) > MAX_EVENT_BYTES:
            raise InvalidInput(f"a MISP event is at most {MAX_EVENT_BYTES:,} bytes", field="file")
        try:
            parsed: Any = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise InvalidInput("not JSON: a MISP event is a JSON object", field="file") from None
    else:
        parsed = dict(data)
    if not isinstance(parsed, dict):
        raise InvalidInput('not a MISP event: expected a JSON object {"Event": {…}}', field="file")
    event = libraries.MISPEvent()
    try:
        with _quiet_warnings():
            event.load(parsed)
    except (libraries.PyMISPError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidInput(f"not a valid MISP event: {_short(exc)}", field="file") from None
    loaded: dict[str, Any] = orjson.loads(event.to_json())
    return loaded


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


@atomic
def import_misp_event(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    data: bytes | str | Mapping[str, Any],
    *,
    origin_authority_id: int | None = None,
) -> service.StatusResult:
    """Store a MISP event's content in ``collection`` (as the actor's, unless told otherwise).

    Objects already there (same id and version) count as failures "already present", so the
    same event imported twice stores nothing twice. Audited with the event's uuid.
    """
    require(actor, Permission.INTEL_WRITE)
    body = load_misp_event(data)
    try:
        with _quiet_warnings():
            objects = misp_event_to_stix(body)
    except Exception as exc:  # misp-stix raises anything on input it cannot convert
        raise InvalidInput(
            f"the MISP event could not be converted to STIX: {_short(exc)}", field="file"
        ) from None
    result = service.add_objects(
        session, actor, collection, objects, origin_authority_id=origin_authority_id
    )
    record(
        session,
        actor=actor,
        action="intel.misp_imported",
        object_type="intel_collection",
        object_id=collection.public_id,
        details={
            "event_uuid": str(body.get("uuid", "")),
            "status": result.id,
            "objects": result.total_count,
            "stored": result.success_count,
        },
    )
    return result


# --- MISP feeds --------------------------------------------------------------------------------


@dataclass
class FeedEventOutcome:
    uuid: str
    timestamp: int
    stored: int = 0
    already_present: int = 0
    invalid: int = 0
    error: str | None = None


@dataclass
class FeedImport:
    """What a feed import did. ``next_since`` is the ``since`` for the next run: every event
    with a timestamp up to it is in (a failed event is tried again next time)."""

    since: int
    next_since: int
    events: list[FeedEventOutcome] = field(default_factory=list)
    skipped: int = 0  # in the manifest, not newer than ``since``

    @property
    def imported(self) -> int:
        return sum(1 for e in self.events if e.error is None)

    @property
    def failed(self) -> int:
        return sum(1 for e in self.events if e.error is not None)

    @property
    def stored(self) -> int:
        return sum(e.stored for e in self.events)

    @property
    def already_present(self) -> int:
        return sum(e.already_present for e in self.events)

    @property
    def invalid(self) -> int:
        return sum(e.invalid for e in self.events)


class _Source:
    """A feed's files: a local directory or an http(s) base URL."""

    def __init__(self, source: str | Path) -> None:
        text = str(source)
        self.url: str | None = None
        self.path: Path | None = None
        if urlsplit(text).scheme in ("http", "https"):
            self.url = text if text.endswith("/") else text + "/"
            self.client: httpx.Client | None = httpx.Client(
                timeout=HTTP_TIMEOUT, follow_redirects=True
            )
        elif "://" in text:
            raise InvalidInput("a MISP feed is a directory or an http(s) URL", field="source")
        else:
            self.path = Path(text)
            self.client = None
            if not self.path.is_dir():
                raise InvalidInput(f"no such directory: {text}", field="source")

    def read(self, name: str, limit: int) -> bytes:
        if self.client is not None and self.url is not None:
            with self.client.stream("GET", urljoin(self.url, name)) as response:
                if response.status_code == 404:
                    raise NotFound(f"{name}: not in the feed")
                if response.status_code >= 400:
                    raise InvalidInput(f"{name}: HTTP {response.status_code}", field="source")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise InvalidInput(f"{name}: larger than {limit:,} bytes", field="source")
                    chunks.append(chunk)
                return b"".join(chunks)
        assert self.path is not None
        target = self.path / name
        if not target.is_file():
            raise NotFound(f"{name}: not in the feed")
        if target.stat().st_size > limit:
            raise InvalidInput(f"{name}: larger than {limit:,} bytes", field="source")
        return target.read_bytes()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def _manifest(raw: bytes) -> list[tuple[int, str]]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput("manifest.json is not JSON", field="source") from None
    if not isinstance(data, dict):
        raise InvalidInput("manifest.json: an object of event uuid -> metadata", field="source")
    entries: list[tuple[int, str]] = []
    for key, meta in data.items():
        try:
            event_uuid = str(uuid.UUID(str(key)))
        except ValueError:
            continue  # not an event: ignored, as MISP does
        stamp = meta.get("timestamp") if isinstance(meta, dict) else None
        try:
            timestamp = int(stamp) if stamp is not None else 0
        except (TypeError, ValueError):
            timestamp = 0
        entries.append((timestamp, event_uuid))
    entries.sort()
    return entries


def import_misp_feed(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    source: str | Path,
    *,
    since: int = 0,
    origin_authority_id: int | None = None,
) -> FeedImport:
    """Import the events of a MISP feed whose manifest timestamp is newer than ``since``.

    Each event is its own transaction; an event that cannot be read or converted is reported
    and the others go on.
    """
    require(actor, Permission.INTEL_WRITE)
    feed = _Source(source)
    try:
        entries = _manifest(feed.read("manifest.json", MAX_MANIFEST_BYTES))
        result = FeedImport(since=since, next_since=since)
        blocked = False
        for timestamp, event_uuid in entries:
            if timestamp <= since:
                result.skipped += 1
                continue
            outcome = FeedEventOutcome(uuid=event_uuid, timestamp=timestamp)
            result.events.append(outcome)
            try:
                status = import_misp_event(
                    session,
                    actor,
                    collection,
                    feed.read(f"{event_uuid}.json", MAX_EVENT_BYTES),
                    origin_authority_id=origin_authority_id,
                )
            except (InvalidInput, NotFound, httpx.HTTPError) as exc:
                outcome.error = _short(exc)
                blocked = True
                continue
            outcome.stored = status.success_count
            outcome.already_present = status.already_present
            outcome.invalid = status.invalid
            if not blocked:
                result.next_since = max(result.next_since, timestamp)
        return result
    except httpx.HTTPError as exc:
        raise InvalidInput(f"the feed could not be read: {_short(exc)}", field="source") from None
    finally:
        feed.close()


# --- STIX -> MISP ------------------------------------------------------------------------------


@dataclass
class MispExport:
    event: dict[str, Any]  # MISPEvent.to_dict(), JSON-ready
    left_out: list[str]  # ids withheld by the markings (may not be passed on)
    messages: list[str]  # what the converters reported (objects they could not express)


def _has_misp_label(obj: Mapping[str, Any]) -> bool:
    labels = obj.get("labels")
    return isinstance(labels, list) and any(
        isinstance(label, str) and label.startswith(MISP_LABEL_PREFIXES) for label in labels
    )


def _split(objects: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(objects that came from MISP, the others); marking definitions go with both."""
    by_id = {str(o.get("id")): o for o in objects}
    support = [o for o in objects if o.get("type") in _SUPPORT_TYPES]
    seeds = [
        o for o in objects if _has_misp_label(o) or str(o.get("type", "")).startswith("x-misp-")
    ]
    from_misp: set[str] = set()
    pending = [str(o["id"]) for o in seeds]
    while pending:
        oid = pending.pop()
        if oid in from_misp or oid not in by_id:
            continue
        from_misp.add(oid)
        obj = by_id[oid]
        if obj.get("type") not in _TAKES_FROM_REFERENCED:
            pending.extend(_references(obj, creator=True))
    for obj in objects:
        if obj.get("type") == "relationship":
            ends = (obj.get("source_ref"), obj.get("target_ref"))
            if all(end in from_misp for end in ends):
                from_misp.add(str(obj["id"]))
    inside = [o for o in objects if str(o.get("id")) in from_misp]
    outside = [
        o
        for o in objects
        if str(o.get("id")) not in from_misp
        and o.get("type") not in _SUPPORT_TYPES
        and o.get("id") != stix.NODE_IDENTITY_ID
    ]
    return [*inside, *support], [*outside, *support]


def _tlp_of_object(obj: Mapping[str, Any]) -> markings.Tlp | None:
    return markings.tlp_of(r for r in obj.get("object_marking_refs") or [] if isinstance(r, str))


def _own_observables(objects: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
    """Take the node's own SCOs out of ``objects``: as pymisp attributes and objects."""
    libraries = _libraries()
    rest: list[dict[str, Any]] = []
    made: list[Any] = []
    for obj in objects:
        kind = obj.get("type")
        extensions = obj.get("extensions")
        ours = (
            kind in stix.CUSTOM_SCOS
            and isinstance(extensions, Mapping)
            and stix.CUSTOM_SCOS[str(kind)][0] in extensions
        )
        if not ours:
            rest.append(obj)
            continue
        level = _tlp_of_object(obj)
        tags = [tlp_tag(level)] if level is not None else []
        uid = str(obj["id"]).split("--", 1)[1]
        if kind == "crypto-wallet":
            wallet = libraries.MISPObject("coin-address", standalone=False)
            wallet.uuid = uid
            wallet.add_attribute("address", value=str(obj.get("address", "")), Tag=tags)
            wallet.add_attribute("symbol", value=str(obj.get("chain", "")).upper(), Tag=tags)
            made.append(wallet)
            continue
        attribute = libraries.MISPAttribute()
        if kind == "phone-number":
            attribute.from_dict(type="phone-number", value=str(obj.get("value", "")))
        elif obj.get("iban"):
            attribute.from_dict(type="iban", value=str(obj["iban"]))
        else:
            number = f"{obj.get('country', '')} {obj.get('bank', '')} {obj.get('number', '')}"
            attribute.from_dict(type="bank-account-nr", value=number.strip())
        attribute.uuid = uid
        for tag in tags:
            attribute.add_tag(tag)
        made.append(attribute)
    return rest, made


def _convert(objects: list[dict[str, Any]], *, from_misp: bool, messages: list[str]) -> Any:
    """One MISP event from ``objects``; what the converter reported goes to ``messages``."""
    libraries = _libraries()
    bundle = libraries.load_stix2_content(
        {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}
    )
    parser_class, arguments = libraries.get_stix2_parser(
        from_misp, 0, None, None, None, False, False, True, libraries.MISP_org_uuid, 0, None
    )
    parser = parser_class()
    parser.load_stix_bundle(bundle)
    parser.parse_stix_bundle(**arguments)
    for reported in (parser.errors, parser.warnings):
        for items in reported.values():
            messages.extend(str(item)[:300] for item in items)
    return parser.misp_event


def _explicit_tlp(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unmarked objects are AMBER here: say so to the converters (and to MISP)."""
    amber = markings.TLP2_IDS[markings.DEFAULT_TLP]
    marked: list[dict[str, Any]] = []
    for obj in objects:
        if obj.get("type") not in _SUPPORT_TYPES and _tlp_of_object(obj) is None:
            obj = {**obj, "object_marking_refs": [*(obj.get("object_marking_refs") or []), amber]}
        marked.append(obj)
    if any(amber in (o.get("object_marking_refs") or []) for o in marked) and not any(
        o.get("id") == amber for o in marked
    ):
        marked.append(stix.TLP_MARKINGS[amber])
    return marked


def _strip_converter_tags(event: Any) -> None:
    kept = [t for t in event.tags if t.name not in CONVERTER_TAGS]
    if len(kept) != len(event.tags):
        event.tags = kept


def _each_attribute(event: Any) -> Iterator[Any]:
    yield from event.attributes
    for obj in event.objects:
        yield from obj.attributes


def _tlp_tags_coherent(event: Any) -> None:
    """Every attribute says its TLP, or the event says it for all."""
    event_level = _tags_tlp([t.name for t in event.tags])
    if event_level is not None:
        return
    levels = {_tags_tlp([t.name for t in a.tags]) for a in _each_attribute(event)}
    if len(levels) == 1 and (only := levels.pop()) is not None:
        event.add_tag(tlp_tag(only))
        for attribute in _each_attribute(event):
            attribute.tags = [t for t in attribute.tags if tlp_of_tag(t.name) is None]


def _collection_ids_for_event(
    session: Session, actor: Principal, collection: IntelCollection, event_uuid: str
) -> list[str]:
    """The ids of a MISP event's objects: its report (published) or grouping, and its refs."""
    try:
        uid = uuid.UUID(event_uuid)
    except ValueError:
        raise InvalidInput("an event is named by its uuid", field="event") from None
    heads = [f"report--{uid}", f"grouping--{uid}"]
    page = service.query(session, actor, collection, match_id=heads, limit=2)
    if not page.objects:
        raise NotFound("no such MISP event in this collection")
    found = [str(o["id"]) for o in page.objects]
    for head in page.objects:
        found.extend(r for r in head.get("object_refs") or [] if isinstance(r, str))
    return list(dict.fromkeys(found))


def export_misp(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    *,
    ids: Iterable[str] = (),
    event_uuid: str | None = None,
    info: str | None = None,
    audience: markings.Audience | None = None,
) -> MispExport:
    """The collection (or the objects ``ids``, or the MISP event ``event_uuid``) as one MISP
    event, with what the markings withheld and what could not be converted."""
    audience = audience or markings.Audience(markings.AudienceKind.PARTNER)
    wanted = list(ids)
    with unit_of_work(session):
        if event_uuid is not None:
            wanted.extend(_collection_ids_for_event(session, actor, collection, event_uuid))
        bundle, left_out = service.export_bundle(
            session, actor, collection, ids=wanted, audience=audience
        )
    objects = _explicit_tlp([o for o in bundle["objects"] if isinstance(o, dict)])
    inside, outside = _split(objects)
    outside, own = _own_observables(outside)
    messages: list[str] = []
    events: list[Any] = []
    with _quiet_warnings():
        for part, from_misp in ((inside, True), (outside, False)):
            if any(o.get("type") not in _SUPPORT_TYPES for o in part):
                events.append(_convert(part, from_misp=from_misp, messages=messages))
    if events:
        event = events[0]
        for other in events[1:]:
            for attribute in other.attributes:
                event.attributes.append(attribute)
            for obj in other.objects:
                event.add_object(obj)
    else:
        event = _libraries().MISPEvent()
    for item in own:
        if hasattr(item, "name") and hasattr(item, "template_uuid"):
            event.add_object(item)
        else:
            event.attributes.append(item)
    _strip_converter_tags(event)
    _tlp_tags_coherent(event)
    levels = [tlp_of_tag(t.name) for t in event.tags] + [
        tlp_of_tag(t.name) for a in _each_attribute(event) for t in a.tags
    ]
    widest_allowed = strictest(*levels) or markings.DEFAULT_TLP
    event.distribution = TLP_DISTRIBUTION[widest_allowed]
    if info:
        event.info = info.strip()[:65535]
    elif not getattr(event, "info", None) or str(event.info).startswith("STIX 2.1 Bundle"):
        event.info = f"{collection.title} (exported by crossborder)"
    result: dict[str, Any] = orjson.loads(event.to_json())
    return MispExport(event=result, left_out=left_out, messages=messages)


def export_misp_event(
    session: Session,
    actor: Principal,
    collection: IntelCollection,
    *,
    ids: Iterable[str] = (),
    event_uuid: str | None = None,
    info: str | None = None,
    audience: markings.Audience | None = None,
) -> dict[str, Any]:
    """:func:`export_misp`, the event only (``MISPEvent.to_dict()``)."""
    return export_misp(
        session,
        actor,
        collection,
        ids=ids,
        event_uuid=event_uuid,
        info=info,
        audience=audience,
    ).event

"""STIX 2.1 objects, checked fast, and the node's own extensions (pure: no database).

:func:`validate` checks one object (a ``dict`` as ``orjson`` parsed it) against the rules of
STIX 2.1 that matter for storing and sharing it, without ``stix2.parse`` (250 times slower):

* ``type`` syntax; ``id`` = ``<type>--<RFC 4122 UUID>`` (version 1-5, variant 10xx) with the
  same type; ``spec_version`` "2.1" (required except on SCOs);
* property names (``a-z``, ``0-9``, ``_``, 3 to 250 characters), no ``null``, no empty lists;
* timestamps RFC 3339 in UTC with ``Z`` (``created``/``modified`` to the millisecond on SDOs
  and SROs), ``modified >= created``, ``valid_until > valid_from``, ``last_seen >= first_seen``…;
* the required properties of each type; ``*_ref`` / ``*_refs`` look like STIX ids;
  ``object_marking_refs`` name marking definitions;
* indicator patterns of ``pattern_type`` "stix" through ``stix2patterns`` (verdicts cached per
  pattern string);
* a type STIX does not define is refused unless the object declares a ``new-sdo``, ``new-sco``
  or ``new-sro`` extension (an ``extension-definition--…`` key with ``extension_type``);
* objects larger than :data:`MAX_OBJECT_BYTES` serialised are refused.

The node defines three cyber-observable types STIX lacks — ``phone-number`` (E.164),
``bank-account`` (IBAN, or country + bank + number) and ``crypto-wallet`` (chain + address) —
each declared by an extension definition (:data:`EXTENSION_DEFINITIONS`), and one marking
extension for law-enforcement handling (:data:`LE_HANDLING_EXTENSION`): a marking definition
carrying Europol 4x4 handling codes, source reliability, information accuracy and, for
TLP:RED, the named recipients::

    {"type": "marking-definition", "spec_version": "2.1", "id": "marking-definition--…",
     "created": "…Z", "name": "LE handling H1 B2",
     "extensions": {LE_HANDLING_EXTENSION: {
         "extension_type": "property-extension",
         "handling_codes": ["H1"], "source_reliability": "B", "information_accuracy": "2",
         "recipients": [12, 15],                # authority ids of this node (TLP:RED)
         "partner_recipients": ["token:7"],     # partners by name (TLP:RED)
         "conditions": "…"}}}                   # H3: the other restrictions

:func:`identifiers_in` lists the identifiers an object holds (SCO values, hashes, and the
values compared for equality in a STIX pattern) as (kind, value) for the identifier index.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

import orjson
from stdnum import iban as stdnum_iban

from crossborder.intel import markings

MAX_OBJECT_BYTES: Final = 1_000_000
MAX_PATTERN_LENGTH: Final = 65_536
MAX_ERRORS: Final = 10

_TYPE_RE: Final = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_UUID: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
_ID_RE: Final = re.compile(rf"([a-z][a-z0-9]*(?:-[a-z0-9]+)*)--((?i:{_UUID}))")
_PROPERTY_RE: Final = re.compile(r"[a-z][a-z0-9_]{2,249}")
_EXT_NAME_RE: Final = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*-ext")
_TIMESTAMP_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,32}))?Z", re.ASCII
)
_E164_RE: Final = re.compile(r"\+[1-9][0-9]{1,14}", re.ASCII)
_COUNTRY_RE: Final = re.compile(r"[A-Z]{2}", re.ASCII)
_CHAIN_RE: Final = re.compile(r"[a-z][a-z0-9-]{0,19}", re.ASCII)
_ADDRESS_RE: Final = re.compile(r"[A-Za-z0-9:._-]{4,200}", re.ASCII)

EXTENSION_TYPES: Final = frozenset(
    {"new-sdo", "new-sco", "new-sro", "property-extension", "toplevel-property-extension"}
)
_NEW_TYPE_CATEGORY: Final = {"new-sdo": "sdo", "new-sco": "sco", "new-sro": "sro"}

# Required properties, per type (beyond type/id/spec_version/created/modified).
SDO_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "attack-pattern": ("name",),
    "campaign": ("name",),
    "course-of-action": ("name",),
    "grouping": ("context", "object_refs"),
    "identity": ("name",),
    "incident": ("name",),
    "indicator": ("pattern", "pattern_type", "valid_from"),
    "infrastructure": ("name",),
    "intrusion-set": ("name",),
    "location": (),
    "malware": ("is_family",),
    "malware-analysis": ("product",),
    "note": ("content", "object_refs"),
    "observed-data": ("first_observed", "last_observed", "number_observed"),
    "opinion": ("opinion", "object_refs"),
    "report": ("name", "published", "object_refs"),
    "threat-actor": ("name",),
    "tool": ("name",),
    "vulnerability": ("name",),
}
SRO_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "relationship": ("relationship_type", "source_ref", "target_ref"),
    "sighting": ("sighting_of_ref",),
}
SMO_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "marking-definition": (),
    "extension-definition": ("created_by_ref", "name", "schema", "version", "extension_types"),
    "language-content": ("object_ref", "contents"),
}
# For SCOs: each inner tuple is one way to satisfy the requirement (any of them will do).
SCO_REQUIRED: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "artifact": (("payload_bin",), ("url", "hashes")),
    "autonomous-system": (("number",),),
    "directory": (("path",),),
    "domain-name": (("value",),),
    "email-addr": (("value",),),
    "email-message": (("is_multipart",),),
    "file": (("hashes",), ("name",)),
    "ipv4-addr": (("value",),),
    "ipv6-addr": (("value",),),
    "mac-addr": (("value",),),
    "mutex": (("name",),),
    "network-traffic": (("protocols",),),
    "process": (),
    "software": (("name",),),
    "url": (("value",),),
    "user-account": (),
    "windows-registry-key": (),
    "x509-certificate": (),
}
# Timestamp properties per type (created and modified are checked on every type).
TIMESTAMP_PROPERTIES: Final[dict[str, tuple[str, ...]]] = {
    "campaign": ("first_seen", "last_seen"),
    "indicator": ("valid_from", "valid_until"),
    "infrastructure": ("first_seen", "last_seen"),
    "intrusion-set": ("first_seen", "last_seen"),
    "language-content": ("object_modified",),
    "malware": ("first_seen", "last_seen"),
    "malware-analysis": ("submitted", "analysis_started", "analysis_ended"),
    "observed-data": ("first_observed", "last_observed"),
    "report": ("published",),
    "relationship": ("start_time", "stop_time"),
    "sighting": ("first_seen", "last_seen"),
    "threat-actor": ("first_seen", "last_seen"),
    "directory": ("ctime", "mtime", "atime"),
    "email-message": ("date",),
    "file": ("ctime", "mtime", "atime"),
    "network-traffic": ("start", "end"),
    "process": ("created_time",),
    "user-account": (
        "account_created",
        "account_expires",
        "credential_last_changed",
        "account_first_login",
        "account_last_login",
    ),
    "windows-registry-key": ("modified_time",),
    "x509-certificate": ("validity_not_before", "validity_not_after"),
}
# (later, operator, earlier): "ge" later >= earlier, "gt" later > earlier.
TIMESTAMP_ORDER: Final[dict[str, tuple[tuple[str, str, str], ...]]] = {
    "campaign": (("last_seen", "ge", "first_seen"),),
    "indicator": (("valid_until", "gt", "valid_from"),),
    "infrastructure": (("last_seen", "ge", "first_seen"),),
    "intrusion-set": (("last_seen", "ge", "first_seen"),),
    "malware": (("last_seen", "ge", "first_seen"),),
    "observed-data": (("last_observed", "ge", "first_observed"),),
    "relationship": (("stop_time", "gt", "start_time"),),
    "sighting": (("last_seen", "ge", "first_seen"),),
    "threat-actor": (("last_seen", "ge", "first_seen"),),
    "network-traffic": (("end", "ge", "start"),),
}
_MILLISECOND_PROPERTIES: Final = ("created", "modified")

# --- the node's own extension definitions ---------------------------------------------------

NODE_IDENTITY_ID: Final = "identity--b2323f68-aa8b-468a-a4bc-2fc166993007"
PHONE_NUMBER_EXTENSION: Final = "extension-definition--d1cccaa1-967b-4a12-9a77-9bb0fab7fadb"
BANK_ACCOUNT_EXTENSION: Final = "extension-definition--6b09b9b6-a61f-41bf-821c-1a19a2e63b02"
CRYPTO_WALLET_EXTENSION: Final = "extension-definition--e335bc07-da56-4f90-956f-0ffb60bf0c04"
LE_HANDLING_EXTENSION: Final = "extension-definition--7e65e436-6ae6-4170-be78-95a253dc102d"
_DEFINED: Final = "2026-01-01T00:00:00.000Z"
# The namespace STIX 2.1 gives for the UUIDv5 ids of cyber-observable objects.
SCO_NAMESPACE: Final = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")

NODE_IDENTITY: Final[dict[str, Any]] = {
    "type": "identity",
    "spec_version": "2.1",
    "id": NODE_IDENTITY_ID,
    "created": _DEFINED,
    "modified": _DEFINED,
    "name": "crossborder",
    "description": "The crossborder node software, author of its STIX extension definitions.",
    "identity_class": "system",
}


def _extension_definition(
    ext_id: str, name: str, description: str, schema: str, kind: str
) -> dict[str, Any]:
    return {
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": ext_id,
        "created_by_ref": NODE_IDENTITY_ID,
        "created": _DEFINED,
        "modified": _DEFINED,
        "name": name,
        "description": description,
        "schema": schema,
        "version": "1.0.0",
        "extension_types": [kind],
    }


# Custom SCO type -> (extension definition id, contributing properties of its UUIDv5 id).
CUSTOM_SCOS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "phone-number": (PHONE_NUMBER_EXTENSION, ("value",)),
    "bank-account": (BANK_ACCOUNT_EXTENSION, ("iban", "country", "bank", "number")),
    "crypto-wallet": (CRYPTO_WALLET_EXTENSION, ("chain", "address")),
}

EXTENSION_DEFINITIONS: Final[dict[str, dict[str, Any]]] = {
    PHONE_NUMBER_EXTENSION: _extension_definition(
        PHONE_NUMBER_EXTENSION,
        "phone-number",
        "A telephone number, as the cyber-observable type phone-number.",
        "Properties: value (required): the number in E.164 form, '+' and 2 to 15 digits. "
        "The id is a UUIDv5 of {value} in the STIX SCO namespace.",
        "new-sco",
    ),
    BANK_ACCOUNT_EXTENSION: _extension_definition(
        BANK_ACCOUNT_EXTENSION,
        "bank-account",
        "A bank account, as the cyber-observable type bank-account.",
        "Properties: iban (an ISO 13616 IBAN, compact, upper case) or all of country "
        "(ISO 3166 alpha-2), bank (a BIC or national bank code) and number; holder_name "
        "(optional). The id is a UUIDv5 of {iban, country, bank, number} in the STIX SCO "
        "namespace.",
        "new-sco",
    ),
    CRYPTO_WALLET_EXTENSION: _extension_definition(
        CRYPTO_WALLET_EXTENSION,
        "crypto-wallet",
        "A cryptocurrency address, as the cyber-observable type crypto-wallet.",
        "Properties: chain (required; lower case, e.g. btc, eth, tron) and address (required). "
        "The id is a UUIDv5 of {chain, address} in the STIX SCO namespace.",
        "new-sco",
    ),
    LE_HANDLING_EXTENSION: _extension_definition(
        LE_HANDLING_EXTENSION,
        "law-enforcement-handling",
        "Europol 4x4 handling of intelligence, on a marking definition.",
        "Properties of the extension on a marking-definition: handling_codes (H0-H3), "
        "source_reliability (A, B, C or X), information_accuracy (1-4), recipients (authority "
        "ids of the holding node, for TLP:RED), partner_recipients (partner names, for "
        "TLP:RED), conditions (text, for H3).",
        "property-extension",
    ),
}

# --- TLP marking definitions (TLP 2.0 of the OASIS extension, TLP 1.0 of the STIX spec) -----


def _tlp2(level: markings.Tlp) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": markings.TLP2_IDS[level],
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{level.value.upper()}",
        "extensions": {
            markings.TLP2_EXTENSION: {
                "extension_type": "property-extension",
                "tlp_2_0": level.value,
            }
        },
    }


def _tlp1(marking_id: str, name: str) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": marking_id,
        "created": "2017-01-20T00:00:00.000Z",
        "definition_type": "tlp",
        "name": f"TLP:{name.upper()}",
        "definition": {"tlp": name},
    }


TLP_MARKINGS: Final[dict[str, dict[str, Any]]] = {
    **{markings.TLP2_IDS[level]: _tlp2(level) for level in markings.Tlp},
    **{
        ref: _tlp1(ref, "white" if level is markings.Tlp.CLEAR else level.value)
        for ref, level in markings.TLP1_IDS.items()
    },
}

# --- small helpers ---------------------------------------------------------------------------


def parse_timestamp(value: object) -> datetime | None:
    """A STIX timestamp (``YYYY-MM-DDTHH:MM:SS[.s+]Z``) as an aware UTC datetime, else None.

    Digits beyond the microsecond are dropped.
    """
    if not isinstance(value, str):
        return None
    found = _TIMESTAMP_RE.fullmatch(value)
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction = found.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, UTC
        )
    except ValueError:
        return None


def format_timestamp(value: datetime) -> str:
    """A STIX timestamp: milliseconds, or microseconds when they are not zero."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (text[:-3] if value.microsecond % 1000 == 0 else text) + "Z"


def is_stix_id(value: object, kind: str | None = None) -> bool:
    if not isinstance(value, str):
        return False
    found = _ID_RE.fullmatch(value)
    return found is not None and (kind is None or found.group(1) == kind)


def version(obj: Mapping[str, Any]) -> datetime | None:
    """The version of an object: ``modified``, else ``created``, else None (most SCOs)."""
    return parse_timestamp(obj.get("modified")) or parse_timestamp(obj.get("created"))


def sco_id(kind: str, properties: Mapping[str, Any]) -> str:
    """The deterministic id (UUIDv5) of an SCO from its contributing properties."""
    canonical = orjson.dumps(
        {k: v for k, v in properties.items() if v is not None}, option=orjson.OPT_SORT_KEYS
    )
    return f"{kind}--{uuid.uuid5(SCO_NAMESPACE, canonical.decode())}"


def custom_sco(kind: str, **properties: Any) -> dict[str, Any]:
    """One of the node's own SCOs (phone-number, bank-account, crypto-wallet), with its id."""
    ext_id, contributing = CUSTOM_SCOS[kind]
    obj: dict[str, Any] = {
        "type": kind,
        "spec_version": "2.1",
        "id": sco_id(kind, {k: properties.get(k) for k in contributing}),
        **{k: v for k, v in properties.items() if v is not None},
        "extensions": {ext_id: {"extension_type": "new-sco"}},
    }
    return obj


def category(obj: Mapping[str, Any]) -> str | None:
    """ "sdo", "sro", "sco", "smo", or None for a type unknown and not declared by extension."""
    kind = obj.get("type")
    if not isinstance(kind, str):
        return None
    if kind in SDO_REQUIRED:
        return "sdo"
    if kind in SRO_REQUIRED:
        return "sro"
    if kind in SMO_REQUIRED:
        return "smo"
    if kind in SCO_REQUIRED:
        return "sco"
    extensions = obj.get("extensions")
    if isinstance(extensions, Mapping):
        for key, ext in extensions.items():
            if (
                isinstance(key, str)
                and key.startswith("extension-definition--")
                and isinstance(ext, Mapping)
                and _is_one_of(ext.get("extension_type"), _NEW_TYPE_CATEGORY)
            ):
                return _NEW_TYPE_CATEGORY[ext["extension_type"]]
    return None


# --- validation ------------------------------------------------------------------------------


class _Errors(list[str]):
    def add(self, message: str) -> None:
        if len(self) < MAX_ERRORS:
            self.append(message)


def _is_one_of(value: object, choices: Collection[str]) -> bool:
    return isinstance(value, str) and value in choices


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate(obj: object) -> list[str]:
    """Why ``obj`` is not a valid STIX 2.1 object to store here; empty when it is valid."""
    if not isinstance(obj, dict):
        return ["a STIX object must be a JSON object"]
    try:
        size = len(orjson.dumps(obj))
    except (TypeError, orjson.JSONEncodeError):
        return ["the object cannot be written as JSON"]
    if size > MAX_OBJECT_BYTES:
        return [f"the object is larger than {MAX_OBJECT_BYTES:,} bytes ({size:,})"]
    kind = obj.get("type")
    if not isinstance(kind, str) or not 3 <= len(kind) <= 250 or not _TYPE_RE.fullmatch(kind):
        return [
            "type: missing, or not 3-250 characters of a-z, 0-9 and single hyphens, "
            "starting with a letter"
        ]
    if kind == "bundle":
        return ["type: a bundle is not an object; send its objects"]
    errors = _Errors()
    group = category(obj)
    if group is None:
        errors.add(
            f"type: {kind!r} is not a STIX 2.1 type; a custom type must declare a new-sdo, "
            "new-sco or new-sro extension (an extension-definition--… key in extensions)"
        )
    _check_id(obj, kind, errors)
    _check_properties(obj, errors)
    _check_spec_version(obj, group, errors)
    _check_timestamps(obj, kind, group, errors)
    _check_required(obj, kind, group, errors)
    _check_refs(obj, errors)
    _check_extensions(obj, errors)
    _check_markings(obj, errors)
    _check_specific(obj, kind, errors)
    return list(errors)


def _check_id(obj: Mapping[str, Any], kind: str, errors: _Errors) -> None:
    value = obj.get("id")
    if not isinstance(value, str):
        errors.add("id: required, a string <type>--<UUID>")
        return
    found = _ID_RE.fullmatch(value)
    if found is None:
        errors.add(
            f"id: {_short(value)} is not <type>--<UUID> with an RFC 4122 UUID "
            "(version 1-5, variant 10xx)"
        )
        return
    if found.group(1) != kind:
        errors.add(f"id: {_short(value)} does not start with '{kind}--'")


def _check_properties(obj: Mapping[str, Any], errors: _Errors) -> None:
    for key, value in obj.items():
        if key != "id" and not _PROPERTY_RE.fullmatch(key):
            errors.add(
                f"{_short(key)}: a property name is 3-250 characters of a-z, 0-9 and _, "
                "starting with a letter"
            )
        if value is None:
            errors.add(f"{key}: null is not allowed; leave the property out")
        elif isinstance(value, list) and not value:
            errors.add(f"{key}: empty lists are not allowed; leave the property out")


def _check_spec_version(obj: Mapping[str, Any], group: str | None, errors: _Errors) -> None:
    value = obj.get("spec_version")
    if value is None and group == "sco":
        return
    if value != "2.1":
        errors.add(
            "spec_version: required, and must be '2.1'"
            if value is None
            else f"spec_version: {_short(value)} is not '2.1'"
        )


def _check_timestamps(
    obj: Mapping[str, Any], kind: str, group: str | None, errors: _Errors
) -> None:
    names = ("created", "modified", *TIMESTAMP_PROPERTIES.get(kind, ()))
    times: dict[str, datetime] = {}
    for name in names:
        if name not in obj or obj[name] is None:
            continue
        raw = obj[name]
        parsed = parse_timestamp(raw)
        if parsed is None:
            errors.add(
                f"{name}: {_short(raw)} is not a UTC timestamp YYYY-MM-DDTHH:MM:SS[.sss]Z "
                "(RFC 3339, time zone Z)"
            )
            continue
        if (
            name in _MILLISECOND_PROPERTIES
            and group in ("sdo", "sro")
            and not re.search(r"\.\d{3,}Z$", raw)
        ):
            errors.add(f"{name}: {_short(raw)} must be precise to the millisecond (.sssZ)")
        times[name] = parsed
    orders = (("modified", "ge", "created"), *TIMESTAMP_ORDER.get(kind, ()))
    for later, op, earlier in orders:
        if later in times and earlier in times:
            ok = times[later] >= times[earlier] if op == "ge" else times[later] > times[earlier]
            if not ok:
                relation = "later than or equal to" if op == "ge" else "later than"
                errors.add(f"{later}: must be {relation} {earlier}")


def _check_required(obj: Mapping[str, Any], kind: str, group: str | None, errors: _Errors) -> None:
    required: tuple[str, ...] = ()
    if group in ("sdo", "sro") or kind in ("extension-definition", "language-content"):
        required = ("created", "modified")
    elif kind == "marking-definition":
        required = ("created",)
    required += SDO_REQUIRED.get(kind, ()) + SRO_REQUIRED.get(kind, ())
    required += SMO_REQUIRED.get(kind, ())
    for name in required:
        if name not in obj:
            errors.add(f"{name}: required on {kind}")
    ways = SCO_REQUIRED.get(kind, ())
    if ways and not any(all(name in obj for name in way) for way in ways):
        wanted = " or ".join(" and ".join(way) for way in ways)
        errors.add(f"{kind} needs {wanted}")


def _check_refs(obj: Mapping[str, Any], errors: _Errors) -> None:
    for key, value in obj.items():
        if key.endswith("_ref"):
            if not is_stix_id(value):
                errors.add(f"{key}: {_short(value)} is not a STIX id <type>--<UUID>")
        elif key.endswith("_refs"):
            if not isinstance(value, list):
                errors.add(f"{key}: must be a list of STIX ids")
                continue
            bad = [ref for ref in value if not is_stix_id(ref)]
            if bad:
                errors.add(f"{key}: {_short(bad[0])} is not a STIX id <type>--<UUID>")
    creator = obj.get("created_by_ref")
    if isinstance(creator, str) and is_stix_id(creator) and not is_stix_id(creator, "identity"):
        errors.add("created_by_ref: must name an identity")


def _check_extensions(obj: Mapping[str, Any], errors: _Errors) -> None:
    extensions = obj.get("extensions")
    if extensions is None:
        return
    if not isinstance(extensions, dict) or not extensions:
        errors.add("extensions: must be a non-empty dictionary")
        return
    for key, ext in extensions.items():
        if key.startswith("extension-definition--"):
            if not is_stix_id(key, "extension-definition"):
                errors.add(f"extensions: {_short(key)} is not an extension-definition id")
            elif not isinstance(ext, dict) or not _is_one_of(
                ext.get("extension_type"), EXTENSION_TYPES
            ):
                errors.add(
                    f"extensions.{key}: needs extension_type, one of "
                    + ", ".join(sorted(EXTENSION_TYPES))
                )
        elif _EXT_NAME_RE.fullmatch(key):
            if not isinstance(ext, dict) or not ext:
                errors.add(f"extensions.{key}: must be a non-empty dictionary")
        else:
            errors.add(
                f"extensions: {_short(key)} is neither an extension-definition id "
                "nor a predefined '<name>-ext' extension"
            )


def _check_markings(obj: Mapping[str, Any], errors: _Errors) -> None:
    refs = obj.get("object_marking_refs")
    if isinstance(refs, list):
        for ref in refs:
            if is_stix_id(ref) and not is_stix_id(ref, "marking-definition"):
                errors.add(f"object_marking_refs: {_short(ref)} is not a marking-definition id")
            if ref == obj.get("id"):
                errors.add("object_marking_refs: a marking definition cannot mark itself")
    granular = obj.get("granular_markings")
    if granular is None:
        return
    if not isinstance(granular, list):
        errors.add("granular_markings: must be a list")
        return
    for item in granular:
        if not isinstance(item, dict):
            errors.add("granular_markings: each entry must be an object")
            continue
        ref, lang, selectors = item.get("marking_ref"), item.get("lang"), item.get("selectors")
        if (ref is None) == (lang is None):
            errors.add("granular_markings: each entry needs either marking_ref or lang")
        if ref is not None and not is_stix_id(ref, "marking-definition"):
            errors.add(
                f"granular_markings.marking_ref: {_short(ref)} is not a marking-definition id"
            )
        if (
            not isinstance(selectors, list)
            or not selectors
            or not all(isinstance(s, str) and s for s in selectors)
        ):
            errors.add("granular_markings.selectors: a non-empty list of property paths")


def _check_specific(obj: Mapping[str, Any], kind: str, errors: _Errors) -> None:
    match kind:
        case "indicator":
            _check_indicator(obj, errors)
        case "malware":
            family = obj.get("is_family")
            if "is_family" in obj and not isinstance(family, bool):
                errors.add("is_family: must be true or false")
            if family is True and "name" not in obj:
                errors.add("name: required on malware when is_family is true")
        case "marking-definition":
            _check_marking_definition(obj, errors)
        case "extension-definition":
            types = obj.get("extension_types")
            if isinstance(types, list) and not all(_is_one_of(t, EXTENSION_TYPES) for t in types):
                errors.add("extension_types: each one of " + ", ".join(sorted(EXTENSION_TYPES)))
        case "phone-number" | "bank-account" | "crypto-wallet":
            _check_custom_sco(obj, kind, errors)
        case _:
            pass
    confidence = obj.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool)
        or not isinstance(confidence, int)
        or not 0 <= confidence <= 100
    ):
        errors.add("confidence: an integer from 0 to 100")
    if "revoked" in obj and not isinstance(obj["revoked"], bool):
        errors.add("revoked: must be true or false")


def _check_indicator(obj: Mapping[str, Any], errors: _Errors) -> None:
    pattern, pattern_type = obj.get("pattern"), obj.get("pattern_type")
    if "pattern" in obj and not isinstance(pattern, str):
        errors.add("pattern: must be a string")
        return
    if "pattern_type" in obj and not isinstance(pattern_type, str):
        errors.add("pattern_type: must be a string")
        return
    if pattern_type == "stix" and isinstance(pattern, str):
        for message in pattern_errors(pattern)[:3]:
            errors.add(f"pattern: {message}")


def pattern_errors(pattern: str) -> tuple[str, ...]:
    """The verdict of ``stix2patterns`` on a STIX 2.1 pattern (cached per pattern string)."""
    return _analyse_pattern(pattern)[0]


@lru_cache(maxsize=65_536)
def _analyse_pattern(pattern: str) -> tuple[tuple[str, ...], Any]:
    """Parse a pattern once: (errors, the inspector's pattern data or None).

    The same checks as ``stix2patterns.validator.run_validator`` (grammar, observed objects,
    duplicate qualifiers), from one parse tree that also yields the comparisons.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        return (f"longer than {MAX_PATTERN_LENGTH:,} characters",), None
    from stix2patterns.exceptions import ParseException
    from stix2patterns.v21 import object_validator
    from stix2patterns.v21.pattern import Pattern  # stix2patterns.pattern is STIX 2.0's
    from stix2patterns.v21.validator import DuplicateQualifierTypeError, ValidationListener

    try:
        parsed = Pattern(pattern)
        data = parsed.inspect()
    except ParseException as exc:
        return (str(exc).removeprefix("FAIL: "),), None
    except Exception:  # the ANTLR runtime can raise on pathological input
        return ("the pattern could not be parsed",), None
    errors = [str(m).removeprefix("FAIL: ") for m in object_validator.verify_object(data)]
    try:
        parsed.walk(ValidationListener())
    except DuplicateQualifierTypeError as exc:
        errors.insert(0, str(exc.args[0]))
    return tuple(errors), (None if errors else data)


def _check_marking_definition(obj: Mapping[str, Any], errors: _Errors) -> None:
    definition_type, definition = obj.get("definition_type"), obj.get("definition")
    has_extensions = isinstance(obj.get("extensions"), dict)
    if definition_type is None and not has_extensions:
        errors.add("a marking definition needs definition_type and definition, or extensions")
        return
    if definition_type is not None:
        if not isinstance(definition, dict):
            errors.add("definition: required with definition_type, an object")
        elif definition_type == "statement" and not isinstance(definition.get("statement"), str):
            errors.add("definition.statement: required for a statement marking")
        elif definition_type == "tlp" and (
            not _is_one_of(obj.get("id"), markings.TLP1_IDS)
            or TLP_MARKINGS[obj["id"]]["definition"] != definition
        ):
            errors.add("a TLP 1.0 marking must be one of the four defined by STIX 2.1")
    if has_extensions:
        spec = obj["extensions"].get(LE_HANDLING_EXTENSION)
        if isinstance(spec, dict):
            for message in handling_errors(spec):
                errors.add(f"extensions.{LE_HANDLING_EXTENSION}: {message}")


def _check_custom_sco(obj: Mapping[str, Any], kind: str, errors: _Errors) -> None:
    ext_id, _ = CUSTOM_SCOS[kind]
    extensions = obj.get("extensions")
    spec = extensions.get(ext_id) if isinstance(extensions, dict) else None
    if not isinstance(spec, dict):
        return  # someone else's type of the same name: checked as any custom type
    if spec.get("extension_type") != "new-sco":
        errors.add(f"extensions.{ext_id}: extension_type must be new-sco")
    if kind == "phone-number":
        value = obj.get("value")
        if not isinstance(value, str) or not _E164_RE.fullmatch(value):
            errors.add("value: a phone number in E.164 form ('+' and 2 to 15 digits)")
    elif kind == "bank-account":
        _check_bank_account(obj, errors)
    else:
        chain, address = obj.get("chain"), obj.get("address")
        if not isinstance(chain, str) or not _CHAIN_RE.fullmatch(chain):
            errors.add("chain: required, lower case letters, digits and hyphens (e.g. btc)")
        if not isinstance(address, str) or not _ADDRESS_RE.fullmatch(address):
            errors.add("address: required, 4-200 letters, digits or . _ - :")


def _check_bank_account(obj: Mapping[str, Any], errors: _Errors) -> None:
    iban = obj.get("iban")
    if iban is not None:
        if not isinstance(iban, str) or iban != iban.replace(" ", "").upper():
            errors.add("iban: compact and in upper case")
        elif not stdnum_iban.is_valid(iban):
            errors.add("iban: not a valid IBAN (ISO 13616)")
        return
    country, bank, number = obj.get("country"), obj.get("bank"), obj.get("number")
    if not isinstance(country, str) or not _COUNTRY_RE.fullmatch(country):
        errors.add("country: required without iban, ISO 3166 alpha-2 in upper case")
    for name, value in (("bank", bank), ("number", number)):
        if not isinstance(value, str) or not 1 <= len(value.strip()) <= 64:
            errors.add(f"{name}: required without iban, 1-64 characters")


# --- law-enforcement handling ------------------------------------------------------------------


@dataclass(frozen=True)
class HandlingSpec:
    """What one marking definition of the LE-handling extension says."""

    codes: frozenset[markings.HandlingCode]
    source_reliability: str | None
    information_accuracy: str | None
    recipients: frozenset[int]
    partner_recipients: frozenset[str]
    conditions: str


def handling_errors(spec: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    if spec.get("extension_type") != "property-extension":
        errors.append("extension_type must be property-extension")
    codes = spec.get("handling_codes", [])
    valid_codes = {c.value for c in markings.HandlingCode}
    if not isinstance(codes, list) or not all(_is_one_of(c, valid_codes) for c in codes):
        errors.append("handling_codes: a list of H0, H1, H2, H3")
    reliability = spec.get("source_reliability")
    if reliability is not None and reliability not in markings.SOURCE_RELIABILITY:
        errors.append("source_reliability: one of A, B, C, X")
    accuracy = spec.get("information_accuracy")
    if accuracy is not None and accuracy not in markings.INFORMATION_ACCURACY:
        errors.append("information_accuracy: one of 1, 2, 3, 4")
    recipients = spec.get("recipients", [])
    if not isinstance(recipients, list) or not all(
        isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in recipients
    ):
        errors.append("recipients: a list of authority ids")
    partners = spec.get("partner_recipients", [])
    if not isinstance(partners, list) or not all(
        isinstance(p, str) and 0 < len(p) <= 200 for p in partners
    ):
        errors.append("partner_recipients: a list of partner names")
    if "conditions" in spec and not isinstance(spec["conditions"], str):
        errors.append("conditions: text")
    return errors


def handling_of(marking_definition: Mapping[str, Any]) -> HandlingSpec | None:
    """The LE handling a (valid) marking definition carries, or None."""
    extensions = marking_definition.get("extensions")
    spec = extensions.get(LE_HANDLING_EXTENSION) if isinstance(extensions, Mapping) else None
    if not isinstance(spec, Mapping) or handling_errors(spec):
        return None
    return HandlingSpec(
        codes=frozenset(markings.HandlingCode(c) for c in spec.get("handling_codes", [])),
        source_reliability=spec.get("source_reliability"),
        information_accuracy=spec.get("information_accuracy"),
        recipients=frozenset(spec.get("recipients", [])),
        partner_recipients=frozenset(spec.get("partner_recipients", [])),
        conditions=str(spec.get("conditions", "")),
    )


def tlp_of_definition(marking_definition: Mapping[str, Any]) -> markings.Tlp | None:
    """The TLP level a marking definition stands for, by its id or by its content."""
    ref = marking_definition.get("id")
    if isinstance(ref, str) and ref in markings.TLP_BY_ID:
        return markings.TLP_BY_ID[ref]
    extensions = marking_definition.get("extensions")
    spec = extensions.get(markings.TLP2_EXTENSION) if isinstance(extensions, Mapping) else None
    level = spec.get("tlp_2_0") if isinstance(spec, Mapping) else None
    if level is None and marking_definition.get("definition_type") == "tlp":
        definition = marking_definition.get("definition")
        level = definition.get("tlp") if isinstance(definition, Mapping) else None
        level = "clear" if level == "white" else level
    try:
        return markings.Tlp(level) if isinstance(level, str) else None
    except ValueError:
        return None


def handling_marking(
    *,
    codes: tuple[str, ...] = (),
    source_reliability: str | None = None,
    information_accuracy: str | None = None,
    recipients: tuple[int, ...] = (),
    partner_recipients: tuple[str, ...] = (),
    conditions: str = "",
    created: datetime | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """A marking definition of the node's LE-handling extension."""
    spec: dict[str, Any] = {"extension_type": "property-extension"}
    if codes:
        spec["handling_codes"] = list(codes)
    if source_reliability:
        spec["source_reliability"] = source_reliability
    if information_accuracy:
        spec["information_accuracy"] = information_accuracy
    if recipients:
        spec["recipients"] = list(recipients)
    if partner_recipients:
        spec["partner_recipients"] = list(partner_recipients)
    if conditions:
        spec["conditions"] = conditions
    label = " ".join([*codes, (source_reliability or "") + (information_accuracy or "")]).strip()
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": f"marking-definition--{uuid.uuid4()}",
        "created": format_timestamp(created or datetime.now(UTC)),
        "name": name or f"LE handling {label}".strip(),
        "extensions": {LE_HANDLING_EXTENSION: spec},
    }


# --- identifiers -------------------------------------------------------------------------------

_SCO_KINDS: Final = {
    "ipv4-addr": "ip",
    "ipv6-addr": "ip",
    "domain-name": "domain",
    "url": "url",
    "email-addr": "email",
    "phone-number": "phone",
}
# (object type, property path) compared for equality in a pattern -> identifier kind.
_PATTERN_KINDS: Final[dict[tuple[str, tuple[str, ...]], str]] = {
    ("ipv4-addr", ("value",)): "ip",
    ("ipv6-addr", ("value",)): "ip",
    ("domain-name", ("value",)): "domain",
    ("url", ("value",)): "url",
    ("email-addr", ("value",)): "email",
    ("email-message", ("from_ref", "value")): "email",
    ("email-message", ("sender_ref", "value")): "email",
    ("network-traffic", ("src_ref", "value")): "ip",
    ("network-traffic", ("dst_ref", "value")): "ip",
    ("phone-number", ("value",)): "phone",
    ("bank-account", ("iban",)): "bank_account",
}
_HASHED: Final = frozenset({"file", "artifact"})


def identifiers_in(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The identifiers an object holds, as (kind, value) pairs for the identifier index.

    Values are raw: the index normalises them and skips those that do not normalise.
    """
    found: list[tuple[str, str]] = []
    kind = obj.get("type")
    if not isinstance(kind, str):
        return found
    if kind in _SCO_KINDS and isinstance(obj.get("value"), str):
        found.append((_SCO_KINDS[kind], obj["value"]))
    elif kind in _HASHED and isinstance(obj.get("hashes"), Mapping):
        found.extend(("file_hash", v) for v in obj["hashes"].values() if isinstance(v, str))
    elif kind == "bank-account":
        found.extend(_bank_identifiers(obj))
    elif kind == "crypto-wallet" and isinstance(obj.get("address"), str):
        chain = obj.get("chain")
        found.append(("crypto", f"{chain}:{obj['address']}" if chain else obj["address"]))
    elif (
        kind == "indicator"
        and obj.get("pattern_type") == "stix"
        and isinstance(obj.get("pattern"), str)
        and not pattern_errors(obj["pattern"])
    ):
        found.extend(pattern_identifiers(obj["pattern"]))
    return list(dict.fromkeys(found))


def _bank_identifiers(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    if isinstance(obj.get("iban"), str):
        return [("bank_account", obj["iban"])]
    parts = [obj.get("country"), obj.get("bank"), obj.get("number")]
    if all(isinstance(p, str) for p in parts):
        return [("bank_account", ":".join(str(p) for p in parts))]
    return []


def _literal(text: str) -> str | None:
    """The value of a STIX pattern string literal ('…' with \\' and \\\\ escapes), else None."""
    if len(text) < 2 or not text.startswith("'") or not text.endswith("'"):
        return None
    return re.sub(r"\\(.)", r"\1", text[1:-1])


@lru_cache(maxsize=16_384)
def pattern_identifiers(pattern: str) -> tuple[tuple[str, str], ...]:
    """(kind, value) of the simple equality comparisons of a valid STIX pattern."""
    data = _analyse_pattern(pattern)[1]
    if data is None:  # an invalid pattern holds no identifiers we trust
        return ()
    found: list[tuple[str, str]] = []
    for obj_type, comparisons in data.comparisons.items():
        chains = {
            value
            for path, op, raw in comparisons
            if list(path) == ["chain"] and op == "=" and (value := _literal(raw)) is not None
        }
        for path, op, raw in comparisons:
            if op != "=":
                continue
            value = _literal(raw)
            if value is None:
                continue
            steps = tuple(str(p) for p in path)
            kind = _PATTERN_KINDS.get((obj_type, steps))
            if kind is not None:
                found.append((kind, value))
            elif obj_type in _HASHED and len(steps) == 2 and steps[0] == "hashes":
                found.append(("file_hash", value))
            elif obj_type == "crypto-wallet" and steps == ("address",):
                chain = next(iter(chains)) if len(chains) == 1 else None
                found.append(("crypto", f"{chain}:{value}" if chain else value))
    return tuple(dict.fromkeys(found))

"""The fast STIX check against the reference validator (stix2-validator), and its helpers."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stix2validator import ValidationOptions, validate_instance

from crossborder.intel import markings, stix
from tests.intel.factories import T0, indicator, new_id, sco, sdo

PROPERTY = settings(max_examples=300, deadline=None)
OPTIONS = ValidationOptions(version="2.1")
EXAMPLES = Path(str(resources.files("stix2validator"))) / "schemas-2.1" / "examples"


def reference_valid(obj: dict[str, Any]) -> bool:
    return bool(validate_instance(obj, OPTIONS).is_valid)


def _example_objects() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for obj in data.get("objects", [data]):
            found.append((f"{path.name}:{obj['id']}", obj))
    return found


EXAMPLE_OBJECTS = _example_objects()


def test_the_examples_are_there() -> None:
    assert len(EXAMPLE_OBJECTS) > 200
    kinds = {obj["type"] for _, obj in EXAMPLE_OBJECTS}
    assert {"indicator", "malware", "relationship", "report", "campaign", "ipv4-addr"} <= kinds


@pytest.mark.parametrize(("name", "obj"), EXAMPLE_OBJECTS, ids=[n for n, _ in EXAMPLE_OBJECTS])
def test_every_example_object_is_accepted_as_by_the_reference(
    name: str, obj: dict[str, Any]
) -> None:
    assert reference_valid(obj), name
    assert stix.validate(obj) == []


def _base() -> dict[str, Any]:
    return indicator(id="indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f")


def _with(**changes: Any) -> dict[str, Any]:
    obj = _base()
    for key, value in changes.items():
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    return obj


_SDO = {"spec_version": "2.1", "created": T0, "modified": T0}
INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "id not a uuid": (_with(id="indicator--1234"), "id:"),
    "uuid without a version": (_with(id="indicator--8e2e2d2b-17d4-0cbf-938f-98ee46b3cd3f"), "id:"),
    "uuid of a wrong variant": (_with(id="indicator--8e2e2d2b-17d4-4cbf-138f-98ee46b3cd3f"), "id:"),
    "id of another type": (_with(id="malware--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"), "id:"),
    "timestamp with an offset": (_with(created="2026-03-01T10:00:00.000+01:00"), "created:"),
    "timestamp without a zone": (_with(created="2026-03-01T10:00:00.000"), "created:"),
    "date only": (_with(valid_from="2026-03-01"), "valid_from:"),
    "lower-case t": (_with(created="2026-03-01t10:00:00.000Z"), "created:"),
    "month 13": (_with(modified="2026-13-01T10:00:00.000Z"), "modified:"),
    "february 30": (_with(valid_from="2026-02-30T00:00:00Z"), "valid_from:"),
    "leap second": (_with(created="2016-12-31T23:59:60.000Z"), "created:"),
    "created without milliseconds": (_with(created="2026-03-01T10:00:00Z"), "millisecond"),
    "modified before created": (_with(modified="2026-02-01T10:00:00.000Z"), "modified:"),
    "valid_until before valid_from": (_with(valid_until="2026-01-01T00:00:00Z"), "valid_until:"),
    "valid_until equal to valid_from": (_with(valid_until=T0), "valid_until:"),
    "bad pattern": (_with(pattern="[ipv4-addr:value = "), "pattern:"),
    "bad hash in a pattern": (_with(pattern="[file:hashes.'SHA-256' = 'aa']"), "SHA-256"),
    "no pattern": (_with(pattern=None), "pattern: required"),
    "no valid_from": (_with(valid_from=None), "valid_from: required"),
    "no spec_version": (_with(spec_version=None), "spec_version"),
    "no created": (_with(created=None), "created: required"),
    "no modified": (_with(modified=None), "modified: required"),
    "created_by_ref not an id": (_with(created_by_ref="identity-1"), "created_by_ref:"),
    "no name on a threat actor": (
        {"type": "threat-actor", "id": new_id("threat-actor"), **_SDO},
        "name",
    ),
    "malware without is_family": (
        {"type": "malware", "id": new_id("malware"), "name": "x", **_SDO},
        "is_family",
    ),
    "malware family without a name": (
        {"type": "malware", "id": new_id("malware"), "is_family": True, **_SDO},
        "name",
    ),
    "sighting of nothing": (
        {"type": "sighting", "id": new_id("sighting"), **_SDO},
        "sighting_of_ref",
    ),
    "relationship without a target": (
        {
            "type": "relationship",
            "id": new_id("relationship"),
            "relationship_type": "uses",
            "source_ref": new_id("malware"),
            **_SDO,
        },
        "target_ref",
    ),
    "report without object_refs": (
        {"type": "report", "id": new_id("report"), "name": "r", "published": T0, **_SDO},
        "object_refs",
    ),
    "note without object_refs": (
        {"type": "note", "id": new_id("note"), "content": "c", **_SDO},
        "object_refs",
    ),
    "ipv4 without a value": ({"type": "ipv4-addr", "id": new_id("ipv4-addr")}, "value"),
    "file with neither hashes nor name": (
        {"type": "file", "id": new_id("file"), "size": 3},
        "hashes",
    ),
    "marking definition with no definition": (
        {
            "type": "marking-definition",
            "id": new_id("marking-definition"),
            "spec_version": "2.1",
            "created": T0,
        },
        "definition",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_what_the_reference_rejects_is_rejected_with_a_clear_reason(case: str) -> None:
    obj, reason = INVALID[case]
    assert not reference_valid(obj), f"the reference validator accepts {case}"
    errors = stix.validate(obj)
    assert errors, case
    assert any(reason in e for e in errors), errors


VALID: dict[str, dict[str, Any]] = {
    "indicator": _base(),
    "upper-case uuid (as in the examples)": _with(
        id="indicator--8E2E2D2B-17D4-4CBF-938F-98EE46B3CD3F"
    ),
    "sub-millisecond digits": _with(modified="2026-03-01T10:00:00.1234567Z"),
    "sigma pattern, not parsed": _with(pattern_type="sigma", pattern="title: anything"),
    "custom property": _with(x_acme_score=3),
    "ipv4 SCO": sco("ipv4-addr", "198.51.100.7"),
    "malware instance without a name": {
        "type": "malware",
        "id": new_id("malware"),
        "is_family": False,
        **_SDO,
    },
    "TLP 2.0 marking": stix.TLP_MARKINGS[markings.TLP2_IDS[markings.Tlp.AMBER_STRICT]],
    "TLP 1.0 marking": stix.TLP_MARKINGS[
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
    ],
    "custom SCO with a new-sco extension": {
        "type": "x-acme-thing",
        "id": new_id("x-acme-thing"),
        "extensions": {new_id("extension-definition"): {"extension_type": "new-sco"}},
    },
    "custom SDO with a new-sdo extension": {
        "type": "acme-case",
        "id": new_id("acme-case"),
        **_SDO,
        "extensions": {new_id("extension-definition"): {"extension_type": "new-sdo"}},
    },
    "node identity": stix.NODE_IDENTITY,
    "handling marking": stix.handling_marking(
        codes=("H1", "H2"), source_reliability="B", information_accuracy="2", recipients=(4,)
    ),
    "phone number": stix.custom_sco("phone-number", value="+84912345678"),
    "IBAN": stix.custom_sco("bank-account", iban="DE89370400440532013000"),
    "account without IBAN": stix.custom_sco(
        "bank-account", country="VN", bank="VCB", number="0123"
    ),
    "crypto wallet": stix.custom_sco(
        "crypto-wallet", chain="tron", address="TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    ),
    **{f"extension {d['name']}": d for d in stix.EXTENSION_DEFINITIONS.values()},
}


@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_objects_are_accepted_by_both(case: str) -> None:
    obj = VALID[case]
    assert reference_valid(obj), case
    assert stix.validate(obj) == []


STRICTER: dict[str, tuple[dict[str, Any], str]] = {
    "unknown type without an extension": (
        {"type": "x-foo", "id": new_id("x-foo"), **_SDO},
        "not a STIX 2.1 type",
    ),
    "spec_version 2.0": (_with(spec_version="2.0"), "spec_version"),
    "phone number not in E.164": (stix.custom_sco("phone-number", value="0912 345 678"), "E.164"),
    "invalid IBAN": (stix.custom_sco("bank-account", iban="DE89370400440532013001"), "IBAN"),
    "wallet without a chain": (stix.custom_sco("crypto-wallet", address="TR7NHqjeKQxGT"), "chain"),
    "handling code H9": (stix.handling_marking(codes=("H9",)), "handling_codes"),
    "a bundle as an object": ({"type": "bundle", "id": new_id("bundle")}, "bundle"),
}


@pytest.mark.parametrize("case", sorted(STRICTER))
def test_stricter_than_the_reference_where_the_node_needs_it(case: str) -> None:
    obj, reason = STRICTER[case]
    assert any(reason in e for e in stix.validate(obj)), stix.validate(obj)


def test_oversized_objects_are_refused() -> None:
    big = _with(description="x" * (stix.MAX_OBJECT_BYTES + 1))
    [error] = stix.validate(big)
    assert "larger than 1,000,000 bytes" in error


def test_null_and_empty_lists_and_bad_names_are_refused() -> None:
    errors = stix.validate({**_base(), "description": None, "labels": [], "Bad": 1})
    assert any("null" in e for e in errors)
    assert any("empty lists" in e for e in errors)
    assert any("'Bad'" in e for e in errors)


def test_a_pattern_is_parsed_once_for_its_verdict_and_its_identifiers() -> None:
    stix._analyse_pattern.cache_clear()
    stix.pattern_identifiers.cache_clear()
    for _ in range(3):
        stix.validate(_base())
        stix.identifiers_in(_base())
    info = stix._analyse_pattern.cache_info()
    assert info.misses == 1  # one parse, whatever asks


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    ["type", "id", "spec_version", "created", "modified", "pattern", "pattern_type",
     "valid_from", "valid_until", "extensions", "object_marking_refs", "granular_markings",
     "is_family", "name", "value", "hashes", "source_ref", "object_refs", "definition_type",
     "definition", "confidence", "iban", "chain", "address"]
)  # fmt: skip


@PROPERTY
@given(st.dictionaries(st.one_of(_keys, st.text(max_size=12)), _json, max_size=10))
def test_validate_never_raises(obj: dict[str, Any]) -> None:
    assert isinstance(stix.validate(obj), list)
    stix.identifiers_in(obj)
    stix.version(obj)


@PROPERTY
@given(
    st.sampled_from(sorted(VALID)),
    st.sampled_from(["type", "id", "created", "modified", "pattern", "extensions", "value"]),
    _json,
)
def test_validate_never_raises_on_damaged_objects(case: str, key: str, value: Any) -> None:
    obj = copy.deepcopy(VALID[case])
    obj[key] = value
    assert isinstance(stix.validate(obj), list)
    stix.identifiers_in(obj)


def test_identifiers_of_scos() -> None:
    assert stix.identifiers_in(sco("ipv4-addr", "198.51.100.7")) == [("ip", "198.51.100.7")]
    assert stix.identifiers_in(sco("domain-name", "evil.example")) == [("domain", "evil.example")]
    assert stix.identifiers_in(sco("email-addr", "a@evil.example")) == [("email", "a@evil.example")]
    sha = "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"
    file = {"type": "file", "id": new_id("file"), "hashes": {"SHA-256": sha}}
    assert stix.identifiers_in(file) == [("file_hash", sha)]
    assert stix.identifiers_in(VALID["phone number"]) == [("phone", "+84912345678")]
    assert stix.identifiers_in(VALID["IBAN"]) == [("bank_account", "DE89370400440532013000")]
    assert stix.identifiers_in(VALID["account without IBAN"]) == [("bank_account", "VN:VCB:0123")]
    assert stix.identifiers_in(VALID["crypto wallet"]) == [
        ("crypto", "tron:TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")
    ]


def test_identifiers_of_a_pattern_are_its_equality_comparisons() -> None:
    sha = "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"
    pattern = (
        "[ipv4-addr:value = '198.51.100.1'] OR [file:hashes.'SHA-256' = '" + sha + "'] OR "
        "[email-message:from_ref.value = 'boss@evil.example' AND url:value = 'http://e.x/a\\'b']"
        " OR [domain-name:value != 'not-this.example'] OR [ipv4-addr:value ISSUBSET '10.0.0.0/8']"
    )
    obj = _with(pattern=pattern)
    assert stix.validate(obj) == []
    assert stix.identifiers_in(obj) == [
        ("ip", "198.51.100.1"),
        ("file_hash", sha),
        ("email", "boss@evil.example"),
        ("url", "http://e.x/a'b"),
    ]
    assert stix.identifiers_in(_with(pattern="[ipv4-addr:value = ")) == []
    assert stix.identifiers_in(_with(pattern_type="sigma", pattern="x")) == []


def test_versions_and_timestamps() -> None:
    assert stix.version(_base()) == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert stix.version(sco("ipv4-addr", "198.51.100.7")) is None
    marking = stix.TLP_MARKINGS[markings.TLP2_IDS[markings.Tlp.RED]]
    assert stix.version(marking) == datetime(2022, 10, 1, tzinfo=UTC)
    assert stix.parse_timestamp("2026-03-01T10:00:00.123456789Z") == datetime(
        2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC
    )
    assert stix.format_timestamp(datetime(2026, 3, 1, 10, tzinfo=UTC)) == "2026-03-01T10:00:00.000Z"
    assert (
        stix.format_timestamp(datetime(2026, 3, 1, 10, 0, 0, 5, tzinfo=UTC))
        == "2026-03-01T10:00:00.000005Z"
    )


def test_markings_are_read_from_definitions() -> None:
    handling = stix.handling_marking(
        codes=("H1",), source_reliability="B", information_accuracy="2", recipients=(3, 4),
        partner_recipients=("token:9",), conditions="no court use",
    )  # fmt: skip
    spec = stix.handling_of(handling)
    assert spec is not None
    assert spec.codes == {markings.HandlingCode.H1}
    assert (spec.source_reliability, spec.information_accuracy) == ("B", "2")
    assert (spec.recipients, spec.partner_recipients) == ({3, 4}, {"token:9"})
    assert stix.handling_of(stix.TLP_MARKINGS[markings.TLP2_IDS[markings.Tlp.RED]]) is None
    custom_red = {
        **stix.TLP_MARKINGS[markings.TLP2_IDS[markings.Tlp.RED]],
        "id": new_id("marking-definition"),
    }
    assert stix.tlp_of_definition(custom_red) is markings.Tlp.RED
    white = stix.TLP_MARKINGS["marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"]
    assert (
        stix.tlp_of_definition({**white, "id": new_id("marking-definition")}) is markings.Tlp.CLEAR
    )


def test_custom_scos_have_deterministic_ids() -> None:
    one = stix.custom_sco("phone-number", value="+84912345678")
    two = stix.custom_sco("phone-number", value="+84912345678")
    assert one["id"] == two["id"]
    assert one["id"].split("--")[1][14] == "5"  # UUIDv5
    assert one["extensions"] == {stix.PHONE_NUMBER_EXTENSION: {"extension_type": "new-sco"}}
    assert sdo("campaign", name="x")["id"] != sdo("campaign", name="x")["id"]

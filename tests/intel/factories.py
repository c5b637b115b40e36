"""STIX objects for the intelligence tests (plain dicts, as orjson reads them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from crossborder.intel import markings, stix

T0 = "2026-03-01T10:00:00.000Z"
T1 = "2026-03-02T10:00:00.000Z"
TLP = markings.TLP2_IDS
CLEAR, GREEN, AMBER = TLP[markings.Tlp.CLEAR], TLP[markings.Tlp.GREEN], TLP[markings.Tlp.AMBER]
AMBER_STRICT, RED = TLP[markings.Tlp.AMBER_STRICT], TLP[markings.Tlp.RED]


def new_id(kind: str) -> str:
    return f"{kind}--{uuid.uuid4()}"


def sdo(kind: str, *, marked: Iterable[str] = (), **props: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": kind,
        "spec_version": "2.1",
        "id": props.pop("id", None) or new_id(kind),
        "created": props.pop("created", T0),
        "modified": props.pop("modified", T0),
        **props,
    }
    refs = list(marked)
    if refs:
        obj["object_marking_refs"] = refs
    return obj


def indicator(
    value: str = "198.51.100.1",
    *,
    kind: str = "ipv4-addr",
    marked: Iterable[str] = (),
    **props: Any,
) -> dict[str, Any]:
    pattern = f"[{kind}:value = '{value}']"
    return sdo(
        "indicator",
        marked=marked,
        name=props.pop("name", f"{kind} {value}"),
        pattern=pattern,
        pattern_type="stix",
        valid_from=props.pop("valid_from", T0),
        indicator_types=["malicious-activity"],
        **props,
    )


def sco(kind: str, value: str, *, marked: Iterable[str] = ()) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": kind,
        "spec_version": "2.1",
        "id": stix.sco_id(kind, {"value": value}),
        "value": value,
    }
    refs = list(marked)
    if refs:
        obj["object_marking_refs"] = refs
    return obj


def bundle(*objects: dict[str, Any]) -> dict[str, Any]:
    return {"type": "bundle", "id": new_id("bundle"), "objects": list(objects)}

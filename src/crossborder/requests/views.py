"""HTML pages for cooperation requests: list, draft form, detail, print view, dashboard.

Each route parses the form or query, calls the same ``requests.service`` functions as the JSON
API and renders a template; the rules live in the service and the pure modules. Every form
carries the CSRF token (``require_form_token``). Errors are shown next to the field that
caused them (the paths are the API's: ``details.custodian``, ``offences.0.code``) with a
summary at the top of the form.
"""

from __future__ import annotations

import types
import typing
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import AwareDatetime, BaseModel, ValidationError
from pydantic.fields import FieldInfo
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from crossborder.auth.deps import web_principal
from crossborder.auth.permissions import Permission, Principal
from crossborder.core.errors import Conflict, DomainError
from crossborder.deps import get_session, get_settings
from crossborder.directory import service as directory
from crossborder.directory import taxonomy
from crossborder.directory.models import Authority, ContactPoint
from crossborder.directory.taxonomy import N_
from crossborder.directory.views import reason_presenter
from crossborder.evidence import service as evidence
from crossborder.evidence.models import Attachment
from crossborder.requests import catalogue, deadlines, lifecycle, schemas, service
from crossborder.requests.models import CooperationRequest, RequestClock
from crossborder.selectors.views import identifiers_panel
from crossborder.settings import Settings
from crossborder.web.csrf import require_form_token
from crossborder.web.templating import gettext, render

router = APIRouter()

Actor = Annotated[Principal, Depends(web_principal)]
Db = Annotated[Session, Depends(get_session)]

PAGE_SIZE = 25
OFFENCE_ROWS = 3
IDENTIFIER_ROWS = 3
CONDITION_ROWS = 2
UPLOAD_CHUNK = 1024 * 1024
CSRF = [Depends(require_form_token)]

# -- labels -------------------------------------------------------------------------------

#: A label for every type-specific field of every request type (tests check completeness).
FIELD_LABELS: dict[str, str] = {
    "data_to_preserve": N_("Data to preserve"),
    "link_to_offence": N_("Link between the data and the offence"),
    "custodian": N_("Custodian of the data (service provider)"),
    "custodian_country": N_("Country of the custodian (ISO code)"),
    "system_location": N_("Location of the computer system"),
    "why_needed": N_("Why the preservation is needed"),
    "mla_will_follow": N_("A mutual legal assistance request will follow"),
    "no_user_notification": N_("The user must not be notified"),
    "partial_disclosure_requested": N_("Partial disclosure of traffic data requested"),
    "is_extension": N_("This is an extension of an earlier preservation"),
    "previous_reference": N_("Reference of the earlier preservation"),
    "preservation_reference": N_("Reference of the preservation request"),
    "data_sought": N_("Data sought"),
    "path_information_purpose": N_("Why the path of the communication is needed"),
    "investigative_authority": N_("Investigative authority"),
    "prosecutor_or_court": N_("Prosecutor or court"),
    "case_numbers": N_("Case numbers (one per line)"),
    "domestic_legal_basis": N_("Domestic legal basis"),
    "expedited": N_("Expedited handling requested"),
    "expedited_reason": N_("Why expedited handling is needed"),
    "form_of_reply": N_("Form of reply wanted"),
    "previous_preservation_reference": N_("Reference of an earlier preservation request"),
    "previous_mla_reference": N_("Reference of an earlier mutual legal assistance request"),
    "assistance_sought": N_("Assistance sought"),
    "identifiers_justification": N_("Why each identifier is linked to the offence"),
    "target": N_("Target of the collection"),
    "justification": N_("Justification"),
    "period_start": N_("Period starts"),
    "period_end": N_("Period ends"),
    "longer_period_justification": N_("Justification for a period longer than 90 days"),
    "procedure_to_follow": N_("Procedure to follow"),
    "person_identity": N_("Identity of the person"),
    "person_location": N_("Location of the person"),
    "person_nationality": N_("Nationality of the person (ISO code)"),
    "purpose": N_("Purpose"),
    "questions": N_("Questions (one per line)"),
    "persons_of_interest": N_("Persons of interest (one per line)"),
    "border_crossing": N_("Border crossing"),
    "intelligence_only_acknowledged": N_(
        "I acknowledge that the answer is intelligence, not evidence"
    ),
    "information_summary": N_("Summary of the information"),
    "reason_for_sharing": N_("Reason for sharing"),
    "nature_of_emergency": N_("Nature of the emergency"),
    "imminent_danger_to": N_("Imminent danger to"),
    "provider": N_("Service provider"),
    "why_no_mla_in_time": N_("Why a mutual legal assistance request would come too late"),
    "proposed_duration_days": N_("Proposed duration (days)"),
    "participating_authorities": N_("Participating authorities (one per line)"),
    "proposed_leader": N_("Proposed team leader"),
    "operational_arrangements": N_("Operational arrangements"),
    "person_name": N_("Name of the person"),
    "person_birth_date": N_("Date of birth"),
    "warrant_or_judgment_reference": N_("Reference of the warrant or judgment"),
    "provisional_arrest": N_("Provisional arrest requested"),
    "penalty_years": N_("Maximum penalty (years)"),
    "measure": N_("Measure"),
    "property_description": N_("Description of the property"),
    "property_location": N_("Location of the property"),
    "estimated_value": N_("Estimated value"),
    "currency": N_("Currency (ISO 4217)"),
    "order_reference": N_("Reference of the order"),
    "victim_compensation_priority": N_("Priority to compensating victims"),
    "kind": N_("Notice or diffusion"),
    "colour": N_("Colour of the notice"),
    "subject_name": N_("Name of the subject"),
    "article3_checked": N_(
        "The request is not political, military, religious or racial (INTERPOL Art 3)"
    ),
}

#: Labels of the values of the enums used by type-specific fields.
ENUM_VALUE_LABELS: dict[str, str] = {
    "life": N_("Life"),
    "physical_safety": N_("Physical safety"),
    "freeze": N_("Freeze"),
    "seize": N_("Seize"),
    "confiscate": N_("Confiscate"),
    "notice": N_("Notice"),
    "diffusion": N_("Diffusion"),
    "red": N_("Red"),
    "blue": N_("Blue"),
    "green": N_("Green"),
    "yellow": N_("Yellow"),
    "black": N_("Black"),
    "orange": N_("Orange"),
    "purple": N_("Purple"),
    "silver": N_("Silver"),
    "unsc_special": N_("INTERPOL-UN Security Council Special Notice"),
}

IDENTIFIER_KIND_LABELS: dict[str, str] = {
    "ip": N_("IP address"),
    "email": N_("E-mail address"),
    "phone": N_("Telephone number"),
    "domain": N_("Domain name"),
    "url": N_("URL"),
    "crypto": N_("Cryptocurrency address"),
    "bank_account": N_("Bank account"),
    "social_media": N_("Social media account"),
    "imei": N_("IMEI"),
    "imsi": N_("IMSI"),
    "file_hash": N_("File hash"),
    "vehicle_plate": N_("Vehicle plate"),
    "passport": N_("Passport"),
    "other": N_("Other"),
}

CLOCK_STATE_LABELS: dict[str, str] = {
    "ok": N_("On time"),
    "due_soon": N_("Due soon"),
    "overdue": N_("Overdue"),
    "met": N_("Met"),
}
CLOCK_STATE_BADGES = {"ok": "badge-ok", "due_soon": "badge-warn", "overdue": "badge-bad", "met": ""}

STATUS_BADGES: dict[str, str] = {
    "draft": "",
    "submitted": "badge-warn",
    "acknowledged": "badge-warn",
    "in_progress": "badge-warn",
    "needs_information": "badge-warn",
    "postponed": "badge-warn",
    "executed": "badge-ok",
    "partially_executed": "badge-ok",
    "refused": "badge-bad",
    "withdrawn": "badge-bad",
    "closed": "",
}

#: Timeline events that are not transitions.
EVENT_LABELS: dict[str, str] = {
    "created": N_("Draft created"),
    "edited": N_("Draft edited"),
    "attached": N_("File attached"),
    "exported": N_("Exported as a signed package"),
    **{a.value: label for a, label in lifecycle.ACTION_LABELS.items()},
}

#: Confirmation questions of the action buttons.
ACTION_CONFIRM: dict[str, str] = {
    "submit": N_("Submit this request to the requested authority?"),
    "acknowledge": N_("Acknowledge receipt of this request?"),
    "start": N_("Start work on this request?"),
    "request_information": N_("Send this request for more information?"),
    "provide_information": N_("Send this information?"),
    "postpone": N_("Postpone this request?"),
    "resume": N_("Resume work on this request?"),
    "execute": N_("Mark this request as executed?"),
    "partially_execute": N_("Mark this request as partially executed?"),
    "refuse": N_("Refuse this request? The refusal is final."),
    "withdraw": N_("Withdraw this request?"),
    "close": N_("Close this request?"),
}

#: Error messages by Pydantic error type, in the interface language.
ERROR_TYPE_MESSAGES: dict[str, str] = {
    "missing": N_("This field is required."),
    "string_too_short": N_("This field is required."),
    "enum": N_("Choose one of the listed values."),
    "literal_error": N_("Choose one of the listed values."),
    "int_parsing": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "float_parsing": N_("Enter a number."),
    "decimal_parsing": N_("Enter a number."),
    "date_from_datetime_parsing": N_("Enter a valid date."),
    "date_parsing": N_("Enter a valid date."),
    "datetime_parsing": N_("Enter a valid date and time."),
    "datetime_from_date_parsing": N_("Enter a valid date and time."),
    "timezone_aware": N_("Enter a valid date and time."),
    "too_short": N_("Give at least one entry."),
    "string_too_long": N_("This text is too long."),
    "too_long": N_("Too many entries."),
}


#: Labels of the common form fields, for the error summary.
COMMON_LABELS: dict[str, str] = {
    "receiver_authority_id": N_("Requested authority"),
    "channel": N_("Channel"),
    "urgency": N_("Urgency"),
    "urgency_justification": N_("Why it is urgent"),
    "title": N_("Title"),
    "summary_of_facts": N_("Summary of the facts"),
    "offences": N_("Offences"),
    "identifiers": N_("Identifiers"),
    "data_categories": N_("Data categories"),
    "confidentiality": N_("Confidentiality"),
    "use_conditions": N_("Conditions on the use of what you send"),
    "requested_response_by": N_("Response requested by"),
    "sender_contact_id": N_("Contact person on our side"),
    "link_request": N_("Link to an earlier request"),
    "legal_basis": N_("Legal basis"),
}
ROW_LABELS: dict[str, str] = {
    "offences": N_("Offence %(row)s"),
    "identifiers": N_("Identifier %(row)s"),
    "use_conditions": N_("Condition %(row)s"),
}


def path_label(request: Request, path: str) -> str:
    """A field path of the form (``details.custodian``, ``offences.1.code``) as a label."""
    parts = path.split(".")
    if parts[0] == "details" and len(parts) > 1 and parts[1] in FIELD_LABELS:
        return gettext(request, FIELD_LABELS[parts[1]])
    if parts[0] in ROW_LABELS and len(parts) > 1 and parts[1].isdigit():
        return gettext(request, ROW_LABELS[parts[0]]) % {"row": int(parts[1]) + 1}
    if parts[0] in COMMON_LABELS:
        return gettext(request, COMMON_LABELS[parts[0]])
    return path


def _labels() -> dict[str, Any]:
    return {
        "type_specs": catalogue.CATALOGUE,
        "status_labels": lifecycle.STATUS_LABELS,
        "status_badges": STATUS_BADGES,
        "action_labels": lifecycle.ACTION_LABELS,
        "action_confirm": ACTION_CONFIRM,
        "event_labels": EVENT_LABELS,
        "clock_labels": deadlines.CLOCK_KIND_LABELS,
        "clock_state_labels": CLOCK_STATE_LABELS,
        "clock_state_badges": CLOCK_STATE_BADGES,
        "urgency_labels": catalogue.URGENCY_LABELS,
        "channel_labels": taxonomy.CHANNEL_LABELS,
        "category_labels": taxonomy.DATA_CATEGORY_LABELS,
        "offences": taxonomy.OFFENCES,
        "condition_labels": taxonomy.CONDITION_LABELS,
        "confidentiality_labels": schemas.CONFIDENTIALITY_LABELS,
        "link_kind_labels": catalogue.LINK_KIND_LABELS,
        "ground_info": catalogue.REFUSAL_GROUNDS,
        "identifier_kind_labels": IDENTIFIER_KIND_LABELS,
        "field_labels": FIELD_LABELS,
        "enum_value_labels": ENUM_VALUE_LABELS,
        "side_labels": lifecycle.SIDE_LABELS,
    }


# -- type-specific fields, rendered generically ---------------------------------------------

_TEXTAREA_HINTS = (
    "facts",
    "summary",
    "description",
    "data",
    "justification",
    "questions",
    "purpose",
    "arrangements",
)


@dataclass(frozen=True)
class FieldSpec:
    """How one type-specific field is drawn: ``widget`` is text, textarea, lines (list of
    strings, one per line), checkbox, date, datetime (with a time zone select), select or
    number."""

    name: str
    label: str
    widget: str
    required: bool
    options: tuple[tuple[str, str], ...] = ()
    step: str = "1"
    maxlength: int | None = None
    default: Any = None

    @property
    def path(self) -> str:
        return f"details.{self.name}"


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """The base type of an annotation without Optional/Annotated, and all its metadata."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            metadata.extend(annotation.__metadata__)
            annotation = annotation.__origin__
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        else:
            return annotation, metadata


def _max_length(metadata: list[Any]) -> int | None:
    for item in metadata:
        value = getattr(item, "max_length", None)
        if isinstance(value, int):
            return value
    return None


def _field_spec(name: str, info: FieldInfo) -> FieldSpec:
    base, metadata = _unwrap(info.annotation)
    metadata = [*info.metadata, *metadata]
    required = info.is_required()
    label = FIELD_LABELS.get(name, name.replace("_", " ").capitalize())
    default = None if required else info.get_default(call_default_factory=True)
    if typing.get_origin(base) is list:
        return FieldSpec(name, label, "lines", required)
    if base is bool:
        return FieldSpec(name, label, "checkbox", required, default=default)
    if base is AwareDatetime or (isinstance(base, type) and issubclass(base, datetime)):
        return FieldSpec(name, label, "datetime", required)
    if isinstance(base, type) and issubclass(base, date):
        return FieldSpec(name, label, "date", required)
    if isinstance(base, type) and issubclass(base, Enum):
        options = tuple(
            (str(m.value), ENUM_VALUE_LABELS.get(str(m.value), str(m.value))) for m in base
        )
        return FieldSpec(name, label, "select", required, options=options)
    if base in (int, float, Decimal):
        step = "1" if base is int else "0.01"
        return FieldSpec(name, label, "number", required, step=step)
    maxlength = _max_length(metadata)
    long_text = (maxlength or 0) > 200 or any(hint in name for hint in _TEXTAREA_HINTS)
    return FieldSpec(
        name, label, "textarea" if long_text else "text", required, maxlength=maxlength
    )


def detail_fields(request_type: catalogue.RequestType) -> list[FieldSpec]:
    model = catalogue.CATALOGUE[request_type].fields_model
    return [_field_spec(name, info) for name, info in model.model_fields.items()]


# -- small helpers --------------------------------------------------------------------------


def _int(raw: str | None, default: int) -> int:
    try:
        return max(int(raw), 0) if raw else default
    except ValueError:
        return default


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _aware(raw: str, tz: str) -> datetime | str:
    """A ``datetime-local`` value read in ``tz``, as aware UTC (or the raw text if invalid)."""
    zone = _zone(tz or "UTC")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if zone is None:
        return raw
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def _local_input(value: object, tz: str) -> str:
    """A stored UTC datetime (or ISO text) as a ``datetime-local`` value in ``tz``."""
    moment: datetime
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        return ""
    zone = _zone(tz) or ZoneInfo("UTC")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _end_of_day(raw: str, tz: str) -> datetime | str:
    """A ``date`` input as the end of that day in ``tz``, in UTC (or the raw text if invalid)."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return raw
    zone = _zone(tz) or ZoneInfo("UTC")
    return datetime.combine(day, time(23, 59), tzinfo=zone).astimezone(UTC)


def _translate_error(request: Request, err: Mapping[str, Any]) -> str:
    message = ERROR_TYPE_MESSAGES.get(str(err.get("type", "")))
    if message:
        return gettext(request, message)
    return str(err.get("msg", "")).removeprefix("Value error, ")


@dataclass
class FormErrors:
    """Errors by field path (``title``, ``offences.0.code``, ``details.custodian``)."""

    by_field: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def add(self, path: str | None, message: str) -> None:
        if path:
            self.by_field.setdefault(path, []).append(message)
        else:
            self.general.append(message)

    def __bool__(self) -> bool:
        return bool(self.by_field or self.general)

    def get(self, path: str) -> list[str]:
        return self.by_field.get(path, [])

    def summary(self) -> list[tuple[str, str]]:
        out = [(path, msg) for path, msgs in self.by_field.items() for msg in msgs]
        return out + [("", msg) for msg in self.general]


# -- the draft form -------------------------------------------------------------------------


@dataclass
class ParsedDraft:
    payload: dict[str, Any]
    #: compacted list index → form row index, for offences/identifiers/use_conditions
    rows: dict[str, list[int]]
    errors: FormErrors


def _rows(form: Mapping[str, Any], prefix: str) -> list[int]:
    found = set()
    for key in form:
        if key.startswith(prefix + "."):
            part = key.split(".")[1]
            if part.isdigit() and int(part) < 100:
                found.add(int(part))
    return sorted(found)


def parse_draft(form: FormData, request_type: catalogue.RequestType, sender_tz: str) -> ParsedDraft:
    """Turn the submitted form into the API's draft shape; blank optional rows are dropped."""
    flat: dict[str, Any] = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    errors = FormErrors()
    rows: dict[str, list[int]] = {"offences": [], "identifiers": [], "use_conditions": []}
    offences = []
    for i in _rows(flat, "offences"):
        code = _text(flat, f"offences.{i}.code")
        provision = _text(flat, f"offences.{i}.national_provision")
        penalty = _text(flat, f"offences.{i}.max_penalty_years")
        if not (code or provision or penalty):
            continue
        rows["offences"].append(i)
        entry: dict[str, Any] = {"code": code, "national_provision": provision}
        if penalty:
            entry["max_penalty_years"] = penalty
        offences.append(entry)
    identifiers = []
    for i in _rows(flat, "identifiers"):
        value = _text(flat, f"identifiers.{i}.value")
        start = _text(flat, f"identifiers.{i}.window_start")
        end = _text(flat, f"identifiers.{i}.window_end")
        if not (value or start or end):
            continue
        tz = _text(flat, f"identifiers.{i}.time_zone") or sender_tz
        rows["identifiers"].append(i)
        ident: dict[str, Any] = {
            "kind": _text(flat, f"identifiers.{i}.kind"),
            "value": value,
            "time_zone": tz,
        }
        if start:
            ident["window_start"] = _aware(start, tz)
        if end:
            ident["window_end"] = _aware(end, tz)
        identifiers.append(ident)
    conditions = []
    for i in _rows(flat, "use_conditions"):
        text = _text(flat, f"use_conditions.{i}.text")
        if not text:
            continue
        rows["use_conditions"].append(i)
        conditions.append({"code": _text(flat, f"use_conditions.{i}.code"), "text": text})
    details: dict[str, Any] = {}
    for spec in detail_fields(request_type):
        key = spec.path
        raw = _text(flat, key)
        if spec.widget == "checkbox":
            details[spec.name] = key in flat
        elif spec.widget == "lines":
            lines = [line.strip() for line in str(flat.get(key, "")).splitlines()]
            details[spec.name] = [line for line in lines if line]
        elif not raw:
            continue
        elif spec.widget == "datetime":
            details[spec.name] = _aware(raw, _text(flat, key + "__tz") or sender_tz)
        else:
            details[spec.name] = raw
    payload: dict[str, Any] = {
        "request_type": request_type.value,
        "receiver_authority_id": _text(flat, "receiver_authority_id"),
        "channel": _text(flat, "channel"),
        "urgency": _text(flat, "urgency") or catalogue.Urgency.ROUTINE.value,
        "urgency_justification": _text(flat, "urgency_justification") or None,
        "title": _text(flat, "title"),
        "summary_of_facts": _text(flat, "summary_of_facts"),
        "offences": offences,
        "identifiers": identifiers,
        "data_categories": form.getlist("data_categories"),
        "confidentiality": _text(flat, "confidentiality") or None,
        "use_conditions": conditions,
        "details": details,
        "sender_contact_id": _text(flat, "sender_contact_id") or None,
    }
    for name in ("receiver_authority_id", "channel", "confidentiality"):
        if not payload[name]:
            del payload[name]  # absent, so the error says "required"
    response_by = _text(flat, "requested_response_by")
    if response_by:
        payload["requested_response_by"] = _end_of_day(response_by, sender_tz)
    link_request = _text(flat, "link_request")
    if link_request:
        payload["links"] = [{"request": link_request, "kind": _text(flat, "link_kind")}]
    return ParsedDraft(payload, rows, errors)


def _form_path(loc: tuple[Any, ...] | list[Any], rows: Mapping[str, list[int]]) -> str:
    """Map a validation location on the compacted payload back to the form's field name."""
    parts = [str(p) for p in loc]
    if len(parts) >= 2 and parts[0] in rows and parts[1].isdigit():
        index = int(parts[1])
        mapped = rows[parts[0]]
        if index < len(mapped):
            parts[1] = str(mapped[index])
    if parts and parts[0] == "links":
        return "link_request"
    return ".".join(parts)


def validate_draft(request: Request, parsed: ParsedDraft) -> schemas.DraftCreate | None:
    """Validate the common fields and the type's details together, collecting every error."""
    errors = parsed.errors
    result: schemas.DraftCreate | None = None
    try:
        result = schemas.DraftCreate.model_validate(parsed.payload)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            if loc and loc[0] == "details":
                continue
            errors.add(_form_path(loc, parsed.rows), _translate_error(request, err))
    try:
        request_type = catalogue.RequestType(parsed.payload["request_type"])
        model: type[BaseModel] = catalogue.CATALOGUE[request_type].fields_model
        model.model_validate(parsed.payload["details"])
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            path = ".".join(str(p) for p in ("details", *err["loc"][:1]))
            errors.add(path, _translate_error(request, err))
    return None if errors else result


def _domain_errors(request: Request, exc: DomainError, rows: Mapping[str, list[int]]) -> FormErrors:
    errors = FormErrors()
    listed = exc.extra.get("errors") or []
    for item in listed:
        path = str(item.get("field") or "")
        parts = tuple(path.split(".")) if path else ()
        errors.add(_form_path(parts, rows) if parts else None, str(item.get("message", "")))
    if not listed:
        errors.add(None, exc.detail)
    return errors


def _form_values_from_request(req: CooperationRequest) -> dict[str, Any]:
    """A stored draft as the flat form values the form template reads."""
    tz = req.sender.time_zone
    values: dict[str, Any] = {
        "receiver_authority_id": str(req.receiver_authority_id),
        "channel": req.channel,
        "urgency": req.urgency,
        "urgency_justification": req.urgency_justification or "",
        "title": req.title,
        "summary_of_facts": req.summary_of_facts,
        "data_categories": list(req.data_categories),
        "confidentiality": req.confidentiality,
        "sender_contact_id": str(req.sender_contact_id or ""),
        "version": str(req.version),
    }
    if req.requested_response_by is not None:
        local = req.requested_response_by.astimezone(_zone(tz) or ZoneInfo("UTC"))
        values["requested_response_by"] = local.date().isoformat()
    for i, offence in enumerate(req.offences):
        values[f"offences.{i}.code"] = offence.get("code", "")
        values[f"offences.{i}.national_provision"] = offence.get("national_provision", "")
        penalty = offence.get("max_penalty_years")
        values[f"offences.{i}.max_penalty_years"] = "" if penalty is None else f"{penalty:g}"
    for i, ident in enumerate(req.identifiers):
        zone = ident.get("time_zone") or tz
        values[f"identifiers.{i}.kind"] = ident.get("kind", "")
        values[f"identifiers.{i}.value"] = ident.get("value", "")
        values[f"identifiers.{i}.time_zone"] = zone
        for end in ("window_start", "window_end"):
            if ident.get(end):
                values[f"identifiers.{i}.{end}"] = _local_input(ident[end], zone)
    for i, cond in enumerate(req.use_conditions):
        values[f"use_conditions.{i}.code"] = cond.get("code", "")
        values[f"use_conditions.{i}.text"] = cond.get("text", "")
    for spec in detail_fields(catalogue.RequestType(req.request_type)):
        value = req.details.get(spec.name)
        key = spec.path
        if spec.widget == "checkbox":
            if value:
                values[key] = "on"
        elif spec.widget == "lines":
            values[key] = "\n".join(value or [])
        elif spec.widget == "datetime":
            values[key] = _local_input(value, tz) if value else ""
            values[key + "__tz"] = tz
        elif value is not None:
            values[key] = str(value)
    return values


def _form_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    values["data_categories"] = form.getlist("data_categories")
    return values


def _default_values(spec: catalogue.TypeSpec, sender: Authority) -> dict[str, Any]:
    values: dict[str, Any] = {
        "urgency": catalogue.Urgency.ROUTINE.value,
        "confidentiality": schemas.Confidentiality.CONFIDENTIAL.value,
        "data_categories": sorted(c.value for c in spec.default_data_categories),
    }
    if len(spec.channels) == 1:
        values["channel"] = next(iter(spec.channels)).value
    for field_spec in detail_fields(spec.code):
        if field_spec.widget == "checkbox" and field_spec.default:
            values[field_spec.path] = "on"
        if field_spec.widget == "datetime":
            values[field_spec.path + "__tz"] = sender.time_zone
    return values


def _authorities(session: Session, actor: Principal) -> list[Authority]:
    return list(directory.search_authorities(session, actor=actor, limit=200).items)


def _time_zones(authorities: list[Authority], *extra: str) -> list[str]:
    zones = {"UTC", *(a.time_zone for a in authorities), *(z for z in extra if z)}
    return sorted(zones)


def _own_contacts(session: Session, actor: Principal) -> list[ContactPoint]:
    if not actor.has(Permission.DIRECTORY_CONTACTS_READ):
        return []
    return directory.list_contact_points(session, actor.authority_id, actor=actor)


def _row_count(values: Mapping[str, Any], prefix: str, minimum: int) -> int:
    rows = _rows(values, prefix)
    return max(minimum, (rows[-1] + 1) if rows else 0)


def _render_form(
    request: Request,
    session: Session,
    actor: Principal,
    *,
    spec: catalogue.TypeSpec,
    values: dict[str, Any],
    errors: FormErrors | None = None,
    req: CooperationRequest | None = None,
    conflict: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    authorities = _authorities(session, actor)
    sender = next((a for a in authorities if a.id == actor.authority_id), None)
    sender_tz = sender.time_zone if sender else "UTC"
    extra_zones = [
        str(v)
        for k, v in values.items()
        if k.endswith((".time_zone", "__tz")) and isinstance(v, str)
    ]
    return render(
        request,
        "requests/form.html",
        {
            **_labels(),
            "spec": spec,
            "fields": detail_fields(spec.code),
            "values": values,
            "errors": errors or FormErrors(),
            "path_label": lambda path: path_label(request, path),
            "req": req,
            "conflict": conflict,
            "receivers": [a for a in authorities if a.id != actor.authority_id],
            "sender": sender,
            "sender_tz": sender_tz,
            "time_zones": _time_zones(authorities, *extra_zones),
            "own_contacts": _own_contacts(session, actor),
            "offence_rows": _row_count(values, "offences", OFFENCE_ROWS),
            "identifier_rows": _row_count(values, "identifiers", IDENTIFIER_ROWS),
            "condition_rows": _row_count(values, "use_conditions", CONDITION_ROWS),
            "channels": sorted(spec.channels, key=lambda c: list(taxonomy.Channel).index(c)),
            "link_kinds": sorted(spec.link_kinds),
            "condition_codes": list(taxonomy.ConditionCode),
            "identifier_kinds": list(schemas.IdentifierKind),
            "confidentialities": list(schemas.Confidentiality),
            "urgencies": list(catalogue.Urgency),
        },
        status=status,
    )


def _sender_tz(session: Session, actor: Principal) -> str:
    own = session.get(Authority, actor.authority_id)
    return own.time_zone if own else "UTC"


def _type_or_none(raw: str | None) -> catalogue.RequestType | None:
    try:
        return catalogue.RequestType((raw or "").strip().lower())
    except ValueError:
        return None


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# -- list and dashboard ---------------------------------------------------------------------


def _next_clock(req: CooperationRequest) -> RequestClock | None:
    open_clocks = [c for c in req.clocks if c.met_at is None]
    return min(open_clocks, key=lambda c: c.due_at) if open_clocks else None


@router.get("/requests", response_class=HTMLResponse)
def request_list(request: Request, actor: Actor, session: Db) -> HTMLResponse:
    params = request.query_params
    request_type = _type_or_none(params.get("type"))
    status = params.get("status") or ""
    if status not in {s.value for s in lifecycle.Status}:
        status = ""
    partner = _int(params.get("partner"), 0) or None
    q = (params.get("q") or "").strip()[:200]
    overdue = params.get("overdue") in {"1", "on", "true"}
    offset = _int(params.get("offset"), 0)
    page = service.list_requests(
        session,
        actor=actor,
        filters=service.Filters(
            request_type=request_type.value if request_type else None,
            partner_authority_id=partner,
            status=status or None,
            overdue=overdue,
            q=q or None,
        ),
        limit=PAGE_SIZE,
        offset=offset,
    )
    query = {
        "type": request_type.value if request_type else "",
        "partner": str(partner or ""),
        "status": status,
        "q": q,
        "overdue": "1" if overdue else "",
    }
    return render(
        request,
        "requests/list.html",
        {
            **_labels(),
            "page": page,
            "filters": query,
            "partners": [a for a in _authorities(session, actor) if a.id != actor.authority_id],
            "next_clock": _next_clock,
            "prev_offset": max(offset - PAGE_SIZE, 0) if offset > 0 else None,
            "next_offset": offset + PAGE_SIZE if offset + PAGE_SIZE < page.total else None,
            "may_write": actor.has(Permission.REQUESTS_WRITE),
        },
    )


@router.get("/requests/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, actor: Actor, session: Db) -> HTMLResponse:
    rows = service.dashboard(session, actor=actor)
    return render(request, "requests/dashboard.html", {**_labels(), "rows": rows})


# -- new request ----------------------------------------------------------------------------


@router.get("/requests/new", response_class=HTMLResponse)
def new_request(request: Request, actor: Actor, session: Db) -> Response:
    request_type = _type_or_none(request.query_params.get("type"))
    if request_type is None or not actor.has(Permission.REQUESTS_WRITE):
        return render(
            request,
            "requests/choose_type.html",
            {**_labels(), "may_write": actor.has(Permission.REQUESTS_WRITE)},
        )
    spec = catalogue.CATALOGUE[request_type]
    sender = session.get(Authority, actor.authority_id)
    values = _default_values(spec, sender) if sender else {}
    return _render_form(request, session, actor, spec=spec, values=values)


@router.post("/requests/new", response_class=HTMLResponse, dependencies=CSRF)
async def create_request(request: Request, actor: Actor, session: Db) -> Response:
    form = await request.form()
    request_type = _type_or_none(str(form.get("request_type") or ""))
    if request_type is None:
        return _redirect("/requests/new")
    spec = catalogue.CATALOGUE[request_type]
    parsed = parse_draft(form, request_type, _sender_tz(session, actor))
    data = validate_draft(request, parsed)
    values = _form_values(form)
    if data is None:
        return _render_form(
            request, session, actor, spec=spec, values=values, errors=parsed.errors, status=422
        )
    try:
        req = service.create_draft(session, data, actor=actor)
    except DomainError as exc:
        errors = _domain_errors(request, exc, parsed.rows)
        return _render_form(
            request, session, actor, spec=spec, values=values, errors=errors, status=exc.status
        )
    return _redirect(f"/requests/{req.reference}?done=created")


# -- edit a draft ---------------------------------------------------------------------------


@router.get("/requests/{ref}/edit", response_class=HTMLResponse)
def edit_request(ref: str, request: Request, actor: Actor, session: Db) -> Response:
    req = service.get_request(session, ref, actor=actor)
    if (
        req.status != lifecycle.Status.DRAFT
        or service.side_of(req, actor) is not lifecycle.Side.SENDER
    ):
        return _redirect(f"/requests/{req.reference}")
    spec = catalogue.CATALOGUE[catalogue.RequestType(req.request_type)]
    values = _form_values_from_request(req)
    return _render_form(request, session, actor, spec=spec, values=values, req=req)


@router.post("/requests/{ref}/edit", response_class=HTMLResponse, dependencies=CSRF)
async def update_request(ref: str, request: Request, actor: Actor, session: Db) -> Response:
    form = await request.form()
    req = service.get_request(session, ref, actor=actor)
    request_type = catalogue.RequestType(req.request_type)
    spec = catalogue.CATALOGUE[request_type]
    values = _form_values(form)
    values["receiver_authority_id"] = str(req.receiver_authority_id)
    parsed = parse_draft(form, request_type, req.sender.time_zone)
    parsed.payload["receiver_authority_id"] = req.receiver_authority_id
    parsed.payload.pop("links", None)
    data = validate_draft(request, parsed)
    if data is None:
        return _render_form(
            request,
            session,
            actor,
            spec=spec,
            values=values,
            errors=parsed.errors,
            req=req,
            status=422,
        )
    try:
        update = schemas.DraftUpdate(
            version=_int(_text(form, "version"), 0) or 1,
            **data.model_dump(
                exclude={"request_type", "receiver_authority_id", "links", "receiver_contact_id"}
            ),
        )
        service.update_draft(session, req.public_id, update, actor=actor)
    except Conflict as exc:
        return _render_form(
            request,
            session,
            actor,
            spec=spec,
            values=values,
            req=req,
            conflict=exc.detail,
            status=409,
        )
    except DomainError as exc:
        errors = _domain_errors(request, exc, parsed.rows)
        return _render_form(
            request,
            session,
            actor,
            spec=spec,
            values=values,
            errors=errors,
            req=req,
            status=exc.status,
        )
    return _redirect(f"/requests/{req.reference}?done=edited")


# -- detail ---------------------------------------------------------------------------------

DONE_MESSAGES: dict[str, str] = {
    "created": N_("The draft was saved."),
    "edited": N_("The draft was updated."),
    "message": N_("Your message was added to the thread."),
    "attached": N_("The file was attached."),
    "submit": N_("The request was submitted."),
    "acknowledge": N_("Receipt was acknowledged."),
    "start": N_("Work on the request has started."),
    "request_information": N_("The request for more information was sent."),
    "provide_information": N_("The information was sent."),
    "postpone": N_("The request was postponed."),
    "resume": N_("Work on the request has resumed."),
    "execute": N_("The request was marked as executed."),
    "partially_execute": N_("The request was marked as partially executed."),
    "refuse": N_("The request was refused."),
    "withdraw": N_("The request was withdrawn."),
    "close": N_("The request was closed."),
}

STALE_MESSAGE = N_(
    "Someone else changed this request since you opened it. The page now shows the current "
    "state: check it and try again."
)


def _as_datetime(value: object) -> datetime:
    """A stored ISO timestamp (JSON columns keep datetimes as text) as an aware datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _uploaders(
    session: Session, req: CooperationRequest, attachments: list[Attachment]
) -> dict[int, str]:
    """Who uploaded each attachment: the custody chain's first event, and their authority."""
    names = {req.sender_authority_id: req.sender, req.receiver_authority_id: req.receiver}
    out: dict[int, str] = {}
    for att in attachments:
        chain = evidence.custody_chain(session, att.id)
        label = chain[0].actor_label if chain else ""
        authority = names.get(att.uploaded_by_authority_id or 0)
        if authority is not None:
            label = f"{label} ({authority.short_name or authority.name})"
        out[att.id] = label
    return out


def _render_detail(
    request: Request,
    session: Session,
    actor: Principal,
    req: CooperationRequest,
    *,
    flashes: list[tuple[str, str]] | None = None,
    submit_reasons: list[str] | None = None,
    form_values: Mapping[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    spec = catalogue.CATALOGUE[catalogue.RequestType(req.request_type)]
    side = service.side_of(req, actor)
    sender_contact, receiver_contact = service.contact_persons(session, req, actor=actor)
    actor_tz = (
        req.sender.time_zone
        if side is lifecycle.Side.SENDER
        else req.receiver.time_zone
        if side is lifecycle.Side.RECEIVER
        else "UTC"
    )
    attachments = service.attachments(session, req)
    done = request.query_params.get("done", "")
    shown = list(flashes or [])
    timeline = service.timeline(session, req)
    # A reload of the page after later changes must not repeat an old confirmation.
    latest = timeline[-1].action if timeline else ""
    actions = {a.value for a in lifecycle.Action}
    if not shown and done in DONE_MESSAGES and (done not in actions or done == latest):
        shown.append(("ok", gettext(request, DONE_MESSAGES[done])))
    return render(
        request,
        "requests/detail.html",
        {
            **_labels(),
            "req": req,
            "spec": spec,
            "side": side,
            "fields": detail_fields(spec.code),
            "actions": service.available_actions(req, actor),
            "grounds": sorted(
                spec.refusal_grounds, key=lambda g: list(catalogue.RefusalGround).index(g)
            ),
            "timeline": timeline,
            "messages": service.messages(session, req),
            "attachments": attachments,
            "uploaders": _uploaders(session, req, attachments),
            "links": service.links(session, req),
            "as_dt": _as_datetime,
            "sender_contact": sender_contact,
            "receiver_contact": receiver_contact,
            "actor_tz": actor_tz,
            "flashes": shown,
            "submit_reasons": submit_reasons or [],
            "form_values": form_values or {},
            "may_write": actor.has(Permission.REQUESTS_WRITE) and side is not None,
            "is_open": req.status != lifecycle.Status.CLOSED.value,
            "max_upload_mib": max(get_settings(request).max_attachment_bytes // 2**20, 1),
            "identifiers_panel": identifiers_panel(
                session, actor, get_settings(request), "request", req.public_id
            ),
        },
        status=status,
    )


@router.get("/requests/{ref}", response_class=HTMLResponse)
def request_detail(ref: str, request: Request, actor: Actor, session: Db) -> HTMLResponse:
    req = service.get_request(session, ref, actor=actor)
    return _render_detail(request, session, actor, req)


def _transition_input(form: FormData, action: str, tz: str) -> dict[str, Any]:
    values: dict[str, Any] = {"action": action}
    for name in ("ground", "reasons"):
        raw = _text(form, name)
        if raw:
            values[name] = raw
    until = _text(form, "until")
    if until:
        values["until"] = _aware(until, tz)
    preserved = _text(form, "preserved_until")
    if preserved:
        values["preserved_until"] = _end_of_day(preserved, tz)
    version = _text(form, "version")
    if version.isdigit():
        values["version"] = int(version)
    return values


@router.post("/requests/{ref}/transition", response_class=HTMLResponse, dependencies=CSRF)
async def transition(ref: str, request: Request, actor: Actor, session: Db) -> Response:
    form = await request.form()
    action = _text(form, "action")
    kept = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != "csrf_token"}
    # The actor is on one side of the request: dates are read in their authority's zone.
    tz = _sender_tz(session, actor)
    flashes: list[tuple[str, str]] = []
    reasons: list[str] = []
    try:
        data = schemas.TransitionIn.model_validate(_transition_input(form, action, tz))
        req = service.transition(session, ref, data, actor=actor)
    except ValidationError as exc:
        status = 422
        flashes = [
            ("error", f"{'.'.join(str(p) for p in e['loc'])}: {_translate_error(request, e)}")
            for e in exc.errors(include_url=False)
        ]
    except service.NoLegalBasis as exc:
        status = exc.status
        present_reason = reason_presenter(request)
        reasons = [present_reason(r) for r in exc.refusals] or [
            str(r.get("message", "")) for r in exc.reasons
        ]
    except DomainError as exc:
        status = exc.status
        message = exc.detail
        if type(exc) is Conflict:
            message = gettext(request, STALE_MESSAGE)
        flashes = [("error", message)]
    else:
        return _redirect(f"/requests/{req.reference}?done={data.action.value}")
    session.rollback()
    current = service.get_request(session, ref, actor=actor)
    return _render_detail(
        request,
        session,
        actor,
        current,
        flashes=flashes,
        submit_reasons=reasons,
        form_values=kept,
        status=status,
    )


@router.post("/requests/{ref}/messages", response_class=HTMLResponse, dependencies=CSRF)
def post_message(
    ref: str, request: Request, actor: Actor, session: Db, body: str = Form("", max_length=20_000)
) -> Response:
    try:
        data = schemas.MessageIn.model_validate({"body": body})
        service.add_message(session, ref, data, actor=actor)
    except ValidationError:
        status, message = 422, gettext(request, N_("Write a message first."))
    except DomainError as exc:
        status, message = exc.status, exc.detail
    else:
        return _redirect(f"/requests/{ref}?done=message#thread")
    session.rollback()
    req = service.get_request(session, ref, actor=actor)
    return _render_detail(request, session, actor, req, flashes=[("error", message)], status=status)


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(UPLOAD_CHUNK):
        yield chunk


@router.post("/requests/{ref}/attachments", response_class=HTMLResponse, dependencies=CSRF)
async def upload_attachment(
    ref: str,
    request: Request,
    actor: Actor,
    session: Db,
    settings: Annotated[Settings, Depends(get_settings)],
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    if file is None or not file.filename:
        req = service.get_request(session, ref, actor=actor)
        flashes = [("error", gettext(request, N_("Choose a file to attach.")))]
        return _render_detail(request, session, actor, req, flashes=flashes, status=422)
    try:
        await service.add_attachment(
            session,
            ref,
            actor=actor,
            settings=settings,
            filename=file.filename,
            media_type=file.content_type or "application/octet-stream",
            chunks=_chunks(file),
        )
    except DomainError as exc:
        session.rollback()
        message = exc.detail
        if exc.status == 413:
            message = gettext(request, N_("The file is too large: nothing was stored."))
            message += " " + exc.detail
        req = service.get_request(session, ref, actor=actor)
        return _render_detail(
            request, session, actor, req, flashes=[("error", message)], status=exc.status
        )
    finally:
        await file.close()
    return _redirect(f"/requests/{ref}?done=attached#attachments")


@router.get("/requests/{ref}/attachments/{attachment_id}")
def download_attachment(
    ref: str,
    attachment_id: str,
    actor: Actor,
    session: Db,
    settings: Annotated[Settings, Depends(get_settings)],
) -> FileResponse:
    attachment, path = service.open_attachment(
        session, ref, attachment_id, actor=actor, settings=settings
    )
    return FileResponse(
        path,
        media_type=attachment.media_type,
        filename=attachment.filename,
        headers={"X-Content-SHA256": attachment.sha256},
    )


@router.post("/requests/{ref}/export", dependencies=CSRF)
def export_request(
    ref: str,
    actor: Actor,
    session: Db,
    settings: Annotated[Settings, Depends(get_settings)],
) -> FileResponse:
    path = service.export_package(
        session, ref, actor=actor, settings=settings, out_dir=settings.data_dir / "exports"
    )
    return FileResponse(path, media_type="application/zip", filename=path.name)


@router.get("/requests/{ref}/print", response_class=HTMLResponse)
def print_view(ref: str, request: Request, actor: Actor, session: Db) -> HTMLResponse:
    req = service.get_request(session, ref, actor=actor)
    spec = catalogue.CATALOGUE[catalogue.RequestType(req.request_type)]
    sender_contact, receiver_contact = service.contact_persons(session, req, actor=actor)
    links = service.links(session, req)
    outgoing = {link["kind"] for link in links if link["direction"] == "to"}
    if catalogue.LinkKind.EXTENDS.value in outgoing or req.details.get("is_extension"):
        kind = N_("Extension of an earlier request")
    elif outgoing & {
        catalogue.LinkKind.FOLLOWS_UP.value,
        catalogue.LinkKind.FOLLOWS_PRESERVATION.value,
    }:
        kind = N_("Follow-up to an earlier request")
    else:
        kind = N_("New request")
    return render(
        request,
        "requests/print.html",
        {
            **_labels(),
            "req": req,
            "spec": spec,
            "fields": detail_fields(spec.code),
            "links": links,
            "request_kind": kind,
            "sender_contact": sender_contact,
            "receiver_contact": receiver_contact,
            "printed_at": datetime.now(UTC),
            "as_dt": _as_datetime,
        },
    )

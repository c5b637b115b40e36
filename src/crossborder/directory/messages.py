"""Why no legal basis applies, in the officer's language (pure; no database, no request).

The policy speaks in codes with parameters (``policy.Reason``); its English ``message`` serves
the API and logs. Here each code (and variant) has a msgid, so Babel extracts it and each
catalog translates it; states, offences, channels and categories are named in the same
language (CLDR names for states, the taxonomy's labels for the rest).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from babel.dates import format_date

from crossborder.directory.policy import Reason, ReasonCode
from crossborder.directory.taxonomy import CHANNEL_LABELS, DATA_CATEGORY_LABELS, N_, OFFENCES

R = ReasonCode

REASON_TEXT: dict[tuple[ReasonCode, str | None], str] = {
    (R.NO_INSTRUMENT, None): N_(
        "No instrument binding %(sender)s and %(receiver)s is recorded in the directory."
    ),
    (R.NOT_A_PARTY, None): N_("%(party)s is not a party to %(instrument)s."),
    (R.PARTY_WITHDRAWN, None): N_("%(party)s has withdrawn from %(instrument)s."),
    (R.PARTY_NOT_IN_FORCE, "signed"): N_("%(party)s has only signed %(instrument)s."),
    (R.PARTY_NOT_IN_FORCE, "ratified"): N_(
        "%(party)s has ratified %(instrument)s, but it is not yet in force for it."
    ),
    (R.PARTY_NOT_IN_FORCE, "pending"): N_(
        "%(instrument)s enters into force for %(party)s on %(date)s."
    ),
    (R.NOT_YET_VALID, None): N_("%(instrument)s applies only from %(date)s."),
    (R.EXPIRED, None): N_("%(instrument)s expired on %(date)s; it covers nothing after that date."),
    (R.CHANNEL_OUT_OF_SCOPE, None): N_("%(instrument)s does not cover the channel “%(channel)s”."),
    (R.RESERVATION_CHANNEL, None): N_(
        "%(party)s excluded the channel “%(channel)s” from %(instrument)s by reservation."
    ),
    (R.OFFENCE_OUT_OF_SCOPE, None): N_("%(instrument)s does not cover the offence “%(offence)s”."),
    (R.RESERVATION_OFFENCE, None): N_(
        "%(party)s excluded the offence “%(offence)s” from %(instrument)s by reservation."
    ),
    (R.DATA_CATEGORY_OUT_OF_SCOPE, None): N_("%(instrument)s does not cover “%(category)s”."),
    (R.PENALTY_UNKNOWN, None): N_(
        "%(instrument)s covers “%(offence)s” only with a maximum penalty of at least "
        "%(threshold)s years; state the penalty."
    ),
    (R.PENALTY_BELOW_THRESHOLD, None): N_(
        "%(instrument)s covers “%(offence)s” only with a maximum penalty of at least "
        "%(threshold)s years (stated: %(stated)s)."
    ),
}


def _label(table: dict[str, str], code: str | None) -> str:
    return table.get(code or "", code or "")


def reason_text(
    reason: Reason,
    *,
    gettext: Callable[[str], str],
    country: Callable[[str], str],
    lang: str,
) -> str:
    """The reason in the interface language; falls back to the English message."""
    params = dict(reason.params)
    template = REASON_TEXT.get((reason.code, params.get("status")))
    if template is None:
        return reason.message

    def party(value: str | None) -> str:
        # A party is a state (ISO alpha-2) or, for agency MoUs, an authority's name.
        return country(value) if value and len(value) == 2 and value.isupper() else value or ""

    offences = {o.value: gettext(info.label) for o, info in OFFENCES.items()}
    channels = {c.value: gettext(label) for c, label in CHANNEL_LABELS.items()}
    categories = {c.value: gettext(label) for c, label in DATA_CATEGORY_LABELS.items()}
    values = {
        "instrument": reason.instrument_code or "",
        "party": party(params.get("party") or reason.subject),
        "sender": party(params.get("sender")),
        "receiver": party(params.get("receiver")),
        "offence": _label(offences, reason.subject),
        "channel": _label(channels, reason.subject),
        "category": _label(categories, reason.subject),
        "threshold": params.get("threshold", ""),
        "stated": params.get("stated", ""),
        "date": format_date(date.fromisoformat(params["date"]), "long", locale=lang)
        if "date" in params
        else "",
    }
    return gettext(template) % values

"""Reasons without a legal basis, in the officer's language."""

from __future__ import annotations

import re

import pytest

from crossborder.directory.messages import REASON_TEXT, reason_text
from crossborder.directory.policy import Reason, ReasonCode
from crossborder.web import i18n
from crossborder.web.templating import country_name


def _render(reason: Reason, lang: str) -> str:
    return reason_text(
        reason,
        gettext=i18n.translations(lang).gettext,
        country=lambda a2: country_name(a2, a2, lang),
        lang=lang,
    )


def test_every_reason_code_has_a_message() -> None:
    assert {code for code, _variant in REASON_TEXT} == set(ReasonCode)


@pytest.mark.parametrize("lang", ["vi", "bn"])
def test_every_message_is_translated_with_the_same_placeholders(lang: str) -> None:
    translations = i18n.translations(lang)
    for template in REASON_TEXT.values():
        translated = translations.gettext(template)
        assert translated != template, f"untranslated in {lang}: {template}"
        assert sorted(re.findall(r"%\(\w+\)s", translated)) == sorted(
            re.findall(r"%\(\w+\)s", template)
        )


def test_signed_only_names_the_state_in_the_interface_language() -> None:
    reason = Reason(
        "UNCC",
        ReasonCode.PARTY_NOT_IN_FORCE,
        "AU has only signed UNCC.",
        subject="AU",
        params={"status": "signed"},
    )
    assert _render(reason, "en") == "Australia has only signed UNCC."
    assert "Úc" in _render(reason, "vi")
    assert "অস্ট্রেলিয়া" in _render(reason, "bn")


def test_offence_out_of_scope_names_the_offence() -> None:
    reason = Reason("VN-MA-TIP-MOU", ReasonCode.OFFENCE_OUT_OF_SCOPE, "...", subject="THEFT_FRAUD")
    text = _render(reason, "en")
    assert "VN-MA-TIP-MOU" in text
    assert "fraud" in text.lower()


def test_expired_shows_a_localised_date() -> None:
    reason = Reason("VN-LA-BLO-MOU-2015", ReasonCode.EXPIRED, "...", params={"date": "2025-06-30"})
    assert "June 30, 2025" in _render(reason, "en")
    assert "2025" in _render(reason, "vi")


def test_agency_party_keeps_its_name() -> None:
    reason = Reason("X", ReasonCode.NOT_A_PARTY, "...", subject="Australian Federal Police")
    assert _render(reason, "en") == "Australian Federal Police is not a party to X."


def test_unknown_variant_falls_back_to_the_english_message() -> None:
    reason = Reason(
        "X",
        ReasonCode.PARTY_NOT_IN_FORCE,
        "English fallback.",
        subject="AU",
        params={"status": "something-new"},
    )
    assert _render(reason, "vi") == "English fallback."

"""Drafting, submitting and answering a preservation request between Viet Nam and Australia."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from crossborder.core.clock import utc_now
from tests.browser.conftest import ARTIFACTS, LiveServer
from tests.browser.test_shell import login

pytestmark = pytest.mark.browser


@pytest.fixture
def second_page(browser: object, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in its own browser context (another user, another cookie jar)."""
    assert isinstance(browser, Browser)
    context = browser.new_context(locale="en-GB", timezone_id="Australia/Sydney")
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-second.png"), full_page=True)
    context.close()


def draft_preservation(page: Page, server: LiveServer, title: str) -> str:
    """As the logged-in officer, draft a preservation request to AU-AFP; return its reference."""
    page.goto(server.url + "/requests")
    page.click("[data-testid=new-request]")
    page.click("[data-testid=type-card][data-type=preservation]")
    expect(page.locator("[data-testid=form-type]")).to_have_attribute("data-type", "preservation")
    afp = page.locator("#f-receiver_authority_id option[data-short='AU-AFP']")
    page.select_option("#f-receiver_authority_id", afp.get_attribute("value"))
    page.select_option("#f-channel", "point_of_contact_24_7")
    page.select_option("#f-urgency", "urgent")
    page.fill("#f-urgency_justification", "The provider keeps connection logs for 30 days.")
    page.fill("#f-title", title)
    page.fill("#f-summary_of_facts", "Ransomware encrypted a hospital's servers from a VPS.")
    page.select_option("#f-offences-0-code", "DATA_INTERFERENCE")
    page.fill("#f-offences-0-national_provision", "Penal Code Art 287")
    page.fill("#f-offences-0-max_penalty_years", "7")
    page.select_option("#f-identifiers-0-kind", "ip")
    page.fill("#f-identifiers-0-value", "203.0.113.45")
    page.fill("#f-identifiers-0-window_start", "2026-03-01T10:00")
    page.fill("#f-identifiers-0-window_end", "2026-03-01T12:30")
    for category in ("subscriber", "content"):
        page.uncheck(f"input[name=data_categories][value={category}]")
    page.check("input[name=data_categories][value=traffic]")
    page.fill("#f-details-data_to_preserve", "Connection logs of the VPS")
    page.fill("#f-details-link_to_offence", "The encryption commands came from this address.")
    page.fill("#f-details-custodian", "Example Hosting Pty Ltd")
    page.fill("#f-details-why_needed", "To identify the attacker before the logs rotate.")
    page.check("#f-details-mla_will_follow")
    page.click("[data-testid=save-draft]")
    expect(page.locator("[data-testid=status-badge]").first).to_have_attribute(
        "data-status", "draft"
    )
    return page.locator("[data-testid=request-reference]").inner_text().strip()


def test_draft_submit_and_answer_a_preservation_request(
    page: Page, second_page: Page, live_server: LiveServer
) -> None:
    title = f"Hospital ransomware {uuid.uuid4().hex[:8]}"
    page.on("dialog", lambda dialog: dialog.accept())
    second_page.on("dialog", lambda dialog: dialog.accept())

    # (a) Linh drafts and submits it.
    login(page, live_server, "linh")
    reference = draft_preservation(page, live_server, title)
    expect(page.locator("[data-testid=edit-draft]")).to_be_visible()
    page.click("[data-testid=action-submit]")
    badge = page.locator("h1 [data-testid=status-badge]")
    expect(badge).to_have_attribute("data-status", "submitted")
    expect(badge).to_have_text("Submitted")
    expect(page.locator("[data-testid=legal-basis-code]")).to_have_text("AU-VN-POLICE-MOU")
    expect(page.locator("[data-testid=conditions]")).to_contain_text(
        "Conditions attached to this data"
    )
    expect(page.locator("[data-testid=condition]")).not_to_have_count(0)
    ack = page.locator("[data-testid=clock][data-kind=acknowledgement]")
    expect(ack).to_be_visible()
    expect(ack.locator("[data-testid=clock-sender-time]")).to_contain_text("Asia/Ho_Chi_Minh")
    expect(ack.locator("[data-testid=clock-receiver-time]")).to_contain_text("Australia/Sydney")
    page.screenshot(path=str(ARTIFACTS / "requests-detail-submitted.png"), full_page=True)

    # (b) Jack at AU-AFP answers it.
    login(second_page, live_server, "jack")
    second_page.goto(live_server.url + "/requests?q=" + reference)
    second_page.click(f"[data-testid=request-row][data-reference='{reference}'] a")
    header = second_page.locator("h1 [data-testid=status-badge]")
    expect(header).to_have_attribute("data-status", "submitted")
    second_page.click("[data-testid=action-acknowledge]")
    expect(header).to_have_attribute("data-status", "acknowledged")
    second_page.click("[data-testid=action-start]")
    expect(header).to_have_attribute("data-status", "in_progress")
    until = (utc_now() + timedelta(days=90)).date().isoformat()
    second_page.fill("[data-action=execute] input[name=preserved_until]", until)
    second_page.click("[data-testid=action-execute]")
    expect(header).to_have_attribute("data-status", "executed")

    # Back as Linh: the timeline shows every step, and the preservation now has an expiry.
    page.reload()
    expect(page.locator("h1 [data-testid=status-badge]")).to_have_attribute(
        "data-status", "executed"
    )
    for action in ("created", "submit", "acknowledge", "start", "execute"):
        step = page.locator(f"[data-testid=timeline-event][data-action={action}]")
        expect(step).to_have_count(1)
    expect(page.locator("[data-testid=timeline]")).to_contain_text("jack")
    expiry = page.locator("[data-testid=clock][data-kind=preservation_expiry]")
    expect(expiry).to_be_visible()
    expect(page.locator("[data-testid=preserved-until]")).to_contain_text(re.compile(r"\d{4}"))

"""Hit/no-hit in the browser: Linh, an officer in Viet Nam, asks Morocco's BNPJ (served by
its own node, a trafficking MoU in force) whether it holds two identifiers of her case."""

from __future__ import annotations

import inspect
import re
import secrets

import pytest
from playwright.sync_api import Page, expect

import crossborder.app
from tests.browser.conftest import ARTIFACTS, LiveServer
from tests.browser.test_shell import login

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        re.search(
            r"matching import (\w+, )*views\b|matching\.views", inspect.getsource(crossborder.app)
        )
        is None,
        reason="app.py does not mount crossborder.matching.views.router yet",
    ),
]


def test_an_officer_asks_a_partner_and_sees_it_waiting(page: Page, live_server: LiveServer) -> None:
    case = f"A05-TIP-{secrets.token_hex(3)}"
    login(page, live_server, "linh")
    page.click(".mainnav >> text=Hit/no-hit")
    expect(page).to_have_url(re.compile(r"/matching$"))
    page.click("[data-testid=new-query]")
    expect(page).to_have_url(re.compile(r"/matching/new$"))

    page.fill("#mq-purpose", "Trafficking ring recruiting online: does the partner know them?")
    page.fill("#mq-case", case)
    page.select_option("#mq-offences", ["TRAFFICKING_IN_PERSONS"])
    page.fill("#mq-identifiers", "phone +84 91 234 5678\nemail,recruiter.jobs@example.com\n")
    page.click("#mq-check")
    bnpj = page.locator("[data-testid=partner][data-may-ask=yes]", has_text="BNPJ")
    expect(bnpj).to_have_count(1)
    expect(bnpj.locator("[data-testid=partner-basis]")).to_contain_text("VN-MA-TIP-MOU")
    expect(page.locator("#mq-case")).to_have_value(case)  # the input is kept
    for box in page.locator("[data-testid=partner][data-may-ask=yes] input").all():
        if box.is_checked():
            box.uncheck()
    bnpj.locator("input").check()
    page.screenshot(path=str(ARTIFACTS / "matching-new.png"), full_page=True)

    page.click("#mq-send")
    expect(page).to_have_url(re.compile(r"/matching/queries/[0-9a-f-]{36}\?done=sent"))
    expect(page.locator("[data-testid=query-case]")).to_have_text(case)
    row = page.locator("[data-testid=target-row]", has_text="BNPJ")
    expect(row).to_have_attribute("data-status", "sent")
    expect(row.locator("[data-testid=target-status]")).to_contain_text("waiting")
    expect(page.locator("[data-testid=no-hits]")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "matching-query.png"), full_page=True)

    page.click("text=Back to the queries")
    listed = page.locator("[data-testid=query-row]", has_text=case)
    expect(listed.locator("[data-testid=waiting]")).to_have_text("1")

"""The first journey: log in, switch to Vietnamese, open the directory."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DEMO_PASSWORD, LiveServer

pytestmark = pytest.mark.browser


def login(page: Page, server: LiveServer, username: str) -> None:
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("main button[type=submit]")
    expect(page.locator(".whoami")).to_have_text(username)


def test_login_switch_to_vietnamese_and_open_the_directory(
    page: Page, live_server: LiveServer
) -> None:
    login(page, live_server, "linh")
    expect(page.locator(".banner-demo")).to_be_visible()

    page.select_option("#lang-select", "vi")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.locator(".mainnav")).to_contain_text("Danh bạ")

    page.click(".mainnav >> text=Danh bạ")
    expect(page).to_have_url(re.compile(r"/directory"))
    expect(page.locator("h1")).to_contain_text("Danh bạ")
    rows = page.locator("[data-testid=authority-row]")
    expect(rows.filter(has_text="Australian Federal Police")).to_have_count(1)

    page.fill("input[name=q]", "Maroc")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Maroc")
    expect(rows.first).to_contain_text("Ma-rốc")  # the state name comes from CLDR, in Vietnamese


def test_wrong_password_is_refused_with_a_readable_message(
    page: Page, live_server: LiveServer
) -> None:
    page.goto(live_server.url + "/login")
    page.fill("#username", "linh")
    page.fill("#password", "not-the-password")
    page.click("main button[type=submit]")
    expect(page.locator(".flash-error")).to_be_visible()
    expect(page.locator(".whoami")).to_have_count(0)


def test_contact_points_show_their_local_time_and_office_hours(
    page: Page, live_server: LiveServer
) -> None:
    login(page, live_server, "linh")
    page.goto(live_server.url + "/directory?q=AU-AFP")
    page.locator("[data-testid=authority-row] a").first.click()
    expect(page.locator("[data-testid=authority-name]")).to_contain_text("Australian Federal")
    times = page.locator("[data-testid=contact-local-time]")
    expect(times).to_have_count(2)
    expect(times.first).to_contain_text("Australia/Sydney")  # shown in Sydney's own zone
    expect(page.locator("body")).to_contain_text("24/7")


def test_legal_basis_between_viet_nam_and_australia(page: Page, live_server: LiveServer) -> None:
    login(page, live_server, "linh")
    page.goto(live_server.url + "/directory/legal-basis")
    page.select_option("select[name=sender_state]", "VN")
    page.select_option("select[name=receiver_state]", "AU")
    page.select_option("select[name=channel]", "point_of_contact_24_7")
    page.select_option("select[name=offences]", ["DATA_INTERFERENCE"])
    page.check("input[name=data_categories][value=traffic]")
    page.locator("main button[type=submit]").click()
    bases = page.locator("[data-testid=policy-basis]")
    expect(bases).to_have_count(1)
    expect(bases.first).to_have_attribute("data-instrument", "AU-VN-POLICE-MOU")
    expect(bases.first).to_contain_text("Clause 4")
    expect(bases.first).to_contain_text("not to be used as evidence")
    reasons = page.locator("[data-testid=policy-reason]")
    uncc = page.locator("[data-testid=policy-reason][data-instrument=UNCC]")
    expect(uncc).to_have_count(1)
    expect(uncc).to_contain_text("Australia")  # it has only signed the Convention
    expect(reasons).not_to_have_count(0)


def test_enrol_totp_then_log_in_with_the_second_factor(page: Page, live_server: LiveServer) -> None:
    from crossborder.auth import totp
    from crossborder.core.clock import utc_now

    login(page, live_server, "minh")
    page.goto(live_server.url + "/account/totp")
    secret = page.locator("[data-testid=totp-secret]").inner_text().strip()
    step = totp.step_of(utc_now())
    page.fill("#totp-code", totp.code_at_step(secret, step))
    page.click("#totp-confirm")
    expect(page.locator("main [role=status]")).to_contain_text("Second factor enabled")

    page.locator("form[action='/logout'] button").click()
    page.goto(live_server.url + "/login")
    page.fill("#username", "minh")
    page.fill("#password", DEMO_PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(re.compile(r"/login/totp"))
    page.fill("#totp-code", totp.code_at_step(secret, step))  # replay of the used code
    page.click("#totp-submit")
    expect(page.locator("[data-testid=totp-error]")).to_be_visible()
    page.fill("#totp-code", totp.code_at_step(secret, step + 1))  # next step: accepted
    page.click("#totp-submit")
    expect(page.locator(".whoami")).to_have_text("minh")

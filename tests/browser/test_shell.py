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

"""Threat intelligence in the browser: Hoa, an analyst in Viet Nam, uploads a bundle."""

from __future__ import annotations

import inspect
import re
import secrets

import orjson
import pytest
from playwright.sync_api import FilePayload, Page, expect

import crossborder.app
from tests.browser.conftest import ARTIFACTS, LiveServer
from tests.browser.test_shell import login
from tests.intel.factories import AMBER, AMBER_STRICT, GREEN, RED, bundle, indicator

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        re.search(r"intel import (\w+, )*views\b|intel\.views", inspect.getsource(crossborder.app))
        is None,
        reason="app.py does not mount crossborder.intel.views.router yet",
    ),
]


def test_an_analyst_uploads_a_bundle_sees_the_tlp_badges_and_opens_an_object(
    page: Page, live_server: LiveServer
) -> None:
    alias = f"vn-browser-{secrets.token_hex(3)}"
    made = live_server.cli(
        "intel",
        "collection",
        "create",
        "Phishing infrastructure",
        "--alias",
        alias,
        "--as",
        "admin",
    )
    assert made.returncode == 0, made.stderr
    net = f"198.51.{secrets.randbelow(200) + 20}"
    green = indicator(f"{net}.1", marked=[GREEN], name="Phishing kit host")
    objects = [
        green,
        indicator(f"{net}.2", marked=[AMBER], name="Mail relay"),
        indicator(f"{net}.3", marked=[AMBER_STRICT], name="Informant's lead"),
        indicator(f"{net}.4", marked=[RED], name="Undercover contact"),
        {**indicator(f"{net}.5"), "id": "indicator--not-a-uuid"},
    ]

    login(page, live_server, "hoa")
    page.click(".mainnav >> text=Intelligence")
    expect(page).to_have_url(re.compile(r"/intel$"))
    page.click(f"[data-testid=collection-row][data-alias={alias}] a")
    expect(page.locator("[data-testid=collection-title]")).to_have_text("Phishing infrastructure")
    expect(page.locator("[data-testid=no-objects]")).to_be_visible()
    expect(page.locator("[data-testid=upload-limit]")).to_contain_text("crossborder intel import")

    upload: FilePayload = {
        "name": "phishing.json",
        "mimeType": "application/json",
        "buffer": orjson.dumps(bundle(*objects)),
    }
    page.set_input_files("#bundle-file", files=[upload])
    page.click("#bundle-submit")
    report = page.locator("[data-testid=import-report]")
    expect(report).to_be_visible()
    expect(report.locator("[data-testid=import-stored]")).to_have_text("4")
    expect(report.locator("[data-testid=import-present]")).to_have_text("0")
    expect(report.locator("[data-testid=import-invalid]")).to_have_text("1")
    expect(report.locator("[data-testid=import-errors]")).to_contain_text("indicator--not-a-uuid")

    badges = page.locator("[data-testid=object-list] [data-testid=tlp]")
    # newest first: the bundle's objects were added in order, so they come back reversed
    expect(badges).to_have_text(["TLP:RED", "TLP:AMBER+STRICT", "TLP:AMBER", "TLP:GREEN"])
    red = page.locator("[data-testid=object-row][data-tlp=red] [data-testid=tlp]")
    # FIRST's colours come from the stylesheet (the CSP allows no inline style).
    expect(red).to_have_css("color", "rgb(255, 43, 43)")
    expect(red).to_have_css("background-color", "rgb(0, 0, 0)")
    page.screenshot(path=str(ARTIFACTS / "intel-collection.png"), full_page=True)

    page.click("[data-testid=object-link] >> text=Phishing kit host")
    expect(page.locator("[data-testid=object-id]")).to_have_text(green["id"])
    explained = page.locator("[data-testid=tlp-explained]")
    expect(explained).to_contain_text("TLP:GREEN")
    expect(explained).to_contain_text("you may pass it on to other authorities and partners")
    expect(page.locator("[data-testid=json]")).to_contain_text(f"{net}.1")
    search = page.locator("[data-testid=identifier-search]")
    expect(search).to_have_text(f"{net}.1")
    page.screenshot(path=str(ARTIFACTS / "intel-object.png"), full_page=True)
    search.click()
    expect(page).to_have_url(re.compile(r"/identifiers\?type=ip&value=" + re.escape(f"{net}.1")))

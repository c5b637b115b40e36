"""Where else does this appear? An Australian set, a Vietnamese search, and the graph."""

from __future__ import annotations

import inspect
import re
import secrets
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, FilePayload, Page, expect

import crossborder.app
from tests.browser.conftest import ARTIFACTS, LiveServer
from tests.browser.test_shell import login

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        "selectors import views" not in inspect.getsource(crossborder.app),
        reason="app.py does not mount crossborder.selectors.views.router yet",
    ),
]


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


def new_set(page: Page, server: LiveServer, name: str, csv: str) -> str:
    """As the logged-in user, create an identifier set and import ``csv``; return its URL."""
    page.goto(server.url + "/identifiers")
    page.fill("#set-name", name)
    page.click("#set-create")
    expect(page.locator("[data-testid=set-name]")).to_have_text(name)
    upload: FilePayload = {"name": "list.csv", "mimeType": "text/csv", "buffer": csv.encode()}
    page.set_input_files("#import-file", files=[upload])
    page.click("#import-submit")
    expect(page.locator(".flash-ok")).to_contain_text("stored from")
    return page.url.split("?")[0]


def test_a_value_another_authority_holds_and_the_graph(
    page: Page, second_page: Page, live_server: LiveServer
) -> None:
    # Fresh public addresses for this run (no warning list marks 103.27.0.0/16).
    shared = f"103.27.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 2}"
    own = f"103.28.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 2}"

    # Jack, at the Australian Federal Police, keeps a set holding the shared address.
    login(second_page, live_server, "jack")
    new_set(second_page, live_server, f"Seized router {shared}", f"type,value\nip,{shared}\n")

    # Linh, in Viet Nam, searches it: she is told whom to contact, and nothing else.
    login(page, live_server, "linh")
    page.click(".mainnav >> text=Identifiers")
    expect(page).to_have_url(re.compile(r"/identifiers$"))
    page.select_option("#lk-type", "ip")
    page.fill("#lk-value", shared)
    page.click("#lk-search")
    expect(page).to_have_url(re.compile(r"value=" + re.escape(shared)))
    withheld = page.locator("[data-testid=withheld]")
    expect(withheld).to_have_count(1)
    expect(withheld).to_contain_text("Another authority holds this — contact")
    expect(withheld).to_contain_text("Australian Federal Police")
    expect(page.locator("main")).not_to_contain_text("Seized router")
    page.screenshot(path=str(ARTIFACTS / "identifiers-lookup-withheld.png"), full_page=True)

    # Her own sets: one with both addresses, one with her own address only.
    first = new_set(
        page, live_server, "Botnet panel logins", f"type,value\nip,{shared}\nip,{own}\n"
    )
    new_set(page, live_server, "Earlier case", f"type,value\nip,{own}\n")
    page.goto(first)
    panel = page.locator("[data-testid=identifiers-panel]")
    expect(panel.locator("[data-testid=record-identifier]")).to_have_count(2)
    expect(panel.locator("[data-testid=withheld]")).to_contain_text("Australian Federal Police")
    expect(panel.locator("[data-testid=hit-link]")).to_have_text("Earlier case")
    page.screenshot(path=str(ARTIFACTS / "identifiers-set.png"), full_page=True)

    page.click("[data-testid=graph-link]")
    expect(page).to_have_url(re.compile(r"/identifiers/graph\?scope=set"))
    svg = page.locator("svg[data-testid=graph-svg]")
    expect(svg).to_be_visible()
    nodes = svg.locator("[data-testid=graph-node]")
    expect(nodes).to_have_count(5)
    expect(svg.locator("[data-role=centre]")).to_have_count(1)
    expect(svg.locator("[data-role=identifier]")).to_have_count(2)
    expect(svg.locator("[data-role=record] text")).to_have_text("Earlier case")
    expect(svg.locator("[data-role=withheld] text")).to_contain_text(
        "held by Australian Federal Police"
    )
    expect(svg.locator("[data-role=withheld] title")).to_contain_text("Australian Federal Police")
    expect(svg.locator("line[data-strength=withheld]")).to_have_count(1)
    expect(svg.locator("line[data-strength=match]")).to_have_count(1)
    rows = page.locator("[data-testid=graph-row]")
    expect(rows).to_have_count(2)
    page.screenshot(path=str(ARTIFACTS / "identifiers-graph.png"), full_page=True)

    # The record node links to the other set.
    svg.locator("[data-role=record] circle").click()
    expect(page.locator("[data-testid=set-name]")).to_have_text("Earlier case")

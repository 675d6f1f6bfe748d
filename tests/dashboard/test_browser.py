"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a live server."""

import pytest

pytestmark = pytest.mark.integration


def test_a_member_signs_in_and_sees_the_overview(signed_in_page, tenant):
    from playwright.sync_api import expect

    page = signed_in_page(tenant, "owner")

    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    nav = page.get_by_role("navigation", name="Dashboard")
    expect(nav.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    expect(nav.get_by_role("link")).to_have_count(11)  # the brand and the ten pages


def test_on_a_phone_the_menu_opens_from_its_button(signed_in_page, tenant):
    from playwright.sync_api import expect

    page = signed_in_page(tenant, "viewer")
    page.set_viewport_size({"width": 390, "height": 800})
    nav = page.get_by_role("navigation", name="Dashboard")

    expect(nav).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    nav.get_by_role("link", name="Calls").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Calls")

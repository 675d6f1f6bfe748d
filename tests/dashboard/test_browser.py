"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a live server."""

import pytest

from dashboard.navigation import PAGES

pytestmark = pytest.mark.integration


def test_a_member_signs_in_and_sees_the_overview(signed_in_page, tenant):
    from playwright.sync_api import expect

    page = signed_in_page(tenant, "owner")

    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    nav = page.get_by_role("navigation", name="Dashboard")
    expect(nav.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    expect(nav.get_by_role("link")).to_have_count(1 + len(PAGES))  # the brand and each page


def test_on_a_phone_the_menu_opens_from_its_button(signed_in_page, tenant):
    from playwright.sync_api import expect

    page = signed_in_page(tenant, "viewer")
    page.set_viewport_size({"width": 390, "height": 800})
    nav = page.get_by_role("navigation", name="Dashboard")

    expect(nav).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    nav.get_by_role("link", name="Calls").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Calls")
    for path in ("/app/", "/app/calls/", "/app/callbacks/"):  # nothing wider than the phone
        page.goto(page.url.split("/app/")[0] + path)
        assert page.evaluate("document.documentElement.scrollWidth") == 390, path


# "polled": every page is beyond the process's live streams (LIVE_STREAMS_PER_PROCESS), so the
# overview follows the call by coming back every LIVE_BUSY_RETRY_SECONDS.
@pytest.mark.parametrize("stream_slots", [None, 0], ids=["streamed", "polled"])
def test_a_simulated_call_shows_live_on_the_overview_then_in_the_calls_with_its_callback(
    signed_in_page,
    processes,
    tenant,
    api,
    call_body,
    receiver,
    private_urls,
    make_contact,
    settings,
    stream_slots,
):
    from playwright.sync_api import expect

    settings.LIVE_STREAM_SECONDS = 5.0
    if stream_slots is not None:
        settings.LIVE_STREAMS_PER_PROCESS = stream_slots
        settings.LIVE_BUSY_RETRY_SECONDS = 1.0
    tenant.telephony_settings.simulator_ring_seconds = 2.0
    tenant.telephony_settings.simulator_talk_seconds = 3.0
    tenant.telephony_settings.save()
    tenant.callback_settings.url = f"{receiver.url}/callbacks"
    tenant.callback_settings.save()
    make_contact(
        tenant, "07400 123456", first_name="Ada", last_name="Lovelace", company="Analytical Engines"
    )
    processes.worker("--purge")
    page = signed_in_page(tenant, "admin")
    page.evaluate("window.neverReloaded = true")
    live = page.get_by_role("region", name="Live calls")
    expect(live).to_contain_text("No calls in progress")

    assert api.post("/api/v1/calls", call_body, format="json").status_code == 201

    row = live.get_by_role("row").filter(has_text="Ada Lovelace")
    expect(row).to_contain_text("Analytical Engines", timeout=15_000)
    expect(row).to_contain_text("Connected", timeout=15_000)
    expect(live).to_contain_text("No calls in progress", timeout=15_000)
    expect(page.locator("#answered-count")).to_have_text("1")
    assert page.evaluate("window.neverReloaded") is True

    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Calls").click()
    page.get_by_role("link", name="+447400123456").click()
    deliveries = page.get_by_role("region", name="Callbacks")
    expect(deliveries).to_contain_text("Succeeded")
    expect(deliveries).to_contain_text("HTTP 200")
    assert len(receiver.received) == 1


def test_an_admin_resends_a_failed_delivery(
    signed_in_page, processes, tenant, receiver, place_call, private_urls
):
    from playwright.sync_api import expect

    from calls import deliveries
    from calls.models import Delivery
    from calls.services import call_hang_up
    from core.scoping import tenant_scope

    tenant.callback_settings.url = f"{receiver.url}/callbacks"
    tenant.callback_settings.save()
    receiver.script = [500]
    with tenant_scope(tenant):
        call = call_hang_up(call=place_call())
        Delivery.objects.filter(call=call).update(max_attempts=1)  # its last try: fail now
        deliveries.delivery_attempt(delivery_id=str(Delivery.objects.get(call=call).pk))
    processes.worker("--purge")
    page = signed_in_page(tenant, "admin")

    page.get_by_role("link", name="Callbacks").first.click()
    page.get_by_label("State").select_option("failed")
    row = page.get_by_role("row").filter(has_text="+447400123456")
    expect(row).to_contain_text("HTTP 500")
    row.get_by_role("button", name="Resend").click()

    expect(page.get_by_role("status").filter(has_text="queued")).to_be_visible()
    with tenant_scope(tenant):
        delivery = Delivery.objects.get(call=call)
    page.goto(page.url.split("/app/")[0] + f"/app/calls/{call.call_id}")
    for _ in range(20):
        page.reload()
        if "Succeeded" in page.get_by_role("region", name="Callbacks").inner_text():
            break
        page.wait_for_timeout(500)
    callbacks = page.get_by_role("region", name="Callbacks")
    expect(callbacks).to_contain_text("Succeeded")
    expect(callbacks.get_by_role("row").filter(has_text="manual")).to_contain_text("HTTP 200")
    assert len(receiver.received) == 2
    delivery.refresh_from_db()
    assert delivery.state == "succeeded"

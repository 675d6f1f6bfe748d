"""A real browser on the softphone: Debian's Chromium driven by Playwright against a live server.

The agent opens the launch URL as a CRM's Dial button would; a real Celery worker plays the call
on the simulator; the page follows it live (server-sent events) and the agent hangs up.
"""

from urllib.parse import urlencode

import pytest

from calls.models import Call
from core.scoping import tenant_scope
from tenants.models import ApiKey

pytestmark = pytest.mark.integration


def test_an_agent_launches_a_call_watches_it_connect_live_and_hangs_up(
    chromium, live_server, processes, tenant, caller_id, agent, make_key, make_contact
):
    from playwright.sync_api import expect

    tenant.telephony_settings.simulator_ring_seconds = 2.0
    tenant.telephony_settings.simulator_talk_seconds = 60.0  # the agent ends this call
    tenant.telephony_settings.save()
    make_contact(
        tenant,
        "07400 123456",
        first_name="Ada",
        last_name="Lovelace",
        company="Analytical Engines Ltd",
        crm_url="https://crm.example.com/contacts/42",
        owner=agent,
        custom_fields={"tier": "gold"},
    )
    key = make_key(tenant, ApiKey.Kind.BROWSER)
    params = {
        "crm_username": "agent.017",
        "api_key": key,
        "to_number": "07400 123456",
        "from_number": "020 7946 0000",
    }
    processes.worker("--purge")
    page = chromium.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{live_server.url}/webphone/launch?{urlencode(params)}")
    page.evaluate("window.neverReloaded = true")
    status = page.get_by_role("status")

    assert "/webphone/calls/" in page.url and key not in page.url
    expect(status).to_have_attribute("data-state", "answered", timeout=20_000)
    expect(status).to_have_text("Connected")
    expect(page.get_by_role("button", name="Transfer")).to_be_enabled()
    assert page.evaluate("window.neverReloaded") is True
    card = page.get_by_role("complementary")
    for text in ("Ada Lovelace", "Analytical Engines Ltd", "agent.017", "tier", "gold"):
        expect(card).to_contain_text(text)
    link = page.get_by_role("link", name="Open in CRM")
    assert link.get_attribute("href") == "https://crm.example.com/contacts/42"

    page.get_by_role("button", name="Hang up").click()

    expect(status).to_have_attribute("data-state", "ended", timeout=10_000)
    expect(status).to_have_text("Call ended")
    expect(page.get_by_role("button", name="Hang up")).to_be_disabled()
    assert page.evaluate("window.neverReloaded") is True
    assert problems == []
    with tenant_scope(tenant):
        call = Call.objects.get()
        kinds = list(call.events.order_by("occurred_at").values_list("kind", flat=True))
    assert (call.call_type, call.state, call.status) == ("browser", "ended", "ANSWER")
    assert kinds == ["initiated", "agent_ringing", "customer_ringing", "answered", "ended"]


def test_an_inbound_call_pops_up_on_the_agents_console_with_the_caller_card(
    chromium, live_server, processes, tenant, agent, make_key, make_contact, api, tmp_path
):
    from playwright.sync_api import expect

    make_contact(
        tenant, "07400 123456", first_name="Ada", last_name="Lovelace",
        company="Analytical Engines Ltd", crm_url="https://crm.example.com/contacts/42",
        custom_fields={"tier": "gold"},
    )  # fmt: skip
    key = make_key(tenant, ApiKey.Kind.BROWSER)
    processes.worker("--purge")
    page = chromium.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{live_server.url}/webphone/?crm_username=agent.017&api_key={key}")
    expect(page.get_by_role("status")).to_have_text("Ready for calls", timeout=10_000)
    call = {"call_id": "pbx-77", "direction": "inbound", "from": "+447400123456",
            "to": "+442079460000", "crm_username": "agent.017"}  # fmt: skip

    for kind in ("call.start", "call.ringing"):
        body = {"id": f"pbx-77-{kind}", "type": kind, **call}
        assert api.post("/api/v1/telephony/events", body, format="json").status_code == 202
    popup = page.locator(".popup")

    expect(popup).to_contain_text("Incoming call", timeout=15_000)
    for text in ("Ada Lovelace", "Analytical Engines Ltd", "tier", "gold", "+447400123456"):
        expect(popup).to_contain_text(text)
    expect(popup.get_by_role("link", name="Open in CRM")).to_have_attribute(
        "href", "https://crm.example.com/contacts/42"
    )
    page.screenshot(path=str(tmp_path / "console-ringing.png"), full_page=True)
    answered = {"id": "pbx-77-answer", "type": "call.answered", **call}
    assert api.post("/api/v1/telephony/events", answered, format="json").status_code == 202
    expect(popup.locator(".popup-state")).to_have_text("Connected", timeout=15_000)
    controls = popup.get_by_role("link", name="Open the call")
    assert "/webphone/calls/" in (controls.get_attribute("href") or "")
    assert problems == []

"""The agent console (/webphone/): the agent's inbound calls pop up with the caller card."""

import json
from urllib.parse import urlencode

import pytest

from calls import events
from core.scoping import tenant_scope
from tenants.models import Agent, ApiKey

pytestmark = pytest.mark.django_db

CALLER = "+447400123456"


@pytest.fixture
def console_url(make_key, tenant, agent) -> str:
    key = make_key(tenant, ApiKey.Kind.BROWSER)
    return f"/webphone/?{urlencode({'crm_username': agent.crm_username, 'api_key': key})}"


def ring(tenant, call_id: str, crm_username: str, direction: str = "inbound") -> None:
    """A phone system reports a call ringing for an agent; the worker applies it."""
    body = {
        "id": f"{call_id}-ring", "type": "call.ringing", "call_id": call_id, "ringing": "agent",
        "direction": direction, "from": CALLER, "to": "+442079460000",
        "crm_username": crm_username,
    }  # fmt: skip
    if direction == "outbound":
        body["from"], body["to"] = body["to"], body["from"]
    with tenant_scope(tenant):
        row, _ = events.telephony_event_accept(tenant=tenant, body=body, source="json")
        events.telephony_event_process(event_pk=row.pk)


def snapshot(client, console_page: str) -> dict:
    response = client.get(f"{console_page}/events")
    frames = b"".join(response.streaming_content).decode().split("\n\n")
    [data] = [f.split("data: ", 1)[1] for f in frames if "event: snapshot" in f.split("\n")]
    return json.loads(data)


def test_the_console_url_opens_the_agents_console_without_the_key_in_it(client, console_url):
    response = client.get(console_url)

    assert response.status_code == 303
    assert response["Location"].startswith("/webphone/agents/")
    assert "cbb_" not in response["Location"]
    page = client.get(response["Location"])
    assert page.status_code == 200 and "No call is ringing for you." in page.text
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]


@pytest.mark.parametrize(
    "params, status, field",
    [({}, 400, "crm_username"), ({"crm_username": "agent.017"}, 400, "api_key")],
)
def test_a_console_url_missing_a_parameter_says_which(client, params, status, field):
    response = client.get(f"/webphone/?{urlencode(params)}")

    assert response.status_code == status and f"<code>{field}</code>" in response.text


def test_a_forged_token_or_a_deactivated_agent_finds_no_console(client, console_url, agent):
    page = client.get(console_url)["Location"]
    agent.is_active = False
    agent.save()

    assert client.get(page).status_code == 404
    assert client.get("/webphone/agents/forged-token").status_code == 404


def test_only_the_agents_inbound_calls_pop_up_with_their_card(
    client, console_url, tenant, agent, make_contact, settings
):
    settings.LIVE_STREAM_SECONDS = 0.2
    make_contact(tenant, CALLER, first_name="Ada", last_name="Lovelace", company="Engines Ltd")
    with tenant_scope(tenant):
        Agent(tenant=tenant, crm_username="agent.018").save()
    ring(tenant, "pbx-mine", "agent.017")
    ring(tenant, "pbx-theirs", "agent.018")
    ring(tenant, "pbx-outbound", "agent.017", direction="outbound")
    page = client.get(console_url)["Location"]

    [call] = snapshot(client, page)["calls"]

    assert (call["state"], call["customer_number"]) == ("agent_ringing", CALLER)
    assert "Ada Lovelace" in call["card_html"] and "Engines Ltd" in call["card_html"]
    assert call["page"].startswith("/webphone/calls/")
    assert client.get(call["page"]).status_code == 200


def test_another_tenants_console_sees_none_of_these_calls(
    client, tenant, other_tenant, make_key, settings
):
    settings.LIVE_STREAM_SECONDS = 0.2
    ring(tenant, "pbx-mine", "agent.017")
    with tenant_scope(other_tenant):
        Agent(tenant=other_tenant, crm_username="agent.017").save()
    key = make_key(other_tenant, ApiKey.Kind.BROWSER)
    page = client.get(f"/webphone/?crm_username=agent.017&api_key={key}")["Location"]

    assert snapshot(client, page)["calls"] == []

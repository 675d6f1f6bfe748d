"""Agents and numbers page: agents CRUD by the API's rules, launch URL and Dial link, numbers."""

import pytest

from core.scoping import tenant_scope
from tenants.models import Agent, AuditEntry, CallerIdNumber
from tests.dashboard.helpers import form_data

pytestmark = pytest.mark.django_db

ISOLATED_ROUTES = {"agents/", "agents/new", "agents/<int:pk>/edit", "agents/<int:pk>/delete"}


@pytest.fixture
def priya(tenant, make_agent) -> Agent:
    return make_agent(tenant, "agent.017", display_name="Priya Shah", email="priya@acme.test")


@pytest.fixture
def caller_id(tenant) -> CallerIdNumber:
    with tenant_scope(tenant):
        return CallerIdNumber.objects.create(tenant=tenant, number="+442045205700", label="Sales")


def test_empty_states_say_where_agents_and_numbers_come_from(admin_client):
    page = admin_client.get("/app/agents/").text

    assert "No agents yet" in page and "No caller-ID numbers yet" in page
    assert "Add an agent" in page


def test_each_agent_has_a_launch_url_and_a_dial_link(admin_client, priya, caller_id, settings):
    settings.PUBLIC_BASE_URL = "https://callbridge.example.com"

    page = admin_client.get("/app/agents/").text

    url = (
        "https://callbridge.example.com/webphone/launch?crm_username=agent.017"
        "&amp;api_key=YOUR_BROWSER_KEY&amp;to_number={customer_number}&amp;from_number=%2B442045205700"
    )
    assert url in page
    assert f"&lt;a href=&quot;{url}" in page or f'&lt;a href="{url}' in page
    assert "Copy Dial link" in page and "+442045205700" in page and "Sales" in page


def test_an_agent_is_added_once_with_its_number_in_e164(admin_client, tenant):
    page = admin_client.get("/app/agents/new")
    data = form_data(
        page,
        crm_username="agent.042",
        display_name="Sam Okafor",
        extension="1042",
        email="sam@acme.test",
        phone_number="020 4520 5799",
        is_active="on",
    )

    first = admin_client.post("/app/agents/new", data)
    again = admin_client.post("/app/agents/new", data)

    assert first.status_code == 302 and again.status_code == 200
    assert "already submitted" in again.text or "exists" in again.text
    with tenant_scope(tenant):
        agent = Agent.objects.get()
        entry = AuditEntry.objects.get(action="agent.create")
    assert (agent.crm_username, agent.phone_number) == ("agent.042", "+442045205799")
    assert entry.changes["crm_username"] == [None, "agent.042"]


def test_bad_input_is_a_form_error_beside_the_field(admin_client, priya, tenant):
    page = admin_client.get("/app/agents/new")

    taken = admin_client.post("/app/agents/new", form_data(page, crm_username="agent.017"))
    bad_phone = admin_client.post(
        "/app/agents/new", form_data(page, crm_username="agent.9", phone_number="12")
    )
    bad_email = admin_client.post(
        "/app/agents/new", form_data(page, crm_username="agent.9", email="nope")
    )
    missing = admin_client.post("/app/agents/new", form_data(page))

    assert taken.status_code == 200 and 'id="id_crm_username_error"' in taken.text
    assert "exists" in taken.text
    assert bad_phone.status_code == 200 and 'id="id_phone_number_error"' in bad_phone.text
    assert bad_email.status_code == 200 and 'id="id_email_error"' in bad_email.text
    assert missing.status_code == 200 and 'id="id_crm_username_error"' in missing.text
    with tenant_scope(tenant):
        assert Agent.objects.count() == 1


def test_an_agent_is_edited_and_removed(admin_client, priya, tenant):
    page = admin_client.get(f"/app/agents/{priya.pk}/edit")
    assert 'value="agent.017"' in page.text

    edited = admin_client.post(
        f"/app/agents/{priya.pk}/edit",
        form_data(page, crm_username="agent.017", display_name="Priya S.", extension="2000"),
    )
    confirm = admin_client.get(f"/app/agents/{priya.pk}/delete")
    removed = admin_client.post(f"/app/agents/{priya.pk}/delete")

    assert edited.status_code == 302
    assert "Remove Priya S.?" in confirm.text
    assert removed.status_code == 302
    with tenant_scope(tenant):
        assert not Agent.objects.exists()
        actions = set(AuditEntry.objects.values_list("action", flat=True))
        update = AuditEntry.objects.get(action="agent.update")
    assert actions == {"agent.update", "agent.delete"}
    assert update.changes["extension"] == ["1093", "2000"]
    assert update.changes["is_active"] == [True, False]


def test_a_viewer_sees_agents_but_no_write_control(viewer_client, priya, caller_id):
    page = viewer_client.get("/app/agents/").text

    assert "agent.017" in page and "Add an agent" not in page and "Edit" not in page
    assert viewer_client.get("/app/agents/new").status_code == 403
    assert viewer_client.post("/app/agents/new", {"crm_username": "x"}).status_code == 403
    assert viewer_client.post(f"/app/agents/{priya.pk}/edit").status_code == 403
    assert viewer_client.post(f"/app/agents/{priya.pk}/delete").status_code == 403


def test_another_tenant_sees_none_of_the_agents_or_numbers(other_client, priya, caller_id):
    page = other_client.get("/app/agents/").text

    assert "agent.017" not in page and "+442045205700" not in page
    for route in ("edit", "delete"):
        assert other_client.get(f"/app/agents/{priya.pk}/{route}").status_code == 404
        assert other_client.post(f"/app/agents/{priya.pk}/{route}").status_code == 404
    other_client.post(
        "/app/agents/new", form_data(other_client.get("/app/agents/new"), crm_username="agent.017")
    )
    with tenant_scope(priya.tenant_id):
        assert Agent.objects.get().display_name == "Priya Shah"

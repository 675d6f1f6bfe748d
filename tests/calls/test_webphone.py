"""The browser softphone (seed 002): the launch URL, the agent's call page and its controls."""

from io import StringIO
from urllib.parse import urlencode

import pytest
from django.core import signing
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from calls.models import Call, CallEvent, CallState
from calls.services import call_event_record
from calls.webphone.access import PAGE_SALT, page_token
from core.scoping import tenant_scope
from tenants.models import Agent, ApiKey, CallerIdNumber
from tenants.services import api_key_revoke
from tests.calls.conftest import FROM_NUMBER

pytestmark = pytest.mark.django_db

CUSTOMER = "+447400123456"


@pytest.fixture
def browser_key(make_key, tenant, caller_id, agent) -> str:
    return make_key(tenant, ApiKey.Kind.BROWSER)


def launch_url(**params: str) -> str:
    return f"/webphone/launch?{urlencode(params)}"


@pytest.fixture
def params(browser_key) -> dict:
    """The four seed 002 parameters, written the way a CRM substitutes them."""
    return {
        "crm_username": "agent.017",
        "api_key": browser_key,
        "to_number": "07400 123456",
        "from_number": "020 7946 0000",
    }


@pytest.fixture
def launched(client, params, tenant) -> tuple[Call, str]:
    """Launch a call; return it with its page's path."""
    response = client.get(launch_url(**params))
    assert response.status_code == 303, response.content
    with tenant_scope(tenant):
        return Call.objects.get(), response["Location"]


def test_a_launch_places_a_browser_call_and_sends_the_agent_to_its_page(
    client, params, tenant, agent
):
    response = client.get(launch_url(**params))

    assert response.status_code == 303
    location = response["Location"]
    assert location.startswith("/webphone/calls/")
    assert params["api_key"] not in location
    with tenant_scope(tenant):
        call = Call.objects.get()
        assert (call.call_type, call.direction, call.state) == ("browser", "outbound", "initiated")
        assert (call.customer_number, call.from_number) == (CUSTOMER, FROM_NUMBER)
        assert (call.agent, call.crm_username) == (agent, "agent.017")
        assert list(call.events.values_list("kind", flat=True)) == ["initiated"]
    page = client.get(location)
    assert page.status_code == 200
    assert params["api_key"] not in page.content.decode()


def test_a_launch_with_the_crms_uuid_places_one_call_that_carries_it(client, params, tenant):
    first = client.get(launch_url(**params, uuid="crm-activity-7"))
    again = client.get(launch_url(**params, uuid="crm-activity-7"))  # a double click
    elsewhere = client.get(
        launch_url(**{**params, "to_number": "07400 999999"}, uuid="crm-activity-7")
    )

    assert (first.status_code, again.status_code) == (303, 303)
    assert again["Location"] == first["Location"]
    assert elsewhere.status_code == 409 and "<code>uuid</code>" in elsewhere.content.decode()
    with tenant_scope(tenant):
        assert list(Call.objects.values_list("uuid", flat=True)) == ["crm-activity-7"]


def revoked(make_key, tenant) -> str:
    plaintext = make_key(tenant, ApiKey.Kind.BROWSER)
    with tenant_scope(tenant):
        api_key_revoke(api_key=ApiKey.objects.get(prefix=plaintext[:12]))
    return plaintext


def deactivated_agent(tenant) -> None:
    with tenant_scope(tenant):
        Agent.objects.filter(crm_username="agent.017").update(is_active=False)


def deactivated_tenant(tenant) -> None:
    tenant.is_active = False
    tenant.save()


def other_tenants_number(other_tenant) -> None:
    with tenant_scope(other_tenant):
        CallerIdNumber(tenant=other_tenant, number="+442079460001").save()


BAD_LAUNCHES = {
    # name: (change to the good parameters, status, code, field)
    "no crm_username": ({"crm_username": None}, 400, "missing_parameter", "crm_username"),
    "no api_key": ({"api_key": None}, 400, "missing_parameter", "api_key"),
    "no to_number": ({"to_number": None}, 400, "missing_parameter", "to_number"),
    "no from_number": ({"from_number": None}, 400, "missing_parameter", "from_number"),
    "empty to_number": ({"to_number": "  "}, 400, "missing_parameter", "to_number"),
    "unknown key": ({"api_key": "cbb_Nope1234_not-a-real-key"}, 401, "unknown_key", "api_key"),
    "revoked key": ({"api_key": revoked}, 401, "revoked_key", "api_key"),
    "server key": (
        {"api_key": lambda make_key, tenant: make_key(tenant)},
        403,
        "wrong_key_kind",
        "api_key",
    ),
    "unknown agent": ({"crm_username": "agent.999"}, 403, "unknown_agent", "crm_username"),
    "inactive agent": ({"setup": deactivated_agent}, 403, "inactive_agent", "crm_username"),
    "deactivated tenant": ({"setup": deactivated_tenant}, 403, "tenant_inactive", None),
    "unassigned from_number": (
        {"from_number": "+44 20 7946 0999"},
        400,
        "unknown_caller_id",
        "from_number",
    ),
    "another tenant's from_number": (
        {"from_number": "+442079460001", "other_setup": other_tenants_number},
        400,
        "unknown_caller_id",
        "from_number",
    ),
    "unreadable from_number": ({"from_number": "main line"}, 400, "invalid_number", "from_number"),
    "overlong uuid": ({"uuid": "x" * 256}, 400, "invalid_parameter", "uuid"),
    "unreadable to_number": ({"to_number": "12"}, 400, "invalid_number", "to_number"),
    "letters for to_number": ({"to_number": "call me"}, 400, "invalid_number", "to_number"),
}


@pytest.mark.parametrize("case", BAD_LAUNCHES, ids=list(BAD_LAUNCHES))
def test_a_bad_launch_says_what_is_wrong_and_places_no_call(
    case, client, params, tenant, other_tenant, make_key
):
    change, status, code, field = BAD_LAUNCHES[case]
    change = dict(change)
    if setup := change.pop("setup", None):
        setup(tenant)
    if other_setup := change.pop("other_setup", None):
        other_setup(other_tenant)
    for name, value in change.items():
        if value is None:
            del params[name]
        else:
            params[name] = value(make_key, tenant) if callable(value) else value

    response = client.get(launch_url(**params))

    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "The call was not placed" in page
    assert f"<code>{code}</code>" in page
    if field:
        assert f"<code>{field}</code>" in page
    with tenant_scope(tenant):
        assert Call.objects.count() == 0
        assert CallEvent.objects.count() == 0


def test_a_server_key_in_a_launch_url_is_refused_with_advice_to_rotate_it(
    client, params, make_key, tenant
):
    params["api_key"] = make_key(tenant)

    page = client.get(launch_url(**params)).content.decode()

    assert "server key" in page and "rotate" in page


@pytest.mark.parametrize("method", ["post", "head", "put"])
def test_only_a_get_launches(params, tenant, method):
    client = Client(enforce_csrf_checks=True)  # as a browser posts: no CSRF 403 page first
    response = getattr(client, method)(launch_url(**params))

    assert response.status_code == 405
    with tenant_scope(tenant):
        assert not Call.objects.exists()


def test_the_call_page_shows_the_caller_card_and_the_live_status(
    client, params, tenant, agent, make_contact
):
    make_contact(
        tenant,
        "+44 7400 123456",
        first_name="Ada",
        last_name="Lovelace",
        company="Analytical Engines Ltd",
        crm_url="https://crm.example.com/contacts/42",
        owner=agent,
        custom_fields={"tier": "gold", "language": "en"},
    )
    location = client.get(launch_url(**params))["Location"]

    response = client.get(location)

    page = response.content.decode()
    assert response.status_code == 200
    for text in ("Ada Lovelace", "Analytical Engines Ltd", "tier", "gold", "language", CUSTOMER):
        assert text in page
    assert 'href="https://crm.example.com/contacts/42"' in page
    assert 'data-state="initiated"' in page
    assert f'data-events-url="{location}/events"' in page
    assert response["Referrer-Policy"] == "no-referrer"
    assert "script-src" not in response["Content-Security-Policy"]  # 'self' by default-src
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_the_call_page_is_framed_by_nobody_until_the_tenant_lists_its_crms_origin(
    client, launched, api
):
    _, location = launched
    before = client.get(location)

    listed = api.patch(
        "/api/v1/tenant",
        {"webphone_frame_origins": ["https://acme.my.salesforce.com", "https://*.hubspot.com"]},
        format="json",
    )
    after = client.get(location)

    assert before["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in before["Content-Security-Policy"]
    assert listed.status_code == 200, listed.json()
    assert "X-Frame-Options" not in after
    assert after["Content-Security-Policy"].endswith(
        "frame-ancestors https://acme.my.salesforce.com https://*.hubspot.com"
    )


@pytest.mark.parametrize(
    "origins",
    [
        ["http://crm.example.com"],
        ["https://crm.example.com/app"],
        ["https://crm.example.com 'unsafe-inline'"],
        ["*"],
        "https://crm.example.com",
    ],
)
def test_an_origin_that_is_not_plain_https_is_a_400(api, origins):
    response = api.patch("/api/v1/tenant", {"webphone_frame_origins": origins}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "webphone_frame_origins"


def test_an_unknown_caller_is_said_to_be_unknown(client, launched):
    _, location = launched

    assert "Unknown caller" in client.get(location).content.decode()


def test_a_crm_link_that_is_not_a_web_address_is_not_linked(client, params, tenant, make_contact):
    contact = make_contact(tenant, "+447400123456", first_name="Eve")
    with tenant_scope(tenant):
        type(contact).objects.filter(pk=contact.pk).update(crm_url="javascript:alert(1)")
    location = client.get(launch_url(**params))["Location"]

    assert "javascript:" not in client.get(location).content.decode()


def forged_token(tenant_id: int, call: Call) -> str:
    return signing.dumps({"t": tenant_id, "c": str(call.call_id)}, salt=PAGE_SALT)


def test_the_call_page_needs_its_token(client, launched, other_tenant):
    call, location = launched
    token = location.rsplit("/", 1)[1]

    for path in (
        "/webphone/calls/",
        f"/webphone/calls/{call.call_id}",
        f"/webphone/calls/{token[:-2]}xx",
        f"/webphone/calls/{forged_token(other_tenant.pk, call)}",
        f"/webphone/calls/{signing.dumps({'t': call.tenant_id, 'c': str(call.call_id)})}",
    ):
        assert client.get(path).status_code == 404, path
        assert client.get(f"{path}/events").status_code == 404, path
        assert client.post(f"{path}/hangup").status_code == 404, path
    with tenant_scope(call.tenant_id):
        call.refresh_from_db()
    assert call.state == "initiated"


def test_another_tenants_page_token_opens_only_that_tenants_call(
    client, launched, other_tenant, make_agent
):
    call, _ = launched
    with tenant_scope(other_tenant):
        other_agent = make_agent(other_tenant)
        other_call = Call.objects.create(
            tenant=other_tenant,
            direction="outbound",
            call_type="browser",
            agent=other_agent,
            customer_number="+14155550123",
            from_number="+14155550100",
            disposition="CRM_CALL",
            start_time=timezone.now(),
        )
    page = client.get(f"/webphone/calls/{page_token(other_call)}").content.decode()

    assert "+14155550123" in page
    assert call.customer_number not in page


def act(client, location: str, action: str, **data: str):
    return client.post(f"{location}/{action}", data, HTTP_ACCEPT="application/json")


def test_hanging_up_from_the_page_ends_the_call(client, launched, tenant):
    call, location = launched

    response = act(client, location, "hangup")

    assert response.status_code == 200
    assert (response.json()["state"], response.json()["status"]) == ("ended", "CANCELED")
    with tenant_scope(tenant):
        call.refresh_from_db()
    assert (call.state, call.status) == ("ended", "CANCELED")
    again = act(client, location, "hangup")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "call_ended"


def test_a_form_post_without_script_comes_back_to_the_page(client, launched):
    _, location = launched

    response = client.post(f"{location}/notes", {"notes": "Asked for a quote"})

    assert response.status_code == 303
    assert response["Location"] == location
    assert "Asked for a quote" in client.get(location).content.decode()


def test_disposition_and_notes_are_saved_from_the_page(client, launched, tenant):
    call, location = launched

    act(client, location, "disposition", disposition="INTERESTED")
    act(client, location, "notes", notes="Wants a demo")
    response = act(client, location, "notes", notes="Call back Friday")

    assert response.json()["notes"] == "Wants a demo\nCall back Friday"
    with tenant_scope(tenant):
        call.refresh_from_db()
    assert call.disposition == "INTERESTED"


def test_transfer_and_third_party_need_an_answered_call(client, launched, tenant):
    call, location = launched

    early = act(client, location, "transfer", to_number="07400 999999")
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "call_not_answered"
    with tenant_scope(tenant):
        call_event_record(call=call, kind=CallState.ANSWERED, occurred_at=timezone.now())
    transfer = act(client, location, "transfer", to_number="07400 999999")
    added = act(client, location, "add-party", number="+1 415 555 0123")

    assert (transfer.status_code, added.status_code) == (200, 200)
    assert [(p["kind"], p["number"]) for p in added.json()["parties"]] == [
        ("transfer", "+447400999999"),
        ("third_party", "+14155550123"),
    ]


def test_a_bad_number_for_a_transfer_is_a_400_naming_the_field(client, launched):
    _, location = launched

    response = act(client, location, "add-party", number="not a number")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "number"
    assert "not a valid phone number" in response.json()["error"]["message"]


def test_an_unknown_action_is_a_404_and_actions_need_a_post(client, launched):
    _, location = launched

    assert act(client, location, "explode").status_code == 404
    assert client.get(f"{location}/hangup").status_code == 405


def test_the_demo_prints_a_launch_url_that_places_a_call_to_a_known_customer(client, settings):
    out = StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=StringIO())  # idempotent: still one demo customer
    url = next(line.split()[-1] for line in out.getvalue().splitlines() if "/webphone/" in line)

    response = client.get(url.removeprefix(settings.PUBLIC_BASE_URL))

    assert response.status_code == 303, response.content.decode()
    page = client.get(response["Location"]).content.decode()
    assert "Ravi Kumar" in page and "Kumar Textiles" in page

"""Another tenant's key gets 404 or nothing on every automations endpoint."""

import pytest

from automations.models import AppRun, CrmLog
from connectors.services import connection_create
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db

ISOLATED_ROUTES = {
    "apps",
    "apps/<int:pk>",
    "apps/test-call",
    "app-runs/<uuid:pk>/resend",
    "calls/<uuid:call_id>/activity",
    "crm-logs/<uuid:pk>/resend",
    "lookup/enriched",
}


@pytest.fixture
def acme(tenant, receiver, make_app, end_call):
    app = make_app("acme-hook", config={"url": f"{receiver.url}/hook"})
    with tenant_scope(tenant):
        connection = connection_create(
            tenant=tenant,
            provider="hubspot",
            name="HubSpot",
            credentials={"private_app_token": "pat-x"},
            settings={"call_logging": {"enabled": True}},
        )
    call = end_call()
    with tenant_scope(tenant):
        AppRun.objects.filter(call=call).update(state="failed")
        CrmLog.objects.filter(call=call).update(state="failed")
        return {
            "app": app,
            "call": call,
            "run": AppRun.objects.get(call=call),
            "log": CrmLog.objects.get(call=call, connection=connection),
        }


def test_another_tenants_enriched_lookup_runs_none_of_our_apps(other_api, tenant, make_app):
    make_app(
        "ours",
        config={"method": "GET", "url": "https://api.acme.example/x"},
        timing="realtime",
        events=["call.start"],
    )

    body = other_api.get("/api/v1/lookup/enriched", {"number": "+442045205757"}).json()

    assert body["apps"] == [] and body["app_data"] == {}


def test_another_tenant_lists_no_apps_and_its_call_test_runs_none_of_ours(
    other_api, acme, receiver
):
    assert other_api.get("/api/v1/apps").json()["results"] == []
    test = other_api.post(
        "/api/v1/apps/test-call", {"calling_number": "+442045205757", "send": True}, format="json"
    )
    assert test.json() == {"apps": [], "unfinished": []} and receiver.received == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/apps/{app}"),
        ("patch", "/api/v1/apps/{app}"),
        ("delete", "/api/v1/apps/{app}"),
        ("post", "/api/v1/app-runs/{run}/resend"),
        ("get", "/api/v1/calls/{call}/activity"),
        ("post", "/api/v1/crm-logs/{log}/resend"),
    ],
)
def test_another_tenant_gets_404(other_api, api, acme, method, path):
    url = path.format(
        app=acme["app"].pk, run=acme["run"].pk, call=acme["call"].call_id, log=acme["log"].pk
    )

    response = getattr(other_api, method)(url, {"name": "Hijacked"}, format="json")

    assert response.status_code == 404
    assert api.get(f"/api/v1/calls/{acme['call'].call_id}/activity").status_code == 200
    with tenant_scope(acme["app"].tenant_id):
        assert AppRun.objects.get().state == "failed" and CrmLog.objects.get().state == "failed"

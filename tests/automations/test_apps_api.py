"""The apps API: settings checked with clear 400s, secrets write-only and kept on PATCH."""

import pytest
from django.db import connection

from automations.models import App
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db

WEBHOOK = {
    "name": "CRM lookup",
    "slug": "crm",
    "kind": "webhook",
    "events": ["call.end"],
    "order": 30,
    "config": {
        "url": "https://api.company.com/contacts/{{ event.calling_number }}",
        "auth": {"kind": "bearer", "token": "s3cret-token"},
    },
}


def test_it_creates_an_app_and_never_returns_its_secrets(api, tenant):
    created = api.post("/api/v1/apps", WEBHOOK, format="json")

    assert created.status_code == 201, created.json()
    body = api.get(f"/api/v1/apps/{created.json()['id']}").json()
    assert "s3cret-token" not in str(body) and body["config"]["auth"] == {"kind": "bearer"}
    with tenant_scope(tenant):
        assert App.objects.get().secrets == {"auth": {"token": "s3cret-token"}}
    with connection.cursor() as cursor:  # what the database holds: the secrets encrypted
        cursor.execute("SELECT secrets_json FROM automations_app")
        assert "s3cret-token" not in cursor.fetchone()[0]


def test_a_patch_without_the_secret_keeps_it(api, tenant):
    app_id = api.post("/api/v1/apps", WEBHOOK, format="json").json()["id"]
    config = {**WEBHOOK["config"], "auth": {"kind": "bearer"}, "timeout": 10}

    response = api.patch(f"/api/v1/apps/{app_id}", {"config": config}, format="json")

    assert response.status_code == 200, response.json()
    with tenant_scope(tenant):
        app = App.objects.get()
        assert app.secrets == {"auth": {"token": "s3cret-token"}} and app.config["timeout"] == 10


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"order": 5}, "order"),
        ({"events": ["call.exploded"]}, "events"),
        ({"condition": "satisfaction <= low"}, "condition"),
        ({"config": {"url": "http://10.0.0.1/hook"}}, "url"),
        ({"config": {"url": "https://{{ event.host }}/x"}}, "url"),
        ({"kind": "slack", "config": {"preset": "nope", "webhook_url": "https://hooks.x"}}, None),
        ({"kind": "email", "events": ["call.end"], "config": {}}, "events"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_it_refuses_bad_settings_naming_what_to_fix(api, change, field):
    response = api.post("/api/v1/apps", {**WEBHOOK, **change}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    if field:
        assert field in (error["field"] or "") or field in str(error["details"])


def test_it_refuses_a_second_app_with_the_same_slug(api):
    api.post("/api/v1/apps", WEBHOOK, format="json")

    response = api.post("/api/v1/apps", WEBHOOK, format="json")

    assert response.status_code == 400 and response.json()["error"]["field"] == "slug"


def test_a_slack_preset_brings_its_condition(api):
    response = api.post(
        "/api/v1/apps",
        {
            "name": "VIP",
            "slug": "vip",
            "kind": "slack",
            "events": ["call.end"],
            "config": {"preset": "vip", "webhook_url": "https://hooks.slack.com/services/T/B/x"},
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["condition"] == "contact.custom.vip == true"
    assert "webhook_url" not in response.json()["config"]


def test_apps_are_listed_in_the_order_they_run(api):
    api.post("/api/v1/apps", {**WEBHOOK, "slug": "late", "order": 90}, format="json")
    api.post("/api/v1/apps", {**WEBHOOK, "slug": "early", "order": 10}, format="json")

    slugs = [a["slug"] for a in api.get("/api/v1/apps").json()["results"]]

    assert slugs == ["early", "late"]

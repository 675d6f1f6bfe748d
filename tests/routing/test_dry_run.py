"""POST /api/v1/routing/dry-run: which rule would route this number now (or then), and why."""

import pytest

from tenants.models import Tenant

pytestmark = pytest.mark.django_db

SEED_CALLER = "+442045205757"
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


@pytest.fixture
def routed(tenant, make_rule, make_contact) -> Tenant:
    tenant.routing_settings.fallback_extension = "1000"
    tenant.routing_settings.save()
    make_contact(tenant, SEED_CALLER, first_name="Ada", custom_fields={"tier": "gold"})
    office_hours = {"days": WEEKDAYS, "start": "09:00", "end": "17:00"}
    make_rule(tenant, "Gold in office hours", conditions={
        "fields": [{"field": "tier", "value": "gold"}], "time_window": office_hours,
    }, extension="1093")  # fmt: skip
    make_rule(tenant, "Turkey", position=1, conditions={"countries": ["TR"]}, extension="1200")
    make_rule(tenant, "Known", position=2, conditions={"known": True}, extension="1300")
    return tenant


def dry_run(api, **body):
    return api.post("/api/v1/routing/dry-run", body, format="json")


def test_it_explains_each_rule_in_order_with_per_condition_results(api, routed):
    # Monday 08:30 in London (winter: UTC): before office hours.
    response = dry_run(api, caller="020 4520 5757", at="2026-01-05T08:30:00Z")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["decision"] == {
        "extension": "1300",
        "rule": {"id": body["rules"][2]["id"], "name": "Known"},
        "reason": "rule 'Known' matched: caller is known (Ada)",
    }
    assert body["call"]["number"] == SEED_CALLER
    assert (body["call"]["known"], body["call"]["country"]) == (True, "GB")
    assert body["call"]["contact"]["name"] == "Ada"
    first, second, third = body["rules"]
    assert first["matched"] is False
    assert first["conditions"] == [
        {"condition": "tier equals 'gold'", "holds": True, "observed": "tier is 'gold'"},
        {"condition": "time is Mon,Tue,Wed,Thu,Fri 09:00-17:00", "holds": False,
         "observed": "it is Mon 08:30 GMT"},
    ]  # fmt: skip
    assert second["conditions"][0]["observed"] == "number is from GB"
    assert third["matched"] is True


def test_it_reads_the_time_in_the_tenants_time_zone(api, routed):
    # 08:30 UTC in July is 09:30 in London (BST).
    body = dry_run(api, caller=SEED_CALLER, at="2026-07-06T08:30:00Z").json()

    assert body["decision"]["rule"]["name"] == "Gold in office hours"
    assert body["call"]["now"].startswith("2026-07-06T09:30:00+01:00")


def test_it_shows_the_fallback_when_nothing_matches(api, routed):
    body = dry_run(api, caller="+14155550123").json()

    assert body["decision"] == {
        "extension": "1000",
        "rule": None,
        "reason": "fallback: no rule matched",
    }
    assert [rule["matched"] for rule in body["rules"]] == [False, False, False]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "caller"),
        ({"caller": None}, "caller"),
        ({"caller": ""}, "caller"),
        ({"caller": "not a number"}, "caller"),
        ({"caller": "1" * 10_000}, "caller"),
        ({"caller": SEED_CALLER, "at": "yesterday"}, "at"),
        ({"caller": SEED_CALLER, "verbose": True}, "verbose"),
    ],
)
def test_it_rejects_bad_input_naming_the_field(api, routed, body, field):
    response = api.post("/api/v1/routing/dry-run", body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field)


def test_it_rejects_a_content_type_it_cannot_read(api, routed):
    response = api.post("/api/v1/routing/dry-run", SEED_CALLER, content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"

"""POST /api/v1/routing/decide: the Hipcall smart-IVR contract, by server key or routing URL."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from routing.models import RoutingRule
from tenants.services import tenant_update

# Decisions run on pool threads with their own database connections: the data must be committed.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("unhurried")]

SEED_CALLER = "+442045205757"  # a registered customer of the `routed` tenant (conftest.py)


def decide(client: APIClient, body: object, path: str = "/api/v1/routing/decide", **options):
    return client.post(path, body, format="json", **options)


def test_it_answers_the_seed_request_with_the_extension(api, routed):
    response = decide(api, {"caller": SEED_CALLER})

    assert response.status_code == 200
    body = response.json()
    assert body["extension"] == "1093"
    assert body["rule"]["name"] == "Registered customers"
    assert body["reason"] == "rule 'Registered customers' matched: caller is known (Ada)"


def test_it_routes_an_unknown_caller_by_its_rule(api, routed):
    body = decide(api, {"caller": "+905321234567", "called": "+442045205700"}).json()

    assert (body["extension"], body["rule"]["name"]) == ("1094", "Unknown numbers")


def test_it_reads_the_caller_in_the_tenants_national_format(api, routed):
    assert decide(api, {"caller": "020 4520 5757"}).json()["extension"] == "1093"


def test_it_answers_a_queue_action_with_the_queue(api, tenant, make_rule):
    make_rule(tenant, "Support", action=RoutingRule.Action.QUEUE, queue="support", extension="1500")

    body = decide(api, {"caller": SEED_CALLER}).json()

    assert (body["extension"], body["queue"]) == ("1500", "support")


def test_it_routes_to_the_callers_owner_agent(api, tenant, make_rule, make_contact, make_agent):
    owner = make_agent(tenant, extension="2001")
    make_contact(tenant, SEED_CALLER, first_name="Ada", owner=owner)
    make_rule(tenant, "Owner", action=RoutingRule.Action.OWNER, conditions={"has_owner": True})

    assert decide(api, {"caller": SEED_CALLER}).json()["extension"] == "2001"


def test_it_answers_the_fallback_when_no_rule_matches(api, tenant, make_rule):
    tenant.routing_settings.fallback_extension = "1000"
    tenant.routing_settings.save()
    make_rule(tenant, "Turkey", conditions={"countries": ["TR"]})

    body = decide(api, {"caller": SEED_CALLER}).json()

    assert body == {"extension": "1000", "rule": None, "reason": "fallback: no rule matched"}


def test_a_new_fallback_answers_from_the_next_decision_on(api, tenant):
    decide(api, {"caller": SEED_CALLER})  # the key, its tenant and settings are remembered now

    tenant_update(tenant=tenant, routing_settings={"fallback_extension": "1777"})

    assert decide(api, {"caller": SEED_CALLER}).json()["extension"] == "1777"


def test_it_ignores_disabled_rules(api, routed, make_rule):
    make_rule(routed, "Off", position=-1, is_enabled=False, extension="9999")

    assert decide(api, {"caller": SEED_CALLER}).json()["extension"] == "1093"


def test_it_decides_through_the_routing_url_without_a_key(routed, make_token):
    token = make_token(routed)

    response = decide(APIClient(), {"caller": SEED_CALLER}, f"/api/v1/routing/decide/{token}")

    assert response.status_code == 200
    assert response.json()["extension"] == "1093"


def test_it_answers_404_for_an_unknown_or_replaced_routing_url(routed, make_token):
    replaced = make_token(routed)
    current = make_token(routed)
    forged = current[:12] + "x" * (len(current) - 12)  # a real prefix with a guessed secret

    for token in (replaced, forged, "cbr_unknown"):
        response = decide(APIClient(), {"caller": SEED_CALLER}, f"/api/v1/routing/decide/{token}")
        assert response.status_code == 404, token
        assert response.json()["error"]["code"] == "not_found"


def test_it_needs_a_key_or_a_routing_url(routed):
    response = decide(APIClient(), {"caller": SEED_CALLER})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "fallback: no caller number (withheld or missing)"),
        ({"caller": None}, "fallback: no caller number (withheld or missing)"),
        ({"caller": ""}, "fallback: no caller number (withheld or missing)"),
        ({"caller": 442045205757}, "fallback: caller must be a string, not int"),
        ({"caller": ["+44"]}, "fallback: caller must be a string, not list"),
        ({"caller": "anonymous"}, "fallback: caller 'anonymous' is not a phone number"),
        ({"caller": "1' OR '1'='1"}, "fallback: caller \"1' OR '1'='1\" is not a phone number"),
        ({"caller": "☎️ Zoë"}, "fallback: caller '☎️ Zoë' is not a phone number"),
        ({"caller": "9" * 10_000}, "fallback: caller is not a phone number (10000 characters)"),
        ([SEED_CALLER], 'fallback: the body must be a JSON object such as {"caller": "+44..."}'),
    ],
)
def test_it_answers_the_fallback_with_the_reason_for_a_bad_caller(api, routed, body, reason):
    response = decide(api, body)

    assert response.status_code == 200
    assert response.json() == {"extension": "1000", "rule": None, "reason": reason}


def test_it_answers_the_fallback_for_malformed_json(api, routed):
    response = api.post("/api/v1/routing/decide", "{caller: +44", content_type="application/json")

    assert response.status_code == 200
    assert response.json()["extension"] == "1000"
    assert response.json()["reason"].startswith("fallback: unreadable request (JSON parse error")


def test_it_answers_the_fallback_for_a_content_type_it_cannot_read(api, routed):
    response = api.post("/api/v1/routing/decide", SEED_CALLER, content_type="text/plain")

    assert response.status_code == 200
    assert response.json()["reason"] == (
        'fallback: unreadable request (Unsupported media type "text/plain" in request.)'
    )


def test_it_reads_a_form_encoded_caller(api, routed):
    body = "caller=%2B442045205757"

    response = api.post(
        "/api/v1/routing/decide", body, content_type="application/x-www-form-urlencoded"
    )

    assert response.json()["extension"] == "1093"


def test_it_reads_digits_of_any_script(api, routed):
    # +44 20 4520 5757 in Arabic-Indic digits
    arabic_indic = "+\u0664\u0664 \u0662\u0660 \u0664\u0665\u0662\u0660 \u0665\u0667\u0665\u0667"

    assert decide(api, {"caller": arabic_indic}).json()["extension"] == "1093"


def test_it_answers_the_fallback_without_reading_an_oversized_body(api, routed):
    body = json.dumps({"caller": SEED_CALLER, "padding": "x" * 20_000})

    response = api.post("/api/v1/routing/decide", body, content_type="application/json")

    assert response.status_code == 200
    assert response.json()["reason"] == "fallback: request body over 16 KB"


def test_it_ignores_fields_it_does_not_know(api, routed):
    body = decide(api, {"caller": SEED_CALLER, "call_id": "abc", "uuid": None}).json()

    assert body["extension"] == "1093"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=5,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(caller=st.one_of(st.text(max_size=80), json_values))
def test_it_never_fails_whatever_the_caller(api, routed, caller):
    response = decide(api, {"caller": caller})

    assert response.status_code == 200
    assert response.json()["extension"] in ("1093", "1094", "1000")
    assert response.json()["reason"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.binary(max_size=200),
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ]
    ),
)
def test_it_never_fails_whatever_the_body(api, routed, raw, content_type):
    response = api.post("/api/v1/routing/decide", raw, content_type=content_type)

    assert response.status_code == 200
    assert response.json()["extension"] in ("1093", "1094", "1000")


def test_a_read_only_routing_key_can_ask_for_decisions_and_dry_runs(make_client, tenant, make_rule):
    make_rule(tenant, "Gold customers")
    reader = make_client(tenant, scopes=["routing:read"])
    caller = {"caller": "+442045205757"}

    assert reader.post("/api/v1/routing/decide", caller, format="json").status_code == 200
    assert reader.post("/api/v1/routing/dry-run", caller, format="json").status_code == 200
    lookup_only = make_client(tenant, scopes=["lookup:read"])
    assert lookup_only.post("/api/v1/routing/decide", caller, format="json").status_code == 403


@pytest.mark.parametrize("method", ["trace", "get", "put"])
def test_other_methods_are_refused_with_405_not_decided(api, routed, method):
    response = api.generic(method.upper(), "/api/v1/routing/decide")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response["Allow"]


def test_it_answers_the_fallback_for_json_nested_too_deep(api, routed):
    deep = "[" * 5_000 + "]" * 5_000  # Python's parser would recurse past its limit

    response = api.post("/api/v1/routing/decide", deep, content_type="application/json")

    assert response.status_code == 200
    assert "nested deeper than 64 levels" in response.json()["reason"]

"""GET /api/v1/lookup: the caller card over HTTP; bad input is a clear 4xx, never a 5xx."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer

from contacts.api.serializers import CallerCardSerializer
from contacts.selectors import caller_card
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db


def test_it_answers_the_caller_card_for_a_known_number(api, tenant, make_contact, make_agent):
    contact = make_contact(
        tenant,
        "020 7946 0018",
        first_name="Ada",
        last_name="Lovelace",
        company="Analytical Engines",
        crm_url="https://crm.example.com/contacts/7",
        owner=make_agent(tenant),
        custom_fields={"tier": "gold"},
    )

    response = api.get("/api/v1/lookup", {"number": "+44 20 7946 0018"})

    assert response.status_code == 200
    body = response.json()
    summary = {
        "id": contact.pk,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "name": "Ada Lovelace",
        "company": "Analytical Engines",
        "is_company": False,
        "crm_url": "https://crm.example.com/contacts/7",
        "country": "",
        "custom_fields": {"tier": "gold"},
        "owner": {
            "id": contact.owner_id,
            "crm_username": "agent.017",
            "display_name": "Priya Shah",
            "extension": "1093",
        },
        "updated_at": body["contact"]["updated_at"],
    }
    assert body == {
        "number": "+442079460018",
        "known": True,
        "ambiguous": False,
        "contact": summary,
        "matches": [summary],
    }


def test_it_answers_unknown_for_a_number_not_in_the_phonebook(api):
    body = api.get("/api/v1/lookup?number=020%207946%200099").json()

    assert body == {
        "number": "+442079460099",
        "known": False,
        "ambiguous": False,
        "contact": None,
        "matches": [],
    }


def test_it_lists_every_contact_sharing_the_number_under_the_ambiguous_policy(
    api, tenant, make_contact
):
    tenant.phonebook_settings.shared_number_policy = "ambiguous"
    tenant.phonebook_settings.save()
    make_contact(tenant, "020 7946 0018", first_name="A")
    make_contact(tenant, "+442079460018", first_name="B")

    body = api.get("/api/v1/lookup?number=02079460018").json()

    assert body["ambiguous"] is True and body["contact"] is None
    assert sorted(m["first_name"] for m in body["matches"]) == ["A", "B"]


def test_it_keeps_the_contact_when_its_owner_agent_is_deleted(
    api, tenant, make_contact, make_agent
):
    owner = make_agent(tenant)
    make_contact(tenant, "020 7946 0018", owner=owner)
    api.delete(f"/api/v1/agents/{owner.pk}")

    body = api.get("/api/v1/lookup?number=02079460018").json()

    assert body["known"] is True and body["contact"]["owner"] is None


def test_it_answers_with_few_queries(api, tenant, make_contact, django_assert_max_num_queries):
    make_contact(tenant, "020 7946 0018")
    api.get("/api/v1/lookup?number=02079460018")  # the key's last_used_at is written once

    # the API key, then the one lookup query
    with django_assert_max_num_queries(2):
        assert api.get("/api/v1/lookup?number=02079460018").json()["known"] is True


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "number"),
        ("number=", "number"),
        ("number=%20%20", "number"),
        ("number=call%20me", "number"),
        ("number=12", "number"),
        ("number=%2B999123456", "number"),
        ("number=" + "1" * 10_000, "number"),
        ("number=1%27%20OR%20%271%27=%271", "number"),
        ("number=%00", "number"),
        ("number=null", "number"),
        ("number=%F0%9F%93%9E", "number"),
        ("number=02079460018&region=US", "region"),
    ],
)
def test_it_refuses_bad_numbers_with_a_clear_400(api, query, field):
    response = api.get(f"/api/v1/lookup?{query}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field)
    assert error["message"]


@pytest.mark.parametrize("path", ["/api/v1/lookup", "/api/v1/lookup/enriched"])
def test_a_plus_left_unencoded_in_the_url_gets_a_400_that_says_to_write_2b(api, path):
    response = api.get(f"{path}?number=+442045205757")  # the query reads " 442045205757"

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "number"
    assert "%2B" in error["message"] and "number=%2B442045205757" in error["message"]
    assert api.get(f"{path}?number=%2B442045205757").status_code == 200


def test_it_refuses_a_lookup_without_a_server_key(client, api):
    response = client.get("/api/v1/lookup?number=02079460018")

    assert response.status_code in (401, 403)
    assert "error" in response.json()


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(number=st.text(max_size=120))
def test_it_never_answers_5xx_whatever_the_number(api, number):
    response = api.get("/api/v1/lookup", {"number": number})

    assert response.status_code in (200, 400)
    assert ("error" in response.json()) == (response.status_code == 400)


def test_its_body_is_what_the_documented_serializer_renders(api, tenant, make_contact, make_agent):
    tenant.phonebook_settings.shared_number_policy = "ambiguous"
    tenant.phonebook_settings.save()
    make_contact(tenant, "020 7946 0018", first_name="A", owner=make_agent(tenant))
    make_contact(tenant, "+442079460018", company="B Ltd", custom_fields={"tier": "gold"})

    for policy in ("ambiguous", "most_recent"):
        tenant.phonebook_settings.shared_number_policy = policy
        tenant.phonebook_settings.save()
        body = api.get("/api/v1/lookup?number=02079460018").json()

        with tenant_scope(tenant):
            card = caller_card(tenant=tenant, number="02079460018")
        assert body == json.loads(JSONRenderer().render(CallerCardSerializer(card).data))

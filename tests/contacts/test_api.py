"""The phonebook API: list/search, create, get, update, soft delete."""

import pytest

from contacts.models import Contact, ContactPhone
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db

ADA = {
    "external_id": "crm-7",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines",
    "crm_url": "https://crm.example.com/contacts/7",
    "custom_fields": {"tier": "gold", "language": "en"},
    "phones": [{"number": "020 7946 0018", "kind": "work"}, {"number": "call me"}],
}


def test_it_creates_a_contact_normalizing_its_numbers(api, tenant, make_agent):
    make_agent(tenant)

    response = api.post(
        "/api/v1/contacts", {**ADA, "owner_crm_username": "agent.017"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Ada Lovelace"
    assert body["owner"] == {
        "id": body["owner"]["id"],
        "crm_username": "agent.017",
        "display_name": "Priya Shah",
        "extension": "1093",
    }
    assert body["phones"] == [
        {
            "kind": "work",
            "e164": "+442079460018",
            "raw": "020 7946 0018",
            "extension": "",
            "is_valid": True,
        },
        {"kind": "other", "e164": None, "raw": "call me", "extension": "", "is_valid": False},
    ]
    with tenant_scope(tenant):
        assert Contact.objects.get().custom_fields == {"tier": "gold", "language": "en"}


def test_it_reads_numbers_without_country_code_with_the_contacts_country(api):
    response = api.post(
        "/api/v1/contacts",
        {"first_name": "Mehmet", "country": "tr", "phones": [{"number": "5321234567"}]},
        format="json",
    )

    assert response.json()["country"] == "TR"
    assert response.json()["phones"][0]["e164"] == "+905321234567"


def test_it_reads_the_stored_numbers_again_when_the_country_changes(api, tenant, make_contact):
    contact = make_contact(tenant, "9876543210")

    response = api.patch(f"/api/v1/contacts/{contact.pk}", {"country": "IN"}, format="json")

    assert response.json()["phones"][0]["e164"] == "+919876543210"


def test_it_gets_updates_and_replaces_the_numbers_of_a_contact(api, tenant, make_contact):
    contact = make_contact(tenant, "020 7946 0018", first_name="Ada")

    fetched = api.get(f"/api/v1/contacts/{contact.pk}")
    updated = api.patch(
        f"/api/v1/contacts/{contact.pk}",
        {"last_name": "King", "phones": [{"number": "+1 415 555 0123", "kind": "mobile"}]},
        format="json",
    )

    assert fetched.json()["phones"][0]["e164"] == "+442079460018"
    assert updated.status_code == 200
    assert updated.json()["name"] == "Ada King"
    assert [p["e164"] for p in updated.json()["phones"]] == ["+14155550123"]
    with tenant_scope(tenant):
        assert ContactPhone.objects.count() == 1


@pytest.mark.parametrize("method", ["post", "patch"])
def test_a_phone_without_its_number_is_a_400_naming_the_field(api, tenant, make_contact, method):
    contact = make_contact(tenant, "020 7946 0018")
    path = "/api/v1/contacts" + (f"/{contact.pk}" if method == "patch" else "")

    response = getattr(api, method)(path, {"phones": [{"kind": "mobile"}]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "phones[0].number"


def test_it_soft_deletes_a_contact_out_of_lists_gets_and_lookups(api, tenant, make_contact):
    contact = make_contact(tenant, "020 7946 0018")

    assert api.delete(f"/api/v1/contacts/{contact.pk}").status_code == 204

    assert api.get(f"/api/v1/contacts/{contact.pk}").status_code == 404
    assert api.get("/api/v1/contacts").json()["results"] == []
    assert api.get("/api/v1/lookup?number=02079460018").json()["known"] is False
    with tenant_scope(tenant):
        assert Contact.objects.get().deleted_at is not None


def test_it_lists_contacts_by_name_with_pagination(api, tenant, make_contact):
    for last_name in ["Curie", "Babbage", "Turing"]:
        make_contact(tenant, last_name=last_name)

    page = api.get("/api/v1/contacts?limit=2").json()
    rest = api.get("/api/v1/contacts?limit=2&offset=2").json()

    assert page["count"] == 3
    assert [c["last_name"] for c in page["results"]] == ["Babbage", "Curie"]
    assert [c["last_name"] for c in rest["results"]] == ["Turing"]


@pytest.mark.parametrize(
    ("search", "found"),
    [
        ("ada", ["Ada"]),
        ("ada lovelace", ["Ada"]),
        ("ENGINES", ["Ada", "Charles"]),
        ("+44 20 7946 0018", ["Ada"]),
        ("020-7946-0018", ["Ada"]),
        ("0044 (0)20 7946 0018", ["Ada"]),
        ("415.555.0123", []),  # read with the tenant's region (GB), so not the US number
        ("+1 415 555 0123", ["Charles"]),
        ("nobody", []),
    ],
)
def test_it_searches_by_name_company_or_a_number_in_any_format(
    api, tenant, make_contact, search, found
):
    make_contact(tenant, "020 7946 0018", first_name="Ada", last_name="Lovelace", company="Engines")
    make_contact(tenant, "(415) 555-0123", first_name="Charles", company="Engines", country="US")

    response = api.get("/api/v1/contacts", {"search": search})

    assert response.status_code == 200
    assert sorted(c["first_name"] for c in response.json()["results"]) == found


def test_it_finds_a_contact_by_external_id(api, tenant, make_contact):
    make_contact(tenant, first_name="Ada", external_id="crm-7")
    make_contact(tenant, first_name="Other", external_id="crm-8")

    results = api.get("/api/v1/contacts?external_id=crm-7").json()["results"]

    assert [c["first_name"] for c in results] == ["Ada"]


def test_it_lists_without_a_query_per_contact(
    api, tenant, make_contact, make_agent, django_assert_max_num_queries
):
    for index in range(10):
        make_contact(tenant, "020 7946 0018", owner=make_agent(tenant, f"agent.{index}"))

    with django_assert_max_num_queries(6):
        assert len(api.get("/api/v1/contacts").json()["results"]) == 10


def test_it_refuses_a_duplicate_external_id_pointing_at_bulk(api, tenant, make_contact):
    make_contact(tenant, external_id="crm-7")

    response = api.post("/api/v1/contacts", {"external_id": "crm-7"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "external_id"
    assert "contacts/bulk" in response.json()["error"]["message"]


def test_it_refuses_an_owner_from_another_tenant(api, other_tenant, make_agent):
    make_agent(other_tenant, "their.agent")

    response = api.post("/api/v1/contacts", {"owner_crm_username": "their.agent"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "owner_crm_username"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"nickname": "Ada"}, "nickname"),
        ({"phones": [{"number": "020 7946 0018", "type": "work"}]}, "phones[0].type"),
        ({"phones": [{"number": ""}]}, "phones[0].number"),
        ({"phones": [{"number": None}]}, "phones[0].number"),
        ({"phones": [{"number": "1" * 10_000}]}, "phones[0].number"),
        ({"phones": [{"number": "0207\x009460018"}]}, "phones[0].number"),
        ({"phones": [{"number": "+44 20 7946 0018", "kind": "pager"}]}, "phones[0].kind"),
        ({"phones": "020 7946 0018"}, "phones"),
        ({"phones": [{"number": "+44 20 7946 0018"}] * 21}, "phones"),
        ({"country": "XX"}, "country"),
        ({"crm_url": "javascript:alert(1)"}, "crm_url"),
        ({"custom_fields": ["gold"]}, "custom_fields"),
        ({"custom_fields": {"tier": "go\x00ld"}}, "custom_fields"),
        ({"custom_fields": {"notes": "x" * 20_000}}, "custom_fields"),
        ({"first_name": "A\x00da"}, "first_name"),
        ({"first_name": "x" * 151}, "first_name"),
        ({"owner_crm_username": "nobody"}, "owner_crm_username"),
    ],
)
def test_it_refuses_bad_contacts_naming_the_field(api, tenant, payload, field):
    response = api.post("/api/v1/contacts", payload, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field)
    with tenant_scope(tenant):
        assert not Contact.objects.exists()


def test_it_keeps_sql_and_unicode_as_plain_text(api):
    payload = {
        "first_name": "Robert'); DROP TABLE contacts_contact;--",
        "last_name": "Ünïcødé 名前 🙂",
        "phones": [{"number": "1' OR '1'='1"}],
    }

    response = api.post("/api/v1/contacts", payload, format="json")

    assert response.status_code == 201
    assert response.json()["name"] == f"{payload['first_name']} {payload['last_name']}"
    assert response.json()["phones"][0]["is_valid"] is False
    assert api.get("/api/v1/contacts", {"search": "DROP TABLE"}).json()["count"] == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [("search=" + "x" * 201, "search"), ("sort=name", "sort"), ("search=a%00b", "search")],
)
def test_it_refuses_bad_list_queries_naming_the_parameter(api, query, field):
    response = api.get(f"/api/v1/contacts?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("text/plain", "first_name=Ada"), ("application/x-www-form-urlencoded", "first_name=Ada")],
)
def test_it_answers_415_for_a_body_that_is_not_json(api, content_type, body):
    response = api.post("/api/v1/contacts", body, content_type=content_type)

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_it_answers_malformed_json_with_a_400(api):
    response = api.post("/api/v1/contacts", "{nope", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_it_needs_the_contacts_scope(make_client, tenant):
    reader = make_client(tenant, scopes=["contacts:read"])
    lookup_only = make_client(tenant, scopes=["lookup:read"])

    assert reader.get("/api/v1/contacts").status_code == 200
    assert reader.post("/api/v1/contacts", {}, format="json").status_code == 403
    assert reader.post("/api/v1/contacts/bulk", [], format="json").status_code == 403
    assert lookup_only.get("/api/v1/contacts").status_code == 403
    assert lookup_only.get("/api/v1/lookup?number=02079460018").status_code == 200


def test_it_publishes_the_phonebook_and_lookup_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    for path in [
        "/api/v1/contacts",
        "/api/v1/contacts/{id}",
        "/api/v1/contacts/bulk",
        "/api/v1/contacts/import",
        "/api/v1/lookup",
    ]:
        assert path in schema["paths"], path
    lookup = schema["paths"]["/api/v1/lookup"]["get"]
    assert [p["name"] for p in lookup["parameters"]] == ["number"]

"""Bulk upsert (JSON) and CSV import: upsert by external_id, a report per record."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts.models import Contact
from contacts.services import MAX_RECORDS_PER_REQUEST, contact_delete
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db


def contacts_of(tenant) -> dict[str, Contact]:
    with tenant_scope(tenant):
        return {c.external_id: c for c in Contact.objects.prefetch_related("phones").order_by("id")}


def test_it_upserts_contacts_by_external_id(api, tenant, make_contact):
    existing = make_contact(tenant, "020 7946 0018", external_id="crm-1", first_name="Old")

    response = api.post(
        "/api/v1/contacts/bulk",
        [
            {"external_id": "crm-1", "first_name": "New"},
            {"external_id": "crm-2", "first_name": "Grace", "phones": [{"number": "07911 123456"}]},
            {"first_name": "No id"},
        ],
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    stored = contacts_of(tenant)
    assert (body["created"], body["updated"], body["errors"]) == (2, 1, 0)
    assert body["results"][:2] == [
        {"index": 0, "status": "updated", "id": existing.pk, "error": None},
        {"index": 1, "status": "created", "id": stored["crm-2"].pk, "error": None},
    ]
    assert stored["crm-1"].first_name == "New"
    assert [p.e164 for p in stored["crm-1"].phones.all()] == ["+442079460018"]  # kept
    assert [p.e164 for p in stored["crm-2"].phones.all()] == ["+447911123456"]
    assert stored[""].first_name == "No id"


def test_it_is_idempotent(api, tenant):
    batch = [{"external_id": "crm-1", "first_name": "Ada", "phones": [{"number": "020 7946 0018"}]}]

    first = api.post("/api/v1/contacts/bulk", batch, format="json").json()
    second = api.post("/api/v1/contacts/bulk", batch, format="json").json()

    assert first["results"][0]["status"] == "created"
    assert second["results"][0]["status"] == "updated"
    assert len(contacts_of(tenant)) == 1


def test_it_never_fails_the_batch_for_one_bad_record(api, tenant):
    response = api.post(
        "/api/v1/contacts/bulk",
        [
            {"external_id": "crm-1", "first_name": "Ada"},
            {"external_id": "crm-2", "country": "XX"},
            "not an object",
            {"external_id": "crm-3", "nickname": "Bob"},
            {"external_id": "crm-4", "owner_crm_username": "nobody"},
            {"external_id": "crm-5", "first_name": "Grace"},
        ],
        format="json",
    )

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [
        "created",
        "error",
        "error",
        "error",
        "error",
        "created",
    ]
    assert [r["error"]["field"] for r in results[1:5]] == [
        "country",
        None,
        "nickname",
        "owner_crm_username",
    ]
    assert all(r["error"]["code"] == "invalid" and r["error"]["message"] for r in results[1:5])
    assert sorted(contacts_of(tenant)) == ["crm-1", "crm-5"]


def test_it_reports_a_record_the_database_refuses_without_losing_the_rest(api, tenant):
    # The same external id twice in one batch: the second updates the first.
    response = api.post(
        "/api/v1/contacts/bulk",
        [{"external_id": "crm-1", "first_name": "A"}, {"external_id": "crm-1", "first_name": "B"}],
        format="json",
    )

    assert [r["status"] for r in response.json()["results"]] == ["created", "updated"]
    assert contacts_of(tenant)["crm-1"].first_name == "B"


def test_it_brings_back_a_deleted_contact_when_upserted_again(api, tenant, make_contact):
    contact = make_contact(tenant, external_id="crm-1")
    with tenant_scope(tenant):
        contact_delete(contact=contact)

    result = api.post("/api/v1/contacts/bulk", [{"external_id": "crm-1"}], format="json").json()

    assert result["results"][0] == {
        "index": 0,
        "status": "updated",
        "id": contact.pk,
        "error": None,
    }
    assert api.get(f"/api/v1/contacts/{contact.pk}").status_code == 200


def test_it_accepts_1000_records_and_refuses_more(api, tenant):
    batch = [{"external_id": f"crm-{i}"} for i in range(MAX_RECORDS_PER_REQUEST + 1)]

    too_many = api.post("/api/v1/contacts/bulk", batch, format="json")
    enough = api.post("/api/v1/contacts/bulk", batch[:-1], format="json")

    assert too_many.status_code == 400
    assert "1000" in too_many.json()["error"]["message"]
    assert enough.json()["created"] == MAX_RECORDS_PER_REQUEST
    assert len(contacts_of(tenant)) == MAX_RECORDS_PER_REQUEST


@pytest.mark.parametrize("body", [{"external_id": "crm-1"}, "crm-1", None])
def test_it_wants_a_json_list(api, body):
    response = api.post("/api/v1/contacts/bulk", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("invalid", "malformed_request")


def test_it_refuses_a_bulk_body_over_the_size_cap(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = api.post("/api/v1/contacts/bulk", [{"first_name": "x" * 100}] * 20, format="json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_it_answers_415_for_a_csv_sent_to_bulk(api):
    response = api.post("/api/v1/contacts/bulk", "external_id\ncrm-1\n", content_type="text/csv")

    assert response.status_code == 415


def upload(api, text: str | bytes, name: str = "contacts.csv"):
    content = text.encode() if isinstance(text, str) else text
    return api.post(
        "/api/v1/contacts/import",
        {"file": SimpleUploadedFile(name, content, content_type="text/csv")},
        format="multipart",
    )


def test_it_imports_a_csv_file_reporting_every_row(api, tenant, make_agent):
    make_agent(tenant)
    csv = (
        "external_id,first_name,last_name,company,is_company,country,owner_crm_username,"
        "mobile,work,custom.tier\n"
        "crm-1,Mehmet,Yilmaz,,,TR,agent.017,0532 123 45 67,,gold\n"
        "crm-2,,,Acme Ltd,true,,,,020 7946 0018,\n"
        "crm-3,Bad,,,,XX,,,,\n"
        "\n"
    )

    response = upload(api, csv)

    assert response.status_code == 200, response.content
    body = response.json()
    assert [(r["row"], r["status"]) for r in body["results"]] == [
        (2, "created"),
        (3, "created"),
        (4, "error"),
    ]
    assert body["results"][2]["error"]["field"] == "country"
    stored = contacts_of(tenant)
    assert [p.e164 for p in stored["crm-1"].phones.all()] == ["+905321234567"]
    assert stored["crm-1"].owner.crm_username == "agent.017"
    assert stored["crm-1"].custom_fields == {"tier": "gold"}
    assert stored["crm-2"].is_company and stored["crm-2"].name == "Acme Ltd"
    assert [(p.kind, p.e164) for p in stored["crm-2"].phones.all()] == [("work", "+442079460018")]


def test_it_imports_the_same_file_twice_as_updates(api, tenant):
    csv = "external_id,first_name,phone\ncrm-1,Ada,020 7946 0018\n"

    upload(api, csv)
    again = upload(api, csv).json()

    assert again["results"][0]["status"] == "updated"
    assert len(contacts_of(tenant)) == 1


def test_it_reads_excel_csv_with_a_bom_and_semicolons(api, tenant):
    response = upload(api, "\ufeffexternal_id;first_name;phone\ncrm-1;Zoë;020 7946 0018\n")

    assert response.json()["created"] == 1
    assert contacts_of(tenant)["crm-1"].first_name == "Zoë"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("external_id,nickname\ncrm-1,Bob\n", "Unknown column 'nickname'"),
        ("first_name,first_name\nA,B\n", "appears twice"),
        ("", "empty"),
        ("first_name\n" + "Ada\n" * (MAX_RECORDS_PER_REQUEST + 1), "At most 1000 rows"),
        ("first_name\nZo\xeb\n".encode("latin-1"), "UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "UTF-8"),
    ],
)
def test_it_refuses_an_unusable_csv_file_saying_why(api, tenant, content, message):
    response = upload(api, content)

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "file"
    assert message in response.json()["error"]["message"]
    assert contacts_of(tenant) == {}


def test_it_reports_a_row_with_more_cells_than_columns(api):
    response = upload(api, "external_id,first_name\ncrm-1,Ada,extra\n")

    assert response.json()["results"][0]["error"]["field"] == "unnamed_columns"


def test_it_wants_a_multipart_file(api):
    missing = api.post("/api/v1/contacts/import", {}, format="multipart")
    as_json = api.post("/api/v1/contacts/import", {"file": "a,b"}, format="json")

    assert missing.status_code == 400
    assert missing.json()["error"]["field"] == "file"
    assert as_json.status_code == 415


def test_it_refuses_a_csv_file_over_the_size_cap(api, tenant, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = upload(api, "first_name\n" + "Ada\n" * 500)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert contacts_of(tenant) == {}

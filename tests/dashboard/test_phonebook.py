"""Phonebook page: search in any number format, a contact's card, CSV import with its report."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts.models import Contact
from core.scoping import tenant_scope
from tenants.models import AuditEntry
from tests.dashboard.helpers import form_data

pytestmark = pytest.mark.django_db

ISOLATED_ROUTES = {"phonebook/", "phonebook/import", "phonebook/<int:pk>/"}


@pytest.fixture
def ada(tenant, make_contact, make_agent) -> Contact:
    owner = make_agent(tenant, display_name="Priya Shah")
    contact = make_contact(
        tenant,
        "+44 20 4520 5757",
        first_name="Ada",
        last_name="Lovelace",
        company="Analytical Engines",
        crm_url="https://crm.example.com/contacts/1",
        custom_fields={"tier": "gold"},
    )
    with tenant_scope(tenant):
        Contact.objects.filter(pk=contact.pk).update(owner=owner)
    return contact


def test_an_empty_phonebook_says_how_to_fill_it(admin_client):
    page = admin_client.get("/app/phonebook/").text

    assert "The phonebook is empty" in page and "Connect a CRM" in page


@pytest.mark.parametrize(
    "search",
    ["ada", "lovelace analytical", "Engines", "+442045205757", "020 4520 5757", "(020) 45205757"],
)
def test_search_finds_a_contact_by_name_company_or_number_in_any_format(admin_client, ada, search):
    page = admin_client.get("/app/phonebook/", {"q": search}).text

    assert "Ada Lovelace" in page and "+442045205757" in page and "1 contact match" in page


def test_a_search_without_match_offers_to_clear_it(admin_client, ada):
    page = admin_client.get("/app/phonebook/", {"q": "nobody"}).text

    assert "No contact matches" in page and "Ada Lovelace" not in page


def test_htmx_gets_only_the_results(admin_client, ada):
    response = admin_client.get("/app/phonebook/", {"q": "ada"}, headers={"HX-Request": "true"})

    assert response.text.lstrip().startswith('<div id="phonebook-results">')
    assert "Ada Lovelace" in response.text and "<html" not in response.text


def test_the_list_is_paginated(admin_client, tenant, make_contact):
    for n in range(30):
        make_contact(tenant, f"+4420452057{n:02d}", first_name="Person", last_name=f"{n:02d}")

    first = admin_client.get("/app/phonebook/").text
    second = admin_client.get("/app/phonebook/", {"page": "2"}).text
    beyond = admin_client.get("/app/phonebook/", {"page": "nope"})

    assert "Page 1 of 2" in first and "Person 00" in first and "Person 29" not in first
    assert "Person 29" in second
    assert beyond.status_code == 200


def test_a_too_long_search_is_not_an_error(admin_client, ada):
    response = admin_client.get("/app/phonebook/", {"q": "x" * 500})

    assert response.status_code == 200 and "Ada Lovelace" in response.text


def test_a_contacts_card_shows_numbers_owner_crm_link_and_custom_fields(admin_client, ada):
    page = admin_client.get(f"/app/phonebook/{ada.pk}/").text

    assert "+442045205757" in page and "+44 20 4520 5757" in page
    assert "Priya Shah" in page and "https://crm.example.com/contacts/1" in page
    assert "tier" in page and "gold" in page


def test_another_tenant_sees_none_of_the_contacts(other_client, ada):
    assert other_client.get(f"/app/phonebook/{ada.pk}/").status_code == 404
    assert "Ada" not in other_client.get("/app/phonebook/", {"q": "ada"}).text
    assert "Ada" not in other_client.get("/app/phonebook/").text
    page = other_client.get("/app/phonebook/import")
    other_client.post(
        "/app/phonebook/import",
        form_data(page, file=csv_file("external_id,first_name,mobile\nx1,Eve,+442045205757\n")),
    )
    with tenant_scope(ada.tenant_id):
        assert list(Contact.objects.values_list("first_name", flat=True)) == ["Ada"]


def test_a_deleted_contact_is_not_found(admin_client, ada):
    with tenant_scope(ada.tenant_id):
        Contact.objects.filter(pk=ada.pk).update(deleted_at="2026-01-01T00:00:00Z")

    assert admin_client.get(f"/app/phonebook/{ada.pk}/").status_code == 404


def csv_file(text: str, name: str = "contacts.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def tile(page: str, label: str) -> str:
    after = page.split(f'<p class="tile-label">{label}</p><p class="tile-value">', 1)[1]
    return after.split("<", 1)[0]


def test_a_csv_import_reports_every_row_once(admin_client, tenant):
    page = admin_client.get("/app/phonebook/import")
    content = (
        "external_id,first_name,last_name,company,owner_crm_username,mobile,custom.tier\n"
        "c-1,Grace,Hopper,Navy,,+1 202 555 0101,gold\n"
        "c-2,Alan,Turing,,,020 4520 5757,\n"
        "c-1,Grace,Hopper,US Navy,,+1 202 555 0101,\n"
        "c-3,Eve,,,nobody,+44 20 4520 5758,\n"
    )
    data = form_data(page, file=csv_file(content))

    report = admin_client.post("/app/phonebook/import", data)
    again = admin_client.post("/app/phonebook/import", {**data, "file": csv_file(content)})

    assert report.status_code == 200
    assert (tile(report.text, "Created"), tile(report.text, "Updated")) == ("2", "1")
    assert tile(report.text, "Rows with errors") == "1"
    assert report.text.count('class="row-error"') == 1 and "owner_crm_username" in report.text
    with tenant_scope(tenant):
        assert Contact.objects.get(external_id="c-1").company == "US Navy"
        assert Contact.objects.get(external_id="c-2").phones.get().e164 == "+442045205757"
        entry = AuditEntry.objects.get(action="contacts.import")
    assert entry.target == "contacts.csv"
    assert entry.changes == {"created": 2, "updated": 1, "errors": 1}
    assert "already submitted" in again.text
    with tenant_scope(tenant):
        assert Contact.objects.count() == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"", "submitted file is empty"),
        (b"name,phone\nAda,123\n", "Unknown column"),
    ],
)
def test_an_unusable_file_is_a_form_error(admin_client, content, message):
    page = admin_client.get("/app/phonebook/import")
    upload = SimpleUploadedFile("x.csv", content, content_type="text/csv")

    response = admin_client.post("/app/phonebook/import", form_data(page, file=upload))

    assert response.status_code == 200 and 'id="id_file_error"' in response.text
    assert message in response.text


def test_a_viewer_can_search_but_not_import(viewer_client, ada):
    index = viewer_client.get("/app/phonebook/").text

    assert "Ada Lovelace" in index and "Import CSV" not in index
    assert viewer_client.get("/app/phonebook/import").status_code == 403
    upload = csv_file("external_id,first_name\nx,Eve\n")
    assert viewer_client.post("/app/phonebook/import", {"file": upload}).status_code == 403

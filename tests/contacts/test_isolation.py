"""Another tenant's key gets 404 (detail) or nothing (lists, search, lookup) on every phonebook
endpoint, and its writes never touch this tenant's contacts."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts.models import Contact
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db

# Routes this module proves isolated; tests/test_architecture.py checks every API route is listed
# in some tests/<app>/test_isolation.py.
ISOLATED_ROUTES = {"contacts", "contacts/<int:pk>", "contacts/bulk", "contacts/import", "lookup"}


@pytest.fixture
def contact(tenant, make_contact, make_agent) -> Contact:
    return make_contact(
        tenant,
        "020 7946 0018",
        first_name="Ada",
        external_id="crm-7",
        owner=make_agent(tenant),
    )


def stored(contact: Contact) -> Contact:
    with tenant_scope(contact.tenant_id):
        return Contact.objects.get(pk=contact.pk)


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_it_answers_404_for_another_tenants_contact(other_api, contact, method):
    response = getattr(other_api, method)(
        f"/api/v1/contacts/{contact.pk}", {"first_name": "Hijacked"}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert (stored(contact).first_name, stored(contact).deleted_at) == ("Ada", None)


@pytest.mark.parametrize("search", ["", "Ada", "+442079460018", "020 7946 0018"])
def test_it_hides_other_tenants_contacts_from_lists_and_search(other_api, contact, search):
    response = other_api.get("/api/v1/contacts", {"search": search} if search else {})

    assert response.json()["results"] == []


def test_it_hides_other_tenants_contacts_by_external_id(other_api, contact):
    assert other_api.get("/api/v1/contacts?external_id=crm-7").json()["results"] == []


def test_it_never_looks_up_another_tenants_caller(other_api, contact):
    body = other_api.get("/api/v1/lookup?number=%2B442079460018").json()

    assert (body["known"], body["matches"]) == (False, [])


def test_it_upserts_the_same_external_id_into_the_callers_tenant_only(
    other_api, contact, other_tenant
):
    response = other_api.post(
        "/api/v1/contacts/bulk", [{"external_id": "crm-7", "first_name": "Theirs"}], format="json"
    )

    assert response.json()["results"][0]["status"] == "created"
    assert response.json()["results"][0]["id"] != contact.pk
    assert stored(contact).first_name == "Ada"
    with tenant_scope(other_tenant):
        assert Contact.objects.get().first_name == "Theirs"


def test_it_imports_the_same_external_id_into_the_callers_tenant_only(other_api, contact):
    csv = SimpleUploadedFile("c.csv", b"external_id,first_name\ncrm-7,Theirs\n")

    response = other_api.post("/api/v1/contacts/import", {"file": csv}, format="multipart")

    assert response.json()["results"][0]["status"] == "created"
    assert stored(contact).first_name == "Ada"


def test_it_refuses_another_tenants_agent_as_owner(other_api, contact):
    response = other_api.post(
        "/api/v1/contacts", {"owner_crm_username": contact.owner.crm_username}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "owner_crm_username"

"""Staff manage the phonebook of every tenant in the Django admin."""

import pytest

from contacts.models import ContactPhone
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db


def test_it_lists_and_searches_contacts_by_number(admin_client, tenant, make_contact):
    make_contact(tenant, "020 7946 0018", first_name="Ada")
    make_contact(tenant, "07911 123456", first_name="Grace")

    response = admin_client.get("/admin/contacts/contact/", {"q": "+442079460018"})

    assert response.status_code == 200
    assert b"Ada" in response.content and b"Grace" not in response.content


def test_it_reads_a_number_typed_into_the_admin(admin_client, tenant, make_contact):
    contact = make_contact(tenant, "020 7946 0018", first_name="Ada")
    with tenant_scope(tenant):
        phone = contact.phones.get()
    url = f"/admin/contacts/contact/{contact.pk}/change/"
    form = {
        "tenant": tenant.pk,
        "first_name": "Ada",
        "custom_fields": "{}",
        "phones-TOTAL_FORMS": "1",
        "phones-INITIAL_FORMS": "1",
        "phones-0-id": phone.pk,
        "phones-0-contact": contact.pk,
        "phones-0-raw": "07911 123456",
        "phones-0-kind": "mobile",
    }

    response = admin_client.post(url, form)

    assert response.status_code == 302, response.content
    with tenant_scope(tenant):
        assert list(ContactPhone.objects.values_list("e164", flat=True)) == ["+447911123456"]

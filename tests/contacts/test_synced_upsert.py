"""The sync's page upsert and the full diff's delete: bulk, yet the same as contact_upsert."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from connectors.services import connection_create
from contacts import services
from contacts.models import Contact
from contacts.services import PhoneInput, SyncedContact, contacts_delete, contacts_upsert_synced
from core.scoping import tenant_scope
from tenants.models import Agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(tenant):
    with tenant_scope(tenant):
        return connection_create(tenant=tenant, provider="hubspot", name="CRM", credentials={})


def record(external_id: str, *numbers: str, **fields) -> SyncedContact:
    fields = {
        "first_name": "Ada",
        "last_name": external_id,
        "company": "",
        "is_company": False,
        "crm_url": f"https://crm.example.com/{external_id}",
        "country": "",
        "custom_fields": {},
        **fields,
    }
    return SyncedContact(external_id, fields, tuple(PhoneInput(n, "work") for n in numbers))


def upsert(tenant, connection, records):
    with tenant_scope(tenant):
        return contacts_upsert_synced(
            tenant=tenant, source_connection_id=connection.pk, records=records
        )


def stored(tenant) -> dict[str, Contact]:
    with tenant_scope(tenant):
        return {c.external_id: c for c in Contact.objects.prefetch_related("phones")}


@pytest.fixture(params=["probe per id", "in list"])
def lookup(request, monkeypatch):
    """Both ways of reading a page's stored contacts: PostgreSQL's, and any other database's."""
    if request.param == "in list":
        monkeypatch.setattr(services, "_POSTGRESQL_PATH_VENDORS", ())


@pytest.mark.usefixtures("lookup")
def test_a_page_takes_the_same_few_queries_whatever_its_size(
    tenant, connection, django_assert_max_num_queries
):
    with django_assert_max_num_queries(6):  # PostgreSQL: read, allocate ids, COPY, COPY
        counts = upsert(tenant, connection, [record(str(i), "020 7946 0018") for i in range(50)])
    assert counts.created == 50
    changed = [record(str(i), "020 7946 0019", first_name="Grace") for i in range(50)]

    with django_assert_max_num_queries(8):
        counts = upsert(tenant, connection, changed)

    assert counts.updated == 50
    assert {p.e164 for c in stored(tenant).values() for p in c.phones.all()} == {"+442079460019"}


def test_numbers_are_read_with_the_contact_country_else_the_tenant_region(tenant, connection):
    counts = upsert(
        tenant,
        connection,
        [
            record("1", "020 7946 0018"),
            record("2", "(415) 555-0100", country="US"),
            record("3", "n/a"),
        ],
    )

    contacts = stored(tenant)
    assert [p.e164 for p in contacts["1"].phones.all()] == ["+442079460018"]
    assert [p.e164 for p in contacts["2"].phones.all()] == ["+14155550100"]
    assert [(p.raw, p.e164) for p in contacts["3"].phones.all()] == [("n/a", None)]
    assert (counts.created, counts.invalid_numbers) == (3, 1)


def test_an_invalid_record_is_counted_and_the_rest_of_the_page_is_stored(tenant, connection):
    counts = upsert(
        tenant,
        connection,
        [record("1"), record("2", crm_url="not a link"), record("3", first_name="x" * 151)],
    )

    assert (counts.created, counts.invalid_records) == (1, 2)
    assert set(stored(tenant)) == {"1"}


@pytest.mark.usefixtures("lookup")
def test_unchanged_records_are_not_written_and_a_deleted_one_comes_back(tenant, connection):
    upsert(tenant, connection, [record("1", "020 7946 0018"), record("2", "020 7946 0018")])
    with tenant_scope(tenant):
        Contact.objects.filter(external_id="2").update(deleted_at=timezone.now())
    before = stored(tenant)

    counts = upsert(tenant, connection, [record("1", "020 7946 0018"), record("2", "07700 900123")])

    after = stored(tenant)
    assert (counts.unchanged, counts.updated, counts.created) == (1, 1, 0)
    assert after["1"].updated_at == before["1"].updated_at
    assert after["2"].deleted_at is None
    assert [p.e164 for p in after["2"].phones.all()] == ["+447700900123"]


def test_the_same_record_twice_in_a_page_is_stored_once_as_the_last_copy(tenant, connection):
    counts = upsert(tenant, connection, [record("1", first_name="Old"), record("1")])

    assert counts.created == 1
    assert stored(tenant)["1"].first_name == "Ada"


def test_contacts_delete_soft_deletes_live_contacts_in_batches(tenant, connection, monkeypatch):
    monkeypatch.setattr(services, "DELETE_BATCH", 2)
    upsert(tenant, connection, [record(str(i)) for i in range(5)])
    contacts = stored(tenant)
    with tenant_scope(tenant):
        Contact.objects.filter(external_id="0").update(deleted_at=timezone.now())

        deleted = contacts_delete(contact_ids=[c.pk for c in contacts.values()][:4])

    assert deleted == 3
    assert sorted(k for k, c in stored(tenant).items() if c.deleted_at is None) == ["4"]


def test_the_postgresql_path_stores_exactly_what_the_portable_one_does(
    tenant, connection, monkeypatch
):
    with tenant_scope(tenant):
        other = connection_create(tenant=tenant, provider="hubspot", name="CRM 2", credentials={})
    page = [
        record("1", "020 7946 0018", "+1 212 555 0100 ext. 7", custom_fields={"tier": "gold"}),
        record("2", "n/a", country="US", is_company=True, company="Globex"),
        record("3", crm_url="not a link"),
        record("4"),
    ]

    on_postgresql = upsert(tenant, connection, page)
    monkeypatch.setattr(services, "_POSTGRESQL_PATH_VENDORS", ())
    portable = upsert(tenant, other, page)

    assert on_postgresql == portable
    with tenant_scope(tenant):
        stored = {
            source: [
                (
                    c.external_id,
                    [getattr(c, name) for name in services.SYNCED_FIELDS],
                    (c.owner_id, c.deleted_at, c.created_at is not None),
                    [(p.raw, p.e164, p.extension, p.kind, p.is_valid) for p in c.phones.all()],
                )
                for c in Contact.objects.filter(source_connection=source).order_by("external_id")
            ]
            for source in (connection, other)
        }
    assert stored[connection] == stored[other] and len(stored[connection]) == 3


def test_an_owner_of_another_tenant_makes_the_record_invalid(tenant, other_tenant, connection):
    with tenant_scope(other_tenant):
        stranger = Agent.objects.create(tenant=other_tenant, crm_username="x", email="x@globex.com")
    with tenant_scope(tenant):
        ours = Agent.objects.create(tenant=tenant, crm_username="a", email="a@acme.com")

    counts = upsert(
        tenant, connection, [record("1", owner_id=ours.pk), record("2", owner_id=stranger.pk)]
    )

    assert (counts.created, counts.invalid_records) == (1, 1)
    assert stored(tenant)["1"].owner_id == ours.pk


CRM_LINKS = [
    "https://app.hubspot.com/contacts/4212/record/0-1/17",
    "https://crm.example.com/?id=17",
    "https://crm.example.com#17",
    "HTTPS://Crm.Example.com:8443/r/17",
    "https://user:pw@crm.example.com/r/17",
    "https://us?er:pw@crm.example.com/r/17",  # a '?' before the host
    "https://[::1]/r/17",
    "https://[::zz]/r/17",
    "https://192.0.2.1/r/17",
    "https://crm.example.com",  # no path: the whole check
    "https://crm.example.com/r/a b",
    "https://crm.example.com/r/a\tb",
    "https://crm.example.com/r/a\x00b",
    "https://crm.example.com/" + "x" * 2000,
    "ftp://crm.example.com/r/17",
    "mailto:someone@example.com",
    "javascript://crm.example.com/%0aalert(1)",
    "https://-crm.example.com/r/17",
    "https://crm.example.c/r/17",
    "https://xn--crm-fsa.example.com/r/17",
    "https://crmé.example.com/r/17",
    "//crm.example.com/r/17",
    "crm.example.com/r/17",
]


@pytest.mark.parametrize("link", CRM_LINKS)
def test_the_crm_link_shortcut_takes_exactly_what_the_url_field_takes(link):
    field = Contact._meta.get_field("crm_url")
    try:
        expected = field.clean(link, None)
    except ValidationError:
        expected = "refused"
    try:
        got = services._clean_crm_url(link)
    except ValidationError:
        got = "refused"

    assert got == expected


def test_custom_fields_that_are_not_json_are_still_refused(tenant, connection):
    counts = upsert(
        tenant,
        connection,
        [
            record("1", custom_fields={"tier": "gold", "score": 3, "vip": None}),
            record("2", custom_fields={"tier": object()}),
            record("3", custom_fields={"tier": {"nested": ["a", 1]}}),
        ],
    )

    assert (counts.created, counts.invalid_records) == (2, 1)
    contacts = stored(tenant)
    assert contacts["1"].custom_fields == {"tier": "gold", "score": 3, "vip": None}
    assert contacts["3"].custom_fields == {"tier": {"nested": ["a", 1]}}


@pytest.mark.parametrize(
    "value", [{}, {"tier": "gold"}, {"a": 'é"\\\n'}, {"n": 1}, {"x": ["y"]}, [1, 2], "text"]
)
def test_a_json_column_is_written_as_json_dumps_writes_it(value):
    assert services._json_text(value) == json.dumps(value)
    assert services._json_text(value) == json.dumps(value)  # the second time from the cache

"""The caller card: `contacts.selectors.caller_card`, which lookup and routing both use."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts.models import Contact
from contacts.selectors import MAX_MATCHES, caller_card
from contacts.services import contact_delete
from core.scoping import tenant_scope

pytestmark = pytest.mark.django_db


def card(tenant, number):
    with tenant_scope(tenant):
        return caller_card(tenant=tenant, number=number)


def age(contact: Contact, days: int) -> None:
    """Make the contact look created and last updated `days` ago."""
    moment = timezone.now() - timedelta(days=days)
    with tenant_scope(contact.tenant_id):
        Contact.objects.filter(pk=contact.pk).update(created_at=moment, updated_at=moment)


def test_it_finds_the_caller_whatever_format_either_number_was_written_in(
    tenant, make_contact, make_agent
):
    owner = make_agent(tenant)
    contact = make_contact(
        tenant,
        "020 7946 0018",
        first_name="Ada",
        last_name="Lovelace",
        company="Analytical Engines",
        crm_url="https://crm.example.com/contacts/7",
        owner=owner,
        custom_fields={"tier": "gold"},
    )

    result = card(tenant, "+44 (0)20-7946-0018")

    assert result.known and not result.ambiguous
    assert result.number == "+442079460018"
    assert result.contact.id == contact.pk
    assert result.contact.name == "Ada Lovelace"
    assert result.contact.company == "Analytical Engines"
    assert result.contact.crm_url == "https://crm.example.com/contacts/7"
    assert result.contact.custom_fields == {"tier": "gold"}
    assert result.contact.owner.extension == "1093"
    assert result.contact.owner.crm_username == "agent.017"
    assert result.matches == (result.contact,)


def test_it_reads_a_contacts_local_number_with_the_contacts_country(tenant, make_contact):
    make_contact(tenant, "0532 123 45 67", first_name="Mehmet", country="TR")

    assert card(tenant, "+905321234567").contact.first_name == "Mehmet"
    assert card(tenant, "+445321234567").known is False


def test_it_answers_unknown_for_a_number_nobody_has(tenant, make_contact):
    make_contact(tenant, "020 7946 0018")

    result = card(tenant, "020 7946 0099")

    assert result == type(result)(
        number="+442079460099", known=False, ambiguous=False, contact=None, matches=()
    )


@pytest.mark.parametrize("number", ["", "call me", "12", "+999 123", "x" * 10_000, "\x00", None])
def test_it_answers_unknown_with_the_raw_input_for_unreadable_numbers(tenant, number):
    result = card(tenant, number)

    assert (result.known, result.contact, result.matches) == (False, None, ())
    assert result.number == (number or "")


def test_it_ignores_deleted_contacts_and_other_tenants(tenant, other_tenant, make_contact):
    gone = make_contact(tenant, "020 7946 0018")
    make_contact(other_tenant, "+44 20 7946 0018", first_name="Elsewhere")
    with tenant_scope(tenant):
        contact_delete(contact=gone)

    assert card(tenant, "02079460018").known is False


@pytest.fixture
def shared_number(tenant, make_contact, make_agent):
    """Three contacts share one number: oldest, newest, and one with an owner in between."""
    oldest = make_contact(tenant, "020 7946 0018", first_name="Oldest")
    owned = make_contact(tenant, "020 7946 0018", first_name="Owned", owner=make_agent(tenant))
    newest = make_contact(tenant, "020 7946 0018", first_name="Newest")
    age(oldest, 30)
    age(owned, 20)
    age(newest, 1)
    return tenant


@pytest.mark.parametrize(
    ("policy", "caller"),
    [("first_match", "Oldest"), ("most_recent", "Newest"), ("owner", "Owned")],
)
def test_it_picks_the_caller_among_shared_numbers_by_the_tenants_policy(
    shared_number, policy, caller
):
    shared_number.phonebook_settings.shared_number_policy = policy

    result = card(shared_number, "+442079460018")

    assert result.known and not result.ambiguous
    assert result.contact.first_name == caller
    assert result.matches[0] == result.contact
    assert {m.first_name for m in result.matches} == {"Oldest", "Owned", "Newest"}


def test_it_flags_a_shared_number_ambiguous_when_the_policy_says_so(shared_number):
    shared_number.phonebook_settings.shared_number_policy = "ambiguous"

    result = card(shared_number, "+442079460018")

    assert result.known and result.ambiguous and result.contact is None
    assert len(result.matches) == 3


def test_it_is_not_ambiguous_with_a_single_match_under_the_ambiguous_policy(tenant, make_contact):
    tenant.phonebook_settings.shared_number_policy = "ambiguous"
    make_contact(tenant, "020 7946 0018", first_name="Only")

    assert card(tenant, "02079460018").contact.first_name == "Only"


def test_it_falls_back_to_the_most_recent_contact_when_no_one_has_an_owner(tenant, make_contact):
    tenant.phonebook_settings.shared_number_policy = "owner"
    age(make_contact(tenant, "020 7946 0018", first_name="Old"), 5)
    make_contact(tenant, "020 7946 0018", first_name="New")

    assert card(tenant, "02079460018").contact.first_name == "New"


def test_it_lists_a_contact_holding_the_number_twice_once(tenant, make_contact):
    make_contact(tenant, "020 7946 0018", "+442079460018")

    assert len(card(tenant, "02079460018").matches) == 1


def test_it_caps_the_matches_of_a_switchboard_number(tenant, make_contact):
    for _ in range(MAX_MATCHES + 2):
        make_contact(tenant, "020 7946 0018")

    assert len(card(tenant, "02079460018").matches) == MAX_MATCHES


def test_it_answers_in_one_query_however_many_contacts_and_owners_match(
    tenant, make_contact, make_agent
):
    for index in range(5):
        make_contact(tenant, "020 7946 0018", owner=make_agent(tenant, f"agent.{index}"))

    with CaptureQueriesContext(connection) as queries:
        result = card(tenant, "02079460018")
        owners = [m.owner.extension for m in result.matches]

    assert len(owners) == 5
    assert len(queries) == 1


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(number=st.text(max_size=300))
def test_it_never_raises_whatever_the_number(tenant, number):
    result = card(tenant, number)

    assert result.known is False
    assert result.number == number or result.number.startswith("+")

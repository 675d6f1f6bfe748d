"""Every list endpoint caps ?limit= and answers a clear 400 for a limit or offset it cannot use."""

import pytest

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999"  # past PostgreSQL's bigint
LISTS = [
    "/api/v1/agents",
    "/api/v1/numbers",
    "/api/v1/contacts",
    "/api/v1/routing/rules",
    "/api/v1/calls",
    "/api/v1/deliveries",
    "/api/v1/connections",
    "/api/v1/apps",
]


@pytest.fixture
def listed(tenant, make_agent, make_contact):
    """A row in some lists: an empty list is answered before any LIMIT reaches the database."""
    make_agent(tenant)
    make_contact(tenant, "020 7946 0018")


@pytest.mark.parametrize("path", LISTS)
def test_a_huge_limit_is_capped(api, listed, path):
    response = api.get(f"{path}?limit={HUGE}")

    assert response.status_code == 200
    assert "limit=1000" in (response.json()["next"] or "limit=1000")


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"offset={HUGE}", "offset"),
        ("offset=-1", "offset"),
        ("offset=ten", "offset"),
        ("limit=0", "limit"),
        ("limit=lots", "limit"),
    ],
)
def test_an_unusable_limit_or_offset_is_a_400_naming_it(api, listed, path, query, field):
    response = api.get(f"{path}?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_the_cap_is_what_a_page_holds(api, tenant, make_contact):
    for number in range(3):
        make_contact(tenant, f"020 7946 001{number}")

    page = api.get(f"/api/v1/contacts?limit={HUGE}&offset=1").json()

    assert (page["count"], len(page["results"])) == (3, 2)


def test_a_calls_since_that_is_no_date_is_a_400(api):
    response = api.get("/api/v1/calls?since=2026-13-45T00:00:00Z")

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "since"

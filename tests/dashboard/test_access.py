"""Roles: viewers read, admins and owners configure; every page is the session tenant's."""

import pytest

from dashboard.navigation import PAGES

pytestmark = pytest.mark.django_db

PAGE_URLS = ["/app/", *[f"/app/{page.url_name}/" for page in PAGES[1:]]]
# Pages that show nothing of any tenant but its name yet (placeholders). Whoever builds a page
# moves its routes from here to the page's own isolation tests.
ISOLATED_ROUTES = {
    "connections/",
    "phonebook/",
    "agents/",
    "routing/",
    "apps/",
    "api-keys/",
    "settings/",
}


@pytest.mark.parametrize("url", PAGE_URLS)
def test_every_page_renders_for_a_viewer_with_the_whole_menu(viewer_client, url):
    response = viewer_client.get(url)

    assert response.status_code == 200
    for page in PAGES:
        assert f">{page.label.replace('&', '&amp;')}</a>" in response.text
    assert response.text.count('aria-current="page"') == 1


def test_a_viewer_sees_no_write_control(viewer_client):
    response = viewer_client.get("/app/")

    assert response.context["can_configure"] is False
    # The only forms a viewer gets: signing out (and switching tenant with several).
    assert response.text.count('method="post"') == 1
    assert 'action="/app/logout"' in response.text


@pytest.mark.parametrize("url", PAGE_URLS)
def test_a_viewers_write_is_refused_403_whatever_the_page(viewer_client, url):
    response = viewer_client.post(url, {"anything": "1"})

    assert response.status_code == 403
    assert "This needs the admin role; you are viewer here." in response.text


@pytest.mark.parametrize("route", sorted(ISOLATED_ROUTES))
def test_a_placeholder_page_shows_only_the_session_tenant(other_client, tenant, route):
    url = f"/app/{route}"
    response = other_client.get(url)

    assert response.status_code == 200
    assert "Globex" in response.text and tenant.name not in response.text

"""In a real browser: connect HubSpot through its OAuth consent page, sync with a real Celery
worker, and find the synced contacts in the phonebook."""

import time

import pytest

from contacts.models import Contact
from core.scoping import tenant_scope

pytestmark = pytest.mark.integration


def start_bulk_worker(processes) -> None:
    worker = processes(
        "worker", "-Q", "bulk", "-c", "1", "-l", "INFO", "--without-gossip", "--without-mingle",
        "--purge", name="bulk-worker",
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while "ready." not in worker.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "ready." in worker.log.read_text(), worker.log.read_text()


def test_an_admin_connects_hubspot_by_oauth_syncs_and_finds_its_contacts(
    signed_in_page, tenant, hubspot, live_server, processes, settings
):
    from playwright.sync_api import expect

    settings.PUBLIC_BASE_URL = live_server.url  # where HubSpot sends the browser back
    start_bulk_worker(processes)
    page = signed_in_page(tenant, "admin")

    page.get_by_role("link", name="CRM connections").click()
    expect(page.get_by_text("No CRM connected yet")).to_be_visible()
    page.get_by_role("link", name="Connect HubSpot").click()
    page.get_by_label("Name").fill("Sales HubSpot")
    page.get_by_label("Client ID").fill("fake-client-id")
    page.get_by_label("Client secret").fill("fake-client-secret")
    page.get_by_label("Authorize URL").fill(hubspot.url + "/oauth/authorize")
    page.get_by_label("Base URL").fill(hubspot.url)
    page.get_by_role("button", name="Continue to HubSpot").click()

    expect(page.get_by_role("heading", name="Connect app to account 4212")).to_be_visible()
    page.get_by_role("link", name="Connect app").click()

    expect(page.get_by_text("Sales HubSpot (HubSpot) is connected")).to_be_visible()
    expect(page.get_by_text("Connected").first).to_be_visible()
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text("HubSpot answered: read its contacts")).to_be_visible()
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_text("A sync is queued")).to_be_visible()
    runs = page.get_by_role("region", name="Sync runs")
    for _ in range(60):  # the worker's run appears; reload as a person would
        if runs.get_by_text("succeeded").count():
            break
        time.sleep(0.5)
        page.reload()
    expect(runs.get_by_text("succeeded")).to_be_visible()
    expect(runs.locator("td.num").first).to_have_text("270")  # 250 contacts + 20 companies

    with tenant_scope(tenant):
        synced = (
            Contact.objects.filter(is_company=False, phones__e164__isnull=False)
            .exclude(last_name="")
            .first()
        )
        number = synced.phones.exclude(e164=None).first().e164
    page.get_by_role("link", name="Phonebook").click()
    expect(page.get_by_text("270 contacts")).to_be_visible()
    page.get_by_label("Search").fill(synced.name)
    expect(page.get_by_role("link", name=synced.name).first).to_be_visible()
    page.get_by_label("Search").fill(number)
    results = page.locator("#phonebook-results")
    expect(results.get_by_role("link", name=synced.name).first).to_be_visible()
    results.get_by_role("link", name=synced.name).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(synced.name)
    expect(page.get_by_role("link", name="Sales HubSpot (HubSpot)")).to_be_visible()

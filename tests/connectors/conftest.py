import time
from functools import partial

import pytest

from connectors.models import Connection
from connectors.services import connection_create
from core.scoping import tenant_scope
from fakes.hubspot import FakeHubSpot
from fakes.pipedrive import FakePipedrive
from fakes.salesforce import FakeSalesforce


@pytest.fixture
def start_fake(settings):
    """start_fake(FakeClass, **options): a fake CRM on 127.0.0.1, stopped after the test."""
    settings.ALLOW_PRIVATE_URLS = True
    started = []

    def start(fake_class, **options):
        fake = fake_class(**options)
        fake.start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


@pytest.fixture
def make_hubspot(start_fake):
    return partial(start_fake, FakeHubSpot)


@pytest.fixture
def make_pipedrive(start_fake):
    return partial(start_fake, FakePipedrive)


@pytest.fixture
def make_salesforce(start_fake):
    return partial(start_fake, FakeSalesforce)


@pytest.fixture
def hubspot(make_hubspot) -> FakeHubSpot:
    return make_hubspot(contacts=250, companies=20)


@pytest.fixture
def salesforce(make_salesforce) -> FakeSalesforce:
    return make_salesforce(contacts=300, accounts=20, leads=30)


@pytest.fixture
def make_connection(db):
    def make(tenant, fake: FakeHubSpot, credentials: dict | None = None, **fields) -> Connection:
        credentials = credentials or {"private_app_token": next(iter(fake.private_app_tokens))}
        fields.setdefault(
            "settings", {"objects": ["contacts", "companies"], "custom_fields": ["lifecyclestage"]}
        )
        with tenant_scope(tenant):
            return connection_create(
                tenant=tenant,
                provider="hubspot",
                name="HubSpot",
                credentials={**credentials, "base_url": fake.url},
                **fields,
            )

    return make


def salesforce_credentials(fake: FakeSalesforce, **overrides) -> dict:
    """A connected Salesforce org's credentials: a fresh session, a refresh token, the client."""
    return {
        **fake.issue_tokens(),
        "expires_at": time.time() + 7000,
        "client_id": "fake-client-id",
        "client_secret": "fake-client-secret",
        "login_url": fake.url,
        **overrides,
    }

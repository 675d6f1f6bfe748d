import os
import shutil
import time

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from calls import live
from connectors import pacing
from contacts.models import Contact
from contacts.services import PhoneInput, contact_create
from core.scoping import tenant_scope
from core.shared_redis import forget_generations, listener_token, redis_client
from tenants.authentication import rate_counters
from tenants.models import Agent, ApiKey, Tenant, tenant_settings_models
from tenants.services import api_key_create, tenant_update


def pytest_configure(config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and not config.pluginmanager.has_plugin("tests.xdist_isolation"):
        raise pytest.UsageError(
            "xdist workers would share Redis databases: run bin/test, or pass "
            "-p tests.xdist_isolation (tests/xdist_isolation.py)"
        )


@pytest.fixture(scope="session", autouse=True)
def _flush_by_delete():
    """Empty the tables after a transactional test with DELETE instead of TRUNCATE on PostgreSQL.

    The same empty tables, sequences left as they are (as Django's flush after a test leaves
    them), in one transaction with the foreign keys checked at commit (Django makes them
    DEFERRABLE INITIALLY DEFERRED). TRUNCATE gives each of the ~50 tables new files: 150-200 ms
    a flush here, ~50 ms as DELETE, after each of the suite's several hundred transactional tests.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if not tables or reset_sequences or allow_cascade:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        return ["SET CONSTRAINTS ALL DEFERRED;"] + [
            f"DELETE FROM {self.quote_name(table)};"  # noqa: S608 - quoted model tables
            for table in tables
        ]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", sql_flush)
        yield


@pytest.fixture(autouse=True)
def _roomy_pacing(monkeypatch) -> None:
    """Pace CRM requests with room for a loaded test machine's delays.

    A request's place in a rate limit's log is taken just before it is sent; the fakes count
    it when their handler runs. The 25 ms a network's jitter gets is less than two test workers
    beside their servers and browsers delay a request at a load average of 9 (one 429 in five
    runs of the whole suite), so the tests give it 150 ms: the log's logic is the same.
    """
    monkeypatch.setattr(pacing, "JITTER_SECONDS", 0.15)


@pytest.fixture(autouse=True)
def _fresh_cache(settings) -> None:
    cache.clear()
    if settings.REDIS_URL:  # rate-limit counters live beside the cache, outside its key space
        redis_client().flushdb()
    # What processes remember against generations and count in batches, as after a restart.
    forget_generations()
    rate_counters.clear()
    live.stream_slots_forget()  # streams a test left half-read hold none of the next one's


@pytest.fixture(params=["listener", "round trip"])
def generations(request, settings) -> str:
    """Run the test both ways generations are checked (core/shared_redis.py): against this
    process's listener, once it is confirmed healthy, and with a Redis round trip each."""
    settings.GENERATION_LISTENER = request.param == "listener"
    deadline = time.monotonic() + 10
    while settings.GENERATION_LISTENER and listener_token() is None:
        assert time.monotonic() < deadline, "the generation listener did not start"
        time.sleep(0.01)
    return request.param


@pytest.fixture
def make_tenant(db):
    def make(slug: str = "acme", **fields) -> Tenant:
        """A tenant; context settings may be given by their API names (callback_url=...)."""
        fields.setdefault("name", slug.title())
        settings_changes: dict[str, dict] = {}
        for model in tenant_settings_models():
            for api_name, field in model.API_FIELDS.items():
                if api_name in fields:
                    settings_changes.setdefault(model.related_name(), {})[field] = fields.pop(
                        api_name
                    )
        tenant = Tenant.objects.create(slug=slug, **fields)
        return tenant_update(tenant=tenant, **settings_changes) if settings_changes else tenant

    return make


@pytest.fixture
def tenant(make_tenant) -> Tenant:
    return make_tenant("acme", default_region="GB", timezone="Europe/London")


@pytest.fixture
def other_tenant(make_tenant) -> Tenant:
    return make_tenant("globex")


@pytest.fixture
def make_key():
    def make(tenant: Tenant, kind: str = ApiKey.Kind.SERVER, **options) -> str:
        return api_key_create(tenant=tenant, kind=kind, **options)[1]

    return make


@pytest.fixture
def make_client(make_key):
    """An API client authenticated with a new server key of `tenant`."""

    def make(tenant: Tenant, **key_options) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(tenant, **key_options)}")
        return client

    return make


@pytest.fixture
def api(make_client, tenant) -> APIClient:
    return make_client(tenant)


@pytest.fixture
def other_api(make_client, other_tenant) -> APIClient:
    return make_client(other_tenant)


@pytest.fixture
def in_tenant(tenant):
    with tenant_scope(tenant):
        yield tenant


@pytest.fixture
def make_contact():
    """Create a contact of `tenant` with numbers given in any format (as mobile numbers)."""

    def make(tenant: Tenant, *numbers: str, **fields) -> Contact:
        with tenant_scope(tenant):
            return contact_create(
                tenant=tenant, phones=[PhoneInput(n, "mobile") for n in numbers], **fields
            )

    return make


@pytest.fixture
def make_agent():
    def make(tenant: Tenant, crm_username: str = "agent.017", **fields) -> Agent:
        fields.setdefault("display_name", "Priya Shah")
        fields.setdefault("extension", "1093")
        agent = Agent(tenant=tenant, crm_username=crm_username, **fields)
        agent.save()
        return agent

    return make


@pytest.fixture
def chromium(monkeypatch):
    """Debian's Chromium driven by Playwright (bin/test exports CHROMIUM_PATH)."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing on CI: bin/test installs it (ensure_chromium).")
        pytest.skip("Chromium is not installed: apt-get install chromium (or set CHROMIUM_PATH)")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop in this thread; the test's ORM calls are sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path)
        yield browser
        browser.close()

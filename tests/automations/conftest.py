import pytest

from automations.models import App
from automations.services import app_create
from calls.models import Call, CallState, CallStatus
from calls.services import call_event_record, call_place
from core.scoping import tenant_scope
from tenants.models import Agent, CallerIdNumber
from tests.automations.receiver import WebhookReceiver
from tests.calls.conftest import database_url, processes  # noqa: F401 - real Celery workers


@pytest.fixture
def receiver(settings):
    settings.ALLOW_PRIVATE_URLS = True
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def make_app(tenant):
    def make(slug: str, kind: str = App.Kind.WEBHOOK, config: dict | None = None, **fields) -> App:
        fields.setdefault("name", slug.title())
        fields.setdefault("events", [App.Event.CALL_END])
        with tenant_scope(tenant):
            return app_create(tenant=tenant, slug=slug, kind=kind, config=config or {}, **fields)

    return make


@pytest.fixture
def end_call(tenant):
    """Place a call and end it with `status` (the outbox rows are written, not yet run)."""

    def end(status: str = CallStatus.ANSWER, customer: str = "+447400123456") -> Call:
        with tenant_scope(tenant):
            agent, _ = Agent.objects.get_or_create(
                tenant=tenant, crm_username="agent.017", defaults={"email": "priya@acme.example"}
            )
            CallerIdNumber.objects.get_or_create(tenant=tenant, number="+442079460000")
            call, _ = call_place(
                tenant=tenant,
                call_type="server",
                from_number="+442079460000",
                customer_number=customer,
                agent=agent,
                uuid="",
            )
            from django.utils import timezone

            now = timezone.now()
            if status == CallStatus.ANSWER:
                call_event_record(call=call, kind=CallState.ANSWERED, occurred_at=now)
            return call_event_record(
                call=call, kind=CallState.ENDED, status=status, occurred_at=now
            )

    return end

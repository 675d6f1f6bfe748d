"""End to end: PostgreSQL, Redis, a real Celery worker and every CRM's strict fake at once.

A call reported through the events API is logged by the worker into each CRM connected, once;
the same end posted again or the task run again adds nothing; notes added later update the same
records.
"""

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from automations.models import CrmLog
from automations.tasks import crm_log_send
from calls.models import Call, TelephonyEvent
from core.scoping import tenant_scope
from tenants.models import Agent
from tests.automations.crm_providers import (
    AGENT_EMAIL,
    DETAILS,
    PROVIDERS,
    START,
    Crm,
    connect,
    end,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def crms(settings) -> list[Crm]:
    """Every provider's fake, each with a connection that logs calls and the caller synced."""
    settings.ALLOW_PRIVATE_URLS = True
    crms = [crm() for crm in PROVIDERS.values()]
    yield crms
    for crm in crms:
        crm.stop()


@pytest.fixture
def connected(tenant, crms) -> None:
    for crm in crms:
        connect(tenant, crm)
    with tenant_scope(tenant):
        Agent(tenant=tenant, crm_username="agent.017", email=AGENT_EMAIL).save()


def logs(tmp_path: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(tmp_path.glob("*.log")))


def wait_until(condition: Callable[[], bool], tmp_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, logs(tmp_path)
        time.sleep(0.1)


def crm_logs(tenant) -> dict[str, CrmLog]:
    with tenant_scope(tenant):
        return {log.connection.provider: log for log in CrmLog.objects.select_related("connection")}


def attempts(tenant) -> dict[str, list[str]]:
    with tenant_scope(tenant):
        return {
            provider: [a.action for a in log.attempts.all()]
            for provider, log in crm_logs(tenant).items()
        }


def test_a_worker_logs_a_reported_call_into_every_crm_once_and_updates_it(
    api, tenant, crms, connected, processes, tmp_path
):
    processes.worker("--purge")
    answers = [api.post("/api/v1/telephony/events", e, format="json") for e in (START, end())]
    assert [a.status_code for a in answers] == [202, 202]

    def all_logged() -> bool:
        found = crm_logs(tenant)
        return len(found) == len(crms) and all(log.state == "succeeded" for log in found.values())

    wait_until(all_logged, tmp_path)
    logged = crm_logs(tenant)
    with tenant_scope(tenant):
        call = Call.objects.get(external_id=DETAILS["call_id"])
    for crm in crms:
        remote_id = logged[crm.provider].remote_id
        assert list(crm.calls()) == [remote_id], crm.provider
        crm.check_call(crm.calls()[remote_id], call=call, contact_id=crm.contact_id())

    again = api.post("/api/v1/telephony/events", end(), format="json")  # the phone system retried
    renamed = api.post("/api/v1/telephony/events", end(id="e-end-again"), format="json")
    assert (again.status_code, renamed.status_code) == (200, 202)
    for log in logged.values():  # a redelivered task: the worker runs it again
        crm_log_send.apply_async((tenant.pk, str(log.pk)), queue="realtime")
    with tenant_scope(tenant):
        wait_until(lambda: not TelephonyEvent.objects.filter(processed_at=None).exists(), tmp_path)
    time.sleep(1.5)  # room for a duplicate to show up, had there been one

    assert attempts(tenant) == {crm.provider: ["create"] for crm in crms}
    assert all(len(crm.calls()) == 1 for crm in crms)

    notes = api.post(
        f"/api/v1/calls/{call.call_id}/notes", {"notes": "Call back on Friday."}, format="json"
    )
    assert notes.status_code == 200

    wait_until(
        lambda: attempts(tenant) == {crm.provider: ["create", "update"] for crm in crms}, tmp_path
    )
    for crm in crms:
        remote_id = logged[crm.provider].remote_id
        assert list(crm.calls()) == [remote_id], crm.provider
        assert "Call back on Friday." in crm.later_text(remote_id), crm.provider

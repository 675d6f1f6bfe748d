"""Telling a tenant's owners that a CRM connection's call logging or an app keeps failing.

An outage (core/outages.py) of a connection is its CRM-log attempts all failing for an hour; of
an app, its runs. The owners get one email per outage (`alerted_for` on the connection or app);
the dashboard's Connections and Apps pages show it while it lasts.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.urls import reverse

from automations.models import App, AppRun, CrmLogAttempt
from connectors.models import Connection
from core import http
from core.outages import Outage, outage_of
from core.scoping import across_all_tenants, tenant_scope
from tenants.models import Tenant
from tenants.services import owners_tell

logger = logging.getLogger(__name__)


def connection_outage(connection: Connection, *, now: datetime | None = None) -> Outage | None:
    """The connection's call-logging outage, if its attempts have all failed for an hour."""
    attempts = CrmLogAttempt.objects.filter(crm_log__connection=connection)
    return outage_of(attempts, at="started_at", succeeded=Q(succeeded=True), now=now)


def app_outage(app: App, *, now: datetime | None = None) -> Outage | None:
    """The app's outage, if its runs have all failed for an hour (skipped runs do not count)."""
    runs = AppRun.objects.filter(app=app, state__in=[AppRun.State.SUCCEEDED, AppRun.State.FAILED])
    return outage_of(runs, at="finished_at", succeeded=Q(state=AppRun.State.SUCCEEDED), now=now)


def outage_error(outage: Outage) -> str:
    """What the latest failed attempt said."""
    return str(getattr(outage.latest, "error", "")) or "no answer"


def after_call_alerts_send(*, now: datetime | None = None) -> int:
    """Email owners once about each failing connection and app (beat); how many were told."""
    with across_all_tenants():
        tenant_ids = list(Tenant.objects.filter(is_active=True).values_list("pk", flat=True))
    told = 0
    for tenant_id in tenant_ids:
        with tenant_scope(tenant_id):
            tenant = Tenant.objects.get(pk=tenant_id)
            for connection in Connection.objects.exclude(status=Connection.Status.DISABLED):
                told += _tell(tenant, connection, connection_outage(connection, now=now))
            for app in App.objects.filter(enabled=True):
                told += _tell(tenant, app, app_outage(app, now=now))
    return told


def _tell(tenant: Tenant, thing: Connection | App, outage: Outage | None) -> int:
    if outage is None or thing.alerted_for == outage.since:
        return 0
    if isinstance(thing, Connection):
        what = f"calls are not being logged into {thing.name}"
        page = reverse("dashboard:connections-detail", args=[thing.pk])
    else:
        what = f"the app {thing.name} keeps failing"
        page = reverse("dashboard:apps")
    told = owners_tell(
        tenant=tenant,
        subject=what,
        body=f"For {tenant.name}, {what}: every attempt has failed since "
        f"{outage.since:%Y-%m-%d %H:%M} UTC (latest: {outage_error(outage)}). Nothing is lost: "
        f"the failed ones are kept and can run again once it works.\n\n"
        f"{settings.PUBLIC_BASE_URL}{page}\n",
    )
    thing.alerted_for = outage.since
    thing.save(update_fields=["alerted_for"])
    return 1 if told else 0


SLACK_DEADLINE_SECONDS = 5.0


def slack_alert(*, tenant: Tenant, text: str) -> int:
    """Post `text` to each of the tenant's enabled Slack apps; how many took it.

    Sent as it is (no template), and a Slack that does not answer is logged, never raised: the
    owners have their email either way.
    """
    posted = 0
    for app in App.objects.filter(enabled=True, kind="slack"):
        url = app.secrets.get("webhook_url", "")
        try:
            answer = http.post(
                url,
                deadline_seconds=SLACK_DEADLINE_SECONDS,
                headers={"Content-Type": "application/json"},
                body=json.dumps({"text": text}).encode(),
            )
        except http.HttpError as error:
            logger.warning("Slack app %s did not take the alert: %s", app.pk, error)
            continue
        posted += 200 <= answer.status_code < 300
    return posted

"""The one list of app kinds: kind name -> dotted path of its class (automations/kinds/base.py).

Model choices, the API's validation and the runner come from here. Each kind is a module here:

- `webhook`: seed 004 in full (the engine is automations/webhooks).
- `slack`: a message to a Slack incoming webhook, sent through the same webhook engine; the seed
  001 triggers are presets.
- `email`: seed 001's follow-up email, its template chosen by the call's outcome.
- `ticket`: seed 001's ticket for an unresolved call, opened in a helpdesk (automations/tickets).
- `warehouse`: seed 001's data warehouse, one row per call upserted into the tenant's PostgreSQL
  table (automations/warehouse.py).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from automations.kinds.base import AppKind

KINDS: dict[str, str] = {
    "webhook": "automations.kinds.webhook.WebhookKind",
    "slack": "automations.kinds.slack.SlackKind",
    "email": "automations.kinds.email.EmailKind",
    "ticket": "automations.kinds.ticket.TicketKind",
    "warehouse": "automations.kinds.warehouse.WarehouseKind",
}


@cache
def kind_for(name: str) -> AppKind:
    return import_string(KINDS[name])()


def once_only() -> list[str]:
    """Kinds whose effect must never happen twice (a lost worker does not make them run again)."""
    return [name for name in KINDS if kind_for(name).once_only]

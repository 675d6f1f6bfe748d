"""`ticket`: seed 001's ticket for an unresolved call, in a helpdesk (automations/tickets.py)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from automations import tickets
from automations.kinds.base import AppKind, Outcome
from automations.models import App
from connectors.interface import ConnectorError


class TicketKind(AppKind):
    def validated_settings(
        self, *, timing: str, events: list[str], config: dict[str, Any], secrets: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if timing == App.Timing.REALTIME:
            raise ValidationError({"timing": "A ticket is opened after the call: post_call."})
        tickets.config_check(config)
        return config, {}

    def preset_condition(self, config: dict[str, Any]) -> str:
        return tickets.CONDITION

    def run(
        self,
        app: App,
        context: dict[str, Any],
        *,
        dry_run: bool,
        deadline_seconds: float | None = None,
    ) -> Outcome:
        fields = tickets.ticket_fields(app.config, context)
        if dry_run:
            return Outcome(True, False, fields, {"data": fields, "message": fields["subject"]})
        try:
            data = tickets.ticket_open(connection_id=app.config["connection"], fields=fields)
        except ConnectorError as error:
            return Outcome(False, True, fields, None, [], str(error))
        verb = "opened" if data["created"] else "was open already"
        return Outcome(
            True, True, fields, {"data": data, "message": f"Ticket {data['ticket_id']} {verb}"}
        )

"""`warehouse`: seed 001's data warehouse, one row per call upserted (automations/warehouse.py)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from automations import warehouse
from automations.kinds.base import AppKind, Outcome
from automations.models import App


class WarehouseKind(AppKind):
    def validated_settings(
        self, *, timing: str, events: list[str], config: dict[str, Any], secrets: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        public = {k: v for k, v in config.items() if k != "dsn"}
        warehouse.WarehouseConfig.from_settings(public, config.get("dsn") or secrets.get("dsn"))
        if timing == App.Timing.REALTIME:
            raise ValidationError({"timing": "A warehouse app runs post-call."})
        return public, {"dsn": config.get("dsn") or secrets.get("dsn")}

    def run(
        self,
        app: App,
        context: dict[str, Any],
        *,
        dry_run: bool,
        deadline_seconds: float | None = None,
    ) -> Outcome:
        try:
            config = warehouse.WarehouseConfig.from_settings(app.config, app.secrets.get("dsn"))
        except ValidationError as error:  # saved before a setting changed (ALLOW_PRIVATE_URLS)
            return Outcome(False, False, None, None, [], f"invalid settings: {error.messages[0]}")
        row = warehouse.warehouse_row(config, context["event"])
        request = {**config.describe(), "row": row}
        if dry_run:
            return Outcome(True, False, request, {"data": None, "message": "not written (test)"})
        attempt = warehouse.timed_upsert(config, row)
        if "error" in attempt:
            return Outcome(False, True, request, None, [attempt], attempt["error_class"])
        data = {"table": request["table"], "call_id": row[config.columns["call_id"]]}
        result = {"data": {**data, "action": attempt["action"]}, "message": attempt["action"]}
        return Outcome(True, True, request, result, [attempt])

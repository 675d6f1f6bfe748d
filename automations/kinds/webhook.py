"""`webhook`: seed 004 in full, through the webhook engine (automations/webhooks)."""

from __future__ import annotations

from typing import Any

from automations.kinds.base import AppKind, Outcome
from automations.models import App
from automations.webhooks.config import WebhookConfig, join_secrets, split_secrets
from automations.webhooks.send import webhook_send


class WebhookKind(AppKind):
    def validated_settings(
        self, *, timing: str, events: list[str], config: dict[str, Any], secrets: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        joined = join_secrets(config, secrets)
        WebhookConfig.from_settings(joined, realtime=timing == App.Timing.REALTIME)
        return split_secrets(joined)

    def run(
        self,
        app: App,
        context: dict[str, Any],
        *,
        dry_run: bool,
        deadline_seconds: float | None = None,
    ) -> Outcome:
        realtime = app.timing == App.Timing.REALTIME
        config = WebhookConfig.from_settings(
            join_secrets(app.config, app.secrets), realtime=realtime
        )
        return webhook_outcome(config, context, dry_run=dry_run, deadline_seconds=deadline_seconds)


def webhook_outcome(
    config: WebhookConfig,
    context: dict[str, Any],
    *,
    dry_run: bool,
    deadline_seconds: float | None,
) -> Outcome:
    """Send (or render) the request; its answer is the app's result."""
    sent = webhook_send(config, context, dry_run=dry_run, deadline_seconds=deadline_seconds)
    result = sent.as_json()
    return Outcome(
        succeeded=result["outcome"] in ("succeeded", "dry_run"),
        sent=result["outcome"] != "dry_run",
        request=result["request"],
        result={"data": result["data"], "message": result["message"]},
        attempts=result["attempts"],
        error=result["reason"] if result["outcome"] == "failed" else "",
    )

"""`slack`: a message to a Slack incoming webhook; seed 001's triggers are presets."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from automations.kinds.base import AppKind, Outcome
from automations.kinds.webhook import webhook_outcome
from automations.models import App
from automations.webhooks.config import WebhookConfig

# Seed 001's Slack triggers: condition and message for each.
SLACK_PRESETS = {
    "transfer_requested": {
        "condition": "transfer_requested",
        "message": "#support - Transfer requested by {{ contact.name }} "
        "({{ event.calling_number }})",
    },
    "low_satisfaction": {
        "condition": "satisfaction <= 2",
        "message": "#alerts - Unhappy customer: {{ event.summary }}",
    },
    "vip": {
        "condition": "contact.custom.vip == true",
        "message": "#vip - VIP call completed: {{ event.status }}",
    },
}


class SlackKind(AppKind):
    def validated_settings(
        self, *, timing: str, events: list[str], config: dict[str, Any], secrets: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        public = {k: v for k, v in config.items() if k != "webhook_url"}
        url = config.get("webhook_url") or secrets.get("webhook_url")
        _slack_config(public, url)
        return public, {"webhook_url": url}

    def preset_condition(self, config: dict[str, Any]) -> str:
        preset = SLACK_PRESETS.get(str(config.get("preset")))
        return preset["condition"] if preset else ""

    def run(
        self,
        app: App,
        context: dict[str, Any],
        *,
        dry_run: bool,
        deadline_seconds: float | None = None,
    ) -> Outcome:
        config = _slack_config(app.config, app.secrets.get("webhook_url"))
        return webhook_outcome(
            config, context, dry_run=dry_run, deadline_seconds=deadline_seconds, app=app
        )


def _slack_config(config: dict[str, Any], webhook_url: Any) -> WebhookConfig:
    unknown = set(config) - {"preset", "message"}
    if unknown:
        raise ValidationError({"config": f"Unknown Slack setting {sorted(unknown)[0]!r}."})
    preset = config.get("preset")
    if preset is not None and preset not in SLACK_PRESETS:
        raise ValidationError({"config.preset": f"One of {', '.join(SLACK_PRESETS)}."})
    message = config.get("message") or (SLACK_PRESETS[preset]["message"] if preset else "")
    if not isinstance(message, str) or not message.strip():
        raise ValidationError({"config.message": "A message template, or a preset."})
    if not isinstance(webhook_url, str) or not webhook_url.strip():
        raise ValidationError(
            {"config.webhook_url": "The Slack incoming-webhook URL (https://hooks.slack.com/…)."}
        )
    return WebhookConfig.from_settings(
        {"method": "POST", "url": webhook_url, "body": {"text": message}, "timeout": 10}
    )

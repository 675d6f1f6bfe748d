"""`webhook`: seed 004 in full, through the webhook engine (automations/webhooks)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from automations.kinds.base import AppKind, Outcome
from automations.models import App
from automations.webhooks.config import WebhookConfig, join_secrets, split_secrets
from automations.webhooks.send import Signing, webhook_send
from calls.selectors import live_signing_secrets


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
        return webhook_outcome(
            config, context, dry_run=dry_run, deadline_seconds=deadline_seconds, app=app
        )


def webhook_outcome(
    config: WebhookConfig,
    context: dict[str, Any],
    *,
    dry_run: bool,
    deadline_seconds: float | None,
    app: App,
) -> Outcome:
    """Send (or render) the request, signed as callbacks are; its answer is the app's result."""
    sent = webhook_send(
        config,
        context,
        dry_run=dry_run,
        deadline_seconds=deadline_seconds,
        signing=app_signing(app, context),
    )
    result = sent.as_json()
    return Outcome(
        succeeded=result["outcome"] in ("succeeded", "dry_run"),
        sent=result["outcome"] != "dry_run",
        request=result["request"],
        result={"data": result["data"], "message": result["message"]},
        attempts=result["attempts"],
        error=result["reason"] if result["outcome"] == "failed" else "",
    )


def app_signing(app: App, context: dict[str, Any]) -> Signing | None:
    """The tenant's callback signing secrets sign its apps' requests too (none: unsigned).

    The message id is the same for every send of this app about this call and event, so a
    receiver drops a repeat (https://www.standardwebhooks.com/).
    """
    secrets = live_signing_secrets(app.tenant)
    if not secrets:
        return None
    event = context.get("event", {})
    about = event.get("call_id") or uuid.uuid4().hex
    key = f"{app.pk}:{event.get('type', '')}:{about}".encode()
    return Signing(tuple(secrets), f"msg_{hashlib.sha256(key).hexdigest()[:32]}")

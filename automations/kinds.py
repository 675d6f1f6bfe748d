"""What each kind of app does with a call event, and how its settings are checked.

- `webhook`: seed 004 in full (automations/webhooks).
- `slack`: a message to a Slack incoming webhook, sent through the same webhook engine; the seed
  001 triggers are presets.
- `email`: seed 001's follow-up email, its template chosen by the call's outcome.
- `ticket`: seed 001's ticket for an unresolved call, opened in a helpdesk (automations/tickets).
- `warehouse`: seed 001's data warehouse, one row per call upserted into the tenant's PostgreSQL
  table (automations/warehouse.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email

from automations import tickets, warehouse
from automations.models import App
from automations.webhooks.config import WebhookConfig, join_secrets, split_secrets
from automations.webhooks.send import webhook_send
from automations.webhooks.templates import render_text, template_errors
from connectors.interface import ConnectorError

# Kinds whose effect must never happen twice (a lost worker does not make them run again).
ONCE_ONLY = {App.Kind.EMAIL}

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

# Seed 001's follow-up emails, chosen by outcome (see email_template_for).
EMAIL_TEMPLATES = {
    "thank_you": {
        "subject": "Thank you for your call",
        "body": "Hello {{ contact.first_name }},\n\nThank you for calling us. We are glad we "
        "could help.\n\n{{ event.summary }}",
    },
    "apology": {
        "subject": "We're sorry",
        "body": "Hello {{ contact.first_name }},\n\nWe're sorry your call did not go as it "
        "should have. A manager will contact you shortly.\n\n{{ event.summary }}",
    },
    "resources": {
        "subject": "More help with your question",
        "body": "Hello {{ contact.first_name }},\n\nWe have not solved your question yet. "
        "These resources may help while we work on it: {{ event.resources_url }}\n\n"
        "{{ event.summary }}",
    },
}
SATISFIED_AT_LEAST = 4
UNSATISFIED_AT_MOST = 2


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    sent: bool
    request: Any = None
    result: dict[str, Any] | None = None  # app_data.<slug>: {"data": ..., "message": ...}
    attempts: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def validated_settings(
    *, kind: str, timing: str, config: dict[str, Any], secrets: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check an app's settings (config with secret values in it, or kept from `secrets`).

    Returns (config without secrets, secrets) to store; ValidationError naming each bad field.
    """
    if kind == App.Kind.WEBHOOK:
        joined = join_secrets(config, secrets)
        WebhookConfig.from_settings(joined, realtime=timing == App.Timing.REALTIME)
        return split_secrets(joined)
    if kind == App.Kind.SLACK:
        public = {k: v for k, v in config.items() if k != "webhook_url"}
        url = config.get("webhook_url") or secrets.get("webhook_url")
        _slack_config(public, url)
        return public, {"webhook_url": url}
    if kind == App.Kind.TICKET:
        if timing == App.Timing.REALTIME:
            raise ValidationError({"timing": "A ticket is opened after the call: post_call."})
        tickets.config_check(config)
        return config, {}
    if kind == App.Kind.WAREHOUSE:
        public = {k: v for k, v in config.items() if k != "dsn"}
        warehouse.WarehouseConfig.from_settings(public, config.get("dsn") or secrets.get("dsn"))
        if timing == App.Timing.REALTIME:
            raise ValidationError({"timing": "A warehouse app runs post-call."})
        return public, {"dsn": config.get("dsn") or secrets.get("dsn")}
    _email_check(config)
    return config, {}


def run(
    app: App, context: dict[str, Any], *, dry_run: bool, deadline_seconds: float | None = None
) -> Outcome:
    """Run the app on the context (dry_run: show what it would do, do nothing).

    `deadline_seconds` bounds a webhook or Slack app's attempts and waits in all.
    """
    if app.kind == App.Kind.EMAIL:
        return _email(app, context, dry_run=dry_run)
    if app.kind == App.Kind.TICKET:
        return _ticket(app, context, dry_run=dry_run)
    if app.kind == App.Kind.WAREHOUSE:
        return _warehouse(app, context, dry_run=dry_run)
    if app.kind == App.Kind.SLACK:
        config = _slack_config(app.config, app.secrets.get("webhook_url"))
    else:
        realtime = app.timing == App.Timing.REALTIME
        config = WebhookConfig.from_settings(
            join_secrets(app.config, app.secrets), realtime=realtime
        )
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


def preset_condition(kind: str, config: dict[str, Any]) -> str:
    """The condition a preset brings (an app's own condition wins)."""
    if kind == App.Kind.TICKET:
        return tickets.CONDITION
    preset = SLACK_PRESETS.get(str(config.get("preset"))) if kind == App.Kind.SLACK else None
    return preset["condition"] if preset else ""


def email_template_for(event: dict[str, Any]) -> str | None:
    """Seed 001: unsatisfied -> apology + escalation; unresolved -> resources; satisfied and
    resolved -> thank you; anything else (no analytics yet) -> no email."""
    satisfaction, resolved = event.get("satisfaction"), event.get("resolved")
    if isinstance(satisfaction, int | float) and satisfaction <= UNSATISFIED_AT_MOST:
        return "apology"
    if resolved is False:
        return "resources"
    if resolved is True and isinstance(satisfaction, int | float):
        return "thank_you" if satisfaction >= SATISFIED_AT_LEAST else None
    return None


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


def _email_check(config: dict[str, Any]) -> None:
    unknown = set(config) - {"to", "from_email", "escalation_email", "templates"}
    if unknown:
        raise ValidationError({"config": f"Unknown email setting {sorted(unknown)[0]!r}."})
    errors = {}
    to = config.get("to", "{{ contact.custom.email }}")
    if not isinstance(to, str) or template_errors(to):
        errors["config.to"] = "An address or a template such as {{ contact.custom.email }}."
    for name in ("from_email", "escalation_email"):
        if config.get(name):
            try:
                validate_email(config[name])
            except ValidationError:
                errors[f"config.{name}"] = "An email address."
    templates = config.get("templates") or {}
    if not isinstance(templates, dict) or set(templates) - set(EMAIL_TEMPLATES):
        errors["config.templates"] = f"An object with any of {', '.join(EMAIL_TEMPLATES)}."
    else:
        for name, template in templates.items():
            texts = [template.get("subject", ""), template.get("body", "")]
            if not all(isinstance(t, str) and not template_errors(t) for t in texts):
                errors[f"config.templates.{name}"] = "subject and body templates."
    if errors:
        raise ValidationError(errors)


def _email(app: App, context: dict[str, Any], *, dry_run: bool) -> Outcome:
    name = email_template_for(context["event"])
    if name is None:
        return Outcome(succeeded=True, sent=False, result={"data": None, "message": "no email"})
    template = {**EMAIL_TEMPLATES[name], **(app.config.get("templates") or {}).get(name, {})}
    to = render_text(app.config.get("to", "{{ contact.custom.email }}"), context).strip()
    cc = (
        [app.config["escalation_email"]]
        if name == "apology" and app.config.get("escalation_email")
        else []
    )
    message = EmailMessage(
        subject=render_text(template["subject"], context).replace("\n", " ")[:200],
        body=render_text(template["body"], context),
        from_email=app.config.get("from_email") or django_settings.DEFAULT_FROM_EMAIL,
        to=[to],
        cc=cc,
    )
    request = {"template": name, "to": to, "cc": cc, "subject": message.subject}
    try:
        validate_email(to)
    except ValidationError:
        return Outcome(False, False, request, None, [], f"no valid address to send to ({to!r})")
    if dry_run:
        return Outcome(True, False, request, {"data": request, "message": message.subject})
    message.send()
    return Outcome(True, True, request, {"data": request, "message": message.subject})


def _ticket(app: App, context: dict[str, Any], *, dry_run: bool) -> Outcome:
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


def _warehouse(app: App, context: dict[str, Any], *, dry_run: bool) -> Outcome:
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

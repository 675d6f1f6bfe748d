"""`email`: seed 001's follow-up email, its template chosen by the call's outcome."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email

from automations.kinds.base import AppKind, Outcome
from automations.models import App
from automations.webhooks.templates import render_text, template_errors

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


class EmailKind(AppKind):
    once_only = True  # a lost worker may have sent it: never sent twice

    def validated_settings(
        self, *, timing: str, events: list[str], config: dict[str, Any], secrets: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        _email_check(config)
        if events != [App.Event.ANALYTICS_COMPLETED]:
            raise ValidationError(
                {
                    "events": "A follow-up email is chosen by the analytics: "
                    'use ["analytics.completed"].'
                }
            )
        return config, {}

    def run(
        self,
        app: App,
        context: dict[str, Any],
        *,
        dry_run: bool,
        deadline_seconds: float | None = None,
    ) -> Outcome:
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

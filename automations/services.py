"""Writes for apps: create and change them (settings checked, secrets kept apart, encrypted)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from automations import conditions, kinds
from automations.models import App, AppRun
from tenants.models import Tenant


def app_create(*, tenant: Tenant, config: dict[str, Any], **fields: Any) -> App:
    app = App(tenant=tenant, **fields)
    return _save(app, config)


def app_update(*, app: App, config: dict[str, Any] | None = None, **fields: Any) -> App:
    """Change fields; a config without a secret's value keeps the stored one."""
    for name, value in fields.items():
        setattr(app, name, value)
    _save(app, app.config if config is None else config)
    if not app.enabled:
        app_runs_cancel(app=app)
    return app


def app_runs_cancel(*, app: App) -> int:
    """Cancel the app's runs not yet started, so neither the worker nor the sweeper runs them."""
    return AppRun.objects.filter(
        app=app, state=AppRun.State.PENDING, started_at__isnull=True
    ).update(
        state=AppRun.State.CANCELED,
        finished_at=timezone.now(),
        error="Canceled: the app was disabled before this run started.",
    )


def _save(app: App, config: dict[str, Any]) -> App:
    if app.kind not in kinds.KINDS:
        raise ValidationError({"kind": f"One of {', '.join(kinds.KINDS)}."})
    kind = kinds.kind_for(app.kind)
    app.config, app.secrets = kind.validated_settings(
        timing=app.timing, events=app.events, config=config, secrets=app.secrets
    )
    if not app.condition:
        app.condition = kind.preset_condition(app.config)
    try:
        conditions.validate(app.condition)
    except conditions.ConditionError as error:
        raise ValidationError({"condition": str(error)}) from None
    app.full_clean()
    app.save()
    return app


def app_delete(*, app: App) -> None:
    """Delete an app and its runs (the calls keep their other results)."""
    app.delete()

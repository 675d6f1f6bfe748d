"""What every kind of app answers to: check its settings, say its preset condition, run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from automations.models import App


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    sent: bool
    request: Any = None
    result: dict[str, Any] | None = None  # app_data.<slug>: {"data": ..., "message": ...}
    attempts: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


class AppKind:
    """One kind of app; a subclass per kind, listed in automations/kinds/__init__.py."""

    once_only: ClassVar[bool] = False  # its effect must never happen twice (email)

    def validated_settings(
        self, *, timing: str, events: list[str], config: dict[str, Any], secrets: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Check the settings (config with secret values in it, or kept from `secrets`).

        Returns (config without secrets, secrets) to store; ValidationError naming each bad field.
        """
        raise NotImplementedError

    def preset_condition(self, config: dict[str, Any]) -> str:
        """The condition the kind or its preset brings (an app's own condition wins)."""
        return ""

    def run(
        self,
        app: App,
        context: dict[str, Any],
        *,
        dry_run: bool,
        deadline_seconds: float | None = None,
    ) -> Outcome:
        """Run the app on the context (dry_run: show what it would do, do nothing).

        `deadline_seconds` bounds the app's attempts and waits in all (real-time apps).
        """
        raise NotImplementedError

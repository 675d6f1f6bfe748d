from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.scoping import TenantOwnedModel
from core.url_tokens import UrlToken
from routing.conditions import InvalidConditions, conditions_as_json, parse_conditions
from tenants.models import Tenant, TenantSettings


class RoutingRule(TenantOwnedModel):
    """One smart-IVR rule: when all its conditions hold, route the call by its action."""

    class Action(models.TextChoices):
        EXTENSION = "extension", "an extension"
        QUEUE = "queue", "a queue"
        AGENT = "agent", "a given agent's extension"
        OWNER = "owner", "the caller's owner agent's extension"

    name = models.CharField(max_length=100)
    position = models.IntegerField(default=0, help_text="Rules are tried from the lowest up.")
    is_enabled = models.BooleanField(default=True)
    conditions = models.JSONField(
        default=dict,
        blank=True,
        help_text='All must hold, e.g. {"known": true, "fields": [{"field": "tier", '
        '"op": "in", "value": ["gold"]}]}; see routing/conditions.py.',
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    extension = models.CharField(
        max_length=32, blank=True, help_text="For 'extension'; the queue's own, for 'queue'."
    )
    queue = models.CharField(max_length=100, blank=True)
    agent = models.ForeignKey(
        "tenants.Agent",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["tenant", "position"], name="routingrule_by_position")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            self.conditions = conditions_as_json(parse_conditions(self.conditions))
        except InvalidConditions as error:
            raise ValidationError({"conditions": str(error)}) from error
        required: dict[str, str] = {self.Action.EXTENSION: "extension", self.Action.QUEUE: "queue"}
        field = required.get(self.action)
        if field and not getattr(self, field):
            raise ValidationError({field: f"A '{self.action}' action needs {field}."})
        if self.action == self.Action.AGENT and self.agent_id is None:
            raise ValidationError({"agent": "An 'agent' action needs agent."})
        if self.agent is not None and self.agent.tenant_id != self.tenant_id:
            raise ValidationError({"agent": "The agent belongs to another tenant."})


class RoutingToken(UrlToken):
    """The secret in a tenant's routing URL, for phone systems that can only be given a URL."""

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="routing_token_one_per_tenant")
        ]


class RoutingSettings(TenantSettings):
    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="routing_settings"
    )
    deadline_ms = models.PositiveIntegerField(
        default=300,
        validators=[MinValueValidator(20), MaxValueValidator(10_000)],
        help_text="A routing decision later than this answers the fallback instead.",
    )
    fallback_extension = models.CharField(
        max_length=32, blank=True, help_text="Answered when no rule matches or routing is slow."
    )

    API_FIELDS = {
        "routing_deadline_ms": "deadline_ms",
        "routing_fallback_extension": "fallback_extension",
    }

    class Meta:
        verbose_name_plural = "routing settings"

    def __str__(self) -> str:
        return f"Routing settings of {self.tenant}"

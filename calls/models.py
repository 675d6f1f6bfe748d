import json
import re
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from calls.gateways import CHOICES as GATEWAY_CHOICES
from calls.gateways import DEFAULT_ENGINE, ENGINES
from core.encryption import EncryptedTextField
from core.http import validate_outbound_url
from core.outbox import OutboxRow
from core.scoping import TenantOwnedModel
from core.url_tokens import UrlToken
from tenants.models import Tenant, TenantSettings


class CallState(models.TextChoices):
    INITIATED = "initiated"
    AGENT_RINGING = "agent_ringing"
    CUSTOMER_RINGING = "customer_ringing"
    ANSWERED = "answered"
    ENDED = "ended"


class CallStatus(models.TextChoices):
    """The final status, spelled exactly as seed 002 lists it."""

    ANSWER = "ANSWER"
    NO_ANSWER = "NO_ANSWER"
    BUSY = "BUSY"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class Call(TenantOwnedModel):
    class Direction(models.TextChoices):
        OUTBOUND = "outbound"
        INBOUND = "inbound"

    class CallType(models.TextChoices):
        BROWSER = "browser"
        SERVER = "server"

    call_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    uuid = models.CharField(
        max_length=255, blank=True, help_text="The client's own id, echoed unchanged."
    )
    external_id = models.CharField(
        max_length=255, blank=True, help_text="The phone system's call id (telephony events)."
    )
    # The engine's ids for the call's legs by role ({"agent": "CA…", "customer": "CA…"}): what
    # its gateway needs to hang up or move one of them.
    engine_legs = models.JSONField(default=dict, blank=True)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    call_type = models.CharField(max_length=8, choices=CallType.choices)
    agent = models.ForeignKey(
        "tenants.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Copied from the agent when the call starts: the call record must outlive agent edits.
    crm_username = models.CharField(max_length=150, blank=True)
    agent_number = models.CharField(max_length=20, blank=True)
    customer_number = models.CharField(max_length=20, help_text="E.164")
    from_number = models.CharField(max_length=20, help_text="E.164, a caller-ID number")
    state = models.CharField(max_length=16, choices=CallState.choices, default=CallState.INITIATED)
    status = models.CharField(max_length=16, choices=CallStatus.choices, blank=True)
    disposition = models.CharField(max_length=64)
    start_time = models.DateTimeField()
    answer_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField(default=0, help_text="Talk seconds; 0 if unanswered.")
    notes = models.TextField(blank=True)
    # analytics.completed (seed 001): how the call went, as the phone system judged it.
    satisfaction = models.PositiveSmallIntegerField(null=True, blank=True)
    resolved = models.BooleanField(null=True, blank=True)
    sentiment = models.CharField(max_length=32, blank=True)
    summary = models.TextField(blank=True)
    transcript = models.TextField(blank=True)
    # Seed 001's "variables (customer data collected)" during the call: name -> JSON value.
    variables = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "uuid"], condition=~Q(uuid=""), name="call_uuid_unique"
            ),
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                condition=~Q(external_id=""),
                name="call_external_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-start_time"], name="call_tenant_start"),
            # The export reads calls in the order they changed (calls/exports.py).
            models.Index(fields=["tenant", "updated_at", "id"], name="call_tenant_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.call_id} ({self.status or self.state})"


class CallEvent(TenantOwnedModel):
    """One state change of a call; the call's fields are always the merge of all its events."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=CallState.choices)
    status = models.CharField(max_length=16, choices=CallStatus.choices, blank=True)
    # Talk seconds as the phone system reported them on the end (it knows better than our clock).
    duration = models.PositiveIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Each state happens once per call: a repeated event (a re-run task) changes nothing.
            models.UniqueConstraint(fields=["tenant", "call", "kind"], name="call_event_once")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.status}".strip()


class Delivery(OutboxRow):
    """One call result to push to the tenant's callback URL (the outbox row)."""

    class State(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        HELD = "held"  # written while the tenant's callbacks are paused; sent when resumed

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="deliveries")
    url = models.URLField(max_length=500)
    payload = models.JSONField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    max_attempts = models.PositiveIntegerField(default=4)
    next_trigger = models.CharField(max_length=16, default="scheduled")
    created_at = models.DateTimeField(auto_now_add=True)

    claimed_trigger = ""  # not stored: what set off the attempt being made (set by the claim)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="delivery_pending_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.state})"

    def out_of_attempts(self) -> bool:
        return self.attempt_count >= self.max_attempts

    def claimed(self) -> list[str]:
        self.claimed_trigger, self.next_trigger = self.next_trigger, Attempt.Trigger.SCHEDULED
        return ["next_trigger"]

    def interrupted(self) -> list[str]:
        """The worker died on the wire: that attempt is recorded as cut off."""
        Attempt.objects.create(
            tenant_id=self.tenant_id,
            delivery=self,
            number=self.attempt_count,
            trigger=self.next_trigger,
            started_at=self.attempting_since or timezone.now(),
            error_class="interrupted",
        )
        return []


class Attempt(TenantOwnedModel):
    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled"
        MANUAL = "manual"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    started_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error_class = models.CharField(max_length=32, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error_class}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class CallParty(TenantOwnedModel):
    """A number brought into a live call: a transfer target or a third party (three-way)."""

    class Kind(models.TextChoices):
        TRANSFER = "transfer"
        THIRD_PARTY = "third_party"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="parties")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    number = models.CharField(max_length=20, help_text="E.164")
    added_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "call parties"
        ordering = ["added_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.number}"


class Recording(TenantOwnedModel):
    """A call's recording, served at an unguessable URL of ours that redirects to its location."""

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="recording")
    # The URL's token: hashed to find it, encrypted to show it again (API, callbacks).
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token = EncryptedTextField(editable=False)
    # Where the phone system keeps the audio; empty until it is ready (recording.ready).
    location = EncryptedTextField(blank=True)
    # Our copy in the recordings storage, when the tenant keeps copies (RecordingSettings).
    stored_name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    copy_attempts = models.PositiveSmallIntegerField(default=0)
    copy_error = models.TextField(blank=True)  # why the copy failed (the link serves `location`)
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)  # the link serves audio from then on
    revoked_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)  # deleted by the retention rule

    def __str__(self) -> str:
        return f"recording of {self.call_id}"


class TelephonyEvent(TenantOwnedModel):
    """One event a phone system posted, stored as received before it is processed (inbox)."""

    # Our JSON format, or the engine whose callback it was (calls/gateways).
    Source = models.TextChoices(  # type: ignore[call-overload]  # the stubs lack this form
        "Source", [("JSON", "json")] + [(n.upper(), n) for n in ENGINES]
    )

    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=32)
    source = models.CharField(max_length=16, choices=Source.choices)
    payload = models.JSONField(help_text="The event in our JSON format (Twilio's mapped to it).")
    raw = models.JSONField(null=True, blank=True, help_text="Twilio's form fields as received.")
    body_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical payload.")
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    call = models.ForeignKey(
        Call, null=True, blank=True, on_delete=models.SET_NULL, related_name="telephony_events"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "event_id"], name="telephony_event_once")
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(processed_at__isnull=True),
                name="telephony_event_unprocessed",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class TelephonyEventsToken(UrlToken):
    """The secret in a tenant's events URL, for phone systems that can only be given a URL."""

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="telephony_events_token_one_per_tenant")
        ]


class GatewayConfig(TenantOwnedModel):
    """The tenant's telephony engine (the simulator without one) and its encrypted credentials.

    Its inbound URL is the tenant's events URL (`TelephonyEventsToken`, one per tenant too):
    the engine's callbacks go there and take the one ingest path (calls/events.py).
    """

    engine = models.CharField(max_length=32, choices=GATEWAY_CHOICES, default=DEFAULT_ENGINE)
    # JSON: the engine's account and secrets (Twilio: account_sid, auth_token). Write-only.
    credentials_json = EncryptedTextField(default="{}")
    settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="gateway_config_one_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.engine} for tenant {self.tenant_id}"

    @property
    def credentials(self) -> dict[str, Any]:
        return json.loads(self.credentials_json or "{}")

    @credentials.setter
    def credentials(self, value: dict[str, Any]) -> None:
        self.credentials_json = json.dumps(value)

    @property
    def inbound_token(self) -> TelephonyEventsToken | None:
        return TelephonyEventsToken.objects.filter(tenant_id=self.tenant_id).first()


# Headers the call-result push sets itself; a tenant's auth header may not replace them.
RESERVED_CALLBACK_HEADERS = {
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
}


def validate_auth_header(value: str) -> None:
    if value and (
        not re.fullmatch(r"[A-Za-z0-9-]{1,100}", value)
        or value.lower() in RESERVED_CALLBACK_HEADERS
    ):
        raise ValidationError(
            f"'{value}' cannot be the auth header: use a name such as Authorization or "
            "X-Api-Key (not Content-Type, Host or a webhook-* header)."
        )


def validate_header_value(value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValidationError("The auth header value cannot contain line breaks.")


class CallbackSettings(TenantSettings):
    """The call-result push (seed 002): where each ended call is POSTed, and how it is signed."""

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="callback_settings"
    )
    url = models.URLField(
        "callback URL", max_length=500, blank=True, validators=[validate_outbound_url]
    )
    auth_header = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_auth_header],
        help_text="e.g. Authorization; sent on every callback.",
    )
    auth_value = EncryptedTextField(blank=True, validators=[validate_header_value])
    # Standard Webhooks signing: the current secret, and the one it replaced while it may still
    # sign (every live secret signs, so receivers can switch over at their own pace).
    signing_secret = EncryptedTextField(blank=True)
    previous_signing_secret = EncryptedTextField(blank=True)
    previous_signing_secret_expires_at = models.DateTimeField(null=True, blank=True)
    default_disposition = models.CharField(max_length=64, default="CRM_CALL")
    # Seed 002 sends the result once, at the end; a wrap-up typed later reaches the tenant only
    # if it asks for this second, marked callback.
    # The outage (its first failed attempt) the tenant's owners were last emailed about.
    alerted_for = models.DateTimeField(null=True, blank=True, editable=False)
    # Paused after a long outage (calls/alerts.py): new call results are held, not sent, until
    # the tenant resumes; resumed_at starts the next outage's clock.
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    paused_reason = models.TextField(blank=True, editable=False)
    resumed_at = models.DateTimeField(null=True, blank=True, editable=False)
    on_update = models.BooleanField(
        default=False,
        help_text='Send another callback, marked "event": "call.updated", each time the '
        "disposition or notes change after the call ended.",
    )

    API_FIELDS = {
        "callback_url": "url",
        "callback_auth_header": "auth_header",
        "callback_auth_value": "auth_value",
        "callback_on_update": "on_update",
        "default_disposition": "default_disposition",
    }
    WRITE_ONLY = ("callback_auth_value",)

    class Meta:
        verbose_name_plural = "callback settings"

    def __str__(self) -> str:
        return f"Callback settings of {self.tenant}"


def validate_simulator_outcomes(value: object) -> None:
    example = '[{"pattern": "+44770090*", "status": "BUSY"}]'
    if not isinstance(value, list) or len(value) > 50:
        raise ValidationError(f"Give a list of at most 50 outcomes, e.g. {example}.")
    for outcome in value:
        if (
            not isinstance(outcome, dict)
            or set(outcome) != {"pattern", "status"}
            or not isinstance(outcome["pattern"], str)
            or not 0 < len(outcome["pattern"]) <= 40
            or outcome["status"] not in CallStatus.values
        ):
            raise ValidationError(
                f"Each outcome is a number pattern (* and ? wildcards) and one of "
                f"{', '.join(CallStatus.values)}, e.g. {example}; got {outcome!r}."
            )


class TelephonySettings(TenantSettings):
    """The built-in simulator's behaviour, and the Twilio token that checks Twilio's callbacks.

    A tenant's `GatewayConfig` credentials take precedence over the token.
    """

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="telephony_settings"
    )
    # [{"pattern": "+44770090*", "status": "BUSY"}, ...]: first match wins on the customer's
    # E.164 number, else ANSWER.
    simulator_outcomes = models.JSONField(
        default=list, blank=True, validators=[validate_simulator_outcomes]
    )
    simulator_ring_seconds = models.FloatField(
        default=4.0, validators=[MinValueValidator(0), MaxValueValidator(120)]
    )
    simulator_talk_seconds = models.FloatField(
        default=20.0, validators=[MinValueValidator(0), MaxValueValidator(3600)]
    )
    simulator_recording = models.BooleanField(
        default=False,
        help_text="The simulator records its answered calls (callbacks get recording_url).",
    )
    # Twilio status callbacks on the events URL: when set, X-Twilio-Signature must match.
    twilio_auth_token = EncryptedTextField(blank=True)

    API_FIELDS = {
        name: name
        for name in (
            "simulator_outcomes",
            "simulator_ring_seconds",
            "simulator_talk_seconds",
            "simulator_recording",
            "twilio_auth_token",
        )
    }
    WRITE_ONLY = ("twilio_auth_token",)

    class Meta:
        verbose_name_plural = "telephony settings"

    def __str__(self) -> str:
        return f"Telephony settings of {self.tenant}"


class RecordingSettings(TenantSettings):
    """Whether we keep a copy of each recording in our storage, and for how long."""

    class Keep(models.TextChoices):
        LINK = "link", "The phone system's link"
        COPY = "copy", "A copy in our storage"

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="recording_settings"
    )
    keep = models.CharField(
        max_length=8,
        choices=Keep.choices,
        default=Keep.LINK,
        help_text="copy: the audio is copied to our storage before our link serves it.",
    )
    retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Delete recordings (and turn their links off) this many days after the call; "
        "empty: keep them.",
    )

    API_FIELDS = {"recordings_keep": "keep", "recordings_retention_days": "retention_days"}

    def __str__(self) -> str:
        return f"Recording settings of {self.tenant}"


# https://host[:port], the host's labels letters, digits and hyphens; a leading *. for subdomains
FRAME_ORIGIN = re.compile(r"https://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:[0-9]{1,5})?")


def validate_frame_origins(value: object) -> None:
    example = '["https://acme.my.salesforce.com"]'
    if not isinstance(value, list) or len(value) > 10:
        raise ValidationError(f"Give a list of at most 10 origins, e.g. {example}.")
    for origin in value:
        if not isinstance(origin, str) or not FRAME_ORIGIN.fullmatch(origin):
            raise ValidationError(
                f"{origin!r} is not an https origin (scheme and host, no path), e.g. {example}."
            )


class WebphoneSettings(TenantSettings):
    """The agent's call page: which CRM pages may show it in a frame (none by default)."""

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="webphone_settings"
    )
    frame_origins = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_frame_origins],
        help_text="The CRM origins whose pages may embed the call page (CSP frame-ancestors).",
    )

    API_FIELDS = {"webphone_frame_origins": "frame_origins"}

    class Meta:
        verbose_name_plural = "webphone settings"

    def __str__(self) -> str:
        return f"Webphone settings of {self.tenant}"

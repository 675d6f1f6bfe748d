"""The provider interface: what every CRM connector does, in small frozen dataclasses."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    from connectors.client import CrmClient


class ConnectorError(Exception):
    """Any failure talking to a CRM; `permanent` means retrying will not help (bad credentials)."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


def contact_needed(what: str) -> ConnectorError:
    """The permanent error of a CRM whose call objects must belong to a contact (`what`: "Keap
    call notes"), for a caller found neither in the phonebook nor by the CRM's search."""
    return ConnectorError(
        f"{what} belong to a contact: a caller found nowhere cannot be logged "
        "(turn on create_unknown_contacts).",
        permanent=True,
    )


class ConfigError(ValueError):
    """Credentials or settings a provider cannot work with; `field` names the bad one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SourcePhone:
    number: str  # as written in the CRM; contacts/phone_numbers reads it
    kind: str  # mobile, work, home, other


@dataclass(frozen=True)
class SourceRecord:
    """One CRM contact or company, in our words."""

    external_id: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    is_company: bool = False
    crm_url: str = ""
    country: str = ""  # ISO 3166 alpha-2 when the CRM gave a readable one
    phones: tuple[SourcePhone, ...] = ()
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    owner_email: str = ""  # the CRM record owner's email, when the CRM gives one
    owner_id: str = ""  # the CRM user who owns the record (a CrmUser.external_id), if known


@dataclass(frozen=True)
class Cursor:
    """Where an incremental listing of one object type stands (stored as JSON per page)."""

    since_ms: int = 0  # lower bound (inclusive) of the modification times still to read
    after: str | None = None  # the CRM's opaque paging token, when paging inside one query
    seen_in_window: int = 0
    max_seen_ms: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "since_ms": self.since_ms,
            "after": self.after,
            "seen_in_window": self.seen_in_window,
            "max_seen_ms": self.max_seen_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Cursor:
        return cls(**data) if data else cls()


@dataclass(frozen=True)
class Page:
    records: tuple[SourceRecord, ...]
    cursor: Cursor  # where the next page starts
    done: bool  # no more changes now; `cursor` is where the next run starts
    invalid: int = 0  # records the CRM sent that could not be read (counted, skipped)


@dataclass(frozen=True)
class ConnectionConfig:
    connection_id: int
    credentials: Mapping[str, Any]
    settings: Mapping[str, Any]
    background: bool = True  # a sync: Salesforce's stops at SYNC_BUDGET_SHARE of the day's quota


@dataclass(frozen=True)
class CrmUser:
    """A user of the CRM (the agent's account there), found by email."""

    external_id: str
    email: str
    name: str = ""


CallOutcome = Literal["answered", "missed", "busy", "failed", "transferred"]


@dataclass(frozen=True)
class CallLogEntry:
    """One call, as a CRM's call object (or missed-call task) should record it.

    Each provider maps it to its own object and units (HubSpot ms, Salesforce and Pipedrive and
    Zoho seconds or "mm:ss"); `call_id` is ours, kept on the remote record where the CRM allows.
    """

    call_id: str
    direction: Literal["inbound", "outbound"]
    outcome: CallOutcome
    started_at: datetime  # aware, UTC
    duration_seconds: int  # talk time, 0 when not answered
    from_number: str  # E.164
    to_number: str  # E.164
    contact_external_id: str | None = None  # the CRM record the call belongs to
    owner_user_id: str | None = None  # CrmUser.external_id of the agent
    subject: str = ""
    notes: str = ""
    recording_url: str | None = None


CredentialsSaver = Callable[[dict[str, Any]], None]


class Connector(Protocol):
    """A CRM. Constructed per run with the connection's config and a way to persist new tokens."""

    # The credentials the API accepts, and the sets of which a new connection needs one (OAuth
    # tokens may come later, through the oauth endpoint).
    client: CrmClient  # every request goes through it (budget, retries, deadline)
    credential_keys: ClassVar[frozenset[str]]
    required_credentials: ClassVar[tuple[frozenset[str], ...]]
    # What settings.objects may name (() : not checked); own_settings: the settings are the
    # connector's own description of the API, checked by its check_config alone.
    syncable_objects: ClassVar[tuple[str, ...]]
    own_settings: ClassVar[bool]

    def __init__(self, config: ConnectionConfig, save_credentials: CredentialsSaver) -> None: ...

    def object_types(self) -> tuple[str, ...]:
        """The object types this connection syncs (e.g. contacts, companies)."""
        ...

    def changed_since(self, object_type: str, cursor: Cursor) -> Page:
        """One page of records of object_type modified at or after the cursor."""
        ...

    def all_ids(self, object_type: str) -> Iterator[list[str]]:
        """Every live external id of object_type, a page at a time (for the full diff)."""
        ...

    def find_by_phone(self, e164: str) -> list[SourceRecord]:
        """Contacts whose stored number matches e164 as the CRM's search can match it."""
        ...

    def authorization_url(self, *, state: str, redirect_uri: str) -> str:
        """OAuth: where the user grants access (ConnectorError(permanent) without OAuth)."""
        ...

    def connect(self, *, code: str, redirect_uri: str) -> None:
        """OAuth: trade the callback's code for tokens and save them."""
        ...

    def find_user(self, email: str) -> CrmUser | None:
        """The CRM user with this email (the agent's account), or None."""
        ...

    def users(self) -> list[CrmUser]:
        """The CRM's active users, to match record owners (`owner_id`) to agents by email.

        [] where records carry their owner's email instead (Zoho) or name no owner.
        """
        ...

    def log_call(self, entry: CallLogEntry) -> str:
        """Create the CRM's call object linked to the contact and user; answer its remote id."""
        ...

    def find_logged(self, call_id: str, *, task: bool = False) -> str | None:
        """Find the remote id log_call (or create_task) made for this call id, else None.

        A CRM that cannot be searched by our id answers None.
        """
        ...

    def update_call_log(self, remote_id: str, entry: CallLogEntry) -> None:
        """Change the call object created by log_call (notes, recording, outcome arrived later)."""
        ...

    def create_task(self, entry: CallLogEntry) -> str:
        """A follow-up task for a missed call, linked to the contact; answer its remote id."""
        ...

    def create_contact(self, *, e164: str, name: str = "") -> SourceRecord:
        """A new CRM contact for an unknown caller's number."""
        ...

    @property
    def rate_limit_waits(self) -> int: ...


TicketPriority = Literal["low", "normal", "high", "urgent"]


@dataclass(frozen=True)
class TicketRequest:
    """A helpdesk ticket to open; `external_id` (our call id) keeps it to one per call."""

    external_id: str
    subject: str
    description: str
    requester_id: str | None  # the caller's helpdesk user; None: the helpdesk picks (withheld)
    priority: TicketPriority | None = None
    group_id: int | None = None  # the queue it is assigned to
    tags: tuple[str, ...] = ()
    public: bool = False  # the description as a public reply (else an internal note)


@dataclass(frozen=True)
class TicketRef:
    remote_id: str
    url: str  # where an agent opens it
    created: bool  # False: a ticket with the same external_id was there already


class Helpdesk(Connector, Protocol):
    """A helpdesk (Zendesk): a Connector (users by phone, create_contact) that opens tickets."""

    def find_ticket(self, external_id: str) -> TicketRef | None:
        """The ticket opened with this external_id, if any."""
        ...

    def create_ticket(self, ticket: TicketRequest) -> TicketRef:
        """Open the ticket, unless one with its external_id exists (then answer that one)."""
        ...

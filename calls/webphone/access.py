"""Who may use the browser softphone: the launch URL's parameters and the call page's token."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.core import signing

from calls.models import Call
from core import phone_numbers
from core.scoping import tenant_scope
from tenants.models import Agent, ApiKey, CallerIdNumber, Tenant
from tenants.selectors import api_key_find

# Seed 002's names for the launch URL's parameters, in its order.
LAUNCH_PARAMETERS = ("crm_username", "api_key", "to_number", "from_number")
UUID_MAX_LENGTH = 255  # as the API's (Call.uuid)
PAGE_SALT = "calls.webphone.page"
CONSOLE_SALT = "calls.webphone.console"
CONSOLE_PARAMETERS = ("crm_username", "api_key")
PAGE_TOKEN_MAX_AGE = 12 * 3600  # seconds: a shift; the page is useless once the call is over


class LaunchRefused(Exception):
    """A launch URL that cannot place a call, with what to tell the person who opened it."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


@dataclass(frozen=True)
class Launch:
    tenant: Tenant
    agent: Agent
    from_number: str  # E.164
    customer_number: str  # E.164
    uuid: str = ""  # the CRM's id for the call, echoed in its callback


def launch_read(params: Mapping[str, str]) -> Launch:
    """Check every launch parameter (seed 002) or raise LaunchRefused; writes nothing."""
    values = {name: (params.get(name) or "").strip() for name in LAUNCH_PARAMETERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise LaunchRefused(
            400,
            "missing_parameter",
            f"The launch URL has no value for {', '.join(missing)}. Check the click-to-call URL "
            "setting in your CRM: it must fill in crm_username, api_key, to_number and "
            "from_number.",
            missing[0],
        )
    uuid = (params.get("uuid") or "").strip()
    if len(uuid) > UUID_MAX_LENGTH or not uuid.isprintable():
        raise LaunchRefused(
            400,
            "invalid_parameter",
            f"uuid is the CRM's id for the call: at most {UUID_MAX_LENGTH} printable characters.",
            "uuid",
        )
    tenant = _tenant_of_browser_key(values["api_key"])
    with tenant_scope(tenant):
        return Launch(
            tenant=tenant,
            agent=_agent(values["crm_username"]),
            from_number=_caller_id(values["from_number"], tenant.default_region),
            customer_number=_number("to_number", values["to_number"], tenant.default_region),
            uuid=uuid,
        )


def _tenant_of_browser_key(plaintext: str) -> Tenant:
    api_key = api_key_find(plaintext)
    if api_key is None:
        raise LaunchRefused(
            401,
            "unknown_key",
            "This api_key is not a valid integration key. Paste the browser key (cbb_…) you "
            "were given at onboarding into your CRM's click-to-call URL setting.",
            "api_key",
        )
    if api_key.is_revoked:
        raise LaunchRefused(
            401,
            "revoked_key",
            f"The integration key {api_key.prefix}… was revoked (rotated). Put the current "
            "browser key into your CRM's click-to-call URL setting.",
            "api_key",
        )
    if api_key.kind != ApiKey.Kind.BROWSER:
        raise LaunchRefused(
            403,
            "wrong_key_kind",
            f"{api_key.prefix}… is a server key: it belongs in your backend only, never in a "
            "browser URL. Use your browser key (cbb_…) here, and ask us to rotate this server "
            "key since it has been exposed.",
            "api_key",
        )
    if not api_key.tenant.is_active:
        raise LaunchRefused(403, "tenant_inactive", "This account is deactivated; contact support.")
    return api_key.tenant


def _agent(crm_username: str) -> Agent:
    agent = Agent.objects.filter(crm_username=crm_username).first()
    if agent is None:
        raise LaunchRefused(
            403,
            "unknown_agent",
            f"No agent is registered with crm_username '{crm_username}'. Ask your administrator "
            "to register this agent ID.",
            "crm_username",
        )
    if not agent.is_active:
        raise LaunchRefused(
            403,
            "inactive_agent",
            f"The agent '{crm_username}' is deactivated and cannot place calls.",
            "crm_username",
        )
    return agent


def _number(field: str, raw: str, region: str) -> str:
    try:
        return phone_numbers.to_e164(raw, region)
    except ValueError as error:
        raise LaunchRefused(400, "invalid_number", f"{field}: {error}", field) from error


def _caller_id(raw: str, region: str) -> str:
    number = _number("from_number", raw, region)
    if not CallerIdNumber.objects.filter(number=number).exists():
        raise LaunchRefused(
            400,
            "unknown_caller_id",
            f"from_number {number} is not one of the caller-ID numbers assigned to your "
            "account. Use one of them (your administrator can list them).",
            "from_number",
        )
    return number


def page_token(call: Call) -> str:
    """An unguessable, expiring token that opens this call's page (and nothing else)."""
    return page_token_of(call.tenant_id, str(call.call_id))


def page_token_of(tenant_id: int, call_id: str) -> str:
    return signing.dumps({"t": tenant_id, "c": call_id}, salt=PAGE_SALT)


def page_token_read(token: str) -> tuple[int, str] | None:
    """The (tenant id, call id) a page token names, or None if it is forged or expired."""
    try:
        claims = signing.loads(token, salt=PAGE_SALT, max_age=PAGE_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    return claims["t"], claims["c"]


def console_agent(params: Mapping[str, str]) -> Agent:
    """The agent whose console the URL opens (browser key and active agent), or LaunchRefused."""
    values = {name: (params.get(name) or "").strip() for name in CONSOLE_PARAMETERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise LaunchRefused(
            400,
            "missing_parameter",
            f"The console URL has no value for {', '.join(missing)}: it needs crm_username and "
            "api_key (your browser key), as the click-to-call URL does.",
            missing[0],
        )
    tenant = _tenant_of_browser_key(values["api_key"])
    with tenant_scope(tenant):
        return _agent(values["crm_username"])


def console_token(agent: Agent) -> str:
    """An unguessable, expiring token that opens this agent's console (and nothing else)."""
    return signing.dumps({"t": agent.tenant_id, "a": agent.pk}, salt=CONSOLE_SALT)


def console_token_read(token: str) -> tuple[int, int] | None:
    """The (tenant id, agent id) a console token names, or None if forged or expired."""
    try:
        claims = signing.loads(token, salt=CONSOLE_SALT, max_age=PAGE_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    return claims["t"], claims["a"]

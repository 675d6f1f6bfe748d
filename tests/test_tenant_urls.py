"""Every URL a tenant gives us is checked by one validator when saved, not only when called."""

import pytest

pytestmark = pytest.mark.django_db

# Each one is this machine or "any address" to the resolver (inet_aton's reading of IPv4).
WHERE = ["callback", "connection", "webhook app", "slack app", "warehouse"]
NUMERIC_LOOPBACKS = ["127.1", "0x7f000001", "2130706433", "0177.0.0.1", "0"]


def hosts_and_ports() -> list[tuple[str, str]]:
    """(host:port, what it is) for every refused form."""
    return [(f"{host}:8080", host) for host in NUMERIC_LOOPBACKS] + [
        ("crm.example.com:0", "port 0")
    ]


def saves(api, where: str, authority: str):
    url = f"http://{authority}/hook"
    if where == "callback":
        return api.patch("/api/v1/tenant", {"callback_url": url}, format="json")
    if where == "connection":
        credentials = {"private_app_token": "t", "base_url": url}
        body = {"provider": "hubspot", "name": "x", "credentials": credentials}
        return api.post("/api/v1/connections", body, format="json")
    app = {"name": "x", "slug": "x", "events": ["call.end"], "order": 30}
    if where == "webhook app":
        app |= {"kind": "webhook", "config": {"url": url}}
    elif where == "slack app":
        app |= {"kind": "slack", "config": {"preset": "vip", "webhook_url": url}}
    else:
        host, _, port = authority.rpartition(":")
        dsn = f"postgresql://u:p@{host}:{port}/calls"
        app |= {"kind": "warehouse", "config": {"dsn": dsn, "table": "calls"}}
    return api.post("/api/v1/apps", app, format="json")


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize(("authority", "form"), hosts_and_ports())
def test_a_loopback_address_in_any_notation_or_port_0_is_refused_when_saved(
    api, settings, where, authority, form
):
    settings.ALLOW_PRIVATE_URLS = False

    response = saves(api, where, authority)

    assert response.status_code == 400, (form, response.json())


@pytest.mark.parametrize("where", WHERE)
def test_the_operator_setting_allows_private_addresses(api, settings, where):
    settings.ALLOW_PRIVATE_URLS = True

    response = saves(api, where, "127.0.0.1:8080")

    assert response.status_code in (200, 201), response.json()

"""The migrations that moved each context's settings off the tenant row keep every value."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("tenants", "0006_tenant_callback_on_update"),
    ("calls", "0005_gateway_config"),
    ("contacts", "0002_contact_source_connection_fk"),
    ("routing", "0001_initial"),
]
AFTER = [
    ("tenants", "0008_telephony_settings_moved_to_calls"),
    ("calls", "0007_telephony_settings"),
    ("contacts", "0003_tenant_settings"),
    ("routing", "0002_tenant_settings"),
]
EXPIRES = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


def migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_every_tenants_settings_reach_their_contexts_rows():
    old = migrate(BEFORE)
    old.get_model("tenants", "Tenant").objects.create(
        name="Acme",
        slug="acme",
        shared_number_policy="owner",
        routing_deadline_ms=450,
        routing_fallback_extension="1094",
        callback_url="https://crm.example.com/callbacks",
        callback_auth_header="X-Api-Key",
        callback_auth_value="k3y",
        signing_secret="whsec_bmV3",
        previous_signing_secret="whsec_b2xk",
        previous_signing_secret_expires_at=EXPIRES,
        default_disposition="OUTBOUND",
        callback_on_update=True,
        simulator_outcomes=[{"pattern": "+44*", "status": "BUSY"}],
        simulator_ring_seconds=1.5,
        simulator_talk_seconds=9.0,
        simulator_recording=True,
        twilio_auth_token="tw1l10",
    )
    try:
        new = migrate(AFTER)
        tenant = new.get_model("tenants", "Tenant").objects.get(slug="acme")
        phonebook = new.get_model("contacts", "PhonebookSettings").objects.get(tenant=tenant)
        routing = new.get_model("routing", "RoutingSettings").objects.get(tenant=tenant)
        callback = new.get_model("calls", "CallbackSettings").objects.get(tenant=tenant)
        telephony = new.get_model("calls", "TelephonySettings").objects.get(tenant=tenant)
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert phonebook.shared_number_policy == "owner"
    assert (routing.deadline_ms, routing.fallback_extension) == (450, "1094")
    assert {
        field: getattr(callback, field)
        for field in (
            "url",
            "auth_header",
            "auth_value",
            "signing_secret",
            "previous_signing_secret",
            "previous_signing_secret_expires_at",
            "default_disposition",
            "on_update",
        )
    } == {
        "url": "https://crm.example.com/callbacks",
        "auth_header": "X-Api-Key",
        "auth_value": "k3y",
        "signing_secret": "whsec_bmV3",
        "previous_signing_secret": "whsec_b2xk",
        "previous_signing_secret_expires_at": EXPIRES,
        "default_disposition": "OUTBOUND",
        "on_update": True,
    }
    assert (
        telephony.simulator_outcomes,
        telephony.simulator_ring_seconds,
        telephony.simulator_talk_seconds,
        telephony.simulator_recording,
        telephony.twilio_auth_token,
    ) == ([{"pattern": "+44*", "status": "BUSY"}], 1.5, 9.0, True, "tw1l10")

"""Load the benchmark tenant: N contacts with COPY, agents, routing rules, a server key.

`load.py N` loads; `load.py --setup` only prints {"tenant_id", "server_key"} as JSON.
"""

import json
import os
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection  # noqa: E402

from contacts.models import Contact, ContactPhone  # noqa: E402
from core.scoping import tenant_scope  # noqa: E402
from routing.services import routing_rule_create  # noqa: E402
from tenants.models import Agent, ApiKey, Tenant  # noqa: E402
from tenants.services import api_key_create, tenant_update  # noqa: E402

SERVER_KEY = "cbs_BenchKy1_benchmark-server-key-local-only"
AGENTS = 50


def tenant_with_key() -> Tenant:
    tenant, created = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    if created:
        with tenant_scope(tenant):
            api_key_create(tenant=tenant, kind=ApiKey.Kind.SERVER, plaintext=SERVER_KEY)
    return tenant


def load(count: int) -> None:
    tenant = tenant_with_key()
    tenant_update(tenant=tenant, routing_settings={"fallback_extension": "1000"})
    with tenant_scope(tenant):
        agents = [
            Agent.objects.create(tenant=tenant, crm_username=f"agent.{i:03}", extension=f"2{i:03}")
            for i in range(AGENTS)
        ]
        rules = [
            (
                "Gold customers",
                {"known": True, "fields": [{"field": "tier", "op": "in", "value": ["gold"]}]},
                "extension",
                "1093",
            ),
            ("Owner's extension", {"has_owner": True}, "owner", ""),
            ("Known callers", {"known": True}, "extension", "1094"),
        ]
        for position, (name, conditions, action, extension) in enumerate(rules):
            routing_rule_create(
                tenant=tenant,
                name=name,
                position=position * 10,
                conditions=conditions,
                action=action,
                extension=extension,
            )
    now = datetime.now(UTC)
    rng = random.Random(1)
    contact_columns = [f.column for f in Contact._meta.concrete_fields]
    phone_columns = [f.column for f in ContactPhone._meta.concrete_fields]
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY contacts_contact ({', '.join(contact_columns)}) FROM STDIN") as copy,
    ):
        for i in range(1, count + 1):
            values = {
                "id": i,
                "tenant_id": tenant.pk,
                "source_connection_id": None,
                "external_id": f"crm-{i}",
                "first_name": f"First{i}",
                "last_name": f"Last{i}",
                "company": f"Company {i % 5000}",
                "is_company": False,
                "crm_url": f"https://crm.example.com/contacts/{i}",
                "owner_id": agents[i % AGENTS].pk if rng.random() < 0.3 else None,
                "country": "",
                "last_call_at": None,
                "call_count": 0,
                "last_call_status": "",
                "deleted_at": None,
                "created_at": now,
                "updated_at": now,
                "custom_fields": json.dumps(
                    {
                        "tier": rng.choice(["gold", "silver", "bronze"]),
                        "language": rng.choice(["en", "tr", "de"]),
                    }
                ),
            }
            copy.write_row([values[c] for c in contact_columns])
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY contacts_contactphone ({', '.join(phone_columns)}) FROM STDIN") as copy,
    ):
        phone_id = 0
        for i in range(1, count + 1):
            numbers = [f"+1415{2000000 + i - 1:07d}"]
            if i % 10 == 0:
                numbers.append(f"+1650{2000000 + i:07d}")
            if i % 1000 == 1 and i > 1:
                numbers.append(f"+1415{2000000 + i - 2:07d}")  # shares the previous one's number
            for number in numbers:
                phone_id += 1
                values = {
                    "id": phone_id,
                    "tenant_id": tenant.pk,
                    "contact_id": i,
                    "e164": number,
                    "raw": number,
                    "extension": "",
                    "kind": "mobile",
                    "is_valid": True,
                }
                copy.write_row([values[c] for c in phone_columns])
    with connection.cursor() as cursor:
        for table in ("contacts_contact", "contacts_contactphone"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
            cursor.execute(f"ANALYZE {table}")


if __name__ == "__main__":
    if sys.argv[1] == "--setup":
        print(json.dumps({"tenant_id": tenant_with_key().pk, "server_key": SERVER_KEY}))
    else:
        load(int(sys.argv[1]))

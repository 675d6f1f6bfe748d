"""The ceiling: a bare WSGI app doing lookup's indexed query with psycopg, nothing else.

Served by the same web server and options as CallBridge, it shows what the machine, the server
and the database can do, so the real endpoint's figures can be read as a fraction of it.
"""

import json
import os
from urllib.parse import parse_qs

import psycopg

QUERY = """
SELECT c.id, c.first_name, c.last_name, c.company, c.crm_url, c.custom_fields,
       a.crm_username, a.extension
FROM contacts_contactphone p
JOIN contacts_contact c ON c.id = p.contact_id
LEFT JOIN tenants_agent a ON a.id = c.owner_id
WHERE p.tenant_id = %s AND p.e164 = %s AND c.deleted_at IS NULL
"""
_connection = None


def application(environ, start_response):
    global _connection
    if _connection is None:  # one connection per worker process, opened after the fork
        _connection = psycopg.connect(os.environ["BENCH_DSN"], autocommit=True)
    number = parse_qs(environ.get("QUERY_STRING", "")).get("number", [""])[0]
    with _connection.cursor() as cursor:
        cursor.execute(QUERY, (int(os.environ["BENCH_TENANT_ID"]), number))
        rows = cursor.fetchall()
    body = json.dumps(
        {"known": bool(rows), "matches": [[str(v) for v in row] for row in rows]}
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]

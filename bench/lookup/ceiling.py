"""The ceiling: a bare WSGI app doing lookup's query with psycopg, nothing else.

Served by the same web server and options as CallBridge, it shows what the machine, the server
and the database can do, so the real endpoint's figures can be read as a fraction of it.

"/" runs lookup's own query (contacts/selectors.py, the default most-recent policy): the columns
the caller card returns, ordered for a number several contacts share. "/earlier" runs the
simpler query this ceiling ran until 2026-12-04 (eight columns, no order, no limit), kept so
that figures from before can be compared.
"""

import json
import os
from urllib.parse import parse_qs

import psycopg

QUERY = """
SELECT c.id, c.first_name, c.last_name, c.company, c.is_company, c.crm_url, c.country,
       c.custom_fields, c.updated_at, c.owner_id, a.crm_username, a.display_name, a.extension
FROM contacts_contact c
LEFT JOIN tenants_agent a ON a.id = c.owner_id
WHERE c.tenant_id = %(tenant)s AND c.deleted_at IS NULL AND c.id IN (
    SELECT p.contact_id FROM contacts_contactphone p
    WHERE p.tenant_id = %(tenant)s AND p.e164 = %(number)s
)
ORDER BY c.updated_at DESC, c.id DESC LIMIT 20
"""
EARLIER_QUERY = """
SELECT c.id, c.first_name, c.last_name, c.company, c.crm_url, c.custom_fields,
       a.crm_username, a.extension
FROM contacts_contactphone p
JOIN contacts_contact c ON c.id = p.contact_id
LEFT JOIN tenants_agent a ON a.id = c.owner_id
WHERE p.tenant_id = %(tenant)s AND p.e164 = %(number)s AND c.deleted_at IS NULL
"""
_connection = None


def application(environ, start_response):
    global _connection
    if _connection is None:  # one connection per worker process, opened after the fork
        _connection = psycopg.connect(os.environ["BENCH_DSN"], autocommit=True)
    number = parse_qs(environ.get("QUERY_STRING", "")).get("number", [""])[0]
    query = EARLIER_QUERY if environ.get("PATH_INFO") == "/earlier" else QUERY
    with _connection.cursor() as cursor:
        cursor.execute(query, {"tenant": int(os.environ["BENCH_TENANT_ID"]), "number": number})
        rows = cursor.fetchall()
    body = json.dumps(
        {"known": bool(rows), "matches": [[str(v) for v in row] for row in rows]}
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]

"""The ceiling: a plain psycopg bulk upsert of the rows the sync stored, already normalized.

`ceiling.py DSN CONNECTION_ID PAGE_SIZE` copies the connection's contacts and numbers into two
fresh tables shaped like ours (same columns, indexes and unique constraints), a page at a time
like the sync (one transaction per page): COPY the page into a temporary table, INSERT ... ON
CONFLICT DO UPDATE into the contacts, delete the numbers of the updated ones, COPY the numbers.
Only the writes are timed; reading the rows back is not. Prints {"seconds", "contacts",
"phones", "postgres_cpu_seconds"} as JSON (the writing backend's CPU time, read from /proc).
"""

import json
import os
import sys
import time
from pathlib import Path

import psycopg

CONTACT_COLUMNS = [
    "tenant_id", "source_connection_id", "external_id", "first_name", "last_name", "company",
    "is_company", "crm_url", "owner_id", "country", "custom_fields", "deleted_at", "created_at",
    "updated_at",
]  # fmt: skip
PHONE_COLUMNS = ["tenant_id", "contact_id", "e164", "raw", "extension", "kind", "is_valid"]


def main(dsn: str, connection_id: int, page_size: int) -> None:
    with psycopg.connect(dsn) as reader, psycopg.connect(dsn) as writer:
        create_tables(writer)
        rows = reader.cursor(name="rows")
        rows.itersize = page_size
        columns = ", ".join(f"c.{c}" for c in CONTACT_COLUMNS)
        rows.execute(
            f"""SELECT {columns}, (SELECT coalesce(json_agg(json_build_array(
                       p.e164, p.raw, p.extension, p.kind, p.is_valid) ORDER BY p.id), '[]')
                    FROM contacts_contactphone p
                    WHERE p.tenant_id = c.tenant_id AND p.contact_id = c.id)
                FROM contacts_contact c WHERE c.source_connection_id = %s ORDER BY c.id""",
            [connection_id],
        )
        seconds, contacts, phones = 0.0, 0, 0
        while page := rows.fetchmany(page_size):
            started = time.perf_counter()
            phones += upsert_page(writer, page)
            seconds += time.perf_counter() - started
            contacts += len(page)
        (pid,) = writer.execute("SELECT pg_backend_pid()").fetchone()
        # Read while the backend lives: once the connection closes, its process may be gone.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    postgres_cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    print(
        json.dumps(
            {
                "seconds": seconds,
                "contacts": contacts,
                "phones": phones,
                "postgres_cpu_seconds": postgres_cpu,
            }
        )
    )


def create_tables(db: psycopg.Connection) -> None:
    db.execute("DROP TABLE IF EXISTS ceiling_contactphone, ceiling_contact")
    db.execute("CREATE TABLE ceiling_contact (LIKE contacts_contact INCLUDING ALL)")
    db.execute("CREATE TABLE ceiling_contactphone (LIKE contacts_contactphone INCLUDING ALL)")
    db.execute(
        "CREATE TEMPORARY TABLE page (LIKE contacts_contact INCLUDING DEFAULTS) "
        "ON COMMIT DELETE ROWS"
    )
    db.execute("ALTER TABLE page DROP COLUMN id")
    db.commit()


def upsert_page(db: psycopg.Connection, page: list[tuple]) -> int:
    """Upsert one page of contacts and replace their numbers, in one transaction."""
    width, custom = len(CONTACT_COLUMNS), CONTACT_COLUMNS.index("custom_fields")
    updates = ", ".join(
        f"{c} = EXCLUDED.{c}" for c in CONTACT_COLUMNS if c not in ("tenant_id", "created_at")
    )
    with db.transaction(), db.cursor() as cursor:
        with cursor.copy(f"COPY page ({', '.join(CONTACT_COLUMNS)}) FROM STDIN") as copy:
            for row in page:
                values = list(row[:width])
                values[custom] = json.dumps(values[custom])
                copy.write_row(values)
        cursor.execute(
            f"""INSERT INTO ceiling_contact ({", ".join(CONTACT_COLUMNS)})
                SELECT {", ".join(CONTACT_COLUMNS)} FROM page
                ON CONFLICT (tenant_id, source_connection_id, external_id)
                    WHERE source_connection_id IS NOT NULL AND NOT external_id = ''
                DO UPDATE SET {updates}
                RETURNING external_id, id, xmax <> 0"""
        )
        rows = cursor.fetchall()
        ids = {external_id: pk for external_id, pk, _ in rows}
        updated = [pk for _, pk, existed in rows if existed]  # only those have numbers to replace
        if updated:
            cursor.execute(
                "DELETE FROM ceiling_contactphone WHERE tenant_id = %s AND contact_id = ANY(%s)",
                [page[0][0], updated],
            )
        count = 0
        with cursor.copy(
            f"COPY ceiling_contactphone ({', '.join(PHONE_COLUMNS)}) FROM STDIN"
        ) as copy:
            for row in page:
                for e164, raw, extension, kind, is_valid in row[width]:
                    copy.write_row([row[0], ids[row[2]], e164, raw, extension, kind, is_valid])
                    count += 1
    return count


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))

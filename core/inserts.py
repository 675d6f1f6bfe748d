"""One row inserted unless it would break a unique constraint, in one statement.

`INSERT ... ON CONFLICT DO NOTHING RETURNING id`: on the ingest path, where the ORM's
get-or-create would cost a SELECT, a savepoint and its release besides the insert.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection, models


def insert_new(row: models.Model) -> bool:
    """Insert `row` unless a unique constraint already holds its values; True (pk set) if new.

    Fields get what a save would give them (defaults, `auto_now`); nothing is validated.
    """
    model = type(row)
    fields = _fields(model)
    values = [f.get_db_prep_save(f.pre_save(row, add=True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(_sql(model, connection.vendor), values)
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    row.pk = inserted[0]
    row._state.adding, row._state.db = False, connection.alias
    return True


def _fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


@functools.cache
def _sql(model: type[models.Model], vendor: str) -> str:
    """Built once per model and database vendor: it is on the ingest path."""
    quote = connection.ops.quote_name
    fields = _fields(model)
    columns = ", ".join(quote(str(f.column)) for f in fields)
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT DO NOTHING RETURNING {quote(str(model._meta.pk.column))}"
    )

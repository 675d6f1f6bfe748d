"""Rows written in one statement each, without the ORM's save around it.

`insert_new`, `INSERT ... ON CONFLICT DO NOTHING RETURNING id`: on the ingest path, where the
ORM's get-or-create would cost a SELECT, a savepoint and its release besides the insert.
`insert` and `update`: the rows a drain writes for each event, where building the ORM's
statement cost more than running it.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import DatabaseError, connection, models

from core import hot_path


def insert_new(row: models.Model) -> bool:
    """Insert `row` unless a unique constraint already holds its values; True (pk set) if new.

    Fields get what a save would give them (defaults, `auto_now`); nothing is validated.
    """
    # Without Django's cursor around it (hot_path.fetch_all): the accept's one statement.
    inserted = hot_path.fetch_all(_sql(type(row), connection.vendor, True), insert_values(row))
    if not inserted:
        return False
    _saved(row, inserted[0][0])
    return True


def insert(row: models.Model) -> None:
    """Insert `row` as save(force_insert=True) would, pk set; no model signals are sent.

    Fields get what a save would give them (defaults, `auto_now`); nothing is validated.
    """
    inserted = hot_path.fetch_all(_sql(type(row), connection.vendor, False), insert_values(row))
    _saved(row, inserted[0][0])


def update(row: models.Model, field_names: tuple[str, ...]) -> None:
    """Write these fields of a saved `row` as save(update_fields=...) would (`auto_now`
    included); no model signals are sent."""
    sql, fields = _update(type(row), field_names, connection.vendor)
    values = [f.get_db_prep_save(f.pre_save(row, add=False), connection) for f in fields]
    if not hot_path.fetch_all(sql, [*values, row.pk]):
        raise DatabaseError("Save with update_fields did not affect any rows.")  # as save()


@functools.cache
def _update(
    model: type[models.Model], field_names: tuple[str, ...], vendor: str
) -> tuple[str, list[models.Field[Any, Any]]]:
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in field_names]
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)  # type: ignore[union-attr]
    pk = quote(str(model._meta.pk.column))
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {pk} = %s RETURNING {pk}"  # noqa: S608
    return sql, fields  # type: ignore[return-value]


def _saved(row: models.Model, pk: Any) -> None:
    row.pk = pk
    row._state.adding, row._state.db = False, connection.alias


def insert_values(row: models.Model) -> list[Any]:
    """The row's values for the columns of `insert_columns`, as a save would give them."""
    fields = _fields(type(row))
    return [f.get_db_prep_save(f.pre_save(row, add=True), connection) for f in fields]


def insert_columns(model: type[models.Model]) -> str:
    """The model's columns but a database-made primary key, quoted and comma-separated."""
    return ", ".join(connection.ops.quote_name(str(f.column)) for f in _fields(model))


def _fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key and isinstance(f, models.AutoField))  # a uuid's is ours to give
    ]


@functools.cache
def _sql(model: type[models.Model], vendor: str, unless_conflict: bool) -> str:
    """Built once per model and database vendor: it is on the ingest path."""
    quote = connection.ops.quote_name
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({insert_columns(model)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(_fields(model)))}) "
        f"{'ON CONFLICT DO NOTHING ' if unless_conflict else ''}"
        f"RETURNING {quote(str(model._meta.pk.column))}"
    )

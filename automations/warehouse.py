"""The data-warehouse app (seed 001): one row per call, upserted into the tenant's PostgreSQL table.

On `call.end` and again on `analytics.completed` the call's row is written with
`INSERT ... ON CONFLICT (call_id) DO UPDATE`, so later data updates the same row and a re-run
changes nothing. The row carries the call's `updated_at`, and an older version never overwrites
a newer one (two events of one call may run on two workers at once).

The database is the tenant's, reached like any tenant-supplied URL: its host must pass the SSRF
guard (core/http.py) and the connection is pinned to the address that was checked (libpq
`hostaddr`), so DNS cannot swap it. Nothing of ours goes with it: no password file, environment
password, client certificate or Kerberos ticket. Connecting and the statement are each bounded by
the app's timeout (libpq's connect_timeout; statement_timeout, and the socket is cut if the
server does not answer in time).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from django.core.exceptions import ValidationError
from django.utils import timezone
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from calls.exports import EXPORT_FIELDS, change_stamp
from core import http

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
DSN_KEYS = ("host", "port", "dbname", "user", "password", "sslmode")
# Not "prefer" or "allow": they fall back to plain text without saying so. Not "verify-ca":
# libpq allows only verify-full with the system's CAs (sslrootcert=system).
SSL_MODES = ("require", "verify-full", "disable")
CONFIG_KEYS = ("table", "columns", "timeout")
DEFAULT_TIMEOUT = 10.0
KEY = "call_id"


class WarehouseError(Exception):
    """The row could not be written; `error_class` says why (blocked_ip, dns, connection, sql)."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class


@dataclass(frozen=True)
class WarehouseConfig:
    dsn: dict[str, str]  # only DSN_KEYS
    table: tuple[str, ...]  # (table,) or (schema, table)
    columns: dict[str, str]  # our field -> the table's column, call_id first
    timeout: float

    @classmethod
    def from_settings(cls, config: dict[str, Any], dsn: Any) -> WarehouseConfig:
        """Check the settings; ValidationError naming every bad field (config.dsn, ...)."""
        errors: dict[str, str] = {}
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            errors["config"] = f"Unknown warehouse setting {unknown[0]!r}."
        parsed = _dsn(dsn, errors)
        table = _table(config.get("table"), errors)
        columns = _columns(config.get("columns"), errors)
        timeout = config.get("timeout", DEFAULT_TIMEOUT)
        number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        if not number or not 2 <= timeout <= 60:
            errors["config.timeout"] = "Seconds, from 2 to 60."
        if errors:
            raise ValidationError(errors)
        return cls(dsn=parsed, table=table, columns=columns, timeout=float(timeout))

    def describe(self) -> dict[str, Any]:
        """Where rows go, without credentials (for the run's record)."""
        return {
            "host": self.dsn["host"],
            "dbname": self.dsn["dbname"],
            "table": ".".join(self.table),
        }


def warehouse_row(config: WarehouseConfig, event: dict[str, Any]) -> dict[str, Any]:
    """The call's row as the table's columns, from the app context's `event`."""
    values = {field: event.get(field) for field in EXPORT_FIELDS}
    values["updated_at"] = event.get("updated_at") or change_stamp(timezone.now())
    values["variables"] = values["variables"] or {}
    return {column: values[field] for field, column in config.columns.items()}


def upsert_statement(config: WarehouseConfig) -> sql.Composed:
    """INSERT ... ON CONFLICT (call_id) DO UPDATE, keeping a newer row; returns if it inserted."""
    columns = list(config.columns.values())
    key = config.columns[KEY]
    others = [c for c in columns if c != key] or [key]
    statement = sql.SQL(
        "INSERT INTO {table} AS target ({columns}) VALUES ({values}) "
        "ON CONFLICT ({key}) DO UPDATE SET {updates}"
    ).format(
        table=sql.Identifier(*config.table),
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(map(sql.Placeholder, columns)),
        key=sql.Identifier(key),
        updates=sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in others
        ),
    )
    if "updated_at" in config.columns:
        statement += sql.SQL(" WHERE target.{0} IS NULL OR target.{0} <= EXCLUDED.{0}").format(
            sql.Identifier(config.columns["updated_at"])
        )
    # xmax is 0 on a row version this statement inserted (PostgreSQL's upsert idiom).
    return statement + sql.SQL(" RETURNING (target.xmax = 0)")


def connect_params(dsn: dict[str, str], address: str, timeout: float) -> dict[str, str]:
    """libpq settings: the tenant's, pinned to the checked address, none of our own defaults."""
    sslmode = dsn.get("sslmode", "require")
    params = {
        "host": dsn["host"],  # still names the server for TLS verification
        "hostaddr": address,
        "port": dsn.get("port", "5432"),
        "dbname": dsn["dbname"],
        "user": dsn["user"],
        "password": dsn.get("password", ""),  # never PGPASSWORD from our environment
        "passfile": os.devnull,
        "sslmode": sslmode,
        "sslcertmode": "disable",  # never our ~/.postgresql/postgresql.crt
        "gssencmode": "disable",
        "require_auth": "!gss,!sspi",  # never our Kerberos ticket
        "connect_timeout": str(max(2, round(timeout))),  # libpq: 0 waits forever, 1 means 2
        "options": f"-c statement_timeout={round(timeout * 1000)}",
        "application_name": "callbridge",
    }
    if sslmode == "verify-full":
        params["sslrootcert"] = "system"  # the operating system's CAs, not a file of ours
    return params


def warehouse_upsert(config: WarehouseConfig, row: dict[str, Any]) -> str:
    """Write the row: 'inserted', 'updated' or 'kept' (the table has a newer version)."""
    port = int(config.dsn.get("port", "5432"))
    try:
        timeout = http.within_budget(config.timeout)  # a web request's budget (the call test)
        address = http.resolve_checked(config.dsn["host"], port)[0][4][0]
    except http.HttpError as error:
        raise WarehouseError(error.error_class, str(error)) from None
    params = connect_params(config.dsn, address, timeout)
    try:
        with psycopg.connect(**params) as connection:
            watchdog = threading.Timer(timeout, _cut, args=(connection,))
            watchdog.daemon = True
            watchdog.start()
            try:
                values = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in row.items()}
                answer = connection.execute(upsert_statement(config), values).fetchone()
            finally:
                watchdog.cancel()
    except psycopg.OperationalError as error:
        raise WarehouseError("connection", _redacted(error, config)) from None
    except psycopg.Error as error:  # the table, a column or a value does not fit: permanent
        raise WarehouseError("sql", _redacted(error, config)) from None
    if answer is None:
        return "kept"
    return "inserted" if answer[0] else "updated"


def timed_upsert(config: WarehouseConfig, row: dict[str, Any]) -> dict[str, Any]:
    """Write the row and describe the attempt (started_at, latency_ms, action or error)."""
    started, clock = timezone.now(), time.monotonic()
    attempt: dict[str, Any] = {
        "number": 1,
        "target": "warehouse",
        "started_at": started.isoformat(),
    }
    try:
        attempt["action"] = warehouse_upsert(config, row)
    except WarehouseError as error:
        attempt["error_class"], attempt["error"] = error.error_class, str(error)
    attempt["latency_ms"] = int((time.monotonic() - clock) * 1000)
    return attempt


def _cut(connection: psycopg.Connection) -> None:
    """Shut the socket down under a statement the server does not answer in time."""
    with contextlib.suppress(OSError, psycopg.Error):
        sock = socket.socket(fileno=os.dup(connection.fileno()))
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def _redacted(error: Exception, config: WarehouseConfig) -> str:
    message = str(error).strip() or type(error).__name__
    password = config.dsn.get("password")
    return message.replace(password, "[redacted]") if password else message


def _dsn(dsn: Any, errors: dict[str, str]) -> dict[str, str]:
    field = "config.dsn"
    if not isinstance(dsn, str) or not dsn.strip():
        errors[field] = "postgresql://user:password@host:5432/dbname?sslmode=require"
        return {}
    try:
        parsed = {k: str(v) for k, v in conninfo_to_dict(dsn.strip()).items()}
    except psycopg.ProgrammingError:
        errors[field] = "Not a PostgreSQL connection string (postgresql://user:password@host/db)."
        return {}
    unknown = sorted(set(parsed) - set(DSN_KEYS))
    host = parsed.get("host", "")
    if unknown:
        errors[field] = f"{unknown[0]!r} is not allowed; use only {', '.join(DSN_KEYS)}."
    elif not host or host.startswith(("/", "@")) or "," in host:
        errors[field] = "One host name or address (no socket path, no host list)."
    elif not parsed.get("dbname") or not parsed.get("user"):
        errors[field] = "Name the database and the user."
    elif (
        not parsed.get("port", "5432").isdigit() or not 0 < int(parsed.get("port", "5432")) < 65536
    ):
        errors[field] = "The port is a number from 1 to 65535."
    elif parsed.get("sslmode", "require") not in SSL_MODES:
        errors[field] = f"sslmode is one of {', '.join(SSL_MODES)}."
    else:
        try:
            http.check_host(host)
        except http.HttpError as error:
            errors[field] = f"{error} Use the warehouse's public host name."
    return parsed


def _table(table: Any, errors: dict[str, str]) -> tuple[str, ...]:
    parts = tuple(table.split(".")) if isinstance(table, str) else ()
    if not 1 <= len(parts) <= 2 or not all(IDENTIFIER.fullmatch(p) for p in parts):
        errors["config.table"] = (
            "A table name, schema-qualified if you like: call_exports or analytics.calls "
            "(letters, digits and _, not starting with a digit; used exactly as written)."
        )
    return parts


def _columns(columns: Any, errors: dict[str, str]) -> dict[str, str]:
    if columns is None:
        return {field: field for field in (KEY, *(f for f in EXPORT_FIELDS if f != KEY))}
    field = "config.columns"
    if not isinstance(columns, dict) or KEY not in columns:
        errors[field] = 'An object from our field to your column, with "call_id" in it.'
        return {}
    unknown = sorted(set(columns) - set(EXPORT_FIELDS))
    if unknown:
        errors[field] = f"{unknown[0]!r} is not a call field; they are {', '.join(EXPORT_FIELDS)}."
    elif not all(isinstance(c, str) and IDENTIFIER.fullmatch(c) for c in columns.values()):
        errors[field] = "Column names: letters, digits and _, not starting with a digit."
    elif len(set(columns.values())) != len(columns):
        errors[field] = "Two fields go to the same column."
    return {KEY: columns[KEY], **{f: c for f, c in columns.items() if f != KEY}}

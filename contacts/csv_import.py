"""Read a phonebook CSV file (header row, one contact per row) into contact records."""

from __future__ import annotations

import csv
import io

from contacts.models import ContactPhone

FIELD_COLUMNS = (
    "external_id",
    "first_name",
    "last_name",
    "company",
    "is_company",
    "crm_url",
    "country",
    "owner_crm_username",
)
PHONE_COLUMNS = {**{kind: kind for kind in ContactPhone.Kind.values}, "phone": "other"}
CUSTOM_PREFIX = "custom."


def contact_records_from_csv(content: bytes, *, max_rows: int) -> list[dict]:
    """One record per row, shaped like a bulk request's; raise ValueError for an unusable file.

    Columns: FIELD_COLUMNS, a number per kind (mobile, work, home, other; `phone` means other)
    and `custom.<name>` for custom fields. Empty cells are left out, so they change nothing.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError("The file is not UTF-8 text; save it as CSV UTF-8.") from error
    if "\x00" in text:
        raise ValueError("The file is not a CSV text file.")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [column.strip() for column in next(reader)]
        rows = list(reader)
    except StopIteration as error:
        raise ValueError("The file is empty; the first row must name the columns.") from error
    except csv.Error as error:
        raise ValueError(f"The file is not valid CSV: {error}.") from error
    _check_header(header)
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) > max_rows:
        raise ValueError(f"At most {max_rows} rows per file; split it into several files.")
    return [_record(header, row) for row in rows]


def _check_header(header: list[str]) -> None:
    known = (*FIELD_COLUMNS, *PHONE_COLUMNS)
    for column in header:
        if column not in known and not (
            column.startswith(CUSTOM_PREFIX) and column.removeprefix(CUSTOM_PREFIX)
        ):
            raise ValueError(
                f"Unknown column '{column}'; columns are {', '.join(known)} "
                f"and {CUSTOM_PREFIX}<name> for custom fields."
            )
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise ValueError(f"Column '{duplicates[0]}' appears twice.")


def _record(header: list[str], row: list[str]) -> dict:
    record: dict = {}
    if len(row) > len(header):
        # Reported by validation like any other bad value, on the row it belongs to.
        record["unnamed_columns"] = row[len(header) :]
    for column, cell in zip(header, row, strict=False):
        value = cell.strip()
        if not value:
            continue
        if column in PHONE_COLUMNS:
            record.setdefault("phones", []).append({"number": value, "kind": PHONE_COLUMNS[column]})
        elif column.startswith(CUSTOM_PREFIX):
            record.setdefault("custom_fields", {})[column.removeprefix(CUSTOM_PREFIX)] = value
        else:
            record[column] = value
    return record

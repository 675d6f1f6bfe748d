"""Generic REST: JSON paths, records from a configured mapping, the call-log body."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.generic_rest import config, mapping
from connectors.interface import CallLogEntry, ConfigError, SourcePhone

PAGE = json.loads((Path(__file__).parent / "fixtures/generic_rest/contacts_page.json").read_text())
SETTINGS = {
    "list": {"path": "/contacts", "items": "data.items[*]", "paging": {"style": "page"}},
    "fields": {
        "external_id": "id",
        "first_name": "attributes.first_name",
        "last_name": "attributes.last_name",
        "company": "organization.name",
        "country": "address.country",
        "updated_at": "updated_at",
        "phones": [
            {"path": "phones[*]", "number": "number", "kind_path": "type"},
            {"path": "main_phone", "kind": "work"},
        ],
    },
    "custom_fields": {"tier": "attributes.tier"},
    "crm_url": "https://crm.example.com/people/{id}",
}


def record_map():
    return config.parse({"base_url": "https://crm.example.com/api"}, SETTINGS).record_map


def items():
    return mapping.items_at(PAGE, mapping.parse_path("data.items[*]"))


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("data.items[*]", ("data", "items", "*")),
        ("phones[0].number", ("phones", 0, "number")),
        ("$.attributes.first_name", ("attributes", "first_name")),
        ("", ()),
        ("[*]", ("*",)),
    ],
)
def test_it_reads_simple_json_paths(path, steps):
    assert mapping.parse_path(path) == steps


@pytest.mark.parametrize("path", ["a..b", "a.", "[x]", "a[0]b", "a[-1]"])
def test_it_refuses_paths_it_cannot_read(path):
    with pytest.raises(mapping.PathError):
        mapping.parse_path(path)


def test_a_wildcard_takes_every_element_and_missing_branches_are_skipped():
    document = {"phones": [{"number": "1"}, {"kind": "x"}, {"number": "2"}]}

    assert mapping.resolve(document, mapping.parse_path("phones[*].number")) == ["1", "2"]
    assert mapping.first(document, mapping.parse_path("phones[5].number")) is None


def test_it_maps_a_record_with_phone_kinds_country_link_and_custom_fields():
    record = mapping.record_from_item(items()[0], record_map())

    assert record.external_id == "4711"  # a numeric id becomes text
    assert (record.first_name, record.last_name) == ("Ada", "Lovelace")
    assert record.company == "Analytical Engines Ltd"
    assert record.country == "GB"
    assert record.phones == (
        SourcePhone("07700 900123", "mobile"),  # "Cell"
        SourcePhone("+44 20 7946 0018", "work"),  # "office"
        SourcePhone("020 7946 0999", "other"),  # "fax": a kind we do not have
    )  # the repeated mobile number is kept once
    assert record.crm_url == "https://crm.example.com/people/4711"
    assert record.custom_fields == {"tier": "gold"}


def test_a_sparse_record_keeps_what_it_has_and_quotes_its_id_in_the_link():
    record = mapping.record_from_item(items()[1], record_map())

    assert (record.first_name, record.last_name, record.company) == ("", "", "")
    assert record.country == ""  # free text: the tenant's region reads its numbers
    assert record.phones == (SourcePhone("(415) 555-0132", "work"),)
    assert record.crm_url == "https://crm.example.com/people/p%2F77"
    assert record.custom_fields == {}


def test_a_record_without_an_id_is_unreadable():
    with pytest.raises(mapping.UnreadableRecord):
        mapping.record_from_item(items()[2], record_map())


def test_modification_times_are_read_as_iso_or_epoch_seconds():
    steps = mapping.parse_path("updated_at")

    assert mapping.updated_ms(items()[0], steps) == 1709285400250
    assert mapping.updated_ms(items()[1], steps) == 1709285400000
    assert mapping.updated_ms({"updated_at": "yesterday"}, steps) is None


def test_the_call_log_body_is_built_from_call_fields():
    entry = CallLogEntry(
        call_id="call-1",
        direction="inbound",
        outcome="answered",
        started_at=datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
        duration_seconds=125,
        from_number="+442079460018",
        to_number="+442045205757",
        contact_external_id="4711",
    )
    template = {"id": "call_id", "at": "started_at", "secs": "duration_seconds"}
    template["numbers"] = {"from": "from_number"}

    assert mapping.call_log_body(template, entry) == {
        "id": "call-1",
        "at": "2024-03-01T09:30:00Z",
        "secs": 125,
        "numbers": {"from": "+442079460018"},
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"list": {"path": "contacts", "paging": {"style": "page"}}}, "settings.list.path"),
        ({"list": {"path": "/c", "paging": {"style": "links"}}}, "settings.list.paging.style"),
        (
            {"list": {"path": "/c", "paging": {"style": "page", "page_size": 5000}}},
            "settings.list.paging.page_size",
        ),
        (
            {"list": {"path": "/c", "paging": {"style": "cursor"}}},
            "settings.list.paging.next_cursor",
        ),
        ({"fields": {"first_name": "a"}}, "settings.fields.external_id"),
        ({"fields": {"external_id": "id", "email": "e"}}, "settings.fields.email"),
        ({"fields": {"external_id": "a..b"}}, "settings.fields.external_id"),
        ({"auth": {"kind": "bearer"}}, "credentials.token"),
        ({"auth": {"kind": "oauth2_client_credentials"}}, "credentials.client_id"),
        ({"crm_url": "https://crm.example.com/{uuid}"}, "settings.crm_url"),
        ({"call_log": {"path": "/calls", "body": {"x": "agent"}}}, "settings.call_log.body.x"),
    ],
)
def test_bad_settings_name_the_setting_to_fix(change, field):
    with pytest.raises(ConfigError) as error:
        config.parse({"base_url": "https://crm.example.com"}, SETTINGS | change)

    assert error.value.field == field


def test_updated_since_needs_the_modification_time_field():
    settings = SETTINGS | {"fields": {"external_id": "id"}}
    settings["list"] = SETTINGS["list"] | {"updated_since": {"param": "since"}}

    with pytest.raises(ConfigError) as error:
        config.parse({"base_url": "https://crm.example.com"}, settings)

    assert error.value.field == "settings.fields.updated_at"

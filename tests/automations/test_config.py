"""Webhook app settings: parsed into a frozen config, every bad field named."""

import dataclasses

import pytest
from django.core.exceptions import ValidationError

from automations.webhooks.config import (
    WebhookConfig,
    WebhookConfigError,
    join_secrets,
    split_secrets,
)

SEED_004 = {
    "method": "POST",
    "url": "https://api.company.com/contacts/{{ event.calling_number }}/details",
    "auth": {"kind": "bearer", "token": "s3cr3t-bearer"},
    "headers": [{"key": "X-Custom-Header", "value": "{{ app_data.previous-app.data.custom }}"}],
    "body": (
        '{\n  "phone": "{{ event.calling_number }}",\n  "called": "{{ event.called_number }}",\n'
        '  "timestamp": "{{ event.timestamp }}",\n  "device": "{{ event.calling_devicename }}"\n}'
    ),
}


def errors_of(settings: dict, **options) -> dict[str, list[str]]:
    with pytest.raises(WebhookConfigError) as invalid:
        WebhookConfig.from_settings(settings, **options)
    return invalid.value.message_dict


def test_the_seed_example_parses_with_the_seed_defaults():
    config = WebhookConfig.from_settings(SEED_004)

    assert config.method == "POST"
    assert config.body == {
        "phone": "{{ event.calling_number }}",
        "called": "{{ event.called_number }}",
        "timestamp": "{{ event.timestamp }}",
        "device": "{{ event.calling_devicename }}",
    }
    assert (config.timeout, config.retry_count, config.retry_delays) == (30, 3, (1, 2, 4))
    assert config.deadline_seconds == 30 * 4 + 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.url = "https://elsewhere.example.com"  # type: ignore[misc]


def test_a_real_time_app_times_out_after_5_seconds_by_default():
    assert WebhookConfig.from_settings(SEED_004, realtime=True).timeout == 5
    assert WebhookConfig.from_settings({**SEED_004, "timeout": 2}, realtime=True).timeout == 2


def test_a_bare_get_needs_only_a_url():
    config = WebhookConfig.from_settings({"method": "get", "url": "https://api.example.com/x"})

    assert (config.method, config.auth.kind, config.body) == ("GET", "none", None)


def test_templates_may_fill_the_path_and_query_but_not_the_host():
    url = "https://api.example.com?phone={{ event.calling_number }}"

    assert WebhookConfig.from_settings({"url": url}).url == url


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"method": "PUT"}, "method"),
        ({"url": None}, "url"),
        ({"url": "ftp://files.example.com/x"}, "url"),
        ({"url": "https://{{ event.host }}/x"}, "url"),
        ({"url": "https://api.example.com/{{ event.__class__ }}"}, "url"),
        ({"url": "http://user:pw@api.example.com/"}, "url"),
        ({"auth": {"kind": "digest"}}, "auth.kind"),
        ({"auth": {"kind": "bearer"}}, "auth.token"),
        ({"auth": {"kind": "bearer", "token": "t", "password": "p"}}, "auth.password"),
        ({"auth": {"kind": "basic", "password": "p"}}, "auth.username"),
        ({"auth": {"kind": "basic", "username": "a:b"}}, "auth.username"),
        ({"auth": {"kind": "oauth2_client_credentials", "client_id": "c"}}, "auth.token_url"),
        ({"auth": {"kind": "oauth2_client_credentials", "client_id": "c"}}, "auth.client_secret"),
        ({"headers": {"X-A": "1"}}, "headers"),
        ({"headers": [{"key": "Bad Name", "value": "1"}]}, "headers[0].key"),
        ({"headers": [{"key": "Host", "value": "evil.example.com"}]}, "headers[0].key"),
        (
            {"headers": [{"key": "X-A", "value": "1"}, {"key": "x-a", "value": "2"}]},
            "headers[1].key",
        ),
        ({"headers": [{"key": "X-A", "value": 1}]}, "headers[0].value"),
        ({"headers": [{"key": "Authorization", "value": "Bearer x"}]}, "headers"),
        (
            {"query_params": [{"key": "q", "value": "{{ event.x | upper }}"}]},
            "query_params[0].value",
        ),
        ({"method": "GET"}, "body"),
        ({"body": '{"phone": "{{ event.calling_number }}",}'}, "body"),
        ({"body": {"phone": "{{ evnt.calling_number }}"}}, "body"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "30"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"retry_count": 2.5}, "retry_count"),
        ({"retry_count": 11}, "retry_count"),
        ({"retry_delay": -1}, "retry_delay"),
        ({"retries": 3}, "retries"),
    ],
)
def test_each_bad_setting_is_named(change, field):
    assert field in errors_of({**SEED_004, **change})


def test_every_problem_is_reported_at_once_as_a_django_validation_error():
    with pytest.raises(ValidationError) as invalid:
        WebhookConfig.from_settings({"method": "PUT", "url": "", "timeout": -1})

    assert set(invalid.value.message_dict) == {"method", "url", "timeout"}


def test_a_private_address_is_refused_at_save_time_unless_allowed(settings):
    private = {**SEED_004, "url": "http://169.254.169.254/latest/meta-data"}
    settings.ALLOW_PRIVATE_URLS = False

    assert "url" in errors_of(private)
    assert "auth.token_url" in errors_of(
        {
            "url": "https://api.example.com/",
            "auth": {
                "kind": "oauth2_client_credentials",
                "token_url": "http://127.0.0.1:8080/token",
                "client_id": "c",
                "client_secret": "s",
            },
        }
    )
    settings.ALLOW_PRIVATE_URLS = True
    assert WebhookConfig.from_settings(private).url == private["url"]


OAUTH_SETTINGS = {
    "url": "https://api.example.com/calls",
    "auth": {
        "kind": "oauth2_client_credentials",
        "token_url": "https://login.example.com/oauth/token",
        "client_id": "cb-client",
        "client_secret": "client-s3cr3t",
        "scope": "calls.write",
    },
    "headers": [
        {"key": "X-Api-Key", "value": "key-s3cr3t"},
        {"key": "X-Tenant", "value": "acme"},
        {"key": "X-Signature-Seed", "value": "seed-s3cr3t", "secret": True},
    ],
    "query_params": [{"key": "access_token", "value": "query-s3cr3t"}, {"key": "v", "value": "2"}],
}


def test_secrets_are_identified_and_split_from_the_rest():
    public, secrets = split_secrets(OAUTH_SETTINGS)

    assert "s3cr3t" not in str(public)
    assert secrets == {
        "auth": {"client_secret": "client-s3cr3t"},
        "headers": {"X-Api-Key": "key-s3cr3t", "X-Signature-Seed": "seed-s3cr3t"},
        "query_params": {"access_token": "query-s3cr3t"},
    }
    assert public["headers"][1] == {"key": "X-Tenant", "value": "acme"}
    assert join_secrets(public, secrets) == OAUTH_SETTINGS
    config = WebhookConfig.from_settings(OAUTH_SETTINGS)
    assert sorted(config.secret_values()) == sorted(
        ["client-s3cr3t", "key-s3cr3t", "seed-s3cr3t", "query-s3cr3t"]
    )


def test_a_patch_without_secrets_keeps_the_stored_ones_and_a_new_one_wins():
    public, secrets = split_secrets(OAUTH_SETTINGS)
    public["auth"]["scope"] = "calls.read"
    public["headers"][0]["value"] = "new-key"

    joined = join_secrets(public, secrets)

    assert joined["auth"]["client_secret"] == "client-s3cr3t"
    assert joined["auth"]["scope"] == "calls.read"
    assert joined["headers"][0]["value"] == "new-key"


def test_stored_secrets_of_another_auth_kind_are_not_brought_back():
    _, secrets = split_secrets({**SEED_004, "auth": {"kind": "bearer", "token": "old"}})

    joined = join_secrets({**SEED_004, "auth": {"kind": "basic", "username": "u"}}, secrets)

    assert joined["auth"] == {"kind": "basic", "username": "u"}

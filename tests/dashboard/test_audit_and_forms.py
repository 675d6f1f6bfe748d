"""The audit log never stores a secret; a form's one rendering is accepted once."""

import pytest
from django import forms

from core.scoping import tenant_scope
from dashboard.forms import SUBMIT_TOKEN_FIELD, SubmitOnceForm, form_changes
from tenants.models import AuditEntry
from tenants.services import audit_record

pytestmark = pytest.mark.django_db


def test_an_audit_entry_records_who_did_what_but_never_a_secret(tenant, make_member):
    actor = make_member(tenant, "admin", username="ada")

    with tenant_scope(tenant):
        audit_record(
            tenant=tenant,
            actor=actor,
            action="callback.update",
            target="Callback settings",
            changes={
                "callback_url": ["", "https://crm.example.com/hook"],
                "callback_auth_value": ["old", "Bearer s3cret"],
                "credentials": {"client_secret": "x", "api_key": "y"},
                "settings": {"signing_secret": "z", "enabled": True},
            },
        )
        entry = AuditEntry.objects.get()

    assert (entry.actor_name, entry.action) == ("ada", "callback.update")
    assert entry.target == "Callback settings"
    assert entry.changes == {
        "callback_url": ["", "https://crm.example.com/hook"],
        "callback_auth_value": "(changed)",
        "credentials": "(changed)",
        "settings": {"signing_secret": "(changed)", "enabled": True},
    }
    assert "s3cret" not in str(entry.changes)


class NameForm(SubmitOnceForm):
    name = forms.CharField(max_length=10)


def test_a_form_is_accepted_once_but_can_be_fixed_and_resent_after_an_error():
    token, other_token = (NameForm().fields[SUBMIT_TOKEN_FIELD].initial for _ in range(2))

    too_long = NameForm({"name": "x" * 11, SUBMIT_TOKEN_FIELD: token})
    fixed = NameForm({"name": "Ada", SUBMIT_TOKEN_FIELD: token})
    again = NameForm({"name": "Ada", SUBMIT_TOKEN_FIELD: token})
    fresh = NameForm({"name": "Ada", SUBMIT_TOKEN_FIELD: other_token})

    assert not too_long.is_valid()
    assert fixed.is_valid()
    assert not again.is_valid()
    assert again.non_field_errors() == [
        "This form was already submitted; reload the page to see the result."
    ]
    assert fresh.is_valid()


def test_a_form_without_its_token_is_refused():
    form = NameForm({"name": "Ada"})

    assert not form.is_valid() and SUBMIT_TOKEN_FIELD in form.errors


def test_form_changes_lists_changed_fields_before_and_after():
    form = NameForm({"name": "Grace", SUBMIT_TOKEN_FIELD: "t" * 20}, initial={"name": "Ada"})
    form.is_valid()

    assert form_changes(form) == {"name": ["Ada", "Grace"]}

from django.contrib import admin
from django.db import models
from django.forms import ModelForm
from django.http import HttpRequest

from contacts import services
from contacts.models import Contact, ContactPhone, PhonebookSettings
from tenants.admin import TenantOwnedAdmin, tenant_settings_inline


class PhonebookSettingsInline(admin.StackedInline):
    model = PhonebookSettings
    can_delete = False


tenant_settings_inline(PhonebookSettingsInline)


class ContactPhoneInline(admin.TabularInline):
    model = ContactPhone
    fields = ["raw", "e164", "extension", "kind", "is_valid"]
    readonly_fields = ["e164", "extension", "is_valid"]
    extra = 0


@admin.register(Contact)
class ContactAdmin(TenantOwnedAdmin):
    list_display = ["__str__", "company", "tenant", "owner", "external_id", "updated_at"]
    list_filter = [
        "tenant",
        "is_company",
        "country",
        ("deleted_at", admin.EmptyFieldListFilter),
        ("source_connection_id", admin.EmptyFieldListFilter),
    ]
    list_select_related = ["tenant", "owner"]
    search_fields = ["first_name", "last_name", "company", "external_id", "phones__e164"]
    raw_id_fields = ["owner"]
    readonly_fields = ["last_call_at", "call_count", "last_call_status", "created_at", "updated_at"]
    inlines = [ContactPhoneInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    show_full_result_count = False  # COUNT(*) over a million-row phonebook on every page

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: list, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        # Numbers typed into the inline are stored raw: read them like the API does.
        contact = form.instance
        services.contact_update(
            contact=contact,
            phones=[services.PhoneInput(p.raw, p.kind) for p in contact.phones.all()],
        )


@admin.register(ContactPhone)
class ContactPhoneAdmin(TenantOwnedAdmin):
    list_display = ["raw", "e164", "kind", "is_valid", "contact", "tenant"]
    list_filter = ["tenant", "kind", "is_valid"]
    list_select_related = ["tenant", "contact"]
    search_fields = ["e164", "raw"]
    raw_id_fields = ["contact"]

"""Phonebook: search contacts by name, company or any number; a contact's card; CSV import.

Search is the API's selector (GET /api/v1/contacts?search=); the import is the API's
(POST /api/v1/contacts/import), with the same per-row report.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from contacts import selectors
from contacts.api.views import csv_import_report
from contacts.csv_import import FIELD_COLUMNS, PHONE_COLUMNS
from dashboard.access import member_required, requires_role
from dashboard.audit import audit
from dashboard.forms import SubmitOnceForm
from dashboard.htmx import render_page

CONTACTS_PER_PAGE = 25


class SearchForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,  # the API's limit
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Name, company or a number in any format"}
        ),
    )


class ImportForm(SubmitOnceForm):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, a header row naming the columns; rows are upserted by external_id.",
    )

    def clean_file(self) -> object:
        file = self.cleaned_data["file"]
        if file.size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
            raise forms.ValidationError(f"The file is larger than {limit} MB; split it.")
        return file


@member_required
def phonebook(request: HttpRequest) -> HttpResponse:
    search = SearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    contacts = selectors.contact_list(tenant=request.tenant, search=query)
    page = Paginator(contacts, CONTACTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"search": search, "query": query, "page": page}
    return render_page(
        request, "dashboard/phonebook/index.html", "dashboard/phonebook/_results.html", context
    )


@member_required
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contact = get_object_or_404(
        selectors.contact_list(tenant=request.tenant).select_related("source_connection"), pk=pk
    )
    return render(request, "dashboard/phonebook/detail.html", {"contact": contact})


@requires_role("admin")
def contact_import(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        try:
            report = csv_import_report(
                tenant=request.tenant, content=form.cleaned_data["file"].read()
            )
        except ValueError as error:
            form.add_error("file", str(error))
        else:
            counts = {k: report[k] for k in ("created", "updated", "errors")}
            audit(request, "contacts.import", form.cleaned_data["file"].name, counts)
            form = ImportForm()  # a fresh token for the next file
    columns = [*FIELD_COLUMNS, *PHONE_COLUMNS, "custom.<name>"]
    context = {"form": form, "report": report, "columns": columns}
    return render(request, "dashboard/phonebook/import.html", context)

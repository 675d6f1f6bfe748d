"""The stand-in for a page whose own view is not written yet (its helper replaces the url line)."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.access import member_required
from dashboard.navigation import PAGES


def placeholder(url_name: str) -> Callable[..., HttpResponse]:
    page = next(p for p in PAGES if p.url_name == url_name)

    @member_required
    def view(request: HttpRequest) -> HttpResponse:
        return render(request, "dashboard/placeholder.html", {"page": page})

    return view

"""The stand-in for a page whose own view is not written yet (its helper replaces the url line)."""

from django.http import HttpResponse
from django.shortcuts import render

from dashboard.access import MemberRequest, View, member_required
from dashboard.navigation import PAGES


def placeholder(url_name: str) -> View:
    page = next(p for p in PAGES if p.url_name == url_name)

    @member_required
    def view(request: MemberRequest) -> HttpResponse:
        return render(request, "dashboard/placeholder.html", {"page": page})

    return view

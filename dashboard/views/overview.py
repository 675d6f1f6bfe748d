"""Overview: what is happening now (live calls, today's counts, system health)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.access import member_required


@member_required
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/overview/index.html", {})

"""The page that asks before a destructive POST (delete, revoke, remove): GET shows it."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def confirm_page(
    request: HttpRequest, *, title: str, text: str, button: str, cancel_url: str
) -> HttpResponse:
    """Ask "title?"; its form POSTs back to the same URL, `cancel_url` (a URL name) goes back."""
    context = {"title": title, "text": text, "button": button, "cancel_url": cancel_url}
    return render(request, "dashboard/confirm.html", context)

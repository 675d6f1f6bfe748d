"""Call recordings: one unguessable URL of ours per recorded call, redirecting to the audio.

We redirect rather than proxy: the audio never streams through our web processes, and we never
fetch a URL a phone system gave us (no SSRF surface). The URL exists from the moment we know the
call is recorded, so the call-result push can carry it before the phone system has finished the
file; it answers 503 until then, and 404 once the tenant revokes it.
"""

from __future__ import annotations

import io
import secrets
import wave

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, Recording
from core.hashing import hash_secret
from core.scoping import across_all_tenants

# What the simulator "records": we serve a second of silence ourselves.
SIMULATED_LOCATION = "simulator:silence"


def recording_ensure(*, call: Call) -> Recording:
    """The call's recording, created with a fresh URL when the call has none yet."""
    existing = Recording.objects.filter(call=call).first()
    if existing is not None:
        return existing
    token = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            recording = Recording.objects.create(
                tenant_id=call.tenant_id, call=call, token=token, token_hash=hash_secret(token)
            )
            _call_changed(call.pk)
            return recording
    except IntegrityError:  # another event of the same call made it first
        return Recording.objects.get(call=call)


def recording_attach(*, call: Call, location: str) -> Recording:
    """Point the call's recording URL at where the phone system keeps the audio."""
    recording = recording_ensure(call=call)
    recording.location = location
    recording.ready_at = timezone.now()
    recording.save(update_fields=["location", "ready_at"])
    return recording


def recording_revoke(*, recording: Recording) -> Recording:
    """Turn the recording's URL off for good (404 from the next request on)."""
    if recording.revoked_at is None:
        recording.revoked_at = timezone.now()
        recording.save(update_fields=["revoked_at"])
        _call_changed(recording.call_id)
    return recording


def _call_changed(call_pk: int) -> None:
    """The call's recording_url changed: the calls export (ordered by updated_at) must see it."""
    Call.objects.filter(pk=call_pk).update(updated_at=timezone.now())


def recording_url(recording: Recording | None) -> str | None:
    """The public URL of a live recording (None when there is none or it was revoked)."""
    if recording is None or recording.revoked_at is not None:
        return None
    path = reverse("recording", kwargs={"token": recording.token})
    return f"{settings.PUBLIC_BASE_URL}{path}"


def call_recording_url(call: Call) -> str | None:
    """The call's recording URL, if it is recorded and the URL was not revoked."""
    try:
        return recording_url(call.recording)
    except Recording.DoesNotExist:
        return None


def recording_find(token: str) -> Recording | None:
    """The live recording a URL token names, from any tenant (the token is the credential)."""
    with across_all_tenants():
        recording = (
            Recording.objects.select_related("tenant").filter(token_hash=hash_secret(token)).first()
        )
    if recording is None or recording.revoked_at is not None or not recording.tenant.is_active:
        return None
    return recording


def silence_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A mono 8 kHz WAV of silence: the simulator's recordings."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(1)
        audio.setframerate(rate)
        audio.writeframes(b"\x80" * int(seconds * rate))  # 8-bit WAV is unsigned: 128 is silence
    return buffer.getvalue()

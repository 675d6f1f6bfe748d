"""Call recordings: one unguessable URL of ours per recorded call, serving the audio.

The URL exists from the moment we know the call is recorded, so the call-result push can carry
it before the audio is ready; it answers 503 until then, 404 once the tenant revokes it and 410
once the tenant's retention rule has deleted it.

Per tenant (`RecordingSettings.keep`): `link` redirects to where the phone system keeps the
audio (the audio never streams through us, and we never fetch the phone system's URL); `copy`
first copies the file into our recordings storage (settings.STORAGES["recordings"]: a directory,
or an S3-compatible bucket) from a worker, through the SSRF guard, within a size limit and only
audio content types, and the URL serves our copy (a bucket's through a short presigned URL). A
copy that keeps failing leaves the link serving the phone system's URL, with the reason kept:
nothing is lost.
"""

from __future__ import annotations

import io
import logging
import mimetypes
import secrets
import wave
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import IntegrityError, transaction
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, Recording, RecordingSettings
from core import http
from core.hashing import hash_secret
from core.scoping import across_all_tenants, tenant_scope

logger = logging.getLogger(__name__)

COPY_TRIES = 4
COPY_DEADLINE_SECONDS = 60.0
COPY_STALE = timedelta(minutes=10)  # longer than all tries' backoff (5 + 10 + 20 s) and deadlines

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
    """Point the call's recording URL at where the phone system keeps the audio.

    A tenant that keeps copies, or audio only the engine's credentials fetch, gets the copy made
    first (after this commits): the URL serves the audio once it is in our storage.
    """
    from calls.tasks import recording_copy

    recording = recording_ensure(call=call)
    recording.location = location
    # Audio behind the engine's login cannot be redirected to: it is always copied.
    copying = (
        bool(_engine_headers(call, location))
        or RecordingSettings.objects.filter(
            tenant_id=call.tenant_id, keep=RecordingSettings.Keep.COPY
        ).exists()
    )
    recording.ready_at = None if copying else timezone.now()
    recording.save(update_fields=["location", "ready_at"])
    if copying:
        args = (call.tenant_id, recording.pk)
        transaction.on_commit(lambda: recording_copy.delay(*args))
    return recording


class CopyFailed(Exception):
    """The audio could not be copied; `retry` when another try may do better."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def recording_copy_now(*, recording_pk: int) -> Recording:
    """Copy the recording's audio into our storage; serve the phone system's link if it fails.

    Raises CopyFailed(retry=True) while another try is worth it (no answer, 429, 5xx).
    """
    recording = Recording.objects.select_related("call").get(pk=recording_pk)
    if recording.stored_name or recording.revoked_at or recording.purged_at:
        return recording  # done already, or no longer wanted
    recording.copy_attempts += 1
    try:
        audio, content_type = _audio_of(
            recording.location, _engine_headers(recording.call, recording.location)
        )
        name = recordings_storage().save(
            f"{recording.tenant_id}/{recording.call.call_id}{_extension(content_type)}",
            ContentFile(audio),
        )
    except CopyFailed as error:
        recording.copy_error = str(error)[:2000]
        final = not error.retry or recording.copy_attempts >= COPY_TRIES
        if final:  # nothing is lost: the link serves the phone system's copy
            recording.ready_at = timezone.now()
        recording.save(update_fields=["copy_attempts", "copy_error", "ready_at"])
        if not final:
            raise
        logger.warning("Recording %s was not copied: %s", recording.pk, error)
        return recording
    recording.stored_name, recording.content_type = name, content_type
    recording.size_bytes, recording.copy_error = len(audio), ""
    recording.ready_at = timezone.now()
    recording.save()
    return recording


def engine_held(recording: Recording) -> bool:
    """Whether the audio sits behind the engine's credentials (our link cannot redirect there)."""
    with tenant_scope(recording.tenant_id):  # the link's token found it, across tenants
        return bool(_engine_headers(recording.call, recording.location))


def _engine_headers(call: Call, location: str) -> dict[str, str]:
    """The credentials the call's engine needs to fetch `location` ({} for a public URL)."""
    if location == SIMULATED_LOCATION or not location:
        return {}
    from calls.gateways import gateway_for

    return gateway_for(call.tenant).recording_headers(location)


def _audio_of(location: str, headers: dict[str, str]) -> tuple[bytes, str]:
    """The audio at `location` and its content type (the simulator's is our silence)."""
    if location == SIMULATED_LOCATION:
        return silence_wav(), "audio/wav"
    try:
        response = http.request(
            "GET",
            location,
            deadline_seconds=COPY_DEADLINE_SECONDS,
            headers={"Accept": "audio/*", **headers},
            secret_headers=tuple(headers),
            max_body_bytes=settings.RECORDINGS_MAX_BYTES,
        )
    except http.HttpError as error:
        retry = error.error_class not in ("too_large", "blocked_ip", "invalid_url")
        return _refused(f"The recording could not be fetched: {error}", retry=retry)
    if response.status_code != 200:
        retry = response.status_code == 429 or response.status_code >= 500
        return _refused(f"The recording's URL answered {response.status_code}.", retry=retry)
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type.startswith("audio/"):
        return _refused(f"The recording's URL sent {content_type or 'no content type'}, not audio.")
    return response.body, content_type


def _refused(message: str, *, retry: bool = False) -> tuple[bytes, str]:
    raise CopyFailed(message, retry=retry)


def _extension(content_type: str) -> str:
    known = {"audio/mpeg": ".mp3", "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/ogg": ".ogg"}
    return known.get(content_type) or mimetypes.guess_extension(content_type) or ""


def copy_attempts(recording_pk: int) -> int:
    return Recording.objects.filter(pk=recording_pk).values_list("copy_attempts", flat=True)[0]


def recordings_copy_stale(*, older_than: timedelta = COPY_STALE) -> list[tuple[int, int]]:
    """(tenant id, recording pk) of copies still waiting a while after they were due."""
    with across_all_tenants():
        waiting = Recording.objects.filter(
            ready_at__isnull=True,
            revoked_at__isnull=True,
            purged_at__isnull=True,
            created_at__lt=timezone.now() - older_than,
        ).exclude(location="")
        return list(waiting.values_list("tenant_id", "pk")[:500])


def recordings_storage() -> Storage:
    return storages["recordings"]


def stored_response(recording: Recording) -> HttpResponseBase:
    """Our copy: streamed from a directory, or a short presigned URL of the bucket."""
    storage = recordings_storage()
    if isinstance(storage, FileSystemStorage):
        try:
            audio = storage.open(recording.stored_name, "rb")
        except FileNotFoundError:
            logger.error("Recording %s's file %s is missing", recording.pk, recording.stored_name)
            return HttpResponse("The recording's file is missing.", status=404)
        content_type = recording.content_type or "application/octet-stream"
        return FileResponse(audio, content_type=content_type)
    return HttpResponseRedirect(storage.url(recording.stored_name))


def recordings_retention_apply() -> int:
    """Delete recordings older than their tenant's retention (our copy too); answer how many."""
    deleted = 0
    with across_all_tenants():
        rules = RecordingSettings.objects.filter(retention_days__isnull=False)
        for tenant_id, days in rules.values_list("tenant_id", "retention_days"):
            cutoff = timezone.now() - timedelta(days=days or 0)
            due = Recording.objects.filter(
                tenant_id=tenant_id, created_at__lt=cutoff, purged_at__isnull=True
            )
            for recording in due.iterator():
                if recording.stored_name:
                    recordings_storage().delete(recording.stored_name)
                recording.purged_at = timezone.now()
                recording.location = ""
                recording.save(update_fields=["purged_at", "location"])
                deleted += 1
    return deleted


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
    """The public URL of a live recording (None when there is none, it was revoked or deleted)."""
    if recording is None or recording.revoked_at is not None or recording.purged_at is not None:
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

"""Recordings copied to our storage first (a directory, or an S3-compatible bucket), served by our
link, refused when not audio or too large, and deleted after the tenant's retention."""

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from django.utils import timezone
from moto.server import ThreadedMotoServer

from calls import events, recordings
from calls.models import Call, Recording, RecordingSettings, TelephonyEvent
from core.scoping import tenant_scope

AUDIO = b"ID3" + bytes(range(256)) * 8  # 2 KiB that call themselves MP3
BUCKET = "callbridge-recordings"


@pytest.fixture(autouse=True)
def _scoped(request):
    """Copies run in the tenant's scope, as the worker's task runs them."""
    if "integration" in request.keywords:
        yield
        return
    tenant = request.getfixturevalue("tenant")
    with tenant_scope(tenant):
        yield


class AudioHost(BaseHTTPRequestHandler):
    """Where a phone system keeps recordings: /rec.mp3 audio, /page HTML, /flaky 503s."""

    flaky_left = 0

    def do_GET(self) -> None:
        if self.path == "/flaky" and AudioHost.flaky_left > 0:
            AudioHost.flaky_left -= 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, kind = (
            (b"<html>login</html>", "text/html") if self.path == "/page" else (AUDIO, "audio/mpeg")
        )
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def audio_host(settings):
    settings.ALLOW_PRIVATE_URLS = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), AudioHost)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def on_disk(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "recordings")},
        },
    }
    return tmp_path / "recordings"


@pytest.fixture
def keeping(tenant):
    tenant.recording_settings.keep = RecordingSettings.Keep.COPY
    tenant.recording_settings.save()
    return tenant


def recorded_call(tenant, url: str) -> Recording:
    """Call pbx-7 ends and its recording is ready at `url`, applied as the worker does."""
    for kind, extra in (
        ("call.end", {"status": "ANSWER"}),
        ("recording.ready", {"recording_url": url}),
    ):
        body = {
            "id": f"e-{kind}",
            "type": kind,
            "call_id": "pbx-7",
            "from": "+447400123456",
            **extra,
        }
        with tenant_scope(tenant):
            row, _ = events.telephony_event_accept(tenant=tenant, body=body, source="json")
            events.telephony_event_process(event_pk=row.pk)
    with tenant_scope(tenant):
        return Recording.objects.get(call=TelephonyEvent.objects.get(pk=row.pk).call)


def link_of(recording: Recording) -> str:
    return urlsplit(recordings.recording_url(recording)).path


@pytest.mark.django_db
def test_a_copy_is_made_before_the_link_serves_it(client, keeping, audio_host, on_disk):
    recording = recorded_call(keeping, f"{audio_host}/rec.mp3")
    before = client.get(link_of(recording))

    copied = recordings.recording_copy_now(recording_pk=recording.pk)
    after = client.get(link_of(recording))

    assert before.status_code == 503
    assert after.status_code == 200 and after["Content-Type"] == "audio/mpeg"
    assert b"".join(after.streaming_content) == AUDIO
    assert (copied.size_bytes, copied.copy_error) == (len(AUDIO), "")
    assert (on_disk / copied.stored_name).read_bytes() == AUDIO
    assert copied.stored_name.startswith(f"{keeping.pk}/") and copied.stored_name.endswith(".mp3")


@pytest.mark.django_db
def test_a_tenant_keeping_links_is_served_the_phone_systems_link_at_once(
    client, tenant, audio_host, on_disk
):
    recording = recorded_call(tenant, f"{audio_host}/rec.mp3")

    served = client.get(link_of(recording))

    assert served.status_code == 302 and served["Location"] == f"{audio_host}/rec.mp3"
    assert not any(on_disk.glob("**/*.mp3"))


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/page", "/rec.mp3"])
def test_what_is_not_audio_or_too_large_is_refused_and_the_phone_systems_link_is_served(
    client, keeping, audio_host, on_disk, settings, path
):
    settings.RECORDINGS_MAX_BYTES = 1024  # /rec.mp3 is 2 KiB
    recording = recorded_call(keeping, f"{audio_host}{path}")

    kept = recordings.recording_copy_now(recording_pk=recording.pk)
    served = client.get(link_of(recording))

    assert kept.stored_name == "" and kept.ready_at is not None
    assert ("not audio" in kept.copy_error) == (path == "/page")
    assert ("too large" in kept.copy_error) == (path == "/rec.mp3")
    assert served.status_code == 302 and served["Location"] == f"{audio_host}{path}"


@pytest.mark.django_db
def test_a_server_error_is_tried_again_and_a_later_try_copies_it(keeping, audio_host, on_disk):
    AudioHost.flaky_left = 2
    recording = recorded_call(keeping, f"{audio_host}/flaky")

    tries = []
    for _ in range(recordings.COPY_TRIES):
        try:
            recordings.recording_copy_now(recording_pk=recording.pk)
            tries.append("copied")
            break
        except recordings.CopyFailed as error:
            tries.append(str(error))

    recording.refresh_from_db()
    assert tries[:2] == ["The recording's URL answered 503."] * 2 and tries[2] == "copied"
    assert recording.stored_name and recording.copy_attempts == 3


@pytest.fixture
def bucket(settings):
    """A real S3-compatible server (moto in server mode) with the recordings bucket."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    keys = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys)
    s3.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "access_key": "test",
                "secret_key": "test",
                "default_acl": None,
                "querystring_auth": True,
                "querystring_expire": 300,
                "file_overwrite": False,
                "signature_version": "s3v4",
            },
        },
    }
    yield s3
    server.stop()


@pytest.mark.django_db
def test_a_copy_goes_to_the_bucket_and_the_link_redirects_to_a_short_presigned_url(
    client, keeping, audio_host, bucket
):
    recording = recorded_call(keeping, f"{audio_host}/rec.mp3")

    copied = recordings.recording_copy_now(recording_pk=recording.pk)
    served = client.get(link_of(recording))
    fetched = requests.get(served["Location"], timeout=10)

    stored = bucket.get_object(Bucket=BUCKET, Key=copied.stored_name)
    assert stored["Body"].read() == AUDIO and stored["ContentLength"] == len(AUDIO)
    assert served.status_code == 302 and "X-Amz-Signature=" in served["Location"]
    assert "X-Amz-Expires=300" in served["Location"]
    assert fetched.status_code == 200 and fetched.content == AUDIO


@pytest.mark.django_db
def test_recordings_past_the_retention_are_deleted_with_our_copy_and_their_link_says_so(
    client, api, keeping, audio_host, on_disk
):
    keeping.recording_settings.retention_days = 7
    keeping.recording_settings.save()
    old = recordings.recording_copy_now(
        recording_pk=recorded_call(keeping, f"{audio_host}/rec.mp3").pk
    )
    Recording.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))

    deleted = recordings.recordings_retention_apply()
    served = client.get(link_of(old))

    with tenant_scope(keeping):
        call_id = Call.objects.get().call_id
    shown = api.get(f"/api/v1/calls/{call_id}/recording").json()
    assert deleted == 1
    assert served.status_code == 410
    assert not (on_disk / old.stored_name).exists()
    assert shown["url"] is None and shown["deleted_at"] and not shown["ready"]


@pytest.mark.django_db
def test_recordings_within_the_retention_or_without_one_stay(keeping, audio_host, on_disk):
    recording = recordings.recording_copy_now(
        recording_pk=recorded_call(keeping, f"{audio_host}/rec.mp3").pk
    )
    Recording.objects.filter(pk=recording.pk).update(
        created_at=timezone.now() - timedelta(days=400)
    )

    assert recordings.recordings_retention_apply() == 0
    assert (on_disk / recording.stored_name).exists()


@pytest.fixture
def worker_storage(monkeypatch, on_disk):
    """The worker started after this keeps copies where the web process reads them."""
    monkeypatch.setenv("RECORDINGS_DIR", str(on_disk))
    return on_disk


@pytest.mark.integration
def test_a_worker_copies_a_calls_recording_and_the_callback_link_serves_the_copy(
    worker_storage, keeping, audio_host, receiver, processes, api, live_server
):
    keeping.callback_settings.url = f"{receiver.url}/callbacks"
    keeping.callback_settings.save()
    processes.worker()
    end = {"status": "ANSWER", "duration": 30, "recording": True}
    ready = {"recording_url": f"{audio_host}/rec.mp3"}

    for kind, extra in (("call.end", end), ("recording.ready", ready)):
        body = {"id": f"e-{kind}", "type": kind, "call_id": "pbx-9", "from": "+447400123456"}
        answer = api.post("/api/v1/telephony/events", {**body, **extra}, format="json")
        assert answer.status_code == 202, answer.json()
    (callback,) = receiver.wait_for(1, timeout=30)
    link = live_server.url + urlsplit(callback.json()["recording_url"]).path
    served = requests.get(link, timeout=10)
    deadline = time.monotonic() + 30
    while served.status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
        served = requests.get(link, timeout=10)

    assert served.status_code == 200 and served.content == AUDIO
    assert [p.suffix for p in (worker_storage / str(keeping.pk)).iterdir()] == [".mp3"]


@pytest.mark.django_db
def test_a_copy_whose_file_went_missing_answers_404_not_an_error(
    client, keeping, audio_host, on_disk
):
    copied = recordings.recording_copy_now(
        recording_pk=recorded_call(keeping, f"{audio_host}/rec.mp3").pk
    )
    (on_disk / copied.stored_name).unlink()

    assert client.get(link_of(copied)).status_code == 404

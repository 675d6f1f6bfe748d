import pytest

from core.tasks import record_worker_heartbeat

pytestmark = pytest.mark.django_db


def test_it_reports_database_and_broker_healthy(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["database"] == "ok" and response.json()["broker"] == "ok"


def test_it_answers_503_when_the_broker_is_unreachable(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["broker"].startswith("error")
    assert response.json()["database"] == "ok"


def test_it_shows_the_age_of_the_last_worker_heartbeat(client):
    assert client.get("/healthz").json()["worker_heartbeat_age_seconds"] is None

    record_worker_heartbeat()

    assert 0 <= client.get("/healthz").json()["worker_heartbeat_age_seconds"] < 5

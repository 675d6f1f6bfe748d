"""/healthz: is the database reachable, is the broker reachable, when did a worker last run."""

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

from config.celery import app as celery_app

HEARTBEAT_CACHE_KEY = "celery:worker-heartbeat"


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as error:
        return f"error: {type(error).__name__}"


def _check_broker() -> str:
    try:
        with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as error:
        return f"error: {type(error).__name__}"


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "broker": _check_broker()}
    healthy = all(value == "ok" for value in checks.values())
    last_beat = cache.get(HEARTBEAT_CACHE_KEY)
    body = {
        "status": "ok" if healthy else "error",
        **checks,
        # Informational: beat fires the heartbeat task, a worker runs it.
        "worker_heartbeat_age_seconds": round(time.time() - last_beat, 1) if last_beat else None,
    }
    return JsonResponse(body, status=200 if healthy else 503)

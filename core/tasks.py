import time

from celery import shared_task
from django.core.cache import cache

from core.health import HEARTBEAT_CACHE_KEY


@shared_task(ignore_result=True)
def record_worker_heartbeat() -> None:
    """Record that beat fired and a worker ran a task (shown by /healthz)."""
    cache.set(HEARTBEAT_CACHE_KEY, time.time(), timeout=None)

"""The Celery app: two queues, late acks. The beat schedule is CELERY_BEAT_SCHEDULE in settings."""

import gc
import os

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init
from django.db import close_old_connections
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("callbridge")
app.config_from_object("django.conf:settings", namespace="CELERY")

app.conf.update(
    # realtime: callbacks, call logging, apps (seconds matter). bulk: CRM syncs (minutes are fine).
    # Each queue has its own exchange and key, so a message lands on exactly one of them.
    task_queues=[
        Queue("realtime", Exchange("realtime", type="direct"), routing_key="realtime"),
        Queue("bulk", Exchange("bulk", type="direct"), routing_key="bulk"),
    ],
    task_default_queue="realtime",
    task_default_exchange="realtime",
    task_default_routing_key="realtime",
    # A killed worker hands its task back instead of losing it; tasks must be idempotent.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_soft_time_limit=300,
    task_time_limit=360,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    broker_connection_retry_on_startup=True,
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    # Celery's Django fixup closes the database connection around every task unless this is
    # set: a new PostgreSQL connection (a backend process) for each task. Keep it for this many
    # tasks; close_old_database_connections below applies CONN_MAX_AGE and health checks.
    CELERY_DB_REUSE_MAX=1000,
)


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(sender: Task, **_: object) -> None:
    """Drop a broken or too old connection around each task, as Django does around requests."""
    if not sender.request.is_eager:  # an eager task runs on its caller's connection
        close_old_connections()


# Allocations between young-generation collections. Python's 700 makes a sync page's decoded
# records (alive while the page is written) scanned and promoted again and again, and full
# collections walk every object imported at start-up: 8 % of a sync's CPU (bench/README.md).
GC_YOUNG_THRESHOLD = 50_000


@worker_init.connect
@worker_process_init.connect
def tune_garbage_collector(**_: object) -> None:
    """Leave the start-up objects out of collections and collect the young less often."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


app.autodiscover_tasks()

"""CallBridge settings: read from the environment only (django-environ).

With no environment set, everything runs on one machine: SQLite, a filesystem Celery broker and a
file cache under var/. DATABASE_URL=postgres://..., CELERY_BROKER_URL=redis://... and
REDIS_URL=redis://... switch to the production setup with no code change.
"""

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
# The embedded default is a developer's machine; anything else must set its own secrets.
EMBEDDED = "DATABASE_URL" not in env
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-for-any-real-deployment-0123456789"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET if (DEBUG or EMBEDDED) else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DATABASE_URL is set and DEBUG is off.")

# Fernet key (urlsafe base64, 32 bytes) for CRM credentials, OAuth tokens and webhook secrets.
# Comma-separated: the first encrypts, all decrypt (rotation).
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEY",
    default=["ZGV2LW9ubHktZmllbGQta2V5LW5vdC1mb3ItcHJvZCE="] if (DEBUG or EMBEDDED) else [],
)
if not FIELD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEY must be set when DATABASE_URL is set and DEBUG is off "
        "(generate one: python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())')."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Lets tenant-supplied URLs reach loopback/private addresses: tests and local demos only.
ALLOW_PRIVATE_URLS = env.bool("ALLOW_PRIVATE_URLS", default=False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "core",
    "tenants",
    "contacts",
    "routing",
    "calls",
    "connectors",
    "automations",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Lookup and routing decide end here (core/hot_path.py): keep security headers above.
    "core.hot_path.HotPathMiddleware",
    "core.http.OutboundBudgetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.scoping.TenantScopeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.access.dashboard_context",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'callbridge.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers run beside the writer, IMMEDIATE
    # takes the write lock up front instead of failing with "database is locked" mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
    options = DATABASES["default"].setdefault("OPTIONS", {})
    # A database host that stops answering must not hold a request (or a routing thread) for
    # the operating system's TCP timeout.
    options["connect_timeout"] = env.int("DATABASE_CONNECT_TIMEOUT", default=3)
    # Server-side parameters let psycopg prepare a query on its 5th run on a connection, so the
    # hot lookups are planned once per connection instead of once per request. PgBouncer in
    # transaction pooling mode cannot keep prepared statements: set it off behind one.
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        options["server_side_binding"] = True
        options["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Follow-up emails (the email app): printed to the console unless EMAIL_URL names a server,
# e.g. smtp+tls://user:password@smtp.example.com:587.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="CallBridge <noreply@localhost>")

REDIS_URL = env.str("REDIS_URL", default="")
# Each web process hears key, tenant and routing-rule changes on a Redis pub/sub channel and checks
# them without a round trip per request (core/shared_redis.py); off: a round trip per request.
GENERATION_LISTENER = env.bool("GENERATION_LISTENER", default=True)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="callbridge"),
        }
    }
else:
    # Shared by web, worker and beat on one machine (locmem would be per process).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# The tenant dashboard (/app/): members sign in there; attempts per username and address.
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGIN_ATTEMPTS_PER_WINDOW = env.int("LOGIN_ATTEMPTS_PER_WINDOW", default=10)
LOGIN_ATTEMPT_WINDOW_SECONDS = env.int("LOGIN_ATTEMPT_WINDOW_SECONDS", default=900)
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Call recordings a tenant asks us to keep (calls/recordings.py): on the filesystem under var/ by
# default, in an S3-compatible bucket (AWS S3, MinIO, R2) when RECORDINGS_BUCKET is set. Our link
# streams a file from disk and redirects to a presigned URL (RECORDINGS_URL_SECONDS) for a bucket.
RECORDINGS_BUCKET = env.str("RECORDINGS_BUCKET", default="")
RECORDINGS_URL_SECONDS = env.int("RECORDINGS_URL_SECONDS", default=300)
RECORDINGS_MAX_BYTES = env.int("RECORDINGS_MAX_BYTES", default=200 * 1024 * 1024)
_recordings_storage: dict[str, Any] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": env.str("RECORDINGS_DIR", default=str(VAR_DIR / "recordings"))},
}
if RECORDINGS_BUCKET:
    _recordings_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": RECORDINGS_BUCKET,
            "endpoint_url": env.str("RECORDINGS_ENDPOINT_URL", default="") or None,
            "region_name": env.str("RECORDINGS_REGION", default="") or None,
            "access_key": env.str("RECORDINGS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("RECORDINGS_SECRET_ACCESS_KEY", default="") or None,
            "default_acl": None,  # private: reached only through presigned URLs
            "querystring_auth": True,
            "querystring_expire": RECORDINGS_URL_SECONDS,
            "file_overwrite": False,
            "signature_version": "s3v4",
        },
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "recordings": _recordings_storage,
}

# Behind a TLS-terminating proxy in production; the embedded default is plain HTTP on localhost.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not (DEBUG or EMBEDDED))
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not (DEBUG or EMBEDDED))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if (DEBUG or EMBEDDED) else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[PUBLIC_BASE_URL])
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.ServerKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.authentication.HasServerKey"],
    "DEFAULT_THROTTLE_CLASSES": ["tenants.authentication.ApiKeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["core.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
# Seconds a web request may spend in all on requests to tenants' servers (call test, OAuth).
WEB_REQUEST_OUTBOUND_SECONDS = env.float("WEB_REQUEST_OUTBOUND_SECONDS", default=10.0)
# Requests per minute per API key, unless the key sets its own.
API_KEY_RATE_LIMIT_PER_MINUTE = env.int("API_KEY_RATE_LIMIT_PER_MINUTE", default=600)

SPECTACULAR_SETTINGS = {
    "TITLE": "CallBridge API",
    "DESCRIPTION": "Phonebook, caller lookup, routing, click-to-call and call results. "
    "Authenticate with a server key: `Authorization: Bearer <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.errors.document_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "SyncKindEnum": "connectors.models.SyncRun.Kind",
        "AppEventEnum": "automations.models.App.Event",
        "AppRunStateEnum": "automations.models.AppRun.State",
        "OutboxStateEnum": "calls.models.Delivery.State",
    },
}

# Celery. The embedded default is a filesystem broker under var/ (no server needed).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = str(VAR_DIR / "broker")
    Path(_queue_dir).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": _queue_dir,
        "data_folder_out": _queue_dir,
        "processed_folder": str(VAR_DIR / "broker-processed"),
        "control_folder": str(VAR_DIR / "broker-control"),  # kombu's default: ./control
        "store_processed": False,
    }
else:
    # A task not acknowledged within this window is redelivered (acks_late): longer than the
    # longest task time limit, so a slow task is never run twice while still running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Seconds between worker heartbeats fired by beat (see core.tasks.record_worker_heartbeat).
CELERY_HEARTBEAT_SECONDS = env.float("CELERY_HEARTBEAT_SECONDS", default=30.0)
# The one beat schedule. DatabaseScheduler copies it into django-celery-beat's tables at start-up,
# where staff can pause or retune entries from the admin.
CELERY_BEAT_SCHEDULE = {
    "record-worker-heartbeat": {
        "task": "core.tasks.record_worker_heartbeat",
        "schedule": CELERY_HEARTBEAT_SECONDS,
    },
    "sweep-deliveries": {
        "task": "calls.tasks.deliveries_sweep",
        "schedule": env.float("DELIVERY_SWEEP_SECONDS", default=15.0),
    },
    "sweep-telephony-events": {
        "task": "calls.tasks.telephony_events_sweep",
        "schedule": env.float("TELEPHONY_EVENT_SWEEP_SECONDS", default=15.0),
    },
    "dispatch-syncs": {
        "task": "connectors.tasks.syncs_dispatch",
        "schedule": env.float("SYNC_DISPATCH_SECONDS", default=60.0),
    },
    "sweep-crm-logs": {
        "task": "automations.tasks.crm_logs_sweep",
        "schedule": env.float("CRM_LOG_SWEEP_SECONDS", default=60.0),
    },
    "sweep-app-runs": {
        "task": "automations.tasks.app_runs_sweep",
        "schedule": env.float("APP_RUN_SWEEP_SECONDS", default=60.0),
    },
    "callback-alerts": {
        "task": "calls.tasks.callback_alerts_send",
        "schedule": env.float("ALERT_CHECK_SECONDS", default=300.0),
    },
    "sweep-recordings": {
        "task": "calls.tasks.recordings_sweep",
        "schedule": env.float("RECORDINGS_SWEEP_SECONDS", default=300.0),
    },
    "after-call-alerts": {
        "task": "automations.tasks.after_call_alerts_send",
        "schedule": env.float("ALERT_CHECK_SECONDS", default=300.0),
    },
}
# CRM sync: minutes between incremental runs and hours between full diffs per connection
# (a connection's settings may override the minutes), and requests per 10 s per connection
# (HubSpot's smallest burst limit is 100; syncs and call logging share it).
SYNC_INCREMENTAL_MINUTES = env.int("SYNC_INCREMENTAL_MINUTES", default=5)
SYNC_FULL_DIFF_HOURS = env.int("SYNC_FULL_DIFF_HOURS", default=24)
CONNECTOR_REQUESTS_PER_10_SECONDS = env.int("CONNECTOR_REQUESTS_PER_10_SECONDS", default=90)
# Seconds one sync task works before it saves its cursor and queues the rest (under the time limit).
SYNC_RUN_SECONDS = env.float("SYNC_RUN_SECONDS", default=240.0)
# A pending callback not attempted this many seconds after it was due (or this long past an
# attempt's 10 s deadline) was lost with its worker or broker message: the sweeper re-sends it.
DELIVERY_STALE_SECONDS = env.float("DELIVERY_STALE_SECONDS", default=30.0)
# A telephony event still unprocessed this many seconds after it arrived lost its task: re-send.
TELEPHONY_EVENT_STALE_SECONDS = env.float("TELEPHONY_EVENT_STALE_SECONDS", default=30.0)
# Drains applying one tenant's events side by side at most (calls/events.py): a busy tenant
# takes this many realtime worker processes, and leaves the rest to the others.
TELEPHONY_EVENT_DRAINS_PER_TENANT = env.int("TELEPHONY_EVENT_DRAINS_PER_TENANT", default=2)
# How long a drain waits for a new event (the accept signals it) before it looks again; a few
# waits in vain and it stops (calls/events.py; 0: it stops at once).
TELEPHONY_EVENT_DRAIN_WAIT_SECONDS = env.float("TELEPHONY_EVENT_DRAIN_WAIT_SECONDS", default=0.02)
# While events keep arriving fewer than a batch at a time, a drain claims at most once in this
# long, so that each batch carries several (calls/events.py): a callback waits up to this much
# more at a steady rate, and at 50 calls/s costs a third less CPU; one after a quiet spell waits
# nothing.
TELEPHONY_EVENT_DRAIN_GATHER_SECONDS = env.float(
    "TELEPHONY_EVENT_DRAIN_GATHER_SECONDS", default=0.05
)
# How many reverse proxies in front of the web processes append to X-Forwarded-For (0: none;
# then REMOTE_ADDR is the client). Used for server-key IP allowlists.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
# Live feed (server-sent events): a stream ends after this many seconds, so it holds a web thread
# only so long, and the browser reconnects; heartbeats keep proxies and dead-client detection going.
LIVE_STREAM_SECONDS = env.float("LIVE_STREAM_SECONDS", default=25.0)
LIVE_HEARTBEAT_SECONDS = env.float("LIVE_HEARTBEAT_SECONDS", default=5.0)
LIVE_POLL_SECONDS = env.float("LIVE_POLL_SECONDS", default=1.0)  # without Redis only
# Live streams one web process holds open at once; each holds one of its threads
# (Procfile: WEB_THREADS, 2), so the default leaves one for the API. A stream beyond them sends
# its snapshot and what was missed, ends, and the browser comes back after
# LIVE_BUSY_RETRY_SECONDS (0: every page polls). A `live` process with many threads serves every
# page live.
LIVE_STREAMS_PER_PROCESS = env.int(
    "LIVE_STREAMS_PER_PROCESS", default=max(env.int("WEB_THREADS", default=2) - 1, 0)
)
LIVE_BUSY_RETRY_SECONDS = env.float("LIVE_BUSY_RETRY_SECONDS", default=3.0)
# The calls export stops at calls changed this long ago: later ones may still be committing.
CALL_EXPORT_SETTLE_SECONDS = env.float("CALL_EXPORT_SETTLE_SECONDS", default=30.0)

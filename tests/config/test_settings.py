"""Configuration comes only from the environment: embedded by default, production by URL."""

import json
import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/callbridge",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
    "SECRET_KEY": "k3J9x!vQ2#mZ8pL5@wR7tY1uI4oP6aS0dF3gH8jK2lZ5xC7vB9nM1qW4eR6tY8uI",
    "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "callbridge.example.com",
    "PUBLIC_BASE_URL": "https://callbridge.example.com",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(ROOT)), **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def settings_seen(env: dict[str, str]) -> dict:
    code = (
        "from django.conf import settings as s; import json; print(json.dumps({"
        "'db': s.DATABASES['default']['ENGINE'], 'broker': s.CELERY_BROKER_URL,"
        "'cache': s.CACHES['default']['BACKEND'], 'ssl': s.SECURE_SSL_REDIRECT,"
        "'private': s.ALLOW_PRIVATE_URLS}))"
    )
    result = manage("shell", "--verbosity", "0", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_with_no_environment_it_runs_embedded():
    seen = settings_seen({})

    assert seen["db"] == "django.db.backends.sqlite3"
    assert seen["broker"] == "filesystem://"
    assert seen["cache"].endswith("FileBasedCache")
    assert seen["private"] is False


def test_the_hot_paths_raw_queries_run_on_the_embedded_database():
    code = "from core import hot_path; print(hot_path.fetch_all('SELECT %s + 1', [41]))"

    result = manage("shell", "--verbosity", "0", "-c", code, env={})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[(42,)]"


def test_urls_switch_it_to_production_with_no_code_change():
    seen = settings_seen(PRODUCTION)

    assert seen["db"] == "django.db.backends.postgresql"
    assert seen["broker"].startswith("redis://")
    assert seen["cache"].endswith("RedisCache")
    assert seen["ssl"] is True


def test_the_production_settings_pass_the_deploy_check():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_refuses_to_start_in_production_without_its_secrets():
    without_secret = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    without_field_key = {k: v for k, v in PRODUCTION.items() if k != "FIELD_ENCRYPTION_KEY"}

    assert "SECRET_KEY must be set" in manage("check", env=without_secret).stderr
    assert "FIELD_ENCRYPTION_KEY must be set" in manage("check", env=without_field_key).stderr

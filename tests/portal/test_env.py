import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_secret


def test_env_bool_accepts_the_usual_spellings(monkeypatch):
    monkeypatch.setenv("FLAG", "yes")
    assert env_bool("FLAG") is True
    monkeypatch.setenv("FLAG", "0")
    assert env_bool("FLAG", True) is False


def test_a_badly_formed_value_stops_start_up(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="not a boolean"):
        env_bool("FLAG")
    monkeypatch.setenv("NUMBER", "12x")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("NUMBER", 1)
    monkeypatch.setenv("NUMBER", "-1")
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env_int("NUMBER", 1, minimum=0)


def test_secrets_can_come_from_a_file(monkeypatch, tmp_path):
    secret = tmp_path / "key"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret))
    assert env_secret("SECRET_KEY") == "s3cret"


def test_importing_the_settings_creates_no_folder(tmp_path):
    """A tool that only reads the settings (celery's loader, an IDE) writes nothing; the portal
    creates its folders when it starts (portal/apps.py)."""
    var = tmp_path / "var"
    env = {**os.environ, "PORTAL_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "portal.settings"}
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", "import portal.settings"], env=env, cwd=root, check=True)
    assert not var.exists()
    subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env, cwd=root, check=True)
    assert (var / "staticfiles").is_dir()


def _django_says(code: str, **env: str) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + code],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
        cwd=root,
        capture_output=True,
        text=True,
    )


@pytest.mark.django_db
def test_db_pool_gives_each_process_a_bounded_pool_of_postgresql_connections():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the pool is psycopg 3's, for PostgreSQL; this run uses SQLite (CI runs it on PostgreSQL)")
    code = (
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n    cursor.execute('SELECT 1')\n"
        "print(type(connection.pool).__name__, connection.pool.max_size)"
    )
    from tests.integration.conftest import database_url

    pooled = _django_says(code, DATABASE_URL=database_url(connection.settings_dict), DB_POOL="1", DB_POOL_MAX_SIZE="5")
    assert pooled.stdout.split()[-2:] == ["ConnectionPool", "5"], pooled.stderr
    refused = _django_says("", DB_POOL="1", DB_CONN_MAX_AGE="60")
    assert refused.returncode != 0 and "leave DB_CONN_MAX_AGE at 0" in refused.stderr


def test_the_channel_layer_is_redis_pub_sub_unless_the_queues_layer_is_asked_for():
    code = "from django.conf import settings\nprint(settings.CHANNEL_LAYERS['default']['BACKEND'])"
    assert _django_says(code).stdout.split()[-1] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert _django_says(code, CHANNEL_LAYER="queues").stdout.split()[-1] == "channels_redis.core.RedisChannelLayer"
    refused = _django_says("", CHANNEL_LAYER="kafka")
    assert refused.returncode != 0 and "use pubsub or queues" in refused.stderr

"""docker-compose.yml, read (Docker does not run here): every portal service is a runportal role the
command accepts, the proxy's files exist and carry WebSockets, and the pool fits in PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import yaml

from stack.management.commands.runportal import Command

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_each_portal_service_runs_one_role_that_runportal_accepts():
    parser = Command().create_parser("manage.py", "runportal")
    roles = {}
    for name in ("web", "worker", "beat"):
        command = SERVICES[name]["command"]
        assert command[:3] == ["python", "manage.py", "runportal"], name
        roles[name] = vars(parser.parse_args(command[3:]))["role"]
    assert roles == {"web": "web", "worker": "worker", "beat": "beat"}


def test_web_nodes_can_be_scaled_behind_the_proxy():
    assert "ports" not in SERVICES["web"]  # several web containers cannot share a host port
    assert SERVICES["web"]["expose"] == ["8000"]
    assert SERVICES["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"
    mounts = [volume.split(":")[0] for volume in SERVICES["proxy"]["volumes"]]
    assert (ROOT / mounts[0]).is_file()
    conf = (ROOT / mounts[0]).read_text()
    assert "server web:8000" in conf and "proxy_set_header Upgrade $http_upgrade" in conf
    assert "location /ws/" in conf and "X-Forwarded-For $proxy_add_x_forwarded_for" in conf


def test_every_pool_fits_in_postgresqls_connections_at_the_documented_scale():
    env = COMPOSE["x-portal"]["environment"]
    assert env["DB_POOL"] == "1"
    max_connections = int(SERVICES["postgres"]["command"][-1].split("=")[1])
    # docker compose up --scale web=3 --scale worker=4, workers of concurrency 2, one beat, one migrate.
    processes = 3 + 4 * (1 + 2) + 1 + 1
    assert processes * int(env["DB_POOL_MAX_SIZE"]) < max_connections


def test_a_web_process_has_connections_for_every_http_thread_and_then_some():
    from django.conf import settings

    assert int(COMPOSE["x-portal"]["environment"]["DB_POOL_MAX_SIZE"]) > settings.WEB_HTTP_THREADS

import os
import subprocess
from pathlib import Path

import yaml

from tests.services import require_binary

ROOT = Path(__file__).resolve().parent.parent


def test_docker_compose_file_is_valid_and_complete():
    tool = require_binary("docker-compose", "Debian's docker-compose, to validate docker-compose.yml")
    env = dict(os.environ, SECRET_KEY="x" * 40, FIELD_ENCRYPTION_KEY="k", FLOWER_BASIC_AUTH="ops:pw")
    result = subprocess.run(
        [tool, "-f", str(ROOT / "docker-compose.yml"), "config"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {
        "postgres",
        "redis",
        "migrate",
        "web",
        "worker-ai",
        "worker-query",
        "worker-programs",
        "beat",
        "flower",
    } <= set(services)
    assert "--pool" in services["worker-ai"]["command"]
    assert "threads" in services["worker-ai"]["command"]
    for name in ("postgres", "redis", "web", "worker-ai", "worker-query", "worker-programs"):
        assert "healthcheck" in services[name], name
    for name in ("web", "worker-ai", "worker-query", "worker-programs", "beat", "flower"):
        assert services[name]["restart"] == "unless-stopped"
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://")
    assert "pgdata" in config["volumes"]


def test_docker_compose_refuses_to_start_without_secrets():
    tool = require_binary("docker-compose", "Debian's docker-compose, to validate docker-compose.yml")
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEY"}}
    env["FLOWER_BASIC_AUTH"] = "ops:pw"
    result = subprocess.run(
        [tool, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def compose_config(**env: str) -> dict:
    tool = require_binary("docker-compose", "Debian's docker-compose, to validate docker-compose.yml")
    full_env = dict(os.environ, SECRET_KEY="x" * 40, FIELD_ENCRYPTION_KEY="k", FLOWER_BASIC_AUTH="ops:pw", **env)
    result = subprocess.run(
        [tool, "-f", str(ROOT / "docker-compose.yml"), "config"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_worker_concurrency_per_queue_comes_from_the_environment():
    services = compose_config(
        AI_WORKER_CONCURRENCY="31", QUERY_WORKER_CONCURRENCY="9", PROGRAM_WORKER_CONCURRENCY="3", WEB_CONCURRENCY="5"
    )["services"]
    for name, queues, concurrency in (
        ("worker-ai", "ai", "31"),
        ("worker-query", "query,default", "9"),
        ("worker-programs", "programs", "3"),
    ):
        command = services[name]["command"]
        assert command[command.index("-Q") + 1] == queues, name
        assert command[command.index("--concurrency") + 1] == concurrency, name
    web = services["web"]["command"]
    assert web[web.index("--workers") + 1] == "5"


def test_migrate_runs_once_before_the_app_starts():
    services = compose_config()["services"]
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["command"][-3:] == ["manage.py", "migrate", "--noinput"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker-ai", "worker-query", "worker-programs", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_postgres_keeps_its_data_in_a_volume_and_the_app_logs_json():
    config = compose_config(METRICS_TOKEN="scrape-token")
    services = config["services"]
    mounts = [m if isinstance(m, str) else f"{m['source']}:{m['target']}" for m in services["postgres"]["volumes"]]
    assert any(m.startswith("pgdata:/var/lib/postgresql/data") for m in mounts)
    assert "pgdata" in config["volumes"]
    for name in ("web", "worker-ai", "worker-query", "worker-programs", "beat", "flower"):
        env = services[name]["environment"]
        assert env["LOG_FORMAT"] == "json", name
        assert env["CELERY_BROKER_URL"].startswith("redis://"), name
    assert services["web"]["environment"]["METRICS_TOKEN"] == "scrape-token"
    assert "flower" in services["flower"]["command"]
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"] == "ops:pw"

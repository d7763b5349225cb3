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

#!/usr/bin/env python
"""`make demo`: migrate, seed, serve the API with one worker on embedded defaults; Ctrl-C stops both.

Embedded defaults: SQLite under var/, the filesystem broker, the `builtin` AI engine, so nothing
else has to run. DATABASE_URL, CELERY_BROKER_URL and CACHE_URL from the caller's environment are
ignored on purpose (the demo must not touch a production database).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def demo_env(var_dir: Path) -> dict[str, str]:
    var_dir.mkdir(parents=True, exist_ok=True)
    secret_file = var_dir / "secret_key"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(50))
        secret_file.chmod(0o600)
    key_file = var_dir / "field_encryption.key"
    if not key_file.exists():
        key_file.write_text(Fernet.generate_key().decode())
        key_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "VAR_DIR": str(var_dir),
            "DEBUG": "0",
            "SECRET_KEY": secret_file.read_text().strip(),
            "FIELD_ENCRYPTION_KEY": key_file.read_text().strip(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_FORMAT": env.get("LOG_FORMAT", "text"),
            "AI_DEFAULT_MODEL": env.get("AI_DEFAULT_MODEL", "builtin"),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    return result.stdout


def wait_healthy(url: str, procs: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise SystemExit(f"demo: {proc.args[0]} exited with {proc.returncode} during start-up")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own local URL
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"demo: {url} did not answer within {timeout:.0f} s")


def stop(procs: list[subprocess.Popen]) -> None:
    # SIGTERM to each main process only: gunicorn and Celery then shut their children down warmly.
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + 20
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
    parser.add_argument("--var-dir", default=os.environ.get("DEMO_VAR_DIR", str(ROOT / "var")))
    parser.add_argument("--setup-only", action="store_true", help="migrate and seed, then exit")
    args = parser.parse_args()

    env = demo_env(Path(args.var_dir))
    print("demo: migrating the SQLite database under", args.var_dir, flush=True)
    manage(env, "migrate", "--noinput", "-v", "0")
    print("demo: loading the demo workspace and data (idempotent)", flush=True)
    demo = json.loads(manage(env, "seed_demo", "--json").strip().splitlines()[-1])
    if args.setup_only:
        print(json.dumps(demo))
        return 0

    base = f"http://{args.host}:{args.port}"
    web = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"{args.host}:{args.port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--timeout",
            "120",
            "--access-logfile",
            "-",
        ],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    worker = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--beat",
            "-Q",
            "ai,query,programs,default",
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--schedule",
            str(Path(args.var_dir) / "celerybeat-schedule"),
        ],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    procs = [web, worker]
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        wait_healthy(f"{base}/healthz", procs)
        key = demo["api_key"]
        print(
            "\n"
            "================ Prompt Studio demo is running ================\n"
            f"  API:        {base}/api/v1/   (Swagger UI: {base}/docs)\n"
            f"  Admin:      {base}/admin/    user {demo['operator_username']} / {demo['operator_password']}\n"
            f"  Demo user:  {demo['username']} / {demo['password']}  (workspace {demo['workspace_slug']!r},"
            f" id {demo['workspace_id']})\n"
            f"  API key:    {key}\n"
            "\n  Ask the demo database a question (paste as is):\n\n"
            f"  curl -s -X POST {base}/api/v1/prompts/execute -H 'Authorization: Bearer {key}'"
            f" -H 'Content-Type: application/json' -d '{{\"prompt_text\": \"Show me total sales by region for the last"
            f' quarter", "selected_data_source_ids": [{demo["data_source_id"]}], "save_prompt": true}}\'\n'
            "\n  Then poll the execution it started (replace 1 with the execution_id it printed):\n\n"
            f"  curl -s -H 'Authorization: Bearer {key}' {base}/api/v1/prompt-executions/1\n"
            "\n  Ctrl-C stops the server and the worker.\n"
            "===============================================================\n",
            flush=True,
        )
        while not stopping:
            for proc in procs:
                if proc.poll() is not None:
                    print(f"demo: {proc.args[0]} exited with {proc.returncode}; stopping", flush=True)
                    stopping = True
            time.sleep(0.3)
    finally:
        print("demo: stopping the server and the worker…", flush=True)
        stop(procs)
    print("demo: stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

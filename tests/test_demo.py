"""`make demo`'s path on embedded defaults: set-up twice, then serve, answer the printed curl, stop on Ctrl-C."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = [sys.executable, str(ROOT / "scripts" / "demo.py")]


def demo_env() -> dict[str, str]:
    # The demo ignores the CI's service URLs on purpose; strip the test defaults too.
    return {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "FIELD_ENCRYPTION_KEY", "VAR_DIR"}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_set_up_is_repeatable(tmp_path):
    runs = [
        subprocess.run(
            [*DEMO, "--setup-only", "--var-dir", str(tmp_path)],
            env=demo_env(),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    assert first == second
    assert (tmp_path / "db.sqlite3").exists()
    assert (tmp_path / "field_encryption.key").exists()


def test_demo_serves_the_printed_curl_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [*DEMO, "--port", str(port), "--var-dir", str(tmp_path)],
        env=demo_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        curl = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            lines.append(line)
            if line.strip().startswith("curl "):
                curl = line.strip()
                break
        assert curl, "demo printed no curl:\n" + "".join(lines)
        result = subprocess.run(shlex.split(curl), capture_output=True, text=True, timeout=30)
        body = json.loads(result.stdout)
        assert body["success"] is True, body
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert "demo: stopped." in out
    assert not port_open(port)

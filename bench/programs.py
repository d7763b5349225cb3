"""Program round trips through the sandbox, against the cost of starting a bare Python process.

- floor: `python -c pass` spawned and waited for (what any fresh-process-per-run design pays at least);
- `print(1)`: `run_program` with a host that is never called: process start, RestrictedPython compile, run;
- one `run_sql`: `run_program` with the real ProgramHost on the governed path (validate, rewrite, execute
  read-only, mask) against a discovered SQLite demo source (2,000 orders), in this process.

Target: p50 of each round trip <= 3x the floor's p50.
Run: `make bench` or `.venv/bin/python -m bench.programs`. Environment: BENCH_RUNS (default 100).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_RATIO = 3.0
SQL_PROGRAM = "rows = executor.run_sql('SELECT COUNT(*) AS n FROM orders')\nprint(rows[0]['n'])"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _measure(runs: int, actions: dict[str, Callable[[], Any]]) -> dict[str, list[float]]:
    """Time each action `runs` times, interleaved, so a busy machine slows them all alike."""
    timings: dict[str, list[float]] = {name: [] for name in actions}
    for action in actions.values():
        action()  # warm: imports, caches, the page cache for the interpreter's files
    for _ in range(runs):
        for name, action in actions.items():
            start = time.perf_counter()
            action()
            timings[name].append((time.perf_counter() - start) * 1000)
    return timings


def _report(name: str, timings: list[float], floor_p50: float | None = None) -> float:
    p50 = statistics.median(timings)
    line = f"{name:<44} p50 {p50:7.1f} ms   p99 {_percentile(timings, 0.99):7.1f} ms"
    if floor_p50:
        ratio = p50 / floor_p50
        verdict = "OK" if ratio <= TARGET_RATIO else f"OVER the {TARGET_RATIO:g}x target"
        line += f"   {ratio:4.2f}x floor  {verdict}"
    print(line, flush=True)
    return p50


def _setup_django(var_dir: Path) -> None:
    """A throwaway metadata database: a temporary SQLite file, migrated."""
    from cryptography.fernet import Fernet

    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["VAR_DIR"] = str(var_dir)
    os.environ["DATABASE_URL"] = f"sqlite:///{var_dir / 'bench.sqlite3'}"
    os.environ["DATA_SOURCE_FILE_ROOTS"] = str(var_dir)
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ.setdefault("FIELD_ENCRYPTION_KEY", Fernet.generate_key().decode())
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _governed_host(var_dir: Path) -> Any:
    from django.contrib.auth.models import User

    from accounts.models import Membership, Organization, Workspace
    from connectors.demo_data import generate_sales_db
    from connectors.discovery import discovery_run
    from connectors.models import DataSource
    from programs.host import LlmChoice, ProgramHost

    org = Organization.objects.create(name="Bench", slug="bench")
    workspace = Workspace.objects.create(organization=org, name="Bench", slug="bench")
    user = User.objects.create_user("bench-analyst", "analyst@example.com", "bench-pass")
    Membership.objects.create(user=user, workspace=workspace, role="analyst")
    path = var_dir / "sales.db"
    generate_sales_db(path, orders=2000, seed=7, today=date(2025, 6, 30))
    source = DataSource.objects.create(
        workspace=workspace, name="Sales", alias="sales", connector_type="sqlite", path=str(path)
    )
    source = discovery_run(source_id=source.pk)
    if source.discovery_status != "succeeded":
        raise SystemExit(f"discovery failed: {source.discovery_error}")
    membership = Membership.objects.select_related("workspace", "user").get(user=user)
    return ProgramHost(membership=membership, llm=LlmChoice(provider="hasura"))


class _NoHost:
    def run_sql(self, sql: str) -> list[dict[str, Any]]:
        raise AssertionError("not called")

    def primitive(self, name: str, kwargs: dict[str, Any]) -> tuple[object, dict[str, Any]]:
        raise AssertionError("not called")


def _run(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ps-bench-programs-") as scratch:
        var_dir = Path(scratch)
        _setup_django(var_dir)
        from programs.sandbox import run_program

        host = _governed_host(var_dir)

        def trivial() -> None:
            outcome = run_program("print(1)", artifacts=[], host=_NoHost())
            if outcome.error is not None or outcome.output != "1\n":
                raise SystemExit(f"print(1) went wrong: {outcome}")

        def one_query() -> None:
            outcome = run_program(SQL_PROGRAM, artifacts=[], host=host)
            if outcome.error is not None or outcome.output != "2000\n":
                raise SystemExit(f"the run_sql program went wrong: {outcome}")

        print(f"{runs} runs each, interleaved; python {sys.version.split()[0]} on {os.cpu_count()} CPUs", flush=True)
        timings = _measure(
            runs,
            {
                "floor": lambda: subprocess.run([sys.executable, "-c", "pass"], check=True),
                "isolated": lambda: subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True),
                "trivial": trivial,
                "query": one_query,
                "host": lambda: host.run_sql("SELECT COUNT(*) AS n FROM orders"),
            },
        )
        floor = _report("floor: spawn `python -c pass`", timings["floor"])
        _report("  (for reference: `python -I -S -c pass`)", timings["isolated"])
        _report("run_program: print(1)", timings["trivial"], floor)
        _report("run_program: one run_sql (governed, SQLite)", timings["query"], floor)
        _report("  (the run_sql host call alone, in process)", timings["host"])


def main(runs: int | None = None) -> None:
    runs = runs or int(os.environ.get("BENCH_RUNS", "100"))
    django_conf = sys.modules.get("django.conf")
    if django_conf is not None and django_conf.settings.configured:
        # Another bench already configured Django in this process (its scratch database is gone): start clean.
        subprocess.run([sys.executable, "-m", "bench.programs", str(runs)], cwd=ROOT, check=True)
        return
    _run(runs)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)

"""The process-level layer, probed with plain (unrestricted) Python started exactly as the sandbox starts its
child: what holds even if RestrictedPython's layer were bypassed."""

import os
import socket
import sys
from pathlib import Path

import pytest

from programs.sandbox.runner import PROJECT_ROOT, Limits, start_child

IS_ROOT = os.geteuid() == 0


def probe(code: str, tmp_path: Path, limits: Limits | None = None) -> tuple[int, str, str]:
    proc = start_child(limits=limits or Limits(), workdir=str(tmp_path), argv=[sys.executable, "-I", "-c", code])
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out.decode(), err.decode()


def test_child_environment_is_scrubbed(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://secret@db/prod")

    _, out, _ = probe("import os; print(sorted(os.environ))", tmp_path)

    assert out.strip() == "['HOME', 'LANG', 'LC_ALL', 'PATH']"


def test_child_starts_in_the_empty_work_directory(tmp_path):
    _, out, _ = probe("import os; print(os.getcwd()); print(os.listdir('.'))", tmp_path)

    assert out.split("\n")[:2] == [str(tmp_path), "[]"]


def test_child_resource_limits_are_set(tmp_path):
    code = (
        "import resource as r\n"
        "for name in ('RLIMIT_CPU', 'RLIMIT_AS', 'RLIMIT_FSIZE', 'RLIMIT_CORE', 'RLIMIT_NOFILE', 'RLIMIT_NPROC'):\n"
        "    print(name, r.getrlimit(getattr(r, name))[0])\n"
    )
    _, out, _ = probe(code, tmp_path, Limits(cpu_s=3, memory_bytes=300 * 1024**2))

    limits = dict(line.split() for line in out.strip().splitlines())
    assert limits == {
        "RLIMIT_CPU": "3",
        "RLIMIT_AS": str(300 * 1024**2),
        "RLIMIT_FSIZE": "0",
        "RLIMIT_CORE": "0",
        "RLIMIT_NOFILE": "32",
        "RLIMIT_NPROC": "1",
    }


def test_memory_limit_has_a_floor_the_child_can_start_in(tmp_path):
    _, out, _ = probe("import resource as r; print(r.getrlimit(r.RLIMIT_AS)[0])", tmp_path, Limits(memory_bytes=1))

    assert int(out) == 64 * 1024**2


def test_child_cannot_write_file_contents(tmp_path):
    code = (
        "f = open('out.txt', 'w')\ntry:\n    f.write('x')\n    f.flush()\n    print('wrote')\nexcept OSError:\n    pass"
    )
    _, out, _ = probe(code, tmp_path)

    assert out.strip() != "wrote"
    assert not (tmp_path / "out.txt").exists() or (tmp_path / "out.txt").stat().st_size == 0


@pytest.mark.skipif(not IS_ROOT, reason="the network namespace is only guaranteed when the worker runs as root")
def test_child_has_no_network(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        code = (
            "import socket\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    print('connected')\n"
            "except OSError:\n    print('blocked')\n"
            "print(sorted(name for _, name in socket.if_nameindex()))"
        )
        _, out, _ = probe(code, tmp_path)

    assert out.split() == ["blocked", "['lo']"]


@pytest.mark.skipif(not IS_ROOT, reason="the private uid is only used when the worker runs as root")
def test_locked_down_child_is_unprivileged_and_cannot_fork_or_open(tmp_path):
    code = (
        f"import sys; sys.path[:0] = [{PROJECT_ROOT!r}]\n"
        "import os\n"
        "from programs.sandbox.child import lock_down\n"
        "lock_down()\n"
        "print(os.getuid() != 0, os.getgid() != 0, os.getgroups())\n"
        "try:\n    os.fork(); print('forked')\nexcept OSError:\n    print('no fork')\n"
        "try:\n    open('/etc/hostname'); print('opened')\nexcept OSError:\n    print('no open')\n"
    )
    _, out, err = probe(code, tmp_path)

    assert out.split("\n")[:3] == ["True True []", "no fork", "no open"], err

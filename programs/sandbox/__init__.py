"""The program sandbox: run untrusted program code in a fresh, limited child process.

    outcome = run_program(code, artifacts=[...], host=host, limits=Limits(wall_clock_s=30))

`host` implements HostServices (run_sql, primitive); the sandbox never touches a database, the network or
Django itself. See runner.py for where each protection lives and policy.py for what a program may do.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from programs.sandbox.runner import HostServices, Limits, ProgramOutcome, run_program

__all__ = ["HostServices", "Limits", "ProgramOutcome", "run_program"]


def __getattr__(name: str) -> Any:
    # Lazy, because the sandboxed child imports this package's child/policy/protocol modules on every run and
    # must not pay for the parent side (subprocess, ctypes, tempfile: ~30 ms).
    if name in __all__:
        from programs.sandbox import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

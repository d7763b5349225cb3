"""The parent side: start a fresh sandboxed child per program, serve its host calls, enforce the limits.

Where each protection lives:

- preexec_fn (before exec, in the child): RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE=0, RLIMIT_CORE=0, RLIMIT_NOFILE,
  RLIMIT_NPROC=1; a new network namespace (root: CLONE_NEWNET; otherwise CLONE_NEWUSER|CLONE_NEWNET where the
  kernel allows unprivileged user namespaces; failure is tolerated). Popen: new session (its own process group),
  cwd an empty temporary directory, a scrubbed environment, `python -I -S -B` with an explicit sys.path.
- child.lock_down (after its imports, before compiling the program): RLIMIT_NOFILE down to the fds already
  open; as root, setresuid/setresgid to a private uid, which also makes RLIMIT_NPROC bite (root ignores it).
- policy.py: RestrictedPython compilation plus runtime guards; the only way out is the executor/primitives
  proxies, which are requests over the pipe.
- here: the wall clock, the output cap and a cap on any protocol line; the process group is killed on expiry,
  on overflow, on a protocol violation, and always at the end.
"""

import ctypes
import functools
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import RestrictedPython

from programs.sandbox import protocol

# The child runs with -I -S: no environment, no site (the venv's .pth processing costs ~10 ms per run), so
# its sys.path is the standard library plus exactly these two directories.
PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
RESTRICTEDPYTHON_ROOT = str(Path(RestrictedPython.__file__).resolve().parents[1])
BOOTSTRAP = (
    f"import sys; sys.path[:0] = [{PROJECT_ROOT!r}, {RESTRICTEDPYTHON_ROOT!r}]; "
    "from programs.sandbox.child import main; main()"
)
MEMORY_FLOOR_BYTES = 64 * 1024**2  # the child needs ~20 MB of address space at idle
STARTUP_NOFILE = 32
STDERR_KEEP_BYTES = 16 * 1024
EXIT_GRACE_S = 2.0
# All artifacts a program stores in one run, together, may hold this many times max_artifact_bytes.
TOTAL_ARTIFACT_FACTOR = 5

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000


def _load_unshare() -> Any:
    # Resolved once in the parent: preexec_fn should do as little as possible between fork and exec.
    try:
        return ctypes.CDLL(None, use_errno=True).unshare
    except (OSError, AttributeError):
        return None


_UNSHARE = _load_unshare()


@dataclass(frozen=True)
class Limits:
    wall_clock_s: float = 30.0
    cpu_s: int = 10
    memory_bytes: int = 512 * 1024**2
    output_bytes: int = 1_000_000
    max_artifact_bytes: int = 10_000_000


@dataclass
class ProgramOutcome:
    output: str
    error: str | None
    accessed_artifact_ids: list[str] = field(default_factory=list)
    modified_artifacts: list[dict[str, Any]] = field(default_factory=list)
    llm_usages: list[dict[str, Any]] = field(default_factory=list)


class HostServices(Protocol):
    def run_sql(self, sql: str) -> list[dict[str, Any]]: ...

    def primitive(self, name: str, kwargs: dict[str, Any]) -> tuple[object, dict[str, Any]]: ...


class ProtocolViolation(Exception):
    """The child sent something it never would unless it was compromised or broken."""


DEFAULT_LIMITS = Limits()


def run_program(
    code: str, *, artifacts: list[dict[str, Any]], host: HostServices, limits: Limits = DEFAULT_LIMITS
) -> ProgramOutcome:
    """Run `code` in a fresh sandboxed process. Program failures come back as `error`; this only raises if the
    sandbox itself cannot be started."""
    return _Run(artifacts=artifacts, host=host, limits=limits).execute(code)


def _set_limit(kind: int, value: int) -> None:
    _soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY and value > hard and os.geteuid() != 0:
        value = hard
    resource.setrlimit(kind, (value, value))


def _limit_child(limits: Limits) -> None:
    """preexec_fn: runs in the forked child just before exec."""
    if _UNSHARE is not None:
        _UNSHARE(CLONE_NEWNET if os.geteuid() == 0 else CLONE_NEWUSER | CLONE_NEWNET)  # failure tolerated
    cpu = max(1, int(limits.cpu_s))
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1 if hard == resource.RLIM_INFINITY else min(cpu + 1, hard)))
    _set_limit(resource.RLIMIT_AS, max(limits.memory_bytes, MEMORY_FLOOR_BYTES))
    _set_limit(resource.RLIMIT_FSIZE, 0)
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_NOFILE, STARTUP_NOFILE)
    _set_limit(resource.RLIMIT_NPROC, 1)


def _child_env(home: str) -> dict[str, str]:
    # Nothing from the parent's environment: no secrets, no PYTHON* knobs (ignored under -I anyway).
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": home}


def start_child(*, limits: Limits, workdir: str, argv: list[str] | None = None) -> subprocess.Popen[bytes]:
    """Start the sandboxed child process (argv overridable so tests can probe the process-level limits)."""
    return subprocess.Popen(
        argv or [sys.executable, "-I", "-S", "-B", "-c", BOOTSTRAP],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=workdir,
        env=_child_env(workdir),
        close_fds=True,
        start_new_session=True,
        preexec_fn=functools.partial(_limit_child, limits),  # noqa: PLW1509
    )


class _Run:
    def __init__(self, *, artifacts: list[dict[str, Any]], host: HostServices, limits: Limits) -> None:
        self.host = host
        self.limits = limits
        self.inputs = {artifact["identifier"]: artifact for artifact in artifacts}
        self.output: list[str] = []
        self.output_size = 0
        self.accessed: list[str] = []
        self.modified: dict[str, dict[str, Any]] = {}
        self.artifact_sizes: dict[str, int] = {}
        self.llm_usages: list[dict[str, Any]] = []
        self.stderr = bytearray()
        self.error: str | None = None
        self.finished = False
        # Enough for the largest legitimate line: an artifact, or an output chunk, plus JSON overhead.
        self.max_message_bytes = limits.max_artifact_bytes + 64 * 1024
        self.max_line_bytes = self.max_message_bytes + limits.output_bytes + 64 * 1024

    # --- lifecycle ---

    def execute(self, code: str) -> ProgramOutcome:
        with tempfile.TemporaryDirectory(prefix="program-") as workdir:
            proc = start_child(limits=self.limits, workdir=workdir)
            try:
                self._converse(proc, code)
            finally:
                self._kill(proc)
                for pipe in (proc.stdin, proc.stdout, proc.stderr):
                    if pipe is not None:
                        pipe.close()
            if not self.finished and self.error is None:
                self.error = self._describe_death(proc.returncode)
        return ProgramOutcome(
            output="".join(self.output),
            error=self.error,
            accessed_artifact_ids=self.accessed,
            modified_artifacts=list(self.modified.values()),
            llm_usages=self.llm_usages,
        )

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None and self.error is None:
            # It said "done" or closed its end: give it a moment to exit by itself, so a crash reads as one.
            try:
                proc.wait(timeout=EXIT_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        # The child is not reaped yet (or just exited and cannot fork), so its pid still names our group.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()

    def _describe_death(self, returncode: int | None) -> str:
        if returncode is not None and returncode < 0:
            signum = -returncode
            if signum == signal.SIGXCPU:
                return f"Program exceeded the {self.limits.cpu_s} s CPU limit"
            if signum == signal.SIGKILL:
                return f"Program was killed (CPU limit of {self.limits.cpu_s} s or memory limit exceeded)"
            return f"Program terminated unexpectedly ({signal.Signals(signum).name})"
        detail = self.stderr.decode("utf-8", "replace").strip().splitlines()
        last = f": {detail[-1][:500]}" if detail else ""
        return f"Program terminated unexpectedly (exit code {returncode}){last}"

    # --- the conversation ---

    def _converse(self, proc: subprocess.Popen[bytes], code: str) -> None:
        if proc.stdin is None or proc.stdout is None or proc.stderr is None:
            raise RuntimeError("sandbox pipes missing")
        deadline = time.monotonic() + self.limits.wall_clock_s
        outbound = bytearray(
            protocol.encode(
                {
                    "code": code,
                    "output_bytes": self.limits.output_bytes,
                    "max_message_bytes": self.max_message_bytes,
                }
            )
        )
        stdin_fd, stdout_fd, stderr_fd = proc.stdin.fileno(), proc.stdout.fileno(), proc.stderr.fileno()
        os.set_blocking(stdin_fd, False)
        inbound = bytearray()
        scanned = 0
        with selectors.DefaultSelector() as selector:
            selector.register(stdout_fd, selectors.EVENT_READ, "stdout")
            selector.register(stderr_fd, selectors.EVENT_READ, "stderr")
            selector.register(stdin_fd, selectors.EVENT_WRITE, "stdin")
            writing = True
            while not self.finished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.error = f"Program exceeded the {self.limits.wall_clock_s:g} s wall-clock limit"
                    return
                for key, _mask in selector.select(remaining):
                    if key.data == "stdin":
                        try:
                            written = os.write(stdin_fd, outbound)
                        except BrokenPipeError:
                            outbound.clear()
                            written = 0
                        del outbound[:written]
                        if not outbound:
                            selector.unregister(stdin_fd)
                            writing = False
                    elif key.data == "stderr":
                        chunk = os.read(stderr_fd, 65536)
                        if not chunk:
                            selector.unregister(stderr_fd)
                        else:
                            self.stderr += chunk
                            del self.stderr[:-STDERR_KEEP_BYTES]
                    else:
                        chunk = os.read(stdout_fd, 65536)
                        if not chunk:
                            return  # the child is gone without a "done": execute() describes how it died
                        inbound += chunk
                        while not self.finished:
                            newline = inbound.find(b"\n", scanned)
                            if newline < 0:
                                scanned = len(inbound)
                                break
                            line = bytes(inbound[:newline])
                            del inbound[: newline + 1]
                            scanned = 0
                            reply = self._handle_line(line)
                            if reply is not None:
                                outbound += reply
                                if not writing:
                                    selector.register(stdin_fd, selectors.EVENT_WRITE, "stdin")
                                    writing = True
                        if len(inbound) > self.max_line_bytes:
                            self.error = "Program sent an oversized message to the host"
                            return
                        if self.error is not None:
                            return

    def _handle_line(self, line: bytes) -> bytes | None:
        """Act on one message from the child; return the reply to send, if any."""
        try:
            message = protocol.decode(line)
            kind = message.get("t")
            if kind == "out":
                self._add_output(message.get("text"))
            elif kind == "out_limit":
                self.error = f"output limit exceeded ({self.limits.output_bytes} bytes)"
            elif kind == "done":
                error = message.get("error")
                if error is not None and not isinstance(error, str):
                    raise ProtocolViolation("done.error is not a string")
                self.error = error
                self.finished = True
            elif kind == "call":
                return self._serve(message.get("method"), message.get("args"))
            else:
                raise ProtocolViolation(f"unknown message {kind!r}")
        except (ProtocolViolation, ValueError, RecursionError) as exc:
            self.error = f"Sandbox protocol violation: {exc}"[:500]
        return None

    def _add_output(self, text: Any) -> None:
        if not isinstance(text, str):
            raise ProtocolViolation("output is not a string")
        encoded = text.encode("utf-8", "replace")
        room = self.limits.output_bytes - self.output_size
        if len(encoded) > room:
            self.output.append(encoded[:room].decode("utf-8", "ignore"))
            self.output_size = self.limits.output_bytes
            self.error = f"output limit exceeded ({self.limits.output_bytes} bytes)"
            return
        self.output.append(text)
        self.output_size += len(encoded)

    # --- host calls ---

    def _serve(self, method: Any, args: Any) -> bytes:
        if method not in protocol.CALL_METHODS or not isinstance(args, dict):
            raise ProtocolViolation(f"unknown call {method!r}")
        try:
            result = getattr(self, f"_call_{method}")(**args)
            reply = {"ok": True, "result": result}
        except ProtocolViolation:
            raise
        except Exception as exc:  # the host's failure becomes the program's exception
            # str(KeyError("x")) is "'x'": send the message itself, or the program would see it quoted twice.
            message = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
            reply = {"ok": False, "error_type": type(exc).__name__, "message": str(message)}
        try:
            return protocol.encode(reply)
        except (TypeError, ValueError) as exc:
            return protocol.encode(
                {
                    "ok": False,
                    "error_type": "TypeError",
                    "message": f"{method} returned a value a program cannot use: {exc}",
                }
            )

    def _call_run_sql(self, *, sql: Any) -> list[dict[str, Any]]:
        if not isinstance(sql, str):
            raise TypeError("run_sql() needs a SQL string")
        return self.host.run_sql(sql)

    def _call_primitive(self, *, name: Any, kwargs: Any) -> object:
        if name not in protocol.PRIMITIVES or not isinstance(kwargs, dict):
            raise ProtocolViolation(f"unknown primitive {name!r}")
        result, usage = self.host.primitive(name, kwargs)
        self.llm_usages.append(usage)
        return result

    def _call_get_artifact(self, *, identifier: Any) -> Any:
        artifact = self.modified.get(identifier) or self.inputs.get(identifier)
        if artifact is None:
            known = sorted(set(self.inputs) | set(self.modified))
            listed = ", ".join(repr(name) for name in known[:20]) or "none"
            raise KeyError(f"no artifact with identifier {identifier!r} (available: {listed})")
        if identifier not in self.accessed:
            self.accessed.append(identifier)
        return artifact.get("data")

    def _call_store_artifact(self, *, identifier: Any, title: Any, artifact_type: Any, data: Any) -> None:
        problem = protocol.artifact_problem(identifier, title, artifact_type, data)
        if problem:
            raise ValueError(problem)
        size = len(json.dumps(data, ensure_ascii=False).encode())
        if size > self.limits.max_artifact_bytes:
            raise ValueError(f"artifact {identifier!r} is {size} bytes; the limit is {self.limits.max_artifact_bytes}")
        total = size + sum(self.artifact_sizes.values()) - self.artifact_sizes.get(identifier, 0)
        total_limit = TOTAL_ARTIFACT_FACTOR * self.limits.max_artifact_bytes
        if total > total_limit:
            raise ValueError(f"stored artifacts would total {total} bytes; the limit per program is {total_limit}")
        self.artifact_sizes[identifier] = size
        self.modified[identifier] = {
            "identifier": identifier,
            "title": title,
            "artifact_type": artifact_type,
            "data": data,
        }

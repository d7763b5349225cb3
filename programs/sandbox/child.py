"""The sandboxed process: reads the start message, locks itself down, runs the program, reports.

Started by runner.py as `python -I -B -c <bootstrap>` with rlimits already applied (and, as root, in its own
network namespace). Everything in this module is trusted code; the program only ever sees the `executor`,
`primitives` and print objects defined here, through the guards in policy.py.
"""

import os
import resource
import sys
from typing import Any, BinaryIO, NoReturn

from RestrictedPython import compile_restricted_exec

from programs.sandbox import protocol
from programs.sandbox.policy import PROGRAM_FILENAME, Policy, ProgramTransformer

# As root, the child drops to a uid of its own (base + pid: unique among live processes, owns no files,
# can signal no other process) before compiling the program.
PRIVATE_UID_BASE = 0x40000000
OUTPUT_CHUNK_BYTES = 64 * 1024
MAX_ERROR_CHARS = 4000

# Host errors of these types are re-raised as the same builtin in the program; others become RuntimeError.
_RERAISABLE: dict[object, type[Exception]] = {
    cls.__name__: cls for cls in (KeyError, ValueError, TypeError, RuntimeError, LookupError, IndexError)
}


def _exit(code: int) -> NoReturn:
    # No atexit handlers, no finalizers of program objects.
    os._exit(code)


class Channel:
    """The child's end of the pipe to the parent: buffered program output and synchronous host calls."""

    def __init__(self, rfile: BinaryIO, wfile: BinaryIO, *, output_bytes: int, max_message_bytes: int) -> None:
        self.rfile = rfile
        self.wfile = wfile
        self.output_bytes = output_bytes
        self.max_message_bytes = max_message_bytes
        self.pending: list[str] = []
        self.pending_bytes = 0
        self.total_output = 0

    def send(self, message: dict[str, Any]) -> None:
        self.wfile.write(protocol.encode(message))
        self.wfile.flush()

    def write_output(self, text: str) -> None:
        size = len(text.encode("utf-8", "surrogatepass"))
        if self.total_output + size > self.output_bytes:
            room = self.output_bytes - self.total_output
            self.pending.append(text.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore"))
            self.flush()
            self.send({"t": "out_limit"})
            _exit(0)
        self.total_output += size
        self.pending.append(text)
        self.pending_bytes += size
        if self.pending_bytes >= OUTPUT_CHUNK_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            text = "".join(self.pending)
            self.pending.clear()
            self.pending_bytes = 0
            self.send({"t": "out", "text": text})

    def call(self, method: str, **args: Any) -> Any:
        # Encoding happens here, in the program's call, so a non-JSON value raises TypeError at its line.
        request = protocol.encode({"t": "call", "method": method, "args": args})
        if len(request) > self.max_message_bytes:
            raise ValueError(f"{method} request is {len(request)} bytes; the limit is {self.max_message_bytes}")
        self.flush()
        self.wfile.write(request)
        self.wfile.flush()
        line = self.rfile.readline()
        if not line:
            _exit(1)  # the parent is gone
        reply = protocol.decode(line)
        if reply.get("ok"):
            return reply.get("result")
        exc_class = _RERAISABLE.get(reply.get("error_type"), RuntimeError)
        raise exc_class(str(reply.get("message", "")))


def _text(args: tuple[Any, ...], sep: Any, end: Any) -> str:
    sep = " " if sep is None else sep
    end = "\n" if end is None else end
    if not isinstance(sep, str) or not isinstance(end, str):
        raise TypeError("print() sep and end must be strings")
    return sep.join(str(arg) for arg in args) + end


class Executor:
    """`executor` in the program. Read-only; every method is a request to the parent."""

    __slots__ = ("_Executor__channel",)

    def __init__(self, channel: Channel) -> None:
        object.__setattr__(self, "_Executor__channel", channel)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("executor is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("executor is read-only")

    def __repr__(self) -> str:
        return "<executor>"

    def run_sql(self, sql: str) -> list[dict[str, Any]]:
        if not isinstance(sql, str):
            raise TypeError(f"run_sql() needs a SQL string, not {type(sql).__name__}")
        return self.__channel.call("run_sql", sql=sql)

    def get_artifact(self, identifier: str) -> Any:
        if not isinstance(identifier, str):
            raise TypeError(f"get_artifact() needs an identifier string, not {type(identifier).__name__}")
        return self.__channel.call("get_artifact", identifier=identifier)

    def store_artifact(self, identifier: str, title: str, artifact_type: str, data: Any) -> None:
        problem = protocol.artifact_problem(identifier, title, artifact_type, data)
        if problem:
            raise ValueError(problem)
        self.__channel.call(
            "store_artifact", identifier=identifier, title=title, artifact_type=artifact_type, data=data
        )

    def print(self, *args: Any, sep: str | None = " ", end: str | None = "\n") -> None:
        self.__channel.write_output(_text(args, sep, end))


class Primitives:
    """`primitives` in the program: the AI primitives, served by the parent's host."""

    __slots__ = ("_Primitives__channel",)

    def __init__(self, channel: Channel) -> None:
        object.__setattr__(self, "_Primitives__channel", channel)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("primitives is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("primitives is read-only")

    def __repr__(self) -> str:
        return "<primitives>"

    def __primitive(self, name: str, kwargs: dict[str, Any]) -> Any:
        return self.__channel.call("primitive", name=name, kwargs=kwargs)

    def classify(
        self, instructions: str, inputs_to_classify: Any, categories: Any, allow_multiple: bool = False
    ) -> Any:
        return self.__primitive(
            "classify",
            {
                "instructions": instructions,
                "inputs_to_classify": inputs_to_classify,
                "categories": categories,
                "allow_multiple": allow_multiple,
            },
        )

    def summarize(self, instructions: str, input: Any) -> Any:
        return self.__primitive("summarize", {"instructions": instructions, "input": input})

    def extract(self, json_schema: Any, instructions: str, input: Any) -> Any:
        return self.__primitive("extract", {"json_schema": json_schema, "instructions": instructions, "input": input})

    def generate(self, instructions: str, input: Any) -> Any:
        return self.__primitive("generate", {"instructions": instructions, "input": input})


class PrintScope:
    """What RestrictedPython's `_print_(_getattr_)` returns at the top of the module and of each function:
    `print(...)` becomes `_print._call_print(...)` and `printed` becomes `_print()`."""

    __slots__ = ("_PrintScope__channel", "_PrintScope__parts")

    def __init__(self, channel: Channel, getattr_: Any = None) -> None:
        object.__setattr__(self, "_PrintScope__channel", channel)
        object.__setattr__(self, "_PrintScope__parts", [])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("print is read-only")

    def _call_print(
        self, *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
    ) -> None:
        if file is not None:
            raise TypeError("print(file=...) is not available in programs")
        text = _text(args, sep, end)
        self.__channel.write_output(text)
        self.__parts.append(text)

    def __call__(self) -> str:
        return "".join(self.__parts)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def lock_down() -> None:
    """Tighten what the parent's preexec could not: no new file descriptors, and (as root) no root."""
    listed = [int(fd) for fd in os.listdir("/proc/self/fd")]  # includes the (now closed) fd of the listing
    ceiling = max(fd for fd in listed if _is_open(fd)) + 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, ceiling))
    if os.geteuid() == 0:
        uid = PRIVATE_UID_BASE + os.getpid()
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)


def format_error(exc: BaseException) -> str:
    lineno = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == PROGRAM_FILENAME:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    try:
        message = str(exc)
    except Exception:
        message = ""
    if isinstance(exc, MemoryError) and not message:
        message = "memory limit exceeded"
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if lineno is not None:
        text = f"line {lineno}: {text}"
    return text[:MAX_ERROR_CHARS]


def format_compile_errors(errors: tuple[str, ...]) -> str:
    lines = []
    for error in errors:
        prefix, sep, rest = error.partition(": ")
        if sep and prefix.startswith("Line "):
            if not rest.startswith("SyntaxError:"):
                rest = f"SyntaxError: {rest}"
            lines.append(f"line {prefix[5:]}: {rest}")
        else:
            lines.append(f"SyntaxError: {error}")
    return "\n".join(lines)[:MAX_ERROR_CHARS]


def run(code: str, channel: Channel) -> str | None:
    """Compile and execute the program; return its error text, or None."""
    reserve = bytearray(1024 * 1024)  # freed on MemoryError so the error can still be formatted and sent
    try:
        result = compile_restricted_exec(code, filename=PROGRAM_FILENAME, policy=ProgramTransformer)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        del reserve
        return f"SyntaxError: {type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    if result.errors:
        return format_compile_errors(result.errors)

    policy = Policy()
    program_globals = policy.globals(
        print_factory=lambda getattr_=None: PrintScope(channel, getattr_),
        world={"executor": Executor(channel), "primitives": Primitives(channel)},
    )
    try:
        exec(result.code, program_globals)  # noqa: S102 - the point of this module; see policy.py
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the program does not get to end us
        del reserve
        program_globals.clear()
        try:
            return format_error(exc)
        except MemoryError:
            return "MemoryError: memory limit exceeded"
    return None


def main() -> None:
    rfile: BinaryIO = sys.stdin.buffer
    wfile: BinaryIO = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing stray may end up in the protocol stream
    start = protocol.decode(rfile.readline())
    channel = Channel(
        rfile,
        wfile,
        output_bytes=int(start["output_bytes"]),
        max_message_bytes=int(start["max_message_bytes"]),
    )
    lock_down()
    error = run(start["code"], channel)
    channel.flush()
    channel.send({"t": "done", "error": error})
    _exit(0)

"""Escape attempts. Each must end with an error in the outcome, touch nothing outside, and leave us working.

`{sentinel}` and `{tmpdir}` in a program are replaced with a file and directory of the test's tmp_path, so
an attempt that got anywhere would show up as a changed sentinel or a new file.
"""

import os

import pytest

from programs.sandbox import Limits, run_program
from tests.programs.sandbox_fakes import FakeHost

SECRET = "sentinel-secret-7f3a"

ESCAPES = {
    # --- imports ---
    "import_os": ("import os\nos.system('touch {tmpdir}/pwned')", "ImportError"),
    "import_subprocess": ("import subprocess\nsubprocess.run(['touch', '{tmpdir}/pwned'])", "ImportError"),
    "import_string": ("import string\nprint(string.Formatter().format('{{0.__class__}}', 1))", "ImportError"),
    "from_os_import_system": ("from os import system\nsystem('touch {tmpdir}/pwned')", "ImportError"),
    "dunder_import_call": ("__import__('os').system('touch {tmpdir}/pwned')", "SyntaxError"),
    "import_sys": ("import sys\nprint(sys.modules['os'].environ)", "ImportError"),
    "import_builtins": ("import builtins\nbuiltins.open('{sentinel}', 'w')", "SyntaxError"),
    "import_importlib": ("import importlib\nimportlib.import_module('os')", "ImportError"),
    "import_ctypes": ("import ctypes\nctypes.CDLL(None).system(b'touch {tmpdir}/pwned')", "ImportError"),
    "import_posix_environ": ("import posix\nprint(posix.environ)", "ImportError"),
    "import_socket": ("import socket\nsocket.create_connection(('127.0.0.1', 5432))", "ImportError"),
    "import_urllib": ("import urllib.request\nurllib.request.urlopen('http://127.0.0.1/')", "ImportError"),
    "relative_import": ("from . import os", "ImportError"),
    "import_json_submodule": ("import json.decoder\nprint(json.decoder)", "ImportError"),
    "from_json_import_submodule": ("from json import decoder\nprint(decoder.scanstring)", "ImportError"),
    "import_collections_abc": ("import collections.abc\nprint(collections.abc.Mapping)", "ImportError"),
    "collections_abc_attribute": ("import collections\nprint(collections.abc.Mapping.register)", "AttributeError"),
    "fork_bomb_via_os": ("import os\nwhile True:\n    os.fork()", "ImportError"),
    "fork_via_multiprocessing": ("import multiprocessing\nmultiprocessing.Process(target=print).start()", "Import"),
    # --- builtins that are simply not there ---
    "open_passwd": ("print(open('/etc/passwd').read())", "NameError"),
    "open_sentinel_for_write": ("open('{sentinel}', 'w').write('pwned')", "NameError"),
    "eval": ("eval(\"open('{sentinel}', 'w')\")", "SyntaxError"),
    "exec": ("exec(\"open('{sentinel}', 'w')\")", "SyntaxError"),
    "compile": ("compile('1', 'x', 'eval')", "NameError"),
    "getattr_class": ("getattr(1, '__class__')", "NameError"),
    "type_three_args": ("type('X', (), {{}})", "NameError"),
    "vars": ("print(vars())", "NameError"),
    "globals": ("print(globals())", "NameError"),
    "locals": ("print(locals())", "NameError"),
    "dir": ("print(dir())", "NameError"),
    "breakpoint": ("breakpoint()", "SyntaxError"),
    "input": ("input()", "NameError"),
    "memoryview": ("memoryview(b'x')", "NameError"),
    "object_subclasses": ("print(object)", "NameError"),
    "super": ("class A:\n    def f(self):\n        return super()\nA().f()", "NameError"),
    "raise_system_exit": ("raise SystemExit(0)", "NameError"),
    "exit_builtin": ("exit(0)", "NameError"),
    # --- attribute walks ---
    "subclasses_walk": ("().__class__.__bases__[0].__subclasses__()", "SyntaxError"),
    "generator_gi_frame": ("g = (x for x in [1])\nprint(g.gi_frame.f_back.f_globals)", "SyntaxError"),
    "function_globals": ("def f(): pass\nprint(f.__globals__)", "SyntaxError"),
    "lambda_code": ("print((lambda: 0).__code__)", "SyntaxError"),
    "lambda_default_arg_frame": ("g = (lambda x=(y for y in [1]): x)()\nprint(g.gi_frame)", "SyntaxError"),
    "json_loader_sys_modules": ("import json\nprint(json.__loader__)", "SyntaxError"),
    "re_dict": ("import re\nprint(re.__dict__['_compiler'])", "SyntaxError"),
    "re_compiler": ("import re\nprint(re._compiler)", "SyntaxError"),
    "re_sre_compile_runtime": ("import re\nprint(re.sre_compile)", "AttributeError"),
    "datetime_sys": ("import datetime\nprint(datetime.sys.modules['os'].environ)", "AttributeError"),
    "statistics_random_os": ("import statistics\nprint(statistics.random._os.environ)", "SyntaxError"),
    "statistics_sys_runtime": ("import statistics\nprint(statistics.sys)", "AttributeError"),
    "json_decoder_dict": ("import json\nprint(json.decoder.__dict__)", "SyntaxError"),
    "json_decoder_runtime": ("import json\nprint(json.decoder.scanstring)", "AttributeError"),
    "json_encoder_class": ("import json\nprint(json.JSONEncoder)", "AttributeError"),
    "functools_partial_internals": ("import functools\nprint(functools.partial(print).__setstate__)", "SyntaxError"),
    "functools_update_wrapper": ("import functools\nfunctools.update_wrapper(executor, print)", "AttributeError"),
    "functools_wraps": ("import functools\nprint(functools.wraps)", "AttributeError"),
    "mro_walk": ("import datetime\nprint(datetime.date.mro())", "AttributeError"),
    "builtins_name": ("print(__builtins__)", "SyntaxError"),
    "guard_name": ("print(_getattr_)", "SyntaxError"),
    "print_self": ("print(print.__self__)", "SyntaxError"),
    "bound_method_func": ("print(executor.get_artifact.__func__.__globals__)", "SyntaxError"),
    # --- formatting ---
    "str_format_attribute_walk": ("print('{{0.__class__}}'.format(1))", "AttributeError"),
    "str_format_map": ("def f(): pass\nprint('{{x.__globals__}}'.format_map({{'x': f}}))", "AttributeError"),
    "str_type_format": ("print(str.format('{{0.__class__}}', 1))", "AttributeError"),
    "format_method_reference": ("fmt = 'x'.format\nprint(fmt)", "AttributeError"),
    "fstring_attribute_walk": ("x = 1\nprint(f'{{x.__class__.__mro__}}')", "SyntaxError"),
    "fstring_nested_format": ("print(f\"{{'{{0.__class__}}'.format(1)}}\")", "AttributeError"),
    # --- exceptions ---
    "attribute_error_obj": ("try:\n    executor.nope\nexcept AttributeError as e:\n    print(e.obj)", "AttributeError"),
    "traceback_frame": ("try:\n    1 / 0\nexcept Exception as e:\n    print(e.__traceback__.tb_frame)", "SyntaxError"),
    "with_traceback": ("try:\n    1 / 0\nexcept Exception as e:\n    print(e.with_traceback)", "AttributeError"),
    "try_except_star": ("try:\n    pass\nexcept* ValueError:\n    pass", "SyntaxError"),
    # --- redefining the guards ---
    "posonly_param_named_guard": ("def f(_getattr_, /):\n    return _getattr_\nf(1)", "SyntaxError"),
    "walrus_guard": ("(_getattr_ := print)", "SyntaxError"),
    "import_as_guard": ("import json as _getattr_", "SyntaxError"),
    "except_as_guard": ("try:\n    1 / 0\nexcept Exception as _write_:\n    pass", "SyntaxError"),
    "decorator_on_guard": ("@_getattr_\ndef f(): pass", "SyntaxError"),
    "decorator_reaching_frame": ("def d(fn):\n    return fn.gi_frame\n@d\ndef g():\n    yield 1", "SyntaxError"),
    "decorator_store_artifact": ("@executor.store_artifact\ndef f(): pass", "TypeError"),
    # --- classes ---
    "class_getattr_hook": ("class A:\n    def __getattr__(self, name):\n        return 1", "SyntaxError"),
    "class_metaclass_keyword": ("class A(metaclass=print):\n    pass", "SyntaxError"),
    "class_based_on_executor": ("class A(executor):\n    pass", "TypeError"),
    "class_init_subclass": ("class A:\n    def __init_subclass__(cls):\n        pass", "SyntaxError"),
    "match_statement_guard_capture": ("match 1:\n    case _getattr_:\n        pass", "SyntaxError"),
    # --- executor internals ---
    "executor_attribute_write": ("executor.run_sql = print", "TypeError"),
    "executor_new_attribute": ("executor.x = 1", "TypeError"),
    "executor_private": ("print(executor._Executor__channel)", "SyntaxError"),
    "executor_dict": ("print(executor.__dict__)", "SyntaxError"),
    "primitives_attribute_write": ("primitives.generate = print", "TypeError"),
    "module_proxy_write": ("import json\njson.loads = print", "TypeError"),
    "module_item_write": ("import math\nmath['pi'] = 3", "TypeError"),
    "module_augmented_attribute": ("import math\nmath.pi += 1", "cannot modify"),
    "executor_augmented_attribute": ("executor.x += 1", "AttributeError"),
    "augmented_private_attribute": ("d = {{}}\nd.__class__ += 1", "SyntaxError"),
    "tuple_augmented_item": ("t = (1, 2)\nt[0] += 1", "cannot modify"),
    # --- resources ---
    "memory_bomb": ("x = 'x' * 10**10", "MemoryError"),
    "list_growth_bomb": ("l = []\nwhile True:\n    l.append('x' * 10**6)", "MemoryError"),
    "deep_recursion": ("def f(n):\n    return f(n + 1)\nf(0)", "RecursionError"),
}


@pytest.fixture
def jail(tmp_path):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text(SECRET)
    return tmp_path, sentinel


def _assert_untouched(tmp_path, sentinel):
    assert sentinel.read_text() == SECRET
    assert sorted(os.listdir(tmp_path)) == ["sentinel.txt"]


@pytest.mark.parametrize(("template", "expected"), list(ESCAPES.values()), ids=list(ESCAPES))
def test_escape_attempt_fails_cleanly(jail, monkeypatch, template, expected):
    tmp_path, sentinel = jail
    monkeypatch.setenv("SANDBOX_TEST_SECRET", SECRET)
    code = template.format(sentinel=sentinel, tmpdir=tmp_path)

    outcome = run_program(
        code,
        artifacts=[],
        host=FakeHost(),
        limits=Limits(wall_clock_s=20, cpu_s=5, memory_bytes=256 * 1024**2),
    )

    assert outcome.error is not None
    assert expected in outcome.error
    assert SECRET not in outcome.output
    assert SECRET not in outcome.error
    assert outcome.modified_artifacts == []
    _assert_untouched(tmp_path, sentinel)
    assert run_program("print('still here')", artifacts=[], host=FakeHost()).output == "still here\n"


def test_infinite_loop_hits_the_cpu_limit():
    outcome = run_program("while True:\n    pass", artifacts=[], host=FakeHost(), limits=Limits(cpu_s=1))

    assert outcome.error == "Program exceeded the 1 s CPU limit"


def test_infinite_loop_hits_the_wall_clock_limit():
    outcome = run_program(
        "while True:\n    pass", artifacts=[], host=FakeHost(), limits=Limits(wall_clock_s=1, cpu_s=30)
    )

    assert outcome.error == "Program exceeded the 1 s wall-clock limit"


def test_output_flood_is_cut_at_the_output_limit():
    outcome = run_program(
        "while True:\n    print('x' * 1000)",
        artifacts=[],
        host=FakeHost(),
        limits=Limits(output_bytes=100_000),
    )

    assert "output limit exceeded" in outcome.error
    assert len(outcome.output.encode()) <= 100_000
    assert outcome.output.startswith("x" * 1000)


def test_one_huge_print_is_cut_at_the_output_limit():
    outcome = run_program("print('y' * 5_000_000)", artifacts=[], host=FakeHost(), limits=Limits(output_bytes=1000))

    assert "output limit exceeded" in outcome.error
    assert outcome.output == "y" * 1000


def test_caught_memory_error_still_ends_within_the_limits():
    code = "while True:\n    try:\n        x = 'x' * 10**10\n    except MemoryError:\n        pass"
    outcome = run_program(code, artifacts=[], host=FakeHost(), limits=Limits(cpu_s=1, wall_clock_s=20))

    assert "CPU limit" in outcome.error


def test_caught_output_limit_cannot_be_swallowed():
    code = "while True:\n    try:\n        print('z' * 1000)\n    except BaseException:\n        pass"
    outcome = run_program(code, artifacts=[], host=FakeHost(), limits=Limits(output_bytes=10_000))

    assert "output limit exceeded" in outcome.error


def test_parent_environment_is_not_visible(monkeypatch):
    monkeypatch.setenv("SANDBOX_TEST_SECRET", SECRET)
    outcome = run_program("import os\nprint(os.environ)", artifacts=[], host=FakeHost(), limits=Limits(wall_clock_s=20))

    assert outcome.error is not None
    assert SECRET not in outcome.output

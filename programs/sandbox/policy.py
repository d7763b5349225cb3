"""What a program may touch: the guards RestrictedPython's compiled code calls, the builtins, the imports.

Runs inside the child. RestrictedPython rewrites the program so that every attribute read goes through
`_getattr_`, every attribute/item write through `_write_`, every subscript through `_getitem_`, every loop
through `_getiter_`, and so on; names starting with "_" are refused at compile time. The functions here are
the runtime half of that contract: they must hold even for values the compile-time checks cannot see.
"""

import ast
import builtins
import collections
import datetime
import functools
import importlib
import itertools
import json
import math
import operator
import re
import statistics
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer, copy_locations

PROGRAM_FILENAME = "<program>"

# Modules that the allowed ones (or their C code) import lazily, at call time. Imported now because once the
# child has dropped to its private uid the standard library may no longer be readable.
LAZY_DEPENDENCIES = (
    "_strptime",  # datetime.strptime
    "time",  # date.strftime
    "copy",  # Counter.copy
    "heapq",  # Counter.most_common
    "decimal",
    "fractions",
    "unicodedata",  # re's \N{...}
    "warnings",  # re
    "encodings.ascii",  # str.encode / bytes.decode look codecs up lazily
    "encodings.cp1252",
    "encodings.latin_1",
    "encodings.utf_16",
    "encodings.utf_32",
)
for _name in LAZY_DEPENDENCIES:
    importlib.import_module(_name)

# Attribute names refused on every object, on top of anything starting with "_". Frame, code, generator and
# traceback internals lead to globals and builtins; str.format/format_map and Formatter methods walk
# attributes from inside a format string; mro() hands out `object`.
DENIED_ATTRIBUTES = frozenset(
    {
        "format",
        "format_map",
        "vformat",
        "get_field",
        "get_value",
        "mro",
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "cr_origin",
        "ag_frame",
        "ag_code",
        "ag_await",
        "f_back",
        "f_builtins",
        "f_code",
        "f_generator",
        "f_globals",
        "f_locals",
        "f_trace",
        "tb_frame",
        "tb_next",
        "co_code",
        "func_globals",
        "func_code",
        "func_closure",
        "im_func",
        "im_self",
        "im_class",
        "with_traceback",
    }
)

# Each allowed module is replaced by a proxy carrying only these names. No submodules, no `sys`, no loaders.
ALLOWED_MODULES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "json": (json, ("dumps", "loads", "JSONDecodeError")),
    "math": (math, tuple(name for name in dir(math) if not name.startswith("_"))),
    "re": (
        re,
        (
            "compile",
            "search",
            "match",
            "fullmatch",
            "split",
            "findall",
            "finditer",
            "sub",
            "subn",
            "escape",
            "error",
            "A",
            "ASCII",
            "I",
            "IGNORECASE",
            "M",
            "MULTILINE",
            "S",
            "DOTALL",
            "X",
            "VERBOSE",
            "U",
            "UNICODE",
        ),
    ),
    "datetime": (datetime, ("date", "datetime", "time", "timedelta", "timezone", "MINYEAR", "MAXYEAR")),
    "statistics": (
        statistics,
        (
            "mean",
            "fmean",
            "geometric_mean",
            "harmonic_mean",
            "median",
            "median_low",
            "median_high",
            "median_grouped",
            "mode",
            "multimode",
            "quantiles",
            "pstdev",
            "pvariance",
            "stdev",
            "variance",
            "correlation",
            "covariance",
            "linear_regression",
            "NormalDist",
            "StatisticsError",
        ),
    ),
    "collections": (collections, ("Counter", "OrderedDict", "defaultdict", "deque", "namedtuple", "ChainMap")),
    "itertools": (
        itertools,
        (
            "accumulate",
            "chain",
            "combinations",
            "combinations_with_replacement",
            "compress",
            "count",
            "cycle",
            "dropwhile",
            "filterfalse",
            "groupby",
            "islice",
            "pairwise",
            "permutations",
            "product",
            "repeat",
            "starmap",
            "takewhile",
            "tee",
            "zip_longest",
        ),
    ),
    # Not wraps/update_wrapper: they setattr arbitrary (even "_"-prefixed) names on any object.
    "functools": (functools, ("reduce", "partial", "cmp_to_key", "lru_cache", "cache")),
}

# Some C functions of the allowed modules import a module at call time (date.strftime needs time.strftime,
# datetime.strptime needs _strptime). PyImport_Import resolves `__import__` through the *calling frame's*
# builtins, i.e. ours, and passes an empty *list* as fromlist; import statements pass None or a tuple, and a
# program cannot call __import__ itself. Only such calls get these proxies, with just the names C looks up.
INTERNAL_IMPORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "time": ("time", ("strftime",)),
    "_strptime": ("_strptime", ("_strptime_datetime",)),
    "re": ("re", ("_subx", "_compile", "_compile_repl", "_expand")),
}

_BUILTIN_NAMES = (
    "abs",
    "all",
    "any",
    "bin",
    "bool",
    "callable",
    "chr",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "frozenset",
    "hash",
    "hex",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "oct",
    "ord",
    "pow",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
    # exceptions a program may raise or catch (not SystemExit/KeyboardInterrupt/BaseException)
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "Exception",
    "ImportError",
    "IndexError",
    "KeyError",
    "LookupError",
    "MemoryError",
    "NameError",
    "NotImplementedError",
    "OverflowError",
    "RecursionError",
    "RuntimeError",
    "StopIteration",
    "TypeError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeError",
    "ValueError",
    "ZeroDivisionError",
)

_INPLACE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}

# Containers a program may assign items/attributes on. Everything else is read-only to it, except instances of
# classes the program itself defined (tracked by Policy.program_classes).
_WRITABLE_TYPES = frozenset(
    {dict, list, collections.defaultdict, collections.OrderedDict, collections.Counter, collections.deque}
)


class ProgramTransformer(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus `d[k] += v` and `obj.attr += v`, which it refuses outright.

    They are rewritten to go through the same guards as the plain forms, evaluating `d` and `k` once:
        _aug_obj_N = d; _aug_key_N = k
        _write_(_aug_obj_N)[_aug_key_N] = _inplacevar_("+=", _getitem_(_aug_obj_N, _aug_key_N), v)
    (The temporaries start with "_", so program code cannot name them.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.augmented = 0

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        target = node.target
        if isinstance(target, ast.Name) or (isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Slice)):
            return super().visit_AugAssign(node)
        node = self.node_contents_visit(node)  # the target becomes _write_(obj)[key] / _write_(obj).attr
        target = node.target
        if not isinstance(target, ast.Subscript | ast.Attribute) or not isinstance(target.value, ast.Call):
            return super().visit_AugAssign(node)  # refused with RestrictedPython's own error
        self.augmented += 1
        obj_name = f"_aug_obj_{self.augmented}"
        statements: list[ast.stmt] = [ast.Assign([ast.Name(obj_name, ast.Store())], target.value.args[0])]
        obj = ast.Name(obj_name, ast.Load())
        if isinstance(target, ast.Subscript):
            key_name = f"_aug_key_{self.augmented}"
            statements.append(ast.Assign([ast.Name(key_name, ast.Store())], target.slice))
            current = _call("_getitem_", obj, ast.Name(key_name, ast.Load()))
            store: ast.expr = ast.Subscript(_call("_write_", obj), ast.Name(key_name, ast.Load()), ast.Store())
        else:
            current = _call("_getattr_", obj, ast.Constant(target.attr))
            store = ast.Attribute(_call("_write_", obj), target.attr, ast.Store())
        value = _call("_inplacevar_", ast.Constant(IOPERATOR_TO_STR[type(node.op)]), current, node.value)
        statements.append(ast.Assign([store], value))
        for statement in statements:
            copy_locations(statement, node)
            ast.fix_missing_locations(statement)
        return statements


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(ast.Name(name, ast.Load()), list(args), [])


class ModuleProxy:
    """Stands in for an allowed module and holds only its allowlisted names.

    It has no `__name__`, so `from json import decoder` cannot fall back to `sys.modules["json.decoder"]`
    (CPython's IMPORT_FROM does that for real modules), and it refuses writes even outside `_write_`.
    """

    def __init__(self, label: str, module: Any, names: Iterable[str]) -> None:
        for name in names:
            object.__setattr__(self, name, getattr(module, name))
        object.__setattr__(self, "_ModuleProxy__label", label)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("modules are read-only in a program")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("modules are read-only in a program")

    def __repr__(self) -> str:
        return f"<module {self.__label!r}>"


class _ReadOnly:
    """What `_write_` returns for objects the program may not modify."""

    __slots__ = ("_ReadOnly__kind",)

    def __init__(self, ob: Any) -> None:
        object.__setattr__(self, "_ReadOnly__kind", type(ob).__name__)

    def _refuse(self, *args: Any) -> None:
        raise TypeError(f"a program cannot modify {self.__kind} objects")

    __setattr__ = __delattr__ = __setitem__ = __delitem__ = _refuse


class Policy:
    """The guards and builtins for one program run."""

    def __init__(self) -> None:
        self.program_classes: set[type] = set()
        self.modules = {name: ModuleProxy(name, module, names) for name, (module, names) in ALLOWED_MODULES.items()}
        self.internal_modules = {
            name: ModuleProxy(
                name, sys.modules[module_name], [n for n in names if hasattr(sys.modules[module_name], n)]
            )
            for name, (module_name, names) in INTERNAL_IMPORTS.items()
        }

    # --- guards called by RestrictedPython's rewritten code ---

    def getattr(self, ob: Any, name: str) -> Any:
        if type(name) is not str:
            raise TypeError("attribute name must be a string")
        if name.startswith("_") or name in DENIED_ATTRIBUTES:
            raise AttributeError(f"access to attribute '{name}' is not allowed")
        if isinstance(ob, types.ModuleType):
            # Real modules never reach a program; if one ever does, it gets nothing from it.
            raise AttributeError(f"access to attribute '{name}' of a module is not allowed")
        if isinstance(ob, BaseException) and name == "obj":
            raise AttributeError("access to attribute 'obj' is not allowed")
        return getattr(ob, name)

    def write(self, ob: Any) -> Any:
        kind = type(ob)
        if kind in _WRITABLE_TYPES or kind in self.program_classes:
            return ob
        if isinstance(ob, type) and ob in self.program_classes:  # class attributes of the program's own classes
            return ob
        return _ReadOnly(ob)

    @staticmethod
    def getitem(ob: Any, key: Any) -> Any:
        return ob[key]

    @staticmethod
    def inplacevar(op: str, x: Any, y: Any) -> Any:
        try:
            return _INPLACE_OPERATORS[op](x, y)
        except KeyError:
            raise SyntaxError(f"augmented assignment {op} is not allowed") from None

    @staticmethod
    def apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    def make_class(self, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> type:
        """The `__metaclass__` RestrictedPython puts on every class statement."""
        if kwargs:
            raise TypeError("class keyword arguments are not allowed")
        cls = type(name, bases, namespace)
        self.program_classes.add(cls)
        return cls

    def import_(
        self,
        name: str,
        globals: Any = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> ModuleProxy:
        if level == 0 and name in self.internal_modules and type(fromlist) is list and not fromlist:
            return self.internal_modules[name]
        if level != 0 or name not in self.modules:
            allowed = ", ".join(sorted(self.modules))
            raise ImportError(f"import of '{name}' is not allowed (allowed: {allowed})")
        return self.modules[name]

    # --- the program's globals ---

    def globals(self, *, print_factory: Callable[..., Any], world: dict[str, Any]) -> dict[str, Any]:
        program_builtins = {name: getattr(builtins, name) for name in _BUILTIN_NAMES}
        program_builtins["__build_class__"] = builtins.__build_class__
        program_builtins["__import__"] = self.import_
        return {
            "__builtins__": program_builtins,
            "__name__": "program",
            "__metaclass__": self.make_class,
            "_getattr_": self.getattr,
            "_write_": self.write,
            "_getitem_": self.getitem,
            "_getiter_": iter,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_unpack_sequence_": guarded_unpack_sequence,
            "_inplacevar_": self.inplacevar,
            "_apply_": self.apply,
            "_print_": print_factory,
            **world,
        }

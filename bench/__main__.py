"""Run every bench/*.py module's main(), in name order: `python -m bench` (or `make bench`)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> None:
    modules = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
    for name in modules:
        module = importlib.import_module(f"bench.{name}")
        if callable(getattr(module, "main", None)):
            print(f"== bench.{name} ==", flush=True)
            module.main()
            print(flush=True)


if __name__ == "__main__":
    main()

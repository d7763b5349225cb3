"""Test-process defaults, set before Django reads its settings.

Loaded with `-p tests.testenv` (pyproject addopts), i.e. before pytest-django configures Django.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "x0Vb4kq2cJ3lK0r8ZCqg7s9cJ1vN2m0pQm5y2uB3jS8=")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("VAR_DIR", str(ROOT / "var" / "test"))

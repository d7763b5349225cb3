"""Settings fail loudly on bad values (each case boots Django in a fresh process)."""

import os
import subprocess
import sys

import pytest

BOOT = "import django; django.setup()"


def boot(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    base.update({"DJANGO_SETTINGS_MODULE": "config.settings", **env})
    return subprocess.run([sys.executable, "-c", BOOT], env=base, capture_output=True, text=True, timeout=60)


def test_secret_key_is_required_when_debug_is_off():
    result = boot(DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG must be a boolean"),
        ("QUERY_DEFAULT_ROW_CAP", "lots", "QUERY_DEFAULT_ROW_CAP must be an integer"),
        ("AI_MODELS", "{not json", "AI_MODELS must be valid JSON"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of"),
        ("DATABASE_URL", "nosuchdb://x", "DATABASE_URL is not a valid database URL"),
    ],
)
def test_a_bad_value_stops_start_up_with_the_variables_name(name, value, message):
    result = boot(**{"DEBUG": "1", name: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_it_boots_in_production_mode_with_the_required_secrets():
    result = boot(DEBUG="0", SECRET_KEY="s" * 50, FIELD_ENCRYPTION_KEY="x0Vb4kq2cJ3lK0r8ZCqg7s9cJ1vN2m0pQm5y2uB3jS8=")
    assert result.returncode == 0, result.stderr

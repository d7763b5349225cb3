"""The product's Celery worker for the program tests, with the test broker's transport options.

    python -m tests.programs.run_worker worker -Q programs ...   (arguments as for `celery worker`)

PROGRAM_TEST_BROKER_OPTIONS (JSON): filesystem folders, or a Redis `global_keyprefix` that keeps this test
session's `programs` queue apart from any other worker on the same Redis.
PROGRAM_TEST_SETTINGS (JSON): Django settings to override in the worker, e.g. {"PROGRAM_CPU_S": 2}.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from config.celery import app  # noqa: E402

if __name__ == "__main__":
    options = os.environ.get("PROGRAM_TEST_BROKER_OPTIONS")
    if options:
        app.conf.broker_transport_options = json.loads(options)
    for name, value in json.loads(os.environ.get("PROGRAM_TEST_SETTINGS", "{}")).items():
        setattr(settings, name, value)
    app.worker_main(sys.argv[1:])

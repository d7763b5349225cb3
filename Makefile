# Prompt Studio. `make demo` and `make test` work on a fresh machine with Python 3.11+ only.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export LITELLM_LOCAL_MODEL_COST_MAP := True
# Local runs of worker / beat / flower / migrate next to `make demo`: without a SECRET_KEY in the
# environment they run in debug mode on the embedded defaults (var/db.sqlite3, var/broker/).
LOCAL_ENV := $(if $(SECRET_KEY),,DEBUG=$${DEBUG:-1})

.PHONY: install demo test test-fast lint format bench flower migrate worker beat clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=1 $(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: $(STAMP) lint
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -x -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

migrate: $(STAMP)
	$(LOCAL_ENV) $(BIN)/python manage.py migrate

worker: $(STAMP)
	$(LOCAL_ENV) $(BIN)/celery -A config worker -Q $${QUEUES:-ai,query,programs,default} --loglevel INFO

beat: $(STAMP)
	$(LOCAL_ENV) $(BIN)/celery -A config beat --loglevel INFO

flower: $(STAMP)
	$(LOCAL_ENV) $(BIN)/celery -A config flower --address=$${FLOWER_ADDRESS:-127.0.0.1} --port=$${FLOWER_PORT:-5555}

clean:
	rm -rf var/test var/broker

"""The one settings module. Every value comes from the environment (see README → Configuration).

Embedded defaults (SQLite under var/, a filesystem broker, the `builtin` AI engine) make a fresh
checkout run with nothing else installed; production sets DATABASE_URL, CELERY_BROKER_URL, ….
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_int, env_json, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off")
    SECRET_KEY = "insecure-dev-only-key-set-SECRET_KEY-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "connectors",
    "prompts",
    "templates_app",
    "analytics",
    "query_editor",
    "programs",
    "workers",
]

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "config.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
try:
    _db = environ.Env.db_url_config(DATABASE_URL)
except Exception as exc:  # django-environ raises several types for a bad URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if not _db.get("ENGINE", "").startswith("django.db.backends."):
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: unknown scheme {_db.get('ENGINE')!r}")
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Shared by the web process and the worker: WAL, a busy timeout and IMMEDIATE transactions,
    # or concurrent writers fail with "database is locked".
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so worker processes started by tests see the test database.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
else:
    _db["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    _db["CONN_HEALTH_CHECKS"] = True
    if _db["ENGINE"] == "django.db.backends.postgresql":
        # Never prepare automatically (the ORM's statements stay client-side bound, as Django
        # expects), but allow the few fixed hot-path statements of config/rows.py to be prepared.
        _db.setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Covering indexes (INCLUDE) are a PostgreSQL feature; on SQLite they are plain indexes, which is fine.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# --- Cache (rate limits are shared across web processes through it) -----------------------------
CACHE_URL = env_str("CACHE_URL", "locmemcache://")
try:
    CACHES = {"default": environ.Env.cache_url_config(CACHE_URL)}
except Exception as exc:
    raise ImproperlyConfigured(f"CACHE_URL is not a valid cache URL: {exc}") from None

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve admin and Swagger UI assets without collectstatic in the demo

# --- Secrets at rest ------------------------------------------------------------------------------
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY")
FIELD_ENCRYPTION_KEY_FILE = VAR_DIR / "field_encryption.key"
if not FIELD_ENCRYPTION_KEY and FIELD_ENCRYPTION_KEY_FILE.exists():
    FIELD_ENCRYPTION_KEY = FIELD_ENCRYPTION_KEY_FILE.read_text().strip()
if not FIELD_ENCRYPTION_KEY and not DEBUG:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEY is required when DEBUG is off "
        '(generate one: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")'
    )

# --- REST framework -------------------------------------------------------------------------------
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 20, minimum=1)
API_MAX_PAGE_SIZE = 100
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.authentication.BearerJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.EnvelopePagination",
    "PAGE_SIZE": API_PAGE_SIZE,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "config.throttling.AnonRateThrottle",
        "config.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "60/min"),
        "user": env_str("API_THROTTLE_USER", "1200/min"),
        "query_editor": env_str("QUERY_EDITOR_RATE_LIMIT", "60/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
    "COERCE_DECIMAL_TO_STRING": False,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 60, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7, minimum=1)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": SECRET_KEY,
    "UPDATE_LAST_LOGIN": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Prompt Studio API",
    "DESCRIPTION": "Ask your databases questions in plain language — governed, asynchronous, tracked.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # `<id:…>` path ids (config.inputs.IdConverter): 1..2^63-1.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "format": "int64", "minimum": 1}},
    "TAGS": [
        {"name": "auth", "description": "Tokens, API keys and the current user"},
        {"name": "data-sources", "description": "Data sources, schema discovery and catalog"},
        {"name": "prompt-studio", "description": "Natural-language prompts, executions, templates, analytics"},
        {"name": "query-editor", "description": "SQL editor: execute, AI writer, saved queries, history, export"},
        {"name": "programs", "description": "Sandboxed PromptQL-style programs"},
    ],
}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
BROKER_DIR = VAR_DIR / "broker"
TASK_SOFT_TIME_LIMITS = {
    "ai": env_int("AI_TASK_SOFT_TIME_LIMIT", 120, minimum=1),
    "query": env_int("QUERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1),
    "programs": env_int("PROGRAM_TASK_SOFT_TIME_LIMIT", 120, minimum=1),
    "default": env_int("DEFAULT_TASK_SOFT_TIME_LIMIT", 600, minimum=1),
}
TASK_HARD_TIME_LIMIT_MARGIN = 30
MAX_HARD_TIME_LIMIT = max(TASK_SOFT_TIME_LIMITS.values()) + TASK_HARD_TIME_LIMIT_MARGIN

if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("in", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "in"),
        "data_folder_out": str(BROKER_DIR / "in"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # kombu polls a folder once a second by default: each queue hop of an execution waited up to
        # that long (a demo question took ~2 s for ~25 ms of work). A listing of a small folder is cheap.
        "polling_interval": env_int("CELERY_FILESYSTEM_POLL_MS", 50, minimum=10) / 1000,
    }
else:
    # Redis re-delivers an unacknowledged message after visibility_timeout: it must exceed every
    # hard time limit or a long task would be run twice while still running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": MAX_HARD_TIME_LIMIT * 2 + 60}

CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ("ai", "query", "programs", "default")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = TASK_SOFT_TIME_LIMITS["default"]
CELERY_TASK_TIME_LIMIT = TASK_SOFT_TIME_LIMITS["default"] + TASK_HARD_TIME_LIMIT_MARGIN
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Task events (received → started → succeeded/failed) are what Flower shows. Each is a broker write
# on the task's path, so workers start with them off and Flower turns them on when it runs (its
# `enable_events`, on by default); CELERY_WORKER_SEND_TASK_EVENTS=1 keeps them on regardless.
# A "sent" event would add a broker write to every execute request: off unless asked for.
CELERY_TASK_SEND_SENT_EVENT = env_bool("CELERY_TASK_SEND_SENT_EVENT", False)
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("CELERY_WORKER_SEND_TASK_EVENTS", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("CELERY_BROKER_CONNECTION_TIMEOUT", 3, minimum=1)
# A broker outage must answer the API's client quickly (503), not after minutes of retries.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- AI -----------------------------------------------------------------------------------------
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map at import
AI_DEFAULT_MODEL = env_str("AI_DEFAULT_MODEL", "builtin")
# name -> {"model": litellm model string, "api_base": optional, "api_key_env": optional}
AI_MODELS = env_json("AI_MODELS", {})
AI_REQUEST_TIMEOUT = env_int("AI_REQUEST_TIMEOUT", 60, minimum=1)

# --- Governed path limits -----------------------------------------------------------------------
QUERY_DEFAULT_ROW_CAP = env_int("QUERY_DEFAULT_ROW_CAP", 10000, minimum=1)
QUERY_DEFAULT_TIMEOUT_MS = env_int("QUERY_DEFAULT_TIMEOUT_MS", 30000, minimum=100)
# Idle connections to PostgreSQL / MySQL data sources kept per process (connectors/engines/pool.py).
# Each web process and each query worker holds up to this many per source: count them against the
# sources' max_connections. 0 turns pooling off.
SOURCE_POOL_MAX_IDLE_PER_SOURCE = env_int("SOURCE_POOL_MAX_IDLE_PER_SOURCE", 4, minimum=0)
SOURCE_POOL_MAX_IDLE = env_int("SOURCE_POOL_MAX_IDLE", 32, minimum=0)
SOURCE_POOL_IDLE_SECONDS = env_int("SOURCE_POOL_IDLE_SECONDS", 60, minimum=1)
# SQLite / DuckDB data source files must live under one of these folders (admins register paths).
DATA_SOURCE_FILE_ROOTS = [Path(p).resolve() for p in env_list("DATA_SOURCE_FILE_ROOTS", [str(VAR_DIR)])]

# --- Programs (sandboxed execute_program runs) ------------------------------------------------------
PROGRAM_WALL_CLOCK_S = env_int("PROGRAM_WALL_CLOCK_S", 30, minimum=1)
PROGRAM_CPU_S = env_int("PROGRAM_CPU_S", 10, minimum=1)
PROGRAM_MEMORY_BYTES = env_int("PROGRAM_MEMORY_BYTES", 512 * 1024**2, minimum=64 * 1024**2)
PROGRAM_OUTPUT_BYTES = env_int("PROGRAM_OUTPUT_BYTES", 1_000_000, minimum=1024)
PROGRAM_WAIT_MARGIN_S = env_int("PROGRAM_WAIT_MARGIN_S", 15, minimum=1)
PROGRAM_API_RATE = env_str("PROGRAM_API_RATE", "120/min")

# --- Ops -----------------------------------------------------------------------------------------
METRICS_TOKEN = env_str("METRICS_TOKEN")  # when set, /metrics wants "Authorization: Bearer <token>"

# --- Logging ------------------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOG_FORMAT = env_choice("LOG_FORMAT", "text" if DEBUG else "json", ("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "config.logging.ContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s exec=%(execution_id)s] %(message)s"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "LiteLLM": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

if not DEBUG:
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)

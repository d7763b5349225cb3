from django.apps import AppConfig
from django.conf import settings


class ConnectorsConfig(AppConfig):
    name = "connectors"
    verbose_name = "Data sources and governance"

    def ready(self) -> None:
        # The governed path registers the receivers that close a source's pooled connections when
        # it is edited or deleted: load it with the app, not with the first query.
        from connectors import engines, governed  # noqa: F401

        for pool in engines.source_pools():
            pool.max_idle_per_key = settings.SOURCE_POOL_MAX_IDLE_PER_SOURCE
            pool.max_idle_total = settings.SOURCE_POOL_MAX_IDLE
            pool.idle_timeout_s = float(settings.SOURCE_POOL_IDLE_SECONDS)

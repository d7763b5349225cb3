"""The SQL governance engine: pure functions over sqlglot, no Django and no database.

prepare_query validates a query against the caller's allowed catalog, rewrites it with row
policies and a row cap, and decides which output columns are masked; mask_rows applies that.
prepare_query_cached remembers its results per process (cache.py).
"""

from connectors.sqlgov.cache import cache_clear, cache_stats, prepare_query_cached
from connectors.sqlgov.engine import prepare_query
from connectors.sqlgov.errors import POLICY_VIOLATION, SQL_VALIDATION_ERROR, GovernanceError
from connectors.sqlgov.masking import mask_column, mask_rows, mask_value
from connectors.sqlgov.prepared import OutputColumn, PreparedQuery

__all__ = [
    "POLICY_VIOLATION",
    "SQL_VALIDATION_ERROR",
    "GovernanceError",
    "OutputColumn",
    "PreparedQuery",
    "cache_clear",
    "cache_stats",
    "mask_column",
    "mask_rows",
    "mask_value",
    "prepare_query",
    "prepare_query_cached",
]

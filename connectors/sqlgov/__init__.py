"""The SQL governance engine: pure functions over sqlglot, no Django and no database.

prepare_query validates a query against the caller's allowed catalog, rewrites it with row
policies and a row cap, and decides which output columns are masked; mask_rows applies that.
"""

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
    "mask_column",
    "mask_rows",
    "mask_value",
    "prepare_query",
]

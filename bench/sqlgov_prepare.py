"""Median time of prepare_query (validate + qualify + lineage + rewrite) for a 3-way join with an
aggregate over a ~12 table catalog. Run: .venv/bin/python bench/sqlgov_prepare.py"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.sqlgov import prepare_query  # noqa: E402
from connectors.types import Grants, RowPolicySpec  # noqa: E402
from tests.connectors.test_sqlgov_fixtures import crm_catalog  # noqa: E402

SQL = """
SELECT u.region, p.title, SUM(o.amount) AS total, COUNT(DISTINCT u.email) AS buyers
FROM users u
JOIN orders o ON o.user_id = u.id
JOIN products p ON p.id = o.product_id
WHERE o.amount > 10
GROUP BY u.region, p.title
ORDER BY total DESC
LIMIT 50
"""


def main(runs: int = 500) -> None:
    catalog = crm_catalog()
    policy = RowPolicySpec("crm", "public", "users", "region = {{member.region}}", name="region")
    kwargs = dict(
        sources=[catalog],
        allowed_schemas={"crm": {"public"}},
        policies=[policy],
        bindings={"member.region": "south"},
        row_cap=1000,
        grants=Grants(),
    )
    prepare_query(SQL, **kwargs)  # warm the catalog cache and the policy template cache
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        prepare_query(SQL, **kwargs)
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    print(
        f"prepare_query over {runs} runs: median {statistics.median(timings):.2f} ms, "
        f"p95 {timings[int(runs * 0.95)]:.2f} ms, tables in catalog: {len(catalog.tables)}"
    )
    start = time.perf_counter()
    prepare_query(SQL, **{**kwargs, "sources": [crm_catalog()]})
    print(f"first call on a new catalog (builds its schema): {(time.perf_counter() - start) * 1000:.2f} ms")


if __name__ == "__main__":
    main()

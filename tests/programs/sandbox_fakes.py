"""A plain-Python HostServices for the sandbox tests: the edge of the world, as seen from the sandbox."""

from typing import Any


class FakeHost:
    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        self.rows = rows if rows is not None else [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}]
        self.sql: list[str] = []
        self.primitive_calls: list[tuple[str, dict[str, Any]]] = []

    def run_sql(self, sql: str) -> list[dict[str, Any]]:
        self.sql.append(sql)
        if "missing_table" in sql:
            raise RuntimeError('relation "missing_table" does not exist')
        return self.rows

    def primitive(self, name: str, kwargs: dict[str, Any]) -> tuple[object, dict[str, Any]]:
        self.primitive_calls.append((name, kwargs))
        usage = {"provider": "fake", "model": f"fake-{name}", "input_tokens": 10, "output_tokens": 2}
        if name == "classify":
            return [kwargs["categories"][0] for _ in kwargs["inputs_to_classify"]], usage
        if name == "extract":
            return {"field": "value"}, usage
        return f"{name}: {kwargs['input']}", usage

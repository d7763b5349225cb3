"""Which output columns derive from PII / PHI, and whether masked values are used where they leak.

A walk over the qualified AST, scope by scope: a column is sensitive when any catalog column it
reads (through expressions, CTEs, subqueries, set operations) is flagged. COUNT over plain
columns only counts rows, so it is not sensitive; every other aggregate still carries values.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from connectors.sqlgov.catalog import CatalogIndex, table_key
from connectors.sqlgov.errors import GovernanceError
from connectors.sqlgov.prepared import OutputColumn
from connectors.types import Grants

# Strictest last: when several sensitive columns feed one output, the strictest style wins.
STYLE_ORDER = ("partial", "full", "hash", "null")


@dataclass(frozen=True)
class Sensitivity:
    pii: bool = False
    phi: bool = False
    style_rank: int = -1
    origin: str = ""  # a catalog column it derives from, for messages

    @property
    def sensitive(self) -> bool:
        return self.pii or self.phi

    def merge(self, other: Sensitivity) -> Sensitivity:
        if not other.sensitive:
            return self
        if not self.sensitive:
            return other
        return Sensitivity(
            pii=self.pii or other.pii,
            phi=self.phi or other.phi,
            style_rank=max(self.style_rank, other.style_rank),
            origin=self.origin or other.origin,
        )

    @property
    def label(self) -> str | None:
        return "phi" if self.phi else "pii" if self.pii else None

    @property
    def style(self) -> str:
        return STYLE_ORDER[self.style_rank] if self.style_rank >= 0 else "full"


NOT_SENSITIVE = Sensitivity()

_USAGE_CLAUSES = (
    ("where", "WHERE"),
    ("group", "GROUP BY"),
    ("having", "HAVING"),
    ("order", "ORDER BY"),
    ("qualify", "QUALIFY"),
    ("limit", "LIMIT"),
    ("offset", "OFFSET"),
)


class LineageAnalyzer:
    def __init__(self, *, index: CatalogIndex, grants: Grants) -> None:
        self.index = index
        self.grants = grants
        self._outputs: dict[int, dict[str, Sensitivity]] = {}
        self._ordered: dict[int, list[tuple[str, Sensitivity]]] = {}
        self._scope_of_query: dict[int, Scope] = {}
        self._in_progress: set[int] = set()

    def masks(self, sensitivity: Sensitivity) -> bool:
        return (sensitivity.pii and not self.grants.pii) or (sensitivity.phi and not self.grants.phi)

    def analyze(self, tree: exp.Expr) -> list[OutputColumn]:
        """Output columns of `tree` for this caller; raises when a masked column is used to filter,
        join, group or order."""
        scopes = traverse_scope(tree)
        self._scope_of_query = {id(s.expression): s for s in scopes}
        check_usage = not (self.grants.pii and self.grants.phi)
        for scope in scopes:
            self._scope_outputs(scope)
            if check_usage:
                self._check_usage(scope)
        root = scopes[-1]
        for name, sensitivity in self._ordered[id(root)]:
            if name == "*" and sensitivity.sensitive:
                # Its output names are only known at run time, so masking by name cannot work.
                raise GovernanceError.invalid(
                    "unknown_column", "SELECT * could not be expanded from the catalog here; list the columns."
                )
        return [
            OutputColumn(name=name, masked=self.masks(s), sensitivity=s.label, masking_style=s.style)
            for name, s in self._ordered[id(root)]
        ]

    # -- outputs of a scope -------------------------------------------------------------------

    def _scope_outputs(self, scope: Scope) -> dict[str, Sensitivity]:
        key = id(scope)
        if key in self._outputs:
            return self._outputs[key]
        if key in self._in_progress:  # a recursive CTE reading itself: its base case decides
            return {}
        self._in_progress.add(key)
        expression = scope.expression
        ordered: list[tuple[str, Sensitivity]]
        if isinstance(expression, exp.SetOperation) and scope.set_operation_scopes:
            branches = [self._ordered_outputs(s) for s in scope.set_operation_scopes]
            ordered = []
            for position, (name, sensitivity) in enumerate(branches[0]):
                for other in branches[1:]:
                    if position < len(other):
                        sensitivity = sensitivity.merge(other[position][1])
                ordered.append((name, sensitivity))
        elif isinstance(expression, exp.Select):
            ordered = [(select.alias_or_name, self._expression(select, scope)) for select in expression.selects]
        else:  # UNNEST, VALUES and other table functions: everything in them feeds every column
            ordered = [("*", self._expression(expression, scope))]
        self._in_progress.discard(key)
        self._ordered[key] = ordered
        outputs: dict[str, Sensitivity] = {}
        for name, sensitivity in ordered:
            outputs[name] = outputs.get(name, NOT_SENSITIVE).merge(sensitivity)
        self._outputs[key] = outputs
        return outputs

    def _ordered_outputs(self, scope: Scope) -> list[tuple[str, Sensitivity]]:
        self._scope_outputs(scope)
        return self._ordered.get(id(scope), [])

    def _scope_column(self, scope: Scope, name: str) -> Sensitivity:
        outputs = self._scope_outputs(scope)
        if name in outputs:
            return outputs[name]
        lowered = name.lower()
        for output_name, sensitivity in outputs.items():
            if output_name.lower() == lowered:
                return sensitivity
        # Unknown name (a table function's column, a renamed CTE column): fail closed.
        result = NOT_SENSITIVE
        for sensitivity in outputs.values():
            result = result.merge(sensitivity)
        return result

    # -- expressions --------------------------------------------------------------------------

    def _expression(self, node: exp.Expr, scope: Scope) -> Sensitivity:
        result = NOT_SENSITIVE
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, exp.Column):
                result = result.merge(self._column(current, scope))
                continue
            if isinstance(current, exp.TableColumn):  # a whole-row reference: row_to_json(u)
                result = result.merge(self._whole_source(current.name, scope))
                continue
            if current is not node and isinstance(current, exp.Query):
                nested = self._scope_of_query.get(id(current))
                if nested is not None:
                    for sensitivity in self._scope_outputs(nested).values():
                        result = result.merge(sensitivity)
                    continue
            if isinstance(current, exp.Count) and _counts_rows_only(current):
                continue
            if isinstance(current, exp.Star):  # a star the catalog could not expand
                result = result.merge(self._all_sources(scope))
                continue
            stack.extend(current.iter_expressions())
        return result

    def _column(self, column: exp.Column, scope: Scope) -> Sensitivity:
        table = column.table
        if isinstance(column.this, exp.Star):  # t.* inside an expression: the whole row
            return self._whole_source(table, scope) if table else self._all_sources(scope)
        if not table:
            # A projection alias (ORDER BY total), or a whole-row reference (row_to_json(u)).
            return self._projection_alias(column.name, scope).merge(self._whole_source(column.name, scope))
        source = self._find_source(table, scope)
        if isinstance(source, Scope):
            return self._scope_column(source, column.name)
        if isinstance(source, exp.Table):
            return self._table_column(source, column.name)
        return NOT_SENSITIVE

    def _find_source(self, name: str, scope: Scope) -> exp.Table | Scope | None:
        current: Scope | None = scope
        while current is not None:  # correlated references reach into enclosing scopes
            source = current.sources.get(name)
            if source is not None:
                return source
            current = current.parent
        return None

    def _whole_source(self, name: str, scope: Scope) -> Sensitivity:
        source = self._find_source(name, scope)
        result = NOT_SENSITIVE
        if isinstance(source, Scope):
            for sensitivity in self._scope_outputs(source).values():
                result = result.merge(sensitivity)
        elif isinstance(source, exp.Table) and (key := table_key(source)) is not None:
            for column in self.index.tables[key][1].columns:
                result = result.merge(self._table_column(source, column.name))
        return result

    def _all_sources(self, scope: Scope) -> Sensitivity:
        result = NOT_SENSITIVE
        for name in scope.sources:
            result = result.merge(self._whole_source(name, scope))
        return result

    def _projection_alias(self, name: str, scope: Scope) -> Sensitivity:
        """An unqualified column left by qualify refers to a projection alias (ORDER BY total)."""
        if id(scope) in self._in_progress:
            return NOT_SENSITIVE
        return self._scope_outputs(scope).get(name, NOT_SENSITIVE)

    def _table_column(self, table: exp.Table, name: str) -> Sensitivity:
        key = table_key(table)
        if key is None:
            return NOT_SENSITIVE
        column = self.index.column(key, name)
        if column is None or not (column.pii or column.phi):
            return NOT_SENSITIVE
        style = column.masking_style if column.masking_style in STYLE_ORDER else "null"
        return Sensitivity(
            pii=column.pii, phi=column.phi, style_rank=STYLE_ORDER.index(style), origin=f"{table.name}.{column.name}"
        )

    # -- where masked values would leak -------------------------------------------------------

    def _check_usage(self, scope: Scope) -> None:
        expression = scope.expression
        clauses: list[tuple[str, exp.Expr]] = []
        for arg, label in _USAGE_CLAUSES:
            if clause := expression.args.get(arg):
                clauses.append((label, clause))
        for join in expression.args.get("joins") or []:
            if on := join.args.get("on"):
                clauses.append(("JOIN ON", on))
            for identifier in join.args.get("using") or []:
                self._check_using(identifier, scope)
        distinct = expression.args.get("distinct")
        if isinstance(distinct, exp.Distinct) and distinct.args.get("on"):
            clauses.append(("DISTINCT ON", distinct.args["on"]))
        for window in scope.find_all(exp.Window):
            for part in window.args.get("partition_by") or []:
                clauses.append(("PARTITION BY", part))
            if order := window.args.get("order"):
                clauses.append(("window ORDER BY", order))
        group = expression.args.get("group")
        if isinstance(group, exp.Group) and group.args.get("all"):  # DuckDB GROUP BY ALL: the plain projections
            clauses += [("GROUP BY ALL", p) for p in expression.expressions if not p.find(exp.AggFunc)]
        for label, clause in clauses:
            sensitivity = self._expression(clause, scope)
            if self.masks(sensitivity):
                raise self._violation(label, sensitivity)

    def _check_using(self, identifier: exp.Expr, scope: Scope) -> None:
        for source in scope.selected_sources.values():
            node = source[1]
            if isinstance(node, Scope):
                sensitivity = self._scope_column(node, identifier.name)
            else:
                sensitivity = self._table_column(node, identifier.name)
            if self.masks(sensitivity):
                raise self._violation("JOIN USING", sensitivity)

    def _violation(self, label: str, sensitivity: Sensitivity) -> GovernanceError:
        kind = "/".join(k for k, flag in (("PII", sensitivity.pii), ("PHI", sensitivity.phi)) if flag)
        return GovernanceError.violation(
            "masked_column_usage",
            f"The column '{sensitivity.origin}' is {kind} and masked for you; it cannot be used in {label}.",
        )


def _counts_rows_only(count: exp.Count) -> bool:
    """COUNT(*), COUNT(col), COUNT(DISTINCT col[, col]): the value is a row count, not data."""
    argument = count.this
    if argument is None or isinstance(argument, (exp.Star, exp.Column)):
        return True
    if isinstance(argument, exp.Distinct):
        return all(isinstance(e, (exp.Column, exp.Star)) for e in argument.expressions)
    return False

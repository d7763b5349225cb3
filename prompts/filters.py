"""django-filter sets for history and saved prompts; invalid values are 400s naming the filter."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import django_filters
from django import forms
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

from analytics.selectors import parse_moment
from config.inputs import ID_MAX
from prompts.models import ExecutionStatus, Prompt, PromptExecution, PromptStatus

TRUE_VALUES = {"true", "1", "yes", "on"}
FALSE_VALUES = {"false", "0", "no", "off"}


def json_list_contains(field: str, value: str) -> Q:
    """`value` is an element of the JSON list `field`, on PostgreSQL (containment) and SQLite (text match)."""
    if connection.features.supports_json_field_contains:
        return Q(**{f"{field}__contains": [value]})
    return Q(**{f"{field}__icontains": json.dumps(value)})


class StrictBooleanField(forms.Field):
    """true/false (1/0, yes/no); anything else is an error, not silently "no filter"."""

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in TRUE_VALUES:
            return True
        if text in FALSE_VALUES:
            return False
        raise forms.ValidationError(f"Must be true or false, got {value!r}.")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class IdFilter(django_filters.Filter):
    """An id in 1..ID_MAX: "1.5", "0" or an id no column can hold is an error naming the filter."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, min_value=1, max_value=ID_MAX, **kwargs)


class MomentField(forms.CharField):
    """An ISO 8601 datetime or date; a bare date covers the whole day (`end` picks its last instant)."""

    def __init__(self, *args: Any, end: bool = False, **kwargs: Any) -> None:
        self.end = end
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> datetime | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_moment(text, end=self.end)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class MomentFilter(django_filters.Filter):
    field_class = MomentField


class HistoryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ExecutionStatus.choices)
    data_source_id = IdFilter(method="filter_data_source")
    ai_model = django_filters.CharFilter(field_name="ai_model")
    model = django_filters.CharFilter(field_name="ai_model")
    tag = django_filters.CharFilter(method="filter_tag")
    q = django_filters.CharFilter(method="filter_q")
    saved = StrictBooleanFilter(field_name="prompt", lookup_expr="isnull", exclude=True)
    error_code = django_filters.CharFilter(field_name="error_code")
    template_id = IdFilter(field_name="template_id")

    class Meta:
        model = PromptExecution
        fields: list[str] = []

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        # `from` is a Python keyword: declare the date range filters by name.
        self.filters["from"] = MomentFilter(field_name="created_at", lookup_expr="gte")
        self.filters["to"] = MomentFilter(field_name="created_at", lookup_expr="lte", end=True)

    def filter_data_source(self, queryset: QuerySet, name: str, value: int) -> QuerySet:
        # EXISTS rather than a join: a run over several sources stays one row, with no DISTINCT
        # (which would defeat the history index and sort the caller's whole history).
        through = PromptExecution.data_sources.through
        return queryset.filter(Exists(through.objects.filter(promptexecution_id=OuterRef("pk"), datasource_id=value)))

    def filter_tag(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(json_list_contains("tags", value))

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(prompt_text__icontains=value) | Q(name__icontains=value))


class PromptFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=PromptStatus.choices)
    tag = django_filters.CharFilter(method="filter_tag")
    q = django_filters.CharFilter(method="filter_q")
    ordering = django_filters.OrderingFilter(
        fields=(
            ("created_at", "created_at"),
            ("name", "name"),
            ("last_executed_at", "last_executed_at"),
            ("execution_count", "execution_count"),
        )
    )

    class Meta:
        model = Prompt
        fields: list[str] = []

    def filter_tag(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(json_list_contains("tags", value))

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(prompt_text__icontains=value) | Q(name__icontains=value))

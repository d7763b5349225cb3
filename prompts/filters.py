"""django-filter sets for history and saved prompts; invalid values are 400s naming the filter."""

from __future__ import annotations

import json

import django_filters
from django.db import connection
from django.db.models import Q, QuerySet

from prompts.models import ExecutionStatus, Prompt, PromptExecution, PromptStatus


def json_list_contains(field: str, value: str) -> Q:
    """`value` is an element of the JSON list `field`, on PostgreSQL (containment) and SQLite (text match)."""
    if connection.features.supports_json_field_contains:
        return Q(**{f"{field}__contains": [value]})
    return Q(**{f"{field}__icontains": json.dumps(value)})


class HistoryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ExecutionStatus.choices)
    data_source_id = django_filters.NumberFilter(field_name="data_sources__id")
    ai_model = django_filters.CharFilter(field_name="ai_model")
    model = django_filters.CharFilter(field_name="ai_model")
    tag = django_filters.CharFilter(method="filter_tag")
    q = django_filters.CharFilter(method="filter_q")
    saved = django_filters.BooleanFilter(field_name="prompt", lookup_expr="isnull", exclude=True)
    error_code = django_filters.CharFilter(field_name="error_code")
    template_id = django_filters.NumberFilter(field_name="template_id")

    class Meta:
        model = PromptExecution
        fields: list[str] = []

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        # `from` is a Python keyword: declare the date range filters by name.
        self.filters["from"] = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
        self.filters["to"] = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")

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

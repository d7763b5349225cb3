"""Page-number pagination. Bad `page` / `page_size` values are 400s naming the parameter."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from config.inputs import ID_MAX, int_param
from config.responses import envelope


def _positive_int(request: Request, name: str, default: int, maximum: int = ID_MAX) -> int:
    value = int_param(request, name, maximum=maximum)
    return default if value is None else value


class PageWindow:
    """The requested page of a queryset or list, validated against its size."""

    def __init__(self, request: Request, total: int) -> None:
        self.page_size = _positive_int(request, "page_size", settings.API_PAGE_SIZE, settings.API_MAX_PAGE_SIZE)
        self.page = _positive_int(request, "page", 1)
        self.total = total
        self.total_pages = max(1, math.ceil(total / self.page_size))
        if self.page > self.total_pages:
            raise ValidationError({"page": [f"Page {self.page} does not exist; there are {self.total_pages}."]})
        self.offset = (self.page - 1) * self.page_size

    def as_dict(self) -> dict[str, int]:
        return {
            "page": self.page,
            "page_size": self.page_size,
            "total": self.total,
            "total_pages": self.total_pages,
        }


class EnvelopePagination(BasePagination):
    """`data: {"items": [...], "pagination": {page, page_size, total, total_pages}}`."""

    window: PageWindow

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        total = queryset.count() if hasattr(queryset, "count") and not isinstance(queryset, list) else len(queryset)
        self.window = PageWindow(request, total)
        return list(queryset[self.window.offset : self.window.offset + self.window.page_size])

    def get_paginated_response(self, data: Any, message: str = "OK") -> Response:
        return envelope({"items": data, "pagination": self.window.as_dict()}, message)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "success": {"type": "boolean"},
                "message": {"type": "string"},
                "data": {
                    "type": "object",
                    "properties": {
                        "items": schema,
                        "pagination": {
                            "type": "object",
                            "properties": {
                                k: {"type": "integer"} for k in ("page", "page_size", "total", "total_pages")
                            },
                        },
                    },
                },
            },
        }


class HeaderPagination(BasePagination):
    """Query editor lists: a bare JSON array, pagination in X-Pagination-* headers."""

    window: PageWindow

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        total = queryset.count() if hasattr(queryset, "count") and not isinstance(queryset, list) else len(queryset)
        self.window = PageWindow(request, total)
        return list(queryset[self.window.offset : self.window.offset + self.window.page_size])

    def get_paginated_response(self, data: Any) -> Response:
        w = self.window
        return Response(
            data,
            headers={
                "X-Pagination-Total": str(w.total),
                "X-Pagination-Page": str(w.page),
                "X-Pagination-Page-Size": str(w.page_size),
                "X-Pagination-Total-Pages": str(w.total_pages),
            },
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return schema

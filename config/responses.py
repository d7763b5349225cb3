"""The success envelope of DESIGN.md: {"success": true, "data": …, "message": "…"}."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response


def envelope(data: Any, message: str = "OK", *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response({"success": True, "data": data, "message": message}, status=status, headers=headers)

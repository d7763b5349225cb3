"""Bench-only URLconf for bench/pipeline.py: the product's URLs plus two floor views.

- POST /bench/insert     one INSERT, nothing else (the floor for execute);
- GET  /bench/read/<id>  one indexed read of an execution row (the floor for the status poll).
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def insert_view(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_floor (payload) VALUES (%s) RETURNING id", [request.body.decode()[:200]])
        (row_id,) = cursor.fetchone()
    return JsonResponse({"success": True, "data": {"id": row_id}})


def read_view(request: HttpRequest, row_id: int) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, status, progress_percentage FROM prompts_promptexecution WHERE id = %s", [row_id])
        found = cursor.fetchone()
    return JsonResponse({"success": True, "data": {"id": found[0], "status": found[1], "progress": found[2]}})


urlpatterns = [
    path("bench/insert", insert_view),
    path("bench/read/<int:row_id>", read_view),
    path("", include("config.urls")),
]

"""A view that logs, behind the project's middleware: what a request's log lines carry."""

import logging

from django.http import HttpRequest, HttpResponse
from django.urls import path

logger = logging.getLogger("prompt_studio.test_ops")


def logs_a_line(request: HttpRequest) -> HttpResponse:
    logger.info("handling the request")
    return HttpResponse("ok")


urlpatterns = [path("logs", logs_a_line)]

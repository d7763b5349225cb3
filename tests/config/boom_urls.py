"""A URLconf for error-handling tests: a view that fails unexpectedly."""

from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView


class BoomView(APIView):
    def get(self, request) -> Response:
        raise RuntimeError("secret internal detail: password=hunter2")


urlpatterns = [path("boom", BoomView.as_view()), path("api/v1/", include("accounts.urls"))]

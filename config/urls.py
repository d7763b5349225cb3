from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health
from config.metrics import metrics_view

urlpatterns = [
    path("api/v1/", include("prompts.urls")),  # first: the polled status read resolves on the first try
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "docs",
        SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="docs",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("connectors.urls")),
    path("api/v1/", include("programs.urls")),
    path("api/v1/spaces/<slug:slug>/query/", include("query_editor.urls")),
    path("api/v1/", include("templates_app.urls")),
]

handler404 = "config.exceptions.json_404"
handler500 = "config.exceptions.json_500"

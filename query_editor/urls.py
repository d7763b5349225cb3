"""Mounted at api/v1/spaces/<slug:slug>/query/ (config/urls.py)."""

from config.api import both
from query_editor import api

urlpatterns = [
    *both("execute", api.ExecuteView.as_view(), "query-execute"),
    *both("connectors", api.ConnectorsView.as_view(), "query-connectors"),
    *both("autocomplete", api.AutocompleteView.as_view(), "query-autocomplete"),
    *both("ai/generate", api.AIGenerateView.as_view(), "query-ai-generate"),
    *both("ai/explain", api.AIExplainView.as_view(), "query-ai-explain"),
    *both("ai/refine", api.AIRefineView.as_view(), "query-ai-refine"),
    *both("saved", api.SavedListView.as_view(), "query-saved"),
    *both("saved/<str:query_id>", api.SavedDetailView.as_view(), "query-saved-detail"),
    *both("drafts", api.DraftsView.as_view(), "query-drafts"),
    *both("history", api.HistoryView.as_view(), "query-history"),
    *both("history/admin", api.AdminHistoryView.as_view(), "query-history-admin"),
    *both("export", api.ExportView.as_view(), "query-export"),
]

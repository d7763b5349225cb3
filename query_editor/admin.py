from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from query_editor.models import QueryHistory, SavedQuery, TabDraft


@admin.register(SavedQuery)
class SavedQueryAdmin(admin.ModelAdmin):
    list_display = ["title", "workspace", "owner", "data_source", "is_shared", "updated_at"]
    list_filter = ["is_shared", "workspace"]
    search_fields = ["title", "sql_text", "owner__username", "owner__email"]
    raw_id_fields = ["owner", "data_source"]
    readonly_fields = ["id", "created_at", "updated_at"]


@admin.register(TabDraft)
class TabDraftAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "active_tab_id", "updated_at"]
    search_fields = ["user__username", "user__email"]
    readonly_fields = ["id", "workspace", "user", "tabs", "active_tab_id", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(QueryHistory)
class QueryHistoryAdmin(admin.ModelAdmin):
    """An audit trail: readable, never written by hand."""

    list_display = ["executed_at", "user", "workspace", "data_source", "kind", "status", "row_count", "execution_ms"]
    list_filter = ["status", "kind", "workspace"]
    search_fields = ["sql_text", "user__username", "user__email", "error_message"]
    date_hierarchy = "executed_at"
    list_select_related = ["user", "workspace", "data_source"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from programs.models import ProgramRun


@admin.register(ProgramRun)
class ProgramRunAdmin(admin.ModelAdmin):
    """Read-only: runs are a record of what programs did, written only by the API and the worker."""

    list_display = ("id", "workspace", "user", "status", "short_error", "created_at", "total_ms")
    list_filter = ("status", "workspace")
    search_fields = ("code", "error", "user__username")
    date_hierarchy = "created_at"
    list_select_related = ("workspace", "workspace__organization", "user")
    exclude = ("secrets_encrypted",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in ProgramRun._meta.fields if f.name != "secrets_encrypted"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="error")
    def short_error(self, obj: ProgramRun) -> str:
        return (obj.error or "")[:80]

    @admin.display(description="total ms")
    def total_ms(self, obj: ProgramRun) -> Any:
        return (obj.timings or {}).get("total_ms")

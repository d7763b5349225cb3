from django.contrib import admin

from workers.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["queue", "hostname", "seen_at", "beats"]
    list_filter = ["queue"]
    readonly_fields = ["queue", "hostname", "seen_at", "beats"]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import User
from django.http import HttpRequest

from accounts.audit import audit_record
from accounts.models import ApiKey, AuditLog, Membership, Organization, Workspace
from accounts.services import api_key_create, api_key_revoke
from config.admin_scoping import AuditedAdmin, OrgScopedAdmin, ReadOnlyAdmin, admin_organization_ids


class WorkspaceInline(admin.TabularInline):
    model = Workspace
    extra = 0
    fields = ["name", "slug", "row_cap", "statement_timeout_ms"]
    show_change_link = True


@admin.register(Organization)
class OrganizationAdmin(OrgScopedAdmin):
    org_path = "pk"

    list_display = ["name", "slug", "is_personal", "created_at"]
    search_fields = ["name", "slug"]
    list_filter = ["is_personal"]
    inlines = [WorkspaceInline]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "pii_access", "phi_access", "attributes"]


@admin.register(Workspace)
class WorkspaceAdmin(AuditedAdmin):
    """Limits (row cap, statement timeout) and features such as {"ai.query_writer_enabled": false}."""

    org_path = "organization"
    list_display = ["name", "slug", "organization", "row_cap", "statement_timeout_ms", "features", "created_at"]
    search_fields = ["name", "slug", "organization__name"]
    list_filter = ["organization"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(AuditedAdmin):
    """Roles and PII/PHI grants: every change is audited."""

    list_display = ["user", "workspace", "role", "pii_access", "phi_access"]
    list_filter = ["role", "pii_access", "phi_access", "workspace"]
    search_fields = ["user__username", "user__email", "workspace__slug"]
    autocomplete_fields = ["user", "workspace"]


@admin.register(ApiKey)
class ApiKeyAdmin(OrgScopedAdmin):
    list_display = ["name", "prefix", "workspace", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["workspace"]
    search_fields = ["name", "prefix", "created_by__username"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["name", "workspace", "created_by", "prefix", "created_at", "last_used_at", "revoked_at"]
    autocomplete_fields = ["workspace", "created_by"]
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:  # noqa: ANN001
        if change:
            super().save_model(request, obj, form, change)
            return
        # Created through the service so the secret is generated, hashed, and shown exactly once.
        key, token = api_key_create(workspace=obj.workspace, user=obj.created_by, name=obj.name)
        audit_record(
            actor=request.user, action="api_key.create", obj=key, after={"name": key.name, "prefix": key.prefix}
        )
        obj.pk = key.pk
        obj.prefix, obj.key_hash, obj.created_at = key.prefix, key.key_hash, key.created_at
        messages.warning(request, f"API key created. Copy it now, it will not be shown again: {token}")

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset) -> None:  # noqa: ANN001
        for key in queryset:
            api_key_revoke(key=key)
            audit_record(
                actor=request.user, action="api_key.revoke", obj=key, after={"revoked_at": str(key.revoked_at)}
            )
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    org_path = "organization"
    list_display = ["created_at", "actor", "action", "object_type", "object_repr", "workspace"]
    list_filter = ["action", "object_type", "workspace"]
    search_fields = ["object_repr", "action", "actor__username", "request_id"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "created_at",
        "actor",
        "organization",
        "workspace",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "before",
        "after",
        "request_id",
    ]


admin.site.unregister(User)


@admin.register(User)
class ScopedUserAdmin(DjangoUserAdmin):
    """Superusers manage every user. An organization's admins may look users of their organizations up (for
    memberships, access rules and keys) but not change them: a user can belong to several organizations."""

    def get_queryset(self, request: HttpRequest):  # noqa: ANN201
        qs = super().get_queryset(request)
        org_ids = admin_organization_ids(request)
        if org_ids is None:
            return qs
        return qs.filter(memberships__workspace__organization_id__in=org_ids).distinct()

    def _operator(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and (user.is_superuser or admin_organization_ids(request)))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._operator(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return self._operator(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return request.user.is_superuser

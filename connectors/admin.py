"""Governance for operators: data sources with their catalog, access rules, row policies (with a
"preview as user" tool), column classification. Every change is audited."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from accounts.audit import audit_record
from accounts.models import Membership
from config.admin_scoping import AuditedAdmin, admin_organization_ids
from config.errors import DomainError
from connectors.crypto import encrypt
from connectors.discovery import discovery_run
from connectors.governed import GovernedRequest, governed_execute
from connectors.models import CatalogColumn, CatalogTable, DataSource, RowPolicy, SourceAccess
from connectors.selectors import default_schema


class DataSourceForm(forms.ModelForm):
    new_password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored password. It is never shown.",
    )

    class Meta:
        model = DataSource
        fields = [
            "workspace",
            "name",
            "alias",
            "connector_type",
            "source_system_name",
            "description",
            "host",
            "port",
            "database",
            "username",
            "path",
            "options",
            "is_active",
            "statement_timeout_ms",
            "row_cap",
            "created_by",
            "deleted_at",
        ]


class SourceAccessInline(admin.TabularInline):
    model = SourceAccess
    extra = 0
    autocomplete_fields = ["user"]


class CatalogTableInline(admin.TabularInline):
    model = CatalogTable
    extra = 0
    fields = ["schema_name", "name", "kind", "row_estimate", "description"]
    readonly_fields = ["schema_name", "name", "kind", "row_estimate"]
    show_change_link = True
    can_delete = False


@admin.register(DataSource)
class DataSourceAdmin(AuditedAdmin):
    form = DataSourceForm
    list_display = [
        "name",
        "alias",
        "connector_type",
        "workspace",
        "is_active",
        "discovery_status",
        "discovered_at",
        "deleted_at",
    ]
    list_filter = ["connector_type", "is_active", "discovery_status", "workspace"]
    search_fields = ["name", "alias", "host", "database"]
    readonly_fields = [
        "uuid",
        "discovery_status",
        "discovery_error",
        "discovered_at",
        "discovery_changes",
        "catalog_version",
        "created_at",
        "updated_at",
    ]
    inlines = [SourceAccessInline, CatalogTableInline]
    actions = ["rediscover"]

    def save_model(self, request: HttpRequest, obj: DataSource, form: Any, change: bool) -> None:
        if form.cleaned_data.get("new_password"):
            obj.password_encrypted = encrypt(form.cleaned_data["new_password"])
        super().save_model(request, obj, form, change)

    @admin.action(description="Re-discover schema")
    def rediscover(self, request: HttpRequest, queryset: Any) -> None:
        for source in queryset:
            result = discovery_run(source_id=source.pk)
            audit_record(
                actor=request.user,
                action="data_source.discover",
                obj=result,
                after={"status": result.discovery_status, "changes": result.discovery_changes},
            )
            level = messages.SUCCESS if result.discovery_status == "succeeded" else messages.ERROR
            self.message_user(request, f"{source}: {result.discovery_status} {result.discovery_error}", level)


@admin.register(CatalogColumn)
class CatalogColumnAdmin(AuditedAdmin):
    """Classification in bulk: PII/PHI flags, masking style and descriptions are editable in the list."""

    org_path = "table__data_source__workspace__organization"
    list_display = ["name", "table", "data_type", "pii", "phi", "masking_style", "description"]
    list_editable = ["pii", "phi", "masking_style", "description"]
    list_filter = ["pii", "phi", "masking_style", "table__data_source"]
    search_fields = ["name", "table__name"]
    list_per_page = 100
    readonly_fields = [
        "table",
        "name",
        "ordinal",
        "data_type",
        "nullable",
        "is_primary_key",
        "fk_schema",
        "fk_table",
        "fk_column",
        "sample_values",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # columns come from discovery


class CatalogColumnInline(admin.TabularInline):
    model = CatalogColumn
    extra = 0
    fields = ["name", "data_type", "pii", "phi", "masking_style", "description"]
    readonly_fields = ["name", "data_type"]
    can_delete = False


@admin.register(CatalogTable)
class CatalogTableAdmin(AuditedAdmin):
    org_path = "data_source__workspace__organization"
    list_display = ["name", "schema_name", "data_source", "kind", "row_estimate"]
    list_filter = ["data_source", "kind"]
    search_fields = ["name", "schema_name"]
    inlines = [CatalogColumnInline]
    readonly_fields = ["data_source", "schema_name", "name", "kind", "row_estimate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class PreviewForm(forms.Form):
    member = forms.ModelChoiceField(queryset=Membership.objects.none(), help_text="Whose eyes to look through")
    data_source = forms.ModelChoiceField(queryset=DataSource.objects.none())
    table = forms.CharField(help_text="Table name, or schema.table")
    limit = forms.IntegerField(min_value=1, max_value=100, initial=20)

    def __init__(self, *args: Any, org_ids: list[int] | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        members = Membership.objects.select_related("user", "workspace")
        sources = DataSource.objects.alive()
        if org_ids is not None:
            members = members.filter(workspace__organization_id__in=org_ids)
            sources = sources.filter(workspace__organization_id__in=org_ids)
        self.fields["member"].queryset = members
        self.fields["data_source"].queryset = sources


@admin.register(RowPolicy)
class RowPolicyAdmin(AuditedAdmin):
    org_path = "data_source__workspace__organization"
    list_display = ["name", "data_source", "table_name", "predicate", "roles", "is_active"]
    list_filter = ["is_active", "data_source"]
    search_fields = ["name", "table_name", "predicate"]
    filter_horizontal = ["users"]
    change_list_template = "admin/connectors/rowpolicy/change_list.html"

    def get_urls(self) -> list:
        return [
            path("preview/", self.admin_site.admin_view(self.preview_view), name="connectors_rowpolicy_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """Pick a member and a table: see the SQL rewrite and the first rows they would get."""
        if not self._operator(request):
            return HttpResponse(status=403)
        org_ids = admin_organization_ids(request)
        form = PreviewForm(request.POST or None, org_ids=org_ids)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Preview as user",
            "opts": self.model._meta,
        }
        if request.method == "POST" and form.is_valid():
            member, source = form.cleaned_data["member"], form.cleaned_data["data_source"]
            table = form.cleaned_data["table"].strip()
            if member.workspace_id != source.workspace_id:
                form.add_error("data_source", "The member is not in this data source's workspace.")
            else:
                qualified = table if "." in table else f"{default_schema(source)}.{table}"
                request_ = GovernedRequest(
                    membership=member,
                    sources=[source],
                    sql=f"SELECT * FROM {qualified}",
                    purpose="preview",
                    row_limit=form.cleaned_data["limit"],
                )
                try:
                    result = governed_execute(request_)
                    context.update(
                        rewritten_sql=result.sql_executed,
                        result=result,
                        columns=[c.name for c in result.columns],
                        rows=[[row[c.name] for c in result.columns] for row in result.rows],
                    )
                except DomainError as exc:
                    context["error"] = f"{exc.code}: {exc.message}"
        return TemplateResponse(request, "admin/connectors/rowpolicy/preview.html", context)


@admin.register(SourceAccess)
class SourceAccessAdmin(AuditedAdmin):
    org_path = "data_source__workspace__organization"
    list_display = ["data_source", "role", "user"]
    list_filter = ["role", "data_source"]

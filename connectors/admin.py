from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from connectors.crypto import encrypt
from connectors.discovery import discovery_run
from connectors.models import CatalogColumn, CatalogTable, DataSource, RowPolicy, SourceAccess


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
class DataSourceAdmin(admin.ModelAdmin):
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

    def save_model(self, request: HttpRequest, obj: DataSource, form, change: bool) -> None:  # noqa: ANN001
        if form.cleaned_data.get("new_password"):
            obj.password_encrypted = encrypt(form.cleaned_data["new_password"])
        super().save_model(request, obj, form, change)

    @admin.action(description="Re-discover schema")
    def rediscover(self, request: HttpRequest, queryset) -> None:  # noqa: ANN001
        for source in queryset:
            result = discovery_run(source_id=source.pk)
            level = messages.SUCCESS if result.discovery_status == "succeeded" else messages.ERROR
            self.message_user(request, f"{source}: {result.discovery_status} {result.discovery_error}", level)


@admin.register(CatalogColumn)
class CatalogColumnAdmin(admin.ModelAdmin):
    list_display = ["name", "table", "data_type", "pii", "phi", "masking_style", "description"]
    list_editable = ["pii", "phi", "masking_style", "description"]
    list_filter = ["pii", "phi", "masking_style", "table__data_source"]
    search_fields = ["name", "table__name"]
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


class CatalogColumnInline(admin.TabularInline):
    model = CatalogColumn
    extra = 0
    fields = ["name", "data_type", "pii", "phi", "masking_style", "description"]
    readonly_fields = ["name", "data_type"]
    can_delete = False


@admin.register(CatalogTable)
class CatalogTableAdmin(admin.ModelAdmin):
    list_display = ["name", "schema_name", "data_source", "kind", "row_estimate"]
    list_filter = ["data_source", "kind"]
    search_fields = ["name", "schema_name"]
    inlines = [CatalogColumnInline]
    readonly_fields = ["data_source", "schema_name", "name", "kind", "row_estimate"]


@admin.register(RowPolicy)
class RowPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "data_source", "table_name", "predicate", "roles", "is_active"]
    list_filter = ["is_active", "data_source"]
    search_fields = ["name", "table_name", "predicate"]
    filter_horizontal = ["users"]


@admin.register(SourceAccess)
class SourceAccessAdmin(admin.ModelAdmin):
    list_display = ["data_source", "role", "user"]
    list_filter = ["role", "data_source"]

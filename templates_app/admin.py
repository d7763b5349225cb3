from django.contrib import admin

from config.admin_scoping import AuditedAdmin
from templates_app.models import PromptTemplate, TemplateCategory


@admin.register(TemplateCategory)
class TemplateCategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "position"]
    prepopulated_fields = {"slug": ("name",)}


@admin.register(PromptTemplate)
class PromptTemplateAdmin(AuditedAdmin):
    org_path = "organization"
    list_display = ["name", "category", "organization", "owner", "is_system", "is_public", "usage_count", "deleted_at"]
    list_filter = ["category", "is_system", "is_public"]
    search_fields = ["name", "description", "template_text"]
    readonly_fields = ["usage_count", "created_at", "updated_at"]

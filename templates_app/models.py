"""Prompt templates with {{param}} placeholders, grouped in categories operators manage."""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organization

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
PARAMETER_TYPES = ("string", "number", "date", "enum")


class TemplateCategory(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "template categories"

    def __str__(self) -> str:
        return self.name


class PromptTemplate(models.Model):
    # System templates ship with the product: no organization, no owner, read-only for users.
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="prompt_templates"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="prompt_templates"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.ForeignKey(
        TemplateCategory, null=True, blank=True, on_delete=models.SET_NULL, related_name="templates"
    )
    template_text = models.TextField()
    # [{"name", "type": string|number|date|enum, "required", "default", "allowed_values", "description"}]
    parameters = models.JSONField(default=list, blank=True)
    is_system = models.BooleanField(default=False)
    is_public = models.BooleanField(default=False, help_text="Visible to everyone in the organization")
    usage_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def placeholders(self) -> list[str]:
        return list(dict.fromkeys(PLACEHOLDER.findall(self.template_text)))

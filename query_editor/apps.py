from django.apps import AppConfig


class QueryEditorConfig(AppConfig):
    name = "query_editor"
    verbose_name = "Query editor"

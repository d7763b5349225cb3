from config.api import both
from templates_app import api

urlpatterns = [
    *both("prompt-templates", api.TemplateListView.as_view(), "prompt-templates"),
    *both("prompt-templates/<id:template_id>", api.TemplateDetailView.as_view(), "prompt-template"),
    *both("prompt-templates/<id:template_id>/execute", api.TemplateExecuteView.as_view(), "prompt-template-execute"),
]

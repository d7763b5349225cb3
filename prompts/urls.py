from config.api import both
from prompts import api

urlpatterns = [
    *both("prompts/execute", api.ExecutePromptView.as_view(), "prompt-execute"),
    *both("prompt-executions/<int:execution_id>", api.ExecutionDetailView.as_view(), "prompt-execution"),
    *both("prompt-executions/<int:execution_id>/cancel", api.ExecutionCancelView.as_view(), "prompt-execution-cancel"),
]

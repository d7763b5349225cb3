from analytics.api import QueryAnalyticsView
from config.api import both
from prompts import api, history_api

urlpatterns = [
    # Polled by every client: first, so the status read resolves at once.
    *both("prompt-executions/<id:execution_id>", api.ExecutionDetailView.as_view(), "prompt-execution"),
    *both("prompt-executions/<id:execution_id>/cancel", api.ExecutionCancelView.as_view(), "prompt-execution-cancel"),
    *both("prompts", history_api.PromptListView.as_view(), "prompts"),
    *both("prompts/execute", api.ExecutePromptView.as_view(), "prompt-execute"),
    *both("prompts/history", history_api.HistoryView.as_view(), "prompt-history"),
    *both("prompts/history/clear", history_api.HistoryClearView.as_view(), "prompt-history-clear"),
    *both("prompts/analytics/query-analytics", QueryAnalyticsView.as_view(), "query-analytics"),
    *both("prompts/<id:prompt_id>", history_api.PromptDetailView.as_view(), "prompt-detail"),
    *both("prompts/<id:prompt_id>/executions", history_api.PromptExecutionsView.as_view(), "prompt-executions"),
    *both("prompts/<id:prompt_id>/analytics", history_api.PromptAnalyticsView.as_view(), "prompt-analytics"),
    *both("prompts/<id:prompt_id>/execute", history_api.PromptExecuteView.as_view(), "prompt-run"),
]

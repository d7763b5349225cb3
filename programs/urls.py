from config.api import both
from programs import api

urlpatterns = [
    *both("execute_program", api.ExecuteProgramView.as_view(), "execute-program"),
    *both("spaces/<slug:slug>/sql", api.SpaceSqlView.as_view(), "space-sql"),
]

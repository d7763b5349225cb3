from accounts import api
from config.api import both

urlpatterns = [
    *both("auth/token", api.TokenObtainView.as_view(), "auth-token"),
    *both("auth/token/refresh", api.TokenRefreshView.as_view(), "auth-token-refresh"),
    *both("api-keys", api.ApiKeyListCreateView.as_view(), "api-keys"),
    *both("api-keys/<id:key_id>", api.ApiKeyDetailView.as_view(), "api-key-detail"),
    *both("me", api.MeView.as_view(), "me"),
]

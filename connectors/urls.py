from config.api import both
from connectors import api

urlpatterns = [
    *both("data-sources", api.DataSourceListView.as_view(), "data-sources"),
    *both("data-sources/<id:source_id>", api.DataSourceDetailView.as_view(), "data-source-detail"),
    *both("data-sources/<id:source_id>/test", api.DataSourceTestView.as_view(), "data-source-test"),
    *both("data-sources/<id:source_id>/discover", api.DataSourceDiscoverView.as_view(), "data-source-discover"),
    *both("data-sources/<id:source_id>/schema", api.DataSourceSchemaView.as_view(), "data-source-schema"),
]

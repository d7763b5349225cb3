import pytest

from connectors.errors import SqlValidationFailed
from connectors.governed import GovernedRequest, governed_execute
from tests.factories import DataSourceFactory

pytestmark = pytest.mark.django_db


def test_a_source_without_a_discovered_catalog_is_a_clear_validation_error(member, data_root):
    source = DataSourceFactory(workspace=member.workspace, path=str(data_root / "never.sqlite3"))
    with pytest.raises(SqlValidationFailed) as caught:
        governed_execute(GovernedRequest(membership=member, sources=[source], sql="SELECT 1", purpose="editor"))
    assert caught.value.check == "unknown_table"
    assert "run schema discovery" in caught.value.message
